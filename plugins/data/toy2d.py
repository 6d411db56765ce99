"""2D Gaussian mixtures following the VEEGAN / PacGAN protocol.

* ``ring8``:  8 modes on the unit circle at angles 2*pi*i/8, i = 0..7, sigma 0.01. (Not
  ``linspace(0, 2*pi, 8)``, which puts the first and last modes on top of each other.)
* ``grid25``: 25 modes at {-4, -2, 0, 2, 4}^2, sigma 0.05.

A fixed number of samples is drawn once, from a ``torch.Generator`` seeded with the request's seed.
"""

from __future__ import annotations

import math

import torch

from ganzoo.api import DataInfo, DataRequest, Dataset

NUM_SAMPLES = 50_000


def ring8_modes() -> torch.Tensor:
    angles = torch.tensor([2.0 * math.pi * i / 8 for i in range(8)], dtype=torch.float64)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()


def grid25_modes() -> torch.Tensor:
    vals = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = torch.meshgrid(vals, vals, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _mixture(name: str, modes: torch.Tensor, sigma: float, seed: int, n: int = NUM_SAMPLES) -> Dataset:
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(len(modes), (n,), generator=gen)
    x = modes[idx] + sigma * torch.randn(n, 2, generator=gen)
    info = DataInfo(kind="points", name=name, dim=2)
    return Dataset(info=info, x=x.float(), modes=modes.clone(), sigma=sigma)


def load_ring8(request: DataRequest) -> Dataset:
    return _mixture("ring8", ring8_modes(), 0.01, request.seed)


def load_grid25(request: DataRequest) -> Dataset:
    return _mixture("grid25", grid25_modes(), 0.05, request.seed)
