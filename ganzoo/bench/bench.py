"""``ganzoo bench``: PyTorch eager / torch.compile / ONNX Runtime latency, one process per backend.

Each backend runs in :mod:`ganzoo.bench.worker` in a fresh interpreter (ONNX Runtime's spinning
threads slow PyTorch several-fold in a shared process). Per batch size: warm-up, then p50/p90/p99
latency and images/s at p50, with the thread count and the provider that really ran. A backend that
cannot run here (no CUDA, compile failure, no PyTorch weights for a bare .onnx file) is reported
unavailable with the reason, never as a crash. With ``rounds`` > 1 every backend's process loads
once and the backends then take turns, round after round (the figures are medians over rounds):
on a machine whose speed drifts, ratios between backends are then measured side by side.

This module imports no torch itself; a RUN_DIR whose ONNX file is missing or older than its
checkpoint is exported first, to its default path in the run directory (that part uses PyTorch).
"""

from __future__ import annotations

import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import GanzooError

BACKENDS = ("eager", "compile", "eager-cuda", "ort-cpu", "ort-cuda", "ort-trt")
DEFAULT_BACKENDS = ("eager", "compile", "ort-cpu", "ort-cuda", "ort-trt")
TORCH_BACKENDS = ("eager", "compile", "eager-cuda")


def parse_list(text: str, what: str, choices: Sequence[str] | None = None) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise GanzooError(f"--{what} is empty")
    if choices is not None:
        bad = [t for t in items if t not in choices]
        if bad:
            raise GanzooError(f"--{what}: unknown {', '.join(bad)}; choose from {', '.join(choices)}")
    return items


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in parse_list(text, "batch-sizes")]
    except ValueError:
        raise GanzooError(f"--batch-sizes must be comma-separated integers like 1,8,64, got '{text}'") from None
    if any(s < 1 for s in sizes):
        raise GanzooError(f"--batch-sizes must be positive, got '{text}'")
    return sizes


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    from .worker import cpu_name

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_name(),
                            "cpu_count": os.cpu_count()}
    try:
        from importlib.metadata import version

        info["onnxruntime"] = version("onnxruntime-gpu") if _has("onnxruntime-gpu") else version("onnxruntime")
        info["torch"] = version("torch") if _has("torch") else None
    except Exception:  # pragma: no cover - metadata quirks
        pass
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    return info


def _has(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
        return True
    except PackageNotFoundError:
        return False


def onnx_for_run(run_dir: Path, net: str | None, progress=None) -> Path:
    """The run's exported file for ``net`` (its default path in the run directory); exported there
    first when it is missing or older than the checkpoint."""
    from ..registry import get_registry

    cfg_path = run_dir / "config.toml"
    if not cfg_path.is_file():
        raise GanzooError(f"{run_dir} is not a ganzoo run directory (no config.toml); pass the folder 'ganzoo train' printed")
    cfg = tomllib.loads(cfg_path.read_text())
    spec = get_registry().get("architecture", cfg["arch"])
    exports = [e for e in spec.exports if net is None or e.network == net]
    if not exports:
        raise GanzooError(f"--net {net}: '{spec.name}' exports {', '.join(e.network for e in spec.exports)}")
    es = exports[0]
    existing = run_dir / (("generator" if len(spec.exports) == 1 else es.network) + ".onnx")
    ckpt = run_dir / "checkpoints" / "last.pt"
    if existing.is_file() and ckpt.is_file() and existing.stat().st_mtime >= ckpt.stat().st_mtime:
        return existing
    from ..deploy.export import export_run

    if progress:
        progress(f"exporting {spec.name}/{es.network} to {existing} (no up-to-date export in the run directory)")
    return export_run(run_dir, existing, net=es.network)[0].path


def _worker_env(job: dict[str, Any]) -> dict[str, str]:
    """A worker's environment: OpenMP (PyTorch) gets the job's thread count before it starts, and
    Python >= 3.11 leaves the current directory off ``sys.path`` (PYTHONSAFEPATH)."""
    return {**os.environ, "OMP_NUM_THREADS": str(job["threads"]), "PYTHONSAFEPATH": "1"}


def _worker_launch(job: dict[str, Any], *extra: str) -> tuple[list[str], dict[str, Any]]:
    """The command and the ``subprocess`` keywords that start a worker for ``job``.

    ``python -m`` puts the current directory first on ``sys.path``, so run from a folder holding a
    ganzoo checkout the worker would import that folder as a namespace package instead of the
    installed ganzoo. Workers therefore start in an empty temporary folder (PYTHONSAFEPATH does the
    same on Python >= 3.11), with the job's paths made absolute first; the caller removes the
    folder (``kw["cwd"]``) when the worker is done."""
    job = {**job, **{k: str(Path(job[k]).expanduser().resolve()) for k in ("onnx", "run_dir") if job.get(k)}}
    cmd = [sys.executable, "-m", "ganzoo.bench.worker", json.dumps(job), *extra]
    return cmd, {"env": _worker_env(job), "cwd": tempfile.mkdtemp(prefix="ganzoo-bench-")}


def run_backend(backend: str, job: dict[str, Any], timeout: float = 900) -> list[dict[str, Any]]:
    """Run one backend in its own process; always returns records (unavailable ones included)."""
    job = {**job, "backend": backend}
    cmd, kw = _worker_launch(job)
    reason = ""
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        finally:
            shutil.rmtree(kw["cwd"], ignore_errors=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if lines:
            result = json.loads(lines[-1])
            if "records" in result:
                return result["records"]
            reason = result.get("unavailable", "unknown reason")
        else:
            err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            reason = f"worker exited with {proc.returncode}: {err[-1][:240] if err else 'no output'}"
    except subprocess.TimeoutExpired:
        reason = f"timed out after {timeout:.0f} s"
    return [_missing(backend, b, job["threads"], reason, job) for b in job["batch_sizes"]]


def bench_jobs(source: str | Path, backends: Iterable[str] = DEFAULT_BACKENDS, batch_sizes: Sequence[int] = (1, 8, 64), *,
               net: str | None = None, threads: int | None = None, warmup_s: float = 1.0, min_time_s: float = 2.0,
               min_iters: int = 10, max_iters: int = 2000, opt_level: str = "all", iobinding: bool | None = None,
               spinning: bool | None = None, graph: str = "auto", batch_parallel: bool = False,
               tags: dict[str, Any] | None = None, progress=None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The worker jobs that benchmark ``source`` (an exported .onnx file or a run directory) on each
    backend, and the records of backends that cannot run from it (a bare .onnx has no PyTorch weights)."""
    src = Path(source).expanduser()
    if not src.exists():
        raise GanzooError(f"{source} does not exist; pass an exported .onnx file or a run directory")
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise GanzooError(f"unknown backend {', '.join(bad)}; choose from {', '.join(BACKENDS)}")
    threads = int(threads or os.cpu_count() or 1)
    base: dict[str, Any] = dict(batch_sizes=list(batch_sizes), threads=threads, warmup_s=warmup_s, min_time_s=min_time_s,
                                min_iters=min_iters, max_iters=max_iters, opt_level=opt_level, spinning=spinning,
                                graph=graph, batch_parallel=batch_parallel, net=net, tags=dict(tags or {}))
    if iobinding is not None:
        base["iobinding"] = iobinding
    jobs: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    onnx_path: Path | None = None
    for backend in backends:
        if backend in TORCH_BACKENDS:
            if not src.is_dir():
                missing += [_missing(backend, b, threads, "needs a RUN_DIR: an .onnx file has no PyTorch weights", base)
                            for b in batch_sizes]
                continue
            jobs.append({**base, "backend": backend, "run_dir": str(src)})
        else:
            if onnx_path is None:
                onnx_path = src if src.is_file() else onnx_for_run(src, net, progress)
            jobs.append({**base, "backend": backend, "onnx": str(onnx_path)})
    return jobs, missing


def run_bench(source: str | Path, backends: Iterable[str] = DEFAULT_BACKENDS, batch_sizes: Sequence[int] = (1, 8, 64), *,
              rounds: int = 1, timeout: float = 900, progress=None, **options: Any) -> list[dict[str, Any]]:
    """Benchmark ``source`` on each backend (options: those of :func:`bench_jobs`); with ``rounds`` > 1
    the backends are interleaved (see :func:`run_jobs`)."""
    backends = list(backends)
    jobs, missing = bench_jobs(source, backends, batch_sizes, progress=progress, **options)
    records = run_jobs(jobs, rounds=rounds, timeout=timeout, progress=progress) + missing
    return sorted(records, key=lambda r: backends.index(r["backend"]))  # stable: batch sizes stay in order


def run_jobs(jobs: Sequence[dict[str, Any]], rounds: int = 1, timeout: float = 900, progress=None) -> list[dict[str, Any]]:
    """Run worker jobs. ``rounds`` 1: one backend after the other, each timing every batch size once.
    More: every worker loads first, then each round times every batch size on every backend in turn
    (one at a time, the order rotating), so a machine whose speed drifts slows all backends alike.
    A record's figures are then the median over rounds; ``rounds_p50_ms`` keeps each round's p50, in
    round order, so ratios can be taken round by round, and ``rounds_at_s`` when each round's timing
    of it began (seconds from the first)."""
    if rounds <= 1:
        out = []
        for job in jobs:
            if progress:
                progress(f"{_label(job)} ...")
            out += run_backend(job["backend"], job, timeout)
        return out
    from .worker import records_of

    workers = []
    for job in jobs:
        if progress:
            progress(f"{_label(job)}: loading")
        workers.append(_Worker(job, timeout))
    ready = []
    out: list[dict[str, Any]] = []
    for w in workers:
        reason = w.wait_ready()
        if reason:
            out += [_missing(w.job["backend"], b, w.job["threads"], reason, w.job) for b in w.job["batch_sizes"]]
        else:
            ready.append(w)
    times: dict[tuple[int, int], list[list[float]]] = {}
    started: dict[tuple[int, int], list[float]] = {}
    t0 = time.perf_counter()
    try:
        for r in range(rounds):
            order = ready[r % len(ready):] + ready[: r % len(ready)] if ready else []
            if progress:
                progress(f"round {r + 1}/{rounds}: {', '.join(_label(w.job) for w in order)}")
            for batch in dict.fromkeys(b for job in jobs for b in job["batch_sizes"]):
                for w in order:
                    if w.reason or batch not in w.job["batch_sizes"]:
                        continue
                    at = time.perf_counter() - t0
                    got = w.measure(batch)
                    if got is not None:
                        times.setdefault((id(w), batch), []).append(got)
                        started.setdefault((id(w), batch), []).append(round(at, 3))
    finally:
        for w in workers:
            w.close()
    for w in ready:
        for batch in w.job["batch_sizes"]:
            runs = times.get((id(w), batch))
            if w.reason or not runs or len(runs) < rounds:
                out.append(_missing(w.job["backend"], batch, w.job["threads"], w.reason or "no timings", w.job))
                continue
            per_round = [records_of(w.job, w.meta, batch, t) for t in runs]
            rec = dict(per_round[0])
            for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
                rec[k] = round(statistics.median(x[k] for x in per_round), 4)
            rec["images_per_s"] = round(batch * 1e3 / rec["p50_ms"], 2)
            rec["iters"] = sum(x["iters"] for x in per_round)
            rec["rounds"] = rounds
            rec["rounds_p50_ms"] = [x["p50_ms"] for x in per_round]
            rec["rounds_at_s"] = started[(id(w), batch)]
            out.append(rec)
    return out


def _label(job: dict[str, Any]) -> str:
    extra = job.get("tags", {}).get("variant")
    return job["backend"] + (f" [{extra}]" if extra else "")


class _Worker:
    """A ``bench_worker --serve`` process: loaded once, then timed batch size by batch size."""

    def __init__(self, job: dict[str, Any], timeout: float):
        self.job, self.timeout, self.meta, self.reason = job, timeout, {}, ""
        cmd, kw = _worker_launch(job, "--serve")
        self.cwd = kw["cwd"]
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, **kw)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    self.lines.put(json.loads(line))
                except ValueError:  # a library printing to stdout, not the worker
                    continue
        self.lines.put(None)

    def _next(self) -> dict[str, Any] | None:
        try:
            msg = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self.reason = f"timed out after {self.timeout:.0f} s"
            return None
        if msg is None:
            self.proc.wait()
            self.stderr.seek(0)
            err = [ln for ln in self.stderr.read().strip().splitlines() if ln.strip()]
            self.reason = f"worker exited with {self.proc.returncode}: {err[-1][:240] if err else 'no output'}"
        return msg

    def wait_ready(self) -> str:
        msg = self._next()
        if msg is not None:
            if "ready" in msg:
                self.meta = msg["ready"]
            else:
                self.reason = msg.get("unavailable", "unknown reason")
        return self.reason

    def measure(self, batch: int) -> list[float] | None:
        time.sleep(0.05)  # the previous backend's idle threads stop spinning
        try:
            self.proc.stdin.write(json.dumps({"batch": batch}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        msg = self._next()
        return None if msg is None else msg.get("times")

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()
        shutil.rmtree(self.cwd, ignore_errors=True)


def _missing(backend: str, batch: int, threads: int, reason: str, base: dict) -> dict[str, Any]:
    return {"backend": backend, "batch_size": batch, "available": False, "reason": reason, "p50_ms": None,
            "p90_ms": None, "p99_ms": None, "mean_ms": None, "images_per_s": None, "provider": None, "threads": threads,
            **base.get("tags", {})}


GPU_BACKENDS = {"eager-cuda": "PyTorch CUDA", "ort-cuda": "CUDA", "ort-trt": "TensorRT"}
FAR_OFF = 2.0  # a round whose p50 is over this factor from the median (either way) is flagged


def has_gpu() -> bool:
    """Whether this machine shows an NVIDIA GPU (device nodes or the driver's /proc entry; WSL's
    /dev/dxg). Tells "no GPU here" apart from a GPU whose libraries are missing."""
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/dxg")) or bool(
        os.path.isdir("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"))


def spread(rec: dict[str, Any]) -> tuple[str, bool]:
    """The rounds' p50 range ("1.21-1.35", "" for one round) and whether a round is over
    ``FAR_OFF`` x from the median (a busy moment or a late warm-up)."""
    rounds = [x for x in rec.get("rounds_p50_ms") or [] if x]
    if len(rounds) < 2:
        return "", False
    med = statistics.median(rounds)
    far = max(rounds) > FAR_OFF * med or min(rounds) < med / FAR_OFF
    return f"{min(rounds):.3g}-{max(rounds):.3g}", far


def format_table(records: Sequence[dict[str, Any]], gpu: bool | None = None) -> str:
    """The records as a table: latency, images/s, speed against eager at the same batch size
    (eager p50 / this p50), the spread of p50 over rounds ("!" marks a round over ``FAR_OFF`` x off
    the median), threads and provider; then unavailable backends, one line each, and GPU backends
    on a machine without a GPU (``gpu`` False; None: :func:`has_gpu`) together in one line."""
    gpu = has_gpu() if gpu is None else gpu
    eager = {r["batch_size"]: r["p50_ms"] for r in records
             if r["backend"] == "eager" and r.get("available", True) and r.get("p50_ms") and not r.get("variant")}
    head = (f"{'backend':<11} {'batch':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'images/s':>10} {'vs eager':>8} "
            f"{'rounds p50 ms':>15} {'threads':>7}  provider")
    lines = [head, "-" * len(head)]
    flagged = False
    for r in records:
        if r.get("available", True) and r.get("p50_ms") is not None:
            base = eager.get(r["batch_size"])
            ratio = f"{base / r['p50_ms']:.2f}x" if base else "-"
            rng, far = spread(r)
            flagged |= far
            lines.append(f"{r['backend']:<11} {r['batch_size']:>5} {r['p50_ms']:>9.3f} {r['p90_ms']:>9.3f} {r['p99_ms']:>9.3f} "
                         f"{r['images_per_s']:>10.1f} {ratio:>8} {(rng + (' !' if far else '  ')) if rng else '-':>15} "
                         f"{r['threads']:>7}  {r['provider']}"
                         + (f" ({r['graph']} graph" + (f", {r['sessions']} sessions" if r.get("sessions", 1) > 1 else "") + ")"
                            if r.get("graph") else ""))
    if flagged:
        lines.append(f"! a round's p50 was over {FAR_OFF:g}x from the median: the machine was busy then or the backend "
                     "still warming up; more --rounds firm up the median")
    seen, no_gpu = set(), []
    for r in records:
        if not r.get("available", True) and r["backend"] not in seen:
            seen.add(r["backend"])
            if not gpu and r["backend"] in GPU_BACKENDS:
                no_gpu.append(r["backend"])
            else:
                lines.append(f"{r['backend']:<11} unavailable: {r.get('reason', '')}")
    if no_gpu:
        names = ", ".join(GPU_BACKENDS[b] for b in no_gpu)
        lines.append(f"{', '.join(no_gpu)} ({names}): not available on this machine (no GPU)")
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Latency (p50, with p90 bars) against batch size, one line per backend, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for backend in dict.fromkeys(r["backend"] for r in records):
        rows = [r for r in records if r["backend"] == backend and r.get("p50_ms") is not None]
        if not rows:
            continue
        xs = [r["batch_size"] for r in rows]
        ax.errorbar(xs, [r["p50_ms"] for r in rows], yerr=[[0] * len(rows), [r["p90_ms"] - r["p50_ms"] for r in rows]],
                    marker="o", capsize=3, label=f"{backend} ({rows[0]['provider']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency p50 (ms), bar to p90")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
