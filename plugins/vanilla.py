"""The vanilla GAN: MLP generator and discriminator (Goodfellow et al. 2014).

Works on 2D points and, flattened, on images. The defaults for 2D points (``data_defaults``) are tuned
so that ``ganzoo train vanilla`` covers the ring of 8 Gaussians (sigma 0.01) with >= 90% high-quality
samples in well under 2 minutes on 2 CPU cores (see benchmarks/vanilla_ring8.py and
docs/architectures/vanilla.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo import ArchitectureSpec, ExportSpec, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Step, init_weights


def _mlp(sizes, act, out_act=None):
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int, layers: int, shape: tuple[int, ...], bounded: bool):
        super().__init__()
        self.shape = tuple(shape)
        out = math.prod(shape)
        self.net = _mlp([latent_dim] + [hidden] * layers + [out], nn.ReLU, nn.Tanh() if bounded else None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, hidden: int, layers: int, shape: tuple[int, ...]):
        super().__init__()
        self.net = _mlp([math.prod(shape)] + [hidden] * layers + [1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def build(info, hp):
    shape = info.sample_shape
    bounded = info.kind != "points"
    g = MLPGenerator(hp["latent_dim"], hp["hidden"], hp["layers"], shape, bounded)
    d = MLPDiscriminator(hp["hidden"], hp["layers"], shape)
    if hp["init"] == "normal":
        init_weights(g)
        init_weights(d)
    return {"G": g, "D": d}


class VanillaStep(Step):
    def d_step(self, ctx, batch):
        real = batch.real
        fake = ctx.nets["G"](ctx.noise(real.shape[0]))
        return ctx.discriminator_loss(ctx.nets["D"], real, fake)

    def g_step(self, ctx, batch):
        fake = ctx.nets["G"](ctx.noise(batch.real.shape[0]))
        return ctx.generator_loss(ctx.nets["D"], batch.real, fake)


@hookimpl
def ganzoo_architectures():
    return [
        ArchitectureSpec(
            name="vanilla",
            summary="MLP generator and discriminator (Goodfellow et al. 2014); 2D points or flattened images",
            build=build,
            make_step=VanillaStep,
            data_kinds=("points", "image"),
            default_data="ring8",
            default_loss="ns",
            optimizers={"G": OptimizerSpec("adam", 1e-3, (0.5, 0.999)), "D": OptimizerSpec("adam", 1e-3, (0.5, 0.999))},
            hparams=(
                HParam("latent_dim", int, 64, "size of the latent code z"),
                HParam("hidden", int, 256, "width of every hidden layer"),
                HParam("layers", int, 3, "number of hidden layers in G and in D"),
                HParam("init", str, "default", "weight init: 'default' (PyTorch) or 'normal' (N(0, 0.02), DCGAN paper)",
                       choices=("default", "normal")),
            ),
            defaults={"steps": 2000, "batch_size": 256, "ema": 0.999},
            # 2D points (ring8: sigma 0.01 at radius 1): a 2D code as in the PacGAN / WGAN-GP toy
            # experiments, least-squares loss and a short EMA horizon; measured in
            # benchmarks/vanilla_ring8.py (a 64D code or EMA 0.999 scores 0 modes in 3000 steps).
            data_defaults={"points": {"loss": "lsgan", "latent_dim": 2, "ema": 0.99, "steps": 3000}},
            tiny={"hidden": 16, "layers": 2, "batch_size": 32},
            exports=(ExportSpec("G", ("z",), "image", "MLP generator z -> sample"),),
            paper="Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014, arXiv:1406.2661",
        )
    ]
