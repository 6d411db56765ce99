"""In-memory data sets and the request a loader gets.

Every loader returns a :class:`Dataset` whose tensors are already in the model's value range:
points ``[N, 2]`` float32; images ``[N, C, H, W]`` either float32 in [-1, 1] or uint8 in [0, 255]
(converted per batch, which keeps large sets such as CIFAR-10 small in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import GanzooError


@dataclass(frozen=True)
class DataRequest:
    """What the user asked for. ``image_size`` None means the data's native size.

    The last four fields are for loaders that decode files (see :func:`ganzoo.api.load_image_files`):
    ``cache`` -- use the decoded data cache (``--set data_cache=false`` turns it off);
    ``skip_bad_images`` -- leave unreadable files out (with one warning) instead of stopping;
    ``progress`` -- show a progress bar and a summary line on stderr (off with ``--quiet``);
    ``workers`` -- decoding threads (0: every core this process may use).
    """

    name: str
    path: str | None = None
    image_size: int | None = None
    channels: int | None = None
    seed: int = 0
    cache: bool = True
    skip_bad_images: bool = False
    progress: bool = True
    workers: int = 0


@dataclass(frozen=True)
class DataInfo:
    """What a network factory needs to know about the data."""

    kind: str  # "points" | "image" | "unpaired"
    name: str = ""
    channels: int = 0
    height: int = 0
    width: int = 0
    dim: int = 0  # points: 2
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    # The source's own image sizes as (height, width), most common first (empty: not known); a set
    # resized to ``height`` x ``width`` still reports the sizes its files have.
    native_sizes: tuple[tuple[int, int], ...] = ()

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.kind == "points":
            return (self.dim,)
        return (self.channels, self.height, self.width)


@dataclass
class Batch:
    real: torch.Tensor
    labels: torch.Tensor | None = None
    real_b: torch.Tensor | None = None
    labels_b: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        def mv(t):
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(mv(self.real), mv(self.labels), mv(self.real_b), mv(self.labels_b))


def as_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1]; float tensors are returned as they are."""
    return _as_float(x)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float().div_(127.5).sub_(1.0)
    return x


@dataclass
class Dataset:
    """An in-memory data set.

    ``x`` holds the samples (domain A for unpaired data), ``y`` optional int64 labels, ``x_b``/``y_b``
    domain B for unpaired data. 2D toy sets also carry ``modes`` ``[K, 2]`` and ``sigma`` so the 2D
    metrics can score samples. ``extra`` is free-form (for example a ground-truth mapping name).
    """

    info: DataInfo
    x: torch.Tensor
    y: torch.Tensor | None = None
    x_b: torch.Tensor | None = None
    y_b: torch.Tensor | None = None
    modes: torch.Tensor | None = None
    sigma: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise GanzooError(
                f"data set '{self.info.name}': {len(self.y)} labels for {len(self.x)} samples"
            )
        if len(self.x) == 0:
            raise GanzooError(f"data set '{self.info.name}' is empty")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def len_b(self) -> int:
        return 0 if self.x_b is None else len(self.x_b)

    def get(self, idx: torch.Tensor, idx_b: torch.Tensor | None = None, as_float: bool = True) -> Batch:
        """Samples at ``idx`` (and domain-B samples at ``idx_b``), images as float in [-1, 1]
        (``as_float=False``: as stored, e.g. uint8, for a cheaper copy to the device; see
        :func:`as_float`). Only the rows asked for are read, so a memory-mapped set stays on disk."""
        conv = _as_float if as_float else (lambda t: t)
        real = conv(self.x[idx])
        labels = None if self.y is None else self.y[idx]
        real_b = labels_b = None
        if self.x_b is not None and idx_b is not None:
            real_b = conv(self.x_b[idx_b])
            labels_b = None if self.y_b is None else self.y_b[idx_b]
        return Batch(real, labels, real_b, labels_b)

    def all_real(self, n: int | None = None, domain: str = "a") -> torch.Tensor:
        """The first ``n`` samples (all when None) as float, for metrics and previews."""
        x = self.x if domain == "a" else self.x_b
        if x is None:
            raise GanzooError(f"data set '{self.info.name}' has no domain {domain.upper()}")
        return _as_float(x[:n] if n is not None else x)
