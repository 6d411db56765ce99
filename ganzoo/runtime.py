"""Kept for ``from ganzoo.runtime import GanzooModel``: the torch-free runtime lives in :mod:`ganzoo.deploy.runtime`."""

from .deploy.runtime import *  # noqa: F401,F403
