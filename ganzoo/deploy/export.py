"""Exporting a run's generator(s) to verified ONNX, and running them in PyTorch the same way.

``export_run`` rebuilds a run with :func:`ganzoo.engine.build.open_run`, takes the network(s) the
architecture's ``ExportSpec`` names (EMA weights when the run keeps them), exports each with
``torch.onnx.export(..., dynamo=True)`` (dynamic batch, opset >= 18, one self-contained file),
writes the metadata of :class:`ganzoo.deploy.runtime.ModelInfo`, then checks the file with
``onnx.checker`` and against PyTorch in ONNX Runtime at batch sizes 1 and 7. A fully convolutional
image-to-image network (``ExportSpec.dynamic_size``) is exported with symbolic height and width too
and also checked at another, non-square size (:func:`other_size`). The file is written
under a temporary name and renamed only once it passed, so a failed export leaves nothing that
looks valid.

:class:`RunModel` runs the same network in PyTorch from numpy inputs with the same validation as
:class:`ganzoo.deploy.runtime.GanzooModel`: ``ganzoo sample RUN_DIR`` and ``ganzoo sample MODEL.onnx``
share everything but the engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import GanzooError
from .contract import ModelInfo, check_inputs, example_inputs
from ..specs import ExportSpec

DEFAULT_OPSET = 18
MIN_OPSET = 18
TOLERANCE = {"float32": 1e-4, "float16": 1e-2}  # max abs error ONNX Runtime vs PyTorch fp32, values in [-1, 1]
VERIFY_BATCHES = (1, 7)
EXAMPLE_BATCH = 2  # >= 2, so the exporter keeps the batch dimension symbolic
OTHER_SIZE_BATCH = 2  # dynamic-size networks: the batch checked at the second size


# -- which network, and what it is ----------------------------------------------------------------

def pick_exports(spec, net: str | None = None) -> list[ExportSpec]:
    exports = list(spec.exports)
    if not exports:
        raise GanzooError(f"architecture '{spec.name}' declares no exportable network")
    if net is None:
        return exports
    for es in exports:
        if es.network == net:
            return [es]
    raise GanzooError(f"--net {net}: '{spec.name}' exports {', '.join(e.network for e in exports)}")


def size_rule(es: ExportSpec, net: nn.Module | None) -> tuple[int, int]:
    """``(size_multiple, min_size)`` of a dynamic-size network (``(0, 0)``: fixed size)."""
    if not es.dynamic_size or "image" not in es.inputs:
        return 0, 0
    values = []
    for what in ("size_multiple", "min_size"):
        rule = getattr(es, what)
        value = rule(net) if callable(rule) else rule
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GanzooError(f"export '{es.network}': {what} must be a positive int, got {value!r}; report this to its plugin")
        values.append(value)
    return values[0], values[1]


def activation_floats(net: nn.Module, info: ModelInfo) -> int:
    """The largest output of any layer of ``net`` at the training size, in floats per input pixel
    (rounded up): what the memory of translating an ``H x W`` image grows with (image-to-image only)."""
    if not info.image_to_image:
        return 0
    biggest = [0]

    def hook(_module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            biggest[0] = max(biggest[0], output[0].numel())

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        torch_forward(net, info, example_inputs(info, 1))
    finally:
        for h in handles:
            h.remove()
    pixels = info.height * info.width
    return -(-biggest[0] // pixels)


def model_info(parts, state, es: ExportSpec, opset: int = 0, precision: str = "float32") -> ModelInfo:
    """The metadata of network ``es`` of a reopened run (the ONNX I/O contract)."""
    from ..registry import get_registry

    data = parts.dataset.info
    points = data.kind == "points"
    output = "points" if points else es.output
    if output in es.inputs:  # ONNX names are unique: an image-to-image output cannot also be "image"
        output = f"{output}_out"
    provider = get_registry().entry("architecture", parts.spec.name).provider
    conditional = "labels" in es.inputs
    net = parts.sample_nets().get(es.network)
    multiple, min_size = size_rule(es, net)
    info = ModelInfo(
        architecture=parts.spec.name,
        network=es.network,
        inputs=tuple(es.inputs),
        output=output,
        output_kind="points" if points else "image",
        latent_dim=int(parts.cfg.get("hparams", {}).get("latent_dim", 0)) if "z" in es.inputs else 0,
        num_classes=int(data.num_classes) if conditional else 0,
        class_names=tuple(data.class_names) if conditional else (),
        channels=0 if points else int(data.channels),
        height=0 if points else int(data.height),
        width=0 if points else int(data.width),
        dim=int(data.dim) if points else 0,
        value_range=None if points else (-1.0, 1.0),
        dataset=str(parts.cfg.get("data", data.name)),
        data_kind=data.kind,
        step=int(state.get("step", 0)),
        opset=int(opset),
        ema=es.network in parts.ema,
        precision=precision,
        direction=next((d for d, n in getattr(parts.step, "directions", {}).items() if n == es.network), ""),
        ganzoo_version=__version__,
        plugin=provider.plugin,
        plugin_dist=provider.dist,
        plugin_version=provider.version,
        size_multiple=multiple,
        min_size=min_size,
    )
    if net is not None and info.image_to_image and not points:
        info = replace(info, activation_floats=activation_floats(net, info))
    return info


# -- PyTorch side ---------------------------------------------------------------------------------

class _Wrapped(nn.Module):
    """The network as exported: positional contract inputs; fp16 inside, float32 at the edges."""

    def __init__(self, net: nn.Module, fp16: bool = False):
        super().__init__()
        self.net = net.half() if fp16 else net
        self.fp16 = fp16

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.fp16:
            inputs = tuple(x.half() if x.is_floating_point() else x for x in inputs)
        out = self.net(*inputs)
        return out.float() if self.fp16 else out


def torch_forward(net: nn.Module, info: ModelInfo, feeds: dict[str, np.ndarray], device: str | torch.device = "cpu") -> np.ndarray:
    args = [torch.from_numpy(np.ascontiguousarray(feeds[k])).to(device) for k in info.inputs]
    with torch.inference_mode():
        return net(*args).float().cpu().numpy()


class RunModel:
    """A run's exportable network in PyTorch, with the runtime's numpy interface and checks."""

    def __init__(self, run_dir: str | Path, net: str | None = None, device: str = "cpu"):
        from ..engine.build import open_run

        self.parts, self.state = open_run(str(run_dir), device=device)
        self.export_spec = pick_exports(self.parts.spec, net)[0]
        self.module = self.parts.sample_nets()[self.export_spec.network].eval()
        self.info = model_info(self.parts, self.state, self.export_spec)
        self.source = str(run_dir)
        self.provider = f"torch-{self.parts.device.type}"
        self.note = ""

    def run(self, z: np.ndarray | None = None, labels: np.ndarray | None = None, image: np.ndarray | None = None) -> np.ndarray:
        feeds = {"z": z, "labels": labels, "image": image}
        check_inputs(self.info, feeds, source=self.source)
        return torch_forward(self.module, self.info, feeds, self.parts.device)

    __call__ = run

    def data_images(self, n: int) -> np.ndarray:
        """Images from the run's data set in the domain this network translates from (first ``n``)."""
        domain = "b" if self.info.direction.startswith("B") else "a"
        return self.parts.dataset.all_real(n, domain).float().cpu().numpy()


# -- export ---------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    network: str
    path: Path
    info: ModelInfo
    errors: dict[str, float]  # "batch 1", "batch 2 at 68x72" ... -> max abs error vs PyTorch fp32
    tolerance: float
    size_bytes: int
    int8: Any = None  # --int8: the ganzoo.deploy.quantize.Int8Report of the file


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter logs torchvision notices and deprecation warnings: keep the CLI readable."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch.fx")
    levels = {n: logging.getLogger(n).level for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for n, lvl in levels.items():
                logging.getLogger(n).setLevel(lvl)


def _first_line(exc: BaseException) -> str:
    """One line saying why: the exporter's own "Exception summary" when it has one."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "## Exception summary" in lines:
        rest = lines[lines.index("## Exception summary") + 1 :]
        if rest:
            return rest[0][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def export_network(net: nn.Module, info: ModelInfo, path: str | Path, *, opset: int = DEFAULT_OPSET, fp16: bool = False,
                   verify_batches: Sequence[int] = VERIFY_BATCHES) -> ExportResult:
    """Export ``net`` (eval mode) to ``path`` with ``info`` as metadata; verify; rename into place."""
    import onnx

    if opset < MIN_OPSET:
        raise GanzooError(f"--opset {opset}: ganzoo exports need opset {MIN_OPSET} or newer")
    precision = "float16" if fp16 else "float32"
    info = replace(info, opset=opset, precision=precision)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    net = net.eval()
    ref_state = {k: v.detach().clone() for k, v in net.state_dict().items()} if fp16 else None
    try:
        # references first, in fp32 (fp16 is checked against these)
        cases = {f"batch {n}": (n, None) for n in verify_batches}
        if info.dynamic_size:
            h2, w2 = other_size(info)
            cases[f"batch {OTHER_SIZE_BATCH} at {h2}x{w2}"] = (OTHER_SIZE_BATCH, (h2, w2))
        feeds = {key: example_inputs(info, n, seed=n, size=size) for key, (n, size) in cases.items()}
        refs = {key: torch_forward(net, info, feeds[key]) for key in cases}
        for key, ref in refs.items():
            want = [len(next(iter(feeds[key].values())))] + list(info.sample_shape)
            if cases[key][1]:
                want[2:] = cases[key][1]
            if list(ref.shape) != want:
                raise GanzooError(
                    f"{info.architecture}/{info.network} returned shape {list(ref.shape)} for {key}, "
                    f"expected {want}; report this to its plugin"
                )
        example = tuple(torch.from_numpy(x) for x in example_inputs(info, EXAMPLE_BATCH).values())
        wrapped = _Wrapped(net, fp16).eval()
        batch = torch.export.Dim("batch")
        with _quiet_exporter():
            try:
                torch.onnx.export(
                    wrapped, example, str(tmp), dynamo=True, external_data=False, opset_version=opset,
                    input_names=list(info.inputs), output_names=[info.output],
                    dynamic_shapes=(tuple(_dynamic_dims(info, name, batch) for name in info.inputs),), verbose=False,
                )
            except GanzooError:
                raise
            except Exception as exc:
                raise GanzooError(f"exporting {info.architecture}/{info.network} to ONNX failed: {_first_line(exc)}") from None
        model = onnx.load(str(tmp))
        del model.metadata_props[:]
        for key, value in info.to_metadata().items():
            model.metadata_props.add(key=key, value=value)
        model.doc_string = f"ganzoo {info.architecture}/{info.network}: {info.describe()}"
        onnx.save(model, str(tmp))
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:
            raise GanzooError(f"onnx.checker rejected the export of {info.network}: {_first_line(exc)}") from None
        errors = _verify(tmp, info, feeds, refs)
        tol = TOLERANCE[precision]
        worst = max(errors.values())
        if not worst <= tol:  # also catches NaN
            detail = ", ".join(f"{e:.2e} at {key}" for key, e in errors.items())
            raise GanzooError(f"ONNX Runtime disagrees with PyTorch for {info.network}: max abs error {detail} > {tol:g}; not written")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        if ref_state is not None:  # fp16 export converted the module in place: restore it
            net.float().load_state_dict(ref_state)
    return ExportResult(info.network, path, info, errors, TOLERANCE[precision], path.stat().st_size)


def other_size(info: ModelInfo) -> tuple[int, int]:
    """The second, non-square size a dynamic-size export is checked at: a little larger than the
    training size, by one and two size multiples (so an odd number of multiples on one side)."""
    m = info.size_multiple
    h, w = info.height + m, info.width + 2 * m
    return (h, w + m) if h == w else (h, w)


def _dynamic_dims(info: ModelInfo, name: str, batch: Any) -> dict[int, Any]:
    """The symbolic dimensions of input ``name``: the batch, and the height and width of a dynamic-size
    image (``size_multiple * k``, so the exporter knows the output has the input's size)."""
    dims: dict[int, Any] = {0: batch}
    if name == "image" and info.dynamic_size:
        m = info.size_multiple
        lo = -(-max(info.min_size, m) // m)
        for axis, what in ((2, "height"), (3, "width")):
            if m == 1:
                dims[axis] = torch.export.Dim(what, min=lo)
            else:
                dims[axis] = m * torch.export.Dim(f"{what}_div{m}", min=lo)
    return dims


def _verify(path: Path, info: ModelInfo, feeds: dict, refs: dict) -> dict[str, float]:
    from .runtime import GanzooModel

    errors: dict[str, float] = {}
    # the file as written, and the CPU graph the runtime runs on the CPU provider (ganzoo.deploy.cpu_graph)
    for graph in ("plain", "cpu"):
        model = GanzooModel(path, provider="cpu", graph=graph)
        if model.graph != graph:  # nothing to rewrite: the CPU provider runs the plain graph
            continue
        if model.info != info:
            raise GanzooError(f"the metadata written to {path.name} does not read back; report this bug")
        for n, ref in refs.items():
            out = model.run(**feeds[n])
            if out.shape != ref.shape:
                raise GanzooError(f"ONNX output for {n} has shape {list(out.shape)}, PyTorch {list(ref.shape)}; not written")
            errors[n] = max(errors.get(n, 0.0), float(np.abs(out.astype(np.float64) - ref).max()))
    return errors


def default_path(run_dir: Path, spec, es: ExportSpec, fp16: bool = False, int8: bool = False) -> Path:
    stem = "generator" if len(spec.exports) == 1 else es.network
    return run_dir / f"{stem}{'.fp16' if fp16 else ''}{'.int8' if int8 else ''}.onnx"


def export_run(run_dir: str | Path, out: str | Path | None = None, *, net: str | None = None, opset: int = DEFAULT_OPSET,
               fp16: bool = False, int8: bool = False, log: Callable[[str], Any] | None = None) -> list[ExportResult]:
    """Export every exportable network of a run (or only ``net``); see the module docstring.
    ``int8``: static int8 quantisation of the verified float32 export (:func:`export_int8`)."""
    from ..engine.build import open_run

    if opset < MIN_OPSET:
        raise GanzooError(f"--opset {opset}: ganzoo exports need opset {MIN_OPSET} or newer")
    if fp16 and int8:
        raise GanzooError("--fp16 and --int8 exclude each other: pick one precision")
    run_dir = Path(run_dir)
    parts, state = open_run(str(run_dir), device="cpu")
    exports = pick_exports(parts.spec, net)
    nets = parts.sample_nets()
    targets: list[tuple[ExportSpec, Path]] = []
    for es in exports:
        if es.network not in nets:
            raise GanzooError(f"architecture '{parts.spec.name}' exports '{es.network}' but builds no such network; report this to its plugin")
        if out is None:
            target = default_path(run_dir, parts.spec, es, fp16, int8)
        elif len(exports) == 1 and str(out).endswith(".onnx"):
            target = Path(out)
        elif Path(out).suffix == ".onnx":
            raise GanzooError(
                f"--onnx {out}: '{parts.spec.name}' exports {len(exports)} networks "
                f"({', '.join(e.network for e in exports)}); pass a folder, or choose one with --net"
            )
        else:
            target = Path(out) / default_path(Path(), parts.spec, es, fp16, int8).name
        targets.append((es, target))
    results = []
    for es, target in targets:
        info = model_info(parts, state, es, opset)
        if int8:
            res = export_int8(parts, nets[es.network], info, target, opset=opset)
        else:
            res = export_network(nets[es.network], info, target, opset=opset, fp16=fp16)
        results.append(res)
        _record(run_dir, res)
        if log:
            errs = ", ".join(f"{e:.1e} ({key})" for key, e in res.errors.items())
            log(f"exported {info.architecture}/{es.network} -> {res.path} ({res.size_bytes / 1e6:.2f} MB, opset {opset}, "
                f"{res.info.precision}{', EMA weights' if info.ema else ''}, step {info.step}"
                + (f", any height and width that are multiples of {info.size_multiple}" if info.dynamic_size else "") + ")")
            log(f"  onnx.checker ok; ONNX Runtime vs PyTorch max abs error {errs} <= {res.tolerance:g}"
                + (" (the float32 graph before quantisation)" if res.int8 else ""))
            if res.int8:
                log(f"  int8 vs float32 on {res.int8.samples} other inputs from the run's data: max abs diff "
                    f"{res.int8.max_abs:.4f}, mean abs diff {res.int8.mean_abs:.4f} (bound: mean <= {res.int8.bound:g}"
                    f"{'' if res.int8.scale == 1 else f' x {res.int8.scale:.3g}'})")
    return results


# -- int8 (ganzoo.deploy.quantize does the quantising; the run's data is read here, with torch) ------

INT8_SEED = 8128  # the calibration and check inputs: fixed, so a run always quantises the same way


def int8_inputs(parts, info: ModelInfo, n: int, part: int) -> tuple[dict[str, np.ndarray], str]:
    """Inputs of the kind the generator sees in use, from the run's data: ``part`` 0 calibrates, 1 checks
    (different inputs). Noise models: latent codes drawn as the runtime draws them (``make_z``), classes
    in turn for conditional ones; image-to-image: real training images of the domain it translates from,
    a fixed shuffle (calibration and check are disjoint when the domain holds at least ``2 n`` images)."""
    from .contract import make_z

    if not info.image_to_image:
        feeds: dict[str, np.ndarray] = {"z": make_z(n, info.latent_dim, INT8_SEED + part)}
        what = f"{n} latent codes N(0, 1) (ganzoo's make_z, seed {INT8_SEED + part})"
        if info.conditional:
            feeds["labels"] = ((np.arange(n) + part) % info.num_classes).astype(np.int64)
            what += f", classes 0..{info.num_classes - 1} in turn"
        return {k: feeds[k] for k in info.inputs}, what
    ds = parts.dataset
    b = info.direction.startswith("B")
    total = ds.len_b if b else len(ds)
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(INT8_SEED))
    idx = perm[part * n:(part + 1) * n] if total >= 2 * n else perm[:n]
    batch = ds.get(idx % len(ds), idx) if b else ds.get(idx)
    images = (batch.real_b if b else batch.real).float().cpu().numpy()
    return {"image": images}, f"{len(images)} real training images of domain {'B' if b else 'A'} of {info.dataset}"


def export_int8(parts, net: nn.Module, info: ModelInfo, path: str | Path, *, opset: int = DEFAULT_OPSET) -> ExportResult:
    """``--int8``: export ``net`` in float32 (verified as usual) to a temporary file, quantise it with
    :func:`ganzoo.deploy.quantize.quantize_generator` (calibrated on :func:`int8_inputs` part 0, checked
    on part 1) into ``path``; nothing is written when the int8 graph is off by more than the bound."""
    from .quantize import CALIBRATION_SAMPLES, CHECK_SAMPLES, QUANTIZATION, quantize_generator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.fp32.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        base = export_network(net, info, tmp, opset=opset)
        calibration, note = int8_inputs(parts, base.info, CALIBRATION_SAMPLES, 0)
        check, _ = int8_inputs(parts, base.info, CHECK_SAMPLES, 1)
        info8 = replace(base.info, precision="int8", quantization=QUANTIZATION)
        _, report = quantize_generator(tmp, path, calibration, check, info8.to_metadata(),
                                       image=info8.output_kind == "image", calibration_note=note,
                                       doc=f"ganzoo {info8.architecture}/{info8.network}: {info8.describe()}")
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(info.network, path, info8, base.errors, base.tolerance, path.stat().st_size, int8=report)


def _record(run_dir: Path, res: ExportResult) -> None:
    """Keep the parity figures beside the file (RUN_DIR/exports.json) for report.html."""
    from ..report.html import refresh_report
    from ..report.runinfo import record_export

    record_export(run_dir, res.path, {
        "network": res.info.network, "step": res.info.step, "precision": res.info.precision, "opset": res.info.opset,
        "errors": {str(n): e for n, e in res.errors.items()}, "tolerance": res.tolerance,
    })
    refresh_report(run_dir)
