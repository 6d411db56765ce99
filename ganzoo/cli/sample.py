"""``ganzoo sample MODEL.onnx|RUN_DIR``.

The ``.onnx`` path runs on ONNX Runtime and must not import torch (tests run it where importing
torch fails): only ``ganzoo.deploy.runtime`` is imported for it. A run directory goes through PyTorch
(:class:`ganzoo.deploy.export.RunModel`) with the same inputs, so both give the same pictures for one seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..deploy.runtime import GRAPHS, OPT_LEVELS, PROVIDER_CHOICES


@click.command("sample")
@click.argument("source", type=click.Path())
@click.option("-n", "--num", "n", type=int, default=64, show_default=True, help="Number of samples (image-to-image: at most this many inputs).")
@click.option("--label", type=int, default=None, help="Conditional models: draw every sample from class K [default: one row per class].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent codes (numpy), identical for .onnx and RUN_DIR.")
@click.option("--out", type=click.Path(dir_okay=False), default="samples.png", show_default=True, help="PNG grid (2D models: a scatter plot).")
@click.option("--out-dir", type=click.Path(), default=None,
              help="Instead of a grid, write one PNG per sample into this folder (000000.png ...; conditional models "
                   "000000_label3.png), in batches: the input of FID tools. Without --label, classes are spread evenly.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="--out-dir: samples generated per batch.")
@click.option("--overwrite", is_flag=True, help="--out-dir: replace the sample files already in that folder.")
@click.option("--resume", is_flag=True, help="--out-dir: continue an interrupted job (same source, seed, -n, --label): draw only the missing files.")
@click.option("--npy", type=click.Path(dir_okay=False), default=None, help="Also save the raw outputs (float32, [-1, 1]) as .npy.")
@click.option("--input", "input_path", type=click.Path(), default=None, help="Image-to-image models: an image file or a folder of images to translate.")
@click.option("--net", default=None, help="RUN_DIR only: which exported network to sample (e.g. G_BA) [default: the first].")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="auto", show_default=True, help=".onnx only: ONNX Runtime provider.")
@click.option("--allow-fallback", is_flag=True, help="If the requested provider does not load, run on CPU instead of failing.")
@click.option("--threads", type=int, default=0, show_default=True, help=".onnx only: intra-op threads (0: ONNX Runtime's default).")
@click.option("--opt-level", type=click.Choice(OPT_LEVELS), default="all", show_default=True, help=".onnx only: graph optimisation level.")
@click.option("--graph", type=click.Choice(GRAPHS), default="auto", show_default=True,
              help=".onnx only: 'auto' runs the exact CPU rewrite on the CPU provider, 'plain' the file as exported.")
@click.option("--batch-parallel", is_flag=True,
              help=".onnx on CPU: split the batch across one single-thread session per thread, run side by side (faster for large convolutional models).")
@click.option("--device", default="cpu", show_default=True, help="RUN_DIR only: PyTorch device.")
def sample_cmd(source, n, label, seed, out, out_dir, batch_size, overwrite, resume, npy, input_path, net, provider, allow_fallback, threads,
               opt_level, graph, batch_parallel, device):
    """Draw samples from an exported .onnx file (ONNX Runtime, no PyTorch) or a run directory.

    A grid PNG by default; --out-dir writes one PNG per sample for FID tools (pytorch-fid, clean-fid,
    torch-fidelity). The same seed gives the same samples from the .onnx file and from its run
    directory. To translate photos with an image-to-image model at their own size, use 'ganzoo translate'.

    \b
    Examples:
      ganzoo sample runs/dcgan-a/generator.onnx -n 64 --seed 1 --out grid.png
      ganzoo sample runs/dcgan-a -n 64 --seed 1 --out grid-torch.png     # the same images
      ganzoo sample runs/cgan-a/generator.onnx --label 3 -n 16
      ganzoo sample runs/dcgan-a/generator.onnx -n 50000 --out-dir fid-samples/    # then: python -m pytorch_fid fid-samples/ real/
      ganzoo sample runs/cgan-a/generator.onnx -n 10000 --out-dir per-class/       # 000000_label0.png ... (classes spread evenly)
      ganzoo sample runs/cyclegan-a/G_AB.onnx --input photos/ --out translated.png
      ganzoo sample model.onnx --provider cuda --allow-fallback
    """
    import numpy as np

    from ..errors import GanzooError
    from ..deploy.runtime import load_images, sample_inputs, save_grid, save_points

    path = Path(source).expanduser()
    if n < 1:
        raise GanzooError(f"-n must be at least 1, got {n}")
    if path.is_dir():
        if provider != "auto" or threads or graph != "auto" or batch_parallel:
            raise GanzooError("--provider/--threads/--graph/--batch-parallel apply to .onnx files; a run directory samples with PyTorch (--device)")
        from ..deploy.export import RunModel

        model = RunModel(path, net=net, device=device)
    elif path.is_file() or path.suffix == ".onnx":
        if net is not None:
            raise GanzooError("--net applies to run directories; an .onnx file holds one network")
        from ..deploy.runtime import GanzooModel

        model = GanzooModel(path, provider=provider, allow_fallback=allow_fallback, threads=threads, opt_level=opt_level, graph=graph,
                            batch_parallel=batch_parallel)
        if model.note:
            click.echo(f"ganzoo: warning: {model.note}", err=True)
        if model.skipped:
            click.echo(f"ganzoo: note: {model.skipped}", err=True)
    else:
        raise GanzooError(f"{source} does not exist; pass an exported .onnx file or a run directory")

    info = model.info
    if out_dir is None and (overwrite or resume):
        raise GanzooError("--overwrite and --resume apply to --out-dir (one PNG per sample)")
    if out_dir is not None:
        if input_path is not None or npy:
            raise GanzooError("--out-dir writes one PNG per sample of a noise model; it takes no --input or --npy "
                              "(translate images with 'ganzoo translate')")
        if info.image_to_image:
            raise GanzooError(f"{source} translates images: use 'ganzoo translate {source} IMAGES... --out-dir {out_dir}'")
        from ..deploy.bulk import write_samples

        res = write_samples(model, n, out_dir, seed=seed, label=label, batch_size=batch_size, overwrite=overwrite, resume=resume)
        kept = f", {res.count - res.written} were there already" if res.written < res.count else ""
        click.echo(f"wrote {res.written} samples of {info.describe()} to {res.out_dir}/ ({res.first.name} .. {res.last.name}"
                   f"{kept}) [{model.provider}]")
        return
    if info.image_to_image:
        if label is not None:
            raise GanzooError("--label applies to conditional models; this one translates images")
        if input_path is not None:
            images = load_images(input_path, info.channels, info.height, info.width, limit=n)
        elif hasattr(model, "data_images"):
            images = model.data_images(n)
        else:
            raise GanzooError(f"{source} translates images: pass --input IMAGE_OR_FOLDER")
        result = model.run(image=images)
        pairs = np.stack([images, result], 1).reshape(-1, *result.shape[1:])  # input, output, input, ...
        grid, nrow = pairs, 2 * min(4, len(images))
    else:
        if input_path is not None:
            raise GanzooError("--input applies to image-to-image models; this one samples from noise")
        feeds = sample_inputs(info, n, seed, label, per_class=label is None)
        result = model.run(**feeds)
        grid = result
        if info.conditional and label is None:
            nrow = max(1, n // info.num_classes)
        else:
            nrow = max(1, math.ceil(math.sqrt(len(result))))

    if info.output_kind == "points":
        save_points(result, out, title=f"{info.architecture}, {len(result)} samples, seed {seed}")
    else:
        save_grid(grid, out, nrow=nrow)
    if npy:
        Path(npy).expanduser().parent.mkdir(parents=True, exist_ok=True)
        np.save(npy, result)
    click.echo(f"wrote {len(result)} samples of {info.describe()} to {out}"
               + (f" and {npy}" if npy else "") + f" [{model.provider}"
               + (f", {model.sessions} sessions" if getattr(model, "sessions", 1) > 1 else "") + "]")
