"""Conditional GAN: class-conditional DCGAN networks (Mirza & Osindero 2014; Miyato & Koyama 2018).

Generator ``forward(z, labels)``: a learned label embedding is concatenated to z and decoded by
the DCGAN transposed-conv stack. Discriminator ``forward(x, labels)``: the DCGAN strided-conv trunk
gives features h(x); the logit is the projection discriminator's ``psi(h) + <embed(y), h>``
(Miyato & Koyama 2018), or, with ``--d-cond concat``, a conv head over the features concatenated
with a label map. Real images are scored with their own labels, fakes with the random labels they
were generated from; the penalty's critic scores with the real labels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import ArchitectureSpec, ExportSpec, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Step, conv_plan, down_stack, init_weights, stage_widths, up_stack

NORMS = ("batch", "layer", "none")


class ConditionalGenerator(nn.Module):
    """``forward(z, labels)``: z ``[N, latent_dim]``, labels int64 ``[N]`` -> images in [-1, 1]."""

    def __init__(self, latent_dim: int, num_classes: int, embed_dim: int, ngf: int, channels: int,
                 height: int, width: int):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = up_stack(latent_dim + embed_dim, stage_widths(ngf, stages), channels, (bh, bw))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(code[:, :, None, None])


class ConditionalDiscriminator(nn.Module):
    """``forward(x, labels)``: images ``[N, C, H, W]`` and labels ``[N]`` -> logits ``[N, 1]``."""

    def __init__(self, num_classes: int, ndf: int, channels: int, height: int, width: int,
                 norm: str = "batch", cond: str = "projection"):
        super().__init__()
        bh, bw, stages = conv_plan(height, width)
        widths = stage_widths(ndf, stages)[::-1]
        self.cond, self.num_classes = cond, num_classes
        self.features = down_stack(channels, widths, norm)
        feat = widths[-1] * bh * bw
        if cond == "projection":
            self.psi = nn.Linear(feat, 1)
            self.embed = nn.Embedding(num_classes, feat)
        else:  # concat: a one-hot label map joins the features before the final conv
            self.head = nn.Conv2d(widths[-1] + num_classes, 1, (bh, bw), 1, 0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.cond == "projection":
            h = h.flatten(1)
            return self.psi(h) + (self.embed(labels) * h).sum(1, keepdim=True)
        y = F.one_hot(labels, self.num_classes).to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.head(torch.cat([h, y], dim=1)).flatten(1)


def build(info, hp):
    c, h, w = info.sample_shape
    k = info.num_classes
    g = init_weights(ConditionalGenerator(hp["latent_dim"], k, hp["embed_dim"], hp["ngf"], c, h, w))
    d = init_weights(ConditionalDiscriminator(k, hp["ndf"], c, h, w, hp["d_norm"], hp["d_cond"]))
    return {"G": g, "D": d}


class ConditionalStep(Step):
    uses_labels = True

    def d_step(self, ctx, batch):
        G, D = ctx.nets["G"], ctx.nets["D"]
        real, y_real = batch.real, batch.labels
        n = real.shape[0]
        y_fake = ctx.random_labels(n)
        fake = G(ctx.noise(n), y_fake).detach()
        out = {"adv": ctx.d_loss(D(real, y_real), D(fake, y_fake))}
        pen = ctx.penalty_term(lambda x: D(x, y_real), real, fake)
        out["loss"] = out["adv"] if pen is None else out["adv"] + pen
        if pen is not None:
            out["penalty"] = pen
        return out

    def g_step(self, ctx, batch):
        D = ctx.nets["D"]
        n = batch.real.shape[0]
        y_fake = ctx.random_labels(n)
        fake = ctx.nets["G"](ctx.noise(n), y_fake)
        real_out = None
        if ctx.loss.g_uses_real:  # relativistic losses compare with the real images, under their own labels
            with torch.no_grad():
                real_out = D(batch.real, batch.labels)
        return {"loss": ctx.g_loss(D(fake, y_fake), real_out)}


@hookimpl
def ganzoo_architectures():
    adam = OptimizerSpec("adam", 2e-4, (0.5, 0.999))
    return [
        ArchitectureSpec(
            name="cgan",
            summary="class-conditional DCGAN: label embedding in G, projection discriminator (Miyato & Koyama 2018)",
            build=build,
            make_step=ConditionalStep,
            data_kinds=("image",),
            needs_labels=True,
            default_data="digits",
            default_loss="ns",
            default_penalty="r1",
            optimizers={"G": adam, "D": adam},
            hparams=(
                HParam("latent_dim", int, 100, "size of the latent code z"),
                HParam("embed_dim", int, 32, "size of the generator's label embedding (concatenated to z)"),
                HParam("ngf", int, 64, "generator width: channels at the last hidden resolution"),
                HParam("ndf", int, 64, "discriminator width: channels of the first conv layer"),
                HParam("d_norm", str, "batch", "normalisation of the inner D layers ('layer' or 'none' with --penalty gp)",
                       choices=NORMS),
                HParam("d_cond", str, "projection", "how D sees the label: projection (Miyato & Koyama) or concat",
                       choices=("projection", "concat")),
            ),
            defaults={"image_size": 16, "steps": 1000, "batch_size": 64, "penalty_weight": 1.0},
            exports=(ExportSpec("G", ("z", "labels"), "image", "conditional generator (z, labels) -> image"),),
            min_image_size=8,
            variants={"wgan-gp": {"loss": "wgan", "penalty": "gp", "d_norm": "layer"}},
            tiny={"image_size": 16, "batch_size": 16, "ngf": 8, "ndf": 8},
            paper="Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784; "
                  "Miyato & Koyama, cGANs with Projection Discriminator, ICLR 2018, arXiv:1802.05637",
        )
    ]
