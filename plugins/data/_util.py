"""Shared helpers for the data loaders: paths, image reading, resizing, channel conversion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.api import DataInfo, DataRequest

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
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


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden entries skipped), sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTS):
                out.append(Path(root) / name)
    return sorted(out)


def _square_resize(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w != h:  # centre-crop to a square first so the aspect ratio is kept
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (size, size):
        # Pillow's resampling filters widen their support when shrinking, so BILINEAR is
        # area-aware for downsampling and smooth for upsampling.
        img = img.resize((size, size), Image.BILINEAR)
    return img


def read_images(files: Sequence[Path], size: int, channels: int) -> torch.Tensor:
    """Read, convert (RGB or L), centre-crop and resize image files into a uint8 ``[N, C, size, size]``."""
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img.load()
                arr = np.asarray(_square_resize(img.convert(mode), size), dtype=np.uint8)
        except Exception as e:  # PIL raises many types (OSError, ValueError, DecompressionBombError, ...)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GanzooError(f"cannot read image {f}: {msg}; remove or fix it") from None
        out[i] = arr.reshape(size, size, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def resize_uint8(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize uint8 ``[N, C, H, W]`` images to ``size``x``size`` with PIL (no-op when None or equal)."""
    if size is None or (x.shape[-1] == size and x.shape[-2] == size):
        return x
    n, c = x.shape[0], x.shape[1]
    arr = x.permute(0, 2, 3, 1).numpy()
    out = np.empty((n, size, size, c), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i], mode="L" if c == 1 else "RGB")
        out[i] = np.asarray(_square_resize(img, size), dtype=np.uint8).reshape(size, size, c)
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


def image_info(kind: str, name: str, x: torch.Tensor, class_names: Iterable[str] = ()) -> DataInfo:
    names = tuple(class_names)
    return DataInfo(
        kind=kind,
        name=name,
        channels=int(x.shape[1]),
        height=int(x.shape[2]),
        width=int(x.shape[3]),
        num_classes=len(names),
        class_names=names,
    )
