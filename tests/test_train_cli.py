"""``ganzoo train`` / ``ganzoo eval`` from a user's side: bad input gives one line and exit code 2, a
run directory holds what it promises, ``--config`` and ``--set`` combine in the documented order."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from conftest import assert_user_error, run_process

TINY = ["--batch-size", 32, "--device", "cpu", "--set", "hidden=16", "--set", "layers=2", "--set", "eval_samples=500"]


@pytest.fixture(scope="module")
def run(cli, tmp_path_factory):
    """One finished tiny run (not --quiet, so the summary is printed)."""
    out = tmp_path_factory.mktemp("runs") / "r"
    r = cli("train", "vanilla", "--steps", 12, "--seed", 0, "--out", out, "--set", "sample_every=6", *TINY)
    assert r.code == 0 and r.exception is None, (r.err, r.exception)
    return out, r


# --- (d) bad input ---------------------------------------------------------------------------

BAD = {
    "unknown-loss": (["--loss", "hinj"], ["unknown loss 'hinj'", "did you mean 'hinge'"]),
    "unknown-data": (["--data", "ring9"], ["unknown data set 'ring9'", "did you mean 'ring8'"]),
    "misspelt-key": (["--set", "hiden=1"], ["unknown key 'hiden'", "did you mean 'hidden'", "valid keys: ", "latent_dim"]),
    "unknown-key": (["--set", "nope=1"], ["unknown key 'nope'", "valid keys: ", "batch_size", "hidden"]),
    "not-a-number": (["--set", "hidden=abc"], ["hidden", "expected an integer, got 'abc'"]),
    "not-key-value": (["--set", "hidden"], ["expected key=value"]),
    "zero-steps": (["--steps", "0"], ["--steps must be a positive number"]),
    "negative-steps": (["--steps", "-3"], ["--steps must be a positive number", "-3"]),
    "missing-idx": (["--data", "idx:/no/such/path"], ["/no/such/path does not exist"]),
    "embedded-with-path": (["--data", "ring8:/tmp"], ["takes no path"]),
    "missing-config": (["--config", "/no/such/file.toml"], ["/no/such/file.toml does not exist"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_option(cli, tmp_path, case):
    args, fragments = BAD[case]
    out = tmp_path / "out"
    assert_user_error(cli("train", "vanilla", "--out", out, *args), *fragments)
    assert not out.exists()  # nothing half-made is left behind


def test_bad_config_file(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [\n")
    assert_user_error(cli("train", "vanilla", "--config", bad), "not valid TOML")
    bad.write_text('stepz = 3\n')
    assert_user_error(cli("train", "vanilla", "--config", bad), "--config", "unknown key 'stepz'", "did you mean 'steps'")
    bad.write_text('steps = "many"\n')
    assert_user_error(cli("train", "vanilla", "--config", bad), "steps", "expected an integer")


def test_unknown_architecture(cli):
    assert_user_error(cli("train", "vanila"), "unknown architecture 'vanila'", "did you mean 'vanilla'")


def test_resume_a_folder_that_is_not_a_run(cli, tmp_path):
    assert_user_error(cli("train", "vanilla", "--resume", tmp_path), "not a ganzoo run directory")
    assert_user_error(cli("train", "vanilla", "--resume", tmp_path / "nope"), "does not exist")
    (tmp_path / "last.pt").write_bytes(b"x")
    assert_user_error(cli("train", "vanilla", "--resume", tmp_path / "last.pt"), "is a file, not a run directory")


def test_resume_a_run_of_another_architecture(cli, run, tmp_path):
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    cfg = (run[0] / "config.toml").read_text().replace('arch = "vanilla"', 'arch = "other"')
    assert 'arch = "other"' in cfg
    (other / "config.toml").write_text(cfg)
    (other / "checkpoints" / "last.pt").write_bytes((run[0] / "checkpoints" / "last.pt").read_bytes())
    assert_user_error(cli("train", "vanilla", "--resume", other, "--steps", 20),
                      "trains 'other', not 'vanilla'", "ganzoo train other --resume")


def test_resume_a_corrupt_checkpoint(cli, run, tmp_path):
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.toml").write_bytes((run[0] / "config.toml").read_bytes())
    data = (run[0] / "checkpoints" / "last.pt").read_bytes()
    (broken / "checkpoints" / "last.pt").write_bytes(data[: len(data) // 2])
    assert_user_error(cli("train", "vanilla", "--resume", broken, "--steps", 20), "corrupt", "last.pt")
    assert_user_error(cli("eval", broken), "corrupt")
    (broken / "checkpoints" / "last.pt").unlink()
    assert_user_error(cli("train", "vanilla", "--resume", broken, "--steps", 20), "last.pt does not exist")


def test_eval_missing_run(cli):
    assert_user_error(cli("eval", "/no/such/run"), "/no/such/run does not exist")


def test_out_refuses_an_existing_run(cli, run):
    before = (run[0] / "metrics.jsonl").read_bytes()
    assert_user_error(cli("train", "vanilla", "--out", run[0], "--steps", 5), "already holds a run", "--resume")
    assert (run[0] / "metrics.jsonl").read_bytes() == before


def test_errors_from_a_real_process(tmp_path):
    r = run_process("train", "vanilla", "--steps", "0", "--out", tmp_path / "x")
    assert_user_error(r, "--steps must be a positive number")


# --- (e) what a run directory holds --------------------------------------------------------------


def test_run_directory_contents(run):
    out, r = run
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["arch"] == "vanilla" and cfg["data"] == "ring8" and cfg["steps"] == 12
    assert cfg["batch_size"] == 32 and cfg["hparams"]["hidden"] == 16 and cfg["seed"] == 0
    assert (out / "checkpoints" / "last.pt").stat().st_size > 0
    for png in ("samples/step_000000.png", "samples/step_000012.png", "loss_curve.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] >= 100, png
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in recs if "eval" not in rec] == [12]
    assert "d_loss" in recs[0] and "g_loss" in recs[0]
    assert recs[-1]["eval"]["modes_total"] == 8
    # stdout: the summary, then the run directory as the very last line
    assert r.lines[-1] == str(out)
    assert any(line.startswith("modes ") and "/8" in line for line in r.lines[:-1])
    assert r.err == ""


def test_config_toml_reproduces_the_run(cli, run, tmp_path):
    out = run[0]
    again = tmp_path / "again"
    r = cli("train", "vanilla", "--config", out / "config.toml", "--out", again, "--quiet")
    assert r.code == 0, r.err
    assert tomllib.loads((again / "config.toml").read_text()) == tomllib.loads((out / "config.toml").read_text())

    def strip(p):
        return [{k: v for k, v in json.loads(x).items() if k != "time"} for x in (p / "metrics.jsonl").read_text().splitlines()]

    assert strip(again) == strip(out)


def test_real_process_prints_the_run_last_and_no_progress_bar(tmp_path):
    out = tmp_path / "p"
    r = run_process("train", "vanilla", "--steps", 3, "--out", out, *TINY)
    assert r.code == 0, r.err
    assert r.lines[-1] == str(out) and (out / "checkpoints" / "last.pt").is_file()
    # stderr is not a TTY: no progress bar (tqdm draws with \r and block characters)
    assert "\r" not in r.err and "█" not in r.err and "step/s" not in r.err and "it/s" not in r.err
    assert r.err == ""


def test_quiet_prints_only_the_run(cli, tmp_path):
    out = tmp_path / "q"
    r = cli("train", "vanilla", "--steps", 2, "--out", out, "--quiet", *TINY)
    assert r.code == 0 and r.lines == [str(out)] and r.err == ""


# --- (g) --config and --set precedence -------------------------------------------------------------


def test_config_file_and_set_precedence(cli, tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('steps = 4\nbatch_size = 48\nseed = 5\nlr_d = 0.003\n[hparams]\nhidden = 24\nlayers = 1\n')
    out = tmp_path / "prec"
    r = cli("train", "vanilla", "--config", conf, "--out", out, "--quiet", "--device", "cpu",
            "--batch-size", 16, "--set", "layers=2", "--set", "lr_d=0.002", "--set", "eval_samples=200")
    assert r.code == 0, r.err
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["steps"] == 4 and cfg["seed"] == 5 and cfg["hparams"]["hidden"] == 24  # from the file
    assert cfg["batch_size"] == 16 and cfg["hparams"]["layers"] == 2 and cfg["lr_d"] == 0.002  # CLI wins
    assert cfg["lr_g"] == 1e-3 and cfg["hparams"]["latent_dim"] == 2  # untouched: the defaults
    # --set is applied after the dedicated options: it wins when both name one key
    out2 = tmp_path / "prec2"
    r = cli("train", "vanilla", "--out", out2, "--quiet", "--device", "cpu", "--steps", 2, "--set", "steps=3",
            "--set", "eval_samples=200", "--set", "hidden=8")
    assert r.code == 0, r.err
    assert tomllib.loads((out2 / "config.toml").read_text())["steps"] == 3


def test_data_kind_defaults(cli, run):
    """vanilla's defaults for 2D points (a 2D code, LSGAN, EMA 0.99) do not leak to images."""
    from ganzoo.engine.config import resolve
    from ganzoo.registry import get_registry

    points = tomllib.loads((run[0] / "config.toml").read_text())
    assert points["hparams"]["latent_dim"] == 2 and points["loss"] == "lsgan" and points["ema"] == 0.99
    reg = get_registry()
    arch = reg.get("architecture", "vanilla")
    images = resolve(reg, arch, {"data": "digits"}, {})
    assert images["hparams"]["latent_dim"] == 64 and images["loss"] == "ns" and images["ema"] == 0.999
    assert resolve(reg, arch, {"data": "idx:/some/where"}, {})["hparams"]["latent_dim"] == 64
    # the user's choices still win over the data-kind defaults, the loss's suggestions too
    mine = resolve(reg, arch, {"loss": "ns", "steps": 7}, {"latent_dim": 3})
    assert mine["loss"] == "ns" and mine["hparams"]["latent_dim"] == 3 and mine["steps"] == 7 and mine["ema"] == 0.99
    wgan = resolve(reg, arch, {"loss": "wgan", "penalty": "gp"}, {})
    assert wgan["lr_g"] == 1e-4 and wgan["n_critic"] == 5 and wgan["hparams"]["latent_dim"] == 2
