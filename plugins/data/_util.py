"""Shared helpers for the data loaders: paths and image reading. Resizing, channel conversion and
``image_info`` are the public helpers of ``ganzoo.api`` (``ganzoo/data/public.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.api import DataRequest, convert_channels, image_info, square_resize, square_resize_image

# the public helpers under the names the loaders use
resize_uint8 = square_resize
to_channels = convert_channels
__all__ = ["image_info", "resize_uint8", "to_channels"]

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


def read_images(files: Sequence[Path], size: int, channels: int) -> torch.Tensor:
    """Read, convert (RGB or L), centre-crop and resize image files into a uint8 ``[N, C, size, size]``."""
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img.load()
                arr = np.asarray(square_resize_image(img.convert(mode), size), dtype=np.uint8)
        except Exception as e:  # PIL raises many types (OSError, ValueError, DecompressionBombError, ...)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GanzooError(f"cannot read image {f}: {msg}; remove or fix it") from None
        out[i] = arr.reshape(size, size, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
