"""WGAN: a Wasserstein critic (Arjovsky et al. 2017) trained with a gradient penalty (Gulrajani et al.
2017) by default, or with the original weight clipping (``--set variant=clip``).

* 2D points: MLP generator and critic (the ``gan_toy.py`` shape of the WGAN-GP code).
* images: DCGAN-like convolutional generator and critic sized from the data (8, 16, 28, 32, 64 px ...).

The critic ends in a plain linear layer (no sigmoid) and never uses BatchNorm, which mixes the samples
of a batch and so breaks the per-sample gradient penalty (Gulrajani et al. §4): it uses LayerNorm
(images) or no normalisation (points). Weight clipping happens in :meth:`WGANStep.after_d_update`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo import ArchitectureSpec, ExportSpec, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Step, conv_plan, down_stack, init_weights, stage_widths, up_stack

CLIP_VARIANT = {"penalty": "none", "clip": 0.01, "optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "n_critic": 5}


def _mlp(sizes: list[int], norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            if norm:
                layers.append(nn.LayerNorm(sizes[i + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DataScale(nn.Module):
    """Where 2D data sits: ``loc`` (mean) and ``scale`` (RMS spread), measured on the first training
    batch (data-dependent initialisation) and saved with the weights. The point nets work in
    standardised coordinates, so one set of defaults fits ring8 (radius 1) and grid25 (+-4) alike."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("ready", torch.zeros(()))
        self._settled = False  # Python-side cache of ``ready``: no device sync per training step

    @property
    def settled(self) -> bool:
        return self._settled

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        if self._settled:
            return
        self._settled = True
        if not bool(self.ready):  # read once per process: a resumed run has it from its checkpoint
            x = x.flatten(1).float()
            self.loc.copy_(x.mean(0))
            self.scale.copy_((x - x.mean(0)).pow(2).sum(1).mean().div(x.shape[1]).sqrt().clamp_min(1e-6))
            self.ready.fill_(1.0)


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int, layers: int, shape: tuple[int, ...], bounded: bool):
        super().__init__()
        self.shape = tuple(shape)
        self.net = _mlp([latent_dim] + [hidden] * layers + [math.prod(shape)], norm=False)
        self.out = nn.Tanh() if bounded else nn.Identity()
        self.data = None if bounded else DataScale(math.prod(shape))  # points: standardised output

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.out(self.net(z))
        if self.data is not None:
            y = self.data.loc + self.data.scale * y
        return y.view(z.shape[0], *self.shape)


class MLPCritic(nn.Module):
    """Inputs -> one unbounded score per sample (no sigmoid). For 2D points the input is first
    standardised with the data's location and spread (:class:`DataScale`)."""

    def __init__(self, hidden: int, layers: int, shape: tuple[int, ...], norm: bool, points: bool = False):
        super().__init__()
        dim = math.prod(shape)
        self.data = DataScale(dim) if points else None
        self.net = _mlp([dim] + [hidden] * layers + [1], norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.data is not None:
            x = (x - self.data.loc) / self.data.scale
        return self.net(x)


class ConvGenerator(nn.Module):
    """DCGAN-style generator: z -> [N, C, H, W] in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, out_channels: int, height: int, width: int):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        self.body = up_stack(latent_dim, stage_widths(channels, stages), out_channels, (bh, bw))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z.view(z.shape[0], -1, 1, 1))


class ConvCritic(nn.Module):
    """DCGAN-style critic without BatchNorm: image -> one unbounded score per sample."""

    def __init__(self, channels: int, in_channels: int, height: int, width: int, norm: str):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        widths = stage_widths(channels, stages)[::-1]
        self.body = down_stack(in_channels, widths, norm=norm)
        self.head = nn.Linear(widths[-1] * bh * bw, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


def _norm(hp, kind: str) -> str:
    norm = hp["norm"]
    if norm == "auto":
        return "none" if kind == "points" else "layer"
    return norm


def build(info, hp):
    norm = _norm(hp, info.kind)
    if info.kind == "points" or hp["net"] == "mlp":
        bounded = info.kind != "points"
        g = MLPGenerator(hp["latent_dim"], hp["hidden"], hp["layers"], info.sample_shape, bounded)
        d = MLPCritic(hp["hidden"], hp["layers"], info.sample_shape, norm == "layer", points=not bounded)
        return {"G": g, "D": d}
    g = init_weights(ConvGenerator(hp["latent_dim"], hp["channels"], info.channels, info.height, info.width))
    d = init_weights(ConvCritic(hp["channels"], info.channels, info.height, info.width, norm))
    return {"G": g, "D": d}


class WGANStep(Step):
    """Critic on real vs. generated samples through the run's loss and penalty; optional clipping."""

    def d_step(self, ctx, batch):
        real = batch.real
        for name in ("G", "D"):  # 2D nets: measure the data's location and spread on the first batch
            data = getattr(ctx.nets[name], "data", None)
            if data is not None and not data.settled:
                data.calibrate(ctx.gather_batch(real))  # the global batch: the same scale in every process
        fake = ctx.nets["G"](ctx.noise(real.shape[0]))
        return ctx.discriminator_loss(ctx.nets["D"], real, fake)

    def g_step(self, ctx, batch):
        fake = ctx.nets["G"](ctx.noise(batch.real.shape[0]))
        return ctx.generator_loss(ctx.nets["D"], batch.real, fake)

    def after_d_update(self, ctx):
        c = float(self.hp.get("clip", 0.0))
        if c > 0:
            with torch.no_grad():
                for p in ctx.nets["D"].parameters():
                    p.clamp_(-c, c)


def lr_schedule(step: int, total: int) -> float:
    """Constant learning rate for the first half of the run, then linear decay to 0 at the end: the
    critic and the generator settle instead of circling the equilibrium (sharper modes)."""
    half = total / 2
    return 1.0 if step <= half else max(0.0, (total - step) / (total - half))


def _clips(hp) -> bool:
    return float(hp.get("clip", 0.0)) > 0


@hookimpl
def ganzoo_architectures():
    return [
        ArchitectureSpec(
            name="wgan",
            summary="Wasserstein GAN: critic without sigmoid or BatchNorm, gradient penalty by default "
                    "(--set variant=clip: weight clipping); 2D points or images",
            build=build,
            make_step=WGANStep,
            data_kinds=("points", "image"),
            default_data="ring8",
            default_loss="wgan",
            default_penalty="gp",
            n_critic=5,
            optimizers={"G": OptimizerSpec("adam", 1e-4, (0.0, 0.9)), "D": OptimizerSpec("adam", 1e-4, (0.0, 0.9))},
            hparams=(
                HParam("latent_dim", int, 64, "size of the latent code z"),
                HParam("hidden", int, 256, "MLP nets (points, or --net mlp): width of every hidden layer"),
                HParam("layers", int, 3, "MLP nets: number of hidden layers in G and in the critic"),
                HParam("channels", int, 64, "conv nets (images): channels at full resolution, doubled per halving"),
                HParam("net", str, "conv", "network family for images: 'conv' or 'mlp' (points always use MLPs)",
                       choices=("conv", "mlp")),
                HParam("norm", str, "auto", "critic normalisation: 'auto' (none for points, LayerNorm for images), "
                       "'layer' or 'none' (never BatchNorm: it breaks the gradient penalty)",
                       choices=("auto", "layer", "none")),
                HParam("clip", float, 0.0, "clip every critic weight to [-clip, clip] after each update "
                       "(original WGAN: 0.01); 0: off"),
            ),
            variants={"clip": CLIP_VARIANT},
            critic_constraint=_clips,
            lr_factor=lr_schedule,
            defaults={"steps": 3000, "batch_size": 256, "ema": 0.999},
            # 2D points: a 2D code and a short EMA horizon, as for vanilla (a 64D code or EMA 0.999
            # scores 0 modes on ring8); the penalty weight of the WGAN-GP authors' own toy runs
            # (gan_toy.py: lambda 0.1 -- with 10 the generator collapses towards the centre on 2 of 3
            # seeds) and Adam 5e-4 (1e-4 reaches 70% high quality on ring8 in 3,000 steps, 5e-4 95%).
            # benchmarks/wgan_2d.py
            data_defaults={"points": {"latent_dim": 2, "ema": 0.99, "penalty_weight": 0.1, "lr_g": 5e-4, "lr_d": 5e-4,
                                      "steps": 6000}},
            tiny={"hidden": 16, "layers": 2, "channels": 8, "latent_dim": 8},
            exports=(ExportSpec("G", ("z",), "image", "generator z -> sample"),),
            min_image_size=8,
            paper="Arjovsky et al., Wasserstein GAN, ICML 2017, arXiv:1701.07875; Gulrajani et al., "
                  "Improved Training of Wasserstein GANs, NeurIPS 2017, arXiv:1704.00028",
        )
    ]
