"""ganzoo's built-in data sets, registered through the ``ganzoo_datasets`` hook.

Embedded (``--data NAME``, nothing is ever downloaded): ``ring8``, ``grid25``, ``digits``,
``digits-unpaired``. File formats (``--data NAME:PATH``, files the user already has): ``idx``,
``folder``, ``cifar10``, ``unpaired``. Loaders live in one module each and are imported lazily, so
listing plugins stays light.
"""

from __future__ import annotations

from ganzoo import DatasetSpec, hookimpl


def _lazy(module: str, func: str):
    def load(request):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), func)(request)

    load.__name__ = func
    load.__qualname__ = func
    return load


@hookimpl
def ganzoo_datasets():
    return [
        DatasetSpec(
            name="ring8",
            summary="8 Gaussians on the unit circle at angles 2*pi*i/8, sigma 0.01 (VEEGAN/PacGAN 2D protocol)",
            kind="points",
            load=_lazy("toy2d", "load_ring8"),
        ),
        DatasetSpec(
            name="grid25",
            summary="25 Gaussians on the grid {-4,-2,0,2,4}^2, sigma 0.05 (VEEGAN/PacGAN 2D protocol)",
            kind="points",
            load=_lazy("toy2d", "load_grid25"),
        ),
        DatasetSpec(
            name="digits",
            summary="1,797 real 8x8 handwritten digits shipped with scikit-learn, labels 0-9 (use --image-size)",
            kind="image",
            load=_lazy("digits", "load_digits"),
            labelled=True,
            native_size=_lazy("sizes", "digits"),
        ),
        DatasetSpec(
            name="digits-unpaired",
            summary="unpaired digits (A) vs colour-inverted digits (B), disjoint halves; ground truth B = 255 - A",
            kind="unpaired",
            load=_lazy("digits", "load_digits_unpaired"),
            labelled=True,
            native_size=_lazy("sizes", "digits"),
        ),
        DatasetSpec(
            name="idx",
            summary="MNIST / Fashion-MNIST IDX files (raw or .gz): a folder with train-images-idx3-ubyte",
            kind="image",
            load=_lazy("idx", "load_idx"),
            takes_path=True,
            labelled=True,
            native_size=_lazy("sizes", "idx"),
        ),
        DatasetSpec(
            name="folder",
            summary="image folder with one sub-folder per class (png/jpg/bmp/gif/webp), default 64x64 RGB",
            kind="image",
            load=_lazy("folder", "load_folder"),
            takes_path=True,
            labelled=True,
            native_size=_lazy("sizes", "folder"),
        ),
        DatasetSpec(
            name="cifar10",
            summary="CIFAR-10 python batches (cifar-10-batches-py), read with a restricted unpickler",
            kind="image",
            load=_lazy("cifar10", "load_cifar10"),
            takes_path=True,
            labelled=True,
            native_size=_lazy("sizes", "cifar10"),
        ),
        DatasetSpec(
            name="unpaired",
            summary="CycleGAN layout: PATH/trainA and PATH/trainB image folders, default 64x64 RGB",
            kind="unpaired",
            load=_lazy("unpaired", "load_unpaired"),
            takes_path=True,
            native_size=_lazy("sizes", "unpaired"),
        ),
    ]
