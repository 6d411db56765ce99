"""DCGAN: the deep convolutional GAN of Radford, Metz & Chintala (2016).

Generator: z -> ConvTranspose2d + BatchNorm + ReLU stack -> Tanh. Discriminator: strided Conv2d +
LeakyReLU(0.2) with BatchNorm on the inner layers and no sigmoid (losses take logits). Both are
sized from the data with :func:`ganzoo.api.conv_plan`: 16 px starts at 4x4 and doubles twice,
28 px starts at 7x7 and doubles twice, 32 and 64 px start at 4x4; any b*2^k side with 4 <= b <= 8
works, 8 px being the smallest. Adam(2e-4, beta1 0.5) and N(0, 0.02) initialisation, as in the paper.
Defaults are tuned so that ``ganzoo train dcgan`` on the 8x8 ``digits`` (served at 16 px) passes the
quality bars of ``benchmarks/dcgan_digits.py`` in a few CPU-minutes; at 28 px (MNIST-format files) the
run takes 12,000 steps instead of 5,000 to pass the same bars (``benchmarks/digits28.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import ArchitectureSpec, ExportSpec, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Step, conv_plan, down_stack, init_weights, stage_widths, up_stack

NORMS = ("batch", "layer", "none")


class Generator(nn.Module):
    """``forward(z)``: z ``[N, latent_dim]`` -> images ``[N, C, H, W]`` in [-1, 1]."""

    def __init__(self, latent_dim: int, ngf: int, channels: int, height: int, width: int):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        self.latent_dim = latent_dim
        self.net = up_stack(latent_dim, stage_widths(ngf, stages), channels, (bh, bw))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """``forward(x)``: images ``[N, C, H, W]`` -> logits ``[N, 1]``."""

    def __init__(self, ndf: int, channels: int, height: int, width: int, norm: str = "batch"):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        widths = stage_widths(ndf, stages)[::-1]
        self.features = down_stack(channels, widths, norm)
        self.head = nn.Conv2d(widths[-1], 1, (bh, bw), 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)


def build(info, hp):
    c, h, w = info.sample_shape
    g = Generator(hp["latent_dim"], hp["ngf"], c, h, w)
    d = Discriminator(hp["ndf"], c, h, w, hp["d_norm"])
    return {"G": init_weights(g), "D": init_weights(d)}


class DCGANStep(Step):
    def d_step(self, ctx, batch):
        real = batch.real
        fake = ctx.nets["G"](ctx.noise(real.shape[0]))
        return ctx.discriminator_loss(ctx.nets["D"], real, fake)

    def g_step(self, ctx, batch):
        fake = ctx.nets["G"](ctx.noise(batch.real.shape[0]))
        return ctx.generator_loss(ctx.nets["D"], batch.real, fake)


@hookimpl
def ganzoo_architectures():
    adam = OptimizerSpec("adam", 2e-4, (0.5, 0.999))
    return [
        ArchitectureSpec(
            name="dcgan",
            summary="DCGAN (Radford et al. 2016): transposed-conv generator, strided-conv discriminator, BatchNorm",
            build=build,
            make_step=DCGANStep,
            data_kinds=("image",),
            default_data="digits",
            default_loss="hinge",
            default_penalty="r1",
            optimizers={"G": adam, "D": adam},
            hparams=(
                HParam("latent_dim", int, 100, "size of the latent code z"),
                HParam("ngf", int, 64, "generator width: channels at the last hidden resolution"),
                HParam("ndf", int, 64, "discriminator width: channels of the first conv layer"),
                HParam("d_norm", str, "batch", "normalisation of the inner D layers ('layer' or 'none' with --penalty gp)",
                       choices=NORMS),
            ),
            defaults={"image_size": 16, "steps": 5000, "batch_size": 64, "penalty_weight": 1.0},
            # MNIST-format data at its own 28 px needs more steps for the same bars (benchmarks/digits28.py)
            size_defaults={28: {"steps": 12000}},
            exports=(ExportSpec("G", ("z",), "image", "DCGAN generator z -> image"),),
            min_image_size=8,
            variants={"wgan-gp": {"loss": "wgan", "penalty": "gp", "d_norm": "layer"}},
            tiny={"image_size": 16, "batch_size": 16, "ngf": 8, "ndf": 8},
            paper="Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional "
                  "Generative Adversarial Networks, ICLR 2016, arXiv:1511.06434",
        )
    ]
