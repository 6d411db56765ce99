"""ONNX export of every generator the registry knows, parametrized over the REGISTRY.

Every architecture x data kind it accepts x ExportSpec: a tiny run (its spec's ``tiny`` settings,
like tests/test_zoo.py) trained 1 step, exported through ``ganzoo export`` as a user would, then
checked here independently of the exporter's own verification: onnx.checker, the metadata contract,
a dynamic batch (ONNX Runtime vs PyTorch at 1, 3 and 7), and ``ganzoo sample`` giving the same
samples from the .onnx file and from the run directory. Runs and exports are shared per module
(dynamo export is slow).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganzoo
from ganzoo import GanzooError
from ganzoo.cli.main import cli
from ganzoo.engine.build import open_run
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Trainer
from ganzoo.deploy.cpu_graph import rewrite_for_cpu
from ganzoo.deploy.export import RunModel, TOLERANCE
from ganzoo.registry import get_registry
from ganzoo.deploy.runtime import CONTRACT_KEYS, GanzooModel, example_inputs

torch.set_num_threads(1)

PREFERRED_DATA = {"points": "ring8", "image": "digits", "unpaired": "digits-unpaired"}
TEST_RUN = {"steps": 1, "batch_size": 4, "seed": 0, "device": "cpu", "log_every": 1, "eval_samples": 50,
            "sample_every": 1000}


def _cases():
    reg = get_registry()
    out = []
    for entry in reg.entries("architecture"):
        spec = entry.spec
        for kind in spec.data_kinds:
            for es in spec.exports:
                out.append((spec.name, kind, es.network))
    return out


CASES = _cases()
IDS = [f"{a}-{k}-{n}" for a, k, n in CASES]
BASE = next((c for c in CASES if c[0] == "vanilla"), CASES[0])  # the cheapest case, for the single tests


def data_for(spec, kind: str) -> str:
    reg = get_registry()
    ok = [d.spec.name for d in reg.entries("dataset")
          if d.spec.kind == kind and not d.spec.takes_path and (d.spec.labelled or not spec.needs_labels)]
    assert ok, f"no embedded {kind} data set to train '{spec.name}' on"
    return PREFERRED_DATA[kind] if PREFERRED_DATA.get(kind) in ok else ok[0]


def train_tiny(arch: str, kind: str, out: Path, **extra) -> Path:
    reg = get_registry()
    spec = reg.get("architecture", arch)
    run = {**TEST_RUN, "data": data_for(spec, kind)}
    if kind != "points" and "image_size" not in spec.tiny:
        run["image_size"] = max(8, spec.min_image_size)
    run.update(spec.tiny)
    run.update(TEST_RUN)
    run["batch_size"] = min(4, int(spec.tiny.get("batch_size", 4)))
    run.update(extra)
    r, h = flatten_user(spec, {}, run)
    Trainer(resolve(reg, spec, r, h), RunDir(out), quiet=True).fit()
    return out


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]


class Zoo:
    """Tiny runs and their exports, made once per module on demand."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[tuple[str, str], Path] = {}
        self.files: dict[tuple[str, str, str], tuple[Path, str]] = {}

    def run(self, arch: str, kind: str) -> Path:
        key = (arch, kind)
        if key not in self.runs:
            self.runs[key] = train_tiny(arch, kind, self.root / f"{arch}-{kind}")
        return self.runs[key]

    def export(self, arch: str, kind: str, net: str) -> tuple[Path, str]:
        key = (arch, kind, net)
        if key not in self.files:
            run = self.run(arch, kind)
            target = self.root / f"{arch}-{kind}-{net}.onnx"
            r = invoke("export", run, "--onnx", target, "--net", net)
            assert r.exit_code == 0, r.output
            self.files[key] = (target, r.stdout)
        return self.files[key]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return Zoo(tmp_path_factory.mktemp("zoo"))


def test_every_architecture_exports_something():
    reg = get_registry()
    assert "vanilla" in reg.names("architecture")
    for entry in reg.entries("architecture"):
        assert entry.spec.exports, f"{entry.name} declares no ExportSpec"
        for es in entry.spec.exports:
            assert set(es.inputs) in ({"z"}, {"z", "labels"}, {"image"}), (entry.name, es)


@pytest.mark.parametrize("arch,kind,net", CASES, ids=IDS)
def test_export_is_verified_self_contained_and_follows_the_contract(zoo, arch, kind, net):
    path, stdout = zoo.export(arch, kind, net)
    assert "onnx.checker ok" in stdout and "max abs error" in stdout and "(batch 7)" in stdout
    assert path.is_file() and not list(path.parent.glob(f"{path.name}.data")) and not list(path.parent.glob(".*.tmp.onnx"))
    model = onnx.load(str(path))  # loads without external data: one self-contained file
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] >= 18

    parts, state = open_run(str(zoo.run(arch, kind)))
    es = next(e for e in parts.spec.exports if e.network == net)
    data = parts.dataset.info
    meta = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in CONTRACT_KEYS if k not in meta]
    assert not missing, f"metadata lacks {missing}"
    assert meta["architecture"] == arch and meta["network"] == net
    assert meta["ganzoo_version"] == ganzoo.__version__
    provider = get_registry().entry("architecture", arch).provider
    assert (meta["plugin"], meta["plugin_version"]) == (provider.plugin, provider.version)
    assert meta["step"] == str(state["step"]) == "1" and meta["opset"] == "18"
    assert meta["dataset"] == parts.cfg["data"] and meta["data_kind"] == kind
    assert meta["ema"] == ("true" if net in parts.ema else "false")
    assert json.loads(meta["inputs"]) == list(es.inputs)
    if "z" in es.inputs:
        assert int(meta["latent_dim"]) == parts.cfg["hparams"]["latent_dim"] > 0
    if "labels" in es.inputs:
        assert int(meta["num_classes"]) == data.num_classes > 1
        assert json.loads(meta["class_names"]) == list(data.class_names)
    if kind == "points":
        assert meta["output"] == "points" and meta["dim"] == "2" and json.loads(meta["value_range"]) is None
    else:
        assert meta["output_kind"] == "image" and json.loads(meta["value_range"]) == [-1.0, 1.0]
        assert (int(meta["channels"]), int(meta["height"]), int(meta["width"])) == (data.channels, data.height, data.width)

    # graph I/O: names, dtypes, a symbolic batch dimension everywhere
    elem = {"z": onnx.TensorProto.FLOAT, "labels": onnx.TensorProto.INT64, "image": onnx.TensorProto.FLOAT}
    assert [i.name for i in model.graph.input] == list(es.inputs)
    for i in model.graph.input:
        assert i.type.tensor_type.elem_type == elem[i.name]
        assert i.type.tensor_type.shape.dim[0].dim_param, f"input {i.name} has a fixed batch"
    (out,) = model.graph.output
    assert out.name == meta["output"] and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.shape.dim[0].dim_param


@pytest.mark.parametrize("arch,kind,net", CASES, ids=IDS)
def test_dynamic_batch_matches_pytorch(zoo, arch, kind, net):
    path, _ = zoo.export(arch, kind, net)
    onnx_model = GanzooModel(path, provider="cpu")
    torch_model = RunModel(zoo.run(arch, kind), net=net)
    assert onnx_model.info == replace(torch_model.info, opset=18)
    # the exported graph, the CPU graph the runtime picks, and the CPU rewrite forced onto every
    # transposed convolution however narrow (the tiny test nets are below its width threshold); the
    # tiny nets' narrow convolutions are split into rows in both CPU graphs
    forced = rewrite_for_cpu(onnx.load(str(path)), min_channels=1)
    has_transposed = any(nd.op_type == "ConvTranspose" for nd in onnx.load(str(path)).graph.node)
    assert any("ConvTranspose" in c for c in forced.changes) == has_transposed
    sessions = {"auto": onnx_model.session, "plain": GanzooModel(path, provider="cpu", graph="plain").session,
                "forced": ort.InferenceSession(forced.model.SerializeToString(), providers=["CPUExecutionProvider"])}
    for n in (1, 3, 7):
        feeds = example_inputs(onnx_model.info, n, seed=100 + n)
        b = torch_model.run(**feeds)
        for graph, sess in sessions.items():
            a = sess.run([onnx_model.info.output], feeds)[0]
            assert a.shape == b.shape == (n, *onnx_model.info.sample_shape)
            err = float(np.abs(a - b).max())
            print(f"{arch}/{net} on {kind}, {graph} graph: batch {n} max abs error {err:.2e}")
            assert err <= TOLERANCE["float32"]
            assert np.isfinite(a).all() and (kind == "points" or np.abs(a).max() <= 1.0)
        a = onnx_model.run(**feeds)
    # outputs depend on the inputs, per sample (the batch dimension is not mixed up)
    feeds = example_inputs(onnx_model.info, 3, seed=7)
    first = onnx_model.run(**{k: v[:1] for k, v in feeds.items()})
    assert np.allclose(onnx_model.run(**feeds)[:1], first, atol=1e-5)
    assert not np.allclose(onnx_model.run(**feeds)[1], first[0], atol=1e-6)


@pytest.mark.parametrize("arch,kind,net", CASES, ids=IDS)
def test_sample_from_onnx_equals_sample_from_run_dir(zoo, arch, kind, net, tmp_path):
    path, _ = zoo.export(arch, kind, net)
    run = zoo.run(arch, kind)
    info = GanzooModel(path, provider="cpu").info
    extra: list[str] = []
    if info.image_to_image:  # translate the same image files on both paths
        src = tmp_path / "inputs"
        src.mkdir()
        imgs = RunModel(run, net=net).data_images(3)
        for i, x in enumerate(imgs):
            arr = np.rint((x.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
            Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(src / f"{i}.png")
        extra = ["--input", src]
    variants = [extra]
    if info.conditional:
        variants.append(["--label", info.num_classes - 1])
    for k, opts in enumerate(variants):
        outs = {}
        for name, source in (("onnx", path), ("torch", run)):
            png, npy = tmp_path / f"{name}{k}.png", tmp_path / f"{name}{k}.npy"
            net_opt = ["--net", net] if name == "torch" else []
            r = invoke("sample", source, "-n", 12, "--seed", 3, "--out", png, "--npy", npy, *net_opt, *opts)
            assert r.exit_code == 0, r.output
            assert png.is_file()
            outs[name] = (np.load(npy), np.asarray(Image.open(png)).astype(int))
        (a, pa), (b, pb) = outs["onnx"], outs["torch"]
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= TOLERANCE["float32"]
        assert pa.shape == pb.shape and (info.output_kind == "points" or np.abs(pa - pb).max() <= 1)
        if info.conditional and k == 0:  # default: one row per class
            assert len(a) == info.num_classes * max(1, 12 // info.num_classes)
        if info.conditional and k == 1:  # --label K: 12 samples of class K, the same z as row 0
            assert len(a) == 12
    if info.image_to_image:  # a run directory without --input translates its own data
        r = invoke("sample", run, "--net", net, "-n", 2, "--out", tmp_path / "own.png")
        assert r.exit_code == 0 and "2 samples" in r.stdout
        one_line_error(invoke("sample", path, "--out", tmp_path / "x.png"), "--input")


def test_failed_verification_leaves_no_file(zoo, tmp_path, monkeypatch):
    import ganzoo.deploy.export as ex

    arch, kind, net = BASE
    run = zoo.run(arch, kind)
    monkeypatch.setattr(ex, "_verify", lambda path, info, feeds, refs: {1: 0.5, 7: float("nan")})
    target = tmp_path / "out" / "g.onnx"
    r = invoke("export", run, "--onnx", target, "--net", net)
    one_line_error(r, "disagrees with PyTorch", "not written")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_verification_also_runs_the_cpu_graph(zoo, tmp_path, monkeypatch):
    """A CPU rewrite that computed something else would be caught at export, not at sampling time."""
    import ganzoo.deploy.cpu_graph as cg

    run = zoo.run("dcgan", "image")
    real = cg.rewrite_for_cpu

    def wrong(model, min_channels=16):
        done = real(model, min_channels=1)
        assert done.changes
        for init in done.model.graph.initializer:  # corrupt the rewritten weights
            if "phase" in init.name or "mm_weight" in init.name:
                arr = onnx.numpy_helper.to_array(init) * -1.0
                init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
        return done

    monkeypatch.setattr(cg, "rewrite_for_cpu", wrong)
    target = tmp_path / "g.onnx"
    r = invoke("export", run, "--onnx", target)
    one_line_error(r, "disagrees with PyTorch", "not written")
    assert not target.exists()
    monkeypatch.setattr(cg, "rewrite_for_cpu", real)
    r = invoke("export", run, "--onnx", target)
    assert r.exit_code == 0 and target.is_file()


def test_export_mistakes_are_one_line(zoo, tmp_path):
    arch, kind, net = BASE
    run = zoo.run(arch, kind)
    one_line_error(invoke("export", tmp_path / "nope"), "does not exist")
    one_line_error(invoke("export", run, "--opset", 17), "opset 18")
    one_line_error(invoke("export", run, "--net", "nosuchnet"), "--net nosuchnet", net)
    multi = [(a, k) for a, k, _ in CASES if len(get_registry().get("architecture", a).exports) > 1]
    if multi:
        one_line_error(invoke("export", zoo.run(*multi[0]), "--onnx", tmp_path / "one.onnx"), "--net")
    assert not list(tmp_path.glob("*.onnx"))


def test_fp16_export_is_verified_against_fp32(zoo, tmp_path):
    arch, kind, net = BASE
    run = zoo.run(arch, kind)
    r = invoke("export", run, "--onnx", tmp_path / "h.onnx", "--net", net, "--fp16")
    assert r.exit_code == 0, r.output
    assert f"<= {TOLERANCE['float16']:g}" in r.stdout
    model = GanzooModel(tmp_path / "h.onnx", provider="cpu")
    assert model.info.precision == "float16"
    graph = onnx.load(str(tmp_path / "h.onnx")).graph
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer), "weights are not fp16"
    feeds = example_inputs(model.info, 5)
    err = np.abs(model.run(**feeds) - RunModel(run, net=net).run(**feeds)).max()
    assert err <= TOLERANCE["float16"]


def test_run_model_validates_like_the_runtime(zoo):
    arch, kind, net = BASE
    model = RunModel(zoo.run(arch, kind), net=net)
    with pytest.raises(GanzooError, match="float32"):
        model.run(**{k: v.astype(np.float64) if v.dtype == np.float32 else v
                     for k, v in example_inputs(model.info, 2).items()})
