"""Bulk samples: one PNG per sample in a folder, the input FID tools take (pytorch-fid, clean-fid,
torch-fidelity read every image of a folder).

``ganzoo sample SOURCE -n 50000 --out-dir DIR`` writes ``DIR/000000.png``, ``DIR/000001.png`` ...
(conditional models: ``DIR/000000_label3.png``, the class in the name), drawn in batches. Sample
``i`` has the latent code ``make_z(n, latent_dim, seed)[i]`` of the grid path (``ganzoo sample
--out grid.png``, :func:`ganzoo.deploy.runtime.sample_inputs`), so the first samples of a folder are
the images of the grid for the same seed, and an ``.onnx`` file and its run directory write the same
files. Without ``--label`` a conditional model's classes are spread evenly in blocks: sample ``i``
has class ``i * num_classes // n`` (``n`` a multiple of the classes: the grid's one row per class).

numpy, onnxruntime (through the model) and pillow only: no torch for ``.onnx`` files.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import GanzooError
from .contract import ModelInfo, iter_z
from .pictures import save_png, to_uint8
from .progress import progress_bar

SAMPLE_NAME = re.compile(r"^\d{6,}(_label\d+)?\.png$")
DEFAULT_BATCH = 64


@dataclass
class BulkResult:
    out_dir: Path
    count: int
    first: Path
    last: Path
    labels: np.ndarray | None  # conditional models: the class of each sample


def spread_labels(num_classes: int, n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Classes of samples ``start..stop`` of ``n`` spread evenly in blocks: ``i * num_classes // n``
    (equal to :func:`ganzoo.deploy.contract.class_rows` when ``n`` is a multiple of the classes)."""
    stop = n if stop is None else stop
    return (np.arange(start, stop, dtype=np.int64) * num_classes) // n


def bulk_inputs(info: ModelInfo, n: int, seed: int = 0, label: int | None = None,
                batch: int = DEFAULT_BATCH) -> Iterator[dict[str, np.ndarray]]:
    """The inputs of samples ``0..n-1`` in batches of at most ``batch`` (see the module docstring)."""
    from .runtime import sample_inputs

    sample_inputs(info, 1, seed, label)  # the same checks as the grid path (image-to-image, --label)
    if info.conditional and label is not None and not 0 <= label < info.num_classes:
        raise GanzooError(f"--label {label} is out of range: this model knows classes 0..{info.num_classes - 1}")
    start = 0
    for z in iter_z(n, info.latent_dim, seed, batch):
        feeds = {"z": z}
        if info.conditional:
            stop = start + len(z)
            feeds["labels"] = (np.full(len(z), label, np.int64) if label is not None
                               else spread_labels(info.num_classes, n, start, stop))
        start += len(z)
        yield feeds


def sample_name(i: int, n: int, label: int | None) -> str:
    width = max(6, len(str(n - 1)))
    return f"{i:0{width}d}" + (f"_label{label}" if label is not None else "") + ".png"


def _existing(out_dir: Path) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return [f for f in out_dir.iterdir() if SAMPLE_NAME.match(f.name)]


def write_samples(model: Any, n: int, out_dir: str | Path, *, seed: int = 0, label: int | None = None,
                  batch_size: int = DEFAULT_BATCH, overwrite: bool = False, progress: bool = True) -> BulkResult:
    """Write ``n`` samples of ``model`` (anything with ``.info`` and ``.run(z=, labels=)``: a
    :class:`~ganzoo.deploy.runtime.GanzooModel` or :class:`~ganzoo.deploy.export.RunModel`) as PNG
    files into ``out_dir``, uint8, the model's channels. A folder already holding sample files is an
    error unless ``overwrite`` (then they are removed first, so the folder holds exactly ``n``)."""
    info = model.info
    if n < 1:
        raise GanzooError(f"-n must be at least 1, got {n}")
    if batch_size < 1:
        raise GanzooError(f"--batch-size must be at least 1, got {batch_size}")
    if info.output_kind != "image":
        raise GanzooError(f"{info.architecture} makes 2D points, not images: write them with --npy instead of --out-dir")
    feeds_iter = bulk_inputs(info, n, seed, label, batch_size)  # checks the inputs before any file is touched
    first = next(feeds_iter)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise GanzooError(f"--out-dir {out_dir} is a file; pass a folder")
    old = _existing(out)
    if old and not overwrite:
        raise GanzooError(f"--out-dir {out_dir} already holds {len(old)} sample file(s); pass --overwrite to replace them, "
                          "or another folder (FID tools read every image in a folder)")
    for f in old:
        f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    labels: list[np.ndarray] = []
    i = 0
    workers = max(1, min(4, os.cpu_count() or 1))
    with progress_bar(n, "sampling", "img", enabled=progress) as bar, ThreadPoolExecutor(workers) as pool:
        pending: list = []
        for feeds in _chain(first, feeds_iter):
            images = to_uint8(model.run(**feeds))  # runs while the previous batch's PNGs are encoded
            for fut in pending:
                fut.result()
            bar.update(len(pending))
            batch_labels = feeds.get("labels")
            pending = [pool.submit(save_png, pic, out / sample_name(i + j, n, None if batch_labels is None else int(batch_labels[j])))
                       for j, pic in enumerate(images)]
            if batch_labels is not None:
                labels.append(batch_labels)
            i += len(images)
        for fut in pending:
            fut.result()
        bar.update(len(pending))
    all_labels = np.concatenate(labels) if labels else None
    first_label = int(all_labels[0]) if all_labels is not None else None
    last_label = int(all_labels[-1]) if all_labels is not None else None
    return BulkResult(out, n, out / sample_name(0, n, first_label), out / sample_name(n - 1, n, last_label), all_labels)


def _chain(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest
