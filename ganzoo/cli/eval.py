"""``ganzoo eval RUN_DIR``."""

from __future__ import annotations

import json

import click


@click.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--device", default="cpu", show_default=True, help="Device to evaluate on.")
@click.option("--inception-weights", type=click.Path(dir_okay=False), default=None,
              help="A TorchScript Inception file you have (inception-2015-12-05.pt) for real FID/KID on image runs; "
                   "never downloaded. See docs/metrics.md.")
@click.option("--samples", type=click.IntRange(min=2), default=None,
              help="Images per set for image metrics [default: half the data set, at most 5000].")
def eval_cmd(run_dir, as_json, device, inception_weights, samples):
    """Evaluate a run: mode coverage on 2D data; classifier metrics on images.

    The result is also kept in RUN_DIR/eval.json, shown in RUN_DIR/report.html and written to the
    run's TensorBoard events. Exported .onnx files older than the checkpoint are named on stderr.

    \b
    Examples:
      ganzoo eval runs/vanilla-20261122-101500
      ganzoo eval runs/vanilla-20261122-101500 --json
      ganzoo eval runs/dcgan-a --inception-weights ~/weights/inception-2015-12-05.pt
    """
    from ..engine.rundir import RunDir
    from ..errors import GanzooError
    from ..runs import load

    rd = RunDir(run_dir)
    if not rd.path.exists():
        raise GanzooError(f"run directory {run_dir} does not exist; pass the folder 'ganzoo train' printed")
    result = load(run_dir, device=device).evaluate(inception_weights=inception_weights, samples=samples,
                                                  log=lambda msg: click.echo(f"ganzoo: {msg}", err=True))
    points = "modes_total" in result or "note" in result
    if as_json:
        click.echo(json.dumps(result))
        return
    if not points:
        from ..metrics.image import format_table

        for key in ("run", "arch", "data", "step"):
            click.echo(f"{key:<22} {result[key]}")
        click.echo(format_table(result))
        return
    for key, value in result.items():
        if key == "per_mode":
            value = " ".join(map(str, value))
        click.echo(f"{key:<24} {value}")
