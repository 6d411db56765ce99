"""Image files -> uint8 arrays: listing, decoding in parallel with progress, and bad-file reports.

Public helpers for data set plugins (re-exported by :mod:`ganzoo.api`):

* :func:`list_images` -- the image files under a folder, sorted.
* :func:`decode_images` -- decode files into a uint8 ``[N, C, S, S]`` array (any writable array,
  for example a memory-mapped cache file), in a thread pool (Pillow releases the GIL while it
  decodes and resizes), with a progress bar on stderr. Every unreadable file is collected and
  reported at once.
* :func:`read_image` -- one file -> uint8 ``[C, S, S]``, the same way.

Images are converted to RGB (or L for one channel), centre-cropped to a square and resized with
Pillow's bilinear filter, which widens its support when shrinking (area-aware) -- the convention of
most GAN data pipelines (DCGAN, StyleGAN's dataset_tool with ``--transform=center-crop``).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..errors import GanzooError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
RESIZE_MODE = "center-crop+bilinear"  # recorded in cache descriptions
SHOW_BAD = 5  # bad files named in an error message


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files (``IMAGE_EXTS``, any case) under ``folder``, hidden entries skipped, sorted."""
    folder = Path(folder)
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTS):
                out.append(Path(root) / name)
    return sorted(out)


def square_resize_image(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop a PIL image to a square (keeping the aspect ratio), then resize to ``size``."""
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return img


def read_image(path: str | Path, size: int, channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode one file into uint8 ``[channels, size, size]``; also return its native (height, width).

    Raises whatever Pillow raises for a file it cannot read (OSError, ValueError, ...).
    """
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as img:
        img.draft(mode, (size, size))  # JPEG: let libjpeg decode at >= size (much faster for big photos)
        native = (img.size[1], img.size[0])
        img.load()
        arr = np.asarray(square_resize_image(img.convert(mode), size), dtype=np.uint8)
    return arr.reshape(size, size, channels).transpose(2, 0, 1), native


@dataclass
class DecodeResult:
    """What :func:`decode_images` found: unreadable files (path, reason) and native sizes seen."""

    bad: list[tuple[str, str]] = field(default_factory=list)
    native_sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    seconds: float = 0.0

    def bad_indices(self, files: Sequence[str | Path]) -> set[int]:
        names = {p for p, _ in self.bad}
        return {i for i, f in enumerate(files) if str(f) in names}


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _reason(exc: BaseException, path: str) -> str:
    """Pillow's message without the path it repeats ("cannot identify image file '/x/y.png'")."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text.replace(f" {path!r}", "").replace(f" {path}", "").strip()
    return text or type(exc).__name__


def decode_images(files: Sequence[str | Path], out: np.ndarray, size: int, channels: int, *,
                  workers: int = 0, progress: bool = True, desc: str = "decoding",
                  read: Callable[[str | Path, int, int], tuple[np.ndarray, tuple[int, int]]] = read_image,
                  ) -> DecodeResult:
    """Decode ``files`` into ``out[i]`` (uint8 ``[len(files), channels, size, size]``), in parallel.

    ``workers`` threads (0: every core this process may use). A tqdm bar on stderr shows images/s
    and the ETA when ``progress`` is true and stderr is a terminal. Unreadable files do not stop the
    work: their rows are zeroed and they are returned in ``DecodeResult.bad`` for the caller to
    report (see :func:`bad_files_message`) or skip.
    """
    from tqdm.auto import tqdm

    n = len(files)
    if out.shape != (n, channels, size, size) or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {(n, channels, size, size)}, got {out.dtype} {tuple(out.shape)}")
    workers = workers or default_workers()
    result = DecodeResult()
    chunk = max(1, min(256, n // (workers * 8) or 1))
    t0 = time.perf_counter()

    def work(start: int) -> tuple[int, list[tuple[str, str]], dict[tuple[int, int], int]]:
        bad, sizes = [], {}
        for i in range(start, min(n, start + chunk)):
            try:
                out[i], native = read(files[i], size, channels)
                sizes[native] = sizes.get(native, 0) + 1
            except Exception as exc:  # Pillow raises many types (OSError, ValueError, DecompressionBomb...)
                out[i] = 0
                bad.append((str(files[i]), _reason(exc, str(files[i]))))
        return min(n, start + chunk) - start, bad, sizes

    bar = tqdm(total=n, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
               disable=not progress or not sys.stderr.isatty())
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganzoo-decode") as pool:
            for done, bad, sizes in pool.map(work, range(0, n, chunk)):
                result.bad += bad
                for k, v in sizes.items():
                    result.native_sizes[k] = result.native_sizes.get(k, 0) + v
                bar.update(done)
    finally:
        bar.close()
    result.seconds = time.perf_counter() - t0
    return result


def bad_files_message(bad: Sequence[tuple[str, str]], total: int, what: str = "image") -> str:
    """One line naming the first few unreadable files, their count, and the two ways out."""
    shown = "; ".join(f"{p} ({why})" for p, why in bad[:SHOW_BAD])
    more = f"; and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
    return (
        f"{len(bad)} of {total} {what} files cannot be read: {shown}{more}; fix or remove them, "
        "or pass --set skip_bad_images=true to train without them"
    )


def warn(message: str) -> None:
    """One warning line on stderr, in the CLI's format."""
    print(f"ganzoo: warning: {message}", file=sys.stderr, flush=True)
