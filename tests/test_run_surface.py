"""What a user of ``ganzoo train`` meets around a run: a plugin failing mid-run (one line naming it, no
half-made run directory), resume with repeated options, the defaults ``--help`` shows, unknown options,
the automatic intervals explained in config.toml, and the evaluation row of image runs."""

from __future__ import annotations

import json
import tomllib

import pytest

import ganzoo
from conftest import assert_user_error, run_process
from ganzoo import LossSpec, hookimpl

TINY = ["--batch-size", 32, "--device", "cpu", "--set", "hidden=16", "--set", "layers=2", "--set", "eval_samples=300"]


def _boom_d(real_out, fake_out):
    return real_out.mean() / 0 if real_out.numel() < 0 else {}["no such key"]


class _Late:
    """A loss that works for ``fail_after`` discriminator updates, then raises."""

    def __init__(self, fail_after):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, real_out, fake_out):
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("late failure on purpose")
        return (fake_out - real_out).mean()


class FailingLosses:
    @hookimpl
    def ganzoo_losses(self):
        return [LossSpec("boom", "raises at once", _boom_d, lambda f: f.mean()),
                LossSpec("late", "raises after 5 updates", _Late(5), lambda f: -f.mean())]


@pytest.fixture(scope="module")
def failing(cli):
    from ganzoo.registry import get_registry

    get_registry().register(FailingLosses(), "failing-test")
    return cli


def test_a_plugin_failing_before_the_first_checkpoint_leaves_no_run(failing, tmp_path):
    out = tmp_path / "never"
    line = assert_user_error(failing("train", "vanilla", "--loss", "boom", "--steps", 5, "--out", out, *TINY),
                             "plugin 'failing-test'", "failed at step 1 in _boom_d", "KeyError: 'no such key'",
                             f"the unfinished run directory {out} was removed")
    assert "test_run_surface.py:" in line
    assert not out.exists()
    mine = tmp_path / "mine"  # a folder the user made stays, empty as it was
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_user_error(failing("train", "vanilla", "--loss", "boom", "--steps", 5, "--out", mine, *TINY), "failing-test")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_plugin_failing_after_a_checkpoint_keeps_a_valid_run(failing, tmp_path):
    out = tmp_path / "kept"
    assert_user_error(failing("train", "vanilla", "--loss", "late", "--steps", 10, "--out", out,
                              "--set", "checkpoint_every=2", *TINY),
                      "plugin 'failing-test'", "failed at step 6", "RuntimeError: late failure on purpose",
                      f"keeps its last checkpoint; continue it with --resume {out}")
    run = ganzoo.load(out)
    assert run.step == 4 and run.config["loss"] == "late"


@pytest.fixture(scope="module")
def done(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "r"
    r = cli("train", "vanilla", "--steps", 4, "--out", out, "--quiet", *TINY)
    assert r.code == 0, r.err
    return out


def test_resume_accepts_repeated_equal_options_and_reports_this_invocation(cli, done):
    r = cli("train", "vanilla", "--resume", done, "--steps", 6, *TINY, "--set", "seed=0", "--out", done)
    assert r.code == 0, r.err
    assert r.lines[-2].startswith("trained 2 steps (4 -> 6) in ")
    assert r.lines[-1] == str(done)
    r = cli("train", "vanilla", "--resume", done, "--config", done / "config.toml", "--steps", 8, "--quiet")
    assert r.code == 0, r.err
    assert tomllib.loads((done / "config.toml").read_text())["steps"] == 8


def test_resume_refuses_only_differing_options_naming_them(cli, done):
    line = assert_user_error(cli("train", "vanilla", "--resume", done, "--steps", 20, "--batch-size", 32,
                                 "--batch-size", 16, "--set", "hidden=8", "--lr", 0.001, "--seed", 0),
                             "only --steps, --device and --threads may change",
                             "batch_size (16 given, 32 in the run)", "hidden (8 given, 16 in the run)")
    assert "seed" not in line and "lr_g" not in line  # equal values are not named
    assert tomllib.loads((done / "config.toml").read_text())["steps"] < 20  # nothing changed


def test_config_toml_says_what_the_automatic_intervals_are(done):
    text = (done / "config.toml").read_text()
    cfg = tomllib.loads(text)
    assert cfg["sample_every"] == 0 and cfg["checkpoint_every"] == 0
    steps = cfg["steps"]
    assert f"# sample_every = 0: a sample grid about 10 times per run, every {max(1, steps // 10)} steps" in text
    assert f"# checkpoint_every = 0: a checkpoint about 4 times per run, every {max(1, steps // 4)} steps" in text


def test_help_shows_what_a_run_on_the_default_data_really_uses(cli):
    r = cli("train", "vanilla", "--help")
    text = " ".join(r.out.split())
    assert "--data ring8, points): --loss lsgan, --penalty none, --steps 3000" in text
    assert "On image data (e.g. --data digits): --loss ns" in text
    assert "--latent-dim INTEGER size of the latent code z [default: 2 on points data, 64 on image data]" in text


def test_an_unknown_option_is_one_line(cli):
    line = assert_user_error(cli("train", "vanilla", "--stepz", 3), "no such option '--stepz'", "--steps",
                             "see 'ganzoo train vanilla --help'")
    assert "Usage:" not in line
    assert_user_error(cli("list", "--jsn"), "no such option '--jsn'", "see 'ganzoo list --help'")
    assert_user_error(cli("eval"), "missing argument 'RUN_DIR'", "see 'ganzoo eval --help'")
    r = run_process("train", "vanilla", "--bogus")
    assert_user_error(r, "no such option '--bogus'")


def test_an_image_run_writes_its_evaluation_row(cli, tmp_path):
    out = tmp_path / "img"
    r = cli("train", "vanilla", "--data", "digits", "--steps", 3, "--out", out, *TINY)
    assert r.code == 0, r.err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ev = rows[-1]["eval"]
    assert rows[-1]["step"] == 3 and ev["classes_covered"] is not None and ev["classifier_fd"] > 0
    assert ev["samples"] == 300 and ev["num_classes"] == 10
    assert any(line.startswith("classifier FD ") for line in r.lines)
    assert ganzoo.load(out).results["classifier_fd"] == ev["classifier_fd"]


class RecordingPenalty:
    """Checks what PenaltySpec's docstring promises: fake detached, the run's generator passed."""

    seen: list = []

    @hookimpl
    def ganzoo_penalties(self):
        from ganzoo import PenaltySpec

        def fn(critic, real, fake, generator=None):
            import torch

            RecordingPenalty.seen.append((fake.requires_grad, fake.grad_fn is None, isinstance(generator, torch.Generator)))
            return critic(real).pow(2).mean()

        return [PenaltySpec("recorder", "records its arguments", fn, weight=0.5)]


def test_a_penalty_gets_a_detached_fake_and_the_runs_generator(cli, tmp_path):
    from ganzoo.registry import get_registry

    get_registry().register(RecordingPenalty(), "recording-test")
    out = tmp_path / "pen"
    r = cli("train", "vanilla", "--penalty", "recorder", "--steps", 2, "--out", out, "--quiet", *TINY)
    assert r.code == 0, r.err
    assert RecordingPenalty.seen and set(RecordingPenalty.seen) == {(False, True, True)}
    assert tomllib.loads((out / "config.toml").read_text())["penalty_weight"] == 0.5  # not vanilla's: its own


def test_a_set_too_small_to_score_still_finishes_its_run(cli, tmp_path):
    from PIL import Image

    for sub in ("cats", "dogs"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (9, 9), (40 * i, 0, 0)).save(tmp_path / "data" / ("cats", "dogs")[i % 2] / f"{i}.png")
    out = tmp_path / "run"
    r = cli("train", "vanilla", "--data", f"folder:{tmp_path / 'data'}", "--image-size", 8, "--steps", 2,
            "--out", out, "--batch-size", 2, "--set", "hidden=8", "--set", "eval_samples=10")
    assert r.code == 0, r.err
    ev = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]["eval"]
    assert ev["note"].startswith("no end-of-run image metrics:") and "image metrics need at least 4" in ev["note"]
