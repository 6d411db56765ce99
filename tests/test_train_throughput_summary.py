"""The statistics of benchmarks/train_throughput.py on made-up records: step times are medians over
rounds, engine / bare is the median of ratios taken within a round (a machine that slows down between
rounds does not move it), the 1.05x goal is judged on that ratio, and amortised writes are reported
on top of the engine's step time, not hidden in it."""

from __future__ import annotations

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def tt():
    return load_benchmark("train_throughput")


def rec(engine, bare, pgan=None, batch=64, amortised=None):
    rounds = {"engine": engine, "bare": bare}
    if pgan is not None:
        rounds["pytorch-gan"] = pgan
    return {"case": "toy", "arch": "toy", "batch_size": batch, "rounds_s": rounds, "amortised_ms": amortised or {}}


def test_ratios_are_taken_within_a_round(tt):
    # the machine gets 3x slower after round 1 for both loops: each round's ratio is 1.02
    row = tt.summarise_case(rec([0.102, 0.306, 0.306], [0.1, 0.3, 0.3]))
    assert row["engine_vs_bare_rounds"] == [1.02, 1.02, 1.02] and row["engine_vs_bare"] == 1.02
    assert row["pass"] is True and row["engine_ms"] == 306.0 and row["bare_ms"] == 300.0
    # a slowdown that hits the engine in one round and the bare loop in another fools a ratio of medians
    row = tt.summarise_case(rec([0.1, 0.3, 0.3, 0.1, 0.1], [0.1, 0.1, 0.3, 0.3, 0.1]))
    assert row["engine_ms"] / row["bare_ms"] == 1.0
    assert sorted(row["engine_vs_bare_rounds"]) == [0.3333, 1.0, 1.0, 1.0, 3.0] and row["engine_vs_bare"] == 1.0


def test_goal_images_per_second_and_pytorch_gan(tt):
    row = tt.summarise_case(rec([0.12, 0.13, 0.11], [0.1, 0.1, 0.1], pgan=[0.05, 0.05, 0.06], batch=64))
    assert row["engine_vs_bare"] == 1.2 and row["pass"] is False
    assert row["engine_images_per_s"] == round(64 / 0.12, 2) and row["pytorch-gan_images_per_s"] == 1280.0
    assert row["pytorch-gan_vs_bare"] == 0.5
    summary = tt.summarise([rec([0.1] * 3, [0.1] * 3), rec([0.12] * 3, [0.1] * 3) | {"case": "slow"}])
    assert summary["all_pass"] is False and summary["missed"] == ["slow"]
    assert "slow" in tt.table(summary) and "1.200x" in tt.table(summary)


def test_amortised_writes_are_added_on_top_and_missing_loops_are_not_judged(tt):
    row = tt.summarise_case(rec([0.1] * 3, [0.1] * 3, amortised={"sample_grid": 2.0, "checkpoint": 0.5}))
    assert row["engine_ms"] == 100.0 and row["engine_with_writes_ms"] == 102.5
    row = tt.summarise_case(rec([0.1] * 3, []))
    assert row["pass"] is None and "engine_vs_bare" not in row
    assert tt.summarise([rec([0.1] * 3, [])])["all_pass"] is False
