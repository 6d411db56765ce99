"""Rank awareness (kept for imports of ``ganzoo.engine.dist``; the data-parallel engine lives in
:mod:`ganzoo.engine.distributed`)."""

from __future__ import annotations

from .distributed import is_main, rank

__all__ = ["is_main", "rank"]
