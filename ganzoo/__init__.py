"""ganzoo: a plugin-based GAN zoo with ONNX export.

Importing ``ganzoo`` is light (no torch). Plugin authors use:

* ``ganzoo.hookimpl`` and the spec types re-exported here;
* ``ganzoo.api`` for the torch-side helpers (``Step``, ``StepContext``, ``DataInfo``, ``Dataset``,
  ``init_weights`` ...).

Names that need more than the standard library (``hookimpl`` needs pluggy) are imported on first
use (:func:`__getattr__`), so the torch-free runtime installs with numpy, onnxruntime and pillow only.
"""

from __future__ import annotations

from typing import Any

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

__all__ = [
    "__version__",
    "hookimpl",
    "GanzooError",
    "ArchitectureSpec",
    "DatasetSpec",
    "ExportSpec",
    "HParam",
    "LossSpec",
    "OptimizerSpec",
    "PenaltySpec",
]

# attribute -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "hookimpl": "hookspecs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
