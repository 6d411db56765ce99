"""Inference from an exported ganzoo ``.onnx`` file with onnxruntime and numpy only (no torch).

A generator exported by ``ganzoo export`` carries everything a consumer needs in its metadata
(see :class:`ModelInfo` and docs/export.md), so shipping it needs neither PyTorch nor ganzoo's
training code::

    from ganzoo.deploy.runtime import GanzooModel

    model = GanzooModel("generator.onnx", provider="auto")
    images = model.sample(16, seed=0)          # float32 [16, C, H, W] in [-1, 1]
    print(model.provider)                       # the provider that really runs: cpu, cuda, tensorrt

This module must never import torch, directly or through another ganzoo module: it only uses
``ganzoo.deploy.contract``, ``ganzoo.errors``, ``ganzoo.deploy.cpu_graph`` (onnx), numpy, onnxruntime and (for
pictures, lazily) pillow and matplotlib.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .contract import (  # noqa: F401  (the metadata contract and the inputs, re-exported for runtime users)
    CONTRACT_KEYS,
    ModelInfo,
    check_inputs,
    class_rows,
    example_inputs,
    make_z,
)
from ..errors import GanzooError
from .pictures import load_images, save_grid, save_points, to_uint8  # noqa: F401  (re-exported)


# -- sessions and providers -----------------------------------------------------------------------

PROVIDER_CHOICES = ("auto", "cpu", "cuda", "tensorrt")
_EP = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_SHORT = {v: k for k, v in _EP.items()}
OPT_LEVELS = ("disable", "basic", "extended", "all")
#: which graph a session runs: the exported one ("plain"), the CPU rewrite of :mod:`ganzoo.deploy.cpu_graph`
#: ("cpu"), or "auto": the CPU rewrite when the session runs on the CPU provider
GRAPHS = ("auto", "plain", "cpu")


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency
        raise GanzooError(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from None
    return onnxruntime


@contextlib.contextmanager
def _captured_output():
    """Capture what onnxruntime's C++ logger and Python prints write while a session is created."""
    buf = io.StringIO()
    saved = None
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            saved = os.dup(2)
            os.dup2(tmp.fileno(), 2)
        except (OSError, ValueError, AttributeError):  # no real fd 2 (some embedders): capture nothing
            saved = None
        try:
            with contextlib.redirect_stdout(buf):
                yield buf
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                buf.write(tmp.read().decode("utf-8", "replace"))


def _load_failure(log: str, ep: str) -> str:
    """The most useful line of why an execution provider did not load."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", log)
    m = re.search(r"with error: ([^\n]+)", clean)
    if m:
        return m.group(1).strip()
    m = re.search(r"(Please install [^\n]*?)(?: as mentioned|\n|$)", clean)
    if m:
        return m.group(1).strip()
    return f"{ep} could not be created"


def preload_cuda_libraries() -> None:
    """Ask onnxruntime to load CUDA/cuDNN libraries shipped as pip packages (or with PyTorch).
    Harmless where there are none; its messages are swallowed."""
    ort = _ort()
    fn = getattr(ort, "preload_dlls", None)
    if fn is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):
        with contextlib.suppress(Exception):
            fn()


def session_options(threads: int = 0, opt_level: str = "all", spinning: bool | None = None):
    ort = _ort()
    if opt_level not in OPT_LEVELS:
        raise GanzooError(f"graph optimisation level must be one of {', '.join(OPT_LEVELS)}, got '{opt_level}'")
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    if threads < 0:
        raise GanzooError(f"threads must be 0 (onnxruntime's default) or positive, got {threads}")
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


def open_session(path: str | Path, provider: str = "auto", *, allow_fallback: bool = False, threads: int = 0,
                 opt_level: str = "all", spinning: bool | None = None, graph: str = "auto"):
    """Create an ONNX Runtime session on ``provider``; return ``(session, provider_that_runs, note,
    graph_that_runs)`` (``plain`` or ``cpu``).

    ``provider`` is ``cpu``, ``cuda``, ``tensorrt`` or ``auto`` (TensorRT is never picked by auto: it
    builds an engine per shape, minutes on first use). ``graph`` (:data:`GRAPHS`): on the CPU provider
    ``auto`` runs the exact rewrite of :mod:`ganzoo.deploy.cpu_graph` (transposed convolutions as faster
    convolutions); ``plain`` runs the file as exported. onnxruntime-gpu lists CUDA as available even when
    its libraries are missing and then quietly runs on CPU: here that is an error unless
    ``allow_fallback``, in which case ``note`` says what happened.
    """
    ort = _ort()
    if provider not in PROVIDER_CHOICES:
        raise GanzooError(f"unknown provider '{provider}'; choose one of: {', '.join(PROVIDER_CHOICES)}")
    if graph not in GRAPHS:
        raise GanzooError(f"unknown graph '{graph}'; choose one of: {', '.join(GRAPHS)}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise GanzooError(f"model file {path} does not exist; export one with 'ganzoo export RUN_DIR --onnx'")
    available = ort.get_available_providers()
    if provider == "auto":
        wanted = [ep for ep in ("CUDAExecutionProvider", "CPUExecutionProvider") if ep in available]
    elif provider == "cpu":
        wanted = ["CPUExecutionProvider"]
    else:
        chain = ["TensorrtExecutionProvider"] if provider == "tensorrt" else []
        chain += ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if _EP[provider] not in available:
            msg = (f"provider '{provider}' is not in this onnxruntime build (it has {', '.join(_SHORT.get(a, a) for a in available)}); "
                   "install onnxruntime-gpu for cuda/tensorrt")
            if not allow_fallback:
                raise GanzooError(msg + ", or pass --allow-fallback to run on CPU")
            chain = ["CPUExecutionProvider"]
        wanted = [ep for ep in chain if ep in available]
    if any(ep != "CPUExecutionProvider" for ep in wanted):
        preload_cuda_libraries()
    so = session_options(threads, opt_level, spinning)
    graph_note, graph_ran = "", "plain"

    def create(source: str | bytes, providers: list[str]):
        with _captured_output() as log:
            try:
                return ort.InferenceSession(source, sess_options=so, providers=providers), log.getvalue()
            except Exception as exc:  # onnxruntime raises its own exception types for bad files
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise GanzooError(f"{path} is not a loadable ONNX model ({first[:200]})") from None

    def cpu_source() -> bytes | None:
        nonlocal graph_note, graph_ran
        from .cpu_graph import cpu_graph_bytes

        rewritten, graph_note = cpu_graph_bytes(p)
        graph_ran = "cpu" if rewritten is not None else "plain"
        return rewritten

    rewritten = cpu_source() if graph == "cpu" or (graph == "auto" and wanted == ["CPUExecutionProvider"]) else None
    sess, log = create(rewritten if rewritten is not None else str(p), wanted)
    running = sess.get_providers()
    ran = _SHORT.get(running[0], running[0]) if running else "cpu"
    note = ""
    if provider in ("cuda", "tensorrt") and ran != provider:
        why = _load_failure(log, _EP[provider])
        note = f"provider '{provider}' did not load ({why}); running on {ran}"
        if not allow_fallback:
            raise GanzooError(
                f"provider '{provider}' is listed by onnxruntime but did not load ({why}); "
                "install CUDA 13 / cuDNN 9 (or TensorRT) libraries, use --provider cpu, or pass --allow-fallback"
            )
    if graph == "auto" and ran == "cpu" and wanted != ["CPUExecutionProvider"]:
        # 'auto' asked for CUDA first and landed on the CPU: run the CPU graph there too
        rewritten = cpu_source()
        if rewritten is not None:
            sess, _ = create(rewritten, ["CPUExecutionProvider"])
    if graph_note:
        note = f"{note}; {graph_note}" if note else graph_note
    return sess, ran, note, graph_ran


# -- the model ------------------------------------------------------------------------------------

@dataclass
class GanzooModel:
    """A ganzoo generator loaded from ONNX. ``provider`` and ``graph`` (after loading) name what really
    runs: the provider, and ``plain`` (the file as exported) or ``cpu`` (:mod:`ganzoo.deploy.cpu_graph`).

    ``batch_parallel`` (CPU only): also open one single-thread session per thread and run a batch of
    at least that many as slices side by side (onnxruntime releases the GIL), so that its
    single-threaded operators (InstanceNormalization, Pad, layout reorders) run on every core;
    smaller batches use the multi-thread session. ``sessions`` says how many run a large batch."""

    path: str | Path
    provider: str = "auto"
    allow_fallback: bool = False
    threads: int = 0
    opt_level: str = "all"
    spinning: bool | None = None
    graph: str = "auto"
    batch_parallel: bool = False
    info: ModelInfo = field(init=False)
    note: str = field(init=False, default="")
    skipped: str = field(init=False, default="")  # an optimisation left out (no onnx package): a note, not a warning
    sessions: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        self.requested = self.provider
        wanted_graph = self.graph
        self.session, self.provider, self.note, self.graph = open_session(
            self.path, self.provider, allow_fallback=self.allow_fallback, threads=self.threads,
            opt_level=self.opt_level, spinning=self.spinning, graph=self.graph,
        )
        from .cpu_graph import NO_ONNX_NOTE, onnx_available

        if self.provider == "cpu" and wanted_graph != "plain" and not onnx_available():
            self.skipped = NO_ONNX_NOTE
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_metadata(meta, source=str(self.path))
        names = [i.name for i in self.session.get_inputs()]
        if sorted(names) != sorted(self.info.inputs):
            raise GanzooError(f"{self.path}: its inputs {names} do not match its metadata {list(self.info.inputs)}; export it again")
        self._parts: list = []
        n = self.threads or os.cpu_count() or 1
        if self.batch_parallel and self.provider == "cpu" and n > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._parts = [open_session(self.path, "cpu", threads=1, opt_level=self.opt_level, spinning=self.spinning,
                                        graph=self.graph)[0] for _ in range(n)]
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="ganzoo-ort")
            self.sessions = n

    @property
    def providers(self) -> list[str]:
        """onnxruntime's own list of the providers this session really uses."""
        return list(self.session.get_providers())

    def run(self, z: np.ndarray | None = None, labels: np.ndarray | None = None, image: np.ndarray | None = None) -> np.ndarray:
        feeds = {"z": z, "labels": labels, "image": image}
        check_inputs(self.info, feeds, source=str(self.path))
        return self.forward({k: feeds[k] for k in self.info.inputs})

    def forward(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run inputs already checked (``run`` checks them first); with ``batch_parallel``, a batch of
        at least ``sessions`` rows is split into that many slices run side by side."""
        batch = len(next(iter(feeds.values())))
        if not self._parts or batch < len(self._parts):
            return self.session.run([self.info.output], feeds)[0]
        cuts = np.array_split(np.arange(batch), len(self._parts))
        jobs = [self._pool.submit(sess.run, [self.info.output], {k: v[c[0]:c[-1] + 1] for k, v in feeds.items()})
                for sess, c in zip(self._parts, cuts)]
        return np.concatenate([j.result()[0] for j in jobs])

    __call__ = run

    def sample(self, n: int, seed: int = 0, label: int | None = None) -> np.ndarray:
        """``n`` samples from seed ``seed`` (class ``label`` for conditional models, else random classes)."""
        return self.run(**sample_inputs(self.info, n, seed, label))


def sample_inputs(info: ModelInfo, n: int, seed: int = 0, label: int | None = None, per_class: bool = False) -> dict[str, np.ndarray]:
    """The inputs ``ganzoo sample`` feeds a noise model (identical for the ONNX and the PyTorch path).

    Conditional models: ``label`` for all, or with ``per_class`` one row per class, else classes drawn
    from the same seed."""
    if info.image_to_image:
        raise GanzooError(f"{info.architecture}/{info.network} translates images: pass --input IMAGE_OR_FOLDER")
    if n < 1:
        raise GanzooError(f"-n must be at least 1, got {n}")
    if not info.conditional:
        if label is not None:
            raise GanzooError(f"--label applies to conditional models; {info.architecture} takes no labels")
        return {"z": make_z(n, info.latent_dim, seed)}
    if label is not None:
        labels = np.full(n, label, np.int64)
    elif per_class:
        labels = class_rows(info.num_classes, n)
    else:
        labels = np.random.default_rng(seed + 1).integers(0, info.num_classes, n).astype(np.int64)
    return {"z": make_z(len(labels), info.latent_dim, seed), "labels": labels}
