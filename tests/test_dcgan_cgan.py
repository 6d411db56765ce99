"""The ``dcgan`` and ``cgan`` architecture plugins: network shapes, label handling, CLI training.

Networks are built narrow (ngf/ndf 8) and runs last 2-3 steps at 16 px, so the module stays fast.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganzoo.api import DataInfo, conv_plan
from ganzoo.cli.main import cli
from ganzoo.registry import reset_registry
from ganzoo_plugins import cgan, dcgan

SIZES = (16, 28, 32, 64)
DC_HP = {"latent_dim": 16, "ngf": 8, "ndf": 8, "d_norm": "batch"}
C_HP = {**DC_HP, "embed_dim": 4, "d_cond": "projection"}


def info(size: int, channels: int, classes: int = 0) -> DataInfo:
    names = tuple(str(i) for i in range(classes))
    return DataInfo("image", "test", channels, size, size, num_classes=classes, class_names=names)


@pytest.fixture
def run_cli(monkeypatch):
    """Invoke the ``ganzoo`` CLI in-process with only the plugins this module needs."""
    monkeypatch.setenv("GANZOO_PLUGINS", "dcgan,cgan,losses,datasets")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    reset_registry()

    def run(*args: str):
        return CliRunner().invoke(cli, list(args))

    yield run
    reset_registry()


# -- sizing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, plan", [(8, (4, 4, 1)), (16, (4, 4, 2)), (28, (7, 7, 2)), (32, (4, 4, 3)), (64, (4, 4, 4)), (48, (6, 6, 3))]
)
def test_conv_plan(size, plan):
    assert conv_plan(size, size) == plan


@pytest.mark.parametrize("size", [7, 33, 36 * 3])
def test_conv_plan_rejects_unreachable_sizes(size):
    with pytest.raises(ValueError, match="--image-size"):
        conv_plan(size, size)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_dcgan_shapes(size, channels):
    nets = dcgan.build(info(size, channels), DC_HP)
    g, d = nets["G"], nets["D"]
    z = torch.randn(3, 16)
    x = g(z)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # Tanh output
    logits = d(x)
    assert logits.shape == (3, 1)
    # logits, not probabilities: no sigmoid at the end of D
    assert not isinstance(list(d.modules())[-1], torch.nn.Sigmoid)


@pytest.mark.parametrize("cond", ["projection", "concat"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_cgan_shapes(size, channels, cond):
    nets = cgan.build(info(size, channels, classes=5), {**C_HP, "d_cond": cond})
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 4])
    x = nets["G"](z, y)
    assert x.shape == (4, channels, size, size)
    assert nets["D"](x, y).shape == (4, 1)


def test_dcgan_uses_paper_init_and_optimiser():
    spec = dcgan.ganzoo_architectures()[0]
    assert spec.optimizers["G"].lr == 2e-4 and spec.optimizers["G"].betas == (0.5, 0.999)
    assert spec.default_data == "digits" and spec.exports[0].inputs == ("z",)
    torch.manual_seed(0)
    g = dcgan.build(info(32, 1), {**DC_HP, "ngf": 64})["G"]
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


# -- labels --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cond", ["projection", "concat"])
def test_cgan_honours_labels(cond):
    torch.manual_seed(0)
    nets = cgan.build(info(16, 1, classes=10), {**C_HP, "d_cond": cond})
    g, d = nets["G"].eval(), nets["D"].eval()
    z = torch.randn(10, 16)
    a, b = torch.zeros(10, dtype=torch.long), torch.arange(10)
    with torch.no_grad():
        same = torch.equal(g(z, a), g(z, a.clone()))
        xa, xb = g(z, a), g(z, b)
        x = torch.rand(10, 1, 16, 16) * 2 - 1
        da, db = d(x, a), d(x, b)
    assert same
    # row 0 has the same label in both batches, so it must match; all others must differ
    assert torch.allclose(xa[0], xb[0])
    assert all((xa[i] - xb[i]).abs().max() > 1e-5 for i in range(1, 10))
    assert torch.allclose(da[0], db[0])
    assert all((da[i] - db[i]).abs().max() > 1e-6 for i in range(1, 10))


def test_cgan_spec():
    spec = cgan.ganzoo_architectures()[0]
    assert spec.needs_labels and spec.default_data == "digits"
    assert spec.exports[0].inputs == ("z", "labels") and spec.make_step({}).uses_labels


# -- training through the CLI --------------------------------------------------------------------

TINY = ("--image-size", "16", "--batch-size", "16", "--set", "ngf=8", "--set", "ndf=8", "--device", "cpu", "--quiet")


def test_dcgan_trains_on_digits(run_cli, tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", "dcgan", "--steps", "3", "--out", str(out), *TINY)
    assert res.exit_code == 0, res.output
    assert (out / "checkpoints" / "last.pt").is_file()
    last = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "eval" not in r][-1]
    assert last["step"] == 3 and all(abs(last[k]) < 1e3 for k in ("d_loss", "g_loss"))
    grid = Image.open(out / "samples" / "step_000003.png")
    assert grid.size[0] > 8 * 16 and grid.size[1] > 8 * 16  # 8x8 grid of 16 px images (upscaled)


def test_cgan_trains_and_grid_has_one_row_per_class(run_cli, tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", "cgan", "--steps", "3", "--out", str(out), *TINY)
    assert res.exit_code == 0, res.output
    grid = Image.open(out / "samples" / "step_000003.png")
    # 64 fixed codes -> 6 per class, 10 classes: 10 rows of 6 cells of 32 px (16 px upscaled) + 2 px padding
    assert grid.size == (6 * 34 + 2, 10 * 34 + 2)

    from ganzoo.engine.build import open_run

    parts, _ = open_run(str(out))
    fixed = parts.step.fixed_inputs(parts.ctx, parts.dataset, 64, 4)
    pv = parts.step.preview(parts.ctx, fixed)
    assert pv.nrow == 6 and pv.images.shape == (60, 1, 16, 16)
    with torch.no_grad():
        for row in range(10):
            cells = slice(row * 6, row * 6 + 6)
            want = parts.nets["G"](fixed["z"][cells], torch.full((6,), row))
            assert torch.allclose(pv.images[cells], want, atol=1e-6), f"row {row} is not class {row}"


@pytest.mark.parametrize("penalty, extra", [("gp", ("--set", "d_norm=layer")), ("r1", ())])
def test_cgan_penalty_critic_carries_labels(run_cli, tmp_path, penalty, extra):
    out = tmp_path / penalty
    res = run_cli("train", "cgan", "--steps", "2", "--set", "log_every=1",
                  "--penalty", penalty, "--out", str(out), *TINY, *extra)
    assert res.exit_code == 0, res.output
    rows = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "eval" not in r]
    assert rows[-1]["d_penalty"] > 0


def _one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error:"), res.stderr
    for needle in needles:
        assert needle in lines[0]


def test_cgan_on_unlabelled_data_is_one_line(run_cli, tmp_path):
    res = run_cli("train", "cgan", "--data", "ring8", "--steps", "1", "--out", str(tmp_path / "r"), "--quiet")
    _one_line_error(res, "cgan")
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize("arch", ["dcgan", "cgan"])
@pytest.mark.parametrize("size, needle", [("4", "at least 8px"), ("33", "--image-size 32")])
def test_bad_image_size_is_one_line(run_cli, tmp_path, arch, size, needle):
    res = run_cli("train", arch, "--image-size", size, "--steps", "1", "--out", str(tmp_path / "r"), "--quiet")
    _one_line_error(res, needle)


# -- defaults ------------------------------------------------------------------------------------


def _resolve(arch: str, **run):
    from ganzoo.engine.config import resolve
    from ganzoo.registry import get_registry

    reg = get_registry()
    return resolve(reg, reg.get("architecture", arch), run, {})


def test_dcgan_default_penalty_keeps_its_tuned_weight(run_cli):
    cfg = _resolve("dcgan")
    assert (cfg["loss"], cfg["penalty"], cfg["penalty_weight"]) == ("hinge", "r1", 1.0)
    assert _resolve("dcgan", penalty="r1")["penalty_weight"] == 1.0  # the same penalty, named
    assert _resolve("dcgan", penalty="r1", penalty_weight=5.0)["penalty_weight"] == 5.0  # the user wins
    assert _resolve("dcgan", penalty="none")["penalty_weight"] == 0.0
    wgp = _resolve("dcgan", variant="wgan-gp")  # another penalty gets its own weight
    assert (wgp["loss"], wgp["penalty"], wgp["penalty_weight"], wgp["hparams"]["d_norm"]) == ("wgan", "gp", 10.0, "layer")
    cg = _resolve("cgan")
    assert (cg["loss"], cg["penalty"], cg["penalty_weight"]) == ("ns", "r1", 1.0)


def test_gradient_penalty_needs_a_batchnorm_free_critic(run_cli, tmp_path):
    res = run_cli("train", "dcgan", "--penalty", "gp", "--steps", "1", "--out", str(tmp_path / "r"), *TINY)
    _one_line_error(res, "BatchNorm")
    ok = run_cli("train", "dcgan", "--set", "variant=wgan-gp", "--steps", "2", "--out", str(tmp_path / "w"), *TINY)
    assert ok.exit_code == 0, ok.output
