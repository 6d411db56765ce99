"""A plugin that raises in a command other than ``train`` (eval, sample, export): one line naming
the plugin and where it failed, exit code 1, no traceback; ``GANZOO_TRACEBACK=1`` shows it."""

from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from conftest import _one_line
from ganzoo import hookimpl

BROKEN = {"after_training": False}


class FlakyGenerator(nn.Module):
    """Wraps a generator; raises once ``BROKEN['after_training']`` is set (after the run is trained)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, z):
        if BROKEN["after_training"]:
            raise ValueError("the generator broke on purpose")
        return self.inner(z)


class FlakyPlugin:
    @hookimpl
    def ganzoo_architectures(self):
        from ganzoo.registry import get_registry

        vanilla = get_registry().get("architecture", "vanilla")

        def build(info, hp):
            nets = dict(vanilla.build(info, hp))
            nets["G"] = FlakyGenerator(nets["G"])
            return nets

        return [dataclasses.replace(vanilla, name="flaky", summary="vanilla whose generator can break", build=build)]


@pytest.fixture(scope="module")
def trained(cli, tmp_path_factory):
    from ganzoo.registry import get_registry

    get_registry().register(FlakyPlugin(), "flaky-test")
    out = tmp_path_factory.mktemp("flaky") / "run"
    r = cli("train", "flaky", "--steps", 2, "--batch-size", 16, "--set", "hidden=8", "--set", "layers=1",
            "--set", "eval_samples=64", "--out", out, "--quiet")
    assert r.code == 0, r.err
    BROKEN["after_training"] = True
    yield cli, out
    BROKEN["after_training"] = False


@pytest.mark.parametrize("command", [["eval"], ["sample", "-n", "4"], ["export"]])
def test_a_plugin_failing_outside_train_is_one_line_naming_it(trained, tmp_path, command, monkeypatch):
    cli, run = trained
    monkeypatch.delenv("GANZOO_TRACEBACK", raising=False)
    extra = ["--out", tmp_path / "x.npy"] if command[0] == "sample" else (
        ["--onnx", tmp_path / "x.onnx"] if command[0] == "export" else [])
    r = cli(*command, run, *extra)
    line = _one_line(r, 1, "ganzoo: error: plugin 'flaky-test'", (
        "failed in forward (test_plugin_failures.py:", "ValueError: the generator broke on purpose",
        "report this to the plugin's authors", "GANZOO_TRACEBACK=1"))
    assert r.exception is None, line
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.npy").exists()


def test_ganzoo_traceback_shows_the_traceback(trained, tmp_path, monkeypatch):
    cli, run = trained
    monkeypatch.setenv("GANZOO_TRACEBACK", "1")
    r = cli("sample", run, "-n", "4", "--out", tmp_path / "x.npy")
    assert isinstance(r.exception, ValueError) and "broke on purpose" in str(r.exception)
    assert r.err.startswith("ganzoo: error: plugin 'flaky-test'") and "GANZOO_TRACEBACK" not in r.err  # the line too
