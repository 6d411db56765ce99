"""Shared helpers for the built-in loaders: paths and cached arrays. Resizing, channel conversion and
``image_info`` are the public helpers of ``ganzoo.api`` (``ganzoo/data/public.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from ganzoo import GanzooError
from ganzoo.api import RESIZE_MODE, DataRequest, cached_array, convert_channels, image_info, square_resize

# the public helpers under the names the loaders use
resize_uint8 = square_resize
to_channels = convert_channels
__all__ = ["image_info", "resize_uint8", "to_channels"]

DEFAULT_FILE_IMAGE_SIZE = 64


def need_path(request: DataRequest, fmt: str, layout: str) -> Path:
    """The request's path, expanded and checked to exist."""
    if not request.path:
        raise GanzooError(f"data set '{fmt}' needs a path: use --data {fmt}:PATH where PATH is {layout}")
    path = Path(os.path.expandvars(os.path.expanduser(request.path)))
    if not path.exists():
        raise GanzooError(
            f"{fmt}: path '{path}' does not exist; point --data {fmt}:PATH at {layout} you downloaded yourself"
        )
    return path


def check_request(request: DataRequest) -> None:
    if request.image_size is not None and request.image_size < 1:
        raise GanzooError(f"--image-size must be a positive integer, got {request.image_size}")
    if request.channels is not None and request.channels not in (1, 3):
        raise GanzooError(f"--channels must be 1 or 3 for image data, got {request.channels}")


def cached_arrays(request: DataRequest, fmt: str, sources: Sequence[Path], read: Callable[[], tuple]) -> tuple:
    """``read() -> (x uint8 [N, C, H, W], y int64 [N] or None, meta dict)`` for a format stored as
    arrays (IDX, CIFAR-10), resized to the request's size and converted to its channels, through the
    decoded data cache: later runs map the result instead of reading and resizing again.
    Returns (x, y, meta) with ``meta["native_sizes"]`` added."""
    description = {"kind": f"{fmt}-arrays", "source": f"{fmt}:{request.path}", "size": request.image_size,
                   "channels": request.channels, "resize": RESIZE_MODE}

    def build(alloc):
        x, y, meta = read()
        native = [[int(x.shape[2]), int(x.shape[3]), int(x.shape[0])]]
        x = to_channels(resize_uint8(x, request.image_size, request.workers), request.channels)
        alloc(tuple(x.shape))[:] = x.numpy()
        return {**meta, "labels": None if y is None else y.tolist(), "native_sizes": native}

    got = cached_array(description, build, sources=sources, enabled=request.cache, label=f"{fmt}:{request.path}")
    meta = dict(got.meta)
    labels = meta.pop("labels")
    meta["native_sizes"] = tuple((h, w) for h, w, _ in meta["native_sizes"])
    y = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    return torch.from_numpy(got.array), y, meta
