"""2D mode-coverage metrics (VEEGAN / PacGAN protocol) against samplers whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganzoo.api import DataRequest
from ganzoo.metrics.toy2d import mode_metrics
from ganzoo_plugins.data.toy2d import load_grid25, load_ring8

MIXTURES = {"ring8": load_ring8, "grid25": load_grid25}
PERFECT_HQ = 1 - math.exp(-9 / 2)  # P(|N(0, I_2)| < 3) = 0.98889


def mixture(name: str):
    ds = MIXTURES[name](DataRequest(name=name, seed=0))
    return ds.modes.numpy().astype(np.float64), float(ds.sigma)


def perfect_samples(modes, sigma, n, seed):
    rng = np.random.default_rng(seed)
    return modes[rng.integers(len(modes), size=n)] + sigma * rng.standard_normal((n, 2))


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
@pytest.mark.parametrize("seed", [0, 1])
def test_perfect_sampler_scores_perfectly(name, k, seed):
    modes, sigma = mixture(name)
    m = mode_metrics(perfect_samples(modes, sigma, 2500, seed), modes, sigma)
    assert m["modes"] == m["modes_total"] == k
    assert m["high_quality"] == pytest.approx(PERFECT_HQ, abs=0.01)
    assert 0 <= m["reverse_kl"] < 0.02
    assert m["samples"] == 2500 and len(m["per_mode"]) == k and sum(m["per_mode"]) == round(2500 * m["high_quality"])


def test_the_dataset_itself_scores_perfectly():
    # the embedded training data are the "perfect sampler" the metric is calibrated on
    ds = load_ring8(DataRequest(name="ring8", seed=5))
    m = mode_metrics(ds.x[:2500].numpy(), ds.modes.numpy(), ds.sigma)
    assert m["modes"] == 8 and m["high_quality"] == pytest.approx(PERFECT_HQ, abs=0.01) and m["reverse_kl"] < 0.02


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_collapsed_sampler_scores_one_mode(name, k):
    modes, sigma = mixture(name)
    rng = np.random.default_rng(0)
    pts = modes[3] + sigma * rng.standard_normal((2500, 2))
    m = mode_metrics(pts, modes, sigma)
    assert m["modes"] == 1
    assert m["high_quality"] == pytest.approx(PERFECT_HQ, abs=0.01)  # precise, but one mode only
    assert m["reverse_kl"] == pytest.approx(math.log(k), abs=1e-6)
    assert m["per_mode"][3] == sum(m["per_mode"])


def test_half_of_the_modes():
    modes, sigma = mixture("ring8")
    pts = perfect_samples(modes[::2], sigma, 4000, 2)
    m = mode_metrics(pts, modes, sigma)
    assert m["modes"] == 4
    assert m["reverse_kl"] == pytest.approx(math.log(2), abs=0.01)  # uniform over 4 of 8 modes


def test_far_points_score_zero_quality():
    modes, sigma = mixture("ring8")
    rng = np.random.default_rng(0)
    far = rng.uniform(5, 10, size=(1000, 2)) * rng.choice([-1, 1], size=(1000, 2))
    m = mode_metrics(far, modes, sigma)
    assert m["modes"] == 0 and m["high_quality"] == 0.0 and sum(m["per_mode"]) == 0
    assert m["reverse_kl"] == pytest.approx(math.log(8), abs=1e-6)  # nothing usable: as bad as collapse
    # a blur four sigmas wide around the right modes is not high quality either
    blurred = perfect_samples(modes, 4 * sigma, 2500, 3)
    assert mode_metrics(blurred, modes, sigma)["high_quality"] < 0.30


def test_non_finite_samples_count_as_low_quality():
    modes, sigma = mixture("ring8")
    pts = perfect_samples(modes, sigma, 1000, 4)
    pts[:500] = np.nan
    m = mode_metrics(pts, modes, sigma)
    assert m["high_quality"] == pytest.approx(0.5 * PERFECT_HQ, abs=0.02) and m["modes"] == 8


def test_bad_shape_is_refused():
    modes, sigma = mixture("ring8")
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        mode_metrics(np.zeros((10, 3)), modes, sigma)
