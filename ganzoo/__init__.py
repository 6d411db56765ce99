"""ganzoo: a plugin-based GAN zoo with ONNX export.

Importing ``ganzoo`` is light (no torch). Plugin authors use:

* ``ganzoo.hookimpl`` and the spec types re-exported here;
* ``ganzoo.api`` for the torch-side helpers (``Step``, ``StepContext``, ``DataInfo``, ``Dataset``,
  ``init_weights`` ...).

Names that need more than the standard library (``hookimpl`` needs pluggy) are imported on first
use (:func:`__getattr__`), so the torch-free runtime installs with numpy, onnxruntime and pillow only.
Users train and open runs with ``ganzoo.train(...)`` and ``ganzoo.load(run_dir)`` (``ganzoo.runs``,
imported on first use too: they need torch).
"""

from __future__ import annotations

from .errors import GanzooError
from .specs import (
    ArchitectureSpec,
    DatasetSpec,
    ExportSpec,
    HParam,
    LossSpec,
    OptimizerSpec,
    PenaltySpec,
)

__version__ = "0.1.0"

_LAZY = {"hookimpl": "ganzoo.hookspecs", "train": "ganzoo.runs", "load": "ganzoo.runs", "Run": "ganzoo.runs"}


def __getattr__(name: str):
    """``ganzoo.hookimpl`` (pluggy) and ``ganzoo.train``, ``ganzoo.load``, ``ganzoo.Run`` (torch),
    imported on first use so the torch-free install needs neither."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")


__all__ = [
    "__version__",
    "hookimpl",
    "train",
    "load",
    "Run",
    "GanzooError",
    "ArchitectureSpec",
    "DatasetSpec",
    "ExportSpec",
    "HParam",
    "LossSpec",
    "OptimizerSpec",
    "PenaltySpec",
]
