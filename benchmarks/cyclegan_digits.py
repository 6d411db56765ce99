"""CycleGAN quality bar on the embedded ``digits-unpaired`` set (A = digits, B = 255 - A).

Trains ``ganzoo train cyclegan`` with its defaults for several seeds on CPU and scores G_AB on every
domain-A image (and G_BA on every domain-B image):

* label preservation -- an RBF-SVM digit classifier trained on the *real* images of the target
  domain agrees that G_AB(a) shows a's digit (bar: >= 90%, median over seeds);
* domain accuracy -- a logistic-regression A-vs-B classifier trained on real A and real B says
  G_AB(a) is domain B (bar: >= 95%);
* truth L1 -- mean |G_AB(a) - (255 - a)| in [0, 1] pixel units (the known ground truth);
* cycle L1 -- mean |G_BA(G_AB(a)) - a| in [0, 1] pixel units.

The classifiers are fitted on real data only, never on generated images; each is also scored on the
ground-truth translation 255 - a (``oracle``) so the bar can be read against what a perfect
translator would get. When ``ganzoo.metrics.image`` is installed its numbers are recorded as well.

    python benchmarks/cyclegan_digits.py                 # 3 seeds, the architecture's defaults
    python benchmarks/cyclegan_digits.py --seeds 0 --steps 300 --threads 2

Prints a table, writes ``benchmarks/results/cyclegan_digits.json`` (with the machine: platform, CPU count,
torch version) and exits 1 when a median misses its bar.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BARS = {"label_preservation_ab": 0.90, "domain_accuracy_ab": 0.95}
from _common import RESULTS, finish, machine, trainer_for  # same folder: run as a script


def _flat(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) / 2).flatten(1).numpy()


@torch.no_grad()
def translate_all(parts, x: torch.Tensor, direction: str, batch: int = 256) -> torch.Tensor:
    nets = parts.sample_nets()
    for m in nets.values():
        m.eval()
    out = [parts.step.translate(parts.ctx, x[i : i + batch].to(parts.device), direction, nets=nets).float().cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out)


def score(parts) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    ds = parts.dataset
    a, b = ds.all_real(None, "a"), ds.all_real(None, "b")
    ya, yb = ds.y.numpy(), ds.y_b.numpy()
    fa, fb = _flat(a), _flat(b)
    digit_b = SVC(gamma="scale", C=10).fit(fb, yb)  # judges images of domain B
    digit_a = SVC(gamma="scale", C=10).fit(fa, ya)  # judges images of domain A
    domain = LogisticRegression(max_iter=2000).fit(np.concatenate([fa, fb]), np.r_[np.zeros(len(fa)), np.ones(len(fb))])

    ab, ba = translate_all(parts, a, "AB"), translate_all(parts, b, "BA")
    aba = translate_all(parts, ab, "BA")
    fab, fba = _flat(ab), _flat(ba)
    return {
        "label_preservation_ab": float((digit_b.predict(fab) == ya).mean()),
        "label_preservation_ba": float((digit_a.predict(fba) == yb).mean()),
        "domain_accuracy_ab": float((domain.predict(fab) == 1).mean()),
        "domain_accuracy_ba": float((domain.predict(fba) == 0).mean()),
        "truth_l1_ab": float(np.abs(fab - (1 - fa)).mean()),
        "truth_l1_ba": float(np.abs(fba - (1 - fb)).mean()),
        "cycle_l1_aba": float(np.abs(_flat(aba) - fa).mean()),
        "oracle_label_preservation_ab": float((digit_b.predict(1 - fa) == ya).mean()),
        "oracle_domain_accuracy_ab": float((domain.predict(1 - fa) == 1).mean()),
    }


def shared_metrics(parts) -> dict[str, float]:
    """The project's own image metrics (``ganzoo eval``), when that module is installed."""
    try:
        from ganzoo.metrics.image import image_metrics
    except ImportError:
        return {}
    out = image_metrics(parts)
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}


def run_seed(seed: int, steps: int | None, sets: list[str], keep: str | None) -> dict:
    out = Path(keep) / f"seed{seed}" if keep else Path(tempfile.mkdtemp(prefix="cyclegan-bench-"))
    trainer = trainer_for("cyclegan", seed, steps, sets, out)
    cfg = trainer.cfg
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    rec = {"seed": seed, "steps": cfg["steps"], "train_seconds": round(seconds, 1), **score(trainer.p)}
    shared = shared_metrics(trainer.p)
    if shared:
        rec["ganzoo_eval"] = shared
    rec["run_dir"] = str(out)
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the architecture's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="any 'ganzoo train --set' assignment, e.g. --set image_size=16")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    ap.add_argument("--keep", default=None, help="keep the run directories under this folder")
    ap.add_argument("--json", default=None, help="write results here instead of benchmarks/results/")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for seed in args.seeds:
        rec = run_seed(seed, args.steps, args.sets, args.keep)
        rows.append(rec)
        print(json.dumps({k: v for k, v in rec.items() if k != "ganzoo_eval"}), file=sys.stderr, flush=True)

    keys = ["label_preservation_ab", "domain_accuracy_ab", "label_preservation_ba", "domain_accuracy_ba",
            "truth_l1_ab", "cycle_l1_aba", "oracle_label_preservation_ab", "train_seconds"]
    median = {k: statistics.median(r[k] for r in rows) for k in keys}
    print(f"\ncyclegan on digits-unpaired, {len(rows)} seed(s), {rows[0]['steps']} steps, "
          f"{args.threads} torch thread(s), {' '.join(args.sets) or 'defaults'}")
    print(f"{'metric':<32}" + "".join(f"{'seed ' + str(r['seed']):>10}" for r in rows) + f"{'median':>10}{'bar':>8}")
    for k in keys:
        bar = f">={BARS[k]:.2f}" if k in BARS else ""
        print(f"{k:<32}" + "".join(f"{r[k]:>10.3f}" for r in rows) + f"{median[k]:>10.3f}{bar:>8}")
    shared = [k for k in ("label_preservation", "domain_accuracy", "mapping_l1", "cycle_l1", "classifier_accuracy")
              if all(k in r.get("ganzoo_eval", {}) for r in rows)]
    for k in shared:  # the same runs scored by `ganzoo eval` (its own CNN classifier, [-1, 1] L1 units)
        vals = [r["ganzoo_eval"][k] for r in rows]
        print(f"{'ganzoo eval ' + k:<32}" + "".join(f"{v:>10.3f}" for v in vals) + f"{statistics.median(vals):>10.3f}")
    missed = [k for k, v in BARS.items() if median[k] < v]

    result = {"benchmark": "cyclegan_digits", "machine": machine(args.threads), "settings": args.sets, "bars": BARS,
              "median": median, "runs": rows, "passed": not missed,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    return finish(result, Path(args.json) if args.json else RESULTS / "cyclegan_digits.json", missed)


if __name__ == "__main__":
    sys.exit(main())
