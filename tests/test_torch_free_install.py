"""The torch-free install, done as docs/export.md tells a user: ganzoo without its dependencies, then
numpy, onnxruntime, pillow and click, into a fresh virtual environment (no system site-packages).
There, the .onnx path works (Python API, ``ganzoo sample``, ``--out-dir``, ``ganzoo translate``)
with one note about what is skipped, and a command that needs the full install says so in one line.

The dependency wheels are downloaded once (pinned to the versions of this environment) into a
wheelhouse kept across runs (``GANZOO_TEST_WHEELHOUSE``, default ``~/.cache/ganzoo-tests``); later
runs install from it with ``--no-index``, offline. A failed download fails the test: nothing skips.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from onnx import TensorProto, helper
from PIL import Image

from ganzoo.deploy.contract import ModelInfo

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("GANZOO_TEST_WHEELHOUSE", Path.home() / ".cache" / "ganzoo-tests" / "wheelhouse"))
MISSING_THERE = ("torch", "pluggy", "onnx", "onnxscript", "sklearn", "matplotlib", "safetensors", "tqdm")

pytestmark = pytest.mark.slow


def _version(*dists: str) -> str:
    for d in dists:
        try:
            return md.version(d)
        except md.PackageNotFoundError:
            continue
    raise AssertionError(f"none of {dists} is installed here")


def _pins() -> list[str]:
    # onnxruntime-gpu (this environment on Linux x86_64) and onnxruntime share versions; the CPU one is the small install
    return [f"numpy=={_version('numpy')}", f"onnxruntime=={_version('onnxruntime', 'onnxruntime-gpu')}",
            f"pillow=={_version('pillow')}", f"click=={_version('click')}"]


def _run(cmd: list, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.update(kw.pop("env", {}))
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, **kw)


def _wheelhouse() -> Path:
    pins = _pins()
    folder = WHEELHOUSE / (f"py{sys.version_info.major}{sys.version_info.minor}-" + "-".join(p.replace("==", "") for p in pins))
    if (folder / "complete").exists():
        return folder
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    p = _run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", partial, *pins], timeout=600)
    if p.returncode:
        pytest.fail("could not download the torch-free install's wheels once (this needs PyPI the first time): "
                    + p.stderr.strip()[-800:])
    (partial / "complete").write_text("\n".join(pins) + "\n")
    if folder.exists():
        shutil.rmtree(partial)
    else:
        partial.rename(folder)
    return folder


def _models(folder: Path) -> tuple[Path, Path]:
    """A conditional noise model and a dynamic-size image-to-image one (image_out = -image), no torch."""
    from test_runtime import build

    cond = build(folder / "cond.onnx")
    graph = helper.make_graph([helper.make_node("Neg", ["image"], ["image_out"])], "i2i",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("image_out", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    info = ModelInfo("toy", "G_AB", ("image",), "image_out", "image", channels=3, height=8, width=8, direction="AB",
                     size_multiple=4, min_size=4, ganzoo_version="0", activation_floats=3)
    for k, v in info.to_metadata().items():
        model.metadata_props.add(key=k, value=v)
    import onnx

    onnx.save(model, str(folder / "i2i.onnx"))
    return cond, folder / "i2i.onnx"


def test_the_onnx_path_works_with_numpy_onnxruntime_pillow_and_click_only(tmp_path):
    wheels = _wheelhouse()
    src = tmp_path / "src"  # a copy: building a wheel writes build/ and *.egg-info next to the sources
    for part in ("ganzoo", "plugins"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    p = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", src])
    assert p.returncode == 0, p.stderr
    venv = tmp_path / "venv"
    p = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert p.returncode == 0, p.stderr
    py, ganzoo = venv / "bin" / "python", venv / "bin" / "ganzoo"
    pip = [sys.executable, "-m", "pip", "--python", py, "install", "-q"]
    p = _run([*pip, "--no-deps", *(tmp_path / "dist").glob("ganzoo-*.whl")])  # the docs' step 1
    assert p.returncode == 0, p.stderr
    p = _run([*pip, "--no-index", "--find-links", wheels, "numpy", "onnxruntime", "pillow", "click"], timeout=300)  # step 2
    assert p.returncode == 0, p.stderr

    probe = _run([py, "-c", "import importlib.util as u; print(' '.join(m for m in %r if u.find_spec(m)))" % (MISSING_THERE,)])
    assert probe.returncode == 0 and probe.stdout.strip() == "", f"not a torch-free environment: {probe.stdout}"

    cond, i2i = _models(tmp_path)
    # the Python API
    api = _run([py, "-c", f"""
import sys, numpy as np, ganzoo
# every torch-free module (DESIGN.md) imports here, where torch, pluggy and onnx are not installed
import ganzoo.runtime, ganzoo.deploy.contract, ganzoo.deploy.pictures, ganzoo.deploy.cpu_graph
import ganzoo.deploy.bulk, ganzoo.deploy.progress, ganzoo.deploy.image_inputs, ganzoo.cli.main, ganzoo.cli.sample, ganzoo.cli.translate
from ganzoo.deploy.runtime import GanzooModel
from ganzoo.deploy.translate import translate
m = GanzooModel({str(cond)!r}, provider="cpu")
x = m.sample(5, seed=1, label=2)
assert x.shape == (5, 1, 2, 2) and m.skipped and not m.note, (m.skipped, m.note)
from PIL import Image
Image.new("RGB", (13, 6), (10, 200, 30)).save({str(tmp_path / 'p.png')!r})
res = translate({str(i2i)!r}, [{str(tmp_path / 'p.png')!r}], {str(tmp_path / 'api')!r}, progress=False)
assert Image.open(res.written[0]).size == (13, 6)
assert np.asarray(Image.open(res.written[0]))[0, 0].tolist() == [245, 55, 225]
assert issubclass(ganzoo.GanzooError, Exception) and ganzoo.__version__
bad = sorted(m for m in {MISSING_THERE!r} if m in sys.modules)
assert not bad, bad
print("api ok")
"""])
    assert api.returncode == 0 and "api ok" in api.stdout, api.stderr
    # the CLI: bulk samples and translate, with one note and no warning
    r = _run([ganzoo, "sample", cond, "-n", "9", "--out-dir", tmp_path / "s"])
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "s").glob("*_label*.png"))) == 9
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganzoo: note:") and "onnx" in lines[0], r.stderr
    r = _run([ganzoo, "translate", i2i, tmp_path / "p.png", "--out-dir", tmp_path / "t"])
    assert r.returncode == 0 and Image.open(tmp_path / "t" / "p.png").size == (13, 6), r.stderr
    assert "warning" not in r.stderr
    # what needs the full install says so, in one line
    r = _run([ganzoo, "list"])
    assert r.returncode == 2 and r.stderr.startswith("ganzoo: error: this needs pluggy") and len(r.stderr.splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    r = _run([ganzoo, "sample", tmp_path, "--out-dir", tmp_path / "x"])
    assert r.returncode == 2 and "this needs torch" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _run([ganzoo, "--help"])
    assert r.returncode == 0 and "translate" in r.stdout
