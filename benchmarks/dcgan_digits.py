"""DCGAN quality bar on the embedded ``digits`` set (1,797 real 8x8 digits, served at 16 px).

Trains ``ganzoo train dcgan`` with its defaults for several seeds on CPU, then scores each run with
``ganzoo eval RUN --json`` (a small CNN classifier trained on the real digits stands in for
Inception). Bars, on the median over seeds:

* ``classes_covered``  -- all 10 digit classes appear among the samples;
* ``classifier_is``    -- Inception-Score-like figure from the classifier, >= 8 (10 is perfect);
* ``fd_ratio``         -- classifier Fréchet distance / the real-vs-real floor, <= 3.

    python benchmarks/dcgan_digits.py                      # 3 seeds, the architecture's defaults
    python benchmarks/dcgan_digits.py --jobs 2                # two seeds at a time, 1 thread each
    python benchmarks/dcgan_digits.py --seeds 0 --steps 500 --set ngf=32 --keep /tmp/dc

Prints a table, writes ``benchmarks/results/dcgan_digits.json`` (with the machine: platform, CPU
count, torch version) and exits 1 when a median misses its bar. ``--grid PATH`` copies the last
sample grid of the first seed (the picture in docs/architectures/dcgan.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import RESULTS, finish, machine, trainer_for  # same folder: run as a script
# metric -> (">=" or "<=", threshold); "classes" is replaced by the data's class count
DCGAN_BARS = {"classes_covered": (">=", "classes"), "classifier_is": (">=", 8.0), "fd_ratio": ("<=", 3.0)}


def train_seed(arch: str, seed: int, steps: int | None, sets: list[str], out: Path) -> dict:
    trainer = trainer_for(arch, seed, steps, sets, out)
    cfg = trainer.cfg
    t0 = time.perf_counter()
    trainer.fit()
    return {"seed": seed, "steps": cfg["steps"], "image_size": cfg["image_size"],
            "train_seconds": round(time.perf_counter() - t0, 1), "num_classes": trainer.p.dataset.info.num_classes}


def eval_run(run_dir: Path, threads: int) -> dict:
    """``ganzoo eval RUN --json``, exactly as a user runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    exe = shutil.which("ganzoo") or "ganzoo"
    proc = subprocess.run([exe, "eval", str(run_dir), "--json"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"ganzoo eval {run_dir} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_seed(arch: str, seed: int, steps: int | None, sets: list[str], out: Path, threads: int) -> dict:
    """Train one seed, then score it with ``ganzoo eval``."""
    torch.set_num_threads(threads)
    rec = train_seed(arch, seed, steps, sets, out)
    metrics = eval_run(out, threads)
    rec.update({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if "classifier_fd" in rec and rec.get("classifier_fd_floor"):
        rec["fd_ratio"] = rec["classifier_fd"] / rec["classifier_fd_floor"]
    rec["run_dir"] = str(out)
    print(json.dumps(rec), file=sys.stderr, flush=True)
    return rec


def _passes(value: float, op: str, bar: float) -> bool:
    return value >= bar if op == ">=" else value <= bar


def bench(arch: str, bars: dict, name: str, description: str) -> int:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the architecture's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="any 'ganzoo train --set' assignment, e.g. --set ngf=32")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (the machine is shared)")
    ap.add_argument("--jobs", type=int, default=1, help="seeds trained at the same time, one process each")
    ap.add_argument("--keep", default=None, help="keep the run directories under this folder (default: deleted)")
    ap.add_argument("--json", default=None, help=f"write results here instead of benchmarks/results/{name}.json")
    ap.add_argument("--grid", default=None, help="copy the first seed's final sample grid to this PNG")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix=f"{name}-"))
    jobs = [(arch, seed, args.steps, args.sets, root / f"seed{seed}", args.threads) for seed in args.seeds]
    if args.jobs > 1:  # one process per seed, each with --threads threads
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            rows = list(pool.map(run_seed, *zip(*jobs)))
    else:
        rows = [run_seed(*job) for job in jobs]
    if args.grid:
        grids = sorted((root / f"seed{args.seeds[0]}" / "samples").glob("step_*.png"))
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(grids[-1], args.grid)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        for r in rows:
            r.pop("run_dir")

    classes = rows[0]["num_classes"]
    bars = {k: (op, classes if v == "classes" else v) for k, (op, v) in bars.items()}
    absent = [k for k in bars if any(k not in r for r in rows)]
    if absent:
        print(f"ganzoo eval reported no {', '.join(absent)}: is ganzoo.metrics.image installed?", file=sys.stderr)
        return 1
    extra = ("classifier_is", "fd_ratio", "classifier_fd", "classifier_fd_floor", "train_seconds")
    keys = list(bars) + [k for k in extra if k not in bars]
    median = {k: statistics.median(r[k] for r in rows if k in r) for k in keys if all(k in r for r in rows)}
    print(f"\n{arch} on digits at {rows[0]['image_size']} px, {len(rows)} seed(s), {rows[0]['steps']} steps, "
          f"{args.threads} torch thread(s), {' '.join(args.sets) or 'defaults'}")
    print(f"{'metric':<22}" + "".join(f"{'seed ' + str(r['seed']):>10}" for r in rows) + f"{'median':>10}{'bar':>10}")
    for k in median:
        bar = f"{bars[k][0]}{bars[k][1]:g}" if k in bars else ""
        print(f"{k:<22}" + "".join(f"{r[k]:>10.3f}" for r in rows) + f"{median[k]:>10.3f}{bar:>10}")
    missed = [k for k, (op, v) in bars.items() if not _passes(median[k], op, v)]

    result = {"benchmark": name, "arch": arch, "data": "digits", "machine": machine(args.threads, jobs=args.jobs),
              "settings": args.sets, "bars": {k: f"{op} {v:g}" for k, (op, v) in bars.items()}, "median": median,
              "runs": rows, "passed": not missed, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    return finish(result, Path(args.json) if args.json else RESULTS / f"{name}.json", missed)


if __name__ == "__main__":
    sys.exit(bench("dcgan", DCGAN_BARS, "dcgan_digits", __doc__.splitlines()[0]))
