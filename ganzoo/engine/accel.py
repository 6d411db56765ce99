"""GPU options of a run (config keys; all are safe on CPU, where they do nothing or little).

* ``amp`` - bfloat16 autocast on CUDA (the trainer's ``_autocast``); no loss scaling is needed.
* ``cudnn_benchmark`` - let cuDNN time its convolution algorithms once per input shape (CUDA).
* ``fused_adam`` - Adam's fused CUDA kernel (``torch.optim.Adam(fused=True)``) when the parameters are
  on CUDA; the default implementation elsewhere.
* ``channels_last`` - networks and image batches in NHWC memory order, which tensor cores prefer.
* ``compile`` - ``torch.compile`` the generators, and the critics too when the run has no penalty
  (R1 and the gradient penalty differentiate the critic twice, which compiled graphs do not support).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..data.base import Batch


def prepare_nets(parts: Any, cfg: Mapping[str, Any]) -> None:
    """Apply the run's GPU options to ``parts.nets`` in place (before DDP wraps them)."""
    if parts.device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", True))
    if cfg.get("channels_last"):
        for net in parts.nets.values():
            net.to(memory_format=torch.channels_last)
    if cfg.get("compile"):
        names = list(parts.spec.groups["G"])
        if cfg.get("penalty", "none") in ("none", "", None):
            names += list(parts.spec.groups["D"])
        for name in names:
            parts.nets[name].compile()  # in place: state-dict keys stay those of the plain network


def optimizer_options(cfg: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Extra keyword arguments for ``torch.optim.Adam``."""
    if device.type == "cuda" and cfg.get("fused_adam", True):
        return {"fused": True}
    return {}


def to_channels_last(batch: Batch) -> Batch:
    def cl(t):
        return t.contiguous(memory_format=torch.channels_last) if t is not None and t.dim() == 4 else t

    return Batch(cl(batch.real), batch.labels, cl(batch.real_b), batch.labels_b)
