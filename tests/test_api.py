"""The Python API (``ganzoo.train`` / ``ganzoo.load``), one code path with the CLI, and the examples
of docs/api.md, executed as written in an empty folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import ganzoo
from conftest import CORE_PLUGINS, invoke, only_plugins

REPO = Path(__file__).resolve().parents[1]
TINY = dict(batch_size=32, hidden=16, layers=2, eval_samples=300, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def _core_plugins():
    with only_plugins(CORE_PLUGINS + ",cgan"):
        yield


def test_import_ganzoo_stays_light_and_train_is_lazy():
    code = ("import sys, ganzoo; assert 'torch' not in sys.modules; f = ganzoo.train; g = ganzoo.load; "
            "assert 'torch' not in sys.modules, 'ganzoo.train imported torch before it was called'; "
            "print(f.__module__, g.__module__)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ganzoo.runs", "ganzoo.runs"]
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        ganzoo.trian  # noqa: B018


def test_python_dash_m_ganzoo_is_the_cli():
    p = subprocess.run([sys.executable, "-m", "ganzoo", "train", "vanila"], capture_output=True, text=True, timeout=120,
                       env={"GANZOO_PLUGINS": CORE_PLUGINS, "PATH": ""})
    assert p.returncode == 2 and p.stderr.strip().startswith("ganzoo: error: unknown architecture 'vanila'"), p.stderr
    p = subprocess.run([sys.executable, "-m", "ganzoo", "--version"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == f"ganzoo, version {ganzoo.__version__}"


def test_api_and_cli_make_the_same_run(tmp_path):
    """Same settings, same resolution, same training: identical config and losses."""
    api = ganzoo.train("vanilla", steps=6, out=tmp_path / "api", seed=3, **TINY)
    r = invoke("train", "vanilla", "--steps", 6, "--out", tmp_path / "cli", "--seed", 3, "--batch-size", 32,
            "--device", "cpu", "--hidden", 16, "--set", "layers=2", "--set", "eval_samples=300", "--quiet")
    assert r.code == 0, r.err
    strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "time"} for x in (p / "metrics.jsonl").read_text().splitlines()]
    assert (tmp_path / "api" / "config.toml").read_text() == (tmp_path / "cli" / "config.toml").read_text()
    assert strip(tmp_path / "api") == strip(tmp_path / "cli")
    assert api.results["trained_steps"] == 6 and api.results["start_step"] == 0 and api.results["modes_total"] == 8
    assert api.config == tomllib.loads((tmp_path / "api" / "config.toml").read_text())


def test_load_samples_like_the_cli_and_evaluates_like_eval(tmp_path):
    out = tmp_path / "r"
    ganzoo.train("vanilla", steps=4, out=out, **TINY)
    run = ganzoo.load(out)
    assert run.step == 4 and run.arch == "vanilla" and run.results["modes_total"] == 8
    pts = run.sample(50, seed=2)
    assert pts.shape == (50, 2) and pts.dtype == np.float32
    assert np.array_equal(pts, run.sample(50, seed=2)) and not np.array_equal(pts, run.sample(50, seed=3))
    r = invoke("sample", out, "-n", 50, "--seed", 2, "--out", tmp_path / "s.png", "--npy", tmp_path / "s.npy")
    assert r.code == 0, r.err
    assert np.array_equal(np.load(tmp_path / "s.npy"), pts)
    r = invoke("eval", out, "--json")
    assert r.code == 0 and json.loads(r.out) == run.evaluate()
    with pytest.raises(ganzoo.GanzooError, match="not a ganzoo run directory"):
        ganzoo.load(tmp_path)


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_the_examples_of_docs_api_md_run(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks(REPO / "docs" / "api.md")
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "300 -> 400" in out and "unknown key 'hiden' (did you mean 'hidden'?)" in out
    assert (tmp_path / "runs" / "ring" / "generator.onnx").is_file()
    assert namespace["grid"].shape == (10, 1, 8, 8)
