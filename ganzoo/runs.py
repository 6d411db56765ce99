"""The Python API for users: :func:`train` and :func:`load`, one code path with the CLI.

``ganzoo train ARCH [options]`` turns its options into the same settings and calls :func:`train`;
``ganzoo eval`` and ``ganzoo export`` call :meth:`Run.evaluate` and :meth:`Run.export`. So a run made
from Python is the run the CLI would make with the same settings, and vice versa.

(``ganzoo.api`` is the other public module: the torch-side building blocks for *plugin authors*,
``Step``, ``StepContext``, ``DataInfo`` ... This module is for *users* of the zoo.)

Examples (docs/api.md has more, and the tests run them)::

    import ganzoo
    run = ganzoo.train("vanilla", data="ring8", steps=300, out="runs/quick", hidden=64)
    run.results["modes"]                 # end-of-run metrics
    images = ganzoo.load("runs/quick").sample(16, seed=0)
"""

from __future__ import annotations

import datetime as _dt
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import GanzooError, PluginError, plugin_failure_line

RESUMABLE = ("steps", "device", "threads")  # what may change when a run is continued


def train(arch: str, data: str | None = None, steps: int | None = None, out: str | Path | None = None, *,
          config: str | Path | None = None, resume: str | Path | None = None, quiet: bool = True,
          callbacks: Iterable[Any] = (), registry: Any = None, **settings: Any) -> "Run":
    """Train architecture ``arch`` in this process and return the finished :class:`Run`.

    ``settings`` are configuration keys and hyper-parameters, exactly the ``--set`` keys of
    ``ganzoo train ARCH`` (``loss``, ``penalty``, ``batch_size``, ``lr_d``, ``seed``, ``device``, ``ema``,
    ``hidden`` ...; ``lr`` sets both learning rates). Values are Python values or strings as on the
    command line. They are resolved with the CLI's precedence: engine defaults, the architecture's
    defaults (and its defaults for the data's kind), the loss's and penalty's suggestions, a variant,
    the ``config`` TOML file, then these settings.

    ``out`` is the run directory (default ``runs/ARCH-TIMESTAMP``; it must not hold a run already).
    ``resume=RUN_DIR`` continues that run in place up to ``steps``; other settings may be repeated
    with the run's own values, but only ``steps`` and ``device`` may change.

    Raises :class:`ganzoo.GanzooError` (one line saying what to fix) for a bad setting; a plugin that
    fails during the run raises one naming the plugin, and a new run that fails before its first
    checkpoint leaves no run directory behind. ``quiet=False`` shows a progress bar on a terminal.
    """
    from .engine import distributed
    from .registry import get_registry

    reg = registry or get_registry()
    distributed.init()  # under torchrun: every process resolves, and they agree on the outcome
    try:
        cfg, rd = distributed.agree_on_setup(
            lambda: _configure(reg, arch, dict(settings, data=data, steps=steps), out, config, resume))
    except BaseException as exc:
        distributed.report_rank_error(exc)  # several processes: one line, from rank 0
        raise
    results = _fit(reg, cfg, rd, resume is not None, quiet, list(callbacks))
    return Run(rd.path, results=results, config=cfg)


def _configure(reg, arch: str, settings: Mapping[str, Any], out, config, resume):
    """(resolved configuration, RunDir) of a new or resumed run; GanzooError for any mistake."""
    from .engine.config import flatten_user, read_config_file, resolve
    from .engine.rundir import RunDir

    spec = reg.get("architecture", arch)
    user = {k: v for k, v in settings.items() if v is not None}
    if "lr" in user:  # both learning rates; lr_g / lr_d given as well win
        lr = user.pop("lr")
        user.setdefault("lr_g", lr)
        user.setdefault("lr_d", lr)
    if resume is not None:
        rd = RunDir(resume)
        return _resumed_config(spec, rd, user, out, config), rd
    file_cfg = read_config_file(config) if config else {}
    run, hps = flatten_user(spec, file_cfg, user)
    cfg = resolve(reg, spec, run, hps)
    if out is None:
        out = Path("runs") / f"{spec.name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    rd = RunDir(out)
    if rd.is_run():
        raise GanzooError(f"--out {out} already holds a run; continue it with --resume {out} or pick another --out")
    if rd.path.exists() and not rd.path.is_dir():
        raise GanzooError(f"--out {out} is a file; pick a folder")
    return cfg, rd


def _resumed_config(spec, rd, user: Mapping[str, Any], out, config) -> dict[str, Any]:
    """The run's own configuration, with only ``steps``/``device`` changed. Settings repeated with the
    run's values are accepted; a differing one is refused, naming it."""
    from .engine.config import read_config_file, resolve_key

    cfg = rd.read_config()
    if cfg.get("arch") != spec.name:
        raise GanzooError(f"--resume {rd.path}: that run trains '{cfg.get('arch')}', not '{spec.name}'; "
                          f"use 'ganzoo train {cfg.get('arch')} --resume {rd.path}'")
    given: dict[tuple[str, str], Any] = {}
    if config:
        file_cfg = read_config_file(config)
        for key, value in file_cfg.items():
            if key in ("ganzoo_version", "plugin", "created", "decisions"):
                continue
            items = value.items() if key == "hparams" and isinstance(value, Mapping) else [(key, value)]
            for k, v in items:
                section, k2, parsed = resolve_key(spec, ("hparams." + k) if key == "hparams" else k, v, "--config")
                given[section, k2] = parsed
    for key, value in user.items():
        section, k2, parsed = resolve_key(spec, key, value, "option")
        given[section, k2] = parsed
    differ = []
    for (section, key), value in sorted(given.items()):
        if section == "run" and key in RESUMABLE:
            continue
        was = cfg.get("hparams", {}).get(key) if section == "hparams" else cfg.get(key)
        if not _same(value, was):
            differ.append(f"{key} ({value!r} given, {was!r} in the run)")
    if out is not None and Path(out).expanduser().resolve() != rd.path.resolve():
        differ.append(f"out ({str(out)!r} given, the run is {str(rd.path)!r})")
    if differ:
        raise GanzooError(f"--resume continues a run as configured: only --steps, --device and --threads may change, but "
                          f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''}; start a new run to change them")
    for key in RESUMABLE:  # options win over a config file (``given`` holds the file, then the options)
        if ("run", key) in given:
            if key == "steps" and given["run", key] != cfg.get("steps"):
                _schedule_note(spec, cfg, given["run", key])
            cfg[key] = given["run", key]
    if int(cfg.get("threads", 0)) < 0:
        raise GanzooError(f"--threads must be a positive number of threads (0: auto), got {cfg['threads']}")
    return cfg


def _schedule_note(spec, cfg: Mapping[str, Any], steps: int) -> None:
    """One line when a learning-rate schedule laid over the run's length changes course on resume."""
    from .engine.distributed import is_main

    if is_main() and (spec.lr_factor is not None or float(cfg.get("lr_decay", 1.0)) < 1.0):
        print(f"ganzoo: note: the learning-rate schedule of this run is laid over its total steps; with --steps "
              f"{steps} instead of {cfg.get('steps')} it changes course from here on (the result differs from a "
              "run started with that total)", file=sys.stderr)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _fit(reg, cfg: dict[str, Any], rd, resuming: bool, quiet: bool, callbacks: list) -> dict[str, Any]:
    """Build, (resume,) train -- in every process under torchrun, which agree on the setup first. A
    plugin's exception becomes one line naming the plugin; a new run that stops before its first
    checkpoint is removed, so a run directory is always a valid run."""
    from .engine import distributed
    from .engine.build import build_run
    from .engine.trainer import Trainer

    existed = rd.path.is_dir()
    before = set(rd.path.iterdir()) if existed else set()
    trainer = None

    def setup():
        device = distributed.process_device(str(cfg.get("device", "auto")))
        t = Trainer(cfg, rd, callbacks=callbacks, quiet=quiet, parts=build_run(cfg, registry=reg, device=device, quiet=quiet))
        if resuming:
            t.resume()
        return t

    distributed.init()
    try:
        trainer = distributed.agree_on_setup(setup)
        start = trainer.start_step
        results = trainer.fit()
    except BaseException as exc:
        note = ""
        if not resuming and not rd.checkpoint_path.is_file() and rd.path.is_dir() and distributed.is_main():
            _discard(rd.path, existed, before)
            note = f"the unfinished run directory {rd.path} was removed"
        elif rd.checkpoint_path.is_file():
            note = f"{rd.path} keeps its last checkpoint; continue it with --resume {rd.path} once fixed"
        record = None if isinstance(exc, GanzooError) or not isinstance(exc, Exception) else reg.blame(exc)
        if record is not None:
            step = f" at step {trainer.p.ctx.step}" if trainer is not None and trainer.p.ctx.step else ""
            exc = PluginError(plugin_failure_line(record, exc, step, note)).with_traceback(exc.__traceback__)
        distributed.report_rank_error(exc)  # several processes: one line from the one that failed
        raise exc
    distributed.shutdown()
    results["start_step"] = start
    results["trained_steps"] = int(results.get("steps", 0)) - start
    cfg.update(trainer.cfg)  # what the run recorded as it started (``decisions``: thread count, image size)
    return results


def _discard(path: Path, existed: bool, before: set[Path]) -> None:
    """Remove what a failed new run wrote: the folder itself, or only the new entries of a folder
    that was there before."""
    if not existed:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in path.iterdir():
        if entry not in before:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def load(run_dir: str | Path, device: str = "cpu") -> "Run":
    """Open a finished (or interrupted) run directory. Raises :class:`ganzoo.GanzooError` when it is
    not a run directory (no ``config.toml``) or its checkpoint is missing or damaged."""
    from .engine.rundir import RunDir

    rd = RunDir(run_dir)
    cfg = rd.read_config()
    if not rd.checkpoint_path.is_file():
        raise GanzooError(f"{rd.path} has no checkpoint ({rd.checkpoint_path.relative_to(rd.path)}); "
                          "the run never reached its first checkpoint")
    return Run(rd.path, config=cfg, device=device)


class Run:
    """A run directory, opened from Python.

    ``path`` is the folder; ``config`` its resolved configuration (``config.toml``); ``results`` the
    end-of-run results of :func:`train` in this process (``steps``, ``start_step``, ``trained_steps``,
    ``seconds`` and the metrics), or, for a loaded run, its last evaluation row of ``metrics.jsonl``.
    Networks are rebuilt lazily, on ``device``, from the last checkpoint.
    """

    def __init__(self, path: str | Path, results: Mapping[str, Any] | None = None,
                 config: Mapping[str, Any] | None = None, device: str = "cpu"):
        from .engine.rundir import RunDir

        self.path = Path(path)
        self._rd = RunDir(self.path)
        self.config = dict(config) if config is not None else self._rd.read_config()
        self.results = dict(results) if results is not None else self._last_eval()
        self.device = device
        self._opened = None
        self._models: dict[str | None, Any] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, arch={self.arch!r}, data={self.config.get('data')!r}, step={self.step})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def arch(self) -> str:
        return str(self.config.get("arch"))

    @property
    def step(self) -> int:
        """The training step of the last checkpoint (0 before the first one)."""
        if self._opened is not None:
            return int(self._opened[1]["step"])
        if not self._rd.checkpoint_path.is_file():
            return 0
        from .engine.checkpoint import load_checkpoint

        return int(load_checkpoint(self._rd.checkpoint_path)["step"])

    def _last_eval(self) -> dict[str, Any]:
        rows = [r for r in self._rd.read_metrics() if "eval" in r]
        return {"steps": rows[-1].get("step"), **rows[-1]["eval"]} if rows else {}

    def _parts(self):
        if self._opened is None:
            from .engine.build import open_run

            self._opened = open_run(str(self.path), device=self.device)
        return self._opened

    @property
    def networks(self) -> dict[str, Any]:
        """Every network of the run by name (``G``, ``D``; CycleGAN ``G_AB`` ...), eval mode, last weights."""
        return dict(self._parts()[0].nets)

    @property
    def generator(self):
        """The generator as exported (EMA weights when the run keeps them), an ``nn.Module`` in eval
        mode taking the ONNX contract's inputs (``z`` ``[N, latent_dim]``; ``labels``; or ``image``)."""
        return self.model().module

    def model(self, net: str | None = None):
        """The exportable network ``net`` (default: the first) with the runtime's numpy interface
        (:class:`ganzoo.deploy.export.RunModel`): ``.info`` (the ONNX metadata), ``.run(z=...)``."""
        if net not in self._models:
            from .deploy.export import RunModel

            self._models[net] = RunModel(self.path, net=net, device=self.device)
        return self._models[net]

    def sample(self, n: int = 64, seed: int = 0, label: int | None = None, net: str | None = None):
        """``n`` samples as a float32 numpy array in [-1, 1], ``[n, C, H, W]`` (2D runs: points ``[n, 2]``).

        The latent codes come from numpy with ``seed``, exactly as ``ganzoo sample`` and the exported
        model's ``GanzooModel.sample`` draw them, so the ONNX file gives the same samples. Conditional
        runs: every sample of class ``label``, else random classes. Image-to-image runs (CycleGAN)
        translate the first ``n`` images of the run's data in ``net``'s direction.
        """
        from .deploy.runtime import sample_inputs

        model = self.model(net)
        if model.info.image_to_image:
            return model.run(image=model.data_images(n))
        return model.run(**sample_inputs(model.info, n, seed, label))

    def translate(self, inputs, out_dir: str | Path, net: str | None = None, **options):
        """Translate image files (or folders of them) at their own size into ``out_dir`` with the
        run's generator ``net`` (default: the first, e.g. ``G_AB``); ``ganzoo translate RUN_DIR``.
        ``options``: those of :func:`ganzoo.deploy.translate.translate` (``size``, ``side_by_side``,
        ``batch_size``, ``max_pixels``, ``progress``, ``log``). Returns its ``TranslateResult``."""
        from .deploy.translate import translate

        return translate(self.model(net), inputs, out_dir, **options)

    def evaluate(self, inception_weights: str | None = None, samples: int | None = None, log=None) -> dict[str, Any]:
        """The metrics ``ganzoo eval`` prints, as a dict: 2D mode coverage, or the image metrics
        (classifier FD/IS, classes; FID/KID with ``inception_weights``). Deterministic for a run."""
        from .engine.rundir import RunDir
        from .metrics.evaluate import evaluate_run
        from .report.runinfo import exports, save_evaluation

        parts, state = self._parts()
        options: dict[str, Any] = {}
        if parts.dataset.info.kind == "points":
            if inception_weights or samples:
                raise GanzooError("--inception-weights and --samples apply to image runs only")
        else:
            options.update(samples=samples, log=log)
            if inception_weights:
                options["inception_weights"] = inception_weights
        rd = RunDir(self.path)
        for ex in exports(rd, int(state["step"])):  # an export older than the weights evaluated here
            if ex.stale and log is not None:
                log(f"note: {ex.staleness()}")
        result = {"run": str(self.path), "arch": parts.spec.name, "data": parts.cfg["data"], "step": int(state["step"]),
                  **evaluate_run(parts, **options)}
        save_evaluation(rd, result, options)  # RUN_DIR/eval.json, TensorBoard, report.html
        return result

    def export(self, path: str | Path | None = None, net: str | None = None, opset: int = 18, fp16: bool = False,
               log=None, int8: bool = False) -> list[Path]:
        """Export the generator(s) to verified ONNX (``ganzoo export``); returns the written paths.

        ``path``: a ``.onnx`` file, or a folder for several networks (default: ``RUN_DIR/generator.onnx``,
        or ``RUN_DIR/NET.onnx`` per network). Each file passes ``onnx.checker`` and matches PyTorch in
        ONNX Runtime (max abs error 1e-4; 1e-2 with ``fp16``) or is not written (GanzooError).
        ``int8``: static int8 quantisation for CPUs (``generator.int8.onnx``; refused, with no file,
        when its mean abs difference to float32 exceeds the bound of docs/export.md)."""
        from .deploy.export import export_run

        return [r.path for r in export_run(self.path, path, net=net, opset=opset, fp16=fp16, int8=int8, log=log)]
