"""ganzoo: a plugin-based GAN zoo with ONNX export.

Importing ``ganzoo`` is light (no torch). Plugin authors use:

* ``ganzoo.hookimpl`` and the spec types re-exported here;
* ``ganzoo.api`` for the torch-side helpers (``Step``, ``StepContext``, ``DataInfo``, ``Dataset``,
  ``init_weights`` ...).
"""

from __future__ import annotations

from .errors import GanzooError
from .hookspecs import hookimpl
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
