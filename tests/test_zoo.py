"""The zoo test: every installed architecture, parametrized over the REGISTRY (not a hand-written list).

* each architecture trains a few steps with its default loss on tiny data of every kind it accepts
  (points -> ring8, image -> digits, unpaired -> digits-unpaired; labelled when it needs labels), at
  the sizes its spec's ``tiny`` settings give (else ``min_image_size``): losses stay finite and every
  network's weights change;
* every architecture x loss x penalty (and each variant) either trains 2 steps with finite losses or
  is refused with one line (``ganzoo.engine.config.incompatibility``), through the CLI as a user sees it;
* a critic with BatchNorm must refuse the gradient penalty (Gulrajani et al. 2017, §4);
* the wgan architecture: sizing from the data, no sigmoid/BatchNorm, the clip variant really clips.

A plugin is covered the day it is installed: nothing below names an architecture except the wgan
section at the end.
"""

from __future__ import annotations


import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganzoo import ArchitectureSpec, GanzooError, OptimizerSpec, hookimpl
from ganzoo.api import DataInfo, Step
from ganzoo.cli.main import cli
from ganzoo.data.resolve import load_dataset
from ganzoo.engine.config import FIELDS, flatten_user, incompatibility, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Trainer
from ganzoo.registry import ALLOW_ENV, STRICT_ENV, Registry, get_registry, reset_registry
from ganzoo.testing import checks as kit
from ganzoo.testing.checks import assert_all_changed, assert_finite, snapshot

torch.set_num_threads(1)

REG = Registry()
REG.load_entry_points(allow=None)
ARCHS = REG.names("architecture")
LOSSES = REG.names("loss")
PENALTIES = ["none"] + REG.names("penalty")


def spec(name: str) -> ArchitectureSpec:
    return REG.get("architecture", name)


# The building blocks are the plugin authors' test kit (ganzoo.testing): one code path for both.
def tiny_run(arch: ArchitectureSpec, kind: str, **extra) -> dict:
    return kit.tiny_run(REG, arch, kind, **extra)


def make_trainer(arch: ArchitectureSpec, run: dict, out) -> Trainer:
    return kit.make_trainer(REG, arch, run, out)


# -- every architecture, default loss, every data kind it takes ----------------------------------------

DEFAULT_CASES = [(a, k) for a in ARCHS for k in spec(a).data_kinds]


def test_the_zoo_is_installed():
    assert "wgan" in ARCHS and "vanilla" in ARCHS
    assert {"ns", "bce", "lsgan", "hinge", "wgan"} <= set(LOSSES) and {"gp", "r1"} <= set(PENALTIES)
    assert not REG.errors, f"plugins failed to load: {REG.errors}"


@pytest.mark.parametrize("arch,kind", DEFAULT_CASES, ids=[f"{a}-{k}" for a, k in DEFAULT_CASES])
def test_trains_with_its_default_loss(arch, kind, tmp_path):
    kit.check_training(REG, spec(arch), kind, tmp_path / "run")


# -- every architecture x loss x penalty: trains, or is refused with a reason --------------------------

PAIRS = [(a, lo, pe) for a in ARCHS for lo in LOSSES for pe in PENALTIES]


@pytest.mark.parametrize("arch,loss,penalty", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_every_pair_trains_or_is_refused(arch, loss, penalty, tmp_path):
    kit.check_pair(REG, spec(arch), loss, penalty, tmp_path)


VARIANTS = [(a, v) for a in ARCHS for v in spec(a).variants]


@pytest.mark.parametrize("arch,variant", VARIANTS, ids=[f"{a}-{v}" for a, v in VARIANTS])
def test_every_variant_trains(arch, variant, tmp_path):
    s = spec(arch)
    tr = make_trainer(s, tiny_run(s, s.data_kinds[0], variant=variant), tmp_path)
    for key, value in s.variants[variant].items():
        got = tr.cfg["hparams"][key] if s.hparam(key) and key not in FIELDS else tr.cfg[key]
        assert got == value, f"variant {variant}: {key} = {got!r}, expected {value!r}"
    before = snapshot(tr)
    for step in (1, 2):
        assert_finite(tr.train_step(step))
    assert_all_changed(tr, before)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_batchnorm_critic_refuses_the_gradient_penalty(arch, tmp_path):
    """The gradient penalty is per sample; BatchNorm mixes a batch (Gulrajani et al. 2017, §4)."""
    s = spec(arch)
    kind = s.data_kinds[0]
    run, hps = flatten_user(s, {}, tiny_run(s, kind))
    ds = load_dataset(run["data"], image_size=run.get("image_size") if kind != "points" else None, registry=REG)
    nets = s.build(ds.info, {h.name: h.default for h in s.hparams} | hps)
    bn = [n for n in s.groups["D"] if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets[n].modules())]
    if incompatibility(REG, s, "wgan", "gp", hps) is not None:
        return  # refused by the architecture's own declaration already
    run = tiny_run(s, kind, loss="wgan", penalty="gp")
    if bn:
        with pytest.raises(GanzooError, match=f"critic '{bn[0]}' of '{arch}' uses BatchNorm"):
            make_trainer(s, run, tmp_path)
    else:
        assert make_trainer(s, run, tmp_path).p.ctx.penalty.name == "gp"


# -- refusals as the user sees them: one line, exit code 2 ---------------------------------------------


@pytest.fixture
def cli_run(monkeypatch):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.delenv(STRICT_ENV, raising=False)
    reset_registry()

    def invoke(*args):
        result = CliRunner().invoke(cli, list(args), prog_name="ganzoo")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    yield invoke
    reset_registry()


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: "), result.stderr
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_wgan_loss_without_a_lipschitz_critic_is_refused(cli_run, tmp_path):
    out = str(tmp_path / "never")
    line = one_line_error(cli_run("train", "vanilla", "--loss", "wgan", "--out", out), "'wgan'", "Lipschitz", "--penalty gp")
    assert "variant" not in line  # vanilla has no clipping variant to offer
    one_line_error(cli_run("train", "vanilla", "--loss", "wgan", "--penalty", "r1", "--out", out), "Lipschitz")
    one_line_error(cli_run("train", "wgan", "--penalty", "none", "--out", out), "--penalty gp", "--set variant=clip")
    one_line_error(cli_run("train", "wgan", "--set", "variant=clip", "--clip", "0", "--out", out), "Lipschitz")
    assert not (tmp_path / "never").exists()


def test_unknown_variant_is_refused(cli_run, tmp_path):
    one_line_error(cli_run("train", "wgan", "--set", "variant=clipp", "--out", str(tmp_path)), "no variant 'clipp'", "clip")
    one_line_error(cli_run("train", "vanilla", "--set", "variant=clip", "--out", str(tmp_path)), "'vanilla' has no variant")


def test_declared_incompatibilities_are_refused_by_the_cli(cli_run, tmp_path):
    refusals = [(a, name) for a in ARCHS for name in spec(a).incompatible]
    for arch, name in refusals:  # (the zoo may declare none; the mechanism is tested with a fake below)
        flag = "--loss" if name in LOSSES else "--penalty"
        reason = spec(arch).incompatible[name]
        one_line_error(cli_run("train", arch, flag, name, "--out", str(tmp_path / "x")), f"cannot train with '{name}'", reason)
    assert not (tmp_path / "x").exists()


class _Refuses:
    """A third-party architecture that refuses a loss by name."""

    @hookimpl
    def ganzoo_architectures(self):
        def build(info, hp):
            return {"G": nn.Linear(2, 2), "D": nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))}

        return [ArchitectureSpec(name="bn-critic", summary="test", build=build, make_step=Step,
                                 incompatible={"lsgan": "its critic hates squares"})]


def test_refusals_reach_the_cli_as_one_line(cli_run, tmp_path):
    get_registry().register(_Refuses(), "bn-critic-test")
    one_line_error(cli_run("train", "bn-critic", "--loss", "lsgan", "--out", str(tmp_path / "a")),
                   "'bn-critic' cannot train with 'lsgan': its critic hates squares")
    # not declared, found in the built critic: the gradient penalty with BatchNorm
    one_line_error(cli_run("train", "bn-critic", "--penalty", "gp", "--out", str(tmp_path / "b")),
                   "penalty 'gp' needs per-sample critic scores", "critic 'D' of 'bn-critic' uses BatchNorm")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_loss_and_variant_settings_compose():
    van, w = spec("vanilla"), spec("wgan")
    r, h = flatten_user(van, {}, {"loss": "wgan", "penalty": "gp"})
    cfg = resolve(REG, van, r, h)  # the loss's suggestions apply over the architecture's defaults
    assert (cfg["n_critic"], cfg["beta1"], cfg["beta2"], cfg["lr_g"], cfg["lr_d"]) == (5, 0.0, 0.9, 1e-4, 1e-4)
    assert cfg["penalty_weight"] == 10.0
    r, h = flatten_user(van, {}, {"penalty": "gp"})
    assert resolve(REG, van, r, h)["n_critic"] == 1  # gp alone keeps the non-saturating GAN's optimiser
    r, h = flatten_user(w, {}, {"data": "digits"})  # images: the WGAN-GP paper's settings
    cfg = resolve(REG, w, r, h)
    assert (cfg["loss"], cfg["penalty"], cfg["penalty_weight"], cfg["n_critic"], cfg["optimizer"]) == ("wgan", "gp", 10.0, 5, "adam")
    assert (cfg["beta1"], cfg["beta2"], cfg["lr_g"], cfg["lr_d"], cfg["steps"]) == (0.0, 0.9, 1e-4, 1e-4, 3000)
    assert cfg["hparams"]["clip"] == 0.0 and cfg["hparams"]["latent_dim"] == 64
    cfg = resolve(REG, w, {}, {})  # its default data, ring8: the 2D defaults (gan_toy's lambda, a faster Adam)
    assert (cfg["data"], cfg["penalty"], cfg["penalty_weight"], cfg["n_critic"]) == ("ring8", "gp", 0.1, 5)
    assert (cfg["beta1"], cfg["beta2"], cfg["lr_g"], cfg["lr_d"], cfg["steps"]) == (0.0, 0.9, 5e-4, 5e-4, 6000)
    assert (cfg["hparams"]["latent_dim"], cfg["ema"]) == (2, 0.99)
    r, h = flatten_user(w, {}, {"penalty_weight": 10.0, "lr_g": 1e-4, "lr_d": 1e-4})  # the user's settings still win
    cfg = resolve(REG, w, r, h)
    assert (cfg["penalty_weight"], cfg["lr_g"], cfg["lr_d"]) == (10.0, 1e-4, 1e-4)
    r, h = flatten_user(w, {}, {"variant": "clip"})
    cfg = resolve(REG, w, r, h)
    assert (cfg["penalty"], cfg["optimizer"], cfg["lr_g"], cfg["lr_d"], cfg["n_critic"]) == ("none", "rmsprop", 5e-5, 5e-5, 5)
    assert cfg["hparams"]["clip"] == 0.01 and cfg["variant"] == "clip"
    r, h = flatten_user(w, {}, {"variant": "clip", "lr_d": 1e-4, "clip": 0.05})  # the user's options win
    cfg = resolve(REG, w, r, h)
    assert (cfg["lr_d"], cfg["lr_g"], cfg["hparams"]["clip"]) == (1e-4, 5e-5, 0.05)


def test_an_architectures_own_defaults_beat_its_default_losss_suggestions():
    """Suggestions adapt an architecture to another loss; for its own default loss it is tuned."""
    own = ArchitectureSpec(name="own", summary="t", build=lambda i, h: {}, make_step=Step, default_loss="wgan",
                           default_penalty="gp", n_critic=2, optimizers={"G": OptimizerSpec("adam", 7e-4, (0.5, 0.99)),
                                                                         "D": OptimizerSpec("adam", 3e-3, (0.5, 0.99))})
    cfg = resolve(REG, own, {}, {})
    assert (cfg["lr_g"], cfg["lr_d"], cfg["beta1"], cfg["n_critic"]) == (7e-4, 3e-3, 0.5, 2)
    cfg = resolve(REG, own, {"loss": "hinge"}, {})  # hinge suggests nothing: still the architecture's
    assert (cfg["lr_g"], cfg["n_critic"]) == (7e-4, 2)
    other = ArchitectureSpec(name="other", summary="t", build=lambda i, h: {}, make_step=Step,
                             optimizers=own.optimizers)
    cfg = resolve(REG, other, {"loss": "wgan", "penalty": "gp"}, {})  # not its own loss: suggestions apply
    assert (cfg["lr_g"], cfg["lr_d"], cfg["beta1"], cfg["beta2"], cfg["n_critic"]) == (1e-4, 1e-4, 0.0, 0.9, 5)


# -- wgan ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_wgan_conv_nets_are_sized_from_the_data(size):
    info = DataInfo(kind="image", name="t", channels=3, height=size, width=size)
    nets = REG.create("wgan", info, channels=4, latent_dim=5)
    g, d = nets["G"], nets["D"]
    x = g(torch.randn(3, 5))
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    assert d(x).shape == (3, 1)
    kinds = {type(m) for m in d.modules()}
    assert not any(issubclass(k, (nn.modules.batchnorm._BatchNorm, nn.Sigmoid, nn.Tanh)) for k in kinds)
    if size >= 16:  # two or more halvings: every conv after the first is normalised
        assert nn.GroupNorm in kinds  # LayerNorm over (C, H, W) by default for images
        assert nn.GroupNorm not in {type(m) for m in REG.create("wgan", info, channels=4, norm="none")["D"].modules()}


def test_wgan_points_nets_and_unbuildable_sizes(cli_run, tmp_path):
    nets = REG.create("wgan", DataInfo(kind="points", name="t", dim=2), hidden=7, layers=2, latent_dim=3)
    pts = nets["G"](torch.randn(4, 3))
    assert pts.shape == (4, 2) and nets["D"](pts).shape == (4, 1)
    assert not any(isinstance(m, (nn.Sigmoid, nn.LayerNorm)) for m in nets["D"].modules())
    one_line_error(cli_run("train", "wgan", "--data", "digits", "--image-size", "33", "--out", str(tmp_path / "r")), "33x33")


def test_wgan_clip_variant_clips_the_critic_only(tmp_path):
    s = spec("wgan")
    tr = make_trainer(s, tiny_run(s, "points", variant="clip", clip=0.02), tmp_path)
    tr.train_step(1)
    d = torch.cat([p.detach().flatten() for p in tr.p.nets["D"].parameters()])
    g = torch.cat([p.detach().flatten() for p in tr.p.nets["G"].parameters()])
    assert d.abs().max() <= 0.02 + 1e-7 and d.abs().max() > 0.019  # clipped, and the clip is reached
    assert g.abs().max() > 0.05  # the generator is not clipped


def test_wgan_point_nets_standardise_with_the_first_batch(tmp_path):
    """2D WGAN nets measure the data's centre and spread on the first batch (grid25: +-4, not the
    unit circle), keep them in their state (so resume and export carry them) and change them never after."""
    cfg = resolve(REG, spec("wgan"), {"data": "grid25", "steps": 3, "batch_size": 64, "device": "cpu"},
                  {"hidden": 16, "layers": 2})
    assert cfg["hparams"]["latent_dim"] == 2 and cfg["ema"] == 0.99  # the 2D data defaults
    trainer = Trainer(cfg, RunDir(tmp_path / "run"), quiet=True)
    g, d = trainer.p.nets["G"], trainer.p.nets["D"]
    assert float(g.data.ready) == 0 and float(g.data.scale) == 1.0
    trainer.train_step(1)
    first = g.data.loc.clone(), g.data.scale.clone()
    grid = trainer.p.dataset.x
    assert float(first[1]) == pytest.approx(float(grid.std(0).mean()), rel=0.25)  # ~2.8 for {-4..4}^2
    assert torch.equal(d.data.loc, first[0]) and torch.equal(d.data.scale, first[1])
    trainer.train_step(2)
    assert torch.equal(g.data.loc, first[0]) and torch.equal(g.data.scale, first[1])  # measured once
    assert {"data.loc", "data.scale", "data.ready"} <= set(g.state_dict())
    with torch.no_grad():  # the generator's output lives in data units: loc + scale * net(z)
        z = torch.randn(5, 2)
        assert torch.allclose(g(z), first[0] + first[1] * g.net(z), atol=1e-6)
