"""Plugin hooks. Every hook is prefixed ``ganzoo_`` and returns a list (or any iterable) of specs.

A plugin module implements any of them with ``@ganzoo.hookimpl`` and is named in the ``ganzoo``
entry-point group of its distribution.
"""

from __future__ import annotations

from typing import Iterable

import pluggy

from .specs import ArchitectureSpec, DatasetSpec, LossSpec, PenaltySpec

PROJECT = "ganzoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ganzoo_architectures() -> Iterable[ArchitectureSpec]:
    """Return the architectures this plugin provides."""


@hookspec
def ganzoo_losses() -> Iterable[LossSpec]:
    """Return the adversarial losses this plugin provides."""


@hookspec
def ganzoo_penalties() -> Iterable[PenaltySpec]:
    """Return the discriminator penalties (gradient penalty, R1, ...) this plugin provides."""


@hookspec
def ganzoo_datasets() -> Iterable[DatasetSpec]:
    """Return the data sets (embedded ones and file formats) this plugin provides."""


HOOK_NAMES = ("ganzoo_architectures", "ganzoo_losses", "ganzoo_penalties", "ganzoo_datasets")
