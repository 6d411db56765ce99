"""The torch-free runtime (ganzoo.deploy.runtime) and ``ganzoo sample MODEL.onnx``.

The models here are tiny ganzoo-contract ONNX graphs built with onnx.helper (milliseconds, no torch
export): a conditional generator (z, labels -> image), an image-to-image one and a 2D one. Real
exports of every architecture are covered by tests/test_export.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from ganzoo import GanzooError
from ganzoo.cli.main import cli
from ganzoo.deploy.runtime import (
    CONTRACT_KEYS,
    GanzooModel,
    ModelInfo,
    load_images,
    make_z,
    save_grid,
)

LATENT, CLASSES, C, H, W = 4, 3, 1, 2, 2


def build(path: Path, kind: str = "conditional", metadata: bool = True) -> Path:
    """A ganzoo-contract model. conditional: image = tanh((z + emb[labels]) @ M) as [N,1,2,2];
    image-to-image: image_out = -image; points: points = z @ P."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    if kind == "image-to-image":
        inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", C, H, W])]
        nodes.append(helper.make_node("Neg", ["image"], ["image_out"]))
        out = helper.make_tensor_value_info("image_out", TensorProto.FLOAT, ["N", C, H, W])
        info = ModelInfo("toy", "G_AB", ("image",), "image_out", "image", channels=C, height=H, width=W, direction="AB")
    elif kind == "points":
        inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT])]
        inits.append(numpy_helper.from_array(rng.standard_normal((LATENT, 2)).astype(np.float32), "P"))
        nodes.append(helper.make_node("MatMul", ["z", "P"], ["points"]))
        out = helper.make_tensor_value_info("points", TensorProto.FLOAT, ["N", 2])
        info = ModelInfo("toy", "G", ("z",), "points", "points", latent_dim=LATENT, dim=2, value_range=None)
    else:
        inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT]),
                  helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"])]
        inits += [numpy_helper.from_array(rng.standard_normal((CLASSES, LATENT)).astype(np.float32) * 3, "E"),
                  numpy_helper.from_array(rng.standard_normal((LATENT, C * H * W)).astype(np.float32), "M"),
                  numpy_helper.from_array(np.array([-1, C, H, W], np.int64), "S")]
        nodes += [helper.make_node("Gather", ["E", "labels"], ["e"]), helper.make_node("Add", ["z", "e"], ["s"]),
                  helper.make_node("MatMul", ["s", "M"], ["m"]), helper.make_node("Tanh", ["m"], ["t"]),
                  helper.make_node("Reshape", ["t", "S"], ["image"])]
        out = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", C, H, W])
        info = ModelInfo("toy", "G", ("z", "labels"), "image", "image", latent_dim=LATENT, num_classes=CLASSES,
                         class_names=("cat", "dog", "eel"), channels=C, height=H, width=W)
    graph = helper.make_graph(nodes, "toy", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    if metadata:
        info = ModelInfo(**{**info.__dict__, "ganzoo_version": "0.1.0", "dataset": "toy", "step": 5, "opset": 18})
        for k, v in info.to_metadata().items():
            model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {k: build(root / f"{k}.onnx", k) for k in ("conditional", "image-to-image", "points")} | {
        "plain": build(root / "plain.onnx", "conditional", metadata=False), "root": root}


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: ") and "Traceback" not in result.stderr, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def cuda_really_loads(path) -> bool:
    try:
        return GanzooModel(path, provider="cuda", allow_fallback=True).provider == "cuda"
    except GanzooError:
        return False


# -- metadata and the Python API ----------------------------------------------------------------------

def test_metadata_round_trips_and_covers_the_contract():
    info = ModelInfo("cgan", "G", ("z", "labels"), "image", "image", latent_dim=8, num_classes=2, class_names=("a", "b"),
                     channels=3, height=4, width=4, dataset="x", step=7, opset=18, ema=True, ganzoo_version="0.1.0")
    meta = info.to_metadata()
    assert set(CONTRACT_KEYS) <= set(meta) and all(isinstance(v, str) for v in meta.values())
    assert ModelInfo.from_metadata(meta) == info
    with pytest.raises(GanzooError, match="not a ganzoo generator"):
        ModelInfo.from_metadata({"producer": "someone"}, "m.onnx")
    with pytest.raises(GanzooError, match="damaged"):
        ModelInfo.from_metadata({**meta, "latent_dim": "eight"}, "m.onnx")


def test_python_api_samples_deterministically_and_reports_the_provider(models):
    m = GanzooModel(models["conditional"], provider="cpu")
    assert m.provider == "cpu" and m.providers == ["CPUExecutionProvider"] and m.note == ""
    assert m.info.conditional and m.info.num_classes == CLASSES and m.info.step == 5
    a, b, c = m.sample(5, seed=1), m.sample(5, seed=1), m.sample(5, seed=2)
    assert a.shape == (5, C, H, W) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.allclose(a, c)
    z = make_z(4, LATENT, seed=3)
    assert np.array_equal(z, np.random.default_rng(3).standard_normal((4, LATENT), dtype=np.float32))
    k2 = m.sample(4, seed=3, label=2)
    assert np.array_equal(k2, m.run(z=z, labels=np.full(4, 2, np.int64)))
    assert not np.allclose(k2, m.run(z=z, labels=np.zeros(4, np.int64)))


@pytest.mark.parametrize("kind", ["conditional", "image-to-image"])
def test_batch_parallel_slices_large_batches_across_sessions_and_returns_the_same_outputs(models, kind):
    """batch_parallel: one single-thread session per thread; a batch of at least that many rows is
    split (unevenly when it must), run side by side and put back in order."""
    plain = GanzooModel(models[kind], provider="cpu", threads=3)
    split = GanzooModel(models[kind], provider="cpu", threads=3, batch_parallel=True)
    assert plain.sessions == 1 and split.sessions == 3
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7):  # below, at and above the number of sessions
        if kind == "image-to-image":
            feeds = {"image": rng.uniform(-1, 1, (n, C, H, W)).astype(np.float32)}
        else:
            feeds = {"z": make_z(n, LATENT, seed=n), "labels": rng.integers(0, CLASSES, n).astype(np.int64)}
        want = plain.run(**feeds)
        got = split.run(**feeds)
        assert got.shape == want.shape == (n, C, H, W)
        assert np.array_equal(got, want)  # every row from its own input, in order
    assert GanzooModel(models[kind], provider="cpu", threads=1, batch_parallel=True).sessions == 1


def test_labels_out_of_range_are_refused_although_onnxruntime_would_wrap_them(models, tmp_path):
    path = models["conditional"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = make_z(1, LATENT)
    wrapped = sess.run(None, {"z": z, "labels": np.array([-1], np.int64)})[0]
    last = sess.run(None, {"z": z, "labels": np.array([CLASSES - 1], np.int64)})[0]
    assert np.array_equal(wrapped, last)  # the silent wrap the runtime guards against
    m = GanzooModel(path, provider="cpu")
    for bad in (-1, CLASSES):
        with pytest.raises(GanzooError, match=f"label {bad} is out of range"):
            m.run(z=z, labels=np.array([bad], np.int64))
        one_line_error(invoke("sample", path, "--label", bad, "--out", tmp_path / "x.png"), f"label {bad} is out of range", "0..2")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("feeds,words", [
    (lambda z, y: {"z": z.astype(np.float64), "labels": y}, "must be float32"),
    (lambda z, y: {"z": z, "labels": y.astype(np.int32)}, "must be int64"),
    (lambda z, y: {"z": z[:, :3], "labels": y}, "shape [N, 4]"),
    (lambda z, y: {"z": z, "labels": y[:2]}, "batch size"),
    (lambda z, y: {"z": z}, "missing labels"),
    (lambda z, y: {"z": z, "labels": y, "image": z}, "not image"),
    (lambda z, y: {"z": z[:0], "labels": y[:0]}, "at least 1"),
    (lambda z, y: {"z": z * np.nan, "labels": y}, "NaN"),
])
def test_wrong_inputs_get_one_clear_error(models, feeds, words):
    m = GanzooModel(models["conditional"], provider="cpu")
    with pytest.raises(GanzooError) as exc:
        m.run(**feeds(make_z(3, LATENT), np.arange(3, dtype=np.int64)))
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_image_inputs_are_checked_and_translated(models, tmp_path):
    m = GanzooModel(models["image-to-image"], provider="cpu")
    x = np.linspace(-1, 1, 2 * C * H * W, dtype=np.float32).reshape(2, C, H, W)
    assert np.array_equal(m.run(image=x), -x)
    with pytest.raises(GanzooError, match=r"shape \[N, 1, 2, 2\]"):
        m.run(image=np.zeros((2, 3, H, W), np.float32))
    with pytest.raises(GanzooError, match=r"in \[-1, 1\]"):
        m.run(image=x * 255)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(src / "a.png")
    Image.fromarray(np.full((6, 6, 3), 255, np.uint8)).save(src / "b.png")  # RGB and larger: converted, resized
    (src / "notes.txt").write_text("not an image")
    imgs = load_images(src, C, H, W)
    assert imgs.shape == (2, C, H, W) and np.array_equal(imgs[0, 0], [[-1, 1], [1, -1]]) and np.allclose(imgs[1], 1)
    r = invoke("sample", models["image-to-image"], "--input", src, "--out", tmp_path / "t.png", "--npy", tmp_path / "t.npy")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "t.npy"), -imgs) and (tmp_path / "t.png").is_file()
    one_line_error(invoke("sample", models["image-to-image"], "--out", tmp_path / "u.png"), "--input")
    one_line_error(invoke("sample", models["image-to-image"], "--input", tmp_path / "none"), "--input")


# -- the CLI ----------------------------------------------------------------------------------------------

def test_sample_writes_a_grid_one_row_per_class(models, tmp_path):
    r = invoke("sample", models["conditional"], "-n", 6, "--seed", 4, "--out", tmp_path / "g.png", "--npy", tmp_path / "g.npy")
    assert r.exit_code == 0, r.output
    assert "[cpu]" in r.stdout and "6 samples" in r.stdout
    out = np.load(tmp_path / "g.npy")
    assert out.shape == (6, C, H, W)
    # rows of 2 per class: image grid of 3 rows x 2 columns of 32x32 cells (2px upscaled 16x, 2px padding)
    assert Image.open(tmp_path / "g.png").size == (2 * 34 + 2, 3 * 34 + 2)
    m = GanzooModel(models["conditional"], provider="cpu")
    assert np.array_equal(out, m.run(z=make_z(6, LATENT, 4), labels=np.repeat(np.arange(3), 2)))
    r = invoke("sample", models["conditional"], "-n", 6, "--seed", 4, "--threads", 2, "--batch-parallel",
               "--out", tmp_path / "g2.png", "--npy", tmp_path / "g2.npy")
    assert r.exit_code == 0 and "[cpu, 2 sessions]" in r.stdout, r.output
    assert np.array_equal(np.load(tmp_path / "g2.npy"), out)
    r = invoke("sample", models["points"], "-n", 50, "--out", tmp_path / "p.png", "--npy", tmp_path / "p.npy")
    assert r.exit_code == 0 and np.load(tmp_path / "p.npy").shape == (50, 2) and (tmp_path / "p.png").stat().st_size > 1000


def test_grid_writer_lays_out_images(tmp_path):
    x = np.full((5, 3, 4, 4), -1, np.float32)
    x[1] = 1
    save_grid(x, tmp_path / "g.png", nrow=3, pad=1, min_cell=4)
    arr = np.asarray(Image.open(tmp_path / "g.png"))
    assert arr.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    assert (arr[1:5, 1:5] == 0).all() and (arr[1:5, 6:10] == 255).all() and (arr[0] == 255).all()


def test_files_that_are_not_ganzoo_generators_are_refused(models, tmp_path):
    one_line_error(invoke("sample", tmp_path / "missing.onnx"), "does not exist")
    one_line_error(invoke("sample", models["plain"], "--out", tmp_path / "x.png"), "not a ganzoo generator")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf at all" * 10)
    one_line_error(invoke("sample", junk, "--out", tmp_path / "x.png"), "not a loadable ONNX model")
    one_line_error(invoke("sample", models["conditional"], "--net", "G_BA"), "--net")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_a_provider_that_does_not_load_is_an_error_unless_fallback_is_allowed(models, tmp_path, provider):
    path = models["conditional"]
    if provider == "cuda" and cuda_really_loads(path):  # a GPU machine: it must really run there
        r = invoke("sample", path, "--provider", "cuda", "--out", tmp_path / "x.png")
        assert r.exit_code == 0 and "[cuda]" in r.stdout
        return
    r = invoke("sample", path, "--provider", provider, "--out", tmp_path / "x.png")
    if provider == "tensorrt" and r.exit_code == 0:  # TensorRT present
        assert "[tensorrt]" in r.stdout
        return
    one_line_error(r, f"provider '{provider}'", "--allow-fallback")
    assert not (tmp_path / "x.png").exists()
    r = invoke("sample", path, "--provider", provider, "--allow-fallback", "--out", tmp_path / "x.png")
    assert r.exit_code == 0 and "[cpu]" in r.stdout
    assert f"warning: provider '{provider}' did not load" in r.stderr and "running on cpu" in r.stderr


def test_sample_from_onnx_runs_where_torch_cannot_be_imported(models, tmp_path):
    from conftest import torch_blocked_env

    env, marker = torch_blocked_env(tmp_path)
    cmd = [sys.executable, "-m", "ganzoo.cli.main", "sample", str(models["conditional"]), "-n", "6", "--label", "1",
           "--seed", "9", "--out", str(tmp_path / "s.png"), "--npy", str(tmp_path / "s.npy")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "the .onnx sampling path imported torch"
    expected = GanzooModel(models["conditional"], provider="cpu").sample(6, seed=9, label=1)
    assert np.array_equal(np.load(tmp_path / "s.npy"), expected)
    # the blocker works: the torch path fails under it
    proc = subprocess.run([sys.executable, "-c", "import ganzoo.deploy.export"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and marker.exists()
