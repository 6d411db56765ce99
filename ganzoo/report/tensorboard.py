"""TensorBoard events in the run directory, through tensorboardX (``pip install 'ganzoo[tensorboard]'``).

tensorboardX writes the event files with protobuf alone (already installed with onnx); viewing them
needs the ``tensorboard`` package: ``tensorboard --logdir runs``. Tags: ``loss/NAME`` (the losses of
``metrics.jsonl``), ``lr/G`` and ``lr/D``, ``eval/NAME`` (evaluation metrics), the image ``samples``
(the sample grids), and the resolved configuration in the HParams tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

INSTALL_HINT = "pip install 'ganzoo[tensorboard]'"


def available() -> bool:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


def flat_hparams(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"lr_g": 2e-4, "hparams.ngf": 32, ...}``: numbers, booleans and strings only (lists as text)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out


class TensorBoard:
    """A tensorboardX ``SummaryWriter`` on ``run_dir``. :meth:`open` returns None when tensorboardX is
    not installed. ``resume_step``: events of an earlier leg after that step are hidden (purged)."""

    def __init__(self, writer: Any):
        self.w = writer

    @classmethod
    def open(cls, run_dir: str | Path, resume_step: int = 0) -> "TensorBoard | None":
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            return None
        kw = {"purge_step": resume_step + 1} if resume_step else {}
        return cls(SummaryWriter(logdir=str(run_dir), flush_secs=60, **kw))

    def scalars(self, step: int, values: Mapping[str, Any], prefix: str) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                self.w.add_scalar(f"{prefix}/{key}", float(value), step)

    def image(self, tag: str, png: str | Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(png) as im:
            arr = np.asarray(im.convert("RGB"))
        self.w.add_image(tag, arr, step, dataformats="HWC")

    def hparams(self, cfg: Mapping[str, Any], metric_tags: list[str]) -> None:
        """The resolved configuration in the HParams tab, linked to ``metric_tags`` (scalar tags)."""
        from tensorboardX.summary import hparams

        for summary in hparams(flat_hparams(cfg), {tag: 0.0 for tag in metric_tags}):
            self.w.file_writer.add_summary(summary)

    def flush(self) -> None:
        self.w.flush()

    def close(self) -> None:
        self.w.close()
