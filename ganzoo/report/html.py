"""``report.html``: one self-contained page per run (and one comparing runs), no server, no network.

Sample grids are inline base64 PNGs, loss curves inline SVG, the style inline CSS; there is no script: the file opens from
disk in any browser, and can be mailed or archived alone. Written atomically (temp file + rename),
so a browser reloading it while training never sees half a page.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .. import __version__
from ..metrics.table import ROWS, _fmt
from . import charts
from .runinfo import RunInfo

REPORT = "report.html"
MAX_GRIDS = 12  # sample grids shown over time (evenly spaced, first and last always)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 22px 40px}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
.sub{color:#5b6475}.status{display:inline-block;padding:2px 9px;border-radius:10px;font-weight:600;font-size:12px}
.finished{background:#dff3e4;color:#1e6b34}.running{background:#e3edfb;color:#1f4f96}.stopped{background:#fdf0d9;color:#8a5a00}
.failed{background:#fbe2e2;color:#9b1c1c}
.bar{height:8px;background:#e4e7ec;border-radius:4px;overflow:hidden;margin:8px 0 2px;max-width:520px}
.bar>div{height:100%;background:#3b7be0}
table{border-collapse:collapse;background:#fff;font-size:13px}td,th{padding:4px 10px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grids{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;padding:6px;border:1px solid #e1e4ea;border-radius:4px}
figure img{display:block;max-width:260px;image-rendering:pixelated}figcaption{font-size:12px;color:#5b6475;margin-top:3px}
.chart{max-width:100%;background:#fff;border:1px solid #e1e4ea;border-radius:4px}
.warn{color:#8a5a00}.cols{display:flex;gap:28px;flex-wrap:wrap}.cols>div{min-width:280px}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str, cls: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _page(title: str, body: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="generator" content="ganzoo {_e(__version__)}"><title>{_e(title)}</title>'
            f'<style>{CSS}</style></head><body><main>\n{body}\n'
            f'<p class="sub">Written by ganzoo {_e(__version__)} at {_e(stamp)}. Self-contained: no server, no network.</p>'
            f'</main></body></html>\n')


def pick_grids(samples: Sequence[tuple[int, Path]], k: int = MAX_GRIDS) -> list[tuple[int, Path]]:
    """At most ``k`` of ``samples`` evenly spaced over the run, the first and the last included."""
    if len(samples) <= k:
        return list(samples)
    idx = sorted({round(i * (len(samples) - 1) / (k - 1)) for i in range(k)})
    return [samples[i] for i in idx]


# -- metrics ------------------------------------------------------------------------------------------
_POINT_ROWS = (  # 2D mixtures: label, key, the perfect value (or the key holding it), what it is
    ("modes captured", "modes", "modes_total", "all modes"),
    ("high-quality samples", "high_quality", 1.0, "perfect"),
    ("reverse KL of modes", "reverse_kl", 0.0, "perfect"),
)


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, Any, str, str]]:
    """``(label, key, value, floor text, what the floor is)`` for each metric beside its floor."""
    rows = []
    k = int(metrics.get("num_classes") or 0)
    for label, key, floor, what in _POINT_ROWS + ROWS:
        if key not in metrics:
            continue
        fv = metrics.get(floor) if isinstance(floor, str) else floor
        kk = k if key.startswith("classes") else 0
        rows.append((label, key, metrics[key], _fmt(fv, kk), what))
    return rows


def _shown(metrics: Mapping[str, Any], key: str) -> str:
    """A metric as text: counts out of their total (modes 7/8, classes 10/10), numbers to 4 digits."""
    value = metrics.get(key)
    if key == "modes" and "modes_total" in metrics:
        return f"{value}/{metrics['modes_total']}"
    k = int(metrics.get("num_classes") or 0)
    return _fmt(value, k if key.startswith("classes") else 0)


def _metrics_table(metrics: Mapping[str, Any], source: str) -> str:
    rows = metric_rows(metrics)
    if not rows:
        return '<p class="sub">No evaluation yet. Image runs: <code>ganzoo eval RUN_DIR</code> adds its metrics here.</p>'
    out = [f'<p class="sub">{_e(source)}</p><table id="metrics"><tr><th>metric</th><th>value</th>'
           '<th>real-data floor</th><th>floor is</th></tr>']
    for label, key, value, floor, what in rows:
        shown = _shown(metrics, key)
        out.append(f'<tr><td>{_e(label)}</td><td class="num" data-key="{_e(key)}" data-value="{_e(json.dumps(value))}">'
                   f'{_e(shown)}</td><td class="num">{_e(floor)}</td><td>{_e(what)}</td></tr>')
    out.append("</table>")
    for note in metrics.get("notes", []) or []:
        out.append(f'<p class="sub">note: {_e(note)}</p>')
    return "".join(out)


# -- one run ------------------------------------------------------------------------------------------
def status_of(info: RunInfo, status: str | None) -> tuple[str, str]:
    """(css class, text) of the run's state; ``status`` is what the training process knows."""
    if status:
        low = status.lower()
        cls = "running" if low.startswith("running") else "failed" if low.startswith(("failed", "aborted")) else \
            "finished" if low.startswith("finished") else "stopped"
        return cls, status
    if info.checkpoint_step is not None and info.checkpoint_step >= info.total_steps > 0:
        return "finished", "finished"
    if info.checkpoint_step is None:
        return "stopped", "no checkpoint yet"
    return "stopped", f"not finished: last checkpoint at step {info.checkpoint_step}"


def _where(key: str) -> str:
    """An exports.json parity key as text: "batch 1", "batch 2 at 68x72" (older records: "1")."""
    return f"batch {key}" if str(key).isdigit() else str(key)


def _exports_table(info: RunInfo) -> str:
    if not info.exports:
        return '<p class="sub">None yet: <code>ganzoo export RUN_DIR --onnx</code> writes verified ONNX files here.</p>'
    out = ['<table id="exports"><tr><th>file</th><th>network</th><th>exported at step</th><th>precision</th>'
           '<th>size</th><th>ONNX Runtime vs PyTorch (max abs error)</th><th>state</th></tr>']
    for ex in info.exports:
        rec = ex.record
        errs = rec.get("errors") or {}
        parity = ", ".join(f"{float(v):.1e} at {_where(b)}" for b, v in errs.items())
        parity = f"{parity} &le; {_e(rec.get('tolerance'))}" if parity else "not recorded (exported by another tool or version)"
        size = ex.path.stat().st_size / 1e6
        state = f'<span class="warn">stale: {_e(ex.staleness())}</span>' if ex.stale else "current"
        out.append(f'<tr data-file="{_e(ex.path.name)}" data-stale="{str(ex.stale).lower()}"><td>{_e(ex.path.name)}</td>'
                   f'<td>{_e(rec.get("network", ""))}</td><td class="num">{_e(ex.step if ex.step is not None else "?")}</td>'
                   f'<td>{_e(rec.get("precision", ""))}</td><td class="num">{size:.2f} MB</td><td>{parity}</td>'
                   f'<td>{state}</td></tr>')
    out.append("</table>")
    return "".join(out)


def _config_table(cfg: Mapping[str, Any]) -> str:
    from .tensorboard import flat_hparams

    rows = "".join(f'<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>' for k, v in sorted(flat_hparams(cfg).items()))
    return f'<table id="config"><tr><th>key</th><th>value</th></tr>{rows}</table>'


def render_run(info: RunInfo, status: str | None = None) -> str:
    cfg = info.config
    cls, text = status_of(info, status)
    done, total = info.latest_step, max(1, info.total_steps)
    pct = min(100.0, 100.0 * done / total)
    head = (f'<h1>{_e(info.name)}</h1><p class="sub">{_e(cfg.get("arch"))} on {_e(cfg.get("data"))}, loss '
            f'{_e(cfg.get("loss"))}, penalty {_e(cfg.get("penalty"))}, seed {_e(cfg.get("seed"))} &middot; '
            f'<code>{_e(info.rd.path)}</code></p>'
            f'<section id="progress"><span class="status {cls}">{_e(text)}</span>'
            f'<div class="bar"><div style="width:{pct:.1f}%"></div></div>'
            f'<span class="sub" data-step="{done}" data-total="{info.total_steps}">step {done} of {info.total_steps} '
            f'({pct:.0f}%); last checkpoint: {_e(info.checkpoint_step if info.checkpoint_step is not None else "none")}</span>'
            '</section>')
    svg = charts.run_losses_svg(charts.loss_series(info.records))
    losses = svg or '<p class="sub">No losses logged yet.</p>'
    if info.records:
        last = info.records[-1]
        vals = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k[:2] in ("d_", "g_") and isinstance(v, (int, float)))
        losses += f'<p class="sub">at step {last["step"]}: {_e(vals)}</p>'
    grids = pick_grids(info.samples)
    figs = "".join(f'<figure data-step="{s}">{_img(p.read_bytes(), f"samples at step {s}")}'
                   f'<figcaption>step {s}</figcaption></figure>' for s, p in grids if p.is_file())
    more = len(info.samples) - len(grids)
    samples = (f'<div class="grids">{figs}</div>' if figs else '<p class="sub">No sample grids yet.</p>')
    if more > 0:
        samples += f'<p class="sub">{more} more grids in <code>samples/</code>.</p>'
    metrics = info.metrics()
    source = ("from 'ganzoo eval' at step " + str(info.eval_result.get("step"))
              if info.eval_result and info.eval_result.get("step") == info.checkpoint_step and metrics
              else f"end-of-run evaluation at step {metrics.get('step')}" if metrics else "")
    stale_eval = ""
    if info.eval_result and info.eval_result.get("step") != info.checkpoint_step:
        stale_eval = (f'<p class="warn">eval.json is from step {_e(info.eval_result.get("step"))}, the checkpoint is at '
                      f'step {_e(info.checkpoint_step)}: run <code>ganzoo eval {_e(info.rd.path)}</code> again.</p>')
    body = (head + f'<h2>Losses</h2><section id="losses">{losses}</section>'
            f'<h2>Samples over time</h2><section id="samples">{samples}</section>'
            f'<h2>Evaluation</h2><section id="evaluation">{_metrics_table(metrics, source)}{stale_eval}</section>'
            f'<h2>Exported ONNX</h2><section id="onnx">{_exports_table(info)}</section>'
            f'<h2>Configuration</h2><section id="configuration">{_config_table(cfg)}</section>')
    return _page(f"ganzoo run {info.name}", body)


def write_run_report(run_dir: str | Path, status: str | None = None) -> Path:
    """(Re)write ``RUN_DIR/report.html``; returns its path."""
    from ..engine.checkpoint import atomic_write_text
    from .runinfo import read_run

    info = read_run(run_dir)
    path = info.rd.path / REPORT
    atomic_write_text(path, render_run(info, status))
    return path


def refresh_report(run_dir: str | Path) -> None:
    """Rewrite report.html after a command changed the run directory (export, eval); a failure to
    write it (read-only or full disk) never fails that command."""
    from ..errors import GanzooError

    try:
        write_run_report(run_dir)
    except (OSError, GanzooError):
        pass


# -- several runs ---------------------------------------------------------------------------------------
def _differing(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    from .tensorboard import flat_hparams

    flats = [flat_hparams(c) for c in configs]
    keys = sorted(set().union(*flats))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def render_compare(infos: Sequence[RunInfo]) -> str:
    """Runs side by side: a metrics table, loss curves overlaid, the final sample grids."""
    names = _unique_names(infos)
    metric_keys: list[tuple[str, str]] = []
    for info in infos:
        for label, key, *_ in metric_rows(info.metrics()):
            if (label, key) not in metric_keys:
                metric_keys.append((label, key))
    head = "".join(f"<th>{_e(label)}</th>" for label, _ in metric_keys)
    rows = []
    for name, info in zip(names, infos):
        cfg, m = info.config, info.metrics()
        last = info.records[-1] if info.records else {}
        cells = "".join(
            f'<td class="num" data-key="{_e(key)}" data-value="{_e(json.dumps(m.get(key)))}">'
            f'{_e(_shown(m, key)) if key in m else ""}</td>' for _, key in metric_keys)
        rows.append(f'<tr data-run="{_e(name)}"><td>{_e(name)}</td><td>{_e(cfg.get("arch"))}</td><td>{_e(cfg.get("loss"))}</td>'
                    f'<td>{_e(cfg.get("penalty"))}</td><td>{_e(cfg.get("data"))}</td>'
                    f'<td class="num">{info.checkpoint_step if info.checkpoint_step is not None else "-"}/{info.total_steps}</td>'
                    f'<td class="num">{_e(_fmt(last.get("d_loss")))}</td><td class="num">{_e(_fmt(last.get("g_loss")))}</td>'
                    f'{cells}</tr>')
    table = ('<table id="runs"><tr><th>run</th><th>arch</th><th>loss</th><th>penalty</th><th>data</th><th>steps</th>'
             f'<th>last d_loss</th><th>last g_loss</th>{head}</tr>{"".join(rows)}</table>')
    diff = _differing([i.config for i in infos])
    from .tensorboard import flat_hparams

    diff_rows = "".join(f"<tr><td>{_e(k)}</td>" + "".join(f"<td>{_e(flat_hparams(i.config).get(k, ''))}</td>" for i in infos)
                        + "</tr>" for k in diff)
    diff_table = (f'<table id="differences"><tr><th>setting</th>{"".join(f"<th>{_e(n)}</th>" for n in names)}</tr>{diff_rows}</table>'
                  if diff else '<p class="sub">The runs have the same settings.</p>')
    svgs = charts.overlaid_losses_svg([(n, charts.loss_series(i.records)) for n, i in zip(names, infos)])
    curves = f'<div class="cols">{"".join(svgs)}</div>' if svgs else '<p class="sub">No losses logged.</p>'
    figs = []
    for name, info in zip(names, infos):
        if info.samples:
            step, p = info.samples[-1]
            figs.append(f'<figure data-run="{_e(name)}" data-step="{step}">{_img(p.read_bytes(), f"{name} at step {step}")}'
                        f'<figcaption>{_e(name)}, step {step}</figcaption></figure>')
    grids = f'<div class="grids">{"".join(figs)}</div>' if figs else '<p class="sub">No sample grids.</p>'
    body = (f'<h1>ganzoo runs compared</h1><p class="sub">{len(infos)} runs: '
            + ", ".join(f"<code>{_e(i.rd.path)}</code>" for i in infos) + "</p>"
            + f'<h2>Metrics</h2><section id="metrics">{table}</section>'
            + f'<h2>Settings that differ</h2><section id="settings">{diff_table}</section>'
            + f'<h2>Losses overlaid</h2><section id="losses">{curves}</section>'
            + f'<h2>Final samples</h2><section id="samples">{grids}</section>')
    return _page("ganzoo runs compared", body)


def _unique_names(infos: Iterable[RunInfo]) -> list[str]:
    names = [i.name for i in infos]
    if len(set(names)) == len(names):
        return names
    return [str(i.rd.path) for i in infos]
