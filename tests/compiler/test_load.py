"""Loading: what the front end reads from the file (dims, opsets, domains) and how it refuses."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from deepsparse_lite import compiler
from deepsparse_lite.compiler.graph import build_graph, load_model_proto
from tests.helpers import make_single_node_model


def _run(model, feeds):
    plan = compiler.compile_onnx(model)
    return compiler.execute(plan, [feeds[i.name] for i in plan.inputs])


# ---------------------------------------------------------------- zero-size dims
def test_zero_dim_value_is_static_not_dynamic():
    model = make_single_node_model("Identity", {"x": np.zeros((0, 3), np.float32)})
    g = build_graph(model)
    assert g.values["x"].shape == (0, 3)
    out = _run(model, {"x": np.zeros((0, 3), np.float32)})
    assert out[0].shape == (0, 3)


def test_unset_dim_is_still_dynamic():
    model = make_single_node_model("Identity", {"x": np.zeros((2, 3), np.float32)})
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.Clear()  # neither dim_value nor dim_param
    with pytest.raises(compiler.UnsupportedModelError, match="dynamic"):
        compiler.compile_onnx(model)


def test_zero_element_input_is_a_known_constant():
    """ReduceSum-18 with an empty `axes` graph input: reduce over everything (or nothing
    with noop_with_empty_axes): the empty input folds like an initializer."""
    data = np.random.rand(3, 2, 2).astype(np.float32)
    axes = np.zeros((0,), np.int64)
    for noop in (0, 1):
        model = make_single_node_model("ReduceSum", {"data": data, "axes": axes},
                                       {"keepdims": 1, "noop_with_empty_axes": noop}, opset=18)
        want = ReferenceEvaluator(model).run(None, {"data": data, "axes": axes})
        got = _run(model, {"data": data, "axes": axes})
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_zero_element_input_next_to_a_runtime_input():
    x = np.random.rand(5).astype(np.float32)
    empty = np.zeros((0,), np.float32)
    model = make_single_node_model("Concat", {"a": empty, "b": x}, {"axis": 0}, opset=13)
    np.testing.assert_array_equal(_run(model, {"a": empty, "b": x})[0], x)


# ---------------------------------------------------------------- folding at old opsets
def _folded_then_added(op, attrs, const, opset, n_outputs=1):
    """c (initializer) -> op -> o_k;  y_k = o_k + x_k (runtime): the op is folded."""
    outs = [f"o{k}" for k in range(n_outputs)]
    op_node = helper.make_node(op, ["c"], outs, **attrs)
    init = numpy_helper.from_array(const, "c")
    opsets = [helper.make_opsetid("", opset)]
    alone = helper.make_model(helper.make_graph(
        [op_node], "g", [], [helper.make_tensor_value_info(o, 0, None) for o in outs], [init]),
        opset_imports=opsets)
    shapes = [np.shape(v) for v in ReferenceEvaluator(alone).run(None, {})]
    nodes, inputs, outputs = [op_node], [], []
    for k, (o, shp) in enumerate(zip(outs, shapes)):
        nodes.append(helper.make_node("Add", [o, f"x{k}"], [f"y{k}"]))
        inputs.append(helper.make_tensor_value_info(f"x{k}", onnx.TensorProto.FLOAT, list(shp)))
        outputs.append(helper.make_tensor_value_info(f"y{k}", onnx.TensorProto.FLOAT, None))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, [init]), opset_imports=opsets)
    model.ir_version = 7
    feeds = {f"x{k}": np.random.rand(*shp).astype(np.float32) for k, shp in enumerate(shapes)}
    return model, feeds


@pytest.mark.parametrize("op, attrs, opset, n_out", [
    ("Unsqueeze", {"axes": [0, 3]}, 9, 1),
    ("Unsqueeze", {"axes": [-1]}, 11, 1),
    ("Squeeze", {"axes": [1]}, 9, 1),
    ("Squeeze", {"axes": [-2]}, 11, 1),
    ("Split", {"axis": 2, "split": [1, 3]}, 9, 2),
    ("Split", {"axis": 0, "split": [1, 1]}, 11, 2),
    ("ReduceSum", {"axes": [0, 2], "keepdims": 0}, 11, 1),
    ("ReduceMean", {"axes": [1], "keepdims": 1}, 13, 1),
    ("ReduceMax", {"axes": [-1], "keepdims": 0}, 17, 1),
    ("ReduceProd", {"axes": [0]}, 9, 1),
])
def test_constant_folding_uses_the_models_opset(op, attrs, opset, n_out):
    const = np.random.rand(2, 1, 4).astype(np.float32)
    model, feeds = _folded_then_added(op, attrs, const, opset, n_out)
    plan = compiler.compile_onnx(model)
    assert not any(info.node.startswith(op) for info in plan.step_info)  # folded away
    got = compiler.execute(plan, [feeds[i.name] for i in plan.inputs])
    want = ReferenceEvaluator(model).run(None, feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
