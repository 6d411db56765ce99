"""``ganzoo export RUN --onnx --int8``: static int8 (QDQ) generators for every registered architecture.

Each architecture (first data kind it accepts, first exported network) gets a tiny run trained one
step, exported with ``--int8`` through the CLI as a user would; checked here: the file is marked int8
in its metadata with its parity figures and bound, the graph holds QuantizeLinear/DequantizeLinear
pairs that the runtime's CPU graph rewrite leaves alone and that ONNX Runtime's optimised session
still runs as integer kernels, and its output stays within the bound of the float32 export. A bound
that the model cannot meet makes the export refuse with one line and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ganzoo.deploy import quantize
from ganzoo.deploy.cpu_graph import rewrite_for_cpu
from ganzoo.deploy.runtime import GanzooModel, example_inputs
from ganzoo.registry import get_registry
from test_export import invoke, one_line_error, train_tiny


def _cases():
    out = []
    for entry in get_registry().entries("architecture"):
        spec = entry.spec
        out.append((spec.name, spec.data_kinds[0], spec.exports[0].network))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    made: dict[tuple[str, str], Path] = {}

    def get(arch: str, kind: str) -> Path:
        if (arch, kind) not in made:
            made[(arch, kind)] = train_tiny(arch, kind, root / f"{arch}-{kind}")
        return made[(arch, kind)]

    return get


def _meta(model) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


@pytest.mark.parametrize("arch,kind,net", CASES, ids=[c[0] for c in CASES])
def test_int8_export_is_marked_bounded_and_runs_as_int8(runs, tmp_path, arch, kind, net):
    run = runs(arch, kind)
    target = tmp_path / "g.int8.onnx"
    r = invoke("export", run, "--onnx", target, "--net", net, "--int8")
    assert r.exit_code == 0, r.output
    assert "int8 vs float32" in r.stdout and "max abs diff" in r.stdout and "mean abs diff" in r.stdout
    assert not list(tmp_path.glob(".*")), "temporary files were left behind"
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    meta = _meta(model)
    assert meta["quantization"] == quantize.QUANTIZATION and meta["precision"] == "int8"
    assert meta["architecture"] == arch and meta["network"] == net
    mean_abs, max_abs = float(meta["int8_mean_abs_diff"]), float(meta["int8_max_abs_diff"])
    assert 0 <= mean_abs <= max_abs and "<=" in meta["int8_bound"] and meta["int8_calibration"]
    ops = quantize.op_counts(model)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0, ops

    # the runtime's CPU graph rewrite leaves the QDQ graph alone ...
    assert rewrite_for_cpu(model).changes == []
    m8 = GanzooModel(target, provider="cpu")
    assert m8.graph == "plain" and m8.info.precision == "int8" and m8.info.quantization == "int8-qdq"
    # ... and ONNX Runtime's optimised session still runs it quantised (QDQ pairs or fused integer kernels)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(target), so, providers=["CPUExecutionProvider"])
    optimised = quantize.op_counts(onnx.load(str(tmp_path / "optimised.onnx")))
    assert any(optimised[op] for op in quantize.QUANT_OPS), optimised

    # it differs from float32 (really quantised) but by no more than the bound, on fresh inputs
    fp32 = tmp_path / "g.onnx"
    assert invoke("export", run, "--onnx", fp32, "--net", net).exit_code == 0
    m32 = GanzooModel(fp32, provider="cpu", graph="plain")
    feeds = example_inputs(m8.info, 16, seed=3)
    if "image" in feeds:  # images as the run sees them: in [-1, 1] (uniform noise is fine here)
        feeds["image"] = np.clip(feeds["image"], -1, 1)
    a, b = m8.run(**feeds), m32.run(**feeds)
    assert a.shape == b.shape and np.isfinite(a).all()
    diff = np.abs(a.astype(np.float64) - b)
    scale = 1.0 if m8.info.output_kind == "image" else float(b.std())
    assert diff.max() > 0, "the int8 file computes exactly float32: nothing was quantised"
    assert diff.mean() / scale <= 2 * quantize.MEAN_ABS_BOUND


def test_a_model_outside_the_bound_is_refused_and_nothing_is_written(runs, tmp_path, monkeypatch):
    arch, kind, net = CASES[0]
    run = runs(arch, kind)
    monkeypatch.setattr(quantize, "MEAN_ABS_BOUND", 0.0)  # no quantised model is exactly float32
    target = tmp_path / "out" / "g.int8.onnx"
    r = invoke("export", run, "--onnx", target, "--net", net, "--int8")
    one_line_error(r, "int8 quantisation is too lossy", "mean abs difference", "bound 0", "not written")
    assert not target.exists()
    assert not [p for p in target.parent.rglob("*") if p.is_file()], "a partial or temporary file was left"


def test_int8_and_fp16_exclude_each_other(runs, tmp_path):
    arch, kind, net = CASES[0]
    r = invoke("export", runs(arch, kind), "--onnx", tmp_path / "g.onnx", "--int8", "--fp16")
    one_line_error(r, "--fp16 and --int8")


def test_default_name_and_the_report(runs):
    arch, kind, net = next(c for c in CASES if c[0] == "dcgan") if any(c[0] == "dcgan" for c in CASES) else CASES[0]
    run = runs(arch, kind)
    r = invoke("export", run, "--int8", "-q")
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.name.endswith(".int8.onnx") and path.parent == run and path.is_file()
    meta = _meta(onnx.load(str(path)))
    assert json.loads(meta["inputs"]) and int(meta["int8_check_samples"]) > 0


def test_feeds_reader_batches_and_rewinds():
    feeds = {"z": np.arange(10, dtype=np.float32).reshape(10, 1), "labels": np.arange(10, dtype=np.int64)}
    reader = quantize.FeedsReader(feeds, batch=4)
    got = []
    while (b := reader.get_next()) is not None:
        got.append(b)
    assert [len(b["z"]) for b in got] == [4, 4, 2] and got[2]["labels"].tolist() == [8, 9]
    reader.rewind()
    assert reader.get_next()["z"][0, 0] == 0
    with pytest.raises(Exception, match="one non-zero batch size"):
        quantize.FeedsReader({"z": feeds["z"], "labels": feeds["labels"][:3]})


def test_parity_report_and_bound():
    rep = quantize.Int8Report(max_abs=0.2, mean_abs=0.01, scale=1.0, bound=0.05, samples=8)
    assert rep.passed and rep.metadata()["int8_mean_abs_diff"] == "0.01"
    assert not quantize.Int8Report(0.9, 0.06, 1.0, 0.05, 8).passed
    assert not quantize.Int8Report(float("nan"), float("nan"), 1.0, 0.05, 8).passed
    assert quantize.Int8Report(1.0, 0.2, 4.0, 0.05, 8).passed  # points: relative to their std
