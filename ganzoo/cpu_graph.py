"""Exact rewrites of a generator's ONNX graph that run faster on ONNX Runtime's CPU provider.

ONNX Runtime's CPU ``ConvTranspose`` runs a GEMM per image and then scatters the columns back into the
image (col2im); its ``Conv`` has blocked-layout (NCHWc) kernels that are much faster. Two rewrites
turn transposed convolutions into those, without changing what the graph computes (only the order of
the floating-point sums, ~1e-7):

* **phases**: a stride-``s`` transposed convolution whose output is exactly ``s`` times its input
  (DCGAN's kernel 4, stride 2, pad 1; CycleGAN's kernel 3, stride 2, pad 1, output padding 1) is
  ``s * s`` ordinary convolutions, one per output phase, each with the taps of that phase, then
  interleaved. An element-wise activation right after it (``Relu``, ``LeakyRelu``, ``Tanh``,
  ``Sigmoid``) moves onto each phase, where ONNX Runtime fuses it into the convolution. The
  interleave runs channels-last: each phase is transposed to NHWC (ONNX Runtime folds that into the
  convolution's layout reorder), then ``Concat`` and a ``Transpose`` that moves whole pixels of C
  floats, and back to NCHW -- 3-4x cheaper than ``DepthToSpace``, which moves single floats and is
  used only when the feature map's size is not known statically. Layers with fewer than
  ``min_channels`` outputs (an RGB output layer) are left alone: too narrow for the blocked kernels.
* **matmul**: a transposed convolution of a 1x1 input (the code ``z`` projected to the first feature
  map) is a ``MatMul`` with the reshaped weight.

Only onnx and numpy are needed (no torch): :func:`ganzoo.runtime.open_session` applies this for
``--graph cpu``; the exported file itself stays the plain graph of the PyTorch network.
Measured in ``benchmarks/onnx_zoo.py`` (its ``all+plain-graph`` variant is the exported graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ELEMENTWISE = ("Relu", "LeakyRelu", "Tanh", "Sigmoid")


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


def rewrite_for_cpu(model, min_channels: int = 16) -> Rewrite:
    """A copy of ``model`` with the rewrites above; ``changes`` says what was rewritten (empty: the
    graph had nothing to rewrite)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    shapes = _static_shapes(model)
    consumers: dict[str, list] = {}
    for nd in g.node:
        for i in nd.input:
            consumers.setdefault(i, []).append(nd)
    graph_outputs = {o.name for o in g.output}
    out_nodes: list = []
    absorbed: set[int] = set()
    changes: list[str] = []

    def const(name: str, array: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(array, name))
        return name

    for n in g.node:
        if id(n) in absorbed:
            continue
        if n.op_type != "ConvTranspose" or len(n.input) < 2 or n.input[1] not in inits:
            out_nodes.append(n)
            continue
        at = _attrs(n)
        w = numpy_helper.to_array(inits[n.input[1]])  # [Cin, Cout, kh, kw]
        bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
        if w.ndim != 4:
            out_nodes.append(n)
            continue
        cin, cout, kh, kw = w.shape
        in_hw = shapes.get(n.input[0], [None] * 4)[2:]
        plan = _phase_plan(at, (kh, kw))
        base = n.name or n.output[0]
        matmul = (in_hw == [1, 1] and list(at.get("pads", [0, 0, 0, 0])) == [0, 0, 0, 0] and at.get("group", 1) == 1
                  and list(at.get("output_padding", [0, 0])) == [0, 0] and list(at.get("dilations", [1, 1])) == [1, 1]
                  and "output_shape" not in at and (bias is None or bias in inits))
        if matmul:
            flat = const(f"{base}/mm_in_shape", np.array([-1, cin], np.int64))
            weight = const(f"{base}/mm_weight", np.ascontiguousarray(w.reshape(cin, cout * kh * kw)))
            shape = const(f"{base}/mm_out_shape", np.array([-1, cout, kh, kw], np.int64))
            cur = f"{base}/mm_x"
            out_nodes.append(helper.make_node("Reshape", [n.input[0], flat], [cur], name=cur))
            out_nodes.append(helper.make_node("MatMul", [cur, weight], [f"{base}/mm_y"], name=f"{base}/mm_y"))
            cur = f"{base}/mm_y"
            if bias is not None:
                b = np.repeat(numpy_helper.to_array(inits[bias]).astype(w.dtype), kh * kw)
                out_nodes.append(helper.make_node("Add", [cur, const(f"{base}/mm_bias", b)], [f"{base}/mm_yb"],
                                                  name=f"{base}/mm_yb"))
                cur = f"{base}/mm_yb"
            out_nodes.append(helper.make_node("Reshape", [cur, shape], [n.output[0]], name=f"{base}/mm_out"))
            changes.append(f"{base}: ConvTranspose of a 1x1 input -> MatMul")
            continue
        if plan is None or cout < min_channels:
            out_nodes.append(n)
            continue
        s = int(at["strides"][0])
        follow = consumers.get(n.output[0], [])
        act = follow[0] if (len(follow) == 1 and follow[0].op_type in ELEMENTWISE
                            and n.output[0] not in graph_outputs) else None
        final = act.output[0] if act is not None else n.output[0]
        phases = []
        for a, (taps_h, bh, ah) in enumerate(plan[0]):
            for b, (taps_w, bw, aw) in enumerate(plan[1]):
                sub = w[:, :, taps_h, :][:, :, :, taps_w].transpose(1, 0, 2, 3)  # [Cout, Cin, th, tw]
                weight = const(f"{base}/phase{a}{b}_weight", np.ascontiguousarray(sub))
                out = f"{base}/phase{a}{b}"
                out_nodes.append(helper.make_node(
                    "Conv", [n.input[0], weight] + ([bias] if bias else []), [out], name=out,
                    kernel_shape=[len(taps_h), len(taps_w)], pads=[bh, bw, ah, aw]))
                if act is not None:
                    out_nodes.append(helper.make_node(act.op_type, [out], [f"{out}_act"], name=f"{out}_act",
                                                      **_attrs(act)))
                    out = f"{out}_act"
                phases.append(out)
        if all(in_hw) and len(in_hw) == 2:  # static H, W: interleave channels-last
            c, (h, w_) = cout, in_hw
            hh, ww = s * h, s * w_
            axes = const(f"{base}/axes1", np.array([1], np.int64))
            nhwc = []
            for ph in phases:
                out_nodes.append(helper.make_node("Transpose", [ph], [f"{ph}_nhwc"], name=f"{ph}_nhwc", perm=[0, 2, 3, 1]))
                out_nodes.append(helper.make_node("Unsqueeze", [f"{ph}_nhwc", axes], [f"{ph}_u"], name=f"{ph}_u"))
                nhwc.append(f"{ph}_u")
            out_nodes.append(helper.make_node("Concat", nhwc, [f"{base}/phases"], name=f"{base}/phases", axis=1))
            s6 = const(f"{base}/s6", np.array([-1, s, s, h, w_, c], np.int64))
            s4 = const(f"{base}/s4", np.array([-1, hh, ww, c], np.int64))
            out_nodes.append(helper.make_node("Reshape", [f"{base}/phases", s6], [f"{base}/p6"], name=f"{base}/p6"))
            out_nodes.append(helper.make_node("Transpose", [f"{base}/p6"], [f"{base}/t6"], name=f"{base}/t6", perm=[0, 3, 1, 4, 2, 5]))
            out_nodes.append(helper.make_node("Reshape", [f"{base}/t6", s4], [f"{base}/nhwc"], name=f"{base}/nhwc"))
            out_nodes.append(helper.make_node("Transpose", [f"{base}/nhwc"], [final], name=f"{base}/nchw", perm=[0, 3, 1, 2]))
        else:
            out_nodes.append(helper.make_node("Concat", phases, [f"{base}/phases"], name=f"{base}/phases", axis=1))
            out_nodes.append(helper.make_node("DepthToSpace", [f"{base}/phases"], [final], name=f"{base}/interleave",
                                              blocksize=s, mode="DCR"))
        if act is not None:
            absorbed.add(id(act))
        changes.append(f"{base}: stride-{s} ConvTranspose -> {s * s} phase Conv + DepthToSpace"
                       + (f" ({act.op_type} fused per phase)" if act is not None else ""))

    if not changes:
        return Rewrite(model=model, changes=[])
    del g.node[:]
    g.node.extend(out_nodes)
    used = {i for nd in g.node for i in nd.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(model)
    return Rewrite(model=model, changes=changes)


def cpu_graph_bytes(path) -> tuple[bytes | None, str]:
    """The rewrite of the ONNX file ``path`` as bytes for ``onnxruntime.InferenceSession``, or None when
    it changes nothing or cannot be made; then the second item says why (empty when there was simply
    nothing to rewrite). The rewrite is an optimisation, never a requirement."""
    try:
        import onnx
    except ImportError:
        return None, "cpu graph unavailable (onnx is not installed); running the exported graph"
    try:
        done = rewrite_for_cpu(onnx.load(str(path)))
    except Exception as exc:  # noqa: BLE001  (any failure: run the exported graph, and say so)
        return None, f"cpu graph not applied ({type(exc).__name__}: {str(exc)[:120]}); running the exported graph"
    if not done.changes:
        return None, ""
    return done.model.SerializeToString(), ""
