"""The relativistic standard GAN loss, RSGAN (Jolicoeur-Martineau 2018, arXiv:1807.00734).

The discriminator estimates the probability that a real sample is *more realistic* than a fake one,
sigmoid(C(x_r) - C(x_f)), instead of the probability that a sample is real:

    L_D = -E[log sigmoid(C(x_r) - C(x_f))]      L_G = -E[log sigmoid(C(x_f) - C(x_r))]

Real and fake outputs are paired sample by sample. The generator loss needs the outputs on real data
too, so the spec sets ``g_uses_real=True``; architectures pass them through ``ctx.generator_loss``.
"""

from __future__ import annotations

import torch.nn.functional as F

from ganzoo import LossSpec, hookimpl


def _paired(a, b):
    n = min(a.shape[0], b.shape[0])
    return a[:n], b[:n]


def rsgan_d(real_out, fake_out):
    real_out, fake_out = _paired(real_out, fake_out)
    return F.softplus(-(real_out - fake_out)).mean()  # -log sigmoid(C(x_r) - C(x_f))


def rsgan_g(fake_out, real_out):
    fake_out, real_out = _paired(fake_out, real_out)
    return F.softplus(-(fake_out - real_out)).mean()  # -log sigmoid(C(x_f) - C(x_r))


@hookimpl
def ganzoo_losses():
    return [
        LossSpec(
            name="rsgan",
            summary="relativistic standard GAN: D judges whether real data is more realistic than fake",
            d_loss=rsgan_d,
            g_loss=rsgan_g,
            g_uses_real=True,
            paper="Jolicoeur-Martineau, The relativistic discriminator, ICLR 2019, arXiv:1807.00734",
        )
    ]
