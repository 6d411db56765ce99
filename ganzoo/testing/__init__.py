"""The plugin authors' test kit: the checks every built-in plugin passes, for your plugin.

::

    from ganzoo.testing import check_architecture, check_loss, check_penalty, check_dataset

    def test_my_plugin():
        check_architecture("pacgan")   # tiny training on every data kind, every loss x penalty,
                                       # exact resume, ONNX export parity, bad input is one line
        check_loss("rsgan")            # finite scalar losses with gradients; trains every architecture
        check_dataset("npz:tests/data/sample.npz")

Each check raises ``AssertionError`` saying what failed and returns a small report (a dict). They run
on the process-wide registry (your installed plugin) unless given ``registry=``. The same functions
run ganzoo's own zoo tests (tests/test_zoo.py), so a plugin gets exactly the built-ins' checks.

pytest fixtures (loaded through the ``pytest11`` entry point, nothing to import): ``ganzoo_registry``,
``ganzoo_register``, ``ganzoo_cli`` -- see :mod:`ganzoo.testing.pytest_plugin`.

This package imports torch only when a check runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_architecture", "check_loss", "check_penalty", "check_dataset"]


def check_architecture(name: str, **options: Any) -> dict[str, Any]:
    """See :func:`ganzoo.testing.checks.check_architecture`."""
    from .checks import check_architecture as run

    return run(name, **options)


def check_loss(name: str, **options: Any) -> dict[str, Any]:
    """See :func:`ganzoo.testing.checks.check_loss`."""
    from .checks import check_loss as run

    return run(name, **options)


def check_penalty(name: str, **options: Any) -> dict[str, Any]:
    """See :func:`ganzoo.testing.checks.check_penalty`."""
    from .checks import check_penalty as run

    return run(name, **options)


def check_dataset(spec_or_name: Any, **options: Any) -> dict[str, Any]:
    """See :func:`ganzoo.testing.checks.check_dataset`."""
    from .checks import check_dataset as run

    return run(spec_or_name, **options)
