"""The ``cyclegan`` architecture plugin on the shared engine.

Tiny everywhere: 8-16 px digits, widths of 4, a handful of steps. Only the built-in plugins this
module needs are loaded (``GANZOO_PLUGINS``), so plugins other engineers are writing cannot change
the outcome.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.api import DataInfo
from ganzoo.engine.build import build_run
from ganzoo.engine.checkpoint import load_checkpoint
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Callback, Trainer
from ganzoo.registry import ALLOW_ENV, STRICT_ENV, get_registry, reset_registry
from ganzoo_plugins.cyclegan import build, linear_decay
from ganzoo_plugins.cyclegan_nets import ImagePool, PatchDiscriminator, ResnetGenerator, auto_d_layers, d_map_size, plan

from conftest import assert_user_error, invoke

TINY = {"ngf": 4, "ndf": 4}


@pytest.fixture(autouse=True)
def only_builtin(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "cyclegan,losses,datasets")
    monkeypatch.delenv(STRICT_ENV, raising=False)
    reset_registry()
    yield
    reset_registry()


def config(**run):
    reg = get_registry()
    spec = reg.get("architecture", "cyclegan")
    hps = {**TINY, **run.pop("hparams", {})}
    run = {"device": "cpu", "batch_size": 4, "steps": 3, "image_size": 16, "log_every": 1, **run}
    r, h = flatten_user(spec, {}, {**run, "hparams": hps})
    return resolve(reg, spec, r, h)


def weights(nets):
    return {f"{n}.{k}": v.detach().clone() for n, m in nets.items() for k, v in m.state_dict().items()}


# --- networks -----------------------------------------------------------------------------------


def test_plan_follows_the_paper_and_shrinks_for_small_images():
    # (residual blocks, PatchGAN stride-2 layers, generator downsamplings)
    assert plan(256, 256) == (9, 3, 2) and d_map_size(256, 3) == 30  # 70x70 PatchGAN, 30x30 patch map
    assert plan(128, 128) == (6, 3, 2)
    assert plan(64, 64) == (4, 3, 2) and plan(32, 32) == (3, 3, 1)
    assert plan(16, 16) == (2, 2, 0) and plan(8, 8) == (2, 1, 0)  # small images: full-resolution generator
    assert plan(16, 16, n_blocks=5, n_layers_d=1, n_down=0) == (5, 1, 0)
    for size in (8, 12, 16, 24, 32, 64):
        assert d_map_size(size, auto_d_layers(size)) >= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        plan(66, 66)
    with pytest.raises(ValueError, match="multiples of 2"):
        plan(17, 17, n_down=1)
    with pytest.raises(ValueError, match="reflection-pad the 1x1 feature map.*at least 8 px"):
        plan(4, 4, n_down=2)
    with pytest.raises(ValueError, match="n_layers_d 2 or less"):
        plan(16, 16, n_layers_d=3)
    with pytest.raises(ValueError, match="n_down must be 0..2"):
        plan(16, 16, n_down=3)


@pytest.mark.parametrize("channels,size,n_down", [(1, 16, -1), (3, 8, -1), (1, 8, 1), (1, 12, 2)])
def test_generators_keep_shape_and_range_discriminators_give_patch_maps(channels, size, n_down):
    hp = {**TINY, "n_blocks": 0, "n_layers_d": 0, "n_down": n_down, "init": "normal"}
    nets = build(DataInfo("unpaired", "t", channels, size, size), hp)
    assert set(nets) == {"G_AB", "G_BA", "D_A", "D_B"}
    x = torch.rand(3, channels, size, size) * 2 - 1
    for g in ("G_AB", "G_BA"):
        y = nets[g](x * 5)  # even far outside [-1, 1] the tanh keeps the output in range
        assert y.shape == x.shape and y.abs().max() <= 1.0
    side = d_map_size(size, auto_d_layers(size))
    for d in ("D_A", "D_B"):
        assert nets[d](x).shape == (3, 1, side, side)
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in nets["G_AB"].modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in nets["D_A"].modules())


def test_networks_are_independent_instances():
    g = ResnetGenerator(1, 1, 4, 2)
    d = PatchDiscriminator(1, 4, 2)
    assert sum(p.numel() for p in g.parameters()) > 0 and sum(p.numel() for p in d.parameters()) > 0
    nets = build(DataInfo("unpaired", "t", 1, 16, 16), {**TINY, "n_blocks": 0, "n_layers_d": 0, "n_down": -1, "init": "default"})
    assert nets["G_AB"].net[1].weight.data_ptr() != nets["G_BA"].net[1].weight.data_ptr()


def test_linear_decay_is_flat_then_linear_in_the_second_half():
    assert [linear_decay(s, 100) for s in (1, 25, 50)] == [1.0, 1.0, 1.0]
    mid, late, last = linear_decay(75, 100), linear_decay(90, 100), linear_decay(100, 100)
    assert 1.0 > mid > late > last > 0.0 and last < 0.03
    assert mid == pytest.approx(1 - 25 / 51)


# --- the image pool -----------------------------------------------------------------------------


def test_image_pool_fills_then_swaps_and_round_trips():
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, gen, torch.device("cpu")), first)  # filling: returned as is
    seen_old = False
    for i in range(10):
        batch = torch.full((4, 1, 1, 1), 100.0 + i)
        out = pool.query(batch, gen, torch.device("cpu"))
        assert out.shape == batch.shape and len(pool.images) == 4
        seen_old |= bool((out != batch).any())  # some came from the history
    assert seen_old
    state = pool.state_dict()
    assert state.shape == (4, 1, 1, 1)
    clone = ImagePool(4)
    clone.load_state_dict(state)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    probe = torch.full((4, 1, 1, 1), -1.0)
    assert torch.equal(pool.query(probe, g1, torch.device("cpu")), clone.query(probe, g2, torch.device("cpu")))
    off = ImagePool(0)
    assert torch.equal(off.query(probe, gen, torch.device("cpu")), probe) and off.state_dict().numel() == 0


# --- training on the shared engine --------------------------------------------------------------


def test_training_updates_all_four_networks_and_writes_the_grid(tmp_path):
    cfg = config(steps=2, hparams={"lambda_identity": 0.5})
    trainer = Trainer(cfg, RunDir(tmp_path / "run"), quiet=True)
    before = weights(trainer.p.nets)
    trainer.fit()
    after = weights(trainer.p.nets)
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        keys = [k for k in before if k.startswith(net + ".")]
        assert any(not torch.equal(before[k], after[k]) for k in keys), f"{net} did not change"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "eval" not in r][-1]
    assert "cycle_l1" in rows[-1]["eval"]  # the end-of-run evaluation row comes last
    for key in ("d_D_A", "d_D_B", "g_adv_AB", "g_adv_BA", "g_cycle", "g_identity", "g_loss"):
        assert key in logged
    # the grid: rows A, A->B, A->B->A, B, B->A, B->A->B of 8 images, 16 px upscaled x2, 2 px padding
    grid = Image.open(tmp_path / "run" / "samples" / "step_000002.png")
    assert grid.size == (8 * 34 + 2, 6 * 34 + 2)
    state = load_checkpoint(RunDir(tmp_path / "run").checkpoint_path)
    assert state["step_state"]["pool_A"].shape == (8, 1, 16, 16)  # 2 steps x batch 4: pool not full yet


def test_preview_rows_are_translations_of_the_fixed_images(tmp_path):
    parts = build_run(config())
    fixed = parts.step.fixed_inputs(parts.ctx, parts.dataset, 64, 0)
    assert fixed["a"].shape == (8, 1, 16, 16) and fixed["b"].shape == (8, 1, 16, 16)
    # domain B of digits-unpaired is inverted: its first row is mostly white, A's mostly black
    assert fixed["a"].mean() < -0.3 < 0.3 < fixed["b"].mean()
    pv = parts.step.preview(parts.ctx, fixed)
    assert pv.nrow == 8 and pv.images.shape == (48, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(pv.images[:8], fixed["a"])
        assert torch.allclose(pv.images[8:16], parts.nets["G_AB"](fixed["a"]))
        assert torch.allclose(pv.images[16:24], parts.nets["G_BA"](parts.nets["G_AB"](fixed["a"])))
        assert torch.allclose(pv.images[32:40], parts.step.translate(parts.ctx, fixed["b"], "BA"))
    with pytest.raises(GanzooError, match="no latent code"):
        parts.step.generate(parts.ctx, torch.zeros(1, 1))


def test_rgb_folders_in_the_cyclegan_layout_train_and_preview(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for sub, count in (("trainA", 3), ("trainB", 5)):
        (tmp_path / sub).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(tmp_path / sub / f"{i}.png")
    cfg = config(data=f"unpaired:{tmp_path}", image_size=8, batch_size=2)
    trainer = Trainer(cfg, RunDir(tmp_path / "run"), quiet=True)
    assert trainer.p.nets["G_AB"](trainer.p.dataset.all_real(2, "b")).shape == (2, 3, 8, 8)
    logs = trainer.train_step(1)
    assert torch.isfinite(logs["g_loss"]) and torch.isfinite(logs["d_loss"])
    pv = trainer.p.step.preview(trainer.p.ctx, trainer.fixed)
    assert pv.nrow == 3 and pv.images.shape == (18, 3, 8, 8)  # 3 images per row: A has only 3


def test_step_losses_pair_each_generator_with_the_right_discriminator():
    parts = build_run(config(hparams={"lambda_cycle": 3.0, "lambda_identity": 0.5}))
    ds, n = parts.dataset, parts.nets
    batch = ds.get(torch.arange(4), torch.arange(4, 8))
    a, b = batch.real, batch.real_b
    torch.manual_seed(0)
    out = parts.step.g_step(parts.ctx, batch)
    with torch.no_grad():
        fb, fa = n["G_AB"](a), n["G_BA"](b)
        want = {
            "adv_AB": 0.5 * (n["D_B"](fb) - 1).pow(2).mean(),  # lsgan: D_B judges G_AB's output
            "adv_BA": 0.5 * (n["D_A"](fa) - 1).pow(2).mean(),
            "cycle": 3.0 * ((n["G_BA"](fb) - a).abs().mean() + (n["G_AB"](fa) - b).abs().mean()),
            "identity": 1.5 * ((n["G_AB"](b) - b).abs().mean() + (n["G_BA"](a) - a).abs().mean()),
        }
    for k, v in want.items():
        assert out[k].item() == pytest.approx(v.item(), rel=1e-5), k
    assert out["loss"].item() == pytest.approx(sum(v.item() for v in want.values()), rel=1e-5)
    off = build_run(config())  # default: identity off
    assert "identity" not in off.step.g_step(off.ctx, batch)
    d = parts.step.d_step(parts.ctx, batch)
    assert d["loss"].item() == pytest.approx(d["D_A"].item() + d["D_B"].item(), rel=1e-6)


def test_paper_variant_restores_the_paper_loss_weights():
    hp = config(variant="paper")["hparams"]
    assert (hp["lambda_cycle"], hp["lambda_identity"]) == (10.0, 0.5)
    hp = config(variant="paper", hparams={"lambda_cycle": 4.0})["hparams"]
    assert (hp["lambda_cycle"], hp["lambda_identity"]) == (4.0, 0.5)  # explicit options beat the variant
    default = config()["hparams"]
    assert (default["lambda_cycle"], default["lambda_identity"]) == (2.0, 0.0)


def test_loss_option_and_penalty_reach_both_discriminators(tmp_path):
    cfg = config(steps=1, loss="hinge", penalty="r1", image_size=8)
    Trainer(cfg, RunDir(tmp_path / "run"), quiet=True).fit()
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["d_penalty"] > 0
    # hinge D loss is >= 0 per discriminator; a hinge G loss is -D(fake), lsgan's would be >= 0
    assert row["d_D_A"] >= 0 and row["d_D_B"] >= 0


class Interrupt(Exception):
    pass


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_checkpoint(self, trainer, step):
        if step == self.step:
            raise Interrupt


def test_resume_is_exact_including_the_image_pool(tmp_path):
    # pool of 6 with batches of 2: full after 3 steps, so the second half draws from the history
    cfg = config(steps=16, batch_size=2, image_size=8, checkpoint_every=8, sample_every=100,
                 log_every=100, hparams={"pool_size": 6})
    straight = Trainer(cfg, RunDir(tmp_path / "a"), quiet=True)
    straight.fit()

    first = Trainer(cfg, RunDir(tmp_path / "b"), quiet=True, callbacks=[StopAt(8)])
    with pytest.raises(Interrupt):
        first.fit()
    resumed = Trainer(cfg, RunDir(tmp_path / "b"), quiet=True)
    resumed.resume()
    assert resumed.start_step == 8 and len(resumed.p.step.pools["A"].images) == 6
    resumed.fit()
    wa, wb = weights(straight.p.nets), weights(resumed.p.nets)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    for k in ("A", "B"):
        assert all(torch.equal(x, y) for x, y in zip(straight.p.step.pools[k].images, resumed.p.step.pools[k].images))

    # control: the same resume with the pool forgotten ends elsewhere, so the pool state matters
    first = Trainer(cfg, RunDir(tmp_path / "c"), quiet=True, callbacks=[StopAt(8)])
    with pytest.raises(Interrupt):
        first.fit()
    lost = Trainer(cfg, RunDir(tmp_path / "c"), quiet=True)
    lost.resume()
    lost.p.step.load_state_dict({})
    assert lost.p.step.pools["A"].images == []
    lost.fit()
    wc = weights(lost.p.nets)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


# --- user mistakes: one line, exit 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    "args,words",
    [
        (["--data", "digits"], ["'cyclegan' trains on unpaired data", "'digits' is image data", "--data"]),
        (["--data", "ring8"], ["unpaired", "points"]),
        (["--image-size", "4"], ["at least 8px", "--image-size 8"]),
        (["--image-size", "18", "--set", "n_down=2"], ["multiples of 4", "--image-size"]),
        (["--image-size", "16", "--set", "n_layers_d=3"], ["n_layers_d 2 or less"]),
        (["--set", "lambda_cycle=-1"], ["lambda_cycle", ">= 0"]),
        (["--set", "pool_size=-2"], ["pool_size"]),
        (["--set", "n_down=5"], ["n_down must be 0..2"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, words):
    r = invoke("train", "cyclegan", *args, "--steps", "1", "--set", "ngf=4", "--set", "ndf=4", "--out", tmp_path / "r", "-q")
    assert_user_error(r, *words)
    assert not (tmp_path / "r" / "checkpoints").exists()
