"""Shared test helpers: the ganzoo CLI in-process (fast) and as a real process (exit codes, stderr)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ganzoo.registry import ALLOW_ENV, reset_registry

torch.set_num_threads(1)  # tiny models on a shared 2-core machine: one thread is faster
# ... and runs (in-process and child processes) then skip the automatic thread choice, which samples
# the CPU load; tests of that choice unset it (tests/test_threads.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Caches (the image-metrics classifier trained at the end of image runs) go to a temporary folder,
# never into the user's ~/.cache.
os.environ.setdefault("GANZOO_CACHE", tempfile.mkdtemp(prefix="ganzoo-test-cache-"))

CORE_PLUGINS = "vanilla,losses,datasets"  # the built-in spine; other plugins cannot disturb these tests


@contextlib.contextmanager
def only_plugins(allow: str = CORE_PLUGINS):
    """Load only the named entry points (GANZOO_PLUGINS) for the duration; then restore."""
    old = os.environ.get(ALLOW_ENV)
    os.environ[ALLOW_ENV] = allow
    reset_registry()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ALLOW_ENV, None)
        else:
            os.environ[ALLOW_ENV] = old
        reset_registry()


@dataclass
class Result:
    code: int
    out: str
    err: str
    exception: BaseException | None = None  # an unexpected exception: the user would see a traceback

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def invoke(*args) -> Result:
    """``ganzoo ARGS`` in this process (click's CliRunner); stdout and stderr kept apart."""
    from click.testing import CliRunner

    from ganzoo.cli.main import cli

    r = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    exc = None if r.exception is None or isinstance(r.exception, SystemExit) else r.exception
    return Result(r.exit_code, r.stdout, r.stderr, exc)


def run_process(*args, cwd: str | Path | None = None, timeout: float = 300) -> Result:
    """``ganzoo ARGS`` as a real process (stdin/stderr are not TTYs), with the core plugins only."""
    env = {**os.environ, ALLOW_ENV: CORE_PLUGINS, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "ganzoo.cli.main", *map(str, args)], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
    return Result(p.returncode, p.stdout, p.stderr)


def assert_user_error(r: Result, *fragments: str) -> str:
    """A user mistake: exit code 2, one line on stderr 'ganzoo: error: ...', no traceback."""
    assert r.exception is None, f"unexpected {type(r.exception).__name__}: {r.exception}"
    return _one_line(r, 2, "ganzoo: error: ", fragments)


def _one_line(r: Result, code: int, prefix: str, fragments: tuple[str, ...]) -> str:
    """Exit ``code``, exactly one non-blank stderr line starting with ``prefix`` and holding every
    fragment, no traceback anywhere; returns that line."""
    assert r.code == code, (r.code, r.out, r.err)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), r.err
    assert "Traceback" not in r.err + r.out
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


def load_benchmark(name: str):
    """A script of benchmarks/ imported as a module (they are scripts, not a package), for tests of
    their summary logic on made-up records."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_interrupted(r: Result, *fragments: str) -> str:
    """An interruption (Ctrl-C): exit code 130, one line 'ganzoo: interrupted; ...', no traceback."""
    return _one_line(r, 130, "ganzoo: interrupted", fragments)


@pytest.fixture(scope="session", autouse=True)
def _ganzoo_cache(tmp_path_factory):
    """A cache folder for the session (decoded data sets, classifiers): tests never touch
    ~/.cache/ganzoo. Modules that need their own set GANZOO_CACHE over it."""
    old = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = str(tmp_path_factory.mktemp("ganzoo-cache"))
    yield
    if old is None:
        os.environ.pop("GANZOO_CACHE", None)
    else:
        os.environ["GANZOO_CACHE"] = old


@pytest.fixture(scope="module")
def cli():
    """``cli(*args) -> Result``: the CLI in-process with only the core plugins loaded."""
    with only_plugins():
        yield invoke


def torch_blocked_env(tmp_path: Path) -> tuple[dict, Path]:
    """An environment in which ``import torch`` fails (a stand-in package first on PYTHONPATH), and the
    file that stand-in writes when something tried to import it."""
    blocker = tmp_path / "blocker"
    (blocker / "torch").mkdir(parents=True)
    marker = tmp_path / "torch-was-imported"
    (blocker / "torch" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nraise ImportError('torch is blocked in this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    return env, marker
