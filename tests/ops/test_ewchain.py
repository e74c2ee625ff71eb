"""Element-wise chains (compiler/passes.py fuse_eltwise_chains, csrc/q8_ewchain.h): a fused
chain gives exactly the unfused steps' results (bit for bit, every kernel form, 1 and 2
threads), agrees with onnxruntime, and groups only what it may."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from deepsparse_lite import compiler, kernels
from deepsparse_lite.kernels import quant as kquant
from tests.helpers import isa_combos

EWCHAIN = 708


@pytest.fixture(autouse=True)
def split_small_work():
    """Small tensors go through the multi-thread split too."""
    old = kquant.set_min_work(64)
    yield
    kquant.set_min_work(old)


def _model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def _plan(model, threads, isa, chains):
    old = os.environ.get("DSL_EWCHAIN")
    os.environ["DSL_EWCHAIN"] = "1" if chains else "0"
    try:
        return compiler.compile_onnx(model, max_threads=threads, isa=isa)
    finally:
        if old is None:
            os.environ.pop("DSL_EWCHAIN")
        else:
            os.environ["DSL_EWCHAIN"] = old


def _chain_count(plan):
    return sum(int(s["op"]) == EWCHAIN for s in plan.steps)


def check_fused_equals_unfused(model, feeds, min_chains=1, max_steps=None):
    """Every (level, cap) pair and 1 / 2 threads: the chain plan's outputs are the unfused
    plan's, bit for bit."""
    for isa, cap in isa_combos():
        for nt in (1, 2):
            fused, plain = _plan(model, nt, isa, True), _plan(model, nt, isa, False)
            assert _chain_count(fused) >= min_chains, compiler.format_plan(fused)
            assert _chain_count(plain) == 0
            if max_steps is not None:
                assert fused.num_steps <= max_steps, compiler.format_plan(fused)
            ins = [feeds[i.name] for i in fused.inputs]
            with kernels.isa_cap(cap):
                got = compiler.execute(fused, ins, num_threads=nt)
                want = compiler.execute(plain, ins, num_threads=nt)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and g.shape == w.shape
                assert np.array_equal(g, w, equal_nan=True), (
                    f"isa={isa} cap={cap} threads={nt}: {np.sum(g != w)} of {g.size} differ")


def _ort(model, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _gelu_qdq(shape, qtype=T.UINT8, zp=128):
    """QDQ GELU as onnxruntime's quantize_static leaves it: DQ -> bias Add -> Q -> DQ -> Div
    -> Erf -> Q -> DQ -> Add 1 -> Q -> DQ -> Mul(x, .) -> Q -> DQ -> Mul 0.5 -> Q; x is
    used twice (fan-out inside the chain)."""
    npq = np.uint8 if qtype == T.UINT8 else np.int8
    inits = {"s": np.array(0.05, np.float32), "z": np.array(zp, npq),
             "bias": np.random.default_rng(0).standard_normal(shape[-1]).astype(np.float32),
             "sq2": np.array(1.4142135, np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    nodes = []

    def qdq(x, tag):
        nodes.append(helper.make_node("QuantizeLinear", [x, "s", "z"], [f"q_{tag}"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"q_{tag}", "s", "z"], [f"dq_{tag}"]))
        return f"dq_{tag}"

    nodes.append(helper.make_node("DequantizeLinear", ["x", "s", "z"], ["x0"]))
    nodes.append(helper.make_node("Add", ["x0", "bias"], ["a0"]))
    x = qdq("a0", "a")
    nodes.append(helper.make_node("Div", [x, "sq2"], ["d"]))
    nodes.append(helper.make_node("Erf", ["d"], ["e"]))
    e = qdq("e", "e")
    nodes.append(helper.make_node("Add", [e, "one"], ["p"]))
    p = qdq("p", "p")
    nodes.append(helper.make_node("Mul", [x, p], ["m"]))
    m = qdq("m", "m")
    nodes.append(helper.make_node("Mul", [m, "half"], ["m1"]))
    nodes.append(helper.make_node("QuantizeLinear", ["m1", "s", "z"], ["y"]))
    return _model(nodes, [_vi("x", qtype, shape)], [_vi("y", qtype, shape)], inits)


@pytest.mark.parametrize("qtype,zp", [(T.UINT8, 128), (T.INT8, 3)])
@pytest.mark.parametrize("shape", [(4, 300), (3, 5, 257)])
def test_qdq_gelu_is_one_step_and_exact(qtype, zp, shape):
    model = _gelu_qdq(shape, qtype, zp)
    npq = np.uint8 if qtype == T.UINT8 else np.int8
    info = np.iinfo(npq)
    x = np.random.default_rng(1).integers(info.min, info.max + 1, shape).astype(npq)
    check_fused_equals_unfused(model, {"x": x}, max_steps=1)
    got = compiler.execute(compiler.compile_onnx(model), [x])[0]
    want = _ort(model, {"x": x})[0]
    assert np.max(np.abs(got.astype(np.int32) - want.astype(np.int32))) <= 1


def test_quantize_near_ties_takes_the_true_division():
    """Values whose x / s lies on or within a few ulps of a half-integer: the reciprocal's
    product would round some of them the other way; the chain must not."""
    s = np.float32(0.1)
    k = np.arange(-300, 300, dtype=np.float32)
    exact = (k + np.float32(0.5)) * s
    near = np.concatenate([exact, np.nextafter(exact, np.float32(np.inf)),
                           np.nextafter(exact, np.float32(-np.inf)), exact * np.float32(1 + 2 ** -22),
                           np.array([np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 1e-40], np.float32)])
    n = near.size
    x = np.tile(near, 4).reshape(4, n)
    nodes = [helper.make_node("Mul", ["x", "one"], ["a"]),
             helper.make_node("QuantizeLinear", ["a", "s", "z"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, x.shape)], [_vi("y", T.INT8, x.shape)],
                   {"one": np.array(1.0, np.float32), "s": np.array(s), "z": np.array(-5, np.int8)})
    check_fused_equals_unfused(model, {"x": x}, max_steps=1)
    got = compiler.execute(compiler.compile_onnx(model), [x])[0]
    ref = np.clip(np.rint(x / s) - 5, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(got, ref)


def test_attention_chain_with_runtime_mask_vector_and_power_of_two_divisor():
    """scores -> Q -> DQ -> Div 8 (exactly a Mul by 1/8) -> Q -> DQ -> Add mask[1,1,1,T]
    (a runtime last-axis vector) -> Q -> DQ: one step, ahead of the Softmax."""
    B, H, Tn = 1, 3, 37
    shape = (B, H, Tn, Tn)
    inits = {"s": np.array(0.07, np.float32), "z": np.array(100, np.uint8), "eight": np.array(8.0, np.float32),
             "s2": np.array(0.02, np.float32), "z2": np.array(7, np.uint8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q0"]),
             helper.make_node("DequantizeLinear", ["q0", "s", "z"], ["d0"]),
             helper.make_node("Div", ["d0", "eight"], ["v"]),
             helper.make_node("QuantizeLinear", ["v", "s2", "z2"], ["q1"]),
             helper.make_node("DequantizeLinear", ["q1", "s2", "z2"], ["d1"]),
             helper.make_node("Add", ["d1", "mask"], ["am"]),
             helper.make_node("QuantizeLinear", ["am", "s2", "z2"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["d2"]),
             helper.make_node("Softmax", ["d2"], ["y"], axis=-1)]
    model = _model(nodes, [_vi("x", T.FLOAT, shape), _vi("mask", T.FLOAT, (1, 1, 1, Tn))],
                   [_vi("y", T.FLOAT, shape)], inits)
    rng = np.random.default_rng(2)
    feeds = {"x": (rng.standard_normal(shape) * 4).astype(np.float32),
             "mask": np.where(rng.random((1, 1, 1, Tn)) < 0.3, -1e4, 0).astype(np.float32)}
    check_fused_equals_unfused(model, feeds, max_steps=2)
    got = compiler.execute(compiler.compile_onnx(model), [feeds["x"], feeds["mask"]])[0]
    np.testing.assert_allclose(got, _ort(model, feeds)[0], rtol=1e-5, atol=1e-6)


def test_full_shape_runtime_operand_and_unary_ops():
    """Sub / Mul / Div with a same-shape runtime tensor, Relu, Sigmoid, Tanh: float32 only,
    no quantization anywhere."""
    shape = (6, 200)
    nodes = [helper.make_node("Sub", ["x", "w"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Mul", ["b", "w"], ["c"]), helper.make_node("Sigmoid", ["c"], ["d"]),
             helper.make_node("Div", ["d", "three"], ["e"]), helper.make_node("Tanh", ["e"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, shape), _vi("w", T.FLOAT, shape)], [_vi("y", T.FLOAT, shape)],
                   {"three": np.array(3.0, np.float32)})
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal(shape).astype(np.float32), "w": rng.standard_normal(shape).astype(np.float32)}
    check_fused_equals_unfused(model, feeds, max_steps=1)
    got = compiler.execute(compiler.compile_onnx(model), [feeds["x"], feeds["w"]])[0]
    np.testing.assert_allclose(got, _ort(model, feeds)[0], rtol=2e-6, atol=2e-7)


def test_a_value_used_outside_is_not_swallowed():
    """a = x + 1 feeds both the chain and the graph's second output: the chain may start
    after it or end at it, but every output stays right."""
    shape = (4, 512)
    nodes = [helper.make_node("Add", ["x", "one"], ["a"]), helper.make_node("Mul", ["a", "two"], ["b"]),
             helper.make_node("Erf", ["b"], ["c"]), helper.make_node("Add", ["c", "one"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, shape)], [_vi("y", T.FLOAT, shape), _vi("a", T.FLOAT, shape)],
                   {"one": np.array(1.0, np.float32), "two": np.array(2.0, np.float32)})
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    check_fused_equals_unfused(model, {"x": x})
    got = compiler.execute(compiler.compile_onnx(model), [x])
    for g, w in zip(got, _ort(model, {"x": x})):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_broadcast_that_grows_the_shape_is_left_alone():
    """x[1, 300] + y[4, 300] grows x: not an element-wise chain over x's shape."""
    nodes = [helper.make_node("Add", ["x", "y"], ["a"]), helper.make_node("Relu", ["a"], ["z"])]
    model = _model(nodes, [_vi("x", T.FLOAT, (1, 300)), _vi("y", T.FLOAT, (4, 300))],
                   [_vi("z", T.FLOAT, (4, 300))], {})
    rng = np.random.default_rng(5)
    feeds = {"x": rng.standard_normal((1, 300)).astype(np.float32),
             "y": rng.standard_normal((4, 300)).astype(np.float32)}
    plan = compiler.compile_onnx(model)
    got = compiler.execute(plan, [feeds["x"], feeds["y"]])[0]
    np.testing.assert_allclose(got, np.maximum(feeds["x"] + feeds["y"], 0), rtol=1e-6)


def test_an_eltwisechain_node_in_a_users_file_is_refused_cleanly():
    """The fused op's domain is ours: a file that names it directly gets a clean refusal."""
    node = helper.make_node("EltwiseChain", ["x"], ["y"], domain="ai.deepsparse_lite",
                            _program=[1, 2, 3], _out_dtype="float32", _in_dtype="float32")
    g = helper.make_graph([node], "g", [_vi("x", T.FLOAT, (4, 300))], [_vi("y", T.FLOAT, (4, 300))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.deepsparse_lite", 1)])
    m.ir_version = 8
    with pytest.raises((compiler.UnsupportedModelError, compiler.ModelLoadError)):
        compiler.compile_onnx(m)
