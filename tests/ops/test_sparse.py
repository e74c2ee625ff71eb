"""Sparse-weight kernels (family 6) against the ONNX reference / onnxruntime: tile edges
(odd M, N, K, half and partial tiles), sparsity 0-100%, fused epilogues, 1-2 threads, every
(plan level, CPU cap) pair; the per-layer choice and the plan listing; whole pruned sample
models against onnxruntime."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite import compiler, kernels
from deepsparse_lite.kernels import gemm as gemm_kernels
from deepsparse_lite.kernels import sparse as sparse_kernels
from deepsparse_lite.ops import sparse as sp
from deepsparse_lite.ops.base import Act
from tests.helpers import (assert_outputs_close, isa_combos, make_single_node_model,
                           reference_outputs, run_model)

SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]


@pytest.fixture(autouse=True)
def split_small_work():
    """Tiny shapes go through the multi-thread partitioning too."""
    old = sparse_kernels.set_min_work(1), gemm_kernels.set_min_work(1)
    yield
    sparse_kernels.set_min_work(old[0])
    gemm_kernels.set_min_work(old[1])


def pruned(shape, sparsity, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    w = rng.standard_normal(shape).astype(np.float32)
    w[rng.random(shape) < sparsity] = 0.0
    return w


def rnd(*shape, seed=1):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(np.float32)


def check_sparse(model, feeds, want=None, rtol=1e-4, atol=1e-4, threads=(1, 2), combos=None,
                 expect_sparse=True):
    """Run ``model`` forced sparse for every (level, cap) pair and thread count; the plan
    must hold a sparse step (expect_sparse) and match ``want`` (default: the reference)."""
    want = reference_outputs(model, feeds) if want is None else want
    for isa, cap in combos or isa_combos():
        for nt in threads:
            plan = compiler.compile_onnx(model, max_threads=nt, isa=isa, sparse="sparse")
            rows = compiler.describe_plan(plan)
            assert any(r["sparse"] for r in rows) == expect_sparse, rows
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [feeds[i.name] for i in plan.inputs], num_threads=nt)
            assert_outputs_close(got, want, rtol, atol, f"sparse (isa={isa}, cap={cap}, threads={nt})")


# ---- MatMul / Gemm ---------------------------------------------------------------------

# tokens M across the tile widths (16 / 32 / 64: full, half, partial vectors), odd K and N
GEMM_SHAPES = [(1, 1, 1), (1, 33, 17), (5, 17, 33), (17, 5, 130), (33, 130, 17), (63, 20, 9),
               (64, 9, 20), (65, 31, 7), (130, 33, 5), (3, 600, 40)]


@pytest.mark.parametrize("M,K,N", GEMM_SHAPES)
def test_matmul_sparse_tile_edges(M, K, N):
    check_sparse(make_single_node_model("MatMul", {"a": rnd(M, K)}, consts={"w": pruned((K, N), 0.7)}),
                 {"a": rnd(M, K)}, atol=1e-4 * max(1, np.sqrt(K)))


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("M,K,N", [(7, 40, 33), (70, 50, 21)])
def test_matmul_sparsity_levels(M, K, N, sparsity):
    a = rnd(M, K)
    check_sparse(make_single_node_model("MatMul", {"a": a}, consts={"w": pruned((K, N), sparsity)}),
                 {"a": a})


def test_matmul_batched_activation():
    a = rnd(2, 3, 19, 24)
    check_sparse(make_single_node_model("MatMul", {"a": a}, consts={"w": pruned((24, 10), 0.8)}),
                 {"a": a})


@pytest.mark.parametrize("attrs,c_shape", [
    ({}, None), ({"transA": 1}, None), ({"transB": 1}, None),
    ({"alpha": 0.5, "beta": 2.0}, (9,)),      # constant per-column C: folded into the bias
    ({"beta": 0.5}, (13, 9)),                 # full constant C: the addend D
    ({"alpha": 1.5, "beta": 0.25}, (13, 1)),  # a per-row C broadcast over columns (csd = 0)
])
def test_gemm_sparse_attributes(attrs, c_shape):
    M, K, N = 13, 21, 9
    a = rnd(K, M) if attrs.get("transA") else rnd(M, K)
    w = pruned((N, K) if attrs.get("transB") else (K, N), 0.8)
    consts = {"w": w}
    if c_shape is not None:
        consts["c"] = rnd(*c_shape, seed=5)
    check_sparse(make_single_node_model("Gemm", {"a": a}, attrs, consts=consts), {"a": a})


def _chain(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _vi(name, shape):
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


@pytest.mark.parametrize("act", ["Relu", "Sigmoid", "Clip", None])
def test_matmul_fused_bias_activation(act):
    """MatMul + Add(bias) + activation fuse into one step with the epilogue (in registers
    for the clamp-type activations, after the store for the others)."""
    M, K, N = 37, 45, 29
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["y0"])]
    inits = {"w": pruned((K, N), 0.85), "bias": rnd(N, seed=3)}
    last = "y0"
    if act == "Clip":
        inits.update(lo=np.array(-0.5, np.float32), hi=np.array(0.7, np.float32))
        nodes.append(helper.make_node("Clip", ["y0", "lo", "hi"], ["y"]))
        last = "y"
    elif act:
        nodes.append(helper.make_node(act, ["y0"], ["y"]))
        last = "y"
    m = _chain(nodes, [_vi("a", [M, K])], [_vi(last, None)], inits)
    a = rnd(M, K)
    check_sparse(m, {"a": a})
    plan = compiler.compile_onnx(m, isa=2, sparse="sparse")
    assert len(plan.steps) == 1  # bias and activation fused into the sparse step


@pytest.mark.parametrize("act", ["Relu", "Sigmoid", None])
@pytest.mark.parametrize("M,N", [(70, 37), (16, 48), (5, 3)])
def test_gemm_addend_in_the_epilogue(act, M, N):
    """Gemm with a full C (the addend D, beta * C) [+ activation]: D goes into the
    transposed-output tile's epilogue (blocks of 16 output columns, partial blocks and
    token tiles included), before the clamp; the Sigmoid runs after the store."""
    K = 40
    nodes = [helper.make_node("Gemm", ["a", "w", "c"], ["y0"], beta=0.75)]
    last = "y0"
    if act:
        nodes.append(helper.make_node(act, ["y0"], ["y"]))
        last = "y"
    m = _chain(nodes, [_vi("a", [M, K])], [_vi(last, None)],
               {"w": pruned((K, N), 0.8), "c": rnd(M, N, seed=7)})
    check_sparse(m, {"a": rnd(M, K)})
    plan = compiler.compile_onnx(m, isa=2, sparse="sparse")
    assert len(plan.steps) == 1, compiler.format_plan(plan)


# ---- Conv -----------------------------------------------------------------------------

CONV_CASES = [
    ((2, 17, 7, 9), (33, 17, 1, 1), {}),                        # 1x1 direct, 63 pixels
    ((1, 8, 4, 4), (5, 8, 1, 1), {}),                           # 16 pixels: one vector
    ((1, 3, 9, 15), (4, 3, 1, 1), {}),                          # 135 pixels: partial tiles
    ((1, 16, 9, 11), (20, 16, 3, 3), {"pads": [1, 1, 1, 1]}),   # 3x3 through im2col
    ((2, 6, 10, 10), (7, 6, 3, 3), {"strides": [2, 2]}),        # strided
    ((1, 5, 20, 70), (9, 5, 1, 1), {"strides": [2, 1]}),        # strided 1x1: im2col
    ((1, 4, 12, 12), (6, 4, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((1, 3, 9), (4, 3, 3), {}),                                 # 1-D
    # stride 1 k x k: shifted windows of a zero-padded copy (SHIFT)
    ((2, 5, 8, 11), (7, 5, 3, 3), {"pads": [0, 1, 2, 0]}),      # asymmetric pads
    ((1, 7, 20, 30), (40, 7, 5, 5), {"pads": [2, 2, 2, 2]}),    # tiles across output rows
    ((1, 6, 13, 6), (9, 6, 3, 1), {"pads": [1, 0, 1, 0]}),      # 3x1
    ((1, 4, 3, 40), (5, 4, 3, 3), {}),                          # one output row, no pads
    ((1, 3, 5, 5), (4, 3, 3, 3), {"pads": [3, 3, 3, 3]}),       # pads past the kernel
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES)
def test_conv_sparse_shapes(xs, ws, attrs, monkeypatch):
    monkeypatch.setenv("DSL_SPMM_SHIFT", "1")  # every stride-1 k x k case through SHIFT
    x = rnd(*xs)
    m = make_single_node_model("Conv", {"x": x}, attrs, consts={"w": pruned(ws, 0.75), "b": rnd(ws[0], seed=2)})
    check_sparse(m, {"x": x})


def test_conv_stride1_without_shift_uses_im2col(monkeypatch):
    """DSL_SPMM_SHIFT=0: a stride-1 3x3 conv goes through im2col again, still right."""
    monkeypatch.setenv("DSL_SPMM_SHIFT", "0")
    x = rnd(1, 6, 9, 10)
    m = make_single_node_model("Conv", {"x": x}, {"pads": [1, 1, 1, 1]},
                               consts={"w": pruned((8, 6, 3, 3), 0.7), "b": rnd(8, seed=2)})
    check_sparse(m, {"x": x})


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_conv_sparsity_levels(sparsity):
    x = rnd(1, 24, 6, 11)
    m = make_single_node_model("Conv", {"x": x}, {"pads": [1, 1, 1, 1]},
                               consts={"w": pruned((19, 24, 3, 3), sparsity), "b": rnd(19, seed=2)})
    check_sparse(m, {"x": x})
    m1 = make_single_node_model("Conv", {"x": x}, consts={"w": pruned((19, 24, 1, 1), sparsity)})
    check_sparse(m1, {"x": x})


def test_conv_grouped_stays_dense():
    x = rnd(1, 8, 5, 5)
    m = make_single_node_model("Conv", {"x": x}, {"group": 2}, consts={"w": pruned((6, 4, 1, 1), 0.9)})
    check_sparse(m, {"x": x}, expect_sparse=False, combos=[(2, kernels.top_isa_level())])


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("shift", ["0", "1"])
def test_conv_fused_relu_and_residual(k, shift, monkeypatch):
    """Conv + bias + Add(residual) + Relu: the addend and the activation run in the sparse
    step's epilogue, like the dense one's (SHIFT: after the copy to y)."""
    monkeypatch.setenv("DSL_SPMM_SHIFT", shift)
    C, H, W = 12, 9, 10
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4),
             helper.make_node("Add", ["c", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    m = _chain(nodes, [_vi("x", [2, C, H, W])], [_vi("y", None)],
               {"w": pruned((C, C, k, k), 0.8), "b": rnd(C, seed=4)})
    x = rnd(2, C, H, W)
    check_sparse(m, {"x": x})
    plan = compiler.compile_onnx(m, isa=2, sparse="sparse")
    assert len(plan.steps) == 1


# ---- the choice and the listing ----------------------------------------------------------

def _mm_model(K, N, sparsity, M=32):
    return make_single_node_model("MatMul", {"a": rnd(M, K)}, consts={"w": pruned((K, N), sparsity)})


def test_forced_modes_and_listing(monkeypatch):
    m = _mm_model(64, 48, 0.9)
    rows = compiler.describe_plan(compiler.compile_onnx(m, sparse="dense"))
    assert [(r["kernel"], r["sparse"], r["why"]) for r in rows] == [("GEMM", False, "forced dense")]
    assert rows[0]["sparsity"] == pytest.approx(sp.weight_sparsity(m.graph.initializer and
                                                                    numpy_helper.to_array(m.graph.initializer[0])), abs=1e-4)
    rows = compiler.describe_plan(compiler.compile_onnx(m, sparse="sparse"))
    assert [(r["kernel"], r["sparse"]) for r in rows] == [("SPMM_GEMM", True)]
    monkeypatch.setenv("DSL_SPARSE", "sparse")
    plan = compiler.compile_onnx(m)
    assert plan.stats["sparse_steps"] == 1 and plan.stats["sparse_mode"] == "sparse"
    assert "SPMM_GEMM" in compiler.format_plan(plan)
    monkeypatch.setenv("DSL_SPARSE", "bogus")
    with pytest.raises(ValueError, match="sparse mode"):
        compiler.compile_onnx(m)


def test_auto_below_threshold_stays_dense_without_timing():
    from deepsparse_lite.compiler import sparsity as timing

    timing.clear_cache()
    rows = compiler.describe_plan(compiler.compile_onnx(_mm_model(64, 48, 0.3), sparse="auto"))
    assert rows[0]["sparse"] is False and rows[0]["why"].startswith("sparsity <")
    assert timing.cache_size() == 0


def test_auto_times_each_shape_once_and_picks_by_measurement(monkeypatch):
    """Two layers of one shape and sparsity bucket are timed once; the faster (with the
    bias toward dense) is kept, whatever the timer says."""
    from deepsparse_lite.compiler import sparsity as timing

    timing.clear_cache()
    calls = []

    def fake_measure(emit_dense, emit_sparse, inputs, out_shape, isa, threads, precision="fp32"):
        calls.append(tuple(inputs))
        return fake_measure.result

    monkeypatch.setattr(timing, "_measure", fake_measure)
    K = N = 40
    nodes = [helper.make_node("MatMul", ["a", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])]
    m = _chain(nodes, [_vi("a", [8, K])], [_vi("y", None)],
               {"w1": pruned((K, N), 0.9, seed=1), "w2": pruned((K, N), 0.9, seed=1)[::-1] * 0.5})
    feeds = {"a": rnd(8, K)}
    want = reference_outputs(m, feeds)
    for result, sparse_wanted in (((1.0, 0.5), True), ((1.0, 0.95), False)):
        timing.clear_cache()
        calls.clear()
        fake_measure.result = result
        plan = compiler.compile_onnx(m, sparse="auto")
        assert len(calls) == 1
        assert [r["sparse"] for r in compiler.describe_plan(plan)] == [sparse_wanted] * 2
        assert_outputs_close(compiler.execute(plan, [feeds["a"]]), want, 1e-4, 1e-4, "auto")


def test_auto_real_timing_runs_and_is_correct():
    from deepsparse_lite.compiler import sparsity as timing

    timing.clear_cache()
    m = _mm_model(96, 80, 0.95)
    plan = compiler.compile_onnx(m, sparse="auto", max_threads=2)
    row = compiler.describe_plan(plan)[0]
    assert row["why"] == "timed" and row["dense_ms"] > 0 and row["sparse_ms"] > 0
    feeds = {"a": rnd(32, 96)}
    assert_outputs_close(compiler.execute(plan, [feeds["a"]], num_threads=2),
                         reference_outputs(m, feeds), 1e-4, 1e-4, "auto")


def test_pack_csr_layout():
    w = np.array([[0, 2, 0, 3], [0, 0, 0, 0], [5, 0, 0, 0]], np.float32)
    blob, nnz, ov, oc = sp.pack_csr(w)
    assert nnz == 3
    assert list(blob[:16].view(np.int32)) == [0, 2, 2, 3]
    assert list(blob[ov:ov + 12].view(np.float32)) == [2, 3, 5]
    assert list(blob[oc:oc + 6].view(np.uint16)) == [1, 3, 0]
    with pytest.raises(ValueError):
        sp.pack_csr(np.zeros((1, 70000), np.float32))


def test_corrupt_sparse_step_is_an_error_not_a_crash():
    from deepsparse_lite.step_params import SPMM, view

    m = _mm_model(16, 8, 0.5)
    plan = compiler.compile_onnx(m, sparse="sparse")
    rec = view(plan.steps[0], SPMM)
    rec["nnz"] = int(rec["nnz"]) + 1   # the row starts no longer end at nnz
    with pytest.raises(compiler.PlanExecutionError):
        compiler.execute(plan, [rnd(32, 16)])


# ---- whole pruned models -------------------------------------------------------------------

def magnitude_prune(model: onnx.ModelProto, sparsity: float) -> onnx.ModelProto:
    """Zero the smallest-magnitude ``sparsity`` of every initializer of rank >= 2 (the
    Conv / MatMul / Gemm weights), per tensor, with numpy."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim < 2 or w.dtype != np.float32 or w.size < 64:
            continue
        cut = np.quantile(np.abs(w), sparsity)
        w = np.where(np.abs(w) <= cut, 0, w).astype(np.float32)
        init.CopyFrom(numpy_helper.from_array(w, init.name))
    return out


@pytest.mark.parametrize("name", ["resnet_tiny", "bert_tiny", "mobilenet_v2_tiny"])
def test_pruned_sample_model_matches_onnxruntime(name):
    import onnxruntime as ort

    from deepsparse_lite.models import build_model, sample_inputs

    model = magnitude_prune(build_model(name, batch_size=2), 0.9)
    feeds = dict(zip([i.name for i in model.graph.input], sample_inputs(name, 2)))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    top = kernels.top_isa_level()
    for isa, cap, nt in ((2, top, 2), (1, min(1, top), 1), (0, 0, 2)):
        plan = compiler.compile_onnx(model, max_threads=nt, isa=isa, sparse="sparse")
        assert plan.stats["sparse_steps"] > 0
        with kernels.isa_cap(cap):
            got = compiler.execute(plan, [feeds[i.name] for i in plan.inputs], num_threads=nt)
        assert_outputs_close(got, want, 2e-3, 2e-3, f"{name} (isa={isa}, cap={cap}, threads={nt})")


def test_engine_layer_listing(tmp_path, monkeypatch):
    from deepsparse_lite import Engine

    monkeypatch.setenv("DSL_SPARSE", "sparse")
    path = tmp_path / "mm.onnx"
    onnx.save(_mm_model(64, 48, 0.9), str(path))
    eng = Engine(str(path), batch_size=None, num_cores=1)
    try:
        rows = eng.layer_listing
        assert [(r["node"], r["kernel"], r["sparse"]) for r in rows] == [("MatMul_0", "SPMM_GEMM", True)]
        assert 0.85 < rows[0]["sparsity"] < 0.95
    finally:
        eng.close()
