"""``ganzoo bench MODEL.onnx|RUN_DIR``."""

from __future__ import annotations

import click

from ..deploy.runtime import GRAPHS, OPT_LEVELS


@click.command("bench")
@click.argument("source", type=click.Path())
@click.option("--batch-sizes", default="1,8,64", show_default=True, help="Comma-separated batch sizes.")
@click.option("--backends", default="eager,compile,ort-cpu,ort-cuda,ort-trt", show_default=True,
              help="Comma-separated: eager, compile, eager-cuda, ort-cpu, ort-cuda, ort-trt.")
@click.option("--net", default=None, help="RUN_DIR: which exported network (e.g. G_BA) [default: the first].")
@click.option("--threads", type=int, default=0, help="Intra-op threads for PyTorch and ONNX Runtime CPU [default: all CPUs].")
@click.option("--warmup", type=float, default=1.0, show_default=True, help="Warm-up seconds per batch size (at least 3 calls).")
@click.option("--seconds", type=float, default=2.0, show_default=True, help="Timed seconds per batch size (at least --min-iters calls).")
@click.option("--min-iters", type=int, default=10, show_default=True, help="Fewest timed calls per batch size.")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Load every backend once, then time them in turn this many rounds (--seconds per batch size "
                   "per round); figures are medians over rounds, each round's p50 is in --json. Use 3 or more "
                   "on a noisy machine.")
@click.option("--opt-level", type=click.Choice(OPT_LEVELS), default="all", show_default=True, help="ONNX Runtime graph optimisation level.")
@click.option("--graph", type=click.Choice(GRAPHS), default="auto", show_default=True,
              help="ONNX Runtime CPU: 'auto'/'cpu' run the exact CPU rewrite (ganzoo.deploy.cpu_graph), 'plain' the file as exported.")
@click.option("--batch-parallel", is_flag=True,
              help="ONNX Runtime CPU: split each batch across one single-thread session per thread, run side by side.")
@click.option("--iobinding/--no-iobinding", default=None, help="ONNX Runtime IOBinding [default: on for CUDA/TensorRT, off on CPU].")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records instead of the table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Also write a PNG of latency against batch size.")
def bench_cmd(source, batch_sizes, backends, net, threads, warmup, seconds, min_iters, rounds, opt_level, graph, batch_parallel, iobinding, as_json, plot_path):
    """Benchmark inference: PyTorch eager, torch.compile and ONNX Runtime, each in its own process.

    Reports p50/p90/p99 latency and images/s per batch size, the speed against eager at the same
    batch size (eager p50 / this p50), the range of p50 over --rounds ('!' marks a round more than
    2x off the median), the thread count and the provider that really ran. Backends that cannot run
    here are listed as unavailable with the reason; GPU backends on a machine without a GPU share
    one line. A bare .onnx file can only run the ort-* backends. Workers import the installed
    ganzoo whatever the current folder.

    \b
    Examples:
      ganzoo bench runs/dcgan-a --batch-sizes 1,8,64
      ganzoo bench runs/dcgan-a/generator.onnx --backends ort-cpu --json
      ganzoo bench runs/cyclegan-a --net G_AB --plot latency.png
      ganzoo bench runs/cyclegan-a --backends eager,ort-cpu --batch-sizes 1 --rounds 5
    """
    import json

    from ..bench import BACKENDS, format_table, parse_batch_sizes, parse_list, plot, run_bench
    from ..errors import GanzooError

    sizes = parse_batch_sizes(batch_sizes)
    chosen = parse_list(backends, "backends", BACKENDS)
    if threads < 0 or min_iters < 1 or warmup < 0 or seconds < 0 or rounds < 1:
        raise GanzooError("--threads, --warmup and --seconds must not be negative, --min-iters and --rounds at least 1")
    progress = None if as_json else (lambda msg: click.echo(msg, err=True))
    records = run_bench(source, chosen, sizes, net=net, threads=threads or None, warmup_s=warmup, min_time_s=seconds,
                        min_iters=min_iters, rounds=rounds, opt_level=opt_level, graph=graph, batch_parallel=batch_parallel, iobinding=iobinding,
                        progress=progress)
    if plot_path:
        plot(records, plot_path, title=str(source))
    if as_json:
        click.echo(json.dumps(records, indent=1))
    else:
        click.echo(format_table(records))
        if plot_path:
            click.echo(f"plot: {plot_path}")
