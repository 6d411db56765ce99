"""Image files -> a decoded, cached, memory-mapped uint8 set: the helper file-based loaders share.

:func:`load_image_files` is public (re-exported by :mod:`ganzoo.api`): a data set plugin that lists
its own files gets the same parallel decoding, progress bar, bad-file report, ``skip_bad_images``
and decoded cache as the built-in ``folder`` and ``unpaired`` formats. A plugin whose data is not
image files (its own archive format, say) uses :func:`ganzoo.api.cached_array` directly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import PIL
import torch

from ..errors import GanzooError
from .base import DataRequest
from .cache import cached_array
from .images import RESIZE_MODE, bad_files_message, decode_images, default_workers, warn


@dataclass
class ImageSet:
    """Decoded image files.

    ``x``: uint8 ``[N, C, S, S]`` (memory-mapped from the cache unless it is off); ``labels``: int64
    ``[N]`` or None; ``skipped``: (path, reason) of unreadable files left out (only with
    ``skip_bad_images``); ``native_sizes``: the files' own (height, width) sizes, most common first
    (at most 16); ``cache_path``: the ``.npy`` the pixels are mapped from, or None.
    """

    x: torch.Tensor
    labels: torch.Tensor | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    native_sizes: tuple[tuple[int, int], ...] = ()
    cache_path: Path | None = None


def load_image_files(files: Sequence[str | Path], request: DataRequest, *, size: int, channels: int,
                     labels: Sequence[int] | None = None, source: str = "", root: str | Path | None = None,
                     ) -> ImageSet:
    """Decode ``files`` (centre-crop, bilinear resize to ``size``, RGB or L) through the data cache.

    Args:
        files: image paths in the order of the set (sorted by the caller for a stable order).
        request: the loader's :class:`~ganzoo.api.DataRequest`; its ``cache``, ``skip_bad_images``,
            ``progress`` and ``workers`` fields are honoured.
        size: output side in pixels; channels: 1 (grey, ITU-R 601-2 luma) or 3 (RGB).
        labels: one int per file, or None for an unlabelled set.
        source: shown by ``ganzoo cache`` and part of the cache key (e.g. ``"folder:/data/faces"``).
        root: file names are recorded relative to it in the cache sidecar.

    Raises:
        GanzooError: files unreadable (all of them named at once, at most a few shown) unless
            ``request.skip_bad_images``; or every file unreadable.
    """
    files = [str(f) for f in files]
    if labels is not None and len(labels) != len(files):
        raise ValueError(f"load_image_files: {len(labels)} labels for {len(files)} files")
    if not files:
        raise GanzooError(f"{source or 'data set'}: no image files")
    workers = request.workers or default_workers()
    skip = bool(request.skip_bad_images)
    description = {
        "kind": "image-files", "source": source, "size": int(size), "channels": int(channels),
        "resize": RESIZE_MODE, "pillow": PIL.__version__, "skip_bad_images": skip,
        "labels": None if labels is None else _label_digest(labels),
    }
    decoded: dict[str, Any] = {}

    def build(alloc):
        out = alloc((len(files), channels, size, size))
        res = decode_images(files, out, size, channels, workers=workers, progress=request.progress,
                            desc=f"decoding {source or 'images'}")
        keep = list(range(len(files)))
        if res.bad:
            if not skip or len(res.bad) == len(files):
                raise GanzooError(bad_files_message(res.bad, len(files)))
            gone = res.bad_indices(files)
            keep = [i for i in keep if i not in gone]
            compact = alloc((len(keep), channels, size, size))
            for start in range(0, len(keep), 1024):
                part = keep[start:start + 1024]
                compact[start:start + len(part)] = out[part]
        decoded.update(seconds=res.seconds, n=len(files))
        sizes = sorted(res.native_sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:16]
        return {
            "labels": None if labels is None else [int(labels[i]) for i in keep],
            "skipped": [list(b) for b in res.bad],
            "native_sizes": [[h, w, c] for (h, w), c in sizes],
        }

    cached = cached_array(description, build, sources=files, root=root, enabled=request.cache, label=source)
    meta = cached.meta
    if decoded and request.progress:
        secs = max(decoded["seconds"], 1e-9)
        where = f"; cached in {cached.path}" if cached.path else ""
        print(f"ganzoo: decoded {decoded['n']:,} images ({size}x{size}, {channels} channel"
              f"{'s' if channels > 1 else ''}) in {secs:.1f} s, {decoded['n'] / secs:,.0f} images/s "
              f"with {workers} thread{'s' if workers > 1 else ''}{where}", file=sys.stderr, flush=True)
    skipped = [(p, why) for p, why in meta.get("skipped", [])]
    if skipped:
        warn(f"skipping {len(skipped)} unreadable image file{'s' if len(skipped) > 1 else ''} of {len(files)} "
             f"(first: {skipped[0][0]}: {skipped[0][1]}); the list goes to skipped_images.txt in the run directory")
    y = meta.get("labels")
    return ImageSet(
        x=_tensor(cached.array),
        labels=None if y is None else torch.tensor(y, dtype=torch.int64),
        skipped=skipped,
        native_sizes=tuple((int(h), int(w)) for h, w, _ in meta.get("native_sizes", [])),
        cache_path=cached.path,
    )


def _label_digest(labels: Sequence[int]) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]


def _tensor(arr: np.ndarray) -> torch.Tensor:
    """A torch view of a (memory-mapped) array: no copy; batches gather only the rows they use."""
    return torch.from_numpy(arr)
