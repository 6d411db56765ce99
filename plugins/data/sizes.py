"""Native image sizes of the built-in data sets, told from headers alone (``DatasetSpec.native_size``).

Each probe returns the one ``(height, width)`` all images share, or None when they differ or the
files cannot be read (the loader then reports what is wrong). Nothing is decoded.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from ganzoo.api import DataRequest

from ganzoo.api import list_images

# A folder probe opens at most this many image headers, spread over the sorted file list.
MAX_PROBED = 1000


def digits(request: DataRequest) -> tuple[int, int]:
    return (8, 8)


def cifar10(request: DataRequest) -> tuple[int, int]:
    return (32, 32)


def idx(request: DataRequest) -> tuple[int, int] | None:
    from .idx import IMAGE_MAGIC, IMAGE_NAMES, _find

    path = Path(request.path or "").expanduser()
    image_file = _find(path, IMAGE_NAMES) if path.is_dir() else path
    if image_file is None or not image_file.is_file():
        return None
    try:
        opener = gzip.open if image_file.suffix == ".gz" else open
        with opener(image_file, "rb") as fh:
            head = fh.read(16)
        magic, _n, rows, cols = struct.unpack(">IIII", head)
    except (OSError, EOFError, struct.error):
        return None
    return (rows, cols) if magic == IMAGE_MAGIC and rows and cols else None


def _files_size(files: list[Path]) -> tuple[int, int] | None:
    from PIL import Image

    if not files:
        return None
    step = max(1, len(files) // MAX_PROBED)
    sizes = set()
    for f in files[::step]:
        try:
            with Image.open(f) as img:  # reads the header only
                w, h = img.size
        except Exception:  # unreadable: the loader names the file
            return None
        sizes.add((h, w))
        if len(sizes) > 1:
            return None
    return sizes.pop()


def folder(request: DataRequest) -> tuple[int, int] | None:
    path = Path(request.path or "").expanduser()
    return _files_size(list_images(path)) if path.is_dir() else None


def unpaired(request: DataRequest) -> tuple[int, int] | None:
    path = Path(request.path or "").expanduser()
    if not path.is_dir():
        return None
    return _files_size(list_images(path / "trainA") + list_images(path / "trainB"))
