"""pytest fixtures for plugin authors, loaded automatically (``pytest11`` entry point of ganzoo).

* ``ganzoo_registry`` -- a fresh registry with the installed plugins loaded (``GANZOO_PLUGINS`` is
  honoured), made the process-wide one for the test: the CLI, ``ganzoo.train`` and the checks of
  :mod:`ganzoo.testing` all see it. Restored afterwards.
* ``ganzoo_register`` -- ``ganzoo_register(obj, name=None)`` registers an in-process plugin (a module
  or an object with ``@ganzoo.hookimpl`` methods) into ``ganzoo_registry`` and returns its record
  (``record.error``, ``record.warning``); unregistered after the test.
* ``ganzoo_cli`` -- ``ganzoo_cli("train", "pacgan", "--steps", 3, ...)`` runs the CLI in-process and
  returns ``(code, out, err)`` as a named tuple; uses ``ganzoo_registry``.

This module imports neither torch nor the registry until a fixture is used.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def ganzoo_registry():
    from ganzoo.registry import Registry, set_registry

    reg = Registry()
    reg.load_entry_points()
    previous = set_registry(reg)
    try:
        yield reg
    finally:
        set_registry(previous)


@pytest.fixture
def ganzoo_register(ganzoo_registry):
    names: list[str] = []

    def register(obj: Any, name: str | None = None):
        name = name or getattr(obj, "__name__", None) or type(obj).__name__
        names.append(name)
        return ganzoo_registry.register(obj, name)

    yield register
    for name in names:
        ganzoo_registry.unregister(name)


@pytest.fixture
def ganzoo_cli(ganzoo_registry):
    from click.testing import CliRunner

    from ganzoo.cli.main import cli

    def invoke(*args: Any) -> CliResult:
        r = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception  # a traceback a user would see: fail the test with it
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return invoke
