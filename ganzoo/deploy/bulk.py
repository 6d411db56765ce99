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

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import GanzooError
from .contract import ModelInfo, iter_z
from .pictures import make_folder, save_png, to_uint8
from .progress import progress_bar

SAMPLE_NAME = re.compile(r"^\d{6,}(_label\d+)?\.png$")
DEFAULT_BATCH = 64
#: what a folder's samples were drawn with (a hidden file: FID tools read images only), for --resume
SETTINGS_FILE = ".ganzoo-samples.json"


@dataclass
class BulkResult:
    out_dir: Path
    count: int
    written: int  # files written now (fewer than ``count`` when resuming)
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


def _settings(info: ModelInfo, n: int, seed: int, label: int | None) -> dict[str, Any]:
    """Everything the files depend on: the same settings give the same files."""
    return {"architecture": info.architecture, "network": info.network, "dataset": info.dataset, "step": info.step,
            "ema": info.ema, "precision": info.precision, "n": n, "seed": seed, "label": label}


def _check_resume(out: Path, wanted: dict[str, Any]) -> None:
    try:
        had = json.loads((out / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        raise GanzooError(f"--resume: {out} does not say what its samples were drawn with ({SETTINGS_FILE} is missing "
                          "or damaged); pass --overwrite to start it again") from None
    differ = [f"{k} {had.get(k)!r} -> {v!r}" for k, v in wanted.items() if had.get(k) != v]
    if differ:
        raise GanzooError(f"--resume: the samples in {out} were drawn with other settings ({', '.join(differ)}); "
                          "pass the same ones, or --overwrite to start again")


def write_samples(model: Any, n: int, out_dir: str | Path, *, seed: int = 0, label: int | None = None,
                  batch_size: int = DEFAULT_BATCH, overwrite: bool = False, resume: bool = False,
                  progress: bool = True) -> BulkResult:
    """Write ``n`` samples of ``model`` (anything with ``.info`` and ``.run(z=, labels=)``: a
    :class:`~ganzoo.deploy.runtime.GanzooModel` or :class:`~ganzoo.deploy.export.RunModel`) as PNG
    files into ``out_dir``, uint8, the model's channels; each file is written under a temporary name
    and renamed, so an interrupted job leaves only whole files. A folder already holding sample files
    is an error unless ``overwrite`` (they are removed first, so the folder holds exactly ``n``) or
    ``resume`` (the settings must be the ones recorded in the folder; only missing files are drawn)."""
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
    if overwrite and resume:
        raise GanzooError("--overwrite and --resume exclude each other: replace the samples, or continue them")
    settings = _settings(info, n, seed, label)
    old = _existing(out)
    if old and resume:
        _check_resume(out, settings)
    elif old and not overwrite:
        raise GanzooError(f"--out-dir {out_dir} already holds {len(old)} sample file(s); pass --resume to continue them "
                          "(same source, seed, -n, --label), --overwrite to replace them, or another folder "
                          "(FID tools read every image in a folder)")
    elif old:
        for f in old:
            f.unlink()
    make_folder(out, "--out-dir")
    try:
        (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    except OSError as exc:
        raise GanzooError(f"--out-dir {out_dir}: cannot write to that folder ({exc.strerror or exc}); pass another") from None
    there = {f.name for f in old} if resume else set()
    labels: list[np.ndarray] = []
    i = written = 0
    workers = max(1, min(4, os.cpu_count() or 1))
    with progress_bar(n, "sampling", "img", enabled=progress) as bar, ThreadPoolExecutor(workers) as pool:
        pending: list = []
        for feeds in _chain(first, feeds_iter):
            batch_labels = feeds.get("labels")
            names = [sample_name(i + j, n, None if batch_labels is None else int(batch_labels[j])) for j in range(len(feeds["z"]))]
            if batch_labels is not None:
                labels.append(batch_labels)
            i += len(names)
            if there and all(name in there for name in names):  # --resume: this batch is complete already
                bar.update(len(names))
                continue
            images = to_uint8(model.run(**feeds))  # runs while the previous batch's PNGs are encoded
            for fut in pending:
                fut.result()
            bar.update(len(pending))
            pending = [pool.submit(save_png, pic, out / name) for name, pic in zip(names, images) if name not in there]
            bar.update(len(names) - len(pending))
            written += len(pending)
        for fut in pending:
            fut.result()
        bar.update(len(pending))
    all_labels = np.concatenate(labels) if labels else None
    first_label = int(all_labels[0]) if all_labels is not None else None
    last_label = int(all_labels[-1]) if all_labels is not None else None
    return BulkResult(out, n, written, out / sample_name(0, n, first_label), out / sample_name(n - 1, n, last_label), all_labels)


def _chain(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest
