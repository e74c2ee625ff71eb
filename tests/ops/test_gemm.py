"""MatMul, Gemm and Einsum against the ONNX reference: tile edges, K/M/N blocking,
broadcast batches, attribute combinations, fused bias/activation, every ISA, 1-2 threads."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite import compiler, kernels
from deepsparse_lite.kernels import gemm as gemm_kernels
from deepsparse_lite.ops.base import Act, UnsupportedModelError, get_op
from deepsparse_lite.plan import Family
from tests.helpers import check_op, isa_combos, make_single_node_model, reference_outputs, run_model

RTOL, ATOL = 1e-4, 1e-4


@pytest.fixture(autouse=True)
def split_small_work():
    """Tiny shapes go through the multi-thread partitioning too."""
    old = gemm_kernels.set_min_work(1)
    yield
    gemm_kernels.set_min_work(old)


def rnd(*shape, seed=0):
    return np.random.default_rng(seed + 7 * len(shape) + sum(shape)).standard_normal(shape).astype(np.float32)


def close(op, inputs, attrs=None, **kw):
    kw.setdefault("rtol", RTOL)
    kw.setdefault("atol", ATOL * max(1.0, np.sqrt(kw.pop("k", 1))))
    return check_op(op, inputs, attrs, **kw)


# ---- MatMul ---------------------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 33, 17), (5, 17, 33), (17, 5, 130), (33, 130, 17), (130, 33, 5),
          (6, 600, 40),   # several K blocks
          (300, 20, 21),  # several M blocks
          (3, 5, 1100),   # several N blocks of a runtime B
          (2, 7, 20), (2, 601, 9), (3, 33, 40)]  # 2-3 row tiles (even/odd k split), odd K


@pytest.mark.parametrize("M,K,N", SHAPES)
def test_matmul_const_weights(M, K, N):
    close("MatMul", {"a": rnd(M, K)}, consts={"w": rnd(K, N, seed=1)}, k=K)


@pytest.mark.parametrize("M,K,N", SHAPES)
def test_matmul_runtime_operands(M, K, N):
    close("MatMul", {"a": rnd(M, K), "b": rnd(K, N, seed=1)}, k=K)


@pytest.mark.parametrize("sa,sb", [
    ((2, 3, 5, 17), (3, 17, 9)),      # B broadcast over the leading batch dim
    ((2, 1, 5, 7), (1, 4, 7, 3)),     # both broadcast (0 strides)
    ((4, 5, 17), (17, 6)),            # 2-D runtime B: one tall GEMM
    ((3, 1, 17), (3, 17, 2)),         # M = 1 per batch
    ((17,), (3, 17, 9)),              # 1-D A
    ((4, 5, 17), (17,)),              # 1-D B
    ((17,), (17,)),                   # dot product
    ((1, 12, 9, 8), (1, 12, 8, 9)),   # attention QK^T-like
])
def test_matmul_batched_broadcast(sa, sb):
    close("MatMul", {"a": rnd(*sa), "b": rnd(*sb, seed=2)})


@pytest.mark.parametrize("sa,sb", [((2, 3, 5, 17), (17, 9)), ((17,), (17, 9)), ((4, 17), (17,)),
                                   ((2, 5, 17), (3, 1, 17, 4)), ((2, 5, 17), (1, 17, 4)),
                                   ((5, 17), (1, 17, 4))])
def test_matmul_const_weights_batched_a(sa, sb):
    close("MatMul", {"a": rnd(*sa)}, consts={"w": rnd(*sb, seed=3)})


@pytest.mark.parametrize("sa,sb", [((9, 17), (17, 30)), ((9, 17), (2, 3, 17, 30)), ((1, 5), (5, 1))])
def test_matmul_const_left_operand(sa, sb):
    close("MatMul", {"b": rnd(*sb, seed=1)}, consts={"w": rnd(*sa)}, input_order=["w", "b"])


def test_matmul_non_float_is_unsupported():
    model = make_single_node_model("MatMul", {"a": np.ones((2, 3), np.int32), "b": np.ones((3, 2), np.int32)})
    with pytest.raises(UnsupportedModelError):
        compiler.compile_onnx(model)


# ---- Gemm -----------------------------------------------------------------------------

@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("const_b", [True, False])
def test_gemm_transposes(ta, tb, const_b):
    M, K, N = 7, 19, 13
    a = rnd(K, M) if ta else rnd(M, K)
    bm = rnd(N, K, seed=4) if tb else rnd(K, N, seed=4)
    attrs = {"transA": ta, "transB": tb, "alpha": 0.75, "beta": 1.5}
    c = rnd(N, seed=5)
    if const_b:
        close("Gemm", {"a": a}, attrs, consts={"b": bm, "c": c})
    else:
        close("Gemm", {"a": a, "b": bm}, attrs, consts={"c": c})


@pytest.mark.parametrize("c_shape", [None, (), (1,), (13,), (1, 13), (9, 1), (9, 13)])
@pytest.mark.parametrize("c_const", [True, False])
def test_gemm_c_broadcast(c_shape, c_const):
    M, K, N = 9, 11, 13
    inputs, consts, order = {"a": rnd(M, K)}, {"b": rnd(K, N, seed=6)}, ["a", "b"]
    if c_shape is not None:
        c = np.asarray(rnd(*c_shape, seed=7)) if c_shape else np.float32(0.5).reshape(())
        (consts if c_const else inputs)["c"] = c
        order.append("c")
    close("Gemm", inputs, {"alpha": 2.0, "beta": 0.5}, consts=consts, input_order=order)


def test_gemm_runtime_b_and_c_beta_zero():
    close("Gemm", {"a": rnd(4, 6), "b": rnd(6, 5, seed=1), "c": rnd(4, 5, seed=2)}, {"beta": 0.0})


def test_gemm_opset9_defaults():
    close("Gemm", {"a": rnd(3, 4)}, consts={"b": rnd(4, 5, seed=1), "c": rnd(3, 5, seed=2)}, opset=9)


# ---- Fused epilogues (through the compiler's passes) -----------------------------------

def _chain_model(first, act, act_attrs=None, const_b=True, bias=True, opset=17):
    M, K, N = 10, 37, 21
    a = helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2, M, K])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(rnd(K, N, seed=8), "w"),
             numpy_helper.from_array(rnd(N, seed=9), "bias")]
    ins = ["a", "w"]
    if first == "Gemm":
        a = helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [M, K])
    nodes = [helper.make_node(first, ins, ["mm"])]
    cur = "mm"
    if bias:
        nodes.append(helper.make_node("Add", [cur, "bias"], ["biased"]))
        cur = "biased"
    extra = []
    if act == "Clip":
        inits += [numpy_helper.from_array(np.float32(-0.5), "lo"), numpy_helper.from_array(np.float32(0.7), "hi")]
        extra = ["lo", "hi"]
    nodes.append(helper.make_node(act, [cur] + extra, ["y"], **(act_attrs or {})))
    model = helper.make_model(helper.make_graph(nodes, "g", [a], [y], inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, {"a": rnd(*[d.dim_value for d in a.type.tensor_type.shape.dim], seed=10)}


def compile_with_node_attrs(model, node_attrs, new_values=None, isa=None, max_threads=1):
    """Compile a one-node model after setting ``node_attrs`` on its node the way the
    fusion passes do (tests the lowering's epilogue without depending on the passes)."""
    from deepsparse_lite.compiler.graph import build_graph, load_model_proto
    from deepsparse_lite.compiler.infer import fold_and_infer
    from deepsparse_lite.compiler.lower import lower_graph
    from deepsparse_lite.ops.base import Value

    graph = build_graph(load_model_proto(model))
    fold_and_infer(graph)
    for name, arr in (new_values or {}).items():
        graph.values[name] = Value(name, tuple(arr.shape), arr.dtype, arr)
    (node,) = graph.nodes
    node.attrs.update(node_attrs)
    level = kernels.isa_level() if isa is None else isa
    return lower_graph(graph, isa=level, max_threads=max_threads)


def _np_act(code, x, a, b):
    if code == Act.RELU:
        return np.maximum(x, 0)
    if code == Act.LEAKY_RELU:
        return np.where(x >= 0, x, a * x)
    if code == Act.CLIP:
        return np.clip(x, a, b)
    if code == Act.SIGMOID:
        return 1 / (1 + np.exp(-x))
    if code == Act.HARD_SIGMOID:
        return np.clip(a * x + b, 0, 1)
    raise AssertionError(code)


@pytest.mark.parametrize("op", ["MatMul", "MatMulRuntime", "Gemm"])
@pytest.mark.parametrize("act,a,b", [(Act.RELU, 0.0, 0.0), (Act.LEAKY_RELU, 0.1, 0.0), (Act.CLIP, -0.5, 0.7),
                                     (Act.SIGMOID, 0.0, 0.0), (Act.HARD_SIGMOID, 0.3, 0.4)])
@pytest.mark.parametrize("K", [37, 300])  # one K block / two (epilogue after accumulation)
def test_fused_bias_and_activation_attrs(op, act, a, b, K):
    M, N = 11, 21
    x, w, bias = rnd(2, M, K), rnd(K, N, seed=1), rnd(N, seed=2)
    if op == "MatMul":
        model = make_single_node_model("MatMul", {"x": x}, consts={"w": w})
    elif op == "MatMulRuntime":
        model = make_single_node_model("MatMul", {"x": x, "w": w})
    else:
        x = x[0]
        model = make_single_node_model("Gemm", {"x": x}, {"alpha": 0.5}, consts={"w": w})
    want = (0.5 if op == "Gemm" else 1.0) * (x @ w) + bias
    want = _np_act(act, want, a, b)
    attrs = {"_act": act, "_act_alpha": a, "_act_beta": b, "_bias": "fused_b"}
    for isa, cap in isa_combos():
        for nt in (1, 2):
            plan = compile_with_node_attrs(model, attrs, {"fused_b": bias}, isa=isa, max_threads=nt)
            inputs = [x, w] if op == "MatMulRuntime" else [x]
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, inputs, num_threads=nt)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"isa={isa} cap={cap}")


@pytest.mark.parametrize("act", [Act.NONE, Act.RELU, Act.CLIP])
def test_fused_clamp_propagates_nan(act):
    x = rnd(7, 5)
    x[2, 3] = np.nan
    model = make_single_node_model("MatMul", {"x": x}, consts={"w": rnd(5, 20, seed=1)})
    plan = compile_with_node_attrs(model, {"_act": act, "_act_alpha": 0.0, "_act_beta": 6.0})
    got = compiler.execute(plan, [x])[0]
    assert np.isnan(got[2]).all() and not np.isnan(np.delete(got, 2, axis=0)).any()


needs_eltwise = pytest.mark.skipif(get_op("Add") is None or get_op("Relu") is None,
                                   reason="elementwise ops are not on this branch yet")


@needs_eltwise
@pytest.mark.parametrize("act,attrs", [("Relu", None), ("LeakyRelu", {"alpha": 0.2}), ("Clip", None),
                                       ("Sigmoid", None), ("Tanh", None),
                                       ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Elu", None)])
def test_matmul_bias_activation_fused(act, attrs):
    model, inputs = _chain_model("MatMul", act, attrs)
    want = reference_outputs(model, inputs)
    for isa, cap in isa_combos():
        for nt in (1, 2):
            plan = compiler.compile_onnx(model, max_threads=nt, isa=isa)
            fams = [int(s["op"]) // 100 for s in plan.steps]
            assert fams.count(Family.GEMM) == 1 and len(fams) == 1, plan.step_info
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [inputs["a"]], num_threads=nt)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


@needs_eltwise
def test_gemm_relu_fused():
    model, inputs = _chain_model("Gemm", "Relu", bias=False)
    plan = compiler.compile_onnx(model)
    assert plan.num_steps == 1
    np.testing.assert_allclose(run_model(model, inputs)[0], reference_outputs(model, inputs)[0],
                               rtol=1e-4, atol=1e-4)


# ---- Einsum ---------------------------------------------------------------------------

@pytest.mark.parametrize("eq,shapes", [
    ("bhid,bhjd->bhij", [(1, 3, 9, 8), (1, 3, 7, 8)]),
    ("bhij,bhjd->bhid", [(2, 3, 9, 7), (2, 3, 7, 8)]),
    ("bij,jk->bik", [(2, 5, 7), (7, 3)]),
    ("bsh,hd->bsd", [(2, 5, 7), (7, 19)]),
    ("bsh,hd->dbs", [(2, 5, 7), (7, 3)]),          # output needs a permutation
    ("ij,kj->ik", [(5, 7), (6, 7)]),
    ("ij,jk", [(5, 7), (7, 6)]),                   # implicit output
    ("...ij,...jk->...ik", [(2, 3, 5, 7), (3, 7, 4)]),
    ("bij,bjk->bik", [(1, 5, 7), (3, 7, 4)]),        # broadcast batch index
    ("bnhd,bmhd->bhnm", [(1, 6, 2, 4), (1, 5, 2, 4)]),  # transposed layouts (copied)
    ("i,i->", [(7,), (7,)]),
    ("ij->ji", [(4, 6)]),
])
def test_einsum(eq, shapes):
    inputs = {f"x{k}": rnd(*s, seed=k) for k, s in enumerate(shapes)}
    close("Einsum", inputs, {"equation": eq})


def test_einsum_const_weights():
    close("Einsum", {"x": rnd(2, 5, 7)}, {"equation": "bsh,hd->bsd"}, consts={"w": rnd(7, 9, seed=3)})


@pytest.mark.parametrize("eq,shapes", [("ii->i", [(4, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
                                       ("ij,kl->ijl", [(2, 3), (4, 5)])])
def test_einsum_unsupported(eq, shapes):
    model = make_single_node_model("Einsum", {f"x{k}": rnd(*s) for k, s in enumerate(shapes)},
                                   {"equation": eq})
    with pytest.raises(UnsupportedModelError):
        compiler.compile_onnx(model)


# ---- ISA fallback ----------------------------------------------------------------------

def test_plan_packed_for_avx2_runs_on_generic_cpu():
    """A plan packed for the 6x16 tile must still run (portable kernel) when the CPU cap
    is lowered below the plan's level, and the portable tile is what runs."""
    model = make_single_node_model("MatMul", {"a": rnd(13, 40)}, consts={"w": rnd(40, 35, seed=1)})
    plan = compiler.compile_onnx(model, isa=1)
    want = reference_outputs(model, {"a": rnd(13, 40)})
    with kernels.variants_run() as ran, kernels.isa_cap(0):
        assert kernels.isa_level() == 0
        got = compiler.execute(plan, [rnd(13, 40)], num_threads=2)
    assert {k for k in ran if k[0] == "gemm_tile"} == {("gemm_tile", "generic")}
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["matmul_const", "matmul_runtime", "conv", "conv_dw", "conv_t"])
def test_avx512_layout_on_every_cap(case):
    """Plans packed for the AVX-512 8x32 tile run under every CPU cap: natively, as the
    16-lane form on AVX2 halves, and on the portable kernel of the same geometry."""
    from tests.ops.test_conv import rnd as crnd

    if case == "matmul_const":
        inputs, model = {"a": rnd(19, 45)}, make_single_node_model("MatMul", {"a": rnd(19, 45)}, consts={"w": rnd(45, 70, seed=1)})
    elif case == "matmul_runtime":
        inputs = {"a": rnd(2, 19, 45), "b": rnd(45, 37, seed=1)}
        model = make_single_node_model("MatMul", inputs)
    elif case == "conv":
        inputs = {"x": crnd(1, 5, 9, 10)}
        model = make_single_node_model("Conv", inputs, {"pads": [1, 1, 1, 1]}, consts={"w": crnd(11, 5, 3, 3, seed=1)})
    elif case == "conv_dw":
        inputs = {"x": crnd(1, 5, 9, 20)}
        model = make_single_node_model("Conv", inputs, {"pads": [1, 1, 1, 1], "group": 5}, consts={"w": crnd(5, 1, 3, 3, seed=1)})
    else:
        inputs = {"x": crnd(1, 5, 4, 5)}
        model = make_single_node_model("ConvTranspose", inputs, {"strides": [2, 2]}, consts={"w": crnd(5, 3, 3, 3, seed=1)})
    want = reference_outputs(model, inputs)
    for nt in (1, 2):
        plan = compile_with_node_attrs(model, {}, isa=2, max_threads=nt)
        from deepsparse_lite import step_params as sp
        assert int(sp.view(plan.steps[0], sp.GEMM)["level"]) == 2
        for cap in range(kernels.top_isa_level() + 1):
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [inputs[i.name] for i in plan.inputs], num_threads=nt)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4, err_msg=f"cap={cap}")


@pytest.mark.parametrize("M", [1, 2, 7])
@pytest.mark.parametrize("N", [5, 16, 21, 40, 1000])
def test_identical_columns_give_identical_bits(M, N):
    """Columns with the same weights come out bit-identical whichever panel (full, half or
    partial width) computes them: ONNX's light_resnet50 / vgg19 feed 1e30-sized equal
    logits to a softmax, where a last-ulp difference between panels is a wrong answer."""
    K = 300
    x = rnd(M, K)
    w = np.repeat(rnd(K, 1, seed=1), N, axis=1)
    bias = np.full(N, 0.25, np.float32)
    model = make_single_node_model("Gemm", {"x": x}, {"alpha": 0.7}, consts={"w": w, "b": bias})
    for isa, cap in isa_combos():
        for nt in (1, 2):
            got = run_model(model, {"x": x}, threads=nt, isa=isa, cap=cap)[0]
            assert (got == got[:, :1]).all(), f"isa={isa} cap={cap} threads={nt}"
