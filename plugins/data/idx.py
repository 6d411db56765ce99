"""MNIST / Fashion-MNIST IDX files (raw or gzip), read from a folder the user already has.

Layout: ``PATH/train-images-idx3-ubyte[.gz]`` and, optionally, ``PATH/train-labels-idx1-ubyte[.gz]``
(``train-images.idx3-ubyte`` spellings are accepted too). PATH may also be the image file itself.
IDX is big-endian: images start with (magic 2051, n, rows, cols), labels with (magic 2049, n).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ganzoo import GanzooError
from ganzoo.api import DataRequest, Dataset

from ._util import cached_arrays, check_request, image_info, need_path

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_NAMES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")
LABEL_NAMES = ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")
LAYOUT = "a folder holding train-images-idx3-ubyte[.gz] (and train-labels-idx1-ubyte[.gz])"


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for cand in (folder / name, folder / (name + ".gz")):
            if cand.is_file():
                return cand
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise GanzooError(f"cannot read IDX file {path}: {e}; re-download or re-extract it") from None


def _check_magic(path: Path, magic: int, expected: int, what: str) -> None:
    if magic != expected:
        hint = ""
        if magic == LABEL_MAGIC and expected == IMAGE_MAGIC:
            hint = " (this is a labels file)"
        elif magic == IMAGE_MAGIC and expected == LABEL_MAGIC:
            hint = " (this is an images file)"
        elif path.suffix != ".gz" and magic >> 16 == 0x1F8B:
            hint = " (it looks gzip-compressed: name it with a .gz suffix)"
        raise GanzooError(
            f"wrong magic number {magic} in {path}: expected {expected} for IDX {what}{hint}; "
            f"point idx:PATH at MNIST-style IDX files"
        )


def read_idx_images(path: Path) -> torch.Tensor:
    data = _read_bytes(path)
    if len(data) >= 4:
        _check_magic(path, struct.unpack(">I", data[:4])[0], IMAGE_MAGIC, "images")
    if len(data) < 16:
        raise GanzooError(
            f"truncated IDX image file {path}: expected at least 16 header bytes, found {len(data)}; "
            "re-download it"
        )
    _, n, rows, cols = struct.unpack(">IIII", data[:16])
    expected = 16 + n * rows * cols
    if len(data) < expected:
        raise GanzooError(
            f"truncated IDX image file {path}: header says {n} images of {rows}x{cols} "
            f"(expected {expected} bytes), found {len(data)} bytes; re-download it"
        )
    if n == 0 or rows == 0 or cols == 0:
        raise GanzooError(f"IDX image file {path} holds no images (n={n}, {rows}x{cols}); use a non-empty file")
    arr = np.frombuffer(data, dtype=np.uint8, count=n * rows * cols, offset=16).reshape(n, 1, rows, cols)
    return torch.from_numpy(arr.copy())


def read_idx_labels(path: Path) -> torch.Tensor:
    data = _read_bytes(path)
    if len(data) >= 4:
        _check_magic(path, struct.unpack(">I", data[:4])[0], LABEL_MAGIC, "labels")
    if len(data) < 8:
        raise GanzooError(
            f"truncated IDX label file {path}: expected at least 8 header bytes, found {len(data)}; "
            "re-download it"
        )
    _, n = struct.unpack(">II", data[:8])
    if len(data) < 8 + n:
        raise GanzooError(
            f"truncated IDX label file {path}: header says {n} labels "
            f"(expected {8 + n} bytes), found {len(data)} bytes; re-download it"
        )
    arr = np.frombuffer(data, dtype=np.uint8, count=n, offset=8).astype(np.int64)
    return torch.from_numpy(arr)


def _label_file_for(image_file: Path) -> Path | None:
    base = image_file.name[:-3] if image_file.name.endswith(".gz") else image_file.name
    for images, labels in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if images in base:
            return _find(image_file.parent, (base.replace(images, labels),))
    return None


def load_idx(request: DataRequest) -> Dataset:
    check_request(request)
    path = need_path(request, "idx", LAYOUT)
    if path.is_dir():
        image_file = _find(path, IMAGE_NAMES)
        if image_file is None:
            raise GanzooError(
                f"idx: no IDX image file in {path}; expected train-images-idx3-ubyte or "
                "train-images-idx3-ubyte.gz (with train-labels-idx1-ubyte[.gz] for labels)"
            )
        label_file = _find(path, LABEL_NAMES)
    else:
        image_file = path
        label_file = _label_file_for(path)

    def read():
        x = read_idx_images(image_file)
        y = None
        if label_file is not None:
            y = read_idx_labels(label_file)
            if len(y) != len(x):
                raise GanzooError(
                    f"idx: {label_file} holds {len(y)} labels but {image_file} holds {len(x)} images; "
                    "use the matching pair of files"
                )
        return x, y, {}

    sources = [image_file] + ([label_file] if label_file is not None else [])
    x, y, meta = cached_arrays(request, "idx", sources, read)
    class_names = () if y is None else tuple(str(i) for i in range(int(y.max()) + 1))
    name = f"idx:{request.path}"
    return Dataset(info=image_info("image", name, x, class_names, meta["native_sizes"]), x=x, y=y)
