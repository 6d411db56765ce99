"""The run directory: one folder holding everything a run makes.

    config.toml          resolved configuration (a valid --config file)
    checkpoints/last.pt  latest checkpoint (weights, optimisers, RNG, step): a hard link to the newest
    checkpoints/step_XXXXXX.pt  the newest ``keep_checkpoints`` checkpoints
    samples/step_XXXXXX.png
    metrics.jsonl        one JSON object per line: losses every log_every steps, evaluations
    loss_curve.png       written at the end
    report.html          the run's page (ganzoo.report), refreshed at every checkpoint
    events.out.tfevents.*  TensorBoard events (with tensorboardX installed)
    eval.json, exports.json  the latest ``ganzoo eval`` result; ``ganzoo export``'s parity figures
    *.onnx               exported generators (``ganzoo export``)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import tomli_w

from ..errors import GanzooError
from .checkpoint import atomic_write_text

CONFIG = "config.toml"
CHECKPOINT = "checkpoints/last.pt"
SAMPLES_PER_RUN = 10  # sample_every = 0: about this many sample grids per run
CHECKPOINTS_PER_RUN = 4  # checkpoint_every = 0: about this many checkpoints per run


def every(value: int, steps: int, per_run: int) -> int:
    """An interval in steps: ``value``, or for 0 about ``per_run`` times in a run of ``steps``."""
    return value if value > 0 else max(1, steps // per_run)


def config_header(cfg: Mapping[str, Any]) -> str:
    """Comments at the top of config.toml saying what the automatic intervals (0) mean for this run."""
    steps = int(cfg.get("steps", 0) or 0)
    lines = ["# ganzoo run configuration; a valid --config file (ganzoo train ARCH --config THIS_FILE)."]
    for key, per_run, what in (("sample_every", SAMPLES_PER_RUN, "a sample grid"),
                               ("checkpoint_every", CHECKPOINTS_PER_RUN, "a checkpoint")):
        if int(cfg.get(key, 0) or 0) == 0 and steps:
            lines.append(f"# {key} = 0: {what} about {per_run} times per run, every {every(0, steps, per_run)} "
                         f"steps for steps = {steps} (and at the last step).")
    return "\n".join(lines) + "\n"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    # state
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def create(self) -> None:
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.samples.mkdir(parents=True, exist_ok=True)

    def write_config(self, cfg: Mapping[str, Any]) -> None:
        clean = {k: v for k, v in cfg.items() if v is not None}
        atomic_write_text(self.config_path, config_header(clean) + tomli_w.dumps(clean))

    def read_config(self) -> dict[str, Any]:
        import tomllib

        if not self.path.exists():
            raise GanzooError(f"run directory {self.path} does not exist; pass the folder 'ganzoo train' printed")
        if not self.path.is_dir():
            raise GanzooError(f"{self.path} is a file, not a run directory; pass the folder 'ganzoo train' printed")
        if not self.is_run():
            raise GanzooError(f"{self.path} is not a ganzoo run directory (no {CONFIG}); pass the folder 'ganzoo train' printed")
        try:
            return tomllib.loads(self.config_path.read_text())
        except Exception as exc:
            raise GanzooError(f"{self.config_path} is not valid TOML ({exc}); the run directory is damaged") from None

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def read_metrics(self) -> Iterator[dict[str, Any]]:
        if not self.metrics_path.exists():
            return
        with self.metrics_path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: skip it

    def truncate_metrics_after(self, step: int) -> None:
        """On resume, drop records logged after the checkpoint so the log has no duplicates."""
        if not self.metrics_path.exists():
            return
        keep = [r for r in self.read_metrics() if r.get("step", 0) <= step and "eval" not in r]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))
