"""ONNX Runtime vs PyTorch inference for every registered architecture at its reference size.

For each architecture in the registry: train a few steps at its reference size (DCGAN and WGAN
64x64 RGB, CycleGAN 128x128 RGB, vanilla and cgan 28x28 digits; random RGB images written to a
temp folder, or the embedded digits resized), export it (verified), then time PyTorch eager,
torch.compile and ONNX Runtime CPU with ``ganzoo.bench`` -- every backend in its own process,
loaded once, then timed in interleaved rounds (``ganzoo.bench.run_jobs``) so that the machine's
drifting speed hits every backend alike. ONNX Runtime is run with several session options (graph
optimisation level, IOBinding, thread spinning, the CPU graph or the exported one), interleaved
too; the best variant per model is the "ort-cpu" figure and the JSON says which won. Ratios are
the median of the ratios measured within one round (see ``paired``).

Writes benchmarks/results/onnx_zoo.json (records + machine) and the table in docs/benchmarks.md
(between the onnx_zoo markers). Prints the issue's targets as ratios measured in this one run.

    python benchmarks/onnx_zoo.py                 # the full run (~15-30 min on 2 cores; a quiet machine)
    python benchmarks/onnx_zoo.py --quick         # validates the script in a few minutes (numbers are rough)
    python benchmarks/onnx_zoo.py --archs dcgan,cyclegan --no-docs
    python benchmarks/onnx_zoo.py --from-json benchmarks/results/onnx_zoo.json   # re-render docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "onnx_zoo.json"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- onnx_zoo:begin -->", "<!-- onnx_zoo:end -->"

# architecture -> (data, image size, batch sizes). Benchmarks may name architectures; the engine never does.
REFERENCE = {
    "dcgan": ("rgb", 64, (1, 8, 64)),
    "wgan": ("rgb", 64, (1, 8, 64)),
    "cyclegan": ("unpaired", 128, (1, 4, 16)),
    "vanilla": ("digits", 28, (1, 8, 64)),
    "cgan": ("digits", 28, (1, 8, 64)),
}
FALLBACK = {"image": ("rgb", 32, (1, 8, 64)), "unpaired": ("unpaired", 64, (1, 4, 16)), "points": ("ring8", 0, (1, 64, 1024))}
DATA_LABEL = {"rgb": "random RGB", "unpaired": "random RGB, unpaired", "digits": "digits (gray)"}
# ONNX Runtime session variants tried per model: name -> run_bench options
ORT_VARIANTS = {  # "graph": the exact CPU rewrite of ganzoo.deploy.cpu_graph ("cpu", the runtime's default) or the plain export
    "all": dict(opt_level="all", iobinding=False),
    "all+plain-graph": dict(opt_level="all", iobinding=False, graph="plain"),
    "all+iobinding": dict(opt_level="all", iobinding=True),
    "extended": dict(opt_level="extended", iobinding=False),
    "basic": dict(opt_level="basic", iobinding=False),
    "all+no-spin": dict(opt_level="all", iobinding=False, spinning=False),
    "all+batch-parallel": dict(opt_level="all", iobinding=False, batch_parallel=True),  # a batch >= threads: sliced
    "all+1-thread": dict(opt_level="all", iobinding=False, threads=1),  # no hand-off between threads (tiny models)
}
TARGETS = [  # (arch, batch, min ratio ORT CPU / eager), from issue 4
    ("dcgan", 1, 3.0), ("dcgan", 64, 1.5), ("cyclegan", 1, 1.5),
]


def random_images(folder: Path, n: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        # smooth random colour fields (not pure noise): what a resized photo roughly looks like
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:03d}.png")


def data_arg(kind: str, size: int, tmp: Path) -> dict:
    if kind == "rgb":
        for i, c in enumerate(("a", "b")):
            random_images(tmp / f"rgb{size}" / c, 8, size, seed=i)
        return {"data": f"folder:{tmp / f'rgb{size}'}", "image_size": size}
    if kind == "unpaired":
        for i, c in enumerate(("trainA", "trainB")):
            random_images(tmp / f"unpaired{size}" / c, 8, size, seed=10 + i)
        return {"data": f"unpaired:{tmp / f'unpaired{size}'}", "image_size": size}
    if kind == "digits":
        return {"data": "digits", "image_size": size}
    return {"data": kind}


def train(arch: str, settings: dict, out: Path) -> Path:
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", arch)
    run = {"steps": 2, "batch_size": 4, "seed": 0, "device": "cpu", "sample_every": 1000, "log_every": 1,
           "eval_samples": 100, **settings}
    r, h = flatten_user(spec, {}, run)
    Trainer(resolve(reg, spec, r, h), RunDir(out), quiet=True).fit()
    return out


def p50(records, **match) -> float | None:
    """The p50 of the matching record (with rounds: the median of its rounds' p50)."""
    for r in records:
        if all(r.get(k) == v for k, v in match.items()) and r.get("p50_ms") is not None:
            return r["p50_ms"]
    return None


def choose_best(recs, variants, batches) -> str | None:
    """The best ORT variant for one model: the lowest geometric mean of p50 over the batch sizes; the
    records of the others lose their ``best`` mark."""
    scores = {}
    for name in variants:
        vals = [p50(recs, backend="ort-cpu", variant=name, batch_size=b) for b in batches]
        if all(v is not None for v in vals):
            scores[name] = math.exp(sum(math.log(v) for v in vals) / len(vals))
    best = min(scores, key=scores.get) if scores else None
    for r in recs:
        r["best"] = r["backend"] != "ort-cpu" or r.get("variant") == best
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default="", help="comma-separated architectures (default: every registered one)")
    ap.add_argument("--quick", action="store_true", help="short timings, two ORT variants: validates the script")
    ap.add_argument("--threads", type=int, default=0, help="threads for every backend (default: all CPUs)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile on 2 cores)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite the table in docs/benchmarks.md")
    ap.add_argument("--out", default=str(RESULTS), help="results JSON")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleave every backend and ORT variant this many rounds (ganzoo.bench.run_jobs): latencies "
                         "are medians over rounds, ratios the median of the ratios within a round (the machine's speed drifts)")
    ap.add_argument("--workdir", default="", help="keep runs and exports here (default: a temp folder)")
    ap.add_argument("--from-json", default="", help="only re-render the table (and docs) from an earlier results JSON")
    ap.add_argument("--resummarise", action="store_true",
                    help="with --from-json: choose the best variants and take the ratios again from its records, "
                         "and write them back into that JSON")
    args = ap.parse_args(argv)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        if args.resummarise:  # the same measurements, summarised again with this script's statistics
            for arch, m in result["models"].items():
                recs = [r for r in result["records"] if r.get("arch") == arch]
                batches = sorted({r["batch_size"] for r in recs})
                m["best_ort_variant"] = choose_best(recs, result["ort_variants"], batches)
            result["summary"] = summarise(result["records"], result["models"])
            Path(args.from_json).write_text(json.dumps(result, indent=1) + "\n")
        table = markdown(result)
        print(table)
        if not args.no_docs:
            write_docs(table)
        return 0

    import torch

    torch.set_num_threads(1)  # training here is only a few steps; the timed backends set their own threads
    from ganzoo.bench import bench_jobs, format_table, machine, run_jobs
    from ganzoo.registry import get_registry

    reg = get_registry()
    archs = [a for a in args.archs.split(",") if a] or reg.names("architecture")
    threads = args.threads or os.cpu_count() or 1
    # per round, per backend and batch size (a worker stays loaded between rounds, so a short warm-up is enough)
    timing = dict(warmup_s=0.2, min_time_s=0.3, min_iters=3) if args.quick else dict(warmup_s=0.3, min_time_s=1.0, min_iters=5)
    variants = dict(list(ORT_VARIANTS.items())[:2]) if args.quick else ORT_VARIANTS
    if args.quick:
        args.rounds = min(args.rounds, 2)
    torch_backends = ["eager"] + ([] if args.no_compile else ["compile"])
    started = time.time()
    load_before = machine().get("loadavg")
    records: list[dict] = []
    models: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ganzoo-onnx-zoo-") as tmpdir:
        work = Path(args.workdir) if args.workdir else Path(tmpdir)
        work.mkdir(parents=True, exist_ok=True)
        for arch in archs:
            spec = reg.get("architecture", arch)
            kind, size, batches = REFERENCE.get(arch) or FALLBACK[spec.data_kinds[0]]
            if args.quick:
                batches = batches[:2]
            settings = data_arg(kind, size, work)
            print(f"== {arch}: training 2 steps on {settings['data']} at {size or '-'} px", flush=True)
            t0 = time.time()
            run = train(arch, settings, work / arch)
            net = spec.exports[0].network
            models[arch] = {"data": DATA_LABEL.get(kind, kind), "image_size": size, "network": net,
                            "train_s": round(time.time() - t0, 1)}
            tags = {"arch": arch, "network": net}
            jobs, _ = bench_jobs(run, torch_backends, batches, net=net, threads=threads, tags=tags, **timing)
            for name, opts in variants.items():
                jobs += bench_jobs(run, ["ort-cpu"], batches, net=net, tags={**tags, "variant": name},
                                   **{"threads": threads, **opts, **timing})[0]
            recs = run_jobs(jobs, rounds=args.rounds, progress=lambda m: print("  " + m, flush=True))
            models[arch]["best_ort_variant"] = choose_best(recs, list(variants), batches)
            models[arch]["rounds"] = args.rounds
            records += recs
            print(format_table([r for r in recs if r["best"]]), flush=True)

    summary = summarise(records, models)
    result = {
        "benchmark": "onnx_zoo", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": {**machine(), "loadavg_before": load_before},
        "command": "python benchmarks/onnx_zoo.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
        "quick": args.quick, "rounds": args.rounds, "threads": threads, "timing": timing, "ort_variants": list(variants),
        "seconds": round(time.time() - started, 1), "models": models, "summary": summary, "records": records,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    table = markdown(result)
    print("\n" + table)
    if not args.no_docs:
        write_docs(table)
    print(f"\nresults: {out}" + ("" if args.no_docs else f"; table: {DOCS}"))
    return 0


def paired(records, arch, b, num: dict, den: dict) -> tuple[float | None, list[float]]:
    """num p50 / den p50: the median over rounds of the ratio measured within one round (the two
    timed seconds apart), and those per-round ratios. The ratio of the two p50s without rounds."""
    n = next((r for r in records if r.get("arch") == arch and r["batch_size"] == b and r.get("p50_ms") is not None
              and all(r.get(k) == v for k, v in num.items())), None)
    d = next((r for r in records if r.get("arch") == arch and r["batch_size"] == b and r.get("p50_ms") is not None
              and all(r.get(k) == v for k, v in den.items())), None)
    if n is None or d is None:
        return None, []
    if n.get("rounds_p50_ms") and d.get("rounds_p50_ms") and len(n["rounds_p50_ms"]) == len(d["rounds_p50_ms"]):
        per = [round(x / y, 3) for x, y in zip(n["rounds_p50_ms"], d["rounds_p50_ms"])]
        return round(statistics.median(per), 2), per
    return round(n["p50_ms"] / d["p50_ms"], 2), []


def summarise(records, models) -> dict:
    rows, checks = [], []
    for arch, m in models.items():
        ort_ = {"backend": "ort-cpu", "variant": m["best_ort_variant"]}
        for b in sorted({r["batch_size"] for r in records if r.get("arch") == arch}):
            e = p50(records, arch=arch, backend="eager", batch_size=b)
            c = p50(records, arch=arch, backend="compile", batch_size=b)
            o = p50(records, arch=arch, batch_size=b, **ort_)
            vs_e, per_e = paired(records, arch, b, {"backend": "eager"}, ort_)
            vs_c, per_c = paired(records, arch, b, {"backend": "compile"}, ort_)
            rows.append({"arch": arch, "batch_size": b, "eager_ms": e, "compile_ms": c, "ort_ms": o,
                         "ort_vs_eager": vs_e, "ort_vs_compile": vs_c,
                         "ort_vs_eager_rounds": per_e, "ort_vs_compile_rounds": per_c})
    for arch, b, need in TARGETS:
        row = next((r for r in rows if r["arch"] == arch and r["batch_size"] == b), None)
        got = row["ort_vs_eager"] if row else None
        checks.append({"target": f"ORT CPU >= {need}x eager, {arch} batch {b}", "ratio": got,
                       "pass": None if got is None else got >= need})
    slower = [r for r in rows if (r["ort_vs_eager"] or 9) < 1 or (r["ort_vs_compile"] or 9) < 1]
    checks.append({"target": "ORT CPU never slower than eager or torch.compile", "ratio": None,
                   "pass": not slower, "slower": [(r["arch"], r["batch_size"]) for r in slower]})
    return {"rows": rows, "targets": checks}


def _fmt(v, unit=""):
    return "n/a" if v is None else (f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}")


def _ratio(row, other) -> str:
    per = row.get(f"ort_vs_{other}_rounds") or []
    text = _fmt(row[f"ort_vs_{other}"], "x")
    return text + (f" ({min(per):.2f}-{max(per):.2f})" if len(per) > 1 else "")


def markdown(result) -> str:
    m = result["machine"]
    load = (m.get("loadavg_before") or [0])[0]
    busy = load > (m.get("cpu_count") or 1)
    lines = [
        f"Measured {result.get('date', '?')} on {m.get('cpu')} ({m.get('cpu_count')} CPUs), "
        f"{m.get('platform')}, torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, {result['threads']} threads, "
        f"load average before {m.get('loadavg_before')}{' -- QUICK run, rough numbers' if result['quick'] else ''}.",
        f"Command: `{result['command']}`."
        + (f" Every backend and ORT variant was loaded once and timed in {result['rounds']} interleaved rounds: "
           "latencies are the median of the rounds' p50, ratios the median of the ratios measured within one round "
           "(their range over rounds in brackets; every round is in the JSON)." if result.get("rounds", 1) > 1 else "")
        + (f" **The machine was busy (load {load} on {m.get('cpu_count')} CPUs): these numbers are not representative.**" if busy else ""),
        "",
        "| model | size | batch | eager p50 ms | compile p50 ms | ORT CPU p50 ms | ORT variant | ORT / eager | ORT / compile |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in result["summary"]["rows"]:
        md = result["models"][r["arch"]]
        size = f"{md['image_size']}x{md['image_size']} {DATA_LABEL.get(md['data'], md['data'])}" if md["image_size"] else md["data"]
        lines.append(f"| {r['arch']}/{md['network']} | {size} | {r['batch_size']} | {_fmt(r['eager_ms'])} | {_fmt(r['compile_ms'])} | "
                     f"{_fmt(r['ort_ms'])} | {md['best_ort_variant']} | {_ratio(r, 'eager')} | {_ratio(r, 'compile')} |")
    lines += ["", "| target | measured | pass |", "|---|---:|---|"]
    for t in result["summary"]["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['ratio'], 'x')} | {'n/a' if t['pass'] is None else ('yes' if t['pass'] else 'NO')} |")
    return "\n".join(lines)


def write_docs(table: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
