"""``ganzoo report RUN_DIR [RUN_DIR ...] [--out FILE]``."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write [default: RUN_DIR/report.html for one run, compare.html for several].")
def report_cmd(run_dirs, out):
    """Write an HTML report of one run, or put several runs side by side.

    One run: RUN_DIR/report.html (training keeps it up to date by itself; this rewrites it, e.g.
    after copying a run). Several runs: one page with a metrics table, the settings that differ,
    the loss curves overlaid and the final sample grids. The page is one self-contained file: it
    opens from disk in any browser, with no server and no network.

    \b
    Examples:
      ganzoo report runs/dcgan-a
      ganzoo report runs/vanilla-ns runs/vanilla-hinge --out hinge-vs-ns.html
      ganzoo report runs/* --out all.html
    """
    from pathlib import Path

    from ..engine.checkpoint import atomic_write_text
    from ..errors import GanzooError
    from ..report.html import render_compare, render_run
    from ..report.runinfo import read_run

    if out and Path(out).is_dir():
        raise GanzooError(f"--out {out} is a folder; pass a file name such as {Path(out) / 'report.html'}")
    infos = [read_run(d) for d in run_dirs]
    if len(infos) == 1:
        page = render_run(infos[0])
        target = Path(out) if out else infos[0].rd.path / "report.html"
    else:
        page = render_compare(infos)
        target = Path(out) if out else Path("compare.html")
    try:
        atomic_write_text(target, page)
    except OSError as exc:
        raise GanzooError(f"cannot write {target} ({exc.strerror or exc}); pass another --out") from None
    click.echo(str(target))
