"""The exact CPU rewrite of transposed convolutions (ganzoo.deploy.cpu_graph), checked against PyTorch's
conv_transpose2d on hand-built ONNX graphs: every stride/kernel/padding it claims to handle, the
activation moved onto the phases, the 1x1-input MatMul, and the layers it must leave alone; and the
row split of narrow convolutions against conv2d."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ganzoo.deploy.cpu_graph import cpu_graph_bytes, rewrite_for_cpu


def _graph(cin, cout, k, s, p, op=0, hw=5, bias=True, act=None, group=1, dilation=1, seed=0, static=True):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((cin, cout // group, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if bias else [])
    conv_out = "y" if act is None else "t"
    nodes = [helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), [conv_out], name="up",
                              kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], output_padding=[op, op],
                              group=group, dilations=[dilation, dilation])]
    if act is not None:
        kw = {"alpha": 0.2} if act == "LeakyRelu" else {}
        nodes.append(helper.make_node(act, ["t"], ["y"], name="act", **kw))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin] + ([hw, hw] if static else ["h", "w"]))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", cout, "h", "w"])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9

    def reference(x):
        y = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b) if bias else None,
                                                 stride=s, padding=p, output_padding=op, groups=group, dilation=dilation)
        return {None: y, "Relu": torch.relu(y), "LeakyRelu": torch.nn.functional.leaky_relu(y, 0.2),
                "Tanh": torch.tanh(y), "Sigmoid": torch.sigmoid(y)}[act].numpy()

    return model, reference


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("k,s,p,op,act", [
    (4, 2, 1, 0, "Relu"),        # DCGAN
    (3, 2, 1, 1, "Relu"),        # CycleGAN's upsampling
    (2, 2, 0, 0, None),          # no overlap
    (4, 2, 1, 0, "Tanh"),
    (3, 3, 0, 0, None),          # stride 3 without overlap: 9 phases
    (5, 3, 1, 0, "LeakyRelu"),
    (8, 4, 2, 0, "Sigmoid"),
])
@pytest.mark.parametrize("static", [True, False], ids=["static-size", "dynamic-size"])
def test_phase_rewrite_equals_the_transposed_convolution(k, s, p, op, act, static):
    model, reference = _graph(6, 5, k, s, p, op, act=act, static=static)
    done = rewrite_for_cpu(model, min_channels=1)
    assert len(done.changes) == 1 and f"{s * s} phase Conv" in done.changes[0]
    ops = Counter(n.op_type for n in done.model.graph.node)
    assert ops["ConvTranspose"] == 0 and ops["Conv"] == s * s
    # the interleave runs channels-last; a size known only at run time is read with Shape
    assert ops["DepthToSpace"] == 0 and ops["Transpose"] > 0 and ops["Shape"] == (0 if static else 1)
    if act:  # the activation moved onto every phase (where onnxruntime fuses it into the Conv)
        assert ops[act] == s * s
    sizes = ((1, 5, 5), (3, 5, 5)) if static else ((1, 5, 5), (2, 3, 7), (1, 8, 2), (2, 1, 1))
    for n, h, w in sizes:
        x = np.random.default_rng(n).standard_normal((n, 6, h, w)).astype(np.float32)
        want = reference(x)
        got = _run(done.model, x)
        assert got.shape == want.shape == (n, 5, s * h, s * w)
        assert np.abs(got - want).max() < 1e-5
        assert np.abs(_run(model, x) - want).max() < 1e-5  # the plain graph agrees too


def test_a_transposed_convolution_of_a_1x1_input_becomes_a_matmul():
    model, reference = _graph(7, 4, 4, 1, 0, hw=1, act="Relu")
    done = rewrite_for_cpu(model)
    assert done.changes and "MatMul" in done.changes[0]
    ops = Counter(n.op_type for n in done.model.graph.node)
    assert ops["MatMul"] == 1 and ops["ConvTranspose"] == 0
    x = np.random.default_rng(0).standard_normal((5, 7, 1, 1)).astype(np.float32)
    assert np.abs(_run(done.model, x) - reference(x)).max() < 1e-5


@pytest.mark.parametrize("kwargs", [
    dict(k=4, s=2, p=1, group=2),          # grouped
    dict(k=4, s=2, p=1, dilation=2),       # dilated
    dict(k=3, s=2, p=1),                   # output is 2 * in - 1: not an exact upsampling
    dict(k=3, s=1, p=1),                   # stride 1
])
def test_layers_it_does_not_handle_are_left_alone(kwargs):
    model, reference = _graph(6, 6, **kwargs)
    done = rewrite_for_cpu(model, min_channels=1)
    assert done.changes == []
    assert [n.op_type for n in done.model.graph.node] == ["ConvTranspose"]


def test_narrow_layers_stay_transposed_convolutions_by_default(tmp_path):
    model, _ = _graph(16, 3, 4, 2, 1, act="Tanh")  # an RGB output layer
    assert rewrite_for_cpu(model).changes == []
    assert rewrite_for_cpu(model, min_channels=3).changes
    path = tmp_path / "rgb.onnx"
    onnx.save(model, str(path))
    assert cpu_graph_bytes(path) == (None, "")  # nothing to rewrite: the runtime runs the file as is


def test_a_broken_file_falls_back_with_a_reason(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    data, why = cpu_graph_bytes(path)
    assert data is None and "cpu graph not applied" in why


def _conv_graph(cin, cout, kh, kw, pads=(0, 0, 0, 0), bias=True, act=None, strides=(1, 1), group=1, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((cout, cin // group, kh, kw)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if bias else [])
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["t" if act else "y"], name="out",
                              kernel_shape=[kh, kw], pads=list(pads), strides=list(strides), group=group)]
    if act:
        nodes.append(helper.make_node(act, ["t"], ["y"], name="act"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", cout, "oh", "ow"])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    top, left, bottom, right = pads

    def reference(x):
        xp = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
        y = torch.nn.functional.conv2d(xp, torch.from_numpy(w), torch.from_numpy(b) if bias else None, stride=strides, groups=group)
        return (torch.tanh(y) if act == "Tanh" else y).numpy()

    return model, reference


@pytest.mark.parametrize("cin,cout,kh,kw,pads,bias,act", [
    (32, 3, 7, 7, (0, 0, 0, 0), True, "Tanh"),   # CycleGAN's output layer (after its reflection pad)
    (8, 1, 3, 3, (1, 1, 1, 1), True, None),      # one output, zero padding inside the Conv
    (5, 4, 3, 5, (2, 0, 1, 3), False, None),     # rectangular kernel, uneven padding, no bias
    (6, 7, 4, 4, (1, 2, 2, 1), True, "Tanh"),    # the widest still split
])
def test_narrow_convolutions_are_split_into_rows_exactly(cin, cout, kh, kw, pads, bias, act):
    model, reference = _conv_graph(cin, cout, kh, kw, pads, bias, act)
    done = rewrite_for_cpu(model)
    assert len(done.changes) == 1 and f"1x{kw} Conv to {kh * cout} channels + {kh}x1 sum" in done.changes[0]
    convs = [n for n in done.model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 2
    assert [list(helper.get_attribute_value(a)) for a in convs[0].attribute if a.name == "kernel_shape"] == [[1, kw]]
    for n, hw in ((1, (9, 11)), (3, (12, 8))):
        x = np.random.default_rng(n).standard_normal((n, cin, *hw)).astype(np.float32)
        want = reference(x)
        got = _run(done.model, x)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4 * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("kwargs", [
    dict(cin=8, cout=8, kh=3, kw=3),                     # wide enough for the blocked kernels
    dict(cin=8, cout=3, kh=1, kw=1),                     # 1x1: nothing to split
    dict(cin=8, cout=3, kh=7, kw=1),                     # a single column
    dict(cin=8, cout=3, kh=3, kw=3, strides=(2, 2)),     # strided
    dict(cin=8, cout=2, kh=3, kw=3, group=2),            # grouped
])
def test_convolutions_it_does_not_split_are_left_alone(kwargs):
    model, _ = _conv_graph(**kwargs)
    assert rewrite_for_cpu(model).changes == []
