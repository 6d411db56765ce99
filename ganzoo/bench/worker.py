"""One benchmark backend in its own process: ``python -m ganzoo.bench.worker JOB_JSON``.

ONNX Runtime's spinning intra-op threads slow PyTorch several-fold when both live in one process,
so :mod:`ganzoo.bench` runs every backend here, one process each. The ``ort-*`` backends import
no torch. The last line printed is one JSON object: ``{"records": [...]}`` or
``{"unavailable": "why"}``. With ``--serve`` the worker loads once and then times one batch size
per request, so :func:`ganzoo.bench.run_jobs` can interleave backends round by round.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any, Callable

import numpy as np


class Unavailable(Exception):
    """This backend cannot run here; the message says why."""


def _first(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return f"{type(exc).__name__}: {lines[0][:240] if lines else ''}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(fn: Callable[[], Any], warmup_s: float, min_time_s: float, min_iters: int, max_iters: int) -> list[float]:
    """Warm up (at least 3 calls and ``warmup_s``), then time calls: at least ``min_iters`` and
    ``min_time_s``, at most ``max_iters``. Returns per-call seconds."""
    t_end = time.perf_counter() + warmup_s
    k = 0
    while k < 3 or (time.perf_counter() < t_end and k < max_iters):
        fn()
        k += 1
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or (time.perf_counter() - start < min_time_s and len(times) < max_iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def record(job: dict, batch: int, times: list[float], provider: str, threads: int, device: str) -> dict[str, Any]:
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    return {
        "backend": job["backend"], "batch_size": batch, "available": True,
        "p50_ms": round(p50, 4), "p90_ms": round(p90, 4), "p99_ms": round(p99, 4), "mean_ms": round(float(ms.mean()), 4),
        "images_per_s": round(batch * 1e3 / p50, 2), "iters": len(times),
        "provider": provider, "threads": threads, "device": device, **job.get("tags", {}),
    }


def _timing(job: dict) -> tuple[float, float, int, int]:
    return float(job.get("warmup_s", 1.0)), float(job.get("min_time_s", 2.0)), int(job.get("min_iters", 10)), int(job.get("max_iters", 2000))


def prepare_torch(job: dict) -> tuple[dict[int, Callable[[], Any]], dict[str, Any]]:
    """One callable per batch size (compiled for it when the backend is ``compile``), and what ran."""
    import torch

    from ganzoo.deploy.export import RunModel
    from ganzoo.deploy.runtime import example_inputs

    cuda = job["backend"].endswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise Unavailable("PyTorch sees no CUDA device")
    torch.set_num_threads(int(job["threads"]))
    model = RunModel(job["run_dir"], net=job.get("net"), device="cuda" if cuda else "cpu")
    net = model.module
    if job["backend"].startswith("compile"):
        try:
            net = torch.compile(net, dynamic=False)
        except Exception as exc:
            raise Unavailable(f"torch.compile failed: {_first(exc)}") from None
    fns = {}
    for batch in job["batch_sizes"]:
        args = [torch.from_numpy(x).to(model.parts.device) for x in example_inputs(model.info, batch).values()]

        def fn(args=args):
            with torch.inference_mode():
                y = net(*args)
            if cuda:
                torch.cuda.synchronize()
            return y

        try:
            fn()  # compiles for this shape
        except Exception as exc:
            raise Unavailable(f"{job['backend']} failed: {_first(exc)}") from None
        fns[batch] = fn
    meta = {"provider": f"torch-{'cuda' if cuda else 'cpu'}", "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if cuda else cpu_name()}
    return fns, meta


def prepare_ort(job: dict) -> tuple[dict[int, Callable[[], Any]], dict[str, Any]]:
    """One callable per batch size on an ONNX Runtime session (IOBinding when asked), and what ran."""
    from ganzoo.errors import GanzooError
    from ganzoo.deploy.runtime import GanzooModel

    provider = {"ort-cpu": "cpu", "ort-cuda": "cuda", "ort-trt": "tensorrt"}[job["backend"]]
    threads = int(job["threads"])
    try:
        model = GanzooModel(job["onnx"], provider=provider, threads=threads if provider == "cpu" else 0,
                            opt_level=job.get("opt_level", "all"), spinning=job.get("spinning"),
                            graph=job.get("graph", "auto"), batch_parallel=bool(job.get("batch_parallel")))
    except GanzooError as exc:
        raise Unavailable(str(exc)) from None
    import onnxruntime as ort

    from ganzoo.deploy.runtime import example_inputs

    sess, info = model.session, model.info
    iobinding = bool(job.get("iobinding", provider != "cpu")) and model.sessions == 1
    fns = {}
    for batch in job["batch_sizes"]:
        feeds = example_inputs(info, batch)
        if iobinding:
            where = "cpu" if provider == "cpu" else "cuda"
            io = sess.io_binding()
            for k, v in feeds.items():
                io.bind_ortvalue_input(k, ort.OrtValue.ortvalue_from_numpy(v, where, 0))
            shape = [batch, *info.sample_shape]
            io.bind_ortvalue_output(info.output, ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, where, 0))

            def fn(io=io):
                sess.run_with_iobinding(io)
        elif model.sessions > 1:
            def fn(feeds=feeds):
                model.forward(feeds)
        else:
            def fn(feeds=feeds):
                sess.run([info.output], feeds)

        try:
            fn()
        except Exception as exc:
            raise Unavailable(f"{job['backend']} failed: {_first(exc)}") from None
        fns[batch] = fn
    meta = {"provider": model.provider + ("+iobinding" if iobinding else ""),
            "threads": threads if provider == "cpu" else 0, "graph": model.graph, "sessions": model.sessions,
            "device": cpu_name() if provider == "cpu" else f"GPU ({', '.join(model.providers)})"}
    return fns, meta


def prepare(job: dict) -> tuple[dict[int, Callable[[], Any]], dict[str, Any]]:
    return prepare_ort(job) if job["backend"].startswith("ort-") else prepare_torch(job)


def records_of(job: dict, meta: dict[str, Any], batch: int, times: list[float]) -> dict[str, Any]:
    rec = record(job, batch, times, meta["provider"], meta["threads"], meta["device"])
    return {**rec, "graph": meta["graph"], "sessions": meta.get("sessions", 1)} if "graph" in meta else rec


def serve(job: dict, stdin=None, stdout=None) -> None:
    """Interleaved rounds (``ganzoo bench --rounds``): after loading, print ``{"ready": meta}``, then
    answer each request line ``{"batch": B}`` with ``{"times": [seconds, ...]}`` until stdin closes.
    The coordinator asks one worker at a time, so only one backend runs at any moment."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        fns, meta = prepare(job)
        stdout.write("\n" + json.dumps({"ready": meta}) + "\n")
    except Unavailable as exc:
        stdout.write("\n" + json.dumps({"unavailable": str(exc)}) + "\n")
        stdout.flush()
        return
    stdout.flush()
    for line in stdin:
        if not line.strip():
            continue
        batch = int(json.loads(line)["batch"])
        stdout.write(json.dumps({"times": measure(fns[batch], *_timing(job))}) + "\n")
        stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(argv[0])
    os.environ.setdefault("OMP_NUM_THREADS", str(job.get("threads", 1)))
    if "--serve" in argv[1:]:
        serve(job)
        return 0
    try:
        fns, meta = prepare(job)
        result: dict[str, Any] = {"records": [records_of(job, meta, b, measure(fn, *_timing(job))) for b, fn in fns.items()]}
    except Unavailable as exc:
        result = {"unavailable": str(exc)}
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
