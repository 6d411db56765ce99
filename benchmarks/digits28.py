"""dcgan and cgan on MNIST-format files at their native 28x28, with default settings.

Writes the embedded digits (1,797 real 8x8 digits from scikit-learn) upsampled to 28x28 as IDX
files (``train-images-idx3-ubyte`` + ``train-labels-idx1-ubyte``) into a temporary folder -- the
layout of MNIST, nothing is downloaded or committed -- then trains ``ganzoo train dcgan --data
idx:DIR`` and ``ganzoo train cgan --data idx:DIR`` with their defaults (so the data's 28x28 is used,
see ganzoo/engine/image_size.py) and scores each run with ``ganzoo eval RUN --json``. Bars, as for
the 16 px digits (benchmarks/dcgan_digits.py, cgan_digits.py):

* dcgan: all 10 classes covered, classifier IS >= 8, classifier FD <= 3x the real-vs-real floor;
* cgan: conditional accuracy >= 90%.

    python benchmarks/digits28.py                   # one seed each, dcgan and cgan side by side
    python benchmarks/digits28.py --archs dcgan --seeds 0 1 2 --jobs 3   # dcgan's 12,000 steps at 28 px: ~70 min on 2 cores
    python benchmarks/digits28.py --seeds 0 1 2 --archs cgan
    python benchmarks/digits28.py --steps 500 --keep /tmp/d28      # a quick look
    python benchmarks/digits28.py --score /tmp/d28/dcgan-seed0      # score a kept run as it stands (its last checkpoint)

Prints a table, writes ``benchmarks/results/digits28.json`` (machine, load average) and exits 1
when a bar is missed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import statistics
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import RESULTS, finish, machine  # same folder: run as a script
from cgan_digits import CGAN_BARS
from dcgan_digits import DCGAN_BARS, _passes, run_seed

from ganzoo.bench.worker import cpu_name

BARS = {"dcgan": DCGAN_BARS, "cgan": CGAN_BARS}


def write_idx28(folder: Path) -> int:
    """The embedded digits at 28x28 as IDX files in ``folder``; returns the image count."""
    import torch
    from sklearn.datasets import load_digits

    from ganzoo_plugins.data._util import resize_uint8

    d = load_digits()
    x = torch.from_numpy(np.rint(np.asarray(d.images) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    x = resize_uint8(x, 28).numpy()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
    labels = np.asarray(d.target, dtype=np.uint8)
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.tobytes())
    return len(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="dcgan,cgan")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the architecture's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at the same time, one process and thread each")
    ap.add_argument("--keep", default=None, help="keep the IDX files and run directories under this folder")
    ap.add_argument("--json", default=str(RESULTS / "digits28.json"))
    ap.add_argument("--score", nargs="+", default=None, metavar="RUN_DIR",
                    help="score these (kept, possibly unfinished) runs at their last checkpoint instead of training")
    ap.add_argument("--note", default="", help="with --score: how the runs were trained, for the JSON")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    if args.score:
        return score_runs([Path(p) for p in args.score], Path(args.json), args.note)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="digits28-"))
    n = write_idx28(root / "idx")
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    jobs = [(a, s, args.steps, [f"data=idx:{root / 'idx'}", *args.sets], root / f"{a}-seed{s}", 1)
            for a in archs for s in args.seeds]
    load_before = [round(v, 2) for v in os.getloadavg()]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs), mp_context=ctx) as pool:
        rows = list(pool.map(run_seed, *zip(*jobs)))
    load_after = [round(v, 2) for v in os.getloadavg()]
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    for (arch, *_), row in zip(jobs, rows):
        row["arch"] = arch
        row.pop("run_dir", None)

    missed, summary = [], {}
    print(f"\n{'arch':<6} {'seeds':>5} {'size':>5} {'steps':>6} {'train s':>8}  metric                  median   bar")
    for arch in archs:
        mine = [r for r in rows if r["arch"] == arch]
        summary[arch] = {}
        for key, (op, bar) in BARS[arch].items():
            bar = mine[0]["num_classes"] if bar == "classes" else bar
            med = statistics.median(r[key] for r in mine)
            ok = _passes(med, op, bar)
            summary[arch][key] = {"median": med, "bar": f"{op} {bar}", "met": ok}
            if not ok:
                missed.append(f"{arch} {key} {med:.3g} (bar {op} {bar})")
            print(f"{arch:<6} {len(mine):>5} {mine[0]['image_size']:>5} {mine[0]['steps']:>6} "
                  f"{statistics.median(r['train_seconds'] for r in mine):>8.0f}  {key:<22} {med:>7.3f}   {op} {bar}"
                  f"{'' if ok else '  MISSED'}")
    result = {
        "benchmark": "digits28", "data": f"embedded digits upsampled to 28x28, written as IDX ({n} images)",
        "settings": "defaults of 'ganzoo train ARCH --data idx:DIR' " + " ".join(args.sets),
        "machine": machine(1, cpu=cpu_name(), loadavg_before=load_before, loadavg_after=load_after, jobs=args.jobs,
                           note="train_seconds are wall-clock with one torch thread per run and --jobs runs side by "
                                "side; the load averages say how busy the machine was"),
        "runs": rows, "summary": summary,
    }
    return finish(result, Path(args.json), missed)


def score_runs(run_dirs: list[Path], out: Path, note: str = "") -> int:
    """``ganzoo eval`` on runs at their last checkpoint (a copy, so a run still training is not
    disturbed); records the step the checkpoint holds, and the medians over the runs of each
    architecture against its bars (as for trained runs)."""
    import tomllib

    import torch

    from dcgan_digits import eval_run

    rows = []
    for rd in run_dirs:
        cfg = tomllib.loads((rd / "config.toml").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / rd.name
            (copy / "checkpoints").mkdir(parents=True)
            shutil.copy(rd / "config.toml", copy / "config.toml")
            shutil.copy(rd / "checkpoints" / "last.pt", copy / "checkpoints" / "last.pt")
            step = int(torch.load(copy / "checkpoints" / "last.pt", weights_only=True)["step"])
            metrics = eval_run(copy, 1)
        row = {"arch": cfg["arch"], "seed": cfg["seed"], "image_size": cfg["image_size"], "steps_configured": cfg["steps"],
               "steps_trained": step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        if row.get("classifier_fd_floor"):
            row["fd_ratio"] = row["classifier_fd"] / row["classifier_fd_floor"]
        for key, (op, bar) in BARS[row["arch"]].items():
            bar = 10 if bar == "classes" else bar
            row.setdefault("bars", {})[key] = {"value": row.get(key), "bar": f"{op} {bar}", "met": _passes(row.get(key, 0), op, bar)}
        print(json.dumps(row))
        rows.append(row)
    summary = {}
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch]
        for key, (op, bar) in BARS[arch].items():
            bar = 10 if bar == "classes" else bar
            med = statistics.median(r.get(key, 0) for r in mine)
            summary.setdefault(arch, {})[key] = {"median": med, "bar": f"{op} {bar}", "met": _passes(med, op, bar)}
            print(f"{arch:<6} {len(mine)} runs  {key:<16} median {med:>7.3f}   {op} {bar}   "
                  f"{'met' if summary[arch][key]['met'] else 'MISSED'}")
    result = {"benchmark": "digits28", "mode": "scored at each run's last checkpoint (steps_trained)",
              "machine": machine(1, cpu=cpu_name(), loadavg=[round(v, 2) for v in os.getloadavg()],
                                 note=note or "the load average says how busy the machine was"),
              "summary": summary, "runs": rows}
    # a bar counts on the median over the runs, as for trained runs; single runs' misses are in "runs"
    missed = [f"{a} {k} median" for a, keys in summary.items() for k, v in keys.items() if not v["met"]]
    return finish(result, out, missed)


if __name__ == "__main__":
    sys.exit(main())
