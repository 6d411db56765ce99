"""CIFAR-10 python batches (``cifar-10-batches-py``), read with a restricted unpickler.

The batches are pickles, and unpickling can run arbitrary code; :class:`SafeUnpickler` resolves only
the few globals numpy needs to rebuild an array, and refuses everything else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganzoo import GanzooError
from ganzoo.api import DataRequest, Dataset

from ._util import cached_arrays, check_request, image_info, need_path

LAYOUT = "the extracted cifar-10-batches-py folder (data_batch_1..5, batches.meta)"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
DEFAULT_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Only what rebuilds a numpy array (both numpy 1.x and 2.x module paths), plus the latin-1 byte
# helper that Python 3 protocol-2 pickles use for bytes objects.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class RefusedPickle(Exception):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise RefusedPickle(module, name)


def safe_load(path: Path) -> Any:
    try:
        data = path.read_bytes()
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedPickle as e:
        raise GanzooError(
            f"refusing to load {path}: the pickle asks for {e.module}.{e.name}, which a CIFAR-10 batch never "
            "needs (it may run code); use the original cifar-10-batches-py files"
        ) from None
    except Exception as e:  # truncated / corrupt pickles raise many types
        why = " ".join(str(e).split()) or "corrupt data"
        raise GanzooError(
            f"cannot read CIFAR-10 batch {path}: {type(e).__name__}: {why}; re-download and re-extract it"
        ) from None


def _get(d: Any, key: str) -> Any:
    if not isinstance(d, dict):
        return None
    return d.get(key.encode(), d.get(key))


def _find_folder(path: Path) -> Path:
    if path.is_file():
        path = path.parent
    for cand in (path, path / "cifar-10-batches-py"):
        if any((cand / b).is_file() for b in TRAIN_BATCHES):
            return cand
    raise GanzooError(
        f"cifar10: no data_batch_1..data_batch_5 in {path} or {path / 'cifar-10-batches-py'}; "
        f"point --data cifar10:PATH at {LAYOUT}"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = safe_load(path)
    data, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise GanzooError(
            f"cifar10: {path} has no uint8 'data' array of shape [N, 3072]; is it a CIFAR-10 python batch?"
        )
    if labels is None:
        raise GanzooError(f"cifar10: {path} has no 'labels'; is it a CIFAR-10 python batch?")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise GanzooError(f"cifar10: {path} holds {len(labels)} labels for {len(data)} images; re-download it")
    return data, labels


def _class_names(folder: Path, num: int) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    names = None
    if meta.is_file():
        names = _get(safe_load(meta), "label_names")
    if not names:
        names = DEFAULT_NAMES
    out = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names)
    if len(out) < num:
        out = out + tuple(str(i) for i in range(len(out), num))
    return out


def load_cifar10(request: DataRequest) -> Dataset:
    check_request(request)
    folder = _find_folder(need_path(request, "cifar10", LAYOUT))
    batches = [folder / b for b in TRAIN_BATCHES if (folder / b).is_file()]
    meta_file = folder / "batches.meta"

    def read():
        parts = [_read_batch(b) for b in batches]
        data = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if labels.min() < 0:
            raise GanzooError(f"cifar10: negative label in {folder}; re-download the batches")
        x = torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)))
        return x, torch.from_numpy(labels), {"class_names": list(_class_names(folder, int(labels.max()) + 1))}

    sources = batches + ([meta_file] if meta_file.is_file() else [])
    x, y, meta = cached_arrays(request, "cifar10", sources, read)
    names = tuple(meta["class_names"])
    info = image_info("image", f"cifar10:{request.path}", x, names, meta["native_sizes"])
    return Dataset(info=info, x=x, y=y)
