"""Adversarial losses and discriminator penalties.

All losses take raw discriminator outputs (logits / critic scores, any shape) and reduce by mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo import LossSpec, PenaltySpec, hookimpl


def _bce_d(real, fake):
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _minimax_g(fake):
    # minimise log(1 - D(G(z))) = -softplus(l): the original minimax game
    return -F.softplus(fake).mean()


def _ns_g(fake):
    # maximise log D(G(z)): the non-saturating heuristic of the same paper
    return F.softplus(-fake).mean()


def _lsgan_d(real, fake):
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def _lsgan_g(fake):
    return 0.5 * (fake - 1).pow(2).mean()


def _hinge_d(real, fake):
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _hinge_g(fake):
    return -fake.mean()


def _wgan_d(real, fake):
    return fake.mean() - real.mean()


def _wgan_g(fake):
    return -fake.mean()


def _grad_norm_sq(critic, x):
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def gradient_penalty(critic, real, fake, generator=None, rand=None):
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random interpolates of real and fake. The mixing
    weights come from ``rand(n, 1, ...)`` when the engine passes it (the same draws whatever the
    number of processes), else from ``torch.rand`` with ``generator``."""
    n = min(real.shape[0], fake.shape[0])
    real, fake = real[:n], fake[:n].to(real.dtype)
    ones = [1] * (real.dim() - 1)
    if rand is not None:
        eps = rand(n, *ones).to(device=real.device, dtype=real.dtype)
    else:
        eps = torch.rand(n, *ones, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = eps * real + (1 - eps) * fake
    norm = (_grad_norm_sq(critic, x_hat) + 1e-12).sqrt()
    return (norm - 1).pow(2).mean()


def r1_penalty(critic, real, fake, generator=None):
    """R1: 0.5 * ||grad D(x)||^2 on real data (Mescheder et al. 2018); weight is gamma."""
    return 0.5 * _grad_norm_sq(critic, real).mean()


@hookimpl
def ganzoo_losses():
    return [
        LossSpec("ns", "non-saturating GAN loss: D on BCE, G maximises log D(G(z)) (default)",
                 _bce_d, _ns_g, paper="Goodfellow et al. 2014, arXiv:1406.2661"),
        LossSpec("bce", "the original minimax BCE loss: G minimises log(1 - D(G(z)))",
                 _bce_d, _minimax_g, paper="Goodfellow et al. 2014, arXiv:1406.2661"),
        LossSpec("lsgan", "least squares: D regresses real to 1 and fake to 0, G pushes fake to 1",
                 _lsgan_d, _lsgan_g, paper="Mao et al. 2017, arXiv:1611.04076"),
        LossSpec("hinge", "hinge loss: D max-margin at +-1, G maximises D(G(z))",
                 _hinge_d, _hinge_g, paper="Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018"),
        LossSpec("wgan", "Wasserstein critic loss; pair with --penalty gp or weight clipping",
                 _wgan_d, _wgan_g, suggested={"n_critic": 5, "betas": (0.0, 0.9), "lr": 1e-4},
                 paper="Arjovsky et al. 2017, arXiv:1701.07875", needs_lipschitz=True),
    ]


@hookimpl
def ganzoo_penalties():
    return [
        PenaltySpec("gp", "gradient penalty (||grad D|| - 1)^2 on real/fake interpolates, weight 10",
                    gradient_penalty, weight=10.0, lipschitz=True, per_sample=True,
                    paper="Gulrajani et al. 2017, arXiv:1704.00028"),
        PenaltySpec("r1", "R1 penalty 0.5 ||grad D(x_real)||^2, weight (gamma) 10",
                    r1_penalty, weight=10.0, paper="Mescheder et al. 2018, arXiv:1801.04406"),
    ]
