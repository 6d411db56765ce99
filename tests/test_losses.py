"""Losses and penalties of the built-in ``losses`` plugin, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganzoo_plugins.losses import ganzoo_losses, ganzoo_penalties

LOSSES = {s.name: s for s in ganzoo_losses()}
PENALTIES = {s.name: s for s in ganzoo_penalties()}
L2 = math.log(2.0)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def sp(x):  # softplus of a python float
    return math.log1p(math.exp(x))


def test_the_plugin_provides_the_documented_names_and_flags():
    assert set(LOSSES) == {"ns", "bce", "lsgan", "hinge", "wgan"}
    assert set(PENALTIES) == {"gp", "r1"}
    assert [n for n, s in LOSSES.items() if s.needs_lipschitz] == ["wgan"]
    assert PENALTIES["gp"].lipschitz and PENALTIES["gp"].per_sample and PENALTIES["gp"].weight == 10
    assert not PENALTIES["r1"].lipschitz and PENALTIES["r1"].weight == 10
    assert LOSSES["wgan"].suggested == {"n_critic": 5, "betas": (0.0, 0.9), "lr": 1e-4}
    assert all(s.paper for s in [*LOSSES.values(), *PENALTIES.values()])


# (loss, real logits, fake logits, expected D loss, expected G loss), computed by hand
CASES = [
    ("ns", t(0.0), t(0.0), 2 * L2, L2),  # D(x) = 1/2 everywhere: -log 1/2 twice; G: -log 1/2
    ("ns", t(2.0, 0.0), t(-1.0, 3.0), (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(3)) / 2, (sp(1) + sp(-3)) / 2),
    ("bce", t(0.0), t(0.0), 2 * L2, -L2),  # G minimises log(1 - 1/2)
    ("bce", t(1.0), t(-2.0), sp(-1) + sp(-2), -sp(-2)),
    ("lsgan", t(1.0), t(0.0), 0.0, 0.5),  # D perfect; G pays 1/2 (0 - 1)^2
    ("lsgan", t(0.0), t(1.0), 1.0, 0.0),
    ("lsgan", t(3.0, 1.0), t(-1.0, 1.0), 0.5 * (2.0 + 1.0), 0.5 * 2.0),
    ("hinge", t(2.0), t(-2.0), 0.0, 2.0),  # outside the margin: no D loss
    ("hinge", t(0.0), t(0.0), 2.0, 0.0),
    ("hinge", t(0.5, 3.0), t(-0.5, 1.0), (0.5 + 0.0) / 2 + (0.5 + 2.0) / 2, (0.5 - 1.0) / 2),
    ("wgan", t(1.0, 3.0), t(0.0, 2.0), 1.0 - 2.0, -1.0),  # E[D(fake)] - E[D(real)]; G: -E[D(fake)]
    ("wgan", t(-4.0), t(6.0), 10.0, -6.0),
]


@pytest.mark.parametrize("name,real,fake,d,g", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_values_at_known_logits(name, real, fake, d, g):
    spec = LOSSES[name]
    assert spec.d_loss(real, fake).item() == pytest.approx(d, abs=1e-12)
    assert spec.g_loss(fake).item() == pytest.approx(g, abs=1e-12)


def test_losses_reduce_any_shape_by_the_mean():
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)  # PatchGAN-style outputs
    for spec in LOSSES.values():
        d, g = spec.d_loss(real, fake), spec.g_loss(fake)
        assert d.shape == () and g.shape == ()
        assert d.item() == pytest.approx(spec.d_loss(real.flatten(), fake.flatten()).item(), rel=1e-6)


def test_generator_gradients_point_the_right_way():
    """Every G loss decreases when the critic scores fakes higher (as 'real')."""
    for spec in LOSSES.values():
        fake = torch.tensor([0.3], requires_grad=True)
        spec.g_loss(fake).backward()
        assert fake.grad.item() < 0, spec.name


def linear_critic(w, b=0.3):
    lin = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
        lin.bias.fill_(b)
    return lin


def test_gp_is_zero_for_a_unit_norm_linear_critic():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64) + 3
    gp = PENALTIES["gp"].fn(linear_critic([0.6, 0.8]), real, fake, generator=gen)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)
    # images [N, C, H, W]: a unit-norm linear map of the flattened pixels
    w = torch.randn(12, dtype=torch.float64)
    critic = nn.Sequential(nn.Flatten(), linear_critic((w / w.norm()).tolist()))
    imgs = torch.rand(5, 3, 2, 2, dtype=torch.float64)
    assert PENALTIES["gp"].fn(critic, imgs, -imgs).item() == pytest.approx(0.0, abs=1e-10)


def test_gp_of_a_linear_critic_is_the_squared_norm_excess_and_trains_the_critic():
    critic = linear_critic([3.0, 4.0])  # ||w|| = 5 everywhere: gp = (5 - 1)^2
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    gp = PENALTIES["gp"].fn(critic, real, fake)
    assert gp.item() == pytest.approx(16.0, rel=1e-9)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(critic.weight.grad, torch.tensor([[4.8, 6.4]], dtype=torch.float64))


def test_gp_uses_interpolates_and_its_generator():
    """D(x) = ||x||^2 / 2 has gradient x: gp depends on where between real and fake it is taken."""

    def critic(x):
        return 0.5 * x.pow(2).sum(1, keepdim=True)

    real = torch.zeros(64, 2, dtype=torch.float64)
    fake = torch.full((64, 2), 3.0, dtype=torch.float64)
    a = PENALTIES["gp"].fn(critic, real, fake, generator=torch.Generator().manual_seed(1))
    b = PENALTIES["gp"].fn(critic, real, fake, generator=torch.Generator().manual_seed(1))
    c = PENALTIES["gp"].fn(critic, real, fake, generator=torch.Generator().manual_seed(2))
    assert a.item() == b.item() and a.item() != c.item() and a.item() > 0
    # gradient at eps*0 + (1-eps)*3 is (1-eps)*(3,3), norm (1-eps)*3*sqrt(2); eps ~ U(0,1)
    # E[(u*3*sqrt 2 - 1)^2] for u ~ U(0,1) = 18/3 - 3*sqrt2 + 1
    assert a.item() == pytest.approx(6 - 3 * math.sqrt(2) + 1, rel=0.25)
    # real and fake batches of different sizes: the common prefix is used
    assert PENALTIES["gp"].fn(linear_critic([0.6, 0.8]), torch.zeros(3, 2, dtype=torch.float64), fake).item() < 1e-10


def test_r1_on_a_known_critic():
    def critic(x):  # gradient x: R1 = 0.5 * mean ||x||^2
        return 0.5 * x.pow(2).sum(1)

    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    r1 = PENALTIES["r1"].fn(critic, real, torch.randn(2, 2, dtype=torch.float64))
    assert r1.item() == pytest.approx(0.5 * (5 + 25) / 2)
    # only real data matters
    assert PENALTIES["r1"].fn(critic, real, torch.zeros(2, 2, dtype=torch.float64)).item() == r1.item()
    # a unit-norm linear critic: 0.5 * 1; and R1 trains the critic towards a flat one at the data
    lin = linear_critic([3.0, 4.0])
    r = PENALTIES["r1"].fn(lin, real, real)
    assert r.item() == pytest.approx(12.5)
    r.backward()
    assert torch.allclose(lin.weight.grad, torch.tensor([[3.0, 4.0]], dtype=torch.float64))
