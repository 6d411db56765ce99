"""Checkpoint history: the newest keep_checkpoints saves, fallback from a damaged last.pt with one
warning line, a full disk that leaves the previous checkpoint intact, a torn metrics.jsonl line."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from conftest import assert_user_error
from ganzoo import GanzooError
from ganzoo.engine import checkpoint as ck

TINY = ["--batch-size", 32, "--device", "cpu", "--set", "hidden=16", "--set", "layers=2", "--set", "eval_samples=200",
        "--set", "checkpoint_every=5", "--set", "log_every=5"]


def state(step: int) -> dict:
    return {"step": step, "nets": {"G": {"w": torch.full((3,), float(step))}}}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_keeps_the_newest_k_and_last_is_the_newest(tmp_path):
    for step in (2, 4, 6):
        ck.write_history_checkpoint(tmp_path, step, state(step), keep=2)
    assert names(tmp_path) == ["last.pt", "step_000004.pt", "step_000006.pt"]
    assert (tmp_path / "last.pt").samefile(tmp_path / "step_000006.pt")  # a hard link: no second copy
    loaded, path = ck.load_latest_checkpoint(tmp_path)
    assert loaded["step"] == 6 and path.name == "last.pt"

    every = tmp_path / "all"
    for step in (1, 2, 3):
        ck.write_history_checkpoint(every, step, state(step), keep=0)
    assert names(every) == ["last.pt", "step_000001.pt", "step_000002.pt", "step_000003.pt"]


def test_resume_from_an_older_save_drops_the_abandoned_later_ones(tmp_path):
    for step in (2, 4, 6):
        ck.write_history_checkpoint(tmp_path, step, state(step), keep=3)
    (tmp_path / ".step_000008.pt.abc.tmp").write_bytes(b"half")  # left by a process killed while saving
    ck.write_history_checkpoint(tmp_path, 5, state(5), keep=3)  # a run resumed from step 4 saves at 5
    assert names(tmp_path) == ["last.pt", "step_000002.pt", "step_000004.pt", "step_000005.pt"]


def test_killed_between_the_step_file_and_last_pt(tmp_path, capsys):
    ck.write_history_checkpoint(tmp_path, 2, state(2))
    ck.atomic_write_bytes(tmp_path / "step_000004.pt", ck._serialise(state(4)))  # last.pt not yet moved on
    loaded, path = ck.load_latest_checkpoint(tmp_path)
    assert loaded["step"] == 4 and path.name == "step_000004.pt"
    assert capsys.readouterr().err == ""  # a complete newer save is no damage: nothing to warn about


def test_damaged_last_falls_back_with_one_warning(tmp_path):
    for step in (2, 4):
        ck.write_history_checkpoint(tmp_path, step, state(step))
    data = bytearray((tmp_path / "last.pt").read_bytes())
    with open(tmp_path / "last.pt", "r+b") as fh:  # bit rot in place (last.pt and step_000004.pt are one file)
        fh.write(bytes(b ^ 0xFF for b in data[:64]))
    warnings: list[str] = []
    loaded, path = ck.load_latest_checkpoint(tmp_path, warn=warnings.append)
    assert loaded["step"] == 2 and path.name == "step_000002.pt"
    assert len(warnings) == 1 and warnings[0].startswith("ganzoo: warning: last.pt (step_000004.pt) is corrupt")
    assert "using step_000002.pt (step 2) instead" in warnings[0]
    (tmp_path / "step_000002.pt").write_bytes(b"garbage")
    with pytest.raises(GanzooError, match="no checkpoint in .* can be read"):
        ck.load_latest_checkpoint(tmp_path, warn=warnings.append)


def test_cli_resume_and_eval_survive_a_torn_last_pt(cli, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "vanilla", "--steps", 15, "--out", run, "--quiet", *TINY)
    assert r.code == 0, r.err
    last = run / "checkpoints" / "last.pt"
    size = last.stat().st_size
    with open(last, "r+b") as fh:  # torn: the tail is gone
        fh.truncate(size // 2)
    r = cli("eval", run, "--json")
    assert r.code == 0 and json.loads(r.out)["step"] == 10
    assert [ln for ln in r.err.splitlines() if "warning" in ln] == [
        ln for ln in r.err.splitlines() if ln.startswith("ganzoo: warning: last.pt (step_000015.pt) is corrupt")]
    r = cli("train", "vanilla", "--resume", run, "--steps", 20, "--quiet")
    assert r.code == 0 and r.exception is None, r.err
    assert len([ln for ln in r.err.splitlines() if ln.startswith("ganzoo: warning:")]) == 1
    assert torch.load(last, weights_only=True)["step"] == 20
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 20]  # 15 re-logged from the step-10 checkpoint, once; then the evaluation


def test_full_disk_gives_one_line_and_keeps_the_previous_checkpoint(cli, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real = ck.atomic_write_bytes

    def full_disk(path, data):
        if Path(path).name == "step_000010.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(ck, "atomic_write_bytes", full_disk)
    r = cli("train", "vanilla", "--steps", 15, "--out", run, "--quiet", *TINY)
    assert r.code == 1 and r.exception is None, (r.code, r.err)  # not a user mistake (2), not a traceback
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert lines == [f"ganzoo: error: cannot write the checkpoint of step 10 to {run / 'checkpoints'} (No space left on "
                     "device); the checkpoint of step 5 is intact; free some disk space and resume the run"]
    assert names(run / "checkpoints") == ["last.pt", "step_000005.pt"]
    assert torch.load(run / "checkpoints/last.pt", weights_only=True)["step"] == 5
    monkeypatch.undo()
    r = cli("train", "vanilla", "--resume", run, "--quiet")
    assert r.code == 0, r.err
    assert torch.load(run / "checkpoints/last.pt", weights_only=True)["step"] == 15


def test_full_disk_while_linking_last_pt(tmp_path, monkeypatch):
    ck.write_history_checkpoint(tmp_path, 2, state(2))

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.os, "link", no_space)
    with pytest.raises(ck.CheckpointWriteError, match="step 4 .* the checkpoint of step 2 is intact"):
        ck.write_history_checkpoint(tmp_path, 4, state(4))
    assert names(tmp_path) == ["last.pt", "step_000002.pt"]  # the new file is gone, last.pt untouched
    assert ck.load_latest_checkpoint(tmp_path)[0]["step"] == 2


def test_no_hard_links_falls_back_to_a_copy(tmp_path, monkeypatch):
    def refuse(*_a, **_k):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(ck.os, "link", refuse)
    ck.write_history_checkpoint(tmp_path, 3, state(3))
    assert names(tmp_path) == ["last.pt", "step_000003.pt"]
    assert (tmp_path / "last.pt").read_bytes() == (tmp_path / "step_000003.pt").read_bytes()


def test_torn_metrics_line_is_ignored_and_cut_on_resume(cli, tmp_path):
    from ganzoo.engine.rundir import RunDir

    run = tmp_path / "run"
    r = cli("train", "vanilla", "--steps", 10, "--out", run, "--quiet", *TINY)
    assert r.code == 0, r.err
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"time": 1.0, "step": 15, "d_lo')  # what a kill -9 in the middle of a write leaves
    assert [rec["step"] for rec in RunDir(run).read_metrics()] == [5, 10, 10]
    r = cli("report", run)
    assert r.code == 0, r.err
    r = cli("train", "vanilla", "--resume", run, "--steps", 15, "--quiet")
    assert r.code == 0, r.err
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [5, 10, 15, 15]  # every line parses: the torn tail is gone


def test_keep_checkpoints_must_not_be_negative(cli, tmp_path):
    assert_user_error(cli("train", "vanilla", "--out", tmp_path / "r", "--set", "keep_checkpoints=-1"), "keep_checkpoints")


def test_full_disk_anywhere_else_is_one_line_too(cli, tmp_path, monkeypatch):
    from ganzoo.engine.rundir import RunDir

    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.metrics_path))

    monkeypatch.setattr(RunDir, "append_metrics", full)
    r = cli("train", "vanilla", "--steps", 10, "--out", tmp_path / "run", "--quiet", *TINY)
    assert r.code == 1 and r.exception is None, (r.code, r.err, r.exception)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert lines == [f"ganzoo: error: No space left on device while writing {tmp_path / 'run' / 'metrics.jsonl'}; free "
                     "some disk space (a run keeps its last checkpoint: continue it with --resume RUN_DIR)"]
