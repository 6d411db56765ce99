"""The ONNX I/O contract of a ganzoo generator: the metadata every exported file carries
(:class:`ModelInfo`, keys :data:`CONTRACT_KEYS`) and the inputs it takes (latent codes from a seed,
labels, images), validated the same way for ONNX Runtime and PyTorch. See docs/export.md and
../shared/DESIGN.md. numpy only: no torch, no onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from ..errors import GanzooError

# -- the metadata contract -----------------------------------------------------------------------

#: metadata_props keys every ganzoo generator carries (all values are strings; JSON where noted).
CONTRACT_KEYS = (
    "ganzoo_version", "architecture", "network", "plugin", "plugin_dist", "plugin_version", "inputs", "output",
    "output_kind", "latent_dim", "num_classes", "class_names", "channels", "height", "width", "dim",
    "value_range", "dataset", "data_kind", "step", "opset", "ema", "precision", "direction", "quantization",
    "size_multiple", "min_size", "activation_floats",
)


@dataclass(frozen=True)
class ModelInfo:
    """What an exported generator is, read from (and written to) its ONNX ``metadata_props``."""

    architecture: str
    network: str
    inputs: tuple[str, ...]  # ONNX input names: ("z",), ("z", "labels") or ("image",)
    output: str  # ONNX output name: "image", "points" (or "image_out" for image-to-image)
    output_kind: str  # "image" or "points"
    latent_dim: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    channels: int = 0
    height: int = 0  # the training size (a fixed-size model takes only this size)
    width: int = 0
    dim: int = 0  # points: 2
    value_range: tuple[float, float] | None = (-1.0, 1.0)
    dataset: str = ""
    data_kind: str = ""
    step: int = 0
    opset: int = 0
    ema: bool = False
    precision: str = "float32"  # float32, float16 (--fp16) or int8 (--int8)
    direction: str = ""  # image-to-image: "AB" or "BA"
    quantization: str = ""  # "int8-qdq" for --int8 files (ganzoo.deploy.quantize), else empty
    ganzoo_version: str = ""
    plugin: str = ""  # the entry point that provided the architecture
    plugin_dist: str = ""  # its distribution
    plugin_version: str = ""
    # image-to-image models exported with symbolic height and width: any H and W that are multiples of
    # ``size_multiple`` (2^downsamplings) and at least ``min_size``; 0 (and files from before): fixed H x W
    size_multiple: int = 0
    min_size: int = 0
    # the largest activation of the network, in floats per input pixel (0: unknown): the basis of
    # the memory estimate of ``ganzoo translate`` for large images
    activation_floats: int = 0

    # -- derived ----------------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        return "labels" in self.inputs

    @property
    def image_to_image(self) -> bool:
        return "image" in self.inputs

    @property
    def dynamic_size(self) -> bool:
        """True when the model takes any height and width that :meth:`size_error` accepts."""
        return self.image_to_image and self.size_multiple > 0

    def size_error(self, height: int, width: int) -> str:
        """Why this model cannot take an ``height x width`` image ("" when it can)."""
        if not self.dynamic_size:
            if (height, width) != (self.height, self.width):
                return f"this model takes {self.height}x{self.width} images only (it was exported at a fixed size)"
            return ""
        m, lo = self.size_multiple, max(self.min_size, self.size_multiple)
        if height % m or width % m:
            return f"height and width must be multiples of {m} (the network downsamples by {m})"
        if height < lo or width < lo:
            return f"height and width must be at least {lo} px"
        return ""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.dim,) if self.output_kind == "points" else (self.channels, self.height, self.width)

    def describe(self) -> str:
        what = {True: "image-to-image", False: "conditional" if self.conditional else "unconditional"}[self.image_to_image]
        shape = "x".join(map(str, self.sample_shape))
        if self.dynamic_size:
            shape = f"any HxW, multiples of {self.size_multiple}; trained at {shape}"
        return (f"{self.architecture}/{self.network} ({what}, {self.output_kind} {shape}, "
                f"{self.dataset}, step {self.step}{', EMA' if self.ema else ''}, {self.precision})")

    # -- (de)serialisation --------------------------------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) or value is None:
                out[f.name] = json.dumps(list(value) if value is not None else None)
            elif isinstance(value, bool):
                out[f.name] = "true" if value else "false"
            else:
                out[f.name] = str(value)
        return out

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> "ModelInfo":
        if "ganzoo_version" not in meta or "architecture" not in meta:
            raise GanzooError(
                f"{source} is not a ganzoo generator (no ganzoo metadata in the ONNX file); "
                "export one with 'ganzoo export RUN_DIR --onnx'"
            )
        kw: dict[str, Any] = {}
        try:
            for f in fields(cls):
                if f.name not in meta:
                    continue
                text = meta[f.name]
                if f.name in ("inputs", "class_names"):
                    kw[f.name] = tuple(str(x) for x in json.loads(text))
                elif f.name == "value_range":
                    v = json.loads(text)
                    kw[f.name] = None if v is None else (float(v[0]), float(v[1]))
                elif f.name == "ema":
                    kw[f.name] = text.lower() == "true"
                elif f.type in ("int", int):
                    kw[f.name] = int(text)
                else:
                    kw[f.name] = text
            info = cls(**kw)
        except (TypeError, ValueError, IndexError) as exc:
            raise GanzooError(f"{source} has damaged ganzoo metadata ({exc}); export it again") from None
        if info.output_kind not in ("image", "points") or not info.inputs:
            raise GanzooError(f"{source} has damaged ganzoo metadata (inputs {info.inputs}, output {info.output_kind}); export it again")
        return info


# -- inputs ---------------------------------------------------------------------------------------

def make_z(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """The latent codes every ganzoo sampling path uses: ``[n, latent_dim]`` float32 N(0, 1).

    Defined in numpy so the ONNX path and the PyTorch path draw the same z for the same seed."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim), dtype=np.float32)


def class_rows(num_classes: int, n: int) -> np.ndarray:
    """Labels for one row per class: ``max(1, n // num_classes)`` samples of each class, in order."""
    per = max(1, n // num_classes)
    return np.repeat(np.arange(num_classes, dtype=np.int64), per)


def iter_z(n: int, latent_dim: int, seed: int = 0, batch: int = 256):
    """:func:`make_z` ``(n, latent_dim, seed)`` in consecutive slices of at most ``batch`` rows, drawn from
    one stream: the concatenation equals ``make_z(n, latent_dim, seed)`` (tested), without holding all of it."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        yield rng.standard_normal((min(batch, n - start), latent_dim), dtype=np.float32)


def example_inputs(info: ModelInfo, n: int, seed: int = 0, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Deterministic inputs of batch ``n`` that satisfy the contract (for export and verification);
    ``size`` ``(height, width)``: image inputs of that size instead of the training size."""
    rng = np.random.default_rng(seed + 1000)
    h, w = size or (info.height, info.width)
    out: dict[str, np.ndarray] = {}
    for name in info.inputs:
        if name == "z":
            out[name] = make_z(n, info.latent_dim, seed)
        elif name == "labels":
            out[name] = (np.arange(n, dtype=np.int64) + seed) % max(1, info.num_classes)
        else:
            out[name] = rng.uniform(-1, 1, (n, info.channels, h, w)).astype(np.float32)
    return out


def check_inputs(info: ModelInfo, feeds: Mapping[str, Any], source: str = "model") -> int:
    """Validate ``feeds`` against the model's contract; return the batch size. One clear error each."""
    missing = [k for k in info.inputs if feeds.get(k) is None]
    if missing:
        raise GanzooError(f"{source} needs input(s) {', '.join(info.inputs)}; missing {', '.join(missing)}")
    extra = [k for k, v in feeds.items() if v is not None and k not in info.inputs]
    if extra:
        raise GanzooError(f"{source} takes {', '.join(info.inputs)}, not {', '.join(extra)}")
    batch = None
    for name in info.inputs:
        x = feeds[name]
        if not isinstance(x, np.ndarray):
            raise GanzooError(f"input '{name}' must be a numpy array, got {type(x).__name__}")
        if name == "z":
            want, dtype = (info.latent_dim,), np.float32
        elif name == "labels":
            want, dtype = (), np.int64
        elif info.dynamic_size:
            want, dtype = (info.channels, "H", "W"), np.float32
        else:
            want, dtype = (info.channels, info.height, info.width), np.float32
        shape = "[N" + "".join(f", {d}" for d in want) + "]"
        if x.ndim != 1 + len(want) or any(isinstance(d, int) and d != got for d, got in zip(want, x.shape[1:])):
            raise GanzooError(f"input '{name}' must have shape {shape}, got {list(x.shape)}")
        if name == "image" and info.dynamic_size and info.size_error(*x.shape[2:]):
            raise GanzooError(f"input 'image' is {x.shape[2]}x{x.shape[3]}: {info.size_error(*x.shape[2:])}; "
                              "reflect-pad it (ganzoo translate does)")
        if x.dtype != dtype:
            raise GanzooError(
                f"input '{name}' must be {np.dtype(dtype).name}, got {x.dtype.name}; convert it with .astype(np.{np.dtype(dtype).name})"
            )
        if x.shape[0] < 1:
            raise GanzooError(f"input '{name}' is empty: the batch size must be at least 1")
        if batch is not None and x.shape[0] != batch:
            raise GanzooError(f"inputs disagree on the batch size: {batch} vs {x.shape[0]} ('{name}')")
        batch = int(x.shape[0])
        if name == "labels":
            bad = x[(x < 0) | (x >= info.num_classes)]
            if bad.size:
                raise GanzooError(
                    f"label {int(bad[0])} is out of range: this model knows classes 0..{info.num_classes - 1}"
                    + (f" ({', '.join(info.class_names)})" if info.class_names and len(info.class_names) <= 20 else "")
                )
        elif not np.isfinite(x).all():
            raise GanzooError(f"input '{name}' contains NaN or infinite values")
        elif name == "image" and (x.min() < -1.001 or x.max() > 1.001):
            raise GanzooError(
                f"input 'image' must be in [-1, 1], got values in [{x.min():.3g}, {x.max():.3g}]; "
                "scale 0..255 pixels with x / 127.5 - 1"
            )
    assert batch is not None
    return batch
