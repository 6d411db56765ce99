"""``ganzoo sample SOURCE -n N --out-dir DIR``: one PNG per sample, the folder FID tools read.

Tiny vanilla (unconditional) and cgan (conditional) runs on the embedded digits, trained one step and
exported once for the module. Checked: names and counts, labels in the names (spread evenly or one
class), batches that do not change the samples, the grid path's latent codes, the same files from the
.onnx file and from the run directory, a folder already holding samples, and no torch for .onnx.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_interrupted, assert_user_error, invoke, torch_blocked_env
from ganzoo.deploy.bulk import spread_labels
from ganzoo.deploy.contract import class_rows, iter_z, make_z
from ganzoo.deploy.export import export_run
from ganzoo.deploy.runtime import GanzooModel, to_uint8
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Trainer
from ganzoo.registry import get_registry

torch.set_num_threads(1)


def _train_and_export(arch: str, out: Path) -> Path:
    reg = get_registry()
    spec = reg.get("architecture", arch)
    run, hp = flatten_user(spec, {}, {**spec.tiny, "data": "digits", "image_size": 8, "steps": 1, "batch_size": 4,
                                      "seed": 0, "device": "cpu", "sample_every": 1000, "eval_samples": 50})
    Trainer(resolve(reg, spec, run, hp), RunDir(out), quiet=True).fit()
    export_run(out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bulk")
    return {arch: _train_and_export(arch, root / arch) for arch in ("vanilla", "cgan")}


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_latent_codes_drawn_in_batches_are_the_grid_codes():
    for batch in (1, 7, 64, 1000):
        assert np.array_equal(np.concatenate(list(iter_z(150, 5, seed=3, batch=batch))), make_z(150, 5, seed=3))


def test_labels_spread_evenly_and_match_the_grid_rows_when_they_divide():
    assert np.array_equal(spread_labels(10, 50), class_rows(10, 50))
    counts = np.bincount(spread_labels(10, 57), minlength=10)
    assert counts.sum() == 57 and counts.max() - counts.min() <= 1
    assert np.array_equal(np.concatenate([spread_labels(10, 57, a, b) for a, b in ((0, 20), (20, 57))]), spread_labels(10, 57))


def test_one_png_per_sample_and_the_first_ones_are_the_grid_samples(runs, tmp_path):
    onnx_path = runs["vanilla"] / "generator.onnx"
    r = invoke("sample", onnx_path, "-n", "23", "--seed", "4", "--batch-size", "5", "--out-dir", tmp_path / "s")
    assert r.code == 0, r.err
    assert "wrote 23 samples" in r.out and "000000.png .. 000022.png" in r.out
    files = _pixels(tmp_path / "s")
    assert list(files) == [f"{i:06d}.png" for i in range(23)]
    assert len(list((tmp_path / "s").iterdir())) == 24  # and the hidden settings file that --resume checks
    expected = to_uint8(GanzooModel(onnx_path, provider="cpu").sample(23, seed=4))  # the grid path's inputs
    for i, name in enumerate(files):
        assert np.array_equal(files[name], expected[i][..., 0]), name
    assert not (tmp_path / "samples.png").exists()


def test_onnx_and_run_directory_write_the_same_files(runs, tmp_path):
    for arch in ("vanilla", "cgan"):
        onnx_path = runs[arch] / "generator.onnx"
        for source, out in ((onnx_path, "onnx"), (runs[arch], "torch")):
            r = invoke("sample", source, "-n", "30", "--seed", "1", "--batch-size", "8", "--out-dir", tmp_path / arch / out)
            assert r.code == 0, r.err
        a, b = _pixels(tmp_path / arch / "onnx"), _pixels(tmp_path / arch / "torch")
        assert list(a) == list(b) and len(a) == 30
        for name in a:
            assert np.array_equal(a[name], b[name]), (arch, name)


def test_conditional_names_carry_the_label(runs, tmp_path):
    onnx_path = runs["cgan"] / "generator.onnx"
    r = invoke("sample", onnx_path, "-n", "25", "--out-dir", tmp_path / "spread")
    assert r.code == 0, r.err
    names = sorted(p.name for p in (tmp_path / "spread").glob("*.png"))
    assert names == [f"{i:06d}_label{i * 10 // 25}.png" for i in range(25)]
    r = invoke("sample", onnx_path, "-n", "4", "--label", "7", "--out-dir", tmp_path / "seven")
    assert r.code == 0 and sorted(p.name for p in (tmp_path / "seven").glob("*.png")) == [f"{i:06d}_label7.png" for i in range(4)]
    expected = to_uint8(GanzooModel(onnx_path, provider="cpu").sample(4, seed=0, label=7))
    assert all(np.array_equal(np.asarray(Image.open(tmp_path / "seven" / f"{i:06d}_label7.png")), expected[i][..., 0])
               for i in range(4))


def test_a_folder_already_holding_samples_needs_overwrite(runs, tmp_path):
    onnx_path = runs["vanilla"] / "generator.onnx"
    assert invoke("sample", onnx_path, "-n", "6", "--out-dir", tmp_path / "s").code == 0
    (tmp_path / "s" / "README.txt").write_text("mine")
    assert_user_error(invoke("sample", onnx_path, "-n", "3", "--out-dir", tmp_path / "s"), "already holds 6 sample", "--overwrite")
    r = invoke("sample", onnx_path, "-n", "3", "--seed", "2", "--out-dir", tmp_path / "s", "--overwrite")
    assert r.code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [".ganzoo-samples.json", "000000.png", "000001.png", "000002.png",
                                                                  "README.txt"]


def test_an_interrupted_job_resumes_with_the_same_files(runs, tmp_path, monkeypatch):
    onnx_path = runs["cgan"] / "generator.onnx"
    assert invoke("sample", onnx_path, "-n", "30", "--seed", "5", "--out-dir", tmp_path / "full").code == 0
    assert invoke("sample", onnx_path, "-n", "30", "--seed", "5", "--out-dir", tmp_path / "cut").code == 0
    for p in sorted((tmp_path / "cut").glob("0000[12]*.png"))[3:]:  # as if stopped after sample 12
        p.unlink()
    assert len(list((tmp_path / "cut").glob("*.png"))) == 13
    assert_user_error(invoke("sample", onnx_path, "-n", "30", "--seed", "5", "--out-dir", tmp_path / "cut"), "--resume", "--overwrite")
    assert_user_error(invoke("sample", onnx_path, "-n", "30", "--seed", "6", "--out-dir", tmp_path / "cut", "--resume"),
                      "seed 5 -> 6")
    batches = []
    real_run = GanzooModel.run
    monkeypatch.setattr(GanzooModel, "run", lambda self, **kw: batches.append(len(kw["z"])) or real_run(self, **kw))
    r = invoke("sample", onnx_path, "-n", "30", "--seed", "5", "--batch-size", "10", "--out-dir", tmp_path / "cut", "--resume")
    assert r.code == 0 and "wrote 17 samples" in r.out and "13 were there already" in r.out, r.err
    assert batches == [10, 10]  # the first batch of 10 was complete: not drawn again
    assert _pixels(tmp_path / "cut").keys() == _pixels(tmp_path / "full").keys()
    for name, pic in _pixels(tmp_path / "full").items():
        assert np.array_equal(pic, _pixels(tmp_path / "cut")[name]), name


def test_bulk_mistakes_are_one_line(runs, tmp_path):
    onnx_path = runs["cgan"] / "generator.onnx"
    assert_user_error(invoke("sample", onnx_path, "-n", "3", "--label", "12", "--out-dir", tmp_path / "o"), "label 12")
    assert_user_error(invoke("sample", runs["vanilla"] / "generator.onnx", "--label", "1", "--out-dir", tmp_path / "o"),
                      "--label")
    assert_user_error(invoke("sample", onnx_path, "-n", "0", "--out-dir", tmp_path / "o"), "-n")
    assert_user_error(invoke("sample", onnx_path, "--resume", "--out", tmp_path / "g.png"), "--out-dir")
    assert not (tmp_path / "o").exists()


def test_an_out_dir_that_cannot_be_a_folder_is_one_line(runs, tmp_path):
    onnx_path = runs["cgan"] / "generator.onnx"
    (tmp_path / "afile").write_text("x")
    assert_user_error(invoke("sample", onnx_path, "-n", "3", "--out-dir", tmp_path / "afile"), "is a file")
    assert_user_error(invoke("sample", onnx_path, "-n", "3", "--out-dir", tmp_path / "afile" / "sub"), "cannot create that folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_bulk_from_onnx_runs_where_torch_cannot_be_imported(runs, tmp_path):
    env, marker = torch_blocked_env(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "ganzoo.cli.main", "sample", str(runs["cgan"] / "generator.onnx"), "-n", "12",
                           "--out-dir", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "the .onnx bulk path imported torch"
    assert len(list((tmp_path / "out").glob("*_label*.png"))) == 12


def test_ctrl_c_while_sampling_points_to_resume(runs, tmp_path, monkeypatch):
    def interrupt(self, **feeds):
        raise KeyboardInterrupt

    monkeypatch.setattr(GanzooModel, "run", interrupt)
    line = assert_interrupted(invoke("sample", runs["cgan"] / "generator.onnx", "-n", "4", "--out-dir", tmp_path / "o"),
                              "--resume")
    assert "checkpoint" not in line
