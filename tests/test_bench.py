"""``ganzoo bench``: every backend in its own process, records with latency percentiles and the
provider that really ran, unavailable backends reported (never a crash). Timings are not asserted
(the machine is shared); only that the numbers exist and are consistent. torch.compile is exercised
by benchmarks/onnx_zoo.py, not here: compiling takes minutes on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganzoo.bench import bench_jobs, format_table, run_backend, run_jobs
from ganzoo.cli.main import cli

from test_runtime import build  # a tiny ganzoo-contract model built with onnx.helper

FAST = ["--warmup", "0", "--seconds", "0", "--min-iters", "3"]
KEYS = {"backend", "batch_size", "p50_ms", "p90_ms", "p99_ms", "images_per_s", "provider", "threads"}


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def check_available(rec, backend, provider_prefix):
    assert KEYS <= set(rec) and rec["backend"] == backend and rec["available"] is True
    assert rec["provider"].startswith(provider_prefix)
    assert 0 < rec["p50_ms"] <= rec["p90_ms"] <= rec["p99_ms"]
    assert rec["images_per_s"] == pytest.approx(rec["batch_size"] * 1000 / rec["p50_ms"], rel=1e-2)
    assert rec["iters"] >= 3 and rec["threads"] >= 1


def test_bench_an_onnx_file_without_torch(tmp_path):
    """ONNX Runtime backends run; PyTorch backends are unavailable for a bare .onnx (and torch is
    never imported: the parent and the workers run where importing torch fails)."""
    model = build(tmp_path / "m.onnx")
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    cmd = [sys.executable, "-m", "ganzoo.cli.main", "bench", str(model), "--backends", "ort-cpu,eager,ort-cuda",
           "--batch-sizes", "1,3", "--threads", "1", "--json", *FAST]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["backend"], r["batch_size"]) for r in records] == [
        ("ort-cpu", 1), ("ort-cpu", 3), ("eager", 1), ("eager", 3), ("ort-cuda", 1), ("ort-cuda", 3)]
    for r in records[:2]:
        check_available(r, "ort-cpu", "cpu")
        assert r["threads"] == 1
    for r in records[2:4]:
        assert r["available"] is False and "needs a RUN_DIR" in r["reason"] and r["p50_ms"] is None
    for r in records[4:]:
        if r["available"]:  # a GPU machine
            check_available(r, "ort-cuda", "cuda")
        else:
            assert "provider 'cuda'" in r["reason"] and KEYS <= set(r)


def test_bench_a_run_dir_eager_and_onnxruntime(tmp_path):
    from test_export import train_tiny

    run = train_tiny("vanilla", "points", tmp_path / "run")
    png = tmp_path / "lat.png"
    r = invoke("bench", run, "--backends", "eager,ort-cpu", "--batch-sizes", "1,2", "--plot", png, "--json", *FAST)
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert [(x["backend"], x["batch_size"]) for x in records] == [("eager", 1), ("eager", 2), ("ort-cpu", 1), ("ort-cpu", 2)]
    for rec in records:
        check_available(rec, rec["backend"], "torch-cpu" if rec["backend"] == "eager" else "cpu")
        assert rec["threads"] == os.cpu_count()
    assert png.stat().st_size > 1000
    assert (run / "generator.onnx").is_file()  # exported into the run directory, reused next time
    table = format_table(records)
    assert table.splitlines()[0].split()[:3] == ["backend", "batch", "p50"] and len(table.splitlines()) == 6


def test_a_failing_worker_becomes_an_unavailable_record(tmp_path):
    job = {"batch_sizes": [1, 4], "threads": 1, "onnx": str(tmp_path / "missing.onnx")}
    recs = run_backend("ort-cpu", job)
    assert [r["batch_size"] for r in recs] == [1, 4] and all(r["available"] is False for r in recs)
    assert "does not exist" in recs[0]["reason"]
    recs = run_backend("ort-cpu", {"batch_sizes": [2], "threads": 1})  # a crash (no "onnx" key)
    assert recs[0]["available"] is False and "worker exited with 1" in recs[0]["reason"] and "KeyError" in recs[0]["reason"]
    table = format_table(recs)
    assert "ort-cpu     unavailable: worker exited with 1" in table


def test_bench_mistakes_are_one_line(tmp_path):
    for args, words in [(["bench", tmp_path / "nope.onnx"], "does not exist"),
                        (["bench", tmp_path, "--batch-sizes", "1,x"], "--batch-sizes"),
                        (["bench", tmp_path, "--batch-sizes", "0"], "positive"),
                        (["bench", tmp_path, "--backends", "eager,tpu"], "unknown tpu"),
                        (["bench", tmp_path, "--rounds", "0"], "--rounds at least 1")]:
        r = invoke(*args)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ganzoo: error:") and words in lines[0], r.stderr


def test_rounds_interleave_the_backends(tmp_path):
    """--rounds N: each backend's process loads once, then every round times every backend before
    the next round starts; the figures are the medians over rounds and each round's p50 is kept."""
    from statistics import median

    from test_export import train_tiny

    run = train_tiny("vanilla", "points", tmp_path / "run")
    r = invoke("bench", run, "--backends", "eager,ort-cpu", "--batch-sizes", "1,2", "--rounds", "3", "--json", *FAST)
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert sorted((x["backend"], x["batch_size"]) for x in records) == [("eager", 1), ("eager", 2), ("ort-cpu", 1), ("ort-cpu", 2)]
    for rec in records:
        check_available(rec, rec["backend"], "torch-cpu" if rec["backend"] == "eager" else "cpu")
        assert rec["rounds"] == 3 and len(rec["rounds_p50_ms"]) == 3 and rec["iters"] >= 9
        assert rec["p50_ms"] == pytest.approx(median(rec["rounds_p50_ms"]), rel=1e-3)
    # round k of every backend and batch size is timed before any of round k + 1
    for k in range(2):
        assert max(x["rounds_at_s"][k] for x in records) < min(x["rounds_at_s"][k + 1] for x in records)


def test_a_backend_that_cannot_load_does_not_stop_the_rounds(tmp_path):
    model = build(tmp_path / "m.onnx")
    jobs, missing = bench_jobs(model, ["ort-cpu", "eager"], [1], threads=1, warmup_s=0, min_time_s=0, min_iters=3)
    assert len(jobs) == 1 and missing[0]["backend"] == "eager" and not missing[0]["available"]
    broken = {**jobs[0], "onnx": str(tmp_path / "gone.onnx"), "tags": {"variant": "broken"}}
    recs = run_jobs([broken, jobs[0]], rounds=2)
    bad = [x for x in recs if x.get("variant") == "broken"]
    good = [x for x in recs if x.get("variant") is None]
    assert len(bad) == 1 and bad[0]["available"] is False and "does not exist" in bad[0]["reason"]
    assert len(good) == 1 and good[0]["available"] and len(good[0]["rounds_p50_ms"]) == 2


def test_batch_parallel_is_reported_in_the_records(tmp_path):
    model = build(tmp_path / "m.onnx")
    r = invoke("bench", model, "--backends", "ort-cpu", "--threads", 2, "--batch-parallel", "--batch-sizes", "1,4", "--json", *FAST)
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    for rec in records:
        check_available(rec, "ort-cpu", "cpu")
        assert rec["sessions"] == 2 and rec["threads"] == 2
    assert "2 sessions" in format_table(records)


def test_workers_import_the_installed_ganzoo_from_a_folder_holding_a_checkout(tmp_path, monkeypatch):
    """Run from a folder with a ganzoo/ directory (a checkout), `python -m` would put that folder
    first on the worker's sys.path and import it as an empty namespace package instead of the
    installed ganzoo; workers start elsewhere, and relative paths still point where the user meant."""
    from test_export import train_tiny

    train_tiny("vanilla", "points", tmp_path / "run")
    home = tmp_path / "home"
    (home / "ganzoo").mkdir(parents=True)
    monkeypatch.chdir(home)
    r = invoke("bench", "../run", "--backends", "eager", "--batch-sizes", "1", "--threads", "1", "--json", *FAST)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)[0]
    assert rec["available"] is True, rec.get("reason")
    check_available(rec, "eager", "torch-cpu")
    recs = run_jobs(bench_jobs(Path("../run"), ["eager"], [1], threads=1, warmup_s=0, min_time_s=0, min_iters=3)[0], rounds=2)
    assert recs[0]["available"] is True, recs[0].get("reason")  # the serving workers of --rounds too


def _rec(backend, p50, rounds=None, batch=1, **kw):
    return {"backend": backend, "batch_size": batch, "p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.5,
            "images_per_s": batch * 1e3 / p50, "threads": 2, "provider": "cpu", "available": True,
            **({"rounds_p50_ms": rounds} if rounds else {}), **kw}


def test_table_ratio_against_eager_and_spread_over_rounds():
    recs = [_rec("eager", 2.0, [108.0, 2.1, 1.9, 2.0]), _rec("ort-cpu", 0.5, [0.5, 0.55, 0.45]),
            _rec("eager", 10.0, batch=8), _rec("ort-cpu", 20.0, batch=8), _rec("ort-cpu", 4.0, batch=64)]
    lines = format_table(recs, gpu=False).splitlines()
    assert "vs eager" in lines[0] and "rounds p50 ms" in lines[0]
    rows = {(ln.split()[0], int(ln.split()[1])): ln for ln in lines[2:7]}
    assert "1.00x" in rows["eager", 1] and "4.00x" in rows["ort-cpu", 1] and "0.50x" in rows["ort-cpu", 8]
    assert " - " in rows["ort-cpu", 64]  # no eager figure at batch 64: no ratio
    assert "1.9-108 !" in rows["eager", 1] and "0.45-0.55" in rows["ort-cpu", 1] and "!" not in rows["ort-cpu", 1]
    assert lines[7].startswith("! a round's p50 was over 2x from the median")
    calm = format_table([_rec("eager", 2.0, [2.0, 2.2, 1.9])], gpu=False)
    assert "!" not in calm and len(calm.splitlines()) == 3


def test_gpu_backends_without_a_gpu_are_one_line():
    missing = [{"backend": b, "batch_size": n, "available": False, "p50_ms": None,
                "reason": "onnxruntime has no provider 'cuda'; install onnxruntime-gpu (CUDA 13, cuDNN 9) ..."}
               for b in ("eager-cuda", "ort-cuda", "ort-trt") for n in (1, 8)]
    broken = {"backend": "compile", "batch_size": 1, "available": False, "p50_ms": None, "reason": "torch.compile failed: X"}
    recs = [_rec("eager", 1.0), *missing, broken]
    lines = format_table(recs, gpu=False).splitlines()
    assert lines[-2:] == ["compile     unavailable: torch.compile failed: X",
                          "eager-cuda, ort-cuda, ort-trt (PyTorch CUDA, CUDA, TensorRT): not available on this machine (no GPU)"]
    assert "install" not in "\n".join(lines)
    with_gpu = format_table(recs, gpu=True).splitlines()  # a GPU whose libraries are missing: say what to install
    assert sum("unavailable: onnxruntime has no provider 'cuda'" in ln for ln in with_gpu) == 3
