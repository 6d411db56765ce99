"""The ``ganzoo`` command. Sub-commands are imported lazily so ``ganzoo --help`` never imports torch."""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from ..errors import GanzooError

# name -> (module, attribute, one-line help shown by `ganzoo --help` without importing the module)
COMMANDS = {
    "list": ("ganzoo.cli.registry_cmds", "list_cmd", "List architectures, losses, penalties and data sets."),
    "plugins": ("ganzoo.cli.registry_cmds", "plugins_cmd", "Show installed plugins, their hooks and load errors."),
    "info": ("ganzoo.cli.registry_cmds", "info_cmd", "Describe one architecture: hyper-parameters, defaults, data."),
    "train": ("ganzoo.cli.train", "train_cmd", "Train an architecture: ganzoo train ARCH [options]."),
    "eval": ("ganzoo.cli.eval", "eval_cmd", "Evaluate a run directory (2D mode coverage, image metrics)."),
    "sample": ("ganzoo.cli.sample", "sample_cmd", "Draw samples from a run directory or an exported .onnx file."),
    "export": ("ganzoo.cli.export", "export_cmd", "Export a run's generator(s) to verified ONNX."),
    "bench": ("ganzoo.cli.bench", "bench_cmd", "Benchmark PyTorch and ONNX Runtime inference."),
    "translate": ("ganzoo.cli.translate", "translate_cmd", "Translate image files with an image-to-image model, at their own size."),
    "cache": ("ganzoo.cli.cache", "cache_cmd", "List or clear the decoded data cache (ganzoo cache clear)."),
    "report": ("ganzoo.cli.report", "report_cmd", "Write a run's HTML report, or compare several runs side by side."),
}


class UserError(click.ClickException):
    """Shown as one line: 'ganzoo: error: ...'."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102
        click.echo(f"ganzoo: error: {self.format_message()}", err=True)


# what the full install adds to the torch-free one (numpy, onnxruntime, pillow, click): see docs/export.md
FULL_INSTALL_MODULES = {"torch", "pluggy", "onnx", "onnxscript", "sklearn", "safetensors", "matplotlib", "tomli_w"}


class UsageLine(click.UsageError):
    """A usage error (unknown option ...) shown as one line; still a click.UsageError, so the ranks
    other than 0 of a torchrun run stay silent about it (``ganzoo/__main__.py``)."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102
        click.echo(f"ganzoo: error: {self.format_message()}", err=True)


def usage_line(exc: click.UsageError) -> str:
    """click's usage error (unknown option, missing argument ...) as one line, with where to look."""
    text = " ".join(exc.format_message().split()).replace(". (", " (").rstrip(".")
    text = text[:1].lower() + text[1:]
    where = exc.ctx.command_path if exc.ctx is not None else "ganzoo"
    return f"{text}; see '{where} --help'"


# what Ctrl-C leaves behind, per command
INTERRUPTED = {
    "train": "interrupted; a run keeps its last checkpoint (continue with --resume RUN_DIR)",
    "sample": "interrupted; the sample files written so far are kept (with --out-dir: run the same command with --resume to finish)",
    "translate": "interrupted; the images translated so far are kept in --out-dir (run the same command with --skip-existing to finish)",
}


def run_guarded(fn, *args, command=lambda: "", **kwargs):
    """Call ``fn`` turning user mistakes into one clear line instead of a traceback (``command()``:
    the sub-command it ran, for what an interruption keeps)."""
    from ..engine.interrupt import TrainingStopped

    try:
        return fn(*args, **kwargs)
    except GanzooError as exc:
        err = UserError(str(exc))
        err.exit_code = getattr(exc, "exit_code", 2)  # 2: a user mistake; 1: e.g. a full disk
        raise err from None
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in FULL_INSTALL_MODULES:
            raise
        raise UserError(f"this needs {exc.name}, which the torch-free install leaves out; install ganzoo with its "
                        "dependencies (pip install ganzoo), or work from exported .onnx files") from None
    except UsageLine:
        raise
    except click.UsageError as exc:
        raise UsageLine(usage_line(exc)) from None
    except TrainingStopped as exc:  # SIGINT/SIGTERM: checkpointed; 128 + signal number (130, 143)
        from ..engine.distributed import is_main

        if is_main():  # under torchrun every process stops at the same step; one says so
            click.echo(f"ganzoo: {exc.message}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            _plugin_failure(exc)
            raise
        where = f" while writing {exc.filename}" if exc.filename else ""
        click.echo(f"ganzoo: error: {exc.strerror}{where}; free some disk space (a run keeps its last checkpoint: "
                   "continue it with --resume RUN_DIR)", err=True)
        raise click.exceptions.Exit(1) from None
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside a training loop: 130, as for SIGINT
        click.echo(f"ganzoo: {INTERRUPTED.get(command(), 'interrupted')}", err=True)
        raise click.exceptions.Exit(130) from None
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise  # click's own ways out (--help, a usage error): not failures
    except Exception as exc:  # a plugin's bug, in any command: one line naming the plugin
        _plugin_failure(exc)
        raise  # ganzoo's own bug: the traceback is what its authors need


def _plugin_failure(exc: BaseException) -> None:
    """Raise a one-line error naming the plugin whose code raised ``exc`` (exit code 1); return when
    no plugin's code is in its traceback. With ``GANZOO_TRACEBACK=1`` it prints the line and returns,
    so the caller's ``raise`` shows the traceback too."""
    from ..errors import plugin_failure_line

    registry = sys.modules.get("ganzoo.registry")  # not imported: no plugin ran (and pluggy may be absent)
    reg = registry.loaded_registry() if registry is not None else None
    record = reg.blame(exc) if reg is not None else None
    if record is None:
        return
    if os.environ.get("GANZOO_TRACEBACK", "") not in ("", "0"):  # the line, then the traceback
        click.echo(f"ganzoo: error: {plugin_failure_line(record, exc)}", err=True)
        return
    err = UserError(plugin_failure_line(record, exc) + " (GANZOO_TRACEBACK=1 shows the traceback)")
    err.exit_code = 1
    raise err from None


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # command not built into this version
                return None
            raise

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        ctx.meta["ganzoo.command"] = name
        if name and name not in COMMANDS and not name.startswith("-"):
            from ..errors import did_you_mean

            raise UserError(f"no command '{name}'{did_you_mean(name, COMMANDS)}; see 'ganzoo --help'")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name, args, parent=None, **extra):
        return run_guarded(super().make_context, info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        return run_guarded(super().invoke, ctx, command=lambda: ctx.meta.get("ganzoo.command", ""))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ganzoo", prog_name="ganzoo")
def cli() -> None:
    """ganzoo: a plugin-based GAN zoo with ONNX export.

    \b
    Examples:
      ganzoo list                      # everything the installed plugins provide
      ganzoo info wgan                 # hyper-parameters and defaults of one architecture
      ganzoo train vanilla             # vanilla GAN on the embedded ring of 8 Gaussians
      ganzoo train vanilla --steps 500 --out runs/quick
      ganzoo eval runs/quick --json    # mode coverage of that run
    """


def main() -> None:
    cli.main(prog_name="ganzoo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
