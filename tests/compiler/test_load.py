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


# ---------------------------------------------------------------- old opsets (upgraded in memory)
def _model(nodes, inputs, outputs, opset, inits=(), ir_version=3, extra_opsets=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, 0, None) for n in outputs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] + list(extra_opsets),
                             ir_version=ir_version)


F = onnx.TensorProto.FLOAT


@pytest.mark.parametrize("op, np_op", [("Add", np.add), ("Mul", np.multiply), ("Sub", np.subtract),
                                       ("Div", np.divide)])
@pytest.mark.parametrize("b_shape, axis", [((3, 4), 1), ((2,), 0), ((4,), 2), ((4, 5), 2), ((3,), -3),
                                           ((5,), None), ((4, 5), None)])
def test_opset6_broadcast_axis_attributes_are_converted(op, np_op, b_shape, axis):
    """Opset < 7 binary ops broadcast only with broadcast=1, aligning B at `axis` (suffix
    alignment without it): the upgrade must keep that meaning (onnx.version_converter alone
    gets axis > 0 wrong), for a constant and for a runtime B."""
    x = np.random.rand(2, 3, 4, 5).astype(np.float32) + 0.5
    b = np.random.rand(*b_shape).astype(np.float32) + 0.5
    start = 0 if axis is None else axis % 4
    want = np_op(x, b.reshape(b_shape + (1,) * (4 - start - len(b_shape))) if axis is not None else b)
    kw = {} if axis is None else {"axis": axis}
    m = _model([helper.make_node(op, ["x", "b"], ["y"], broadcast=1, **kw)],
               [("x", F, list(x.shape))], ["y"], 6, [numpy_helper.from_array(b, "b")])
    (got,) = _run(m, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6)
    m = _model([helper.make_node(op, ["x", "b"], ["y"], broadcast=1, **kw)],
               [("x", F, list(x.shape)), ("b", F, list(b_shape))], ["y"], 6)
    (got,) = _run(m, {"x": x, "b": b})
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_opset6_model_is_upgraded_in_memory_and_the_file_is_untouched(tmp_path):
    import hashlib

    x = np.random.rand(2, 3, 4, 4).astype(np.float32)
    scale, bias = np.random.rand(3).astype(np.float32), np.random.rand(3).astype(np.float32)
    mean, var = np.random.rand(3).astype(np.float32), np.random.rand(3).astype(np.float32) + 0.5
    inits = [numpy_helper.from_array(a, n) for a, n in ((scale, "s"), (bias, "b"), (mean, "m"), (var, "v"))]
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], is_test=1,
                              epsilon=1e-3, spatial=1),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    m = _model(nodes, [("x", F, list(x.shape))], ["y"], 6, inits)
    path = str(tmp_path / "old.onnx")
    onnx.save(m, path)
    before = hashlib.md5(open(path, "rb").read()).hexdigest()
    (got,) = _run(path, {"x": x})
    assert hashlib.md5(open(path, "rb").read()).hexdigest() == before
    assert onnx.load(path).opset_import[0].version == 6
    sh = (1, 3, 1, 1)
    want = np.maximum((x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + 1e-3) * scale.reshape(sh)
                      + bias.reshape(sh), 0).mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_opset1_ops_run():
    x = np.random.rand(3, 4).astype(np.float32) - 0.5
    m = _model([helper.make_node("Softsign", ["x"], ["s"]), helper.make_node("Softplus", ["s"], ["y"])],
               [("x", F, [3, 4])], ["y"], 1)
    (got,) = _run(m, {"x": x})
    np.testing.assert_allclose(got, np.log1p(np.exp(x / (1 + np.abs(x)))), rtol=1e-5)


def test_old_opset_that_cannot_be_converted_is_a_clean_refusal():
    # Upsample-1 takes width/height_scale attributes; this one has neither
    m = _model([helper.make_node("Upsample", ["x"], ["y"], name="up", mode="nearest")],
               [("x", F, [1, 1, 2, 2])], ["y"], 6)
    with pytest.raises(compiler.UnsupportedModelError, match=r"opset 6 .*Upsample.*'up'"):
        compiler.compile_onnx(m)
    m = _model([helper.make_node("NotAnOp", ["x"], ["y"], name="mystery")], [("x", F, [2])], ["y"], 5)
    with pytest.raises(compiler.UnsupportedModelError, match=r"NotAnOp.*'mystery'"):
        compiler.compile_onnx(m)


def test_opset_out_of_range_messages():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2])], ["y"], onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(compiler.UnsupportedModelError, match="newer"):
        compiler.compile_onnx(m)


# ---------------------------------------------------------------- non-default domains only
@pytest.mark.parametrize("domain, op", [("ai.onnx.ml", "Binarizer"), ("ai.onnx.preview.training", "Momentum")])
def test_model_with_only_a_non_default_domain_names_the_domain_and_op(domain, op):
    node = helper.make_node(op, ["x"], ["y"], domain=domain, name="n0")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, [2])],
                          [helper.make_tensor_value_info("y", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(domain, 1)], ir_version=8)
    with pytest.raises(compiler.UnsupportedModelError) as ei:
        compiler.compile_onnx(m)
    msg = str(ei.value)
    assert op in msg and "'n0'" in msg and domain in msg and "opset 0" not in msg


def test_onnx_op_without_an_onnx_opset_import():
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, [2])],
                          [helper.make_tensor_value_info("y", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)], ir_version=8)
    with pytest.raises(compiler.UnsupportedModelError, match=r"Relu node 'r'.*imports no ONNX opset"):
        compiler.compile_onnx(m)


def test_sequence_and_optional_inputs_are_named_as_such():
    seq = helper.make_tensor_sequence_value_info("s", F, [2])
    opt = helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2])))
    for vi, kind in ((seq, "a sequence"), (opt, "an optional")):
        g = helper.make_graph([helper.make_node("Identity", [vi.name], ["y"])], "g", [vi],
                              [helper.make_tensor_value_info("y", 0, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)], ir_version=8)
        with pytest.raises(compiler.UnsupportedModelError, match=f"'{vi.name}' is {kind}, not a tensor"):
            compiler.compile_onnx(m)
