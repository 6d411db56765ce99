"""Evaluating a run: picks the metrics that fit its data kind."""

from __future__ import annotations

from typing import Any

import torch

EVAL_SEED = 20240601  # fixed: the same run always gets the same numbers


@torch.no_grad()
def generate_points(parts, n: int, seed: int = EVAL_SEED) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, parts.ctx.latent_dim, generator=gen).to(parts.device)
    nets = parts.sample_nets()
    modes = {k: m.training for k, m in nets.items()}
    for m in nets.values():
        m.eval()
    try:
        out = parts.step.generate(parts.ctx, z, None, nets=nets).float().cpu()
    finally:
        for k, m in nets.items():
            m.train(modes[k])
    return out


def quick_metrics(parts) -> dict[str, Any]:
    """Metrics computed at the end of every run and written to ``metrics.jsonl``: mode coverage for
    2D mixtures; for images the offline classifier metrics of ``ganzoo eval`` (without FID) on
    ``eval_samples`` images at most (the classifier is trained once per data set and cached);
    {} for 2D data without known modes."""
    ds = parts.dataset
    n = int(parts.cfg.get("eval_samples", 2500))
    if ds.info.kind != "points":
        from ..errors import GanzooError
        from .image import image_metrics

        try:
            return image_metrics(parts, samples=max(2, n))
        except GanzooError as exc:  # e.g. a set too small to score: the finished run stays finished
            return {"note": f"no end-of-run image metrics: {exc}"}
    if ds.modes is None or ds.sigma is None:
        return {}
    from .toy2d import mode_metrics

    pts = generate_points(parts, n)
    return mode_metrics(pts.numpy(), ds.modes.cpu().numpy(), float(ds.sigma))


def evaluate_run(parts, **options: Any) -> dict[str, Any]:
    """All metrics that apply to a reopened run (``ganzoo eval``). Deterministic for a given run."""
    kind = parts.dataset.info.kind
    if kind == "points":
        out = quick_metrics(parts)
        if not out:
            return {"note": "this 2D data set has no known modes to score against"}
        return out
    from .image import image_metrics  # images and unpaired translations

    return image_metrics(parts, **options)
