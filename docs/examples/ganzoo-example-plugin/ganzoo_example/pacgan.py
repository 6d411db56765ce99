"""PacGAN: the vanilla MLP GAN with a packed discriminator (Lin et al. 2018, arXiv:1712.04086).

The discriminator judges ``pack`` samples at once: ``pack`` independent real samples, or ``pack``
independent generated ones, concatenated into one input. A generator that collapses onto a few
modes makes packs of near-identical samples, which the packed discriminator spots easily, so
packing penalises mode collapse. ``pack=1`` is the vanilla GAN.

This module imports only ``ganzoo`` and ``ganzoo.api`` (plus torch), as every plugin should.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo import ArchitectureSpec, ExportSpec, GanzooError, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Step


def _mlp(sizes: list[int], act) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """z ``[N, latent_dim]`` -> samples ``[N, *shape]`` (tanh-bounded for images)."""

    def __init__(self, latent_dim: int, hidden: int, layers: int, shape: tuple[int, ...], bounded: bool):
        super().__init__()
        self.shape = tuple(shape)
        self.net = _mlp([latent_dim] + [hidden] * layers + [math.prod(shape)], nn.ReLU)
        self.out = nn.Tanh() if bounded else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z)).view(z.shape[0], *self.shape)


class PackedDiscriminator(nn.Module):
    """Samples ``[N, *shape]`` -> one score per pack ``[N // pack, 1]``.

    Consecutive samples form a pack; a remainder of fewer than ``pack`` samples is dropped.
    """

    def __init__(self, hidden: int, layers: int, shape: tuple[int, ...], pack: int):
        super().__init__()
        self.pack = pack
        self.net = _mlp([pack * math.prod(shape)] + [hidden] * layers + [1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // self.pack * self.pack
        if n == 0:
            raise ValueError(f"a packed discriminator needs at least {self.pack} samples, got {x.shape[0]}")
        return self.net(x[:n].reshape(n // self.pack, -1))


def build(info, hp):
    if hp["pack"] < 1:
        raise ValueError(f"pack must be at least 1, got {hp['pack']}")
    shape = info.sample_shape
    g = Generator(hp["latent_dim"], hp["hidden"], hp["layers"], shape, bounded=info.kind != "points")
    d = PackedDiscriminator(hp["hidden"], hp["layers"], shape, hp["pack"])
    return {"G": g, "D": d}


class PacGANStep(Step):
    """Losses come from the context, so ``--loss`` and ``--penalty`` work with PacGAN."""

    def _check(self, n: int) -> None:
        pack = int(self.hp["pack"])
        if n < pack:
            raise GanzooError(f"pacgan packs {pack} samples per discriminator input; use --batch-size {pack} or more")

    def d_step(self, ctx, batch):
        real = batch.real
        self._check(real.shape[0])
        fake = ctx.nets["G"](ctx.noise(real.shape[0]))
        return ctx.discriminator_loss(ctx.nets["D"], real, fake)

    def g_step(self, ctx, batch):
        fake = ctx.nets["G"](ctx.noise(batch.real.shape[0]))
        return ctx.generator_loss(ctx.nets["D"], batch.real, fake)


@hookimpl
def ganzoo_architectures():
    adam = OptimizerSpec("adam", 1e-3, (0.5, 0.999))
    return [
        ArchitectureSpec(
            name="pacgan",
            summary="vanilla MLP GAN whose discriminator judges packs of samples (PacGAN, Lin et al. 2018)",
            build=build,
            make_step=PacGANStep,
            data_kinds=("points", "image"),
            default_data="ring8",
            default_loss="ns",
            optimizers={"G": adam, "D": adam},
            hparams=(
                HParam("pack", int, 2, "samples per discriminator input (1: the vanilla GAN); batch size should be a multiple"),
                HParam("latent_dim", int, 64, "size of the latent code z"),
                HParam("hidden", int, 256, "width of every hidden layer"),
                HParam("layers", int, 3, "number of hidden layers in G and in D"),
            ),
            defaults={"steps": 2000, "batch_size": 256, "ema": 0.999},
            tiny={"hidden": 16, "layers": 2, "latent_dim": 8},  # for registry-parametrized tests
            exports=(ExportSpec("G", ("z",), "image", "MLP generator z -> sample"),),
            paper="Lin, Khetan, Fanti, Oh, PacGAN: the power of two samples in GANs, NeurIPS 2018, arXiv:1712.04086",
        )
    ]
