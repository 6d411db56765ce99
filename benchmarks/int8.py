"""int8 ONNX generators on the CPU: speed and quality side by side, in one run.

Speed: DCGAN 64x64 and CycleGAN (G_AB) 128x128 (random smooth RGB images, trained 2 steps: speed does
not depend on the weights; their int8 export is timed, not judged against the bound), exported
float32 and ``--int8``, then PyTorch eager, ONNX Runtime
float32 (the runtime's default CPU graph) and ONNX Runtime int8 timed at batch 1 and 64 in
interleaved rounds (``ganzoo.bench.run_jobs``, each backend loaded once in its own process); ratios
are medians of within-round ratios.

Quality: DCGAN on ``digits`` and CycleGAN on ``digits-unpaired`` (their default sizes), trained
``--dcgan-steps`` / ``--cyclegan-steps`` steps, exported float32 and int8, and scored by ganzoo's own
metrics (``ganzoo.metrics.image``: classifier FD and IS for DCGAN; label preservation and domain
accuracy for CycleGAN) with the generator(s) run by ONNX Runtime from each file -- the same run,
the same inputs, only the precision differs. Also the export's own figures (max / mean abs
difference to float32 on the run's data).

    python benchmarks/int8.py                                   # ~15 min on 2 shared cores
    python benchmarks/int8.py --dcgan-run runs/dcgan-a --cyclegan-run runs/cyclegan-a   # score existing runs
    python benchmarks/int8.py --skip-speed

Writes benchmarks/results/int8.json (records, machine, load average) and prints both tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "int8.json"
SPEED = {"dcgan": ("rgb", 64, "G"), "cyclegan": ("unpaired", 128, "G_AB")}
QUALITY_KEYS = {
    "dcgan": ("classifier_fd", "classifier_fd_floor", "classifier_is", "classes_covered"),
    "cyclegan": ("label_preservation", "domain_accuracy", "classifier_fd", "cycle_l1", "mapping_l1"),
}


class OrtNet:
    """A generator network replaced by an ONNX Runtime session (torch tensors in and out), so that
    ganzoo's metrics score exactly what the exported file computes."""

    def __init__(self, path: Path):
        from ganzoo.deploy.runtime import GanzooModel

        self.model = GanzooModel(path, provider="cpu")
        self.training = False

    def __call__(self, x):
        import torch

        feeds = {self.model.info.inputs[0]: np.ascontiguousarray(x.detach().float().cpu().numpy())}
        return torch.from_numpy(self.model.forward(feeds))

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


def train(arch: str, settings: dict, out: Path, steps: int) -> Path:
    from _common import trainer_for

    sets = [f"{k}={v}" for k, v in settings.items()]
    trainer_for(arch, 0, steps, sets, out).fit()
    return out


def export_both(run: Path, net: str | None) -> dict[str, dict]:
    """float32 and int8 exports of ``run`` (only ``net`` when given): {precision: {network: (path, report)}}."""
    from ganzoo.deploy.export import export_run

    out: dict[str, dict] = {}
    for precision in ("float32", "int8"):
        res = export_run(run, run / f"onnx-{precision}", net=net, int8=precision == "int8")
        out[precision] = {r.network: (r.path, r.int8) for r in res}
    return out


def quality(arch: str, run: Path) -> dict:
    """ganzoo's image metrics of the run with its generator(s) from the float32 and the int8 file."""
    from ganzoo.engine.build import open_run
    from ganzoo.metrics.image import image_metrics

    files = export_both(run, None)
    rec: dict = {"arch": arch, "run": str(run), "export": {}}
    for precision, nets in files.items():
        parts, state = open_run(str(run))
        for name, (path, report) in nets.items():
            parts.nets[name] = OrtNet(path)
            parts.ema.pop(name, None)
            if report is not None:
                rec["export"][name] = {"max_abs_diff": report.max_abs, "mean_abs_diff": report.mean_abs,
                                       "bound": report.bound, "samples": report.samples}
        t0 = time.perf_counter()
        m = image_metrics(parts)
        rec[precision] = {k: m.get(k) for k in QUALITY_KEYS[arch] if k in m}
        rec[precision]["eval_s"] = round(time.perf_counter() - t0, 1)
        rec["step"] = int(state.get("step", 0))
    rec["delta"] = {k: round(rec["int8"][k] - rec["float32"][k], 6) for k in rec["float32"]
                    if isinstance(rec["float32"][k], (int, float)) and k != "eval_s"}
    return rec


def speed(arch: str, work: Path, rounds: int, batches: list[int], threads: int, progress) -> list[dict]:
    from ganzoo.bench import bench_jobs, run_jobs
    from onnx_zoo import data_arg
    from onnx_zoo import train as train_tiny

    from ganzoo.deploy import quantize

    kind, size, net = SPEED[arch]
    run = train_tiny(arch, data_arg(kind, size, work), work / f"speed-{arch}")
    bound, quantize.MEAN_ABS_BOUND = quantize.MEAN_ABS_BOUND, float("inf")  # untrained weights: timed, not judged
    try:
        files = export_both(run, net)
    finally:
        quantize.MEAN_ABS_BOUND = bound
    timing = dict(warmup_s=0.2, min_time_s=0.5, min_iters=3)
    tags = {"arch": arch, "network": net, "image_size": size}
    jobs, _ = bench_jobs(run, ["eager"], batches, net=net, threads=threads, tags={**tags, "variant": "eager"}, **timing)
    for precision in ("float32", "int8"):
        path = files[precision][net][0]
        jobs += bench_jobs(path, ["ort-cpu"], batches, threads=threads, tags={**tags, "variant": f"ort-{precision}"},
                           **timing)[0]
    return run_jobs(jobs, rounds=rounds, progress=progress)


# -- summary (pure functions of the records) ------------------------------------------------------

def ratio(records: list[dict], arch: str, batch: int, num: str, den: str) -> float | None:
    """p50(num) / p50(den) as the median of within-round ratios (variants ``eager``, ``ort-float32``,
    ``ort-int8``); > 1 means ``den`` is faster."""
    pick = lambda v: next((r for r in records if r.get("arch") == arch and r.get("batch_size") == batch  # noqa: E731
                           and r.get("variant") == v and r.get("p50_ms") is not None), None)
    a, b = pick(num), pick(den)
    if a is None or b is None:
        return None
    ra, rb = a.get("rounds_p50_ms") or [a["p50_ms"]], b.get("rounds_p50_ms") or [b["p50_ms"]]
    return round(statistics.median(x / y for x, y in zip(ra, rb)), 3)


def speed_rows(records: list[dict]) -> list[dict]:
    rows = []
    for arch in dict.fromkeys(r["arch"] for r in records):
        for b in sorted({r["batch_size"] for r in records if r["arch"] == arch}):
            p = {r["variant"]: r.get("p50_ms") for r in records if r["arch"] == arch and r["batch_size"] == b}
            rows.append({"arch": arch, "batch_size": b, "eager_ms": p.get("eager"), "ort_fp32_ms": p.get("ort-float32"),
                         "ort_int8_ms": p.get("ort-int8"),
                         "int8_vs_fp32": ratio(records, arch, b, "ort-float32", "ort-int8"),
                         "int8_vs_eager": ratio(records, arch, b, "eager", "ort-int8"),
                         "fp32_vs_eager": ratio(records, arch, b, "eager", "ort-float32")})
    return rows


def tables(result: dict) -> str:
    out = []
    if result.get("speed_rows"):
        out.append(f"{'model':<10} {'batch':>5} {'eager ms':>9} {'ORT fp32':>9} {'ORT int8':>9} {'int8 speed-up':>14} "
                   f"{'int8/eager':>11} {'fp32/eager':>11}")
        f = lambda v, s="": "-" if v is None else f"{v:.2f}{s}"  # noqa: E731
        for r in result["speed_rows"]:
            out.append(f"{r['arch']:<10} {r['batch_size']:>5} {f(r['eager_ms']):>9} {f(r['ort_fp32_ms']):>9} "
                       f"{f(r['ort_int8_ms']):>9} {f(r['int8_vs_fp32'], 'x'):>14} {f(r['int8_vs_eager'], 'x'):>11} "
                       f"{f(r['fp32_vs_eager'], 'x'):>11}")
    for q in result.get("quality", []):
        out.append(f"\n{q['arch']} (step {q['step']}): metric            float32      int8     delta")
        for k, v in q["float32"].items():
            if k != "eval_s" and v is not None and q["int8"].get(k) is not None:
                out.append(f"  {k:<28} {v:>9.4f} {q['int8'][k]:>9.4f} {q['delta'].get(k, 0):>+9.4f}")
        for name, e in q["export"].items():
            out.append(f"  export {name}: max abs diff {e['max_abs_diff']:.4f}, mean abs diff {e['mean_abs_diff']:.4f}")
    return "\n".join(out)


def markdown(result: dict) -> str:
    """The tables of docs/benchmarks.md (between the int8 markers)."""
    m = result["machine"]
    f = lambda v, u="": "-" if v is None else (f"{v:.3g}{u}" if abs(v) < 100 else f"{v:.0f}{u}")  # noqa: E731
    lines = [f"Measured {result['date']} on {m.get('cpu')} ({m.get('cpu_count')} CPUs, shared: load average "
             f"{m.get('loadavg_before')} before, {m.get('loadavg_after')} after), onnxruntime {m.get('onnxruntime')}, "
             f"torch {m.get('torch')}, {result['threads']} threads, {result['rounds']} rounds. "
             f"Command: `{result['command']}`.", ""]
    if result.get("speed_rows"):
        lines += ["| model | batch | eager ms | ORT float32 ms | ORT int8 ms | int8 vs float32 | int8 vs eager | float32 vs eager |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result["speed_rows"]:
            size = next((x["image_size"] for x in result["speed_records"] if x["arch"] == r["arch"]), "")
            lines.append(f"| {r['arch']} {size}x{size} | {r['batch_size']} | {f(r['eager_ms'])} | {f(r['ort_fp32_ms'])} | "
                         f"{f(r['ort_int8_ms'])} | **{f(r['int8_vs_fp32'], 'x')}** | {f(r['int8_vs_eager'], 'x')} | "
                         f"{f(r['fp32_vs_eager'], 'x')} |")
    for q in result.get("quality", []):
        exp = "; ".join(f"{n}: max {e['max_abs_diff']:.3f}, mean {e['mean_abs_diff']:.4f}" for n, e in q["export"].items())
        lines += ["", f"{q['arch']} on digits, step {q['step']} (export's own check, int8 vs float32 on 256 inputs: {exp}):", "",
                  "| metric | float32 | int8 | int8 - float32 |", "|---|---:|---:|---:|"]
        for k, v in q["float32"].items():
            if k != "eval_s" and v is not None and q["int8"].get(k) is not None:
                lines.append(f"| {k} | {v:.4g} | {q['int8'][k]:.4g} | {q['delta'].get(k, 0):+.4g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", type=int, default=0, help="threads per backend (default: all CPUs)")
    ap.add_argument("--dcgan-steps", type=int, default=1000, help="training steps of the DCGAN quality run")
    ap.add_argument("--cyclegan-steps", type=int, default=600, help="training steps of the CycleGAN quality run")
    ap.add_argument("--dcgan-run", default="", help="score this existing DCGAN digits run instead of training one")
    ap.add_argument("--cyclegan-run", default="", help="score this existing CycleGAN digits-unpaired run")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--markdown", default="", help="print the docs/benchmarks.md tables of this results JSON and stop")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    import torch

    from ganzoo.bench import machine

    torch.set_num_threads(1)
    threads = args.threads or os.cpu_count() or 1
    started, before = time.time(), machine()
    result: dict = {"benchmark": "int8", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "command": "python benchmarks/int8.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
                    "threads": threads, "rounds": args.rounds}
    progress = lambda m: print("  " + m, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="ganzoo-int8-") as tmp:
        work = Path(tmp)
        if not args.skip_quality:
            result["quality"] = []
            for arch, given, steps, data in (("dcgan", args.dcgan_run, args.dcgan_steps, "digits"),
                                             ("cyclegan", args.cyclegan_run, args.cyclegan_steps, "digits-unpaired")):
                run = Path(given) if given else None
                if run is None:
                    print(f"== {arch}: training {steps} steps on {data}", flush=True)
                    run = train(arch, {"data": data}, work / f"quality-{arch}", steps)
                print(f"== {arch}: scoring float32 and int8 with ganzoo's metrics", flush=True)
                result["quality"].append(quality(arch, run))
                print(tables({"quality": result["quality"][-1:]}), flush=True)
        if not args.skip_speed:
            batches = [int(b) for b in args.batches.split(",")]
            records = []
            for arch in SPEED:
                print(f"== {arch}: speed at {SPEED[arch][1]} px, batches {batches}", flush=True)
                records += speed(arch, work, args.rounds, batches, threads, progress)
            result["speed_records"] = records
            result["speed_rows"] = speed_rows(records)
    result["machine"] = {**before, "loadavg_before": before.get("loadavg"), "loadavg_after": machine().get("loadavg")}
    result["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print("\n" + tables(result))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
