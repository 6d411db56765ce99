"""Public helpers for data-set plugins: build a :class:`~ganzoo.api.Dataset` from numpy arrays,
square crop/resize, channel conversion. Re-exported by :mod:`ganzoo.api`, so a data plugin imports
nothing private; the built-in loaders (``ganzoo_plugins.data``) use them too.

What a loader returns (checked by ganzoo, see docs/data.md): images ``[N, C, H, W]``, ``C`` 1 or 3,
as uint8 in [0, 255] (kept in memory like that and converted to float in [-1, 1] one batch at a time)
or float32 already in [-1, 1]; labels int64 ``[N]`` in ``[0, num_classes)``; 2D points float32 ``[N, 2]``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import GanzooError
from .base import DataInfo, DataRequest, Dataset
from .images import default_workers, square_resize_image

LAYOUTS = ("auto", "NHW", "NHWC", "NCHW")


def images_from_array(array: Any, layout: str = "auto", what: str = "images") -> torch.Tensor:
    """uint8 images as a numpy array (or tensor) -> uint8 tensor ``[N, C, H, W]``.

    ``layout``: ``"NHW"`` (grey), ``"NHWC"`` (as Pillow and most files store them), ``"NCHW"``, or
    ``"auto"``: 3 dimensions are NHW; 4 dimensions are NCHW when the second has 1 or 3 entries and the
    last does not, NHWC in the opposite case (ambiguous shapes such as ``[N, 3, 3, 3]`` need
    ``layout``). Raises GanzooError (one line naming ``what``) for another dtype, rank or channel count.
    """
    x = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if x.dtype != np.uint8:
        raise GanzooError(f"{what}: expected uint8 pixels in [0, 255], got {x.dtype}; "
                          "convert floats in [0, 1] with (x * 255).round().astype(numpy.uint8)")
    if layout not in LAYOUTS:
        raise GanzooError(f"{what}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "auto":
        if x.ndim == 3:
            layout = "NHW"
        elif x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
            layout = "NCHW"
        elif x.ndim == 4 and x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
            layout = "NHWC"
        elif x.ndim == 4:
            raise GanzooError(f"{what}: shape {list(x.shape)} is ambiguous; pass layout='NCHW' or layout='NHWC'")
    want = {"NHW": 3, "NHWC": 4, "NCHW": 4}.get(layout)
    if x.ndim != want:
        raise GanzooError(f"{what}: expected an array [N, H, W], [N, H, W, C] or [N, C, H, W], got shape {list(x.shape)}")
    if layout == "NHW":
        x = x[:, None]
    elif layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise GanzooError(f"{what}: images need 1 or 3 channels, got {x.shape[1]} (shape {list(x.shape)}, layout {layout})")
    if x.shape[0] == 0:
        raise GanzooError(f"{what}: no images")
    return torch.from_numpy(np.ascontiguousarray(x))


def square_resize(x: torch.Tensor, size: int | None, workers: int = 0) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> ``[N, C, size, size]``: centre-crop to a square, then resize with
    Pillow (bilinear, area-aware when shrinking) in ``workers`` threads (0: every core). A no-op when
    ``size`` is None or already the size."""
    if size is None or (x.shape[-1] == size and x.shape[-2] == size):
        return x
    if size < 1:
        raise GanzooError(f"--image-size must be a positive integer, got {size}")
    n, c = x.shape[0], x.shape[1]
    arr = x.permute(0, 2, 3, 1).numpy()
    out = np.empty((n, size, size, c), dtype=np.uint8)

    def one(i: int) -> None:
        img = Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i], mode="L" if c == 1 else "RGB")
        out[i] = np.asarray(square_resize_image(img, size), dtype=np.uint8).reshape(size, size, c)

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:  # Pillow releases the GIL
        list(pool.map(one, range(n), chunksize=256))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def convert_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` between 1 and 3 channels (RGB -> grey with the ITU-R 601-2 luma weights,
    grey -> RGB by repetition); a no-op for None or the same count."""
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
    """The :class:`DataInfo` of images ``x`` ``[N, C, H, W]`` (``kind`` "image" or "unpaired");
    ``native_sizes``: the source files' own (height, width) sizes, most common first, if known."""
    names = tuple(class_names)
    return DataInfo(kind=kind, name=name, channels=int(x.shape[1]), height=int(x.shape[2]), width=int(x.shape[3]),
                    num_classes=len(names), class_names=names, native_sizes=tuple(native_sizes))


def _labels(labels: Any, n: int, what: str) -> torch.Tensor | None:
    if labels is None:
        return None
    y = torch.as_tensor(np.asarray(labels))
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1:
        raise GanzooError(f"{what}: labels must be integers [N], got {y.dtype} {list(y.shape)}")
    if len(y) != n:
        raise GanzooError(f"{what}: {len(y)} labels for {n} images")
    if len(y) and int(y.min()) < 0:
        raise GanzooError(f"{what}: labels must be 0, 1, ..., K-1; got {int(y.min())}")
    return y.long()


def dataset_from_arrays(images: Any, labels: Any = None, *, name: str, request: DataRequest | None = None,
                        class_names: Sequence[str] | None = None, images_b: Any = None, labels_b: Any = None,
                        layout: str = "auto") -> Dataset:
    """A ready :class:`Dataset` from uint8 numpy images (``[N, H, W]``, ``[N, H, W, C]`` or
    ``[N, C, H, W]``, see :func:`images_from_array`) and optional integer labels ``[N]``.

    ``request`` (the :class:`DataRequest` the loader got) applies ``--image-size`` (square crop and
    resize) and ``--channels``. ``class_names`` default to "0", "1", ... for labelled data.
    ``images_b``/``labels_b`` make an unpaired two-domain set (CycleGAN): domain B is resized and
    converted like A. Raises GanzooError with one line naming the data set for bad arrays.
    """
    size = request.image_size if request is not None else None
    channels = request.channels if request is not None else None
    if channels is not None and channels not in (1, 3):
        raise GanzooError(f"--channels must be 1 or 3 for image data, got {channels}")

    def prepare(arr, what):
        return convert_channels(square_resize(images_from_array(arr, layout, what), size), channels)

    x = prepare(images, f"data set '{name}'")
    y = _labels(labels, len(x), f"data set '{name}'")
    x_b = y_b = None
    if images_b is not None:
        x_b = prepare(images_b, f"data set '{name}' (domain B)")
        y_b = _labels(labels_b, len(x_b), f"data set '{name}' (domain B)")
        if x_b.shape[1:] != x.shape[1:]:
            raise GanzooError(f"data set '{name}': domain B images are {list(x_b.shape[1:])}, domain A {list(x.shape[1:])}; "
                              "pass an image size so both are resized alike")
    k = 0
    if y is not None or y_b is not None:
        k = 1 + max(int(t.max()) for t in (y, y_b) if t is not None and len(t))
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
        if len(names) < k:
            raise GanzooError(f"data set '{name}': {len(names)} class names for labels up to {k - 1}")
    else:
        names = tuple(str(i) for i in range(k))
    info = image_info("unpaired" if x_b is not None else "image", name, x, names)
    return Dataset(info=info, x=x, y=y, x_b=x_b, y_b=y_b)
