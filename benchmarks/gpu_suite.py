"""The GPU suite (run by ``benchmarks/gpu_suite.sh``): training throughput and generator inference
on one CUDA device, written as JSON with the device named. Budget: under 8 minutes on one H100/H200.

Training, 1 process, every built-in architecture at its reference size (the papers' image size and
batch; data: the embedded digits resized, one channel): images/s = global batch x steps/s (a step
is n_critic critic updates and one generator update) for
    fp32 | bf16 (autocast) | fp32 + channels_last | bf16 + channels_last | fp32 + torch.compile
    | bf16 + channels_last + torch.compile
(compile covers the generators, and the critics of runs without a penalty: see ganzoo/engine/accel.py).

Inference, each exported generator at batch 1 and 64: PyTorch CUDA eager against ONNX Runtime's CUDA
provider (IOBinding: inputs and outputs stay on the GPU) and its TensorRT provider, through
``ganzoo.bench`` (one process per backend; a provider that does not load is reported with why).

``--dry-run`` runs the same code on CPU at tiny sizes for a few steps (the architectures' ``tiny``
settings), reporting what needs CUDA as skipped: a test runs it so the suite stays ready while no
GPU is at hand. Partial results are written after every measurement; a time budget (``--budget-s``)
records what it had no time for as skipped rather than running over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# arch -> (settings at the reference size, the paper it follows)
REFERENCE = {
    "vanilla": ({"data": "digits", "image_size": 32, "batch_size": 64}, "Goodfellow et al. 2014 (MNIST-sized MLP)"),
    "dcgan": ({"image_size": 64, "batch_size": 128}, "Radford et al. 2016: 64 px, batch 128"),
    "wgan": ({"data": "digits", "image_size": 64, "batch_size": 64}, "Gulrajani et al. 2017: 64 px, batch 64"),
    "cgan": ({"image_size": 32, "batch_size": 64}, "Miyato & Koyama 2018: 32 px, batch 64"),
    "cyclegan": ({"image_size": 256, "batch_size": 1}, "Zhu et al. 2017: 256 px, batch 1"),
}
VARIANTS = {  # name -> config settings
    "fp32": {},
    "bf16": {"amp": True},
    "fp32+channels_last": {"channels_last": True},
    "bf16+channels_last": {"amp": True, "channels_last": True},
    "fp32+compile": {"compile": True},
    "bf16+channels_last+compile": {"amp": True, "channels_last": True, "compile": True},
}
GPU_BACKENDS = ("eager-cuda", "ort-cuda", "ort-trt")


def device_name(cuda: bool) -> str:
    import torch

    if cuda:
        return torch.cuda.get_device_name()
    try:
        from ganzoo.bench.worker import cpu_name

        return cpu_name()
    except Exception:  # pragma: no cover - informational only
        return platform.processor() or platform.machine()


def build_trainer(arch: str, settings: dict, device: str, out: Path):
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", arch)
    run, hps = flatten_user(spec, {}, {"device": device, "seed": 0, **settings})
    cfg = resolve(reg, spec, run, hps)
    return Trainer(cfg, RunDir(str(out)), quiet=True)


def time_training(trainer, warmup: int, min_steps: int, min_s: float, cuda: bool) -> dict:
    """Steps/s over at least ``min_steps`` steps and ``min_s`` seconds, after ``warmup`` steps
    (which include any compilation)."""
    import torch

    def sync():
        if cuda:
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    step = 0
    for _ in range(warmup):
        step += 1
        trainer.train_step(step)
    sync()
    warm_s = time.perf_counter() - t0
    t1, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - t1 < min_s:
        step += 1
        n += 1
        trainer.train_step(step)
        if n % 5 == 0:
            sync()
    sync()
    dt = time.perf_counter() - t1
    batch = int(trainer.cfg["batch_size"])
    return {"steps": n, "seconds": round(dt, 3), "steps_per_s": round(n / dt, 3),
            "images_per_s": round(batch * n / dt, 1), "warmup_s": round(warm_s, 2)}


class Suite:
    def __init__(self, args):
        import torch

        self.args = args
        self.cuda = torch.cuda.is_available() and not args.dry_run
        self.t0 = time.perf_counter()
        self.out = Path(args.out) if args.out else RESULTS / ("gpu_suite-dry-run.json" if args.dry_run else "gpu_suite.json")
        self.result = {
            "suite": "gpu_suite", "dry_run": bool(args.dry_run), "device": device_name(self.cuda),
            "cuda": self.cuda, "torch": torch.__version__, "cuda_version": torch.version.cuda,
            "platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "budget_s": args.budget_s, "training": [], "inference": [], "skipped": [],
        }

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t0)

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.result, indent=2) + "\n")

    def skip(self, what: str, why: str) -> None:
        self.result["skipped"].append({"what": what, "why": why})
        print(f"  skipped {what}: {why}")
        self.save()

    def settings(self, arch: str) -> dict:
        from ganzoo.registry import get_registry

        ref, _ = REFERENCE.get(arch, ({}, ""))
        if not self.args.dry_run:
            return dict(ref)
        tiny = dict(get_registry().get("architecture", arch).tiny)
        keep = {k: v for k, v in ref.items() if k == "data"}
        return {**keep, **tiny, "batch_size": min(int(tiny.get("batch_size", 8)), 8)}

    def training(self, arch: str, work: Path, variants: list[str]) -> Path | None:
        """Each variant's images/s; returns a run directory with a checkpoint (for export) when fp32 ran."""
        import torch

        base = self.settings(arch)
        run_dir = None
        for name in variants:
            extra = VARIANTS[name]
            what = f"train {arch} {name}"
            if not self.cuda and (extra.get("amp") or extra.get("compile")):
                self.skip(what, "bf16 autocast and torch.compile are measured on CUDA only (dry run on CPU)")
                continue
            if self.left() < (90 if extra.get("compile") else 20):  # compiling alone can take a minute
                self.skip(what, "time budget spent")
                continue
            torch.manual_seed(0)
            out = work / f"{arch}-{name}"
            try:
                trainer = build_trainer(arch, {**base, **extra}, "cuda" if self.cuda else "cpu", out)
                warm, steps, secs = (2, 3, 0.0) if self.args.dry_run else (10 if extra.get("compile") else 5, 20, 2.0)
                rec = time_training(trainer, warm, steps, secs, self.cuda)
            except Exception as exc:  # a variant that fails here (e.g. compile) is recorded, not fatal
                self.skip(what, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}")
                continue
            rec = {"arch": arch, "variant": name, "batch_size": int(trainer.cfg["batch_size"]),
                   "image_size": int(trainer.cfg.get("image_size") or 0), "data": trainer.cfg["data"], **rec}
            self.result["training"].append(rec)
            print(f"  {arch:<9} {name:<27} {rec['images_per_s']:>10.1f} images/s  ({rec['steps_per_s']:.2f} steps/s)")
            self.save()
            if run_dir is None and name == "fp32":
                trainer.rd.create()
                trainer.rd.write_config(trainer.cfg)
                trainer.checkpoint(rec["steps"])
                run_dir = trainer.rd.path
            del trainer
            if self.cuda:
                torch.cuda.empty_cache()
        return run_dir

    def inference(self, arch: str, run_dir: Path) -> None:
        from ganzoo.bench.bench import run_bench
        from ganzoo.deploy.export import export_run

        if self.left() < 30:
            self.skip(f"inference {arch}", "time budget spent")
            return
        try:
            exports = export_run(run_dir)
        except Exception as exc:
            self.skip(f"export {arch}", f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        backends = GPU_BACKENDS if not self.args.dry_run else ("ort-cpu",) + GPU_BACKENDS
        batches = (1, 64) if not self.args.dry_run else (1, 4)
        timing = dict(warmup_s=0.05, min_time_s=0.1, min_iters=3, max_iters=20) if self.args.dry_run else \
            dict(warmup_s=0.5, min_time_s=1.0, min_iters=10, max_iters=2000)
        for ex in exports[:1]:  # CycleGAN's two generators are the same network: time one
            recs = run_bench(run_dir, backends, batches, net=ex.network, iobinding=True,
                             timeout=max(30.0, min(600.0, self.left())), **timing)
            for r in recs:
                r = {"arch": arch, "net": ex.network, **r}
                if r.get("p50_ms") is None:
                    self.skip(f"inference {arch} {r['backend']} batch {r['batch_size']}", r.get("reason") or "unavailable")
                else:
                    self.result["inference"].append(r)
                    print(f"  {arch:<9} {r['backend']:<11} batch {r['batch_size']:>3} p50 {r['p50_ms']:>9.3f} ms "
                          f"{r['images_per_s']:>10.1f} images/s  ({r['provider']})")
            self.save()

    def ratios(self) -> None:
        """Each ONNX Runtime backend's speed-up over PyTorch CUDA eager, per generator and batch."""
        eager = {(r["arch"], r["batch_size"]): r["p50_ms"] for r in self.result["inference"] if r["backend"] == "eager-cuda"}
        out = []
        for r in self.result["inference"]:
            base = eager.get((r["arch"], r["batch_size"]))
            if r["backend"] in ("ort-cuda", "ort-trt") and base:
                out.append({"arch": r["arch"], "backend": r["backend"], "batch": r["batch_size"],
                            "speedup_vs_eager_cuda": round(base / r["p50_ms"], 3)})
        self.result["speedups"] = out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, a few steps; CUDA-only parts reported as skipped")
    ap.add_argument("--archs", default=",".join(REFERENCE), help="comma-separated architectures (default: all built-in)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/gpu_suite[-dry-run].json)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new measurements after this many seconds")
    ap.add_argument("--skip-inference", action="store_true", help="training throughput only")
    args = ap.parse_args(argv)
    import torch

    suite = Suite(args)
    if not suite.cuda and not args.dry_run:
        print("gpu_suite: no CUDA device here; run with --dry-run to check the suite on CPU", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)) if args.dry_run else torch.get_num_threads())
    print(f"gpu_suite on {suite.result['device']}{' (dry run)' if args.dry_run else ''}")
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    eager = [v for v in VARIANTS if "compile" not in v]
    compiled = [v for v in VARIANTS if "compile" in v]
    # cheapest and most telling first; compilation (tens of seconds per network) last, so that a
    # spent budget costs compile figures rather than whole architectures
    with tempfile.TemporaryDirectory(prefix="ganzoo-gpu-suite-") as tmp:
        runs = {arch: suite.training(arch, Path(tmp), eager) for arch in archs}
        for arch, run_dir in runs.items():
            if run_dir is not None and not args.skip_inference:
                suite.inference(arch, run_dir)
        for arch in archs:
            suite.training(arch, Path(tmp), compiled)
    suite.ratios()
    suite.save()
    print(f"wrote {suite.out} ({suite.result['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
