"""Per-batch augmentation on the device, and the run's data at its load and training sizes.

* ``--set augment=flip``: each image of a batch is mirrored left-right with probability 1/2.
* ``--set augment_min_size=S``: ``augment`` and ``load_scale`` leave images smaller than S alone (an
  architecture tuned on tiny images sets it: a 1-pixel shift is an eighth of an 8-pixel digit).
* ``--set load_size=L`` (or ``load_scale=F``, ``L = round(image_size * F)``): the set is decoded at
  ``L`` x ``L`` and every training image is a random ``image_size`` crop of it -- CycleGAN's
  ``--preprocess resize_and_crop`` (Zhu et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix,
  ``data/base_dataset.py``: load 286, crop 256). Metrics, previews and the networks see the
  centre crop.

The random draws (flip mask, crop offsets) come from the augmenter's own CPU ``torch.Generator``,
seeded from the run's seed; its state is saved in the checkpoint, so a resumed run continues the
same draws bit for bit, on any device. Augmentation runs on the batch tensor after it has been moved
to the device: no per-image Python work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import torch

from ..errors import GanzooError
from .base import Batch, Dataset

AUGMENTS = ("none", "flip")


class Augment:
    """Random horizontal flips and/or random ``crop`` x ``crop`` crops of image batches.

    ``flip``: mirror each image with probability 1/2. ``crop``: output side in pixels (None: keep
    the size). ``seed`` seeds the augmenter's own generator. Calling it on a :class:`Batch` returns
    a new batch; domains A and B (unpaired data) get independent draws, labels are unchanged.
    """

    def __init__(self, flip: bool = False, crop: int | None = None, seed: int = 0):
        self.flip = bool(flip)
        self.crop = crop
        self.gen = torch.Generator().manual_seed(int(seed))

    @property
    def active(self) -> bool:
        return self.flip or self.crop is not None

    def images(self, x: torch.Tensor, n_global: int | None = None,
               local: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Augment ``[N, C, H, W]`` images (any dtype, any device); draws are made on the CPU.

        With several processes, ``x`` is this process's share of a global batch of ``n_global``:
        the draws are made for the global batch and ``local`` picks this process's rows of them.
        """
        n, _, h, w = x.shape
        total = n_global or n
        local = local or (lambda t: t)
        if self.crop is not None and (h > self.crop or w > self.crop):
            s = self.crop
            oy = local(torch.randint(0, h - s + 1, (total,), generator=self.gen)).to(x.device)
            ox = local(torch.randint(0, w - s + 1, (total,), generator=self.gen)).to(x.device)
            ar = torch.arange(s, device=x.device)
            rows = (oy[:, None] + ar)[:, None, :, None]  # [N, 1, s, 1]
            cols = (ox[:, None] + ar)[:, None, None, :]  # [N, 1, 1, s]
            x = x.gather(2, rows.expand(n, x.shape[1], s, w)).gather(3, cols.expand(n, x.shape[1], s, s))
        if self.flip:
            mask = local(torch.rand(total, generator=self.gen) < 0.5).to(x.device).view(n, 1, 1, 1)
            x = torch.where(mask, x.flip(-1), x)
        return x

    def __call__(self, batch: Batch, n_global: int | None = None,
                 local: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Batch:
        if not self.active:
            return batch
        real = self.images(batch.real, n_global, local)
        real_b = None if batch.real_b is None else self.images(batch.real_b, n_global, local)
        return Batch(real, batch.labels, real_b, batch.labels_b)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])


def make_augment(cfg: Mapping[str, Any], dataset: Dataset, train_data: Dataset) -> Augment:
    """The run's :class:`Augment`: flips from ``cfg['augment']`` (not for images smaller than
    ``cfg['augment_min_size']``), crops when ``train_data`` (at the load size) is larger than
    ``dataset`` (at the training size). Seeded with ``seed + 5``."""
    name = str(cfg.get("augment", "none") or "none")
    if name not in AUGMENTS:
        raise GanzooError(f"--set augment={name}: choose one of {', '.join(AUGMENTS)}")
    if name != "none" and dataset.info.kind == "points":
        raise GanzooError(f"--set augment={name} augments images, but '{dataset.info.name}' holds 2D points; drop it")
    crop = dataset.info.height if train_data is not dataset and train_data.info.height > dataset.info.height else None
    small = dataset.info.kind != "points" and dataset.info.height < int(cfg.get("augment_min_size") or 0)
    return Augment(flip=name == "flip" and not small, crop=crop, seed=int(cfg.get("seed", 0)) + 5)


def centre_crop(dataset: Dataset, size: int) -> Dataset:
    """A view of ``dataset`` with every image centre-cropped to ``size`` (no copy: a strided view)."""
    h, w = dataset.info.height, dataset.info.width
    top, left = (h - size) // 2, (w - size) // 2

    def view(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x[:, :, top:top + size, left:left + size]

    info = dataclasses.replace(dataset.info, height=size, width=size)
    return dataclasses.replace(dataset, info=info, x=view(dataset.x), x_b=view(dataset.x_b))


def load_run_data(cfg: Mapping[str, Any], registry: Any = None, progress: bool = True) -> tuple[Dataset, Dataset]:
    """(the data at the training size, the data served to training batches) for a run's config.

    They are the same object unless ``load_size``/``load_scale`` asks for load-then-random-crop; then
    the second is decoded at the load size and the first is its centre crop.
    """
    from .resolve import load_dataset

    size = int(cfg.get("image_size") or 0) or None
    load = int(cfg.get("load_size") or 0)
    scale = float(cfg.get("load_scale", 1.0) or 1.0)
    opts = dict(seed=int(cfg.get("seed", 0)), channels=int(cfg.get("image_channels") or 0) or None, registry=registry,
                cache=bool(cfg.get("data_cache", True)), skip_bad_images=bool(cfg.get("skip_bad_images", False)),
                progress=progress, workers=int(cfg.get("data_workers") or 0))
    if not load and scale == 1.0:
        ds = load_dataset(cfg["data"], image_size=size, **opts)
        return ds, ds
    if size is None:  # the size the set comes at (its own, or its format's default) is the training size
        probe = load_dataset(cfg["data"], image_size=None, **opts)
        if probe.info.kind == "points":
            return probe, probe
        size = probe.info.height
        if not load and size < int(cfg.get("augment_min_size") or 0):
            return probe, probe
    elif not load and size < int(cfg.get("augment_min_size") or 0):
        ds = load_dataset(cfg["data"], image_size=size, **opts)
        return ds, ds
    load = load or int(round(size * scale))
    if load < size:
        raise GanzooError(f"load_size {load} is smaller than the image size {size}; random crops need "
                          f"load_size >= image_size (CycleGAN: 286 for 256)")
    full = load_dataset(cfg["data"], image_size=load, **opts)
    if full.info.kind == "points":
        if cfg.get("load_size"):
            raise GanzooError("--set load_size crops images, but the data set holds 2D points; drop it")
        return full, full
    if load == size:
        return full, full
    return centre_crop(full, size), full
