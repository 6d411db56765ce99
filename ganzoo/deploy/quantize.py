"""Static int8 quantisation (QDQ) of an exported generator, for CPU inference.

``ganzoo export RUN --onnx --int8`` exports the float32 generator as usual, then calls
:func:`quantize_generator`: ONNX Runtime's ``quantize_static`` in the QDQ format (QuantizeLinear /
DequantizeLinear pairs around every quantisable operator, which ONNX Runtime's CPU provider fuses into
integer kernels such as ``QLinearConv``), weights int8 per output channel, activations uint8 with
ranges calibrated (MinMax) on inputs from the run's own data -- latent codes drawn exactly as the
runtime draws them for noise models, real training images for image-to-image models -- fed by
:class:`FeedsReader`. What is quantised is the runtime's exact CPU rewrite of the graph
(:mod:`ganzoo.deploy.cpu_graph`: transposed convolutions as phase convolutions, which have integer
kernels) when it applies; the rewrite then leaves the quantised file alone. :func:`parity` then runs the float32 and the int8 file on *other* inputs of the
same kind and reports the max and mean absolute difference; the export is refused when the mean
exceeds :data:`MEAN_ABS_BOUND` (see docs/export.md for how that bound was chosen).

Reference: ONNX Runtime, "Quantize ONNX models" (static quantisation, QDQ format, per-channel).
Only onnx, onnxruntime and numpy are used here (no torch).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from ..errors import GanzooError

QUANTIZATION = "int8-qdq"  # the metadata value that marks a file as int8
#: the operators that make a graph "quantised": the cpu_graph rewrite leaves such graphs alone
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                       "MatMulInteger", "DynamicQuantizeLinear", "QLinearAdd", "QLinearMul", "QGemm"})
#: refusal bound: mean |int8 - float32| over the check inputs, in the output's units relative to its
#: scale (images: [-1, 1] pixel units, 0.05 = 6.4 of 255 grey levels; points: the float32 points' std).
#: Chosen from benchmarks/int8.py (docs/export.md): trained digits generators (DCGAN, both CycleGAN
#: directions) quantise to 0.005-0.008 with ganzoo's metrics unchanged within their noise (classifier FD
#: -0.1% / +1.6%, IS +0.01, label preservation -0.1 point); 0.05 leaves a ~6x margin for other data, and
#: refuses e.g. a 2-step (barely trained) 128 px CycleGAN, at 0.056.
MEAN_ABS_BOUND = 0.05
CALIBRATION_SAMPLES = 256  # inputs the activation ranges are calibrated on
CHECK_SAMPLES = 256  # other inputs the quality check runs on
CALIBRATION_BATCH = 32


@dataclass
class Int8Report:
    """What :func:`parity` measured: int8 vs float32 on ``samples`` check inputs."""

    max_abs: float
    mean_abs: float
    scale: float  # the output's scale the bound is relative to (1 for images in [-1, 1])
    bound: float
    samples: int

    @property
    def relative_mean(self) -> float:
        return self.mean_abs / self.scale

    @property
    def passed(self) -> bool:
        return bool(self.relative_mean <= self.bound)  # NaN fails

    def metadata(self) -> dict[str, str]:
        return {"int8_max_abs_diff": f"{self.max_abs:.6g}", "int8_mean_abs_diff": f"{self.mean_abs:.6g}",
                "int8_bound": f"mean abs diff / {self.scale:.6g} <= {self.bound:g}",
                "int8_check_samples": str(self.samples)}


class FeedsReader:
    """An ONNX Runtime ``CalibrationDataReader`` over in-memory inputs: ``feeds`` maps each ONNX input
    name to an array whose first axis is the sample; it yields them ``batch`` samples at a time."""

    def __init__(self, feeds: Mapping[str, np.ndarray], batch: int = CALIBRATION_BATCH):
        sizes = {len(v) for v in feeds.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise GanzooError(f"calibration inputs must share one non-zero batch size, got {sorted(sizes)}")
        self.feeds, self.batch, self.n = dict(feeds), int(batch), sizes.pop()
        self._it: Iterator[dict[str, np.ndarray]] = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(0, self.n, self.batch):
            yield {k: np.ascontiguousarray(v[i:i + self.batch]) for k, v in self.feeds.items()}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._batches()


def op_counts(model) -> Counter:
    """How many nodes of each operator type a graph (``onnx.ModelProto``) has."""
    return Counter(n.op_type for n in model.graph.node)


def is_quantized(model) -> bool:
    """True when the graph holds quantisation operators (QDQ pairs or integer kernels)."""
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


@contextlib.contextmanager
def _quiet():
    """onnxruntime.quantization logs a pre-processing hint and per-tensor notes: keep the CLI readable."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def quantize_model(model, calibration: Mapping[str, np.ndarray], *, per_channel: bool = True):
    """Return the int8 QDQ version of ``model`` (an ``onnx.ModelProto`` in float32), its activation
    ranges calibrated on ``calibration`` (ONNX input name -> array, first axis the sample)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class _Reader(FeedsReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="ganzoo-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        try:
            with _quiet():
                quantize_static(
                    str(src), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
                )
        except GanzooError:
            raise
        except Exception as exc:  # noqa: BLE001  (onnxruntime.quantization raises many types)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise GanzooError(f"int8 quantisation failed ({type(exc).__name__}: {first[:200]}); export without --int8") from None
        out = onnx.load(str(dst))
    if not is_quantized(out):
        raise GanzooError("int8 quantisation changed nothing (no operator ONNX Runtime can quantise); export without --int8")
    return out


def _session(source):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(source if isinstance(source, (str, bytes)) else str(source), sess_options=so,
                                providers=["CPUExecutionProvider"])


def _run_all(sess, feeds: Mapping[str, np.ndarray], output: str, batch: int = 64) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    return np.concatenate([sess.run([output], {k: v[i:i + batch] for k, v in feeds.items()})[0] for i in range(0, n, batch)])


def parity(fp32, int8, feeds: Mapping[str, np.ndarray], output: str, *, image: bool, bound: float | None = None) -> Int8Report:
    """Run the float32 and the int8 graph (paths or serialized bytes) on ``feeds`` with ONNX Runtime's
    CPU provider; max and mean abs difference, and the scale the bound is relative to (1 for images
    in [-1, 1], else the float32 outputs' standard deviation)."""
    ref = _run_all(_session(fp32), feeds, output).astype(np.float64)
    got = _run_all(_session(int8), feeds, output).astype(np.float64)
    diff = np.abs(got - ref)
    scale = 1.0 if image else float(ref.std()) or 1.0
    return Int8Report(max_abs=float(diff.max()), mean_abs=float(diff.mean()), scale=scale,
                      bound=MEAN_ABS_BOUND if bound is None else float(bound), samples=len(ref))


def quantize_generator(fp32_path: str | Path, out_path: str | Path, calibration: Mapping[str, np.ndarray],
                       check: Mapping[str, np.ndarray], metadata: Mapping[str, str], *, image: bool,
                       calibration_note: str = "", doc: str = "", per_channel: bool = True,
                       cpu_graph: bool = True) -> tuple[Path, Int8Report]:
    """Quantise the verified float32 export ``fp32_path`` into ``out_path``.

    ``calibration`` calibrates the activation ranges; ``check`` (other inputs of the same kind) measures
    int8 vs float32. ``metadata`` (the float32 file's contract, with ``precision`` and ``quantization``
    already set for int8) is written with the parity figures. With ``cpu_graph`` the exact CPU rewrite
    of :mod:`ganzoo.deploy.cpu_graph` is quantised (transposed convolutions as phase convolutions, which
    ONNX Runtime runs as ``QLinearConv``; it has no integer transposed convolution), recorded as
    ``int8_graph`` = ``cpu`` (else ``plain``). Raises :class:`GanzooError`, writing
    nothing, when the mean abs difference exceeds :data:`MEAN_ABS_BOUND` or quantisation fails; the file
    is written under a temporary name and renamed into place once it passed."""
    import onnx

    model = onnx.load(str(fp32_path))
    output = model.graph.output[0].name
    source, graph = model, "plain"
    if cpu_graph:
        from .cpu_graph import rewrite_for_cpu

        try:
            rewrite = rewrite_for_cpu(model)
        except Exception:  # noqa: BLE001  (an optimisation, never a requirement: quantise the plain graph)
            rewrite = None
        if rewrite is not None and rewrite.changes:
            source, graph = rewrite.model, "cpu"
    q = quantize_model(source, calibration, per_channel=per_channel)
    report = parity(str(fp32_path), q.SerializeToString(), check, output, image=image)
    if not report.passed:
        unit = "in [-1, 1] pixel units" if image else f"relative to the output's std {report.scale:.3g}"
        raise GanzooError(
            f"int8 quantisation is too lossy for this generator: mean abs difference to float32 "
            f"{report.relative_mean:.4f} {unit} (max {report.max_abs:.3f}) > bound {report.bound:g}; not written -- "
            "export float32 (without --int8)"
        )
    del q.metadata_props[:]
    meta = {**metadata, "quantization": QUANTIZATION, "int8_graph": graph, **report.metadata()}
    if calibration_note:
        meta["int8_calibration"] = calibration_note
    for key, value in meta.items():
        q.metadata_props.add(key=key, value=str(value))
    q.doc_string = doc or f"{model.doc_string} [int8 QDQ]"
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".tmp.onnx", dir=out_path.parent)
    os.close(fd)
    try:
        onnx.save(q, tmp)
        onnx.checker.check_model(tmp)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path, report
