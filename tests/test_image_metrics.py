"""Offline image metrics (``ganzoo eval`` on image runs): classifier FD / IS / classes against their
real-data floors, conditional accuracy, translation metrics, the classifier cache, FID through a
TorchScript extractor, and the user-facing error paths.

Generators here are stand-ins built on the real digits, so each metric has a known right answer:
real images passed off as generated must score like the real floor, a collapsed generator must not.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from ganzoo import GanzooError
from ganzoo.api import Dataset, Step
from ganzoo.cli.main import cli
from ganzoo.data.resolve import load_dataset
from ganzoo.engine.build import RunParts
from ganzoo.metrics import classifier as clf_mod
from ganzoo.metrics import stats
from ganzoo.metrics.image import format_table, image_metrics

torch.set_num_threads(1)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """A private classifier cache for this module (never the user's ~/.cache)."""
    path = tmp_path_factory.mktemp("ganzoo_cache")
    old = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = str(path)
    yield path / "classifiers"
    if old is None:
        os.environ.pop("GANZOO_CACHE", None)
    else:
        os.environ["GANZOO_CACHE"] = old


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")  # 1,797 real 8x8 digits


class FakeStep(Step):
    """A 'generator' that is a plain function of (z, labels), or a translator for unpaired data."""

    def __init__(self, fn=None, uses_labels=False, translate=None):
        super().__init__({})
        self.fn, self.uses_labels, self._tr = fn, uses_labels, translate
        self.image_to_image = translate is not None

    def generate(self, ctx, z, labels=None, nets=None):
        return self.fn(z, labels)

    def translate(self, ctx, images, direction="AB", nets=None):
        return self._tr(images, direction)


def parts_for(ds, step, data="digits") -> RunParts:
    ctx = SimpleNamespace(latent_dim=4)
    spec = SimpleNamespace(name="fake", groups={"G": ()})
    return RunParts({"data": data}, spec, ds, {}, step, ctx, torch.device("cpu"))


def real_sampler(ds):
    """Returns real images chosen by the noise: 'generated' images from the true distribution."""
    def fn(z, labels):
        idx = (z[:, 0].abs() * 1e6).long() % len(ds)
        return ds.get(idx).real
    return fn


def collapsed(ds):
    one = ds.get(torch.tensor([0])).real
    return lambda z, labels: one.expand(len(z), -1, -1, -1).clone()


@pytest.fixture(scope="module")
def real_result(digits):
    return image_metrics(parts_for(digits, FakeStep(real_sampler(digits))))


# -- statistics ------------------------------------------------------------------------------------
def test_frechet_distance_matches_the_closed_form_for_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g).double().numpy()
    b = (torch.randn(20000, 3, generator=g) * 2 + 1).double().numpy()  # N(1, 4 I)
    # ||mu||^2 = 3; Tr(I + 4I - 2*2I) = 3 * (1 + 4 - 4) = 3
    assert stats.frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert stats.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_inception_score_and_class_stats_extremes():
    k = 10
    confident_spread = torch.eye(k).repeat(10, 1).double().numpy()
    assert stats.inception_score(confident_spread) == pytest.approx(10.0, rel=1e-6)
    assert stats.inception_score(torch.eye(k)[[3] * 50].double().numpy()) == pytest.approx(1.0, abs=1e-6)
    spread = stats.class_stats(torch.arange(100) % k, k)
    assert spread["covered"] == 10 and spread["kl"] == pytest.approx(0.0, abs=1e-12)
    one = stats.class_stats(torch.full((100,), 7), k)
    assert one["covered"] == 1 and one["kl"] == pytest.approx(math.log(k))
    # 1 of 200 predictions (0.5%) is under the 1% bar for 10 classes: not covered
    rare = stats.class_stats(torch.tensor([0] * 199 + [1]), k)
    assert rare["covered"] == 1


# -- noise -> image ----------------------------------------------------------------------------------
def test_real_data_scores_like_its_floor(real_result):
    r = real_result
    assert r["samples"] == 1797 // 2 and r["num_classes"] == 10
    assert r["classifier_accuracy"] > 0.9
    assert r["classes_covered"] == 10 and r["classes_covered_real"] == 10
    assert 0 < r["classifier_fd_floor"] < 20
    assert r["classifier_fd"] < 3 * r["classifier_fd_floor"]
    assert r["classifier_is_real"] > 7
    assert abs(r["classifier_is"] - r["classifier_is_real"]) < 0.1 * r["classifier_is_real"]
    assert r["class_kl"] < 0.05 and r["class_kl_real"] < 0.05
    assert r["fid"] is None and r["kid"] is None and any("--inception-weights" in n for n in r["notes"])
    assert "conditional_accuracy" not in r and "label_preservation" not in r


def test_collapsed_generator_is_caught(digits, real_result):
    r = image_metrics(parts_for(digits, FakeStep(collapsed(digits))))
    assert r["classes_covered"] == 1 and sum(c > 0 for c in r["class_counts"]) == 1
    assert r["classifier_is"] < 1.1
    assert r["class_kl"] == pytest.approx(math.log(10), rel=1e-6)
    assert r["classifier_fd"] > 50 * r["classifier_fd_floor"]
    assert r["classifier_fd_floor"] == real_result["classifier_fd_floor"]  # the floor is the data's, not G's


def test_classifier_is_cached_and_results_are_deterministic(digits, real_result, cache):
    files = list(cache.glob("digits-classes-8x8c1-*.safetensors"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    trained, loaded = clf_mod.counters["trained"], clf_mod.counters["loaded"]
    rng = torch.get_rng_state()
    again = image_metrics(parts_for(digits, FakeStep(real_sampler(digits))))
    assert torch.equal(torch.get_rng_state(), rng)  # evaluating mid-training must not disturb training
    assert clf_mod.counters["trained"] == trained and clf_mod.counters["loaded"] == loaded + 1
    assert files[0].stat().st_mtime_ns == mtime
    assert again == real_result


def test_corrupt_cache_entry_is_retrained(cache, monkeypatch):
    monkeypatch.setattr(clf_mod, "TRAIN_STEPS", 3)
    x = torch.randint(0, 256, (24, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    y = torch.arange(24) % 2
    first = clf_mod.get_classifier("classes", "tiny-test", x, y, 2)
    assert not first.cached and first.path.is_file()
    first.path.write_bytes(b"not a safetensors file")
    trained = clf_mod.counters["trained"]
    second = clf_mod.get_classifier("classes", "tiny-test", x, y, 2)
    assert clf_mod.counters["trained"] == trained + 1 and not second.cached
    third = clf_mod.get_classifier("classes", "tiny-test", x, y, 2)
    assert third.cached
    for (k, a), b in zip(second.net.state_dict().items(), third.net.state_dict().values()):
        assert torch.equal(a, b), k
    # other images (same spec string) get another classifier
    assert clf_mod.cache_path("classes", "tiny-test", x.flip(0), y.flip(0)) != first.path


def test_conditional_accuracy(digits):
    pools = [torch.nonzero(digits.y == c).flatten() for c in range(10)]

    def obeys(z, labels):  # a real image of the requested class
        pick = (z[:, 0].abs() * 1e6).long()
        idx = torch.stack([pools[int(c)][int(p) % len(pools[int(c)])] for c, p in zip(labels, pick)])
        return digits.get(idx).real

    good = image_metrics(parts_for(digits, FakeStep(obeys, uses_labels=True)))
    assert good["conditional_accuracy"] > 0.9 and good["conditional_accuracy_real"] > 0.9
    assert good["classes_covered"] == 10
    deaf = image_metrics(parts_for(digits, FakeStep(real_sampler(digits), uses_labels=True)))
    assert deaf["conditional_accuracy"] < 0.3  # ignores the label: about 1 in 10 by chance


def test_unlabelled_data_skips_class_metrics_and_says_so(digits):
    ds = Dataset(info=digits.info, x=digits.x)  # same images, no labels
    r = image_metrics(parts_for(ds, FakeStep(real_sampler(ds)), data="digits-nolabels"), samples=100)
    assert r["samples"] == 100
    assert r["classifier_fd"] is None and r["classes_covered"] is None and r["classifier_is"] is None
    assert any("no labels" in n for n in r["notes"])


# -- image -> image ----------------------------------------------------------------------------------
def test_translation_metrics_know_the_true_mapping(monkeypatch):
    monkeypatch.setattr(clf_mod, "TRAIN_STEPS", 150)  # enough for digits and for A-vs-B here
    ds = load_dataset("digits-unpaired")
    invert = image_metrics(parts_for(ds, FakeStep(translate=lambda x, d: -x), data="digits-unpaired"))
    assert invert["mapping_l1"] == 0.0 and invert["cycle_l1"] == 0.0
    assert invert["domain_accuracy"] > 0.95 and invert["domain_accuracy_real"] > 0.95
    assert invert["label_preservation"] > 0.8 and invert["label_preservation_ab"] > 0.8
    assert invert["classes_covered"] == 10
    assert invert["classifier_fd"] < 3 * invert["classifier_fd_floor"]
    same = image_metrics(parts_for(ds, FakeStep(translate=lambda x, d: x.clone()), data="digits-unpaired"))
    assert same["domain_accuracy"] < 0.05  # nothing was translated
    assert same["cycle_l1"] == 0.0 and same["mapping_l1"] > 0.5
    assert same["classifier_fd"] > 10 * same["classifier_fd_floor"]
    blank = image_metrics(parts_for(ds, FakeStep(translate=lambda x, d: torch.zeros_like(x)), data="digits-unpaired"))
    assert blank["label_preservation"] < 0.3 and blank["cycle_l1"] > 0.3
    for key in ("label_preservation", "domain_accuracy", "cycle_l1", "classifier_fd", "classifier_fd_floor",
                "classifier_is", "classes_covered"):
        assert key in blank


# -- FID through a TorchScript extractor ---------------------------------------------------------------
class PoolFeatures(nn.Module):
    """Stands in for inception-2015-12-05.pt: same call, checks what it is fed."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert img.shape[1] == 3, "Inception takes RGB"
        assert bool(img.min() >= 0.0) and bool(img.max() <= 255.0), "Inception takes 0..255"
        assert return_features
        return F.adaptive_avg_pool2d(img / 255.0, 4).flatten(1)


@pytest.fixture(scope="module")
def fake_inception(tmp_path_factory):
    path = tmp_path_factory.mktemp("inc") / "fake-inception.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated in recent torch; the file format is what users have
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(PoolFeatures()).save(str(path))
    return path


def test_fid_and_kid_with_a_torchscript_extractor(digits, fake_inception):
    real = image_metrics(parts_for(digits, FakeStep(real_sampler(digits))), inception_weights=str(fake_inception),
                         samples=150)
    bad = image_metrics(parts_for(digits, FakeStep(collapsed(digits))), inception_weights=str(fake_inception),
                        samples=150)
    assert not any("--inception-weights" in n for n in real["notes"])
    assert real["fid_floor"] > 0 and real["fid"] < 3 * real["fid_floor"]
    assert bad["fid"] > 20 * bad["fid_floor"] and bad["fid_floor"] == real["fid_floor"]
    assert abs(real["kid"]) < 0.05 and bad["kid"] > 10 * abs(real["kid_floor"])
    assert "FID" in format_table(bad)


def test_bad_inception_weights_are_one_clear_error(digits, tmp_path):
    parts = parts_for(digits, FakeStep(collapsed(digits)))
    with pytest.raises(GanzooError, match="no such file.*TorchScript"):
        image_metrics(parts, inception_weights=str(tmp_path / "missing.pt"))
    junk = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(2)}, junk)  # a state dict is not an extractor
    with pytest.raises(GanzooError, match="not a TorchScript file"):
        image_metrics(parts, inception_weights=str(junk))


# -- through the CLI --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "v"
    r = CliRunner().invoke(cli, ["train", "vanilla", "--data", "digits", "--steps", "2", "--batch-size", "8",
                                 "--device", "cpu", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return out


def test_cli_eval_json_and_table(tiny_run):
    r = CliRunner().invoke(cli, ["eval", str(tiny_run), "--json", "--samples", "200"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("classes_covered", "classifier_is", "classifier_fd", "classifier_fd_floor", "class_kl"):
        assert isinstance(res[key], (int, float)), key
    assert res["fid"] is None and res["samples"] == 200 and res["step"] == 2
    table = CliRunner().invoke(cli, ["eval", str(tiny_run), "--samples", "200"])
    assert table.exit_code == 0, table.output
    fd_row = next(line for line in table.stdout.splitlines() if line.startswith("classifier FD"))
    assert fd_row.split()[2:4] == [f"{res['classifier_fd']:.4g}", f"{res['classifier_fd_floor']:.4g}"]
    assert "classes covered" in table.stdout and "/10" in table.stdout


def test_cli_missing_inception_weights_is_one_line(tiny_run, tmp_path):
    r = CliRunner().invoke(cli, ["eval", str(tiny_run), "--inception-weights", str(tmp_path / "nope.pt")])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganzoo: error: --inception-weights") and "Traceback" not in r.output
