"""``ganzoo train ARCH``: one sub-command per installed architecture, its hyper-parameters as options."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

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
    (("--image-size", "image_size"), dict(type=int, help="Resize images to this many pixels square.")),
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
RESUMABLE = {"steps", "quiet", "device", "resume", "nproc"}


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


def _hparam_option(h):
    decl = "--" + h.name.replace("_", "-")
    if h.type is bool:
        return click.Option([f"{decl}/--no-{h.name.replace('_', '-')}", h.name], default=None, help=f"{h.help} [default: {h.default}]")
    typ = click.Choice([str(c) for c in h.choices]) if h.choices else {int: click.INT, float: click.FLOAT, str: click.STRING}[h.type]
    return click.Option([decl, h.name], type=typ, default=None, help=f"{h.help} [default: {h.default}]")


def make_arch_command(spec) -> click.Command:
    params = [click.Option(list(decls), **kw) for decls, kw in COMMON]
    taken = {p.name for p in params}
    params += [_hparam_option(h) for h in spec.hparams if h.name not in taken]
    hp_names = [h.name for h in spec.hparams if h.name not in taken]

    def callback(**kw):
        hp_cli = {n: kw.pop(n) for n in hp_names}
        run_train(spec, hp_cli=hp_cli, **kw)

    doc = (
        f"{spec.summary}\n\nDefaults: --data {spec.default_data}, --loss {spec.default_loss}"
        + (f", --penalty {spec.default_penalty}" if spec.default_penalty else "")
        + f". See 'ganzoo info {spec.name}'.\n\n\b\nExamples:\n"
        f"  ganzoo train {spec.name}\n"
        f"  ganzoo train {spec.name} --steps 500 --seed 1 --out runs/{spec.name}-a\n"
        f"  ganzoo train {spec.name} --set lr_d=1e-4 --set batch_size=128\n"
        f"  ganzoo train {spec.name} --resume runs/{spec.name}-a --steps 1000\n"
        f"  ganzoo train {spec.name} --nproc 2             # data-parallel, 2 processes\n"
        f"  torchrun --nproc-per-node 4 -m ganzoo train {spec.name} --device cuda\n"
    )
    return click.Command(spec.name, params=params, callback=callback, help=doc, short_help=spec.summary)


def run_train(spec, *, nproc=None, quiet=False, **kw):
    """Train in this process, or in each of the processes torchrun started (one line on any error)."""
    from ..engine import distributed

    if nproc and nproc > 1 and not distributed.launched():
        raise SystemExit(distributed_launch(nproc))
    distributed.init()
    try:
        trainer, rd = distributed.agree_on_setup(lambda: _make_trainer(spec, quiet=quiet, **kw))
        results = trainer.fit()
    except BaseException as exc:  # noqa: BLE001 - re-raised unless it is another process's failure
        distributed.report_rank_error(exc)
        raise
    distributed.shutdown()
    if not distributed.is_main():
        return
    if not quiet and results:
        _summary(results)
    click.echo(str(rd.path))


def distributed_launch(nproc: int) -> int:
    """Start this same command line in ``nproc`` processes through torch.distributed.run (torchrun)."""
    import sys

    from ..engine.launch import relaunch

    return relaunch(nproc, sys.argv[1:])


def _make_trainer(spec, *, hp_cli, loss, penalty, data, steps, batch_size, lr, seed, image_size, device, out,
                  config_file, assignments, resume, quiet):
    from ..engine.config import flatten_user, parse_assignment, read_config_file, resolve
    from ..engine.rundir import RunDir
    from ..engine.trainer import Trainer
    from ..registry import get_registry

    reg = get_registry()
    cli = dict(loss=loss, penalty=penalty, data=data, steps=steps, batch_size=batch_size, seed=seed,
               image_size=image_size, device=device)
    if lr is not None:
        cli.update(lr_g=lr, lr_d=lr)
    sets = [parse_assignment(spec, a) for a in assignments]

    if resume:
        rd = RunDir(resume)
        cfg = rd.read_config()
        if cfg.get("arch") != spec.name:
            raise GanzooError(f"--resume {resume}: that run trains '{cfg.get('arch')}', not '{spec.name}'; use 'ganzoo train {cfg.get('arch')} --resume {resume}'")
        changed = [k for k, v in {**cli, **hp_cli}.items() if v is not None and k not in RESUMABLE]
        changed += [k for _, k, _ in sets if k not in RESUMABLE]
        if out or config_file or changed:
            what = ", ".join(sorted(set(changed) | ({"out"} if out else set()) | ({"config"} if config_file else set())))
            raise GanzooError(f"--resume continues a run as configured; only --steps and --device may change (got {what})")
        if steps is not None:
            if steps != cfg.get("steps"):
                _schedule_note(spec, cfg, steps)
            cfg["steps"] = steps
        if device is not None:
            cfg["device"] = device
        trainer = Trainer(cfg, rd, quiet=quiet)
        trainer.resume()
    else:
        file_cfg = read_config_file(config_file) if config_file else {}
        for section, key, value in sets:
            if section == "hparams":
                hp_cli[key] = value
            else:
                cli[key] = value
        cli.update({k: v for k, v in hp_cli.items() if v is not None})
        run, hps = flatten_user(spec, file_cfg, cli)
        cfg = resolve(reg, spec, run, hps)
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = str(Path("runs") / f"{spec.name}-{stamp}")
        rd = RunDir(out)
        if rd.is_run():
            raise GanzooError(f"--out {out} already holds a run; continue it with --resume {out} or pick another --out")
        if rd.path.exists() and not rd.path.is_dir():
            raise GanzooError(f"--out {out} is a file; pick a folder")
        trainer = Trainer(cfg, rd, quiet=quiet)
    return trainer, rd


def _schedule_note(spec, cfg, steps) -> None:
    """One line when a learning-rate schedule that depends on the run's length changes course."""
    if spec.lr_factor is not None or float(cfg.get("lr_decay", 1.0)) < 1.0:
        click.echo(f"ganzoo: note: the learning-rate schedule of this run is laid over its total steps; "
                   f"with --steps {steps} instead of {cfg.get('steps')} it changes course from here on "
                   "(the result differs from a run started with that total)", err=True)


def _summary(results) -> None:
    if "modes" in results:
        click.echo(
            f"modes {results['modes']}/{results['modes_total']}, high quality {100 * results['high_quality']:.1f}%, "
            f"reverse KL {results['reverse_kl']:.3f} ({results.get('samples', 0)} samples)"
        )
    click.echo(f"trained {results.get('steps')} steps in {results.get('seconds', 0):.1f} s")


train_cmd = TrainGroup(
    "train",
    help=(
        "Train an architecture. Run 'ganzoo train ARCH --help' for its options.\n\n"
        "\b\nExamples:\n  ganzoo train vanilla\n  ganzoo train vanilla --data grid25 --steps 4000\n"
        "  ganzoo train vanilla --set hidden=512 --out runs/wide"
    ),
    short_help="Train an architecture.",
)
