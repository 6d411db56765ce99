"""``ganzoo list``, ``ganzoo plugins``, ``ganzoo info`` and the one-line errors of the CLI.

Commands run in-process with click's CliRunner on the built-in plugins only (``GANZOO_PLUGINS``),
so plugins other engineers are writing cannot change the output; the import-cost checks use a
fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo.cli.main import cli
from ganzoo.registry import ALLOW_ENV, STRICT_ENV, reset_registry

BUILTIN = "vanilla,losses,datasets"


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, BUILTIN)
    monkeypatch.delenv(STRICT_ENV, raising=False)
    reset_registry()

    def invoke(*args):
        result = CliRunner().invoke(cli, list(args), prog_name="ganzoo")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback the user would have seen
        return result

    yield invoke
    reset_registry()


def _one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ganzoo: error: ") and "Traceback" not in result.stderr
    for w in words:
        assert w in lines[0]


def test_list_shows_every_kind_with_its_provider(run):
    r = run("list")
    assert r.exit_code == 0 and r.stderr == ""
    out = r.stdout
    for header in ("architectures", "losses", "penalties", "datasets"):
        assert f"\n{header}\n" in f"\n{out}"
    for name in ("vanilla", "ns", "wgan", "gp", "r1", "ring8", "digits", "idx"):
        assert f"  {name} " in out
    assert f"[ganzoo {ganzoo.__version__}]" in out
    vanilla = next(line for line in out.splitlines() if line.startswith("  vanilla "))
    assert "points/image" in vanilla


def test_list_one_kind(run):
    r = run("list", "architectures")
    assert r.exit_code == 0
    assert "vanilla" in r.stdout and "losses" not in r.stdout and "ring8" not in r.stdout
    assert run("list", "loss").stdout == run("list", "losses").stdout


def test_list_pattern_across_kinds(run):
    out = run("list", "*ing*").stdout
    assert "ring8" in out and "hinge" in out
    assert "vanilla" not in out and "digits" not in out and "architectures" not in out
    out = run("list", "datasets", "digit*").stdout
    assert "digits" in out and "digits-unpaired" in out and "ring8" not in out
    assert "nothing matches 'zzz*'" in run("list", "zzz*").stdout


def test_list_unknown_kind_with_pattern_is_one_line(run):
    _one_line_error(run("list", "architecturez", "*"), "unknown kind 'architecturez'", "did you mean 'architectures'")


def test_list_datasets_json(run):
    r = run("list", "datasets", "--json")
    assert r.exit_code == 0
    records = json.loads(r.stdout)
    names = {rec["name"] for rec in records}
    assert {"ring8", "grid25", "digits", "digits-unpaired", "idx", "folder", "cifar10", "unpaired"} <= names
    for rec in records:
        assert {"name", "summary", "data", "distribution", "version"} <= set(rec)
        assert rec["kind"] == "dataset" and rec["summary"] and rec["data"]
        assert (rec["distribution"], rec["version"]) == ("ganzoo", ganzoo.__version__)
    ring = next(rec for rec in records if rec["name"] == "ring8")
    assert ring["data"] == "points"
    assert "FORMAT:PATH" in next(rec for rec in records if rec["name"] == "idx")["data"]


def test_list_architectures_json_has_defaults(run):
    (rec,) = json.loads(run("list", "architectures", "--json").stdout)
    assert rec["name"] == "vanilla" and rec["default_loss"] == "ns" and rec["plugin"] == "vanilla"


def test_plugins_json(run):
    r = run("plugins", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    by_name = {p["plugin"]: p for p in data["plugins"]}
    assert set(by_name) == set(BUILTIN.split(","))
    assert by_name["vanilla"]["hooks"] == ["ganzoo_architectures"]
    assert by_name["losses"]["hooks"] == ["ganzoo_losses", "ganzoo_penalties"]
    assert all(p["error"] is None and p["distribution"] == "ganzoo" and p["builtin"] for p in data["plugins"])
    assert data["errors"] == []


def test_plugins_table_and_empty_allowlist(run, monkeypatch):
    out = run("plugins").stdout
    assert "vanilla" in out and "ok" in out and "ganzoo_architectures" in out
    monkeypatch.setenv(ALLOW_ENV, "")
    reset_registry()
    assert "no plugins loaded" in run("plugins").stdout
    r = run("list")
    assert r.exit_code == 0 and "nothing matches" in r.stdout


def test_info_vanilla(run):
    r = run("info", "vanilla")
    assert r.exit_code == 0
    out = r.stdout
    assert out.startswith("vanilla — ")
    assert "default loss:   ns" in out
    assert "data:           points, image; default --data ring8" in out
    assert f"plugin:         ganzoo {ganzoo.__version__}" in out
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines() if line.startswith("  ")}
    assert rows["latent_dim"] == ["int", "default", "64"]
    assert rows["hidden"] == ["int", "default", "256"]
    assert rows["init"] == ["str", "default", "'default'"]


def test_info_json(run):
    info = json.loads(run("info", "vanilla", "--json").stdout)
    assert info["default_loss"] == "ns" and info["data_kinds"] == ["points", "image"]
    hps = {h["name"]: h for h in info["hparams"]}
    assert hps["layers"]["type"] == "int" and hps["layers"]["default"] == 3
    assert hps["init"]["choices"] == ["default", "normal"]
    assert info["groups"] == {"G": ["G"], "D": ["D"]}


def test_info_misspelled_is_one_line(run):
    _one_line_error(run("info", "vanila"), "unknown architecture 'vanila'", "did you mean 'vanilla'")


def test_train_misspelled_is_one_line(run):
    _one_line_error(run("train", "vanlla"), "unknown architecture 'vanlla'", "did you mean 'vanilla'")


def test_unknown_command_is_one_line(run):
    _one_line_error(run("lsit"), "no command 'lsit'", "did you mean 'list'")


def test_subprocess_error_is_one_line_without_torch():
    """A real process: a mistake costs one line on stderr, exit 2, and no torch import."""
    code = "import sys\nfrom ganzoo.cli.main import main\ntry:\n    main()\nfinally:\n    assert 'torch' not in sys.modules"
    p = subprocess.run([sys.executable, "-c", code, "lsit", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == ["ganzoo: error: no command 'lsit' (did you mean 'list'?); see 'ganzoo --help'"]


def test_help_does_not_import_torch():
    code = """
import sys
from ganzoo.cli.main import cli
for args in (["--help"], ["list", "--help"], ["info", "--help"], ["plugins", "--help"]):
    assert cli.main(args, prog_name="ganzoo", standalone_mode=False) == 0, args
heavy = sorted(m for m in ("torch", "numpy", "onnx", "onnxruntime") if m in sys.modules)
assert not heavy, heavy
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for name in ("list", "plugins", "info", "train", "List architectures"):
        assert name in p.stdout
