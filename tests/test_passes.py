"""Graph passes: each rewrite fires on the pattern exporters produce, and the compiled model
still agrees with onnxruntime."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite.compiler.graph import build_graph
from deepsparse_lite.compiler.infer import fold_and_infer, prune
from deepsparse_lite.compiler.passes import run_passes
from tests.helpers import run_model

ort = pytest.importorskip("onnxruntime")


def _model(nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None)
                                              for o in outputs],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _ops_after_passes(model):
    import deepsparse_lite.ops  # noqa: F401
    g = build_graph(model)
    fold_and_infer(g)
    prune(g)
    run_passes(g)
    prune(g)
    return [n.op_type for n in g.nodes], g


def _ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(model, feeds, rtol=1e-4, atol=1e-5):
    want = _ort(model, feeds)
    for nt in (1, 2):
        got = run_model(model, feeds, threads=nt)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def test_conv_batchnorm_relu_fold():
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 9, 9])
    inits = {"w": rng.standard_normal((5, 3, 3, 3)).astype(np.float32),
             "s": rng.random(5).astype(np.float32) + 0.5, "b": rng.standard_normal(5).astype(np.float32),
             "m": rng.standard_normal(5).astype(np.float32), "v": rng.random(5).astype(np.float32) + 0.1}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["y"])]
    model = _model(nodes, [x], ["y"], inits)
    ops, g = _ops_after_passes(model)
    assert ops == ["Conv"] and g.nodes[0].attrs.get("_act") == 1
    _check(model, {"x": rng.standard_normal((1, 3, 9, 9)).astype(np.float32)})


def test_matmul_bias_gelu_fused():
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 5, 16])
    inits = {"w": rng.standard_normal((16, 24)).astype(np.float32) * 0.3,
             "bias": rng.standard_normal(24).astype(np.float32),
             "sqrt2": np.array(2 ** 0.5, np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]),
             helper.make_node("Add", ["bias", "mm"], ["h"]),
             helper.make_node("Div", ["h", "sqrt2"], ["d"]),
             helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]),
             helper.make_node("Mul", ["h", "e1"], ["p"]),
             helper.make_node("Mul", ["p", "half"], ["y"])]
    model = _model(nodes, [x], ["y"], inits)
    ops, g = _ops_after_passes(model)
    assert ops == ["MatMul"], ops
    assert g.nodes[0].attrs.get("_act") == 8 and "_bias" in g.nodes[0].attrs
    _check(model, {"x": rng.standard_normal((1, 5, 16)).astype(np.float32)})


@pytest.mark.parametrize("opset", [13, 18])
def test_decomposed_layernorm_fused(opset):
    rng = np.random.default_rng(2)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 7, 32])
    inits = {"two": np.array(2.0, np.float32), "eps": np.array(1e-12, np.float32),
             "g": rng.random(32).astype(np.float32) + 0.5, "b": rng.standard_normal(32).astype(np.float32)}
    if opset >= 18:
        inits["ax"] = np.array([-1], np.int64)
        rm = lambda i, o: helper.make_node("ReduceMean", [i, "ax"], [o])  # noqa: E731
    else:
        rm = lambda i, o: helper.make_node("ReduceMean", [i], [o], axes=[-1])  # noqa: E731
    nodes = [rm("x", "m"), helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["p"]), rm("p", "v"),
             helper.make_node("Add", ["v", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["s"]),
             helper.make_node("Div", ["d", "s"], ["n"]), helper.make_node("Mul", ["n", "g"], ["ng"]),
             helper.make_node("Add", ["ng", "b"], ["y"])]
    model = _model(nodes, [x], ["y"], inits, opset=opset)
    ops, _ = _ops_after_passes(model)
    assert ops == ["LayerNormalization"], ops
    _check(model, {"x": rng.standard_normal((2, 7, 32)).astype(np.float32)}, atol=1e-4)


def test_pass_does_not_fire_when_intermediate_is_observed():
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 6, 6])
    inits = {"w": rng.standard_normal((4, 3, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = _model(nodes, [x], ["y", "c"], inits)  # the conv output is a graph output too
    ops, _ = _ops_after_passes(model)
    assert ops == ["Conv", "Relu"]
    _check(model, {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)})


@pytest.mark.parametrize("batch, group, shortcut_first", [(1, 1, False), (2, 2, True), (2, 1, True)])
def test_residual_add_relu_fused_into_conv(batch, group, shortcut_first):
    """ResNet's block tail: Relu(Conv(x) + shortcut), the shortcut computed by another conv
    that may come later in the file's node order."""
    rng = np.random.default_rng(4)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch, 4, 7, 9])
    inits = {"w1": rng.standard_normal((6, 4 // group, 3, 3)).astype(np.float32) * 0.3,
             "b1": rng.standard_normal(6).astype(np.float32),
             "w2": rng.standard_normal((6, 4, 1, 1)).astype(np.float32) * 0.3}
    main = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], group=group)]
    short = [helper.make_node("Conv", ["x", "w2"], ["s"])]
    tail = [helper.make_node("Add", ["c1", "s"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    nodes = (short + main if shortcut_first else main + short) + tail
    model = _model(nodes, [x], ["y"], inits)
    ops, g = _ops_after_passes(model)
    assert ops.count("Conv") == 2 and "Add" not in ops and "Relu" not in ops, ops
    fused = next(n for n in g.nodes if n.attrs.get("_addend"))
    assert fused.attrs.get("_act") == 1
    _check(model, {"x": rng.standard_normal((batch, 4, 7, 9)).astype(np.float32)})


def test_residual_not_fused_into_depthwise_or_when_shapes_broadcast():
    rng = np.random.default_rng(5)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 5, 5])
    r = helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [1, 3, 1, 5])
    inits = {"wd": rng.standard_normal((3, 1, 3, 3)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "wd"], ["c"], pads=[1, 1, 1, 1], group=3),
             helper.make_node("Add", ["c", "x"], ["y"]),
             helper.make_node("Conv", ["x", "wd"], ["c2"], pads=[1, 1, 1, 1], group=3),
             helper.make_node("Add", ["c2", "r"], ["y2"])]
    model = _model(nodes, [x, r], ["y", "y2"], inits)
    ops, _ = _ops_after_passes(model)
    assert ops.count("Add") == 2
    _check(model, {"x": rng.standard_normal((1, 3, 5, 5)).astype(np.float32),
                   "r": rng.standard_normal((1, 3, 1, 5)).astype(np.float32)})


@pytest.mark.parametrize("act", [None, "Relu", "Sigmoid"])
@pytest.mark.parametrize("residual_first", [False, True])
def test_residual_add_fused_into_matmul(act, residual_first):
    """A transformer's residual: Add(MatMul(x, W) + b, r) becomes the GEMM's addend (and a
    following activation fuses after it), in either operand order of the Add."""
    rng = np.random.default_rng(6)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 37, 20])
    r = helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [1, 37, 24])
    inits = {"w": rng.standard_normal((20, 24)).astype(np.float32) * 0.3,
             "b": rng.standard_normal(24).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["mb"]),
             helper.make_node("Add", ["r", "mb"] if residual_first else ["mb", "r"], ["a" if act else "y"])]
    if act:
        nodes.append(helper.make_node(act, ["a"], ["y"]))
    model = _model(nodes, [x, r], ["y"], inits)
    ops, g = _ops_after_passes(model)
    assert ops == ["MatMul"], ops
    (mm,) = g.nodes
    assert mm.attrs.get("_addend") == "r" and mm.attrs.get("_bias")
    _check(model, {"x": rng.standard_normal((1, 37, 20)).astype(np.float32),
                   "r": rng.standard_normal((1, 37, 24)).astype(np.float32)})


def test_residual_not_fused_into_matmul_when_it_broadcasts_or_weights_are_runtime():
    rng = np.random.default_rng(7)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 5, 6])
    r = helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [1, 1, 4])  # broadcasts
    w = helper.make_tensor_value_info("wr", onnx.TensorProto.FLOAT, [6, 4])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "r"], ["y"]),
             helper.make_node("MatMul", ["x", "wr"], ["m2"]), helper.make_node("Add", ["m2", "y"], ["z"])]
    model = _model(nodes, [x, r, w], ["z"], {"w": rng.standard_normal((6, 4)).astype(np.float32)})
    ops, g = _ops_after_passes(model)
    assert not any(n.attrs.get("_addend") for n in g.nodes), ops
    _check(model, {"x": rng.standard_normal((1, 5, 6)).astype(np.float32),
                   "r": rng.standard_normal((1, 1, 4)).astype(np.float32),
                   "wr": rng.standard_normal((6, 4)).astype(np.float32)})
