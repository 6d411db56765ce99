"""Loss curves for reports, as PNG bytes: one run's losses together, or several runs overlaid."""

from __future__ import annotations

import io
from typing import Iterable, Mapping, Sequence

Series = dict[str, tuple[list[int], list[float]]]


def loss_series(records: Iterable[Mapping]) -> Series:
    """``{"d_loss": (steps, values), ...}`` from metrics.jsonl loss records (d_* and g_* keys)."""
    series: Series = {}
    for rec in records:
        for key, value in rec.items():
            if key[:2] in ("d_", "g_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(int(rec["step"]))
                ys.append(float(value))
    return series


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_losses_png(series: Series, title: str = "") -> bytes | None:
    """Every loss of one run against step, in one chart; None without records."""
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    for key in sorted(series):
        ax.plot(*series[key], label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.9)
    return _png(fig)


def overlaid_losses_png(runs: Sequence[tuple[str, Series]], keys: Sequence[str] = ("d_loss", "g_loss")) -> bytes | None:
    """One panel per loss in ``keys`` (those any run logged), each run one line: runs side by side."""
    keys = [k for k in keys if any(k in s for _, s in runs)]
    if not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.6), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, series in runs:
            if key in series:
                ax.plot(*series[key], label=name, linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.2)
    return _png(fig)
