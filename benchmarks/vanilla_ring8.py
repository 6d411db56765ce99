"""The vanilla quality bar: ``ganzoo train vanilla`` with its defaults on ring8.

Bar (median over seeds): at least 7 of 8 modes, at least 90% high-quality samples (within 3 sigma of
a mode, sigma 0.01), and the whole command done in at most 2 minutes of CPU on 2 cores. Each seed runs
the real command, ``ganzoo train vanilla --seed S``, in a child process; the scores are the run's own
end-of-run evaluation (identical to ``ganzoo eval RUN --json``). CPU time (user + system of the child)
is the time judged: the machine this was written on is shared, so wall time measures the neighbours.
A grid25 row (``--data grid25``, same defaults) is reported for information, not judged.

    python benchmarks/vanilla_ring8.py                    # seeds 0 1 2 + one grid25 run
    python benchmarks/vanilla_ring8.py --seeds 0 --no-grid --keep runs/bench

Prints a table, writes ``benchmarks/results/vanilla_ring8.json`` naming the machine, and exits 1 if
the bar is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BAR = {"modes": 7, "high_quality": 0.90, "cpu_seconds": 120.0}


def machine(threads: int) -> dict:
    import torch

    import ganzoo

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": threads,
            "python": platform.python_version(), "ganzoo": ganzoo.__version__}


def train(data: str, seed: int, out: Path, threads: int, extra: list[str]) -> dict:
    """One ``ganzoo train vanilla`` in a child process: its scores, wall and CPU seconds."""
    cmd = [sys.executable, "-m", "ganzoo.cli.main", "train", "vanilla", "--data", data, "--seed", str(seed),
           "--device", "cpu", "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    before = os.times()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    ev = [r["eval"] for r in recs if "eval" in r][-1]
    m = re.search(r"trained (\d+) steps in ([\d.]+) s", p.stdout)
    steps = int(m.group(1)) if m else None
    return {
        "data": data, "seed": seed, "modes": ev["modes"], "modes_total": ev["modes_total"],
        "high_quality": ev["high_quality"], "reverse_kl": ev["reverse_kl"], "steps": steps,
        "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "loop_wall_s": float(m.group(2)) if m else None,
        "cpu_ms_per_step": round(1000 * cpu / steps, 2) if steps else None, "run": str(out),
        "last_sample": str(out / "samples" / f"step_{steps:06d}.png") if steps else None,
    }


def summarise(rows: list[dict]) -> dict:
    return {
        "seeds": [r["seed"] for r in rows],
        "modes_median": statistics.median(r["modes"] for r in rows),
        "high_quality_median": round(statistics.median(r["high_quality"] for r in rows), 4),
        "reverse_kl_median": round(statistics.median(r["reverse_kl"] for r in rows), 4),
        "cpu_s_max": max(r["cpu_s"] for r in rows),
        "wall_s_max": max(r["wall_s"] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each run (1 on a shared machine)")
    ap.add_argument("--no-grid", action="store_true", help="skip the grid25 row")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run directories under this folder")
    ap.add_argument("--json", type=Path, default=RESULTS / "vanilla_ring8.json")
    ap.add_argument("extra", nargs="*", help="more 'ganzoo train' options after --, e.g. -- --steps 2000")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        jobs = [("ring8", s) for s in args.seeds] + ([] if args.no_grid else [("grid25", args.seeds[0])])
        rows = []
        for data, seed in jobs:
            out = root / f"{data}-seed{seed}"
            if out.exists():
                raise SystemExit(f"{out} exists; pass another --keep folder")
            rows.append(train(data, seed, out, args.threads, args.extra))
            r = rows[-1]
            print(f"  {data} seed {seed}: {r['modes']}/{r['modes_total']} modes, {100 * r['high_quality']:.1f}% HQ, "
                  f"cpu {r['cpu_s']} s", file=sys.stderr, flush=True)

    ring = [r for r in rows if r["data"] == "ring8"]
    grid = [r for r in rows if r["data"] == "grid25"]
    s = summarise(ring)
    passed = (s["modes_median"] >= BAR["modes"] and s["high_quality_median"] >= BAR["high_quality"]
              and s["cpu_s_max"] <= BAR["cpu_seconds"])

    head = f"{'data':<8}{'seed':>5}{'modes':>8}{'HQ %':>8}{'rev KL':>8}{'steps':>7}{'CPU s':>8}{'ms/step':>9}{'wall s':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['data']:<8}{r['seed']:>5}{r['modes']:>5}/{r['modes_total']:<2}{100 * r['high_quality']:>8.1f}"
              f"{r['reverse_kl']:>8.3f}{r['steps']:>7}{r['cpu_s']:>8.1f}{r['cpu_ms_per_step']:>9.1f}{r['wall_s']:>8.1f}")
    print("-" * len(head))
    print(f"ring8 median: {s['modes_median']}/8 modes, {100 * s['high_quality_median']:.1f}% high quality, "
          f"reverse KL {s['reverse_kl_median']:.3f}; slowest run {s['cpu_s_max']:.1f} CPU s")
    print(f"bar: >= {BAR['modes']}/8 modes, >= {100 * BAR['high_quality']:.0f}% HQ, <= {BAR['cpu_seconds']:.0f} CPU s: "
          f"{'PASSED' if passed else 'MISSED'}")

    result = {
        "benchmark": "vanilla_ring8",
        "command": " ".join(["ganzoo train vanilla --seed S --device cpu", *args.extra, f"(OMP_NUM_THREADS={args.threads})"]),
        "machine": machine(args.threads),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "bar": BAR,
        "ring8": s,
        "grid25": summarise(grid) if grid else None,
        "passed": passed,
        "rows": [{k: v for k, v in r.items() if k not in ("run", "last_sample")} for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
