"""Real FID / KID from Inception weights the user already has on disk (never downloaded).

Accepted file: a **TorchScript** Inception-v3 feature extractor, i.e. ``inception-2015-12-05.pt``
as used by StyleGAN2-ADA, StyleGAN3 and clean-fid (a TorchScript translation of TensorFlow's
``inception-2015-12-05.tgz``), or any TorchScript module with the same call:
``forward(img, return_features: bool)`` taking float32 ``[N, 3, H, W]`` in 0..255 (it resizes to
299 itself) and returning ``[N, D]`` features (2048 for Inception pool3).

Not accepted: pickles (``inception-2015-12-05.pkl``: unpickling runs arbitrary code) and
state dicts (pytorch-fid's ``pt_inception-*.pth``: needs torchvision's Inception class).
A TorchScript file is a program: pass only a file you trust.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import GanzooError

ACCEPTED = ("a TorchScript Inception feature extractor such as inception-2015-12-05.pt "
            "(StyleGAN2-ADA / clean-fid); see docs/metrics.md")


class InceptionFeatures:
    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        p = Path(path).expanduser()
        if not p.is_file():
            raise GanzooError(f"--inception-weights {path}: no such file; pass {ACCEPTED}")
        self.device = torch.device(device)
        try:
            with warnings.catch_warnings():  # torch.jit is deprecated in recent torch, but still loads
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(p), map_location=self.device).eval()
        except Exception as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise GanzooError(f"--inception-weights {path} is not a TorchScript file ({why}); pass {ACCEPTED}") from None
        self.path = p
        self.dim = 0

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
        """Features [N, D] (float64) of ``images`` [N, C, H, W] in [-1, 1], as 8-bit RGB."""
        out = []
        for i in range(0, len(images), batch):
            x = images[i : i + batch].float().to(self.device)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = ((x + 1) * 127.5).round().clamp(0, 255)  # what a saved PNG holds
            try:
                f = self.module(x, return_features=True)
            except Exception as exc:
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
                raise GanzooError(
                    f"--inception-weights {self.path}: the model failed on a [N, 3, {x.shape[2]}, {x.shape[3]}] "
                    f"batch ({why}); pass {ACCEPTED}"
                ) from None
            if not isinstance(f, torch.Tensor) or f.ndim < 2 or f.shape[0] != x.shape[0]:
                raise GanzooError(
                    f"--inception-weights {self.path}: forward(img, return_features=True) did not return "
                    f"[N, D] features; pass {ACCEPTED}"
                )
            out.append(f.reshape(f.shape[0], -1).double().cpu())
        feats = torch.cat(out)
        self.dim = int(feats.shape[1])
        return feats
