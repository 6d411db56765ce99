"""Per-batch augmentation (flip, load-then-random-crop) and the prefetching batch loader: seeded,
checkpointed, bit-exact across a resume."""

from __future__ import annotations

import pytest
import torch

from ganzoo.api import Batch, DataInfo, Dataset
from ganzoo.data.augment import Augment
from ganzoo.data.loader import BatchLoader
from ganzoo.engine.checkpoint import load_checkpoint
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Sampler, Trainer
from ganzoo.registry import ALLOW_ENV, get_registry, reset_registry

from conftest import invoke


def images(n=32, c=3, h=10, w=10):
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)


def test_flip_is_seeded_and_mirrors_about_half_the_images():
    x = images(64)
    a, b = Augment(flip=True, seed=7).images(x), Augment(flip=True, seed=7).images(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, Augment(flip=True, seed=8).images(x))
    mirrored = [torch.equal(a[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(a[i], x[i]) for i in range(64)]
    assert all(m != k for m, k in zip(mirrored, kept))  # each image is either mirrored or untouched
    assert 16 < sum(mirrored) < 48


def test_random_crop_takes_windows_at_varied_offsets_and_is_seeded():
    x = images(32, h=12, w=12)
    aug = Augment(crop=8, seed=3)
    out = aug.images(x)
    assert out.shape == (32, 3, 8, 8)
    assert torch.equal(out, Augment(crop=8, seed=3).images(x))
    offsets = set()
    for i in range(32):
        hits = [(t, l) for t in range(5) for l in range(5) if torch.equal(out[i], x[i, :, t:t + 8, l:l + 8])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 8  # per-image offsets, not one per batch
    both = Augment(flip=True, crop=8, seed=3)
    batch = both(Batch(x, torch.arange(32), x + 1, None))
    assert batch.real.shape == batch.real_b.shape == (32, 3, 8, 8) and batch.labels.tolist() == list(range(32))
    assert not torch.equal(batch.real_b - 1, batch.real)  # domain B gets its own draws


def tiny_set(n=20):
    x = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8)
    return Dataset(info=DataInfo(kind="image", name="t", channels=1, height=6, width=6), x=x, y=torch.arange(n))


@pytest.mark.parametrize("prefetch", [True, False])
def test_loader_state_is_the_state_after_the_batches_consumed(prefetch):
    data = tiny_set()

    def loader(pf):
        return BatchLoader(data, Sampler(len(data), 1), None, 7, torch.device("cpu"),
                           Augment(flip=True, crop=4, seed=2), prefetch=pf)

    ref = loader(False)
    want = [ref.next() for _ in range(6)]
    run = loader(prefetch)
    got = [run.next() for _ in range(3)]
    state = run.state_dict()
    assert "augment" in state and "sampler" in state
    got += [run.next() for _ in range(3)]
    resumed = loader(prefetch)
    resumed.load_state_dict(state)
    again = [resumed.next() for _ in range(3)]
    for a, b in zip(want, got):
        assert torch.equal(a.real, b.real) and torch.equal(a.labels, b.labels)
    for a, b in zip(want[3:], again):
        assert torch.equal(a.real, b.real) and torch.equal(a.labels, b.labels)
    assert want[0].real.dtype == torch.float32 and want[0].real.shape == (7, 1, 4, 4)
    assert want[0].real.min() >= -1 and want[0].real.max() <= 1
    run.close()
    resumed.close()


@pytest.fixture()
def cyclegan_only(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "cyclegan,losses,datasets")
    reset_registry()
    yield
    reset_registry()


def cyclegan_config(steps, **run):
    reg = get_registry()
    spec = reg.get("architecture", "cyclegan")
    run = {"device": "cpu", "batch_size": 4, "steps": steps, "image_size": 8, "log_every": 1, "seed": 5, **run}
    r, h = flatten_user(spec, {}, {**run, "hparams": {"ngf": 4, "ndf": 4}})
    return resolve(reg, spec, r, h)


def test_cyclegan_defaults_follow_the_reference_implementation(cyclegan_only, tmp_path):
    cfg = cyclegan_config(2)
    assert cfg["augment"] == "flip" and cfg["load_scale"] == pytest.approx(286 / 256)
    assert cfg["augment_min_size"] == 64
    small = Trainer(cfg, RunDir(tmp_path / "small"), quiet=True)  # 8 px digits: below 64 px, left alone
    assert small.p.train_data is small.p.dataset and not small.loader.augment.active
    run = Trainer(cyclegan_config(2, augment_min_size=0), RunDir(tmp_path / "run"), quiet=True)
    assert run.p.train_data.info.height == 9 and run.p.dataset.info.height == 8  # round(8 * 286/256)
    assert run.p.dataset.x.shape[-1] == 8 and run.p.train_data.x.shape[-1] == 9  # metrics see the centre crop
    assert run.loader.augment.flip and run.loader.augment.crop == 8
    batch = run.next_batch()
    assert batch.real.shape == batch.real_b.shape == (4, 1, 8, 8)
    run.fit()
    assert "augment" in load_checkpoint(RunDir(tmp_path / "run").checkpoint_path)["rng"]


def vanilla_config(steps, **run):
    reg = get_registry()
    spec = reg.get("architecture", "vanilla")
    run = {"device": "cpu", "batch_size": 8, "steps": steps, "data": "digits", "image_size": 8, "log_every": 1,
           "seed": 5, "checkpoint_every": 3, **run}
    r, h = flatten_user(spec, {}, run)
    return resolve(reg, spec, r, h)


def test_flip_and_crop_resume_bit_exact(monkeypatch, tmp_path):
    monkeypatch.setenv(ALLOW_ENV, "vanilla,losses,datasets")
    reset_registry()
    aug = {"augment": "flip", "load_size": 10}
    straight = Trainer(vanilla_config(6, **aug), RunDir(tmp_path / "straight"), quiet=True)
    assert straight.loader.augment.crop == 8
    straight.fit()
    Trainer(vanilla_config(3, **aug), RunDir(tmp_path / "split"), quiet=True).fit()
    resumed = Trainer(vanilla_config(6, **aug), RunDir(tmp_path / "split"), quiet=True)
    resumed.resume()
    resumed.fit()
    s = load_checkpoint(RunDir(tmp_path / "straight").checkpoint_path)
    r = load_checkpoint(RunDir(tmp_path / "split").checkpoint_path)
    assert torch.equal(s["rng"]["augment"]["gen"], r["rng"]["augment"]["gen"])
    for net in s["nets"]:
        for k, v in s["nets"][net].items():
            assert torch.equal(v, r["nets"][net][k]), (net, k)
    # the same run without augmentation trains differently: the augmentation is really applied
    Trainer(vanilla_config(6), RunDir(tmp_path / "plain"), quiet=True).fit()
    p = load_checkpoint(RunDir(tmp_path / "plain").checkpoint_path)
    assert any(not torch.equal(v, s["nets"]["G"][k]) for k, v in p["nets"]["G"].items())
    reset_registry()


def test_info_shows_the_augmentation_defaults(cyclegan_only):
    r = invoke("info", "cyclegan")
    assert r.code == 0, r.err
    assert "augment=flip" in r.out and "load_scale=1.1171875" in r.out and "augment_min_size=64" in r.out


def test_augment_settings_are_checked(cyclegan_only, tmp_path):
    from conftest import assert_user_error

    assert_user_error(invoke("train", "cyclegan", "--set", "augment=rotate", "--steps", 1, "--out", tmp_path / "a"),
                      "augment must be none or flip")
    assert_user_error(invoke("train", "cyclegan", "--image-size", 16, "--set", "load_size=12", "--steps", 1,
                             "--set", "ngf=4", "--set", "ndf=4", "--out", tmp_path / "b"),
                      "load_size 12 is smaller than the image size 16")


def test_augment_min_size_leaves_small_images_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(ALLOW_ENV, "vanilla,losses,datasets")
    reset_registry()
    on = Trainer(vanilla_config(1, augment="flip", load_scale=1.25, augment_min_size=8), RunDir(tmp_path / "a"), quiet=True)
    assert on.loader.augment.flip and on.loader.augment.crop == 8 and on.p.train_data.info.height == 10
    off = Trainer(vanilla_config(1, augment="flip", load_scale=1.25, augment_min_size=9), RunDir(tmp_path / "b"), quiet=True)
    assert not off.loader.augment.active and off.p.train_data is off.p.dataset
    forced = Trainer(vanilla_config(1, load_size=10, augment_min_size=9), RunDir(tmp_path / "c"), quiet=True)
    assert forced.loader.augment.crop == 8  # an explicit load_size always applies
    reset_registry()


def test_two_processes_draw_the_augmentation_of_the_global_batch(tmp_path):
    """With torchrun the flips and crops are drawn for the global batch and sliced per process, so
    2 processes train as 1 does (the data-parallel engine's world-size invariance)."""
    from test_distributed import TOL, launch, max_diff, ok, state, train1

    args = ["vanilla", "--device", "cpu", "--data", "digits", "--image-size", 8, "--batch-size", 16, "--set",
            "hidden=16", "--set", "layers=2", "--set", "augment=flip", "--set", "load_size=10", "--set",
            "eval_samples=200", "--quiet", "--steps", 3]
    train1("train", *args, "--out", tmp_path / "one")
    ok(launch("train", *args, "--out", tmp_path / "two", cwd=tmp_path))
    one, two = state(tmp_path / "one"), state(tmp_path / "two")
    assert torch.equal(one["rng"]["augment"]["gen"], two["rng"]["augment"]["gen"])
    assert max_diff(one["nets"], two["nets"]) <= TOL
