"""WGAN quality bars on the 2D mixtures (VEEGAN / PacGAN protocol), and the rest of the zoo beside it.

Trains each configuration for several seeds on CPU with its defaults (``ganzoo train ARCH ...``), then
scores 2,500 samples of the (EMA) generator: modes captured, % high quality (within 3 sigma of a mode)
and reverse KL. Bars for the default ``wgan`` (WGAN-GP), on the median over seeds:

* ``ring8``:  8/8 modes, >= 90% high quality;
* ``grid25``: >= 24/25 modes, >= 85% high quality.

    python benchmarks/wgan_2d.py                          # every configuration, ring8 + grid25, 3 seeds
    python benchmarks/wgan_2d.py --configs wgan --data ring8 --seeds 0 --jobs 2
    python benchmarks/wgan_2d.py --configs wgan --set steps=500 --no-write

Prints a table, writes ``benchmarks/results/wgan_2d.json`` (with the machine: platform, CPU count,
torch version) and exits 1 when the wgan default misses a bar. ``--plot DIR`` saves a scatter of the
first seed of every configuration on each data set (``DIR/wgan_ring8.png``, ``DIR/vanilla_hinge_grid25.png``,
...): the loss pages in docs/losses show them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# label -> (architecture, settings as for --set); the first one is held to the bars
CONFIGS: dict[str, tuple[str, dict]] = {
    "wgan": ("wgan", {}),
    "wgan-clip": ("wgan", {"variant": "clip"}),
    "vanilla": ("vanilla", {}),  # its 2D defaults: LSGAN, 2D code, EMA 0.99
    "vanilla+bce": ("vanilla", {"loss": "bce"}),  # minimax BCE, the original GAN objective
    "vanilla+ns": ("vanilla", {"loss": "ns"}),
    "vanilla+hinge": ("vanilla", {"loss": "hinge"}),
    "vanilla+wgan-gp": ("vanilla", {"loss": "wgan", "penalty": "gp"}),
}
BARS = {"ring8": (8, 0.90), "grid25": (24, 0.85)}  # data -> (modes >=, high quality >=)
PUBLISHED = {  # PacGAN paper (Lin et al. 2018), tables 3-4: (modes, high quality %)
    "ring8": {"WGAN-GP": (6.8, 59.6), "PacGAN4": (7.8, 95.9)},
    "grid25": {"WGAN-GP": (24.2, 28.7), "PacGAN4": (24.8, 93.6)},
}


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads_per_run": 1,
            "python": platform.python_version()}


def run_one(label: str, data: str, seed: int, extra: dict, plot: str | None) -> dict:
    """Train one configuration on one data set with one seed; returns its metrics."""
    import torch

    torch.set_num_threads(1)  # the machine is shared; parallelism is across runs (--jobs)
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.plots import save_scatter
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.metrics.evaluate import generate_points
    from ganzoo.registry import get_registry

    arch, sets = CONFIGS[label]
    reg = get_registry()
    spec = reg.get("architecture", arch)
    cli = {**sets, "data": data, "seed": seed, "device": "cpu", **extra}
    r, h = flatten_user(spec, {}, cli)
    cfg = resolve(reg, spec, r, h)
    cfg["sample_every"] = cfg["checkpoint_every"] = cfg["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, RunDir(Path(tmp) / "run"), quiet=True)
        res = trainer.fit()
        if plot:
            pts = generate_points(trainer.p, 2500)
            title = f"{label} on {data}, seed {seed}: {res['modes']}/{res['modes_total']} modes, {100 * res['high_quality']:.1f}% HQ"
            save_scatter(pts, trainer.p.dataset.all_real(2500), plot, title=title)
    return {"label": label, "data": data, "seed": seed, "modes": res["modes"], "modes_total": res["modes_total"],
            "high_quality": res["high_quality"], "reverse_kl": res["reverse_kl"], "seconds": res["seconds"],
            "steps": cfg["steps"], "loss": cfg["loss"], "penalty": cfg["penalty"]}


def summarise(rows: list[dict]) -> dict:
    med = {k: statistics.median(r[k] for r in rows) for k in ("modes", "high_quality", "reverse_kl", "seconds")}
    return {**med, "modes_total": rows[0]["modes_total"], "steps": rows[0]["steps"], "loss": rows[0]["loss"],
            "penalty": rows[0]["penalty"], "seeds": [{k: r[k] for k in ("seed", "modes", "high_quality", "reverse_kl", "seconds")} for r in rows]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    ap.add_argument("--data", default="ring8,grid25")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each with one torch thread)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra setting for every configuration, e.g. steps=500")
    ap.add_argument("--plot", metavar="DIR", help="save a scatter of the first seed of every configuration here "
                    "(DIR/<configuration>_<data>.png, '+' and '-' written as '_')")
    ap.add_argument("--out", default=str(RESULTS / "wgan_2d.json"))
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the other configurations' results from the existing JSON (marked kept_from with its date)")
    args = ap.parse_args(argv)

    labels = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in labels if c not in CONFIGS]
    if bad:
        ap.error(f"unknown configuration(s) {bad}; choose from {', '.join(CONFIGS)}")
    datas = [d.strip() for d in args.data.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    extra = dict(s.split("=", 1) for s in args.sets)
    jobs = [(lab, d, s) for lab in labels for d in datas for s in seeds]
    plots = {(lab, d, seeds[0]): str(Path(args.plot) / f"{lab.replace('+', '_').replace('-', '_')}_{d}.png")
             for lab in labels if args.plot for d in datas}

    t0 = time.time()
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(run_one, lab, d, s, extra, plots.get((lab, d, s))): (lab, d, s) for lab, d, s in jobs}
        for fut in futs:
            row = fut.result()
            rows.append(row)
            print(f"  {row['label']:<16} {row['data']:<7} seed {row['seed']}: {row['modes']}/{row['modes_total']} modes, "
                  f"{100 * row['high_quality']:.1f}% HQ, rKL {row['reverse_kl']:.3f}, {row['seconds']:.0f} s", flush=True)

    table = {lab: {d: summarise([r for r in rows if r["label"] == lab and r["data"] == d]) for d in datas} for lab in labels}
    if args.keep and Path(args.out).is_file():
        old = json.loads(Path(args.out).read_text())
        for lab, per_data in old.get("results", {}).items():
            if lab not in table and all(d in per_data for d in datas):
                table[lab] = {d: {**per_data[d], "kept_from": per_data[d].get("kept_from", old.get("date"))} for d in datas}
        labels = [lab for lab in CONFIGS if lab in table]
    print(f"\nmedian of {len(seeds)} seed(s); high quality = within 3 sigma of a mode; perfect sampler ~98.9%")
    print(f"{'configuration':<18}{'loss+penalty':<14}" + "".join(f"{d + ' modes':>14}{'HQ %':>8}{'rKL':>7}{'s':>6}" for d in datas))
    for lab in labels:
        t = table[lab]
        first = t[datas[0]]
        line = f"{lab:<18}{first['loss'] + '+' + first['penalty']:<14}"
        for d in datas:
            m = t[d]
            line += f"{m['modes']:>9g}/{m['modes_total']:<4}{100 * m['high_quality']:>8.1f}{m['reverse_kl']:>7.3f}{m['seconds']:>6.0f}"
        print(line)
    for d in datas:
        for name, (modes, hq) in PUBLISHED.get(d, {}).items():
            print(f"  published {name} on {d}: {modes} modes, {hq}% HQ")
    best = {d: max(labels, key=lambda lab: (table[lab][d]["modes"], table[lab][d]["high_quality"])) for d in datas}
    print("best: " + ", ".join(f"{d}: {b}" for d, b in best.items()))

    failures = []
    if "wgan" in labels:
        for d in datas:
            if d in BARS:
                m, need_modes, need_hq = table["wgan"][d], *BARS[d]
                if m["modes"] < need_modes or m["high_quality"] < need_hq:
                    failures.append(f"wgan on {d}: {m['modes']} modes, {100 * m['high_quality']:.1f}% HQ "
                                    f"(bar: {need_modes} modes, {100 * need_hq:.0f}%)")
    record = {"benchmark": "wgan_2d", "machine": machine(), "seeds": seeds, "settings": extra,
              "bars": {d: {"modes": b[0], "high_quality": b[1]} for d, b in BARS.items()},
              "published": PUBLISHED, "results": table, "best": best, "failures": failures,
              "wall_seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d")}
    if not args.no_write:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    for f in failures:
        print(f"BAR MISSED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
