"""The statistics of benchmarks/onnx_zoo.py on made-up records: ratios are taken within a round (so
a machine that slows down between rounds does not move them), the best ONNX Runtime variant is the
lowest geometric mean over batch sizes, and a row slower than eager or compile fails the target."""

from __future__ import annotations

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def zoo():
    return load_benchmark("onnx_zoo")


def rec(backend, batch, rounds, variant=None):
    r = {"arch": "toy", "backend": backend, "batch_size": batch, "p50_ms": sorted(rounds)[len(rounds) // 2],
         "rounds_p50_ms": rounds}
    return r | ({"variant": variant} if variant else {})


def test_ratios_are_taken_within_a_round(zoo):
    # the machine gets 3x slower after round 1 for both backends: each round's ratio is 2
    records = [rec("eager", 1, [10.0, 30.0, 30.0]), rec("ort-cpu", 1, [5.0, 15.0, 15.0], "all")]
    ratio, per = zoo.paired(records, "toy", 1, {"backend": "eager"}, {"backend": "ort-cpu", "variant": "all"})
    assert per == [2.0, 2.0, 2.0] and ratio == 2.0
    # a ratio of separately taken medians would be fooled by a drift that hits the two at different rounds
    records = [rec("eager", 1, [10.0, 30.0, 30.0]), rec("ort-cpu", 1, [5.0, 5.0, 15.0], "all")]
    assert records[0]["p50_ms"] / records[1]["p50_ms"] == 6.0
    ratio, per = zoo.paired(records, "toy", 1, {"backend": "eager"}, {"backend": "ort-cpu", "variant": "all"})
    assert per == [2.0, 6.0, 2.0] and ratio == 2.0
    assert zoo.paired(records, "toy", 4, {"backend": "eager"}, {"backend": "ort-cpu"}) == (None, [])


def test_the_best_variant_and_the_targets(zoo):
    records = [rec("eager", b, [4.0 * b] * 3) for b in (1, 64)] + [rec("compile", b, [3.0 * b] * 3) for b in (1, 64)]
    records += [rec("ort-cpu", 1, [1.0] * 3, "all"), rec("ort-cpu", 64, [200.0] * 3, "all"),      # geo-mean 14.1
                rec("ort-cpu", 1, [2.0] * 3, "slow-1"), rec("ort-cpu", 64, [64.0] * 3, "slow-1")]  # geo-mean 11.3
    best = zoo.choose_best(records, ["all", "slow-1"], [1, 64])
    assert best == "slow-1"
    assert [r["best"] for r in records if r["backend"] == "ort-cpu"] == [False, False, True, True]
    summary = zoo.summarise(records, {"toy": {"best_ort_variant": best}})
    rows = {r["batch_size"]: r for r in summary["rows"]}
    assert rows[1]["ort_vs_eager"] == 2.0 and rows[64]["ort_vs_compile"] == 3.0
    never = summary["targets"][-1]
    assert never["pass"] is True
    records[-1]["rounds_p50_ms"] = [300.0] * 3  # now slower than compile (192 ms) at batch 64
    records[-1]["p50_ms"] = 300.0
    never = zoo.summarise(records, {"toy": {"best_ort_variant": best}})["targets"][-1]
    assert never["pass"] is False and never["slower"] == [("toy", 64)]
