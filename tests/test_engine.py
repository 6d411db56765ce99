"""The engine's guarantees: seeding, exact resume, safe and atomic checkpoints, deterministic eval.

Every run is the vanilla GAN on ring8 at a tiny size (a few seconds each on a shared CPU).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from conftest import assert_user_error
from ganzoo import GanzooError
from ganzoo.engine import checkpoint as ckpt_mod
from ganzoo.engine.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint

TINY = ["--batch-size", 32, "--device", "cpu", "--set", "hidden=16", "--set", "layers=2", "--set", "eval_samples=500"]


def train(cli, out, *args, steps=20, seed=0):
    r = cli("train", "vanilla", "--steps", steps, "--seed", seed, "--out", out, "--quiet", *TINY, *args)
    assert r.exception is None and r.code == 0, (r.code, r.err, r.exception)
    assert r.lines == [str(out)]  # --quiet: only the run directory on stdout
    return Path(out)


def resume(cli, run, steps):
    r = cli("train", "vanilla", "--resume", run, "--steps", steps, "--quiet")
    assert r.exception is None and r.code == 0, (r.code, r.err, r.exception)
    return Path(run)


def losses(run: Path) -> list[dict]:
    """metrics.jsonl loss records without their wall-clock time."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k != "time"} for r in recs if "eval" not in r]


def evals(run: Path) -> list[dict]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["eval"] for r in recs if "eval" in r]


def last_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def assert_same_tensors(a: dict, b: dict, what: str) -> int:
    assert a.keys() == b.keys(), what
    n = 0
    for net in a:
        assert a[net].keys() == b[net].keys(), (what, net)
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{what}: {net}.{k} differs"
            n += 1
    return n


# --- (a) seeds ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(cli, tmp_path_factory):
    root = tmp_path_factory.mktemp("seeded")
    return {name: train(cli, root / name, seed=seed) for name, seed in (("a", 1), ("b", 1), ("c", 2))}


def test_same_seed_same_losses_and_pictures(seeded):
    a, b = seeded["a"], seeded["b"]
    assert len(losses(a)) >= 1 and losses(a) == losses(b)
    pngs = sorted(p.name for p in (a / "samples").glob("*.png"))
    assert pngs == sorted(p.name for p in (b / "samples").glob("*.png")) and len(pngs) >= 2
    for name in pngs:
        assert (a / "samples" / name).read_bytes() == (b / "samples" / name).read_bytes(), name
    assert evals(a) == evals(b)
    assert_same_tensors(last_state(a)["nets"], last_state(b)["nets"], "same seed")


def test_other_seed_differs(seeded):
    a, c = seeded["a"], seeded["c"]
    assert losses(a) != losses(c)
    assert (a / "samples/step_000020.png").read_bytes() != (c / "samples/step_000020.png").read_bytes()
    ga, gc = last_state(a)["nets"]["G"], last_state(c)["nets"]["G"]
    assert any(not torch.equal(ga[k], gc[k]) for k in ga)


# --- (b) resume --------------------------------------------------------------------------------


@pytest.mark.parametrize("intervals", [[], ["--set", "checkpoint_every=7", "--set", "sample_every=3"]],
                         ids=["default-intervals", "checkpoint_every=7"])
def test_resume_equals_straight_run(cli, tmp_path, intervals):
    straight = train(cli, tmp_path / "straight", *intervals, steps=40, seed=3)
    split = train(cli, tmp_path / "split", *intervals, steps=20, seed=3)
    assert last_state(split)["step"] == 20
    resume(cli, split, 40)

    s, r = last_state(straight), last_state(split)
    assert s["step"] == r["step"] == 40
    assert assert_same_tensors(s["nets"], r["nets"], "nets") >= 8
    assert s["ema"] and assert_same_tensors(s["ema"], r["ema"], "ema") >= 4
    # Adam moments too: the resumed run continues exactly where it stopped
    for g in ("G", "D"):
        for i, st in s["optim"][g]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, r["optim"][g]["state"][i][k]), (g, i, k)

    steps = [rec["step"] for rec in losses(split)]
    assert steps == sorted(set(steps)), f"duplicate or unordered steps in metrics.jsonl: {steps}"
    assert steps[-1] == 40 and 20 in steps  # the first leg's last record survives, none after it twice
    assert len(evals(split)) == 1  # the first leg's end-of-run evaluation was dropped on resume
    assert evals(split) == evals(straight)
    assert losses(split)[-1] == losses(straight)[-1]  # the step-40 log averages the same 15 steps
    assert (split / "samples/step_000040.png").read_bytes() == (straight / "samples/step_000040.png").read_bytes()


def test_resume_needs_more_steps(cli, seeded):
    assert_user_error(cli("train", "vanilla", "--resume", seeded["a"], "--steps", 20), "already at step 20")


def test_resume_refuses_changed_settings(cli, seeded):
    assert_user_error(cli("train", "vanilla", "--resume", seeded["a"], "--steps", 30, "--set", "hidden=8"),
                      "only --steps, --device and --threads may change")


# --- (c) checkpoints ---------------------------------------------------------------------------


def test_no_temp_files_left(seeded):
    for run in seeded.values():
        # the newest keep_checkpoints=2 saves, and last.pt (the same file as the newest)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_000015.pt", "step_000020.pt"]
        assert (run / "checkpoints/last.pt").samefile(run / "checkpoints/step_000020.pt")
        assert not [p for p in run.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "nets": {"G": {"w": torch.ones(3)}}})
    before = path.read_bytes()

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "nets": {"G": {"w": torch.zeros(3)}}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the temp file was removed
    monkeypatch.undo()
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class _Payload:
    """Unpickling this runs code: exactly what weights_only=True must refuse."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_malicious_checkpoint_is_refused(cli, seeded, tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_bytes((seeded["a"] / "config.toml").read_bytes())
    path = run / "checkpoints" / "last.pt"
    torch.save({"step": 20, "nets": {"G": _Payload(marker)}}, path)

    with pytest.raises(GanzooError, match="corrupt or not a ganzoo checkpoint"):
        load_checkpoint(path)
    assert_user_error(cli("eval", run), "last.pt")
    assert_user_error(cli("train", "vanilla", "--resume", run, "--steps", 30), "corrupt or not a ganzoo checkpoint")
    assert not marker.exists(), "the payload ran"

    # the file really is malicious: an unsafe load would have run it
    torch.load(path, weights_only=False)
    assert marker.read_text() == "pwned"


def test_checkpoint_that_is_not_a_ganzoo_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(GanzooError, match="not a ganzoo checkpoint"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(GanzooError, match="corrupt or not a ganzoo checkpoint"):
        load_checkpoint(path)


# --- (f) eval ----------------------------------------------------------------------------------


def test_eval_json_is_one_deterministic_object(cli, seeded):
    first, second = cli("eval", seeded["a"], "--json"), cli("eval", seeded["a"], "--json")
    assert first.code == 0 and first.exception is None, first.err
    assert len(first.lines) == 1 and first.out == second.out
    rec = json.loads(first.out)
    for key in ("modes", "modes_total", "high_quality", "reverse_kl"):
        assert key in rec
    assert rec["modes_total"] == 8 and 0 <= rec["modes"] <= 8 and 0.0 <= rec["high_quality"] <= 1.0
    assert rec["step"] == 20 and rec["arch"] == "vanilla" and rec["data"] == "ring8"
    # the same numbers the run itself logged at its end (same generator, same fixed noise)
    logged = evals(seeded["a"])[-1]
    assert {k: rec[k] for k in logged} == logged and rec["samples"] == 500


def test_eval_text_output(cli, seeded):
    r = cli("eval", seeded["a"])
    assert r.code == 0, r.err
    keys = [ln.split()[0] for ln in r.lines]
    assert {"modes", "modes_total", "high_quality", "reverse_kl"} <= set(keys)


def _lrs(run: Path) -> set[float]:
    optim = last_state(run)["optim"]
    return {pg["lr"] for g in ("G", "D") for pg in optim[g]["param_groups"]}


def test_lr_decay_falls_linearly_to_zero(cli, tmp_path):
    half = train(cli, tmp_path / "half", "--set", "lr_decay=0.5", steps=20)
    const = train(cli, tmp_path / "const", steps=20)
    assert _lrs(const) == {1e-3}  # vanilla's Adam(1e-3): untouched without lr_decay
    assert _lrs(half) == {0.0}  # the last step's factor is 0

    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer

    rd = RunDir(half)
    trainer = Trainer(rd.read_config(), RunDir(tmp_path / "unit"), quiet=True)
    seen = []
    for step in (1, 10, 15, 20):
        trainer._set_lr(step)
        seen.append(trainer.opt["G"].param_groups[0]["lr"])
    assert seen == pytest.approx([1e-3, 1e-3, 0.5e-3, 0.0])  # constant for half the run, then linear
