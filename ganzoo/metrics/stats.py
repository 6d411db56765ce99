"""The statistics behind the image metrics (float64 on the CPU, deterministic).

Linear algebra runs in torch, so it follows ``torch.set_num_threads`` (numpy's BLAS would start
its own thread pool, which spins badly on a busy shared machine).

* :func:`frechet_distance` -- ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between two feature sets
  (FID when the features are Inception pool3 features).
* :func:`kernel_distance` -- KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over
  random subsets (Binkowski et al. 2018; the subset protocol of StyleGAN2-ADA / clean-fid).
* :func:`inception_score` -- exp(E_x KL(p(y|x) || p(y))), Salimans et al. 2016.
* :func:`class_stats` -- classes covered and KL(predicted-class histogram || uniform).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

# A class is "covered" when it gets at least this fraction of its fair share (1/K) of the
# predicted labels: 1% of the samples for 10 classes.
COVER_FRACTION = 0.1


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _moments(feats) -> tuple[torch.Tensor, torch.Tensor]:
    x = _t(feats)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 feature vectors [N, D], got shape {list(x.shape)}")
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


def _sym(m: torch.Tensor) -> torch.Tensor:
    return (m + m.T) / 2


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` [N, D] and ``b`` [M, D].

    Tr((S1 S2)^1/2) is computed as the sum of the square roots of the eigenvalues of the symmetric
    PSD matrix S1^1/2 S2 S1^1/2 (same spectrum as S1 S2), which is stable and needs no scipy.
    """
    mu1, s1 = _moments(a)
    mu2, s2 = _moments(b)
    w, v = torch.linalg.eigh(_sym(s1))
    r1 = (v * w.clamp(min=0).sqrt()) @ v.T
    tr_sqrt = torch.linalg.eigvalsh(_sym(r1 @ s2 @ r1)).clamp(min=0).sqrt().sum()
    fd = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2.0 * tr_sqrt)
    return max(fd, 0.0)


def _cubic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k = x @ y.T / x.shape[1] + 1
    return k * k * k


def kernel_distance(a, b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """KID: mean over ``subsets`` random subsets of the unbiased MMD^2 with k(x, y) = (x.y/D + 1)^3."""
    a, b = _t(a), _t(b)
    m = min(len(a), len(b), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[torch.as_tensor(rng.choice(len(a), m, replace=False))]
        y = b[torch.as_tensor(rng.choice(len(b), m, replace=False))]
        kxx, kyy = _cubic(x, x), _cubic(y, y)
        within = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (m * (m - 1))
        total += float(within - 2 * _cubic(x, y).mean())
    return total / subsets


def inception_score(probs: np.ndarray, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities ``probs`` [N, K], averaged over ``splits``.

    1 when every sample gets the same prediction (or predictions are uniform); K at best.
    """
    p = np.asarray(probs, dtype=np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(py, 1e-12, None)))).sum(1)
        scores.append(math.exp(float(kl.mean())))
    return float(np.mean(scores))


def class_stats(pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Histogram of predicted classes: ``covered`` (classes holding at least COVER_FRACTION of their
    fair share 1/K of the predictions), ``kl`` = KL(histogram || uniform) in nats (0 for a perfect
    spread, ln K when everything is one class) and the raw ``counts``."""
    pred = np.asarray(pred, dtype=np.int64)
    counts = np.bincount(pred, minlength=num_classes)[:num_classes]
    n = max(int(counts.sum()), 1)
    p = counts / n
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(p[nz] * num_classes)))
    covered = int((p >= COVER_FRACTION / num_classes).sum())
    return {"covered": covered, "kl": max(kl, 0.0), "counts": counts.tolist()}
