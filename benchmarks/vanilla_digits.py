"""Does the zoo's ``vanilla`` MLP GAN collapse on real digits? Side by side with the tutorial setting.

The claim checked: "the tutorials' own MLP GAN (minimax BCE, Adam 2e-4 with default betas
(0.9, 0.999)) collapses on real MNIST within 5,000 steps (4 of 10 classes)". Both configurations
train ``vanilla`` on the embedded ``digits`` (1,797 real 8x8 digits) for the same number of steps:

* ``zoo``      -- ``ganzoo train vanilla --data digits`` with its defaults;
* ``tutorial`` -- the same plus ``--loss bce --lr 2e-4 --set beta1=0.9``.

Every run is scored part-way and at the end with the ``ganzoo eval`` image metrics (a small CNN
trained on the real digits stands in for Inception): classes covered, classifier IS and classifier
FD against the real-vs-real floor; for the sampled generator (the EMA copy, as ``ganzoo eval``
reports) and for the raw generator. Medians over seeds.

    python benchmarks/vanilla_digits.py                 # 3 seeds x 5000 steps x 2 configs (~12 CPU min)
    python benchmarks/vanilla_digits.py --steps 500 --seeds 0

Prints a table and writes ``benchmarks/results/vanilla_digits.json`` naming the machine.
Uses one torch thread: the machine this runs on is shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {
    "zoo": {},
    "tutorial": {"loss": "bce", "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.9},
}
KEYS = ("classes_covered", "classifier_is", "classifier_fd", "classifier_fd_floor", "class_kl")
REAL = ("classes_covered_real", "classifier_is_real", "classifier_fd_floor", "class_kl_real", "classifier_accuracy")


def machine() -> dict:
    import ganzoo

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "ganzoo": ganzoo.__version__}


def run_one(name: str, seed: int, steps: int, eval_at: list[int], workdir: Path) -> dict:
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Callback, Trainer
    from ganzoo.metrics.image import image_metrics
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", "vanilla")
    run, hps = flatten_user(spec, {}, {"data": "digits", "steps": steps, "seed": seed, "device": "cpu",
                                       **CONFIGS[name]})
    cfg = resolve(reg, spec, run, hps)
    evals: list[dict] = []
    real: dict = {}

    def score(parts) -> dict:
        r = image_metrics(parts)
        real.update({k: r[k] for k in REAL})  # the data's own figures: the same in every evaluation
        return {k: r[k] for k in KEYS} | {"class_counts": r["class_counts"]}

    class Probe(Callback):
        def on_step_end(self, trainer, step, logs):
            if step in eval_at:
                raw = dataclasses.replace(trainer.p, ema={})
                evals.append({"step": step, "sampled": score(trainer.p), "raw": score(raw)})

    trainer = Trainer(cfg, RunDir(str(workdir / f"{name}-{seed}")), callbacks=[Probe()], quiet=True)
    t0 = time.perf_counter()
    trainer.fit()
    settings = {k: cfg[k] for k in ("loss", "lr_g", "lr_d", "beta1", "beta2", "batch_size", "ema")}
    return {"config": name, "seed": seed, "settings": settings | {"hparams": cfg["hparams"]},
            "seconds": round(time.perf_counter() - t0, 1), "evals": evals, "real": real}


def medians(runs: list[dict], step: int, which: str) -> dict:
    rows = [e[which] for r in runs for e in r["evals"] if e["step"] == step]
    out = {k: statistics.median(row[k] for row in rows) for k in KEYS}
    out["classes_covered_per_seed"] = [row["classes_covered"] for row in rows]
    out["fd_ratio"] = out["classifier_fd"] / out["classifier_fd_floor"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=RESULTS / "vanilla_digits.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from ganzoo.registry import get_registry

    default_steps = int(get_registry().get("architecture", "vanilla").defaults.get("steps", 0))
    eval_at = sorted({max(1, args.steps // 5), max(1, args.steps // 2), args.steps}
                     | ({default_steps} if 0 < default_steps < args.steps else set()))
    runs = []
    with tempfile.TemporaryDirectory(prefix="vanilla_digits_") as tmp:
        for name in CONFIGS:
            for seed in args.seeds:
                r = run_one(name, seed, args.steps, eval_at, Path(tmp))
                runs.append(r)
                last = r["evals"][-1]["sampled"]
                print(f"  {name} seed {seed}: {r['seconds']}s, classes {last['classes_covered']}, "
                      f"IS {last['classifier_is']:.2f}, FD {last['classifier_fd']:.1f}", file=sys.stderr, flush=True)
    summary = {name: {str(s): {w: medians([r for r in runs if r["config"] == name], s, w) for w in ("sampled", "raw")}
                      for s in eval_at} for name in CONFIGS}
    print(f"vanilla on digits (8x8), {len(args.seeds)} seeds, medians; FD floor = real half vs half; "
          f"'sampled' = EMA generator (what ganzoo eval scores), 'raw' = G itself")
    print(f"{'config':<9} {'step':>5} {'G':<8} {'classes':>7} {'per seed':>10} {'IS':>6} {'FD':>8} {'floor':>6} {'FD/floor':>8}")
    real = runs[0]["real"]
    print(f"{'real data':<24} {real['classes_covered_real']:>7} {'':>10} {real['classifier_is_real']:>6.2f} "
          f"{real['classifier_fd_floor']:>8.1f} {real['classifier_fd_floor']:>6.2f} {1.0:>8.1f}")
    for name in CONFIGS:
        for s in eval_at:
            for w in ("sampled", "raw"):
                m = summary[name][str(s)][w]
                per = ",".join(map(str, m["classes_covered_per_seed"]))
                print(f"{name:<9} {s:>5} {w:<8} {m['classes_covered']:>7} {per:>10} {m['classifier_is']:>6.2f} "
                      f"{m['classifier_fd']:>8.1f} {m['classifier_fd_floor']:>6.2f} {m['fd_ratio']:>8.1f}")
    record = {"benchmark": "vanilla_digits", "machine": machine(), "steps": args.steps, "seeds": args.seeds,
              "eval_at": eval_at, "vanilla_default_steps": default_steps, "configs": CONFIGS, "real": real,
              "summary": summary, "runs": runs,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
