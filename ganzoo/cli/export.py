"""``ganzoo export RUN_DIR --onnx [PATH]``."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--onnx", "onnx_path", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Write ONNX (the default format); PATH is a .onnx file, or a folder for several networks "
                   "[default: RUN_DIR/generator.onnx, or RUN_DIR/NET.onnx per network].")
@click.option("--net", default=None, help="Export only this network (e.g. G_AB of a CycleGAN).")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset (18 or newer).")
@click.option("--fp16", is_flag=True,
              help="Half-precision weights and activations inside (inputs/outputs stay float32); for GPUs. "
                   "Verified against float32 PyTorch with tolerance 1e-2.")
@click.option("--int8", is_flag=True,
              help="Static int8 quantisation (QDQ, per-channel weights) for CPU inference, calibrated on the run's "
                   "data; prints max/mean abs difference to float32 and refuses (no file) when the mean exceeds "
                   "0.05 in [-1, 1] pixel units. Writes generator.int8.onnx by default.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the written paths.")
def export_cmd(run_dir, onnx_path, net, opset, fp16, int8, quiet):
    """Export a run's generator(s) to ONNX and verify them.

    Uses EMA weights when the run keeps them. Each file is checked with onnx.checker and against
    PyTorch in ONNX Runtime at batch sizes 1 and 7 (max abs error <= 1e-4) before it is renamed into
    place: a failed export exits non-zero and leaves no file behind. With --int8 the verified float32
    graph is quantised to int8 (ONNX Runtime QDQ), calibrated on 256 inputs from the run's data (latent
    codes, or real training images for image-to-image) and checked against float32 on 256 others.

    \b
    Examples:
      ganzoo export runs/dcgan-a --onnx
      ganzoo export runs/dcgan-a --onnx dcgan.onnx
      ganzoo export runs/cyclegan-a --onnx --net G_AB
      ganzoo export runs/dcgan-a --onnx --int8      # runs/dcgan-a/generator.int8.onnx
      ganzoo sample runs/dcgan-a/generator.onnx -n 64 --out grid.png
    """
    from pathlib import Path

    from ..errors import GanzooError
    from ..runs import load

    if not Path(run_dir).exists():
        raise GanzooError(f"run directory {run_dir} does not exist; pass the folder 'ganzoo train' printed")
    paths = load(run_dir).export(onnx_path or None, net=net, opset=opset, fp16=fp16, int8=int8,
                                 log=None if quiet else click.echo)
    if quiet:
        for path in paths:
            click.echo(str(path))
