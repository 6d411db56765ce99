"""Rank awareness: only rank 0 writes files, so torchrun/DDP is an addition, not a rewrite."""

from __future__ import annotations

import os


def rank() -> int:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except Exception:  # pragma: no cover - torch without distributed
        pass
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0
