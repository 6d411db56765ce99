"""Loss curves for reports as inline SVG: one run's losses together, or several runs overlaid.

Plain SVG polylines rather than matplotlib figures: a report is refreshed at every checkpoint, and
a matplotlib PNG costs about 0.3 s per chart (plus a second to import) where this costs a few
milliseconds, which keeps the report inside the run's overhead budget. The SVG scales sharply and
needs no decoding.
"""

from __future__ import annotations

import html
import math
from typing import Iterable, Mapping, Sequence

Series = dict[str, tuple[list[int], list[float]]]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
MAX_POINTS = 800  # per line: more than a chart's width in pixels shows nothing more


def loss_series(records: Iterable[Mapping]) -> Series:
    """``{"d_loss": (steps, values), ...}`` from metrics.jsonl loss records (d_* and g_* keys)."""
    series: Series = {}
    for rec in records:
        for key, value in rec.items():
            if key[:2] in ("d_", "g_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    xs, ys = series.setdefault(key, ([], []))
                    xs.append(int(rec["step"]))
                    ys.append(float(value))
    return series


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5, 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2g}"


def _thin(xs: list[int], ys: list[float]) -> tuple[list[int], list[float]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    stride = math.ceil(len(xs) / MAX_POINTS)
    idx = list(range(0, len(xs), stride))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def svg_chart(lines: Sequence[tuple[str, list[int], list[float]]], title: str = "", width: int = 760,
              height: int = 300, ylabel: str = "loss") -> str:
    """An SVG line chart: ``lines`` of (label, steps, values) against step, with axes and a legend."""
    per_row = max(1, (width - 70) // 150)
    legend_rows = math.ceil(len(lines) / per_row)
    title_h = 20 if title else 4
    left, right, top, bottom = 58, 12, title_h + 16 * legend_rows + 6, 40
    pw, ph = width - left - right, height - top - bottom
    xs_all = [x for _, xs, _ in lines for x in xs]
    ys_all = [y for _, _, ys in lines for y in ys]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0, 1)
    y0, y1 = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{html.escape(title or ylabel)}" font-family="sans-serif" font-size="11">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#c9ced6"/>']
    if title:
        out.append(f'<text x="{left}" y="15" font-size="12" font-weight="600">{html.escape(title)}</text>')
    for t in nice_ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceef2"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#5b6475">{_fmt(t)}</text>')
    for t in nice_ticks(x0, x1, 6):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#eceef2"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 15}" text-anchor="middle" fill="#5b6475">{int(t)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" fill="#5b6475">step</text>'
               f'<text x="12" y="{top + ph / 2}" text-anchor="middle" fill="#5b6475" '
               f'transform="rotate(-90 12 {top + ph / 2})">{html.escape(ylabel)}</text>')
    for i, (label, xs, ys) in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        xs, ys = _thin(xs, ys)
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))
        out.append(f'<polyline data-series="{html.escape(label)}" fill="none" stroke="{color}" stroke-width="1.4" '
                   f'points="{pts}"/>')
        lx, ly = left + (i % per_row) * 150, title_h + 14 + (i // per_row) * 16  # the legend above the plot
        out.append(f'<line x1="{lx}" x2="{lx + 16}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="2"/>'
                   f'<text x="{lx + 20}" y="{ly}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def run_losses_svg(series: Series, title: str = "") -> str | None:
    """Every loss of one run against step, in one chart; None without records."""
    if not series:
        return None
    return svg_chart([(k, *series[k]) for k in sorted(series)], title)


def overlaid_losses_svg(runs: Sequence[tuple[str, Series]], keys: Sequence[str] = ("d_loss", "g_loss")) -> list[str]:
    """One chart per loss in ``keys`` (those any run logged), each run one line."""
    charts = []
    for key in keys:
        lines = [(name, *series[key]) for name, series in runs if key in series]
        if lines:
            charts.append(svg_chart(lines, key, width=560, height=280))
    return charts
