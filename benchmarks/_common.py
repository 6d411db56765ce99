"""Shared by the quality benchmark scripts: the machine record and the results file."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(threads: int, **extra) -> dict:
    """Where a benchmark ran: platform, CPU count, torch and Python versions, torch threads per run."""
    import torch

    return {**extra, "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": threads,
            "python": platform.python_version()}


def finish(result: dict, path: Path, missed: list[str]) -> int:
    """Write ``result`` as JSON to ``path``; report missed bars; the script's exit status."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")
    if missed:
        print(f"MISSED: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def trainer_for(arch: str, seed: int, steps: int | None, sets: list[str], out: Path):
    """A CPU :class:`Trainer` for ``arch`` with its defaults, ``seed``, ``steps`` (None: the
    architecture's) and ``KEY=VALUE`` settings as for ``--set``, writing its run into ``out``."""
    from ganzoo.engine.config import flatten_user, parse_assignment, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", arch)
    cli: dict = {"seed": seed, "device": "cpu"}
    if steps:
        cli["steps"] = steps
    for _, key, value in (parse_assignment(spec, s) for s in sets):
        cli[key] = value
    run, hps = flatten_user(spec, {}, cli)
    return Trainer(resolve(reg, spec, run, hps), RunDir(str(out)), quiet=True)
