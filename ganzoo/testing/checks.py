"""The checks of :mod:`ganzoo.testing`, and the pieces ganzoo's own zoo tests are made of.

Every check works on tiny models (the architecture's ``tiny`` settings) and a few steps, on CPU, so
it takes seconds. Failures raise ``AssertionError`` with the reason.
"""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from ..data.resolve import load_dataset, parse_data_arg, validate
from ..engine.build import build_run
from ..engine.config import flatten_user, incompatibility, resolve, resolve_key
from ..engine.rundir import RunDir
from ..engine.trainer import Trainer
from ..errors import GanzooError
from ..registry import Registry, get_registry, set_registry
from ..specs import ArchitectureSpec, DatasetSpec

PREFERRED_DATA = {"points": "ring8", "image": "digits", "unpaired": "digits-unpaired"}
TEST_RUN = {"steps": 2, "batch_size": 8, "seed": 0, "device": "cpu", "log_every": 1, "eval_samples": 200}
_DATA: dict = {}  # (registry id, data, image size) -> loaded Dataset: load each tiny set once


# -- building blocks (also used by tests/test_zoo.py) ------------------------------------------------
def data_for(reg: Registry, arch: ArchitectureSpec, kind: str) -> str:
    """An embedded data set of ``kind`` (labelled when the architecture needs labels)."""
    ok = [d.name for d in (e.spec for e in reg.entries("dataset"))
          if d.kind == kind and not d.takes_path and (d.labelled or not arch.needs_labels)]
    assert ok, f"no embedded {kind} data set{' with labels' if arch.needs_labels else ''} to train '{arch.name}' on"
    return PREFERRED_DATA[kind] if PREFERRED_DATA.get(kind) in ok else ok[0]


def tiny_run(reg: Registry, arch: ArchitectureSpec, kind: str, **extra: Any) -> dict[str, Any]:
    """Run settings for a tiny test run of ``arch`` on ``kind`` data, derived from its spec."""
    run = {**TEST_RUN, "data": data_for(reg, arch, kind)}
    if kind != "points" and "image_size" not in arch.tiny:
        run["image_size"] = max(8, arch.min_image_size)
    run.update(arch.tiny)
    run.update(extra)
    return run


def make_trainer(reg: Registry, arch: ArchitectureSpec, run: dict[str, Any], out: str | Path,
                 dataset: Any = None) -> Trainer:
    """A :class:`Trainer` for ``run`` (settings as for ``--set``), resolved exactly as the CLI does."""
    r, h = flatten_user(arch, {}, run)
    cfg = resolve(reg, arch, r, h)
    if dataset is None:
        key = (id(reg), cfg["data"], cfg["image_size"])
        if key not in _DATA:
            _DATA[key] = load_dataset(cfg["data"], image_size=cfg["image_size"] or None, registry=reg)
        dataset = _DATA[key]
    parts = build_run(cfg, registry=reg, dataset=dataset)
    return Trainer(cfg, RunDir(out), quiet=True, parts=parts)


def snapshot(trainer: Trainer) -> dict[str, list[torch.Tensor]]:
    return {n: [p.detach().clone() for p in net.parameters()] for n, net in trainer.p.nets.items()}


def assert_all_changed(trainer: Trainer, before: dict[str, list[torch.Tensor]]) -> None:
    nets = trainer.p.nets
    grouped = {n for g in ("G", "D") for n in trainer.p.spec.groups[g]}
    assert grouped <= set(nets), f"{trainer.p.spec.name}: groups name networks {sorted(grouped - set(nets))} it did not build"
    for name, old in before.items():
        new = list(nets[name].parameters())
        assert old, f"network {name} has no parameters"
        changed = any(not torch.equal(a, b) for a, b in zip(old, new))
        assert changed, f"{trainer.p.spec.name}: no weight of network '{name}' changed in training"


def assert_finite(logs: dict[str, Any]) -> None:
    assert logs, "the step logged nothing"
    for k, v in logs.items():
        assert math.isfinite(float(v)), f"{k} = {float(v)}"


def assert_one_line(exc: BaseException) -> str:
    """A user-facing error: a GanzooError of one non-empty line."""
    assert isinstance(exc, GanzooError), f"expected a GanzooError (one line for the user), got {type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg and "\n" not in msg, f"the message must be one line: {msg!r}"
    return msg


@contextmanager
def _using(reg: Registry) -> Iterator[Registry]:
    """``reg`` as the process-wide registry while a check runs (export and reopening a run use it)."""
    previous = set_registry(reg)
    try:
        yield reg
    finally:
        set_registry(previous)


@contextmanager
def _workdir(workdir: str | Path | None) -> Iterator[Path]:
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
        yield Path(tmp)


def check_training(reg: Registry, arch: ArchitectureSpec, kind: str, out: Path, steps: int = 3) -> Trainer:
    """``arch`` trains ``steps`` steps with its default loss on tiny ``kind`` data: finite losses
    logged every step, every network's weights change, a checkpoint, a sample grid, the evaluation."""
    tr = make_trainer(reg, arch, tiny_run(reg, arch, kind, steps=steps, sample_every=steps, checkpoint_every=steps), out)
    before = snapshot(tr)
    results = tr.fit()
    assert results["steps"] == steps
    rows = [r for r in tr.rd.read_metrics() if "eval" not in r]
    assert [r["step"] for r in rows] == list(range(1, steps + 1)), [r["step"] for r in rows]
    for r in rows:
        assert_finite({k: v for k, v in r.items() if k not in ("step", "time")})
        assert "d_loss" in r and "g_loss" in r, sorted(r)
    assert_all_changed(tr, before)
    assert tr.rd.checkpoint_path.is_file() and tr.rd.sample_path(steps).is_file()
    return tr


def check_pair(reg: Registry, arch: ArchitectureSpec, loss: str, penalty: str, out: Path) -> str | None:
    """``arch`` with ``loss`` and ``penalty`` ("none" for none) trains 2 steps with finite losses and
    changing weights, or is refused with one line. Returns the refusal, or None when it trained."""
    run = tiny_run(reg, arch, arch.data_kinds[0], loss=loss, penalty=penalty, n_critic=1)
    hp = {h.name: h.default for h in arch.hparams} | flatten_user(arch, {}, run)[1]
    why = incompatibility(reg, arch, loss, penalty, hp)
    if why is not None:
        try:
            make_trainer(reg, arch, run, out)
        except GanzooError as exc:
            assert str(exc) == why and "\n" not in why, (str(exc), why)
            return why
        raise AssertionError(f"'{arch.name}' with {loss}/{penalty} should be refused ({why}) but was built")
    try:
        tr = make_trainer(reg, arch, run, out)
    except GanzooError as exc:  # refused once built: a per-sample penalty with a BatchNorm critic
        msg = assert_one_line(exc)
        assert penalty != "none" and reg.get("penalty", penalty).per_sample and "uses BatchNorm" in msg, msg
        return msg
    assert (tr.cfg["loss"], tr.cfg["penalty"]) == (loss, penalty)
    before = snapshot(tr)
    for step in (1, 2):
        logs = tr.train_step(step)
        assert_finite(logs)
        assert any("penalty" in k for k in logs) == (penalty != "none"), f"{arch.name}/{loss}/{penalty}: {sorted(logs)}"
    assert_all_changed(tr, before)
    return None


def check_resume(reg: Registry, arch: ArchitectureSpec, kind: str, out: Path, steps: int = 4) -> None:
    """A run interrupted after its checkpoint half-way and resumed from it ends with exactly the
    weights of the straight run (optimiser states, RNG states, data position and the step's own
    state all restored)."""
    import shutil

    from ..engine.trainer import Callback

    half = steps // 2
    split = RunDir(out / "split")

    class KeepHalfway(Callback):
        def on_checkpoint(self, trainer, step):
            if step == half:
                split.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(trainer.rd.checkpoint_path, split.checkpoint_path)

    run = tiny_run(reg, arch, kind, steps=steps, checkpoint_every=half, sample_every=steps)
    straight = make_trainer(reg, arch, run, out / "straight")
    straight.callbacks.append(KeepHalfway())
    straight.fit()
    assert split.checkpoint_path.is_file(), f"no checkpoint was written at step {half}"
    resumed = make_trainer(reg, arch, run, split.path)
    resumed.resume()
    assert resumed.start_step == half
    resumed.fit()
    for name, net in straight.p.nets.items():
        a, b = net.state_dict(), resumed.p.nets[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{arch.name}: {name}.{key} differs after resume (not exact)"


def check_export(run_dir: Path) -> list[Path]:
    """Every exportable network of the run exports to ONNX that matches PyTorch (checker + parity)."""
    from ..deploy.export import export_run

    results = export_run(run_dir)
    assert results, "nothing was exported"
    for res in results:
        assert res.path.is_file() and max(res.errors.values()) <= res.tolerance, res
    return [r.path for r in results]


def check_bad_input(reg: Registry, arch: ArchitectureSpec) -> int:
    """Unknown and mistyped hyper-parameters (and too small images) are refused with one line."""
    wrong = {int: "not-a-number", float: "not-a-number", bool: "maybe"}
    cases = [("no_such_hparam", "1")]
    cases += [(h.name, wrong[h.type]) for h in arch.hparams if h.type in wrong]
    cases += [(h.name, "not-one-of-the-choices") for h in arch.hparams if h.type is str and h.choices]
    for key, value in cases:
        try:
            resolve_key(arch, key, value)
        except GanzooError as exc:
            assert key in assert_one_line(exc)
        else:
            raise AssertionError(f"'{arch.name}': --set {key}={value} was accepted")
    count = len(cases)
    kind = next((k for k in arch.data_kinds if k != "points"), None)
    if kind is not None and arch.min_image_size > 1:
        run = tiny_run(reg, arch, kind, image_size=arch.min_image_size - 1)
        try:
            make_trainer(reg, arch, run, tempfile.gettempdir())
        except GanzooError as exc:
            assert_one_line(exc)
            count += 1
        else:
            raise AssertionError(f"'{arch.name}' built for {arch.min_image_size - 1}px images, below its min_image_size")
    return count


# -- the public checks ----------------------------------------------------------------------------------
def _check_architecture(name: str, *, registry: Registry | None = None, workdir: str | Path | None = None,
                       pairs: bool = True, resume: bool = True, export: bool = True) -> dict[str, Any]:
    """The checks every built-in architecture passes:

    * tiny training with its default loss on every data kind it accepts (finite losses, every
      network's weights change, checkpoint, sample grid);
    * with ``pairs``: every installed loss x penalty trains 2 steps or is refused with one line;
    * with ``resume``: stopped half-way and resumed, it ends with exactly a straight run's weights;
    * with ``export``: each exportable network exports to ONNX matching PyTorch (max abs error 1e-4);
    * bad input: unknown or mistyped hyper-parameters, images below ``min_image_size``: one line.
    """
    reg = registry or get_registry()
    arch = reg.get("architecture", name)
    report: dict[str, Any] = {"architecture": name, "kinds": list(arch.data_kinds), "refused": {}, "exported": []}
    with _workdir(workdir) as tmp:
        runs = {kind: check_training(reg, arch, kind, tmp / f"train-{kind}") for kind in arch.data_kinds}
        if pairs:
            for loss in reg.names("loss"):
                for penalty in ["none"] + reg.names("penalty"):
                    why = check_pair(reg, arch, loss, penalty, tmp / f"pair-{loss}-{penalty}")
                    if why:
                        report["refused"][f"{loss}/{penalty}"] = why
        if resume:
            check_resume(reg, arch, arch.data_kinds[0], tmp / "resume")
        if export:
            for kind, tr in runs.items():
                report["exported"] += [str(p) for p in check_export(tr.rd.path)]
        report["bad_inputs"] = check_bad_input(reg, arch)
    return report


def _outputs() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(8, 1, generator=gen), torch.randn(8, 1, 3, 3, generator=gen)]


def _check_loss(name: str, *, registry: Registry | None = None, workdir: str | Path | None = None,
               architectures: list[str] | None = None) -> dict[str, Any]:
    """The checks every built-in loss passes: ``d_loss``/``g_loss`` give finite scalars with gradients
    for outputs of any shape (``[N, 1]``, patch maps ``[N, 1, H, W]``), called as the engine calls them
    (``g_loss(fake_out, real_out)`` when ``g_uses_real``); and every installed architecture (or
    ``architectures``) trains 2 steps with it, or refuses it with one line."""
    reg = registry or get_registry()
    spec = reg.get("loss", name)
    for out in _outputs():
        real, fake = out.clone().requires_grad_(True), (out.flip(0) + 0.5).requires_grad_(True)
        d = spec.d_loss(real, fake)
        g = spec.g_loss(fake, real) if spec.g_uses_real else spec.g_loss(fake)
        for what, value in (("d_loss", d), ("g_loss", g)):
            assert isinstance(value, torch.Tensor) and value.ndim == 0, f"{name}: {what} must return a scalar tensor, got {value!r}"
            assert math.isfinite(float(value.detach())), f"{name}: {what} = {float(value.detach())}"
        for what, value, wrt, who in (("g_loss", g, fake, "the generator"), ("d_loss", d, real, "the critic")):
            grad = torch.autograd.grad(value, wrt, retain_graph=True, allow_unused=True)[0] if value.requires_grad else None
            assert grad is not None and grad.abs().sum() > 0, f"{name}: {what} gives {who} no gradient"
    report = _every_architecture(reg, architectures, workdir, loss=name)
    return {"loss": name, **report}


def _check_penalty(name: str, *, registry: Registry | None = None, workdir: str | Path | None = None,
                  architectures: list[str] | None = None) -> dict[str, Any]:
    """The checks every built-in penalty passes: ``fn(critic, real, fake, generator=g)`` returns a
    finite scalar that gives the critic a gradient, reproducibly for a seeded generator, on points and
    on images; and every installed architecture (or ``architectures``) trains 2 steps with it, or
    refuses it with one line."""
    reg = registry or get_registry()
    spec = reg.get("penalty", name)
    for shape in ((8, 2), (8, 1, 4, 4)):
        torch.manual_seed(0)
        critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(shape[1:]), 8), torch.nn.Tanh(),
                                     torch.nn.Linear(8, 1))
        real, fake = torch.randn(*shape), torch.randn(*shape)
        values = []
        for _ in range(2):
            gen = torch.Generator().manual_seed(3)
            extra = {"rand": lambda *size, g=gen: torch.rand(*size, generator=g)} if _takes(spec.fn, "rand") else {}
            value = spec.fn(critic, real, fake, generator=gen, **extra)
            assert isinstance(value, torch.Tensor) and value.ndim == 0, f"{name}: fn must return a scalar tensor, got {value!r}"
            assert math.isfinite(float(value.detach())), f"{name}: fn = {float(value.detach())}"
            values.append(value)
        assert torch.equal(values[0], values[1]), f"{name}: not reproducible with a seeded generator"
        grads = torch.autograd.grad(values[0], list(critic.parameters()), allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{name}: gives the critic no gradient"
    report = _every_architecture(reg, architectures, workdir, penalty=name)
    return {"penalty": name, **report}


def _takes(fn: Any, keyword: str) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)


def _every_architecture(reg: Registry, names: list[str] | None, workdir, loss: str | None = None,
                        penalty: str | None = None) -> dict[str, Any]:
    trained, refused = [], {}
    with _workdir(workdir) as tmp:
        for arch_name in names or reg.names("architecture"):
            arch = reg.get("architecture", arch_name)
            lo = loss or arch.default_loss
            pe = penalty or arch.default_penalty or "none"
            why = check_pair(reg, arch, lo, pe, tmp / arch_name)
            if why:
                refused[arch_name] = why
            else:
                trained.append(arch_name)
    return {"trained": trained, "refused": refused}


def _check_dataset(spec_or_name: str | DatasetSpec, *, registry: Registry | None = None,
                  workdir: str | Path | None = None, image_size: int = 8, train: bool = True) -> dict[str, Any]:
    """The checks every built-in data set passes, for ``NAME``, ``FORMAT:PATH`` or a :class:`DatasetSpec`:

    * what it loads follows the contract (layout, dtype, labels, ``DataInfo``; see docs/data.md);
    * the same seed loads the same data; image sets honour ``--image-size``;
    * a file format refuses a path that does not hold its files with one line (a GanzooError);
    * with ``train``: an installed architecture that takes its kind trains 2 steps on it.
    """
    from ..data.base import DataRequest

    reg = registry or get_registry()
    if isinstance(spec_or_name, DatasetSpec):
        spec, path = spec_or_name, None

        def load(**kw):
            ds = spec.load(DataRequest(name=spec.name, path=path, **kw))
            validate(ds, spec.kind, spec.name)
            return ds
        text = spec.name
    else:
        text = str(spec_or_name)
        name, path = parse_data_arg(text)
        spec = reg.get("dataset", name)

        def load(**kw):
            return load_dataset(text, registry=reg, **kw)
    assert not spec.takes_path or path, f"data set '{spec.name}' reads files: check it with '{spec.name}:PATH'"
    plain = load

    def load(**kw):  # noqa: F811 - a loader's own exception is a plugin bug: say so
        try:
            return plain(**kw)
        except GanzooError:
            raise
        except Exception as exc:
            raise AssertionError(f"data set '{spec.name}' raised {type(exc).__name__}: {exc}; "
                                 "raise ganzoo.GanzooError with one line for a problem the user can fix") from None

    ds = load(seed=0)  # validated against the contract
    again = load(seed=0)
    assert torch.equal(ds.x, again.x), f"data set '{spec.name}': the same seed loaded different data"
    assert (ds.y is None) == (not spec.labelled) or spec.takes_path, \
        f"data set '{spec.name}': labelled={spec.labelled} but it returned {'no ' if ds.y is None else ''}labels"
    report: dict[str, Any] = {"dataset": text, "kind": ds.info.kind, "samples": len(ds), "info": ds.info}
    if spec.kind != "points":
        small = load(seed=0, image_size=image_size)
        assert (small.info.height, small.info.width) == (image_size, image_size), \
            f"data set '{spec.name}': --image-size {image_size} gave {small.info.height}x{small.info.width}"
        assert small.x.shape[2:] == (image_size, image_size)
    with _workdir(workdir) as tmp:
        if spec.takes_path:
            empty = tmp / "empty"
            empty.mkdir()
            try:
                spec.load(DataRequest(name=spec.name, path=str(empty)))
            except GanzooError as exc:
                report["empty_folder"] = assert_one_line(exc)
            except Exception as exc:
                raise AssertionError(f"data set '{spec.name}' on a folder without its files raised "
                                     f"{type(exc).__name__}: {exc}; raise ganzoo.GanzooError with one line") from None
            else:
                raise AssertionError(f"data set '{spec.name}' loaded an empty folder without complaint")
        if train:
            report["trained"] = _train_on(reg, ds, text, tmp / "train")
    return report


def _train_on(reg: Registry, ds: Any, text: str, out: Path) -> str:
    kind = ds.info.kind
    archs = [reg.get("architecture", n) for n in reg.names("architecture")]
    fits = [a for a in archs if kind in a.data_kinds and (ds.info.num_classes or not a.needs_labels)
            and (kind == "points" or min(ds.info.height, ds.info.width) >= a.min_image_size)]
    assert fits, f"no installed architecture trains on {kind} data of {ds.info.height}x{ds.info.width}"
    arch = sorted(fits, key=lambda a: (a.name != "vanilla", a.needs_labels, a.name))[0]
    run = {**tiny_run(reg, arch, kind), "data": text, "image_size": 0}
    tr = make_trainer(reg, arch, run, out, dataset=ds)
    before = snapshot(tr)
    for step in (1, 2):
        assert_finite(tr.train_step(step))
    assert_all_changed(tr, before)
    return arch.name


def check_architecture(name: str, *, registry: Registry | None = None, **options: Any) -> dict[str, Any]:
    reg = registry or get_registry()
    with _using(reg):
        return _check_architecture(name, registry=reg, **options)


def check_loss(name: str, *, registry: Registry | None = None, **options: Any) -> dict[str, Any]:
    reg = registry or get_registry()
    with _using(reg):
        return _check_loss(name, registry=reg, **options)


def check_penalty(name: str, *, registry: Registry | None = None, **options: Any) -> dict[str, Any]:
    reg = registry or get_registry()
    with _using(reg):
        return _check_penalty(name, registry=reg, **options)


def check_dataset(spec_or_name: str | DatasetSpec, *, registry: Registry | None = None, **options: Any) -> dict[str, Any]:
    reg = registry or get_registry()
    with _using(reg):
        return _check_dataset(spec_or_name, registry=reg, **options)


for _public, _impl in ((check_architecture, _check_architecture), (check_loss, _check_loss),
                       (check_penalty, _check_penalty), (check_dataset, _check_dataset)):
    _public.__doc__ = _impl.__doc__
