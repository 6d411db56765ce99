"""``ganzoo train ARCH``: one sub-command per installed architecture, its hyper-parameters as options."""

from __future__ import annotations

import click

from ..errors import GanzooError, did_you_mean

# options every architecture shares: (param decls, kwargs)
COMMON = [
    (("--loss",), dict(help="Adversarial loss (see 'ganzoo list losses'); default: the architecture's.")),
    (("--penalty",), dict(help="Discriminator penalty: gp, r1, ... or none; default: the architecture's.")),
    (("--data",), dict(help="Embedded data set NAME, or FORMAT:PATH for files you have (see 'ganzoo list datasets').")),
    (("--steps",), dict(type=int, help="Total number of training steps of the run (with --resume: the new total).")),
    (("--batch-size", "batch_size"), dict(type=int, help="Batch size.")),
    (("--lr",), dict(type=float, help="Learning rate of both G and D (--set lr_g=/lr_d= for each).")),
    (("--seed",), dict(type=int, help="Random seed; the same seed on CPU gives identical losses and samples.")),
    (("--image-size", "image_size"), dict(type=int, help="Resize images to this many pixels square [default: the data's "
                                          "own size when the architecture can build it, else its preferred size].")),
    (("--channels", "image_channels"), dict(type=click.Choice(["1", "3"]),
                                            help="Image channels: 1 (grey) or 3 (RGB); default: the data's own.")),
    (("--threads",), dict(type=int, help="PyTorch CPU threads [default: auto, from the cores other jobs leave free "
                                         "and the work per step; OMP_NUM_THREADS also sets it].")),
    (("--device",), dict(help="auto (default), cpu, cuda or cuda:N.")),
    (("--out",), dict(type=click.Path(file_okay=False), help="Run directory (default runs/ARCH-TIMESTAMP).")),
    (("--config", "config_file"), dict(type=click.Path(dir_okay=False), help="TOML file of settings (a run's config.toml works).")),
    (("--set", "assignments"), dict(multiple=True, metavar="KEY=VALUE", help="Set any config key or hyper-parameter; repeatable.")),
    (("--resume",), dict(type=click.Path(), help="Continue the run in RUN_DIR up to --steps.")),
    (("--quiet", "-q"), dict(is_flag=True, help="No progress bar or summary; still prints the run directory.")),
    (("--nproc",), dict(type=click.IntRange(min=1), help="Train data-parallel in N processes on this machine (one per GPU, "
                        "or CPU processes): restarts this command through torchrun. --batch-size stays the global batch. "
                        "See docs/distributed.md for several machines.")),
]


class TrainGroup(click.Group):
    def list_commands(self, ctx):
        from ..registry import get_registry

        return get_registry().list_architectures()

    def get_command(self, ctx, name):
        from ..registry import get_registry

        reg = get_registry()
        reg.warn_errors()
        if name not in reg.names("architecture"):
            return None
        return make_arch_command(reg.get("architecture", name))

    def resolve_command(self, ctx, args):
        from ..registry import get_registry

        name = args[0] if args else None
        if name and not name.startswith("-"):
            names = get_registry().names("architecture")
            if name not in names:
                raise GanzooError(
                    f"unknown architecture '{name}'{did_you_mean(name, names)}; choose one of: {', '.join(names)} "
                    "(see 'ganzoo list architectures')"
                )
        return super().resolve_command(ctx, args)


def _hparam_option(h, default_text: str):
    decl = "--" + h.name.replace("_", "-")
    if h.type is bool:
        return click.Option([f"{decl}/--no-{h.name.replace('_', '-')}", h.name], default=None, help=f"{h.help} [default: {default_text}]")
    typ = click.Choice([str(c) for c in h.choices]) if h.choices else {int: click.INT, float: click.FLOAT, str: click.STRING}[h.type]
    return click.Option([decl, h.name], type=typ, default=None, help=f"{h.help} [default: {default_text}]")


def resolved_defaults(spec) -> dict[str, dict]:
    """What a run with no options really uses, per kind of data the architecture takes: the
    default data's kind first, then one embedded set of each other kind (``data_defaults`` differ)."""
    from ..engine.config import resolve
    from ..registry import get_registry

    reg = get_registry()
    out: dict[str, dict] = {}
    try:
        base = resolve(reg, spec, {}, {})
        out[reg.get("dataset", base["data"].split(":")[0]).kind] = base
    except GanzooError:
        return out
    for kind in spec.data_kinds:
        names = [e.name for e in reg.entries("dataset") if e.spec.kind == kind and not e.spec.takes_path
                 and (e.spec.labelled or not spec.needs_labels)]
        if kind in out or not names:
            continue
        try:
            out[kind] = resolve(reg, spec, {"data": names[0]}, {})
        except GanzooError:
            continue
    return out


_SHOWN = [("--loss", "loss"), ("--penalty", "penalty"), ("--steps", "steps"), ("--batch-size", "batch_size"),
          ("lr_g", "lr_g"), ("lr_d", "lr_d"), ("n_critic", "n_critic"), ("penalty_weight", "penalty_weight"), ("ema", "ema")]


def _defaults_text(spec, by_kind: dict[str, dict]) -> str:
    if not by_kind:
        return f"Defaults: --data {spec.default_data}, --loss {spec.default_loss}."
    (kind, base), *others = by_kind.items()

    def describe(cfg, ref=None):
        items = [(label, cfg[k]) for label, k in _SHOWN
                 if (ref is None and (k != "penalty_weight" or cfg["penalty"] != "none")) or (ref is not None and ref[k] != cfg[k])]
        if ref is not None:
            items += [(k, v) for k, v in cfg["hparams"].items() if ref["hparams"].get(k) != v]
        return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in items)

    text = f"Defaults (a run on its default data, --data {base['data']}, {kind}): {describe(base)}."
    for other, cfg in others:
        diff = describe(cfg, base)
        text += f" On {other} data (e.g. --data {cfg['data']}): {diff or 'the same'}."
    for size, settings in spec.size_defaults.items():
        text += f" At {size}x{size} px: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "."
    return text


def _default_of(h, by_kind: dict[str, dict]) -> str:
    values = {kind: cfg["hparams"].get(h.name, h.default) for kind, cfg in by_kind.items()}
    if len(set(map(repr, values.values()))) <= 1:
        return str(next(iter(values.values()), h.default))
    return ", ".join(f"{v} on {k} data" for k, v in values.items())


def make_arch_command(spec) -> click.Command:
    by_kind = resolved_defaults(spec)
    params = [click.Option(list(decls), **kw) for decls, kw in COMMON]
    # a hyper-parameter whose name or flag a shared option already uses stays reachable with --set
    taken = {p.name for p in params} | {o.lstrip("-").replace("-", "_") for p in params for o in p.opts}
    params += [_hparam_option(h, _default_of(h, by_kind)) for h in spec.hparams if h.name not in taken]
    hp_names = [h.name for h in spec.hparams if h.name not in taken]

    def callback(**kw):
        hp_cli = {n: kw.pop(n) for n in hp_names}
        run_train(spec, hp_cli=hp_cli, **kw)

    doc = (
        f"{spec.summary}\n\n{_defaults_text(spec, by_kind)} See 'ganzoo info {spec.name}'.\n\n\b\nExamples:\n"
        f"  ganzoo train {spec.name}\n"
        f"  ganzoo train {spec.name} --steps 500 --seed 1 --out runs/{spec.name}-a\n"
        f"  ganzoo train {spec.name} --set lr_d=1e-4 --set batch_size=128\n"
        f"  ganzoo train {spec.name} --resume runs/{spec.name}-a --steps 1000\n"
        f"  ganzoo train {spec.name} --nproc 2             # data-parallel, 2 processes\n"
        f"  torchrun --nproc-per-node 4 -m ganzoo train {spec.name} --device cuda\n"
        "\nThe same from Python: ganzoo.train(\"" + spec.name + "\", steps=500, out=\"runs/a\") (docs/api.md)."
    )
    return click.Command(spec.name, params=params, callback=callback, help=doc, short_help=spec.summary)


def run_train(spec, *, hp_cli, loss, penalty, data, steps, batch_size, lr, seed, image_size, device, out,
              config_file, assignments, resume, quiet, nproc=None, image_channels=None, threads=None):
    """Options -> the settings of :func:`ganzoo.runs.train` (``--set`` wins over a dedicated option).
    With ``--nproc N`` this command restarts itself in N processes through torchrun; under torchrun
    every process trains and only rank 0 prints."""
    from ..engine import distributed
    from ..engine.config import parse_assignment
    from ..runs import train

    if nproc and nproc > 1 and not distributed.launched():
        raise SystemExit(distributed_launch(nproc))
    settings = dict(loss=loss, penalty=penalty, data=data, steps=steps, batch_size=batch_size, seed=seed,
                    image_size=image_size, device=device, lr=lr,
                    image_channels=None if image_channels is None else int(image_channels), threads=threads, **hp_cli)
    try:
        parsed = [parse_assignment(spec, a) for a in assignments]
    except GanzooError:
        if not distributed.is_main():  # the same command line fails alike everywhere: rank 0 says it
            raise SystemExit(2) from None
        raise
    for section, key, value in parsed:
        settings[f"hparams.{key}" if section == "hparams" else key] = value
        if key in ("lr_g", "lr_d") and settings.get("lr") is not None:  # --set lr_d= beats --lr for lr_d
            settings.setdefault("lr_g" if key == "lr_d" else "lr_d", settings["lr"])
    settings = {k: v for k, v in settings.items() if v is not None}
    run = train(spec.name, data=settings.pop("data", None), steps=settings.pop("steps", None), out=out,
                config=config_file, resume=resume, quiet=quiet, callbacks=_header(quiet), **settings)
    if not distributed.is_main():
        return
    if not quiet and run.results:
        _summary(run.results)
    click.echo(str(run.path))


def distributed_launch(nproc: int) -> int:
    """Start this same command line in ``nproc`` processes through torch.distributed.run (torchrun)."""
    import sys

    from ..engine.launch import relaunch

    return relaunch(nproc, sys.argv[1:])


def _header(quiet: bool) -> list:
    """A callback printing the run's first line (:func:`header_line`), none with --quiet."""
    if quiet:
        return []
    from ..engine.trainer import Callback

    class Header(Callback):
        def on_train_start(self, trainer) -> None:
            from ..engine import distributed

            if distributed.is_main():  # one line for a data-parallel run, not one per process
                click.echo(header_line(trainer))

    return [Header()]


def header_line(trainer) -> str:
    """``dcgan on idx:~/mnist, 28x28 (the data's native size), cpu, 1 thread (auto: ...), steps 0 -> 5000``."""
    cfg, p = trainer.cfg, trainer.p
    dec = cfg.get("decisions", {})
    parts = [f"{p.spec.name} on {cfg['data']}"]
    info = p.dataset.info
    if info.kind != "points":
        why, size = dec.get("image_size_why", ""), f"{info.height}x{info.width}"
        reason = why[len(size) + 2:] if why.startswith(size + ": ") else (why or "the data loader's size")
        parts.append(f"{info.height}x{info.width} ({reason})")
    n = dec.get("threads", "?")
    parts.append(f"{p.device.type}, {n} thread{'s' if n != 1 else ''} ({dec.get('threads_why', '')})")
    per_size = f" ({dec['size_defaults']})" if dec.get("size_defaults") else ""
    parts.append(f"steps {trainer.start_step} -> {cfg['steps']}{per_size}")
    return ", ".join(parts)


def _summary(results) -> None:
    if "modes" in results:
        click.echo(
            f"modes {results['modes']}/{results['modes_total']}, high quality {100 * results['high_quality']:.1f}%, "
            f"reverse KL {results['reverse_kl']:.3f} ({results.get('samples', 0)} samples)"
        )
    elif results.get("classifier_fd") is not None:
        click.echo(f"classifier FD {results['classifier_fd']:.4g} (real data {results['classifier_fd_floor']:.4g}), "
                   f"classes covered {results.get('classes_covered')}/{results.get('num_classes')} "
                   f"({results.get('samples', 0)} images; 'ganzoo eval' for the full table)")
    start, total = int(results.get("start_step", 0)), int(results.get("steps", 0))
    span = f" ({start} -> {total})" if start else ""
    click.echo(f"trained {total - start} steps{span} in {results.get('seconds', 0):.1f} s")


train_cmd = TrainGroup(
    "train",
    help=(
        "Train an architecture. Run 'ganzoo train ARCH --help' for its options.\n\n"
        "\b\nExamples:\n  ganzoo train vanilla\n  ganzoo train vanilla --data grid25 --steps 4000\n"
        "  ganzoo train vanilla --set hidden=512 --out runs/wide"
    ),
    short_help="Train an architecture.",
)
