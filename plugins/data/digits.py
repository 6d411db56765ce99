"""scikit-learn's 1,797 real 8x8 handwritten digits (shipped with sklearn: nothing is downloaded).

* ``digits``: labelled images, native 8x8, 1 channel, classes "0".."9".
* ``digits-unpaired``: CycleGAN data with a known ground truth. Domain A = digits, domain B =
  colour-inverted digits (255 - x); A and B use disjoint halves of the images (fixed shuffle), so
  no pair is shown. ``extra["mapping"] = "invert"``: the true translation of A is 255 - A.
"""

from __future__ import annotations

import numpy as np
import torch

from ganzoo.api import DataRequest, Dataset

from ._util import check_request, image_info, resize_uint8, to_channels

SPLIT_SEED = 20_240_601  # fixed: the A/B split never depends on the run's seed
CLASS_NAMES = tuple(str(i) for i in range(10))
NATIVE = ((8, 8),)


def _digits(request: DataRequest) -> tuple[torch.Tensor, torch.Tensor]:
    check_request(request)
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.asarray(d.images, dtype=np.float64)  # [1797, 8, 8] in 0..16
    x = torch.from_numpy(np.rint(imgs * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(d.target, dtype=np.int64))
    x = resize_uint8(x, request.image_size)
    x = to_channels(x, request.channels)
    return x, y


def load_digits(request: DataRequest) -> Dataset:
    x, y = _digits(request)
    return Dataset(info=image_info("image", "digits", x, CLASS_NAMES, NATIVE), x=x, y=y)


def load_digits_unpaired(request: DataRequest) -> Dataset:
    x, y = _digits(request)  # resized first, so B is exactly 255 - (served A-style image)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    half = len(x) // 2
    ia, ib = perm[:half], perm[half:]
    x_a, y_a = x[ia], y[ia]
    x_b, y_b = 255 - x[ib], y[ib]
    info = image_info("unpaired", "digits-unpaired", x_a, CLASS_NAMES, NATIVE)
    return Dataset(
        info=info,
        x=x_a,
        y=y_a,
        x_b=x_b,
        y_b=y_b,
        extra={"mapping": "invert"},
    )
