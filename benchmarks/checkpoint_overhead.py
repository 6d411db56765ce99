"""What surviving interruption and seeing a run cost: checkpoint write time and size per architecture
at its reference size, and the share of training time spent on checkpoints, sample grids, report.html
and TensorBoard at default settings (goal: under 3%).

Part A (reference size, as benchmarks/onnx_zoo.py: DCGAN and WGAN 64x64 RGB, CycleGAN 128x128 RGB,
vanilla and cgan 28x28 digits): one training step so the optimiser states exist, then
``write_history_checkpoint`` (serialise, temp file, fsync, rename, hard link ``last.pt``) timed in
interleaved rounds; median per architecture, with the file size.

Part B (default settings on the default data, ``--steps`` shortened to keep the script short): a
real ``Trainer.fit`` with its pieces timed from inside (checkpoint writes, sample grids, report.html
refreshes, TensorBoard events). Intervals default to a fraction of ``steps`` (4 checkpoints, 10
sample grids per run), so the number of these events does not depend on ``steps`` while the training
time grows with it: a shortened run gives an upper bound of the share in a full-length run.

    python benchmarks/checkpoint_overhead.py              # writes benchmarks/results/checkpoint_overhead.json
    python benchmarks/checkpoint_overhead.py --quick      # 2 rounds, 60 steps: a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, finish, machine  # noqa: E402
from ganzoo.bench.worker import cpu_name  # noqa: E402

GOAL = 0.03


def reference_trainer(arch: str, work: Path):
    from onnx_zoo import FALLBACK, REFERENCE, data_arg

    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", arch)
    kind, size, _ = REFERENCE.get(arch) or FALLBACK[spec.data_kinds[0]]
    run = {"steps": 1, "batch_size": 4, "seed": 0, "device": "cpu", **data_arg(kind, size, work)}
    r, h = flatten_user(spec, {}, run)
    trainer = Trainer(resolve(reg, spec, r, h), RunDir(work / f"{arch}-run"), quiet=True, report=False)
    trainer.train_step(1)  # optimiser moments exist, as in any checkpoint after step 1
    return trainer, size, kind


def part_a(archs: list[str], rounds: int, work: Path) -> dict:
    from ganzoo.engine.checkpoint import write_history_checkpoint

    trainers = {a: reference_trainer(a, work) for a in archs}
    times: dict[str, list[float]] = {a: [] for a in archs}
    sizes: dict[str, int] = {}
    for r in range(rounds):
        for arch in archs if r % 2 == 0 else list(reversed(archs)):  # interleaved, alternating order
            trainer, _, _ = trainers[arch]
            folder = work / f"{arch}-ckpt"
            t0 = time.perf_counter()
            path = write_history_checkpoint(folder, r + 1, trainer.state_dict(r + 1), keep=2)
            times[arch].append(time.perf_counter() - t0)
            sizes[arch] = path.stat().st_size
    out = {}
    for arch in archs:
        trainer, size, kind = trainers[arch]
        params = sum(p.numel() for n in trainer.p.nets.values() for p in n.parameters())
        out[arch] = {"reference": f"{size}x{size} {kind}" if size else kind, "parameters": params,
                     "checkpoint_mb": round(sizes[arch] / 1e6, 3), "write_ms_median": round(1e3 * statistics.median(times[arch]), 1),
                     "write_ms_min": round(1e3 * min(times[arch]), 1), "rounds": rounds}
    return out


@contextmanager
def timed(cls, name: str, bucket: list[float]):
    original = getattr(cls, name)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            bucket.append(time.perf_counter() - t0)

    setattr(cls, name, wrapper)
    try:
        yield
    finally:
        setattr(cls, name, original)


def part_b(arch: str, steps: int, work: Path) -> dict:
    import contextlib

    from ganzoo.engine import trainer as trainer_mod
    from ganzoo.engine.trainer import Trainer
    from ganzoo.report.callback import RunReport
    from ganzoo.report.tensorboard import available
    from _common import trainer_for

    b: dict[str, list[float]] = {k: [] for k in ("checkpoint_write", "samples_total", "samples_tb", "report_ckpt",
                                                "step_end", "train_start", "train_end", "train_step")}
    trainer = trainer_for(arch, 0, steps, [], work / f"{arch}-default")
    with contextlib.ExitStack() as stack:
        stack.enter_context(timed(trainer_mod, "write_history_checkpoint", b["checkpoint_write"]))
        stack.enter_context(timed(Trainer, "write_samples", b["samples_total"]))
        stack.enter_context(timed(RunReport, "on_samples", b["samples_tb"]))
        stack.enter_context(timed(RunReport, "on_checkpoint", b["report_ckpt"]))
        stack.enter_context(timed(RunReport, "on_step_end", b["step_end"]))
        stack.enter_context(timed(RunReport, "on_train_start", b["train_start"]))
        stack.enter_context(timed(RunReport, "on_train_end", b["train_end"]))
        stack.enter_context(timed(Trainer, "train_step", b["train_step"]))
        t0 = time.perf_counter()
        trainer.fit()
        total = time.perf_counter() - t0
    parts = {
        "checkpoints": sum(b["checkpoint_write"]),
        "samples": sum(b["samples_total"]) - sum(b["samples_tb"]),
        "report_and_tensorboard": sum(b["report_ckpt"]) + sum(b["step_end"]) + sum(b["samples_tb"])
        + sum(b["train_start"]) + sum(b["train_end"]),
    }
    share = {k: round(v / total, 4) for k, v in parts.items()}
    # the same events in a run of the default length: the extra steps cost what a step costs here
    full = default_steps(arch)
    per_step = sum(b["train_step"]) / len(b["train_step"])
    full_total = total + per_step * max(0, full - steps)
    return {"steps": steps, "default_steps": full, "fit_s": round(total, 2), "step_ms_median": round(1e3 * statistics.median(b["train_step"]), 2),
            "share_at_default_steps": round(sum(parts.values()) / full_total, 4),
            "seconds": {k: round(v, 3) for k, v in parts.items()}, "share": share, "share_total": round(sum(share.values()), 4),
            "events": {"checkpoints": len(b["checkpoint_write"]), "sample_grids": len(b["samples_total"]),
                       "report_refreshes": len(b["report_ckpt"]) + 2},
            "tensorboard": available(), "data": trainer.cfg["data"],
            "batch_size": trainer.cfg["batch_size"], "image_size": trainer.cfg["image_size"]}


def default_steps(arch: str) -> int:
    from ganzoo.engine.config import resolve
    from ganzoo.registry import get_registry

    reg = get_registry()
    return int(resolve(reg, reg.get("architecture", arch), {}, {})["steps"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="", help="comma-separated (default: every registered architecture)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300, help="steps of each default-settings run (part B)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "checkpoint_overhead.json"))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.steps = 2, 60
    import torch

    from ganzoo.registry import get_registry

    threads = 1
    torch.set_num_threads(threads)
    archs = [a for a in args.archs.split(",") if a] or get_registry().list_architectures()
    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ganzoo-ckpt-bench-") as tmp:
        work = Path(tmp)
        print(f"== part A: checkpoint writes at reference size ({args.rounds} interleaved rounds)", flush=True)
        a = part_a(archs, args.rounds, work)
        print(f"{'arch':<10} {'reference':<16} {'params':>10} {'size MB':>9} {'write ms':>9}")
        for arch, r in a.items():
            print(f"{arch:<10} {r['reference']:<16} {r['parameters']:>10} {r['checkpoint_mb']:>9} {r['write_ms_median']:>9}")
        print(f"\n== part B: share of training time at default settings ({args.steps} steps; an upper bound)", flush=True)
        b = {}
        for arch in archs:
            b[arch] = part_b(arch, args.steps, work)
        print(f"{'arch':<10} {'fit s':>7} {'ckpt':>7} {'samples':>8} {'report+tb':>10} {'total':>7}   "
              f"{'at default steps':>17}")
        for arch, r in b.items():
            s = r["share"]
            print(f"{arch:<10} {r['fit_s']:>7} {100 * s['checkpoints']:>6.2f}% {100 * s['samples']:>7.2f}% "
                  f"{100 * s['report_and_tensorboard']:>9.2f}% {100 * r['share_total']:>6.2f}%   "
                  f"{100 * r['share_at_default_steps']:>7.2f}% of {r['default_steps']}")
    missed = [f"{arch} {100 * r['share_at_default_steps']:.1f}% >= {100 * GOAL:.0f}%" for arch, r in b.items()
              if r["share_at_default_steps"] >= GOAL]
    result = {"benchmark": "checkpoint_overhead", "goal_share": GOAL,
              "machine": machine(threads, cpu=cpu_name(), loadavg_before=[round(x, 2) for x in load_before],
                                 loadavg_after=[round(x, 2) for x in os.getloadavg()]),
              "seconds": round(time.time() - started, 1), "reference_checkpoints": a, "default_runs": b}
    return finish(result, Path(args.out), missed)


if __name__ == "__main__":
    sys.exit(main())
