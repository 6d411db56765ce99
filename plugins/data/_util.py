"""Shared helpers for the built-in loaders: paths, cached arrays, resizing, channel conversion."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.api import RESIZE_MODE, DataInfo, DataRequest, cached_array, default_workers, square_resize

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


def resize_uint8(x: torch.Tensor, size: int | None, workers: int = 0) -> torch.Tensor:
    """Resize uint8 ``[N, C, H, W]`` images to ``size``x``size`` with PIL (no-op when None or equal),
    in ``workers`` threads (0: every core; Pillow releases the GIL while resizing)."""
    if size is None or (x.shape[-1] == size and x.shape[-2] == size):
        return x
    n, c = x.shape[0], x.shape[1]
    arr = x.permute(0, 2, 3, 1).numpy()
    out = np.empty((n, size, size, c), dtype=np.uint8)

    def one(i: int) -> None:
        img = Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i], mode="L" if c == 1 else "RGB")
        out[i] = np.asarray(square_resize(img, size), dtype=np.uint8).reshape(size, size, c)

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        list(pool.map(one, range(n), chunksize=256))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def to_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert uint8 images between 1 and 3 channels (ITU-R 601-2 luma for RGB -> L)."""
    c = x.shape[1]
    if channels is None or channels == c:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    raise GanzooError(f"cannot convert {c}-channel images to {channels} channels; use --channels 1 or 3")


def image_info(kind: str, name: str, x: torch.Tensor, class_names: Iterable[str] = (),
               native_sizes: Iterable[tuple[int, int]] = ()) -> DataInfo:
    names = tuple(class_names)
    return DataInfo(
        native_sizes=tuple(native_sizes),
        kind=kind,
        name=name,
        channels=int(x.shape[1]),
        height=int(x.shape[2]),
        width=int(x.shape[3]),
        num_classes=len(names),
        class_names=names,
    )
