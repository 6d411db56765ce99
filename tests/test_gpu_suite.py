"""``benchmarks/gpu_suite.sh --dry-run``: the GPU suite's code runs on CPU at tiny sizes, and whatever
needs CUDA is reported as skipped with a reason, so the suite is ready for a GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_suite_dry_run_writes_json_naming_the_device(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "PYTHON": sys.executable, "GANZOO_PLUGINS": "vanilla,losses,datasets,dcgan", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--dry-run", "--archs", "dcgan", "--out", str(out)],
                       capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d["dry_run"] is True and d["device"] and d["cuda"] is False
    trained = {r["variant"]: r for r in d["training"]}
    assert set(trained) == {"fp32", "fp32+channels_last"}
    assert all(r["images_per_s"] > 0 and r["arch"] == "dcgan" for r in trained.values())
    skipped = {s["what"]: s["why"] for s in d["skipped"]}
    for v in ("bf16", "bf16+channels_last", "fp32+compile", "bf16+channels_last+compile"):
        assert "CUDA" in skipped[f"train dcgan {v}"]
    # every inference backend and batch is either measured or skipped with a reason
    measured = {(r["backend"], r["batch_size"]) for r in d["inference"]}
    assert {("ort-cpu", 1), ("ort-cpu", 4)} <= measured
    for backend in ("eager-cuda", "ort-cuda", "ort-trt"):
        for batch in (1, 4):
            assert (backend, batch) in measured or skipped.get(f"inference dcgan {backend} batch {batch}"), (backend, batch)
