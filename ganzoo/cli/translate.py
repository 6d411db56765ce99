"""``ganzoo translate MODEL.onnx|RUN_DIR INPUT... --out-dir DIR``.

A thin layer over :func:`ganzoo.deploy.translate.translate`. The ``.onnx`` path imports no torch
(only ``ganzoo.deploy.translate`` and ``ganzoo.deploy.runtime``); a run directory runs in PyTorch.
"""

from __future__ import annotations

import click

from ..deploy.runtime import PROVIDER_CHOICES


@click.command("translate")
@click.argument("source", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out-dir", type=click.Path(), required=True,
              help="Folder for the outputs: one PNG per input, named after it (photo.jpg -> DIR/photo.png).")
@click.option("--net", default=None, help="RUN_DIR only: which network translates, e.g. G_BA for B -> A [default: the first, G_AB].")
@click.option("--size", default="native", show_default=True,
              help="native: each image at its own size (reflect-padded to what the network takes, cropped back); "
                   "train: resized to the training size; N: shorter side scaled to N px.")
@click.option("--side-by-side", is_flag=True, help="Write input | output pairs instead of the outputs alone.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Images of one size translated together.")
@click.option("--max-pixels", type=int, default=None,
              help="Padded pixels one batch may hold [default: from the memory available now]; a larger image is refused.")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="auto", show_default=True, help=".onnx only: ONNX Runtime provider.")
@click.option("--allow-fallback", is_flag=True, help="If the requested provider does not load, run on CPU instead of failing.")
@click.option("--threads", type=int, default=0, show_default=True, help=".onnx only: intra-op threads (0: ONNX Runtime's default).")
@click.option("--device", default="cpu", show_default=True, help="RUN_DIR only: PyTorch device.")
@click.option("--overwrite", is_flag=True, help="Replace outputs already in --out-dir (by default they are an error).")
@click.option("--skip-existing", is_flag=True,
              help="Translate only the inputs without an output in --out-dir yet: finishes an interrupted run.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def translate_cmd(source, inputs, out_dir, net, size, side_by_side, batch_size, max_pixels, provider, allow_fallback, threads,
                  device, overwrite, skip_existing, quiet):
    """Translate images with an image-to-image model (CycleGAN's G_AB or G_BA), each at its own size.

    SOURCE is an exported .onnx file (ONNX Runtime, no PyTorch needed) or a run directory; INPUT is
    image files or folders of them (files that are not images are skipped, with one warning). EXIF
    orientation is applied; grayscale or RGBA inputs are converted to what the model takes (an alpha
    channel is copied to the output). A model trained on 64 px crops translates a 4000x3000 photo.

    \b
    Examples:
      ganzoo translate runs/cyclegan-a/G_AB.onnx photos/ --out-dir zebras/
      ganzoo translate runs/cyclegan-a --net G_BA zebra1.jpg zebra2.jpg --out-dir horses/
      ganzoo translate G_AB.onnx photos/ --out-dir out/ --size 512 --side-by-side
      ganzoo translate G_AB.onnx huge.tif --out-dir out/ --max-pixels 100000000
    """
    from ..deploy.translate import translate

    def log(kind: str, message: str) -> None:
        click.echo(f"ganzoo: {kind}: {message}", err=True)

    result = translate(source, list(inputs), out_dir, net=net, size=size, side_by_side=side_by_side, batch_size=batch_size,
                       max_pixels=max_pixels, progress=not quiet, log=log, provider=provider, allow_fallback=allow_fallback,
                       threads=threads, device=device, overwrite=overwrite, skip_existing=skip_existing)
    click.echo(f"translated {len(result.written)} image(s) with {result.model} into {out_dir} [{result.provider}]")
