"""Exact rewrites of a generator's ONNX graph that run faster on ONNX Runtime's CPU provider.

ONNX Runtime's CPU ``ConvTranspose`` runs a GEMM per image and then scatters the columns back into the
image (col2im); its ``Conv`` has blocked-layout (NCHWc) kernels that are much faster. Two rewrites
turn transposed convolutions into those, a third reshapes convolutions too narrow for them, without
changing what the graph computes (only the order of the floating-point sums, ~1e-7):

* **phases**: a stride-``s`` transposed convolution whose output is exactly ``s`` times its input
  (DCGAN's kernel 4, stride 2, pad 1; CycleGAN's kernel 3, stride 2, pad 1, output padding 1) is
  ``s * s`` ordinary convolutions, one per output phase, each with the taps of that phase, then
  interleaved. An element-wise activation right after it (``Relu``, ``LeakyRelu``, ``Tanh``,
  ``Sigmoid``) moves onto each phase, where ONNX Runtime fuses it into the convolution. The
  interleave runs channels-last: each phase is transposed to NHWC (ONNX Runtime folds that into the
  convolution's layout reorder), then ``Concat`` and a ``Transpose`` that moves whole pixels of C
  floats, and back to NCHW -- 3-4x cheaper than ``DepthToSpace``, which moves single floats. When
  the feature map's size is known only at run time (a dynamic-size export), the reshapes take it from
  a ``Shape`` of the first phase. Every rewrite here is exact at any input size: the phase and row
  convolutions pad as the original does, and the 1x1-input rewrite is applied only where the input is
  statically 1x1. Layers with fewer than
  ``min_channels`` outputs (an RGB output layer) are left alone: too narrow for the blocked kernels.
* **matmul**: a transposed convolution of a 1x1 input (the code ``z`` projected to the first feature
  map) is a ``MatMul`` with the reshaped weight.
* **rows**: a convolution with fewer than ``NARROW`` outputs and a ``kh x kw`` kernel (CycleGAN's 7x7
  RGB output layer) wastes most of the blocked kernels, which pad the outputs to a block of 8 or 16.
  It becomes a ``1 x kw`` convolution with ``kh * Cout`` outputs (one group per kernel row) and a
  ``kh x 1`` convolution that adds each row's group at its vertical offset (one-hot weights, the
  original bias; a following activation still fuses into it). CycleGAN at 128 px: 7.2 ms -> 3.2 ms
  per image for that layer.

Quantised graphs (``ganzoo export --int8``, QuantizeLinear/DequantizeLinear pairs) are left exactly as
they are: ONNX Runtime fuses the pairs into integer kernels, and a rewrite here would cut them apart.

Only onnx and numpy are needed (no torch): :func:`ganzoo.deploy.runtime.open_session` applies this for
``--graph cpu``; the exported file itself stays the plain graph of the PyTorch network.
Measured in ``benchmarks/onnx_zoo.py`` (its ``all+plain-graph`` variant is the exported graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .quantize import QUANT_OPS

ELEMENTWISE = ("Relu", "LeakyRelu", "Tanh", "Sigmoid")
NARROW = 8  # a Conv with fewer outputs than this (and a kernel of 3x3 or more) is split into rows


@dataclass
class Rewrite:
    model: Any  # onnx.ModelProto
    changes: list[str] = field(default_factory=list)


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(model) -> dict[str, list[int | None]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, ValueError):  # an optimisation aid here, never a requirement
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _phase_plan(at: dict[str, Any], kernel: tuple[int, int]) -> list[list[tuple[list[int], int, int]]] | None:
    """Per axis, for each output phase r: (kernel taps in convolution order, pad before, pad after);
    None when the layer is not an exact ``stride``-times upsampling this rewrite handles.

    Output ``o = s * i - pad_begin + t`` (tap ``t``), so phase ``r = o mod s`` reads the taps
    ``t = (r + pad_begin) mod s + j * s`` at input offsets ``hi - j``. The output is exactly ``s``
    times the input when ``kernel - pad_begin - pad_end + output_padding == s``."""
    strides = list(at.get("strides", [1, 1]))
    pads = list(at.get("pads", [0, 0, 0, 0]))
    extra = list(at.get("output_padding", [0, 0]))
    if (len(strides) != 2 or strides[0] != strides[1] or strides[0] < 2 or at.get("group", 1) != 1
            or list(at.get("dilations", [1, 1])) != [1, 1] or "output_shape" in at
            or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return None
    s = strides[0]
    plans = []
    for axis in (0, 1):
        k, p0, p1, op = kernel[axis], pads[axis], pads[axis + 2], extra[axis]
        if min(p0, p1, op) < 0 or k - p0 - p1 + op != s:
            return None
        axis_plan = []
        for r in range(s):
            t0 = (r + p0) % s
            n = len(range(t0, k, s))  # taps of this phase
            hi = (r + p0 - t0) // s  # largest input offset it reads
            before, after = n - 1 - hi, hi
            if n == 0 or before < 0:
                return None
            axis_plan.append(([t0 + (n - 1 - q) * s for q in range(n)], before, after))
        plans.append(axis_plan)
    return plans


class _Builder:
    """The new node list of a graph, and its new initializers."""

    def __init__(self, graph):
        self.graph = graph
        self.nodes: list = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output


def _as_matmul(gb: _Builder, node, base: str, w: np.ndarray, bias: np.ndarray | None) -> None:
    """ConvTranspose of a [N, Cin, 1, 1] input: [N, Cin] @ [Cin, Cout*kh*kw] (+ bias), reshaped."""
    cin, cout, kh, kw = w.shape
    x = gb.op("Reshape", [node.input[0], gb.const(f"{base}/mm_in_shape", np.array([-1, cin], np.int64))], f"{base}/mm_x")
    y = gb.op("MatMul", [x, gb.const(f"{base}/mm_weight", np.ascontiguousarray(w.reshape(cin, cout * kh * kw)))],
              f"{base}/mm_y")
    if bias is not None:
        y = gb.op("Add", [y, gb.const(f"{base}/mm_bias", np.repeat(bias.astype(w.dtype), kh * kw))], f"{base}/mm_yb")
    gb.op("Reshape", [y, gb.const(f"{base}/mm_out_shape", np.array([-1, cout, kh, kw], np.int64))], node.output[0])


def _as_rows(gb: _Builder, node, base: str, w: np.ndarray, pads: list[int]) -> None:
    """Conv [Cout, Cin, kh, kw] as a 1 x kw Conv to kh*Cout channels (channel dy*Cout + c holds kernel
    row dy of output c) and a kh x 1 Conv summing row dy's group at vertical offset dy."""
    cout, cin, kh, kw = w.shape
    rows = np.ascontiguousarray(w.transpose(2, 0, 1, 3).reshape(kh * cout, cin, 1, kw))
    gather = np.zeros((cout, kh * cout, kh, 1), w.dtype)
    for dy in range(kh):
        gather[np.arange(cout), dy * cout + np.arange(cout), dy, 0] = 1
    top, left, bottom, right = pads
    r = gb.op("Conv", [node.input[0], gb.const(f"{base}/rows_weight", rows)], f"{base}/rows",
              kernel_shape=[1, kw], pads=[0, left, 0, right])
    gb.op("Conv", [r, gb.const(f"{base}/sum_weight", gather)] + list(node.input[2:3]), node.output[0],
          kernel_shape=[kh, 1], pads=[top, 0, bottom, 0])


def _narrow_conv(n, inits, at) -> bool:
    if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits or len(inits[n.input[1]].dims) != 4:
        return False
    cout, _, kh, kw = inits[n.input[1]].dims
    flat = all(list(at.get(k, [1, 1])) == [1, 1] for k in ("strides", "dilations"))
    return (cout < NARROW and kh >= 3 and kw >= 3 and at.get("group", 1) == 1 and flat
            and at.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET") and len(at.get("pads", [0] * 4)) == 4)


def _as_phases(gb: _Builder, node, base: str, w: np.ndarray, bias: str | None, plan, act, final: str,
               in_hw: list[int | None]) -> str:
    """One Conv per output phase (``act`` applied to each), then the interleave into ``final``."""
    from onnx import helper

    s = len(plan[0])
    phases = []
    for a, (taps_h, bh, ah) in enumerate(plan[0]):
        for b, (taps_w, bw, aw) in enumerate(plan[1]):
            sub = np.ascontiguousarray(w[:, :, taps_h, :][:, :, :, taps_w].transpose(1, 0, 2, 3))  # [Cout, Cin, th, tw]
            out = gb.op("Conv", [node.input[0], gb.const(f"{base}/phase{a}{b}_weight", sub)] + ([bias] if bias else []),
                        f"{base}/phase{a}{b}", kernel_shape=[len(taps_h), len(taps_w)], pads=[bh, bw, ah, aw])
            if act is not None:
                gb.nodes.append(helper.make_node(act.op_type, [out], [f"{out}_act"], name=f"{out}_act", **_attrs(act)))
                out = f"{out}_act"
            phases.append(out)
    # channels-last: NHWC phases [N, 1, H, W, C] -> [N, s, s, H, W, C] -> [N, H, s, W, s, C] -> NCHW
    c = w.shape[1]
    axes = gb.const(f"{base}/axis1", np.array([1], np.int64))
    first = gb.op("Transpose", [phases[0]], f"{phases[0]}_nhwc", perm=[0, 2, 3, 1])
    nhwc = [gb.op("Unsqueeze", [first if i == 0 else gb.op("Transpose", [ph], f"{ph}_nhwc", perm=[0, 2, 3, 1]), axes],
                  f"{ph}_u") for i, ph in enumerate(phases)]
    if len(in_hw) == 2 and all(in_hw):
        h, wd = in_hw
        shape6 = gb.const(f"{base}/shape6", np.array([-1, s, s, h, wd, c], np.int64))
        shape4 = gb.const(f"{base}/shape4", np.array([-1, s * h, s * wd, c], np.int64))
    else:  # height and width known only at run time (a dynamic-size export): shapes from the phase's shape
        hw = gb.op("Shape", [first], f"{base}/phase_hw", start=1, end=3)
        shape6 = gb.op("Concat", [gb.const(f"{base}/shape6_head", np.array([-1, s, s], np.int64)), hw,
                                  gb.const(f"{base}/shape6_tail", np.array([c], np.int64))], f"{base}/shape6", axis=0)
        shape4 = gb.op("Concat", [gb.const(f"{base}/shape4_head", np.array([-1], np.int64)),
                                  gb.op("Mul", [hw, gb.const(f"{base}/stride2", np.array([s, s], np.int64))], f"{base}/out_hw"),
                                  gb.const(f"{base}/shape4_tail", np.array([c], np.int64))], f"{base}/shape4", axis=0)
    x = gb.op("Reshape", [gb.op("Concat", nhwc, f"{base}/phases", axis=1), shape6], f"{base}/phases6")
    x = gb.op("Transpose", [x], f"{base}/interleave", perm=[0, 3, 1, 4, 2, 5])
    x = gb.op("Reshape", [x, shape4], f"{base}/nhwc")
    gb.op("Transpose", [x], final, perm=[0, 3, 1, 2])
    return "channels-last interleave" + ("" if len(in_hw) == 2 and all(in_hw) else " (run-time sizes)")


def rewrite_for_cpu(model, min_channels: int = 16) -> Rewrite:
    """A copy of ``model`` with the rewrites above; ``changes`` says what was rewritten (empty: the
    graph had nothing to rewrite)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    if any(n.op_type in QUANT_OPS for n in g.node):  # int8 (--int8): ONNX Runtime fuses its QDQ pairs itself
        return Rewrite(model=model, changes=[])
    inits = {i.name: i for i in g.initializer}
    shapes = _static_shapes(model)
    consumers: dict[str, list] = {}
    for nd in g.node:
        for i in nd.input:
            consumers.setdefault(i, []).append(nd)
    graph_outputs = {o.name for o in g.output}
    gb = _Builder(g)
    absorbed: set[int] = set()
    changes: list[str] = []
    for n in g.node:
        if id(n) in absorbed:
            continue
        at = _attrs(n)
        if _narrow_conv(n, inits, at):
            w = numpy_helper.to_array(inits[n.input[1]])
            base = n.name or n.output[0]
            _as_rows(gb, n, base, w, list(at.get("pads", [0, 0, 0, 0])))
            changes.append(f"{base}: Conv with {w.shape[0]} outputs, {w.shape[2]}x{w.shape[3]} kernel -> "
                           f"1x{w.shape[3]} Conv to {w.shape[0] * w.shape[2]} channels + {w.shape[2]}x1 sum")
            continue
        if n.op_type != "ConvTranspose" or len(n.input) < 2 or n.input[1] not in inits:
            gb.nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]])  # [Cin, Cout, kh, kw]
        bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
        in_hw = shapes.get(n.input[0], [None] * 4)[2:]
        base = n.name or n.output[0]
        if w.ndim != 4:
            gb.nodes.append(n)
            continue
        if (in_hw == [1, 1] and list(at.get("pads", [0, 0, 0, 0])) == [0, 0, 0, 0] and at.get("group", 1) == 1
                and list(at.get("output_padding", [0, 0])) == [0, 0] and list(at.get("dilations", [1, 1])) == [1, 1]
                and "output_shape" not in at and (bias is None or bias in inits)):
            _as_matmul(gb, n, base, w, numpy_helper.to_array(inits[bias]) if bias else None)
            changes.append(f"{base}: ConvTranspose of a 1x1 input -> MatMul")
            continue
        plan = _phase_plan(at, (w.shape[2], w.shape[3]))
        if plan is None or w.shape[1] < min_channels:
            gb.nodes.append(n)
            continue
        follow = consumers.get(n.output[0], [])
        act = follow[0] if (len(follow) == 1 and follow[0].op_type in ELEMENTWISE
                            and n.output[0] not in graph_outputs) else None
        how = _as_phases(gb, n, base, w, bias, plan, act, act.output[0] if act is not None else n.output[0], in_hw)
        if act is not None:
            absorbed.add(id(act))
        s = len(plan[0])
        changes.append(f"{base}: stride-{s} ConvTranspose -> {s * s} phase Conv + {how}"
                       + (f" ({act.op_type} fused per phase)" if act is not None else ""))
    if not changes:
        return Rewrite(model=model, changes=[])
    del g.node[:]
    g.node.extend(gb.nodes)
    used = {i for nd in g.node for i in nd.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(model)
    return Rewrite(model=model, changes=changes)


#: what a session without the onnx package (the torch-free install) skips; said once, as a note
NO_ONNX_NOTE = "the faster CPU graph rewrite is skipped: it needs the onnx package (pip install onnx)"


def onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def cpu_graph_bytes(path) -> tuple[bytes | None, str]:
    """The rewrite of the ONNX file ``path`` as bytes for ``onnxruntime.InferenceSession``, or None when
    it changes nothing or cannot be made; then the second item says why (empty when there was simply
    nothing to rewrite, or onnx is not installed: see :data:`NO_ONNX_NOTE`). The rewrite is an
    optimisation, never a requirement."""
    if not onnx_available():
        return None, ""
    import onnx
    try:
        done = rewrite_for_cpu(onnx.load(str(path)))
    except Exception as exc:  # noqa: BLE001  (any failure: run the exported graph, and say so)
        return None, f"cpu graph not applied ({type(exc).__name__}: {str(exc)[:120]}); running the exported graph"
    if not done.changes:
        return None, ""
    return done.model.SerializeToString(), ""
