"""Pictures a person looks at: image grids, 2D scatter plots, loss curves (PNG, no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> ``[N, H, W, C]`` uint8."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 2, min_cell: int = 32) -> Image.Image:
    """A grid image of ``images`` ``[N, C, H, W]`` in [-1, 1], ``nrow`` per row, small images upscaled."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    nrow = max(1, min(nrow, n))
    rows = math.ceil(n / nrow)
    scale = max(1, math.ceil(min_cell / max(h, w)))
    H, W = h * scale, w * scale
    canvas = np.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        tile = arr[i].repeat(scale, 0).repeat(scale, 1)
        y0, x0 = pad + r * (H + pad), pad + col * (W + pad)
        canvas[y0 : y0 + H, x0 : x0 + W] = tile
    mode = "L" if c == 1 else "RGB"
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode)


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow).save(path)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_SCATTER: dict = {}  # the figure of the last real-point set: axes and real points are drawn once


def save_scatter(fake: torch.Tensor, real: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Generated 2D points over the real ones.

    A run draws one scatter per sample grid over the same real points, so the figure is kept and
    only the generated points and the title change (a new figure per call cost about half of it).
    """
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    r = real.detach().cpu().numpy()
    f = fake.detach().cpu().numpy()
    key = (r.shape, str(r.dtype), hash(r.tobytes()))
    if key not in _SCATTER:
        for old in _SCATTER.values():
            plt.close(old[0])
        _SCATTER.clear()
        fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        ax.scatter(r[:, 0], r[:, 1], s=2, c="#999999", alpha=0.4, label="real")
        gen = ax.scatter(f[:, 0], f[:, 1], s=2, c="#d62728", alpha=0.6, label="generated")
        lim = float(np.abs(r).max()) * 1.35 + 1e-6
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4, fontsize=8)
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.07, top=0.94)  # fixed: tight_layout costs a third
        _SCATTER[key] = (fig, ax, gen)
    fig, ax, gen = _SCATTER[key]
    gen.set_offsets(f)
    ax.set_title(title, fontsize=9)
    fig.savefig(path)
    return path


def save_loss_curve(records: Iterable[Mapping], path: str | Path, title: str = "") -> Path | None:
    """Every loss logged in metrics.jsonl against step."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for rec in records:
        if "step" not in rec or "eval" in rec:
            continue
        for key, value in rec.items():
            if (key.startswith("d_") or key.startswith("g_")) and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(rec["step"])
                ys.append(value)
    if not series:
        return None
    plt = _plt()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key in sorted(series):
        xs, ys = series[key]
        ax.plot(xs, ys, label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
