"""Quantization ops and the INT8 GEMM / Conv kernels against their oracles.

QuantizeLinear / DequantizeLinear against onnx.reference and onnxruntime (ties to even,
saturation, per-axis); DynamicQuantizeLinear against onnxruntime (onnx.reference divides by
zero on an all-zero input); MatMulInteger / ConvInteger against an exact integer NumPy
reference and onnxruntime; QLinearMatMul / QLinearConv against onnxruntime within one
quantization step. Every (plan level, CPU cap) pair (the INT8 GEMM's generic, AVX2-int16 and
AVX-512-VNNI forms, the quantize rows' three forms), 1 and 2 threads, tile-edge shapes
(rows around 8, columns around 16 / 32, K not a multiple of 4)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP, helper, numpy_helper

from deepsparse_lite import compiler
from deepsparse_lite.kernels import quant as kquant
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import check_op, isa_combos, run_model

ONNX_T = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8, np.dtype(np.float32): TP.FLOAT,
          np.dtype(np.int32): TP.INT32}


@pytest.fixture(params=[True, False] if kquant.amx_available() else [False],
                ids=lambda v: "amx" if v else "no_amx")
def amx(request):
    """The INT8 conv's AVX-512 form with AMX tiles (where the CPU has them) and without."""
    old = kquant.set_amx(request.param)
    yield request.param
    kquant.set_amx(old)


@pytest.fixture(autouse=True)
def split_small_work():
    """Tiny shapes go through the multi-thread partitioning too."""
    old = kquant.set_min_work(1)
    yield
    kquant.set_min_work(old)


def rng(seed=0):
    return np.random.default_rng(seed)


def qrand(r, dt, shape):
    ii = np.iinfo(dt)
    return r.integers(ii.min, ii.max + 1, shape).astype(dt)


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, ONNX_T[np.asarray(a).dtype],
                                                                     np.asarray(a).shape)
                                       for n, a in inputs.items()],
                          [helper.make_tensor_value_info(o, TP.UNDEFINED, None) for o in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # onnxruntime wants typed outputs: take them from ONNX's own shape inference
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in m.graph.output:
        if o.name in types and types[o.name].tensor_type.elem_type:
            o.type.tensor_type.elem_type = types[o.name].tensor_type.elem_type
    return m


def ort_run(m, feeds):
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def check_all(m, feeds, want, tol=0, threads=(1, 2)):
    """Every (level, cap) and thread count; integer outputs within ``tol`` of ``want``."""
    for isa, cap in isa_combos():
        for nt in threads:
            got = run_model(m, feeds, threads=nt, isa=isa, cap=cap)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                w = np.asarray(w)
                assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
                if g.size:
                    d = np.abs(g.astype(np.float64) - w.astype(np.float64)).max()
                    assert d <= tol, f"isa={isa} cap={cap} threads={nt}: max diff {d}"


# ---- QuantizeLinear / DequantizeLinear ---------------------------------------------------

@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 100])
def test_quantize_per_tensor_ties_and_saturation(dt, n):
    r = rng(n)
    scale = np.float32(0.25)
    x = (r.integers(-1200, 1200, n) * 0.125).astype(np.float32)   # many exact .5 ties
    zp = np.array(3 if dt == np.uint8 else -5, dt)
    check_op("QuantizeLinear", {"x": x}, consts={"s": scale, "z": zp})
    # saturation of +-inf and huge values: onnx.reference casts inf to int32 (undefined), so
    # onnxruntime is the oracle here
    x[: min(n, 4)] = [np.inf, -np.inf, 1e30, -3e9][: min(n, 4)]
    m = model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": x}, ["y"],
              {"s": scale, "z": zp})
    check_all(m, {"x": x}, ort_run(m, {"x": x}))


@pytest.mark.parametrize("axis,shape", [(1, (2, 5, 7)), (0, (3, 40)), (-1, (4, 3, 17)), (1, (1, 3, 2, 2))])
def test_quantize_dequantize_per_axis(axis, shape):
    r = rng(len(shape))
    x = (r.standard_normal(shape) * 4).astype(np.float32)
    C = shape[axis]
    scale = (r.random(C) * 0.1 + 0.01).astype(np.float32)
    for dt in (np.uint8, np.int8):
        zp = qrand(r, dt, C) // 2
        check_op("QuantizeLinear", {"x": x}, {"axis": axis}, consts={"s": scale, "z": zp})
        q = qrand(r, dt, shape)
        check_op("DequantizeLinear", {"q": q}, {"axis": axis}, consts={"s": scale, "z": zp},
                 rtol=0, atol=0, opset=19)   # onnx.reference has DequantizeLinear-19 and later


def test_quantize_default_zero_point_and_old_opset():
    x = np.linspace(-3, 300, 37, dtype=np.float32)
    m = model([helper.make_node("QuantizeLinear", ["x", "s"], ["y"])], {"x": x}, ["y"],
              {"s": np.float32(1.5)}, opset=10)
    check_all(m, {"x": x}, ort_run(m, {"x": x}))
    q = np.arange(-100, 100, 7, dtype=np.int8)
    m = model([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], {"q": q}, ["y"],
              {"s": np.float32(0.5), "z": np.int8(-4)}, opset=10)
    check_all(m, {"q": q}, ort_run(m, {"q": q}))


def test_dequantize_int32_and_runtime_scale():
    q = np.arange(-50000, 50000, 997, dtype=np.int32)
    check_op("DequantizeLinear", {"q": q}, consts={"s": np.float32(0.003)}, rtol=0, atol=0,
             opset=19)
    # scale and zero point as runtime inputs (read by the kernel at run time)
    check_op("DequantizeLinear", {"q": qrand(rng(), np.uint8, (3, 9)), "s": np.float32(0.1),
                                  "z": np.uint8(9)}, rtol=0, atol=0, opset=19)


def test_quantize_refuses_what_it_does_not_run():
    x = np.zeros((2, 4), np.float32)
    m = model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": x}, ["y"],
              {"s": np.ones((2, 2), np.float32), "z": np.zeros((2, 2), np.uint8)}, opset=21)
    with pytest.raises(UnsupportedModelError, match="blocked"):
        compiler.compile_onnx(m)


# ---- DynamicQuantizeLinear ---------------------------------------------------------------

@pytest.mark.parametrize("shape,shift", [((1,), 0.0), ((7,), 0.5), ((40, 33), 0.0), ((3, 1000), 2.0),
                                         ((5, 6), -3.0)])
def test_dynamic_quantize_linear(shape, shift):
    x = (rng(len(shape)).standard_normal(shape) * 2 + shift).astype(np.float32)
    m = model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], {"x": x},
              ["y", "s", "z"])
    check_all(m, {"x": x}, ort_run(m, {"x": x}))


def test_dynamic_quantize_linear_all_zero():
    x = np.zeros((4, 5), np.float32)
    m = model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], {"x": x},
              ["y", "s", "z"])
    want = ort_run(m, {"x": x})
    check_all(m, {"x": x}, want)


# ---- MatMulInteger: the INT8 GEMM against an exact integer reference ------------------------

GEMM_SHAPES = [(1, 1, 1), (1, 5, 16), (7, 3, 17), (8, 4, 32), (9, 33, 33), (17, 130, 15),
               (65, 66, 70), (2, 768, 48)]


def int_matmul(a, w, za, zw):
    return ((a.astype(np.int64) - np.int64(za)) @ (w.astype(np.int64) - np.asarray(zw, np.int64))).astype(np.int32)


@pytest.mark.parametrize("M,K,N", GEMM_SHAPES)
@pytest.mark.parametrize("adt,wdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8),
                                     (np.int8, np.uint8)])
def test_matmul_integer(M, K, N, adt, wdt):
    r = rng(M * 1000 + K + N)
    a, w = qrand(r, adt, (M, K)), qrand(r, wdt, (K, N))
    za = qrand(r, adt, ())
    zw = qrand(r, wdt, (N,)) if wdt == np.uint8 else np.zeros((), wdt)
    m = model([helper.make_node("MatMulInteger", ["a", "w", "za", "zw"], ["y"])],
              {"a": a}, ["y"], {"w": w, "za": za, "zw": zw})
    check_all(m, {"a": a}, [int_matmul(a, w, za, zw)])


def test_matmul_integer_runtime_zero_point_batched_and_onnxruntime():
    r = rng(5)
    a, w = qrand(r, np.uint8, (2, 3, 37)), qrand(r, np.int8, (37, 50))
    za = np.array(131, np.uint8)
    m = model([helper.make_node("MatMulInteger", ["a", "w", "za"], ["y"])],
              {"a": a, "za": za}, ["y"], {"w": w})
    want = ort_run(m, {"a": a, "za": za})
    np.testing.assert_array_equal(want[0], int_matmul(a, w, za, 0))
    check_all(m, {"a": a, "za": za}, want)
    # no zero points at all, 1-D A
    a1 = qrand(r, np.uint8, (37,))
    m = model([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], {"a": a1}, ["y"], {"w": w})
    check_all(m, {"a": a1}, ort_run(m, {"a": a1}))


def test_matmul_integer_runtime_weights_are_refused():
    a, w = np.zeros((2, 3), np.uint8), np.zeros((3, 4), np.int8)
    m = model([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], {"a": a, "w": w}, ["y"])
    with pytest.raises(UnsupportedModelError, match="constant"):
        compiler.compile_onnx(m)


# ---- QLinearMatMul ---------------------------------------------------------------------------

@pytest.mark.parametrize("M,K,N", [(5, 7, 3), (17, 33, 40), (3, 64, 130), (9, 129, 31)])
@pytest.mark.parametrize("dt,wdt", [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)])
def test_qlinear_matmul(M, K, N, dt, wdt):
    r = rng(M + K + N)
    a, w = qrand(r, dt, (M, K)), qrand(r, wdt, (K, N))
    inits = {"as": np.float32(0.02), "az": np.array(3, dt), "w": w,
             "ws": (r.random(N) * 0.01 + 0.001).astype(np.float32) if wdt == np.int8 else np.float32(0.004),
             "wz": np.array(0 if wdt == np.int8 else 130, wdt),
             "ys": np.float32(0.5), "yz": np.array(100 if dt == np.uint8 else -7, dt)}
    m = model([helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])],
              {"a": a}, ["y"], inits)
    check_all(m, {"a": a}, ort_run(m, {"a": a}), tol=1)


# ---- ConvInteger / QLinearConv ---------------------------------------------------------------

CONVS = [  # N, C, H, W, Cout, k, stride, pad, group
    (1, 3, 9, 9, 8, 3, 1, 1, 1), (2, 8, 7, 6, 20, 3, 2, 1, 1), (1, 16, 5, 5, 33, 1, 1, 0, 1),
    (1, 8, 6, 6, 8, 3, 1, 1, 8), (1, 6, 7, 7, 12, 3, 1, 0, 2), (1, 5, 12, 11, 17, 5, 2, 2, 1)]


@pytest.mark.parametrize("N,C,H,W,Co,k,s,p,g", CONVS)
def test_qlinear_conv_and_conv_integer(N, C, H, W, Co, k, s, p, g):
    r = rng(C * Co + H)
    x = qrand(r, np.uint8, (N, C, H, W))
    w = qrand(r, np.int8, (Co, C // g, k, k))
    bias = r.integers(-2000, 2000, Co).astype(np.int32)
    inits = {"xs": np.float32(0.02), "xz": np.array(7, np.uint8), "w": w,
             "ws": (r.random(Co) * 0.01 + 0.001).astype(np.float32), "wz": np.zeros(Co, np.int8),
             "ys": np.float32(0.3), "yz": np.array(120, np.uint8), "b": bias}
    attrs = dict(pads=[p] * 4, strides=[s, s], group=g)
    m = model([helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                                **attrs)], {"x": x}, ["y"], inits)
    check_all(m, {"x": x}, ort_run(m, {"x": x}), tol=1)
    wu = qrand(r, np.uint8, (Co, C // g, k, k))
    m = model([helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)], {"x": x}, ["y"],
              {"w": wu, "xz": np.array(7, np.uint8), "wz": np.array(200, np.uint8)})
    check_all(m, {"x": x}, ort_run(m, {"x": x}))


def test_qlinear_conv_int8_activations_1d():
    r = rng(3)
    x = qrand(r, np.int8, (2, 6, 19))
    w = qrand(r, np.int8, (10, 6, 3))
    inits = {"xs": np.float32(0.05), "xz": np.array(-3, np.int8), "w": w, "ws": np.float32(0.01),
             "wz": np.array(0, np.int8), "ys": np.float32(0.2), "yz": np.array(4, np.int8)}
    m = model([helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                                pads=[1, 1], strides=[2])], {"x": x}, ["y"], inits)
    check_all(m, {"x": x}, ort_run(m, {"x": x}), tol=1)


# ---- QCONVCW: the channels-as-rows INT8 conv (csrc/q8_conv.h) -------------------------------

CW_CONVS = [  # N, C, H, W, Cout, k, stride, pad, dilation, group
    (1, 16, 21, 21, 24, 1, 1, 0, 1, 1),    # direct (1x1 s1), P = 441 > one pixel block
    (2, 13, 9, 7, 9, 1, 1, 0, 1, 1),       # direct, Cin % 4 = 1, Cout % 8 = 1, 2 images
    (1, 4, 24, 24, 16, 3, 1, 1, 1, 1),     # im2col, several pixel blocks
    (1, 3, 23, 23, 8, 7, 2, 3, 1, 1),      # the stem's shape (Cin 3, 7x7 s2 p3)
    (1, 6, 11, 10, 17, 1, 2, 0, 1, 1),     # 1x1 stride 2: gathered
    (1, 5, 13, 14, 9, 3, 3, 1, 1, 1),      # stride 3 (the gather's generic stride)
    (1, 7, 12, 12, 11, 3, 1, 2, 2, 1),     # dilation 2
    (1, 8, 9, 9, 16, 3, 1, 1, 1, 2),       # groups with Cin/g >= 4 and Cout/g >= 8
    (1, 1, 5, 5, 1, 3, 1, 0, 1, 1),        # one channel in, one out
]


def _cw_steps(m):
    from deepsparse_lite.ops.quant import QuantOp
    plan = compiler.compile_onnx(m.SerializeToString())
    return sum(int(s["op"]) == QuantOp.QCONVCW for s in plan.steps)


@pytest.mark.parametrize("N,C,H,W,Co,k,s,p,d,g", CW_CONVS)
@pytest.mark.parametrize("adt", [np.uint8, np.int8])
def test_qconv_channel_rows(N, C, H, W, Co, k, s, p, d, g, adt, amx):
    r = rng(C * Co + H + k)
    x = qrand(r, adt, (N, C, H, W))
    w = qrand(r, np.int8, (Co, C // g, k, k))
    bias = r.integers(-3000, 3000, Co).astype(np.int32)
    inits = {"xs": np.float32(0.02), "xz": np.array(7 if adt == np.uint8 else -5, adt), "w": w,
             "ws": (r.random(Co) * 0.01 + 0.001).astype(np.float32), "wz": np.zeros(Co, np.int8),
             "ys": np.float32(0.4), "yz": np.array(100 if adt == np.uint8 else 3, adt), "b": bias}
    attrs = dict(pads=[p] * 4, strides=[s, s], dilations=[d, d], group=g)
    m = model([helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                                ["y"], **attrs)], {"x": x}, ["y"], inits)
    assert _cw_steps(m) == 1
    check_all(m, {"x": x}, ort_run(m, {"x": x}), tol=1)
    # ConvInteger with int8 weights (zero point 0): the int32 output, exact
    m = model([helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], **attrs)], {"x": x}, ["y"],
              {"w": w, "xz": inits["xz"]})
    assert _cw_steps(m) == 1
    xi = x.astype(np.int64) - int(inits["xz"])
    want = _conv_ref(xi, w.astype(np.int64), s, p, d, g)
    check_all(m, {"x": x}, [want.astype(np.int32)])


def _conv_ref(x, w, s, p, d, g):
    """Exact integer NCHW convolution (NumPy)."""
    N, C, H, W = x.shape
    Co, cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    OH = (H + 2 * p - d * (k - 1) - 1) // s + 1
    OW = (W + 2 * p - d * (k - 1) - 1) // s + 1
    y = np.zeros((N, Co, OH, OW), np.int64)
    og = Co // g
    for gi in range(g):
        for kh in range(k):
            for kw in range(k):
                patch = xp[:, gi * cg:(gi + 1) * cg, kh * d: kh * d + s * (OH - 1) + 1: s,
                           kw * d: kw * d + s * (OW - 1) + 1: s]
                y[:, gi * og:(gi + 1) * og] += np.einsum("nchw,oc->nohw", patch,
                                                         w[gi * og:(gi + 1) * og, :, kh, kw])
    return y


def test_qconv_channel_rows_can_be_turned_off(monkeypatch):
    r = rng(5)
    x = qrand(r, np.uint8, (1, 8, 6, 6))
    w = qrand(r, np.int8, (8, 8, 3, 3))
    m = model([helper.make_node("ConvInteger", ["x", "w"], ["y"], pads=[1] * 4)], {"x": x}, ["y"],
              {"w": w})
    assert _cw_steps(m) == 1
    monkeypatch.setenv("DSL_QCONVCW", "0")
    assert _cw_steps(m) == 0
    check_all(m, {"x": x}, [_conv_ref(x.astype(np.int64), w.astype(np.int64), 1, 1, 1, 1).astype(np.int32)])


# ---- sparse INT8: QCONVCW with group-sparse weights --------------------------------------------

def _sparse_steps(m, **kw):
    from deepsparse_lite.ops.quant import QuantOp
    plan = compiler.compile_onnx(m.SerializeToString(), **kw)
    return [int(s["op"]) == QuantOp.QCONVCW for s in plan.steps], plan


def _prune(r, w, sparsity, block4=False):
    """Zero a share of the weights: single weights, or whole groups of 4 input channels."""
    w = w.copy()
    if block4:
        co, ci = w.shape[:2]
        ci4 = (ci + 3) // 4
        keep = r.random((co, ci4) + w.shape[2:]) >= sparsity
        mask = np.repeat(keep, 4, axis=1)[:, :ci]
    else:
        mask = r.random(w.shape) >= sparsity
    w[~mask] = 0
    return w


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("shape", [(1, 13, 9, 10, 11, 3, 1, 1), (1, 32, 12, 12, 24, 1, 1, 0),
                                   (2, 8, 15, 15, 17, 3, 2, 1)])
def test_sparse_int8_conv(sparsity, shape, amx):
    N, C, H, W, Co, k, s, p = shape
    r = rng(int(sparsity * 100) + C)
    x = qrand(r, np.uint8, (N, C, H, W))
    w = _prune(r, qrand(r, np.int8, (Co, C, k, k)), sparsity, block4=sparsity == 0.9)
    bias = r.integers(-3000, 3000, Co).astype(np.int32)
    inits = {"xs": np.float32(0.02), "xz": np.array(9, np.uint8), "w": w,
             "ws": (r.random(Co) * 0.01 + 0.001).astype(np.float32), "wz": np.zeros(Co, np.int8),
             "ys": np.float32(0.2), "yz": np.array(90, np.uint8), "b": bias}
    attrs = dict(pads=[p] * 4, strides=[s, s])
    m = model([helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                                ["y"], **attrs)], {"x": x}, ["y"], inits)
    want = ort_run(m, {"x": x})
    for mode in ("sparse", "dense"):
        steps, plan = _sparse_steps(m, sparse=mode)
        assert sum(steps) == 1
        st = [plan.steps[i] for i, v in enumerate(steps) if v][0]
        from deepsparse_lite import step_params
        assert int(step_params.view(st, step_params.QGEMM)["sparse"]) == int(mode == "sparse")
        for isa, cap in isa_combos():
            for nt in (1, 2):
                got = run_model(m, {"x": x}, threads=nt, isa=isa, cap=cap, sparse=mode)
                d = np.abs(got[0].astype(np.int64) - want[0].astype(np.int64)).max()
                assert d <= 1, f"{mode} isa={isa} cap={cap} threads={nt}: {d}"
    # ConvInteger: exact
    m = model([helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], **attrs)], {"x": x}, ["y"],
              {"w": w, "xz": inits["xz"]})
    ref = _conv_ref(x.astype(np.int64) - 9, w.astype(np.int64), s, p, 1, 1).astype(np.int32)
    for isa, cap in isa_combos():
        got = run_model(m, {"x": x}, threads=2, isa=isa, cap=cap, sparse="sparse")
        np.testing.assert_array_equal(got[0], ref)


def test_sparse_int8_auto_choice_follows_group_density():
    r = rng(2)
    x = qrand(r, np.uint8, (1, 16, 8, 8))
    listing = {}
    for name, block4 in (("block", True), ("unstructured", False)):
        w = _prune(r, qrand(r, np.int8, (16, 16, 1, 1)), 0.9, block4=block4)
        m = model([helper.make_node("ConvInteger", ["x", "w"], ["y"])], {"x": x}, ["y"], {"w": w})
        plan = compiler.compile_onnx(m.SerializeToString(), sparse="auto")
        row = [d for d in compiler.describe_plan(plan) if d["kernel"] == "QCONVCW"][0]
        listing[name] = row
    # 90% of whole groups pruned: ~10% nonzero groups -> sparse; 90% unstructured over 4
    # channels of a 1x1 conv leaves 1 - 0.9^4 ~ 34% nonzero groups -> also sparse
    assert listing["block"]["group_density"] < 0.2
    assert 0.2 < listing["unstructured"]["group_density"] < 0.5
    assert "threshold" in listing["block"]["why"]
    w = qrand(r, np.int8, (16, 16, 1, 1))
    m = model([helper.make_node("ConvInteger", ["x", "w"], ["y"])], {"x": x}, ["y"], {"w": w})
    steps, plan = _sparse_steps(m, sparse="auto")
    from deepsparse_lite import step_params
    st = [plan.steps[i] for i, v in enumerate(steps) if v][0]
    assert int(step_params.view(st, step_params.QGEMM)["sparse"]) == 0


# ---- MatMul on the channels-as-rows kernel (token rows) -------------------------------------

@pytest.mark.parametrize("M,K,N", [(1, 5, 3), (7, 33, 17), (50, 64, 40), (130, 96, 9)])
@pytest.mark.parametrize("adt", [np.uint8, np.int8])
@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_matmul_token_rows(M, K, N, adt, mode, amx):
    r = rng(M + K + N)
    a = qrand(r, adt, (2, M, K))
    w = _prune(r, qrand(r, np.int8, (K, N)), 0.8)
    za = np.array(3 if adt == np.uint8 else -2, adt)
    m = model([helper.make_node("MatMulInteger", ["a", "w", "za"], ["y"])], {"a": a}, ["y"],
              {"w": w, "za": za})
    steps, plan = _sparse_steps(m, sparse=mode)
    from deepsparse_lite import step_params
    st = [plan.steps[i] for i, v in enumerate(steps) if v]
    assert len(st) == 1 and int(step_params.view(st[0], step_params.QGEMM)["tokens"]) == 1
    want = ((a.astype(np.int64) - int(za)) @ w.astype(np.int64)).astype(np.int32)
    for isa, cap in isa_combos():
        for nt in (1, 2):
            got = run_model(m, {"a": a}, threads=nt, isa=isa, cap=cap, sparse=mode)
            np.testing.assert_array_equal(got[0], want, err_msg=f"isa={isa} cap={cap} nt={nt}")
    inits = {"as": np.float32(0.03), "za": za, "w": w, "ws": (r.random(N) * 0.02 + 0.001).astype(np.float32),
             "wz": np.zeros(N, np.int8), "ys": np.float32(0.5), "yz": np.array(128 if adt == np.uint8 else 0, adt)}
    m = model([helper.make_node("QLinearMatMul", ["a", "as", "za", "w", "ws", "wz", "ys", "yz"], ["y"])],
              {"a": a}, ["y"], inits)
    want = ort_run(m, {"a": a})
    for isa, cap in isa_combos():
        got = run_model(m, {"a": a}, threads=2, isa=isa, cap=cap, sparse=mode)
        assert np.abs(got[0].astype(np.int64) - want[0].astype(np.int64)).max() <= 1


@pytest.mark.skipif(not kquant.amx_available(), reason="no AMX-INT8 here (the VNNI form runs)")
def test_amx_tiles_really_run(amx):
    r = rng(9)
    x = qrand(r, np.uint8, (1, 40, 10, 10))
    w = qrand(r, np.int8, (48, 40, 3, 3))
    m = model([helper.make_node("ConvInteger", ["x", "w"], ["y"], pads=[1] * 4)], {"x": x}, ["y"],
              {"w": w})
    before = kquant.amx_blocks()
    got = run_model(m, {"x": x}, threads=2, sparse="dense")
    np.testing.assert_array_equal(got[0], _conv_ref(x.astype(np.int64), w.astype(np.int64), 1, 1, 1, 1))
    assert (kquant.amx_blocks() > before) == amx


# ---- QLinearAdd (com.microsoft) and the DQ -> Add [-> Relu] -> Q fusion ------------------------

def _ms_model(nodes, inputs, outputs, inits):
    """A model with com.microsoft nodes (ONNX's shape inference does not know them): the
    outputs typed as the first input."""
    t = ONNX_T[np.asarray(next(iter(inputs.values()))).dtype]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, ONNX_T[np.asarray(a).dtype],
                                                                     np.asarray(a).shape)
                                       for n, a in inputs.items()],
                          [helper.make_tensor_value_info(o, t, None) for o in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", [(1, 5), (2, 3, 7, 9), (1, 64, 13, 13)])
def test_qlinear_add_against_onnxruntime(dt, shape):
    r = rng(len(shape) + shape[-1])
    a, bq = qrand(r, dt, shape), qrand(r, dt, shape)
    z = (lambda v: np.array(v, dt))
    inits = {"as": np.float32(0.05), "az": z(3), "bs": np.float32(0.021), "bz": z(-7 if dt == np.int8 else 130),
             "ys": np.float32(0.07), "yz": z(5)}
    m = _ms_model([helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"],
                                    domain="com.microsoft")], {"a": a, "b": bq}, ["y"], inits)
    want = ort_run(m, {"a": a, "b": bq})
    check_all(m, {"a": a, "b": bq}, want, tol=1)


@pytest.mark.parametrize("relu", [False, True])
def test_dq_add_q_becomes_one_step_and_matches_the_unfused_ops(relu, monkeypatch):
    from deepsparse_lite.ops.quant import QuantOp
    r = rng(7)
    shape = (1, 16, 9, 9)
    a, bq = qrand(r, np.uint8, shape), qrand(r, np.uint8, shape)
    inits = {"as": np.float32(0.05), "az": np.array(3, np.uint8), "bs": np.float32(0.02),
             "bz": np.array(128, np.uint8), "ys": np.float32(0.06), "yz": np.array(0 if relu else 90, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["a", "as", "az"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["s"])]
    last = "s"
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["r"]))
        last = "r"
    nodes.append(helper.make_node("QuantizeLinear", [last, "ys", "yz"], ["y"]))
    m = model(nodes, {"a": a, "b": bq}, ["y"], inits)
    plan = compiler.compile_onnx(m.SerializeToString())
    ops = [int(s["op"]) for s in plan.steps]
    assert ops == [QuantOp.QADD]
    want = ort_run(m, {"a": a, "b": bq})
    check_all(m, {"a": a, "b": bq}, want, tol=1)
    fused = compiler.execute(plan, [a, bq])[0]
    monkeypatch.setenv("DSL_QDQ", "0")      # the unfused ops give the same bytes
    plan = compiler.compile_onnx(m.SerializeToString())
    assert QuantOp.QADD not in [int(s["op"]) for s in plan.steps]
    np.testing.assert_array_equal(compiler.execute(plan, [a, bq])[0], fused)


@pytest.mark.parametrize("relu", [False, True])
def test_qlinear_add_near_ties_is_exact(relu):
    """sa = sb = sy / 2: (a - za) sa + (b - zb) sb over sy lands on or a few ulps from
    half-integers all the time; the kernel's reciprocal shortcut must round every one as
    the true division does (the reference below is the unfused float32 arithmetic)."""
    shape = (3, 1000)
    r = rng(11)
    a, bq = qrand(r, np.uint8, shape), qrand(r, np.uint8, shape)
    sa = sb = np.float32(0.05)
    sy, za, zb, zy = np.float32(0.1), 3, 130, 7
    inits = {"as": sa, "az": np.array(za, np.uint8), "bs": sb, "bz": np.array(zb, np.uint8),
             "ys": sy, "yz": np.array(zy, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["a", "as", "az"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["s"])]
    last = "s"
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["rl"]))
        last = "rl"
    nodes.append(helper.make_node("QuantizeLinear", [last, "ys", "yz"], ["y"]))
    m = model(nodes, {"a": a, "b": bq}, ["y"], inits)
    f = (a.astype(np.int32) - za).astype(np.float32) * sa + (bq.astype(np.int32) - zb).astype(np.float32) * sb
    if relu:
        f = np.maximum(f, np.float32(0))
    want = np.clip(np.rint(f / sy) + zy, 0, 255).astype(np.uint8)
    ties = np.abs(np.abs(f / sy - np.rint(f / sy)) - 0.5) < 1e-3
    assert ties.sum() > 100  # the test data does hit the ties
    from deepsparse_lite.ops.quant import QuantOp
    assert [int(s["op"]) for s in compiler.compile_onnx(m).steps] == [QuantOp.QADD]
    check_all(m, {"a": a, "b": bq}, [want], tol=0)


# ---- 8-bit MaxPool (POOL2D on the bytes) and the QDQ round trip around it ---------------

_POOLS = [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),          # the ResNet stem
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[1, 1], pads=[2, 2, 2, 2], dilations=[2, 2]),
    dict(kernel_shape=[3, 2], strides=[3, 3], pads=[0, 1, 1, 0], ceil_mode=1),
    dict(kernel_shape=[3], strides=[2], pads=[1, 1]),                          # 1-D
]


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("k", range(len(_POOLS)))
def test_8bit_maxpool_against_onnxruntime(dt, k):
    attrs = _POOLS[k]
    r = rng(40 + k)
    shape = (2, 5, 17) if len(attrs["kernel_shape"]) == 1 else (2, 5, 13, 17)
    x = qrand(r, dt, shape)
    m = model([helper.make_node("MaxPool", ["x"], ["y"], **attrs)], {"x": x}, ["y"], opset=13)
    plan = compiler.compile_onnx(m.SerializeToString())
    from deepsparse_lite.ops.pool import PoolOp
    assert [int(s["op"]) for s in plan.steps] == [PoolOp.POOL2D]     # no casts around it
    check_all(m, {"x": x}, ort_run(m, {"x": x}), tol=0)


@pytest.mark.parametrize("scale", [0.037, -0.037])
def test_qdq_round_trip_around_maxpool(scale, monkeypatch):
    """Q(MaxPool(DQ(q))) with one positive scale is MaxPool(q) on the bytes (exactly); a
    negative scale reverses the order, so the round trip must stay."""
    from deepsparse_lite.ops.quant import QuantOp
    r = rng(12)
    x = qrand(r, np.uint8, (1, 8, 15, 15))
    inits = {"s": np.float32(scale), "z": np.array(77, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["f"]),
             helper.make_node("MaxPool", ["f"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["p", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    m = model(nodes, {"x": x}, ["y"], inits)
    plan = compiler.compile_onnx(m.SerializeToString())
    ops = [int(s["op"]) for s in plan.steps]
    assert (QuantOp.QUANTIZE in ops) == (scale < 0)
    assert len(ops) == (4 if scale < 0 else 2)      # POOL2D on the bytes, then the last DQ
    fused = compiler.execute(plan, [x])[0]
    monkeypatch.setenv("DSL_QDQ", "0")      # the ops as ONNX defines them
    plan = compiler.compile_onnx(m.SerializeToString())
    np.testing.assert_array_equal(compiler.execute(plan, [x])[0], fused)
    if scale > 0:
        np.testing.assert_array_equal(ort_run(m, {"x": x})[0], fused)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_8bit_maxpool_3d_stays_on_bytes(dt):
    """N-d pooling runs as separable POOL2D passes whose temporaries hold bytes too."""
    x = qrand(rng(44), dt, (1, 3, 7, 8, 9))
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3, 3], strides=[2, 2, 1],
                                pads=[1, 1, 0, 0, 1, 1])], {"x": x}, ["y"], opset=13)
    from deepsparse_lite.ops.pool import PoolOp
    assert [int(s["op"]) for s in compiler.compile_onnx(m.SerializeToString()).steps] == [PoolOp.POOL2D] * 2
    check_all(m, {"x": x}, ort_run(m, {"x": x}), tol=0)
