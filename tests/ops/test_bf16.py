"""The precision="bf16" option (csrc/bf16_gemm.h): constant-weight GEMMs and convolutions
with bfloat16 operands and fp32 accumulation, in every form this machine has (portable C,
AVX-512 BF16, AMX), against a float64 reference on the same bfloat16-rounded operands."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP, helper, numpy_helper

from deepsparse_lite import Engine, compiler, config, kernels
from deepsparse_lite.kernels import gemm as kgemm


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (ties to even), as float32."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


@pytest.fixture(params=[True, False] if kgemm.bf16_amx_available() else [False],
                ids=lambda v: "amx" if v else "no_amx")
def amx(request):
    old = kgemm.set_bf16_amx(request.param)
    yield request.param
    kgemm.set_bf16_amx(old)


@pytest.fixture(autouse=True)
def split_small_work():
    old = kgemm.set_min_work(1)
    yield
    kgemm.set_min_work(old)


CAPS = sorted({kernels.top_isa_level(), 0})


def _model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "bf16", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _run(model, feeds, threads, cap, precision="bf16"):
    plan = compiler.compile_onnx(model, max_threads=threads, precision=precision)
    with kernels.isa_cap(cap):
        return plan, compiler.execute(plan, [feeds[i.name] for i in plan.inputs], num_threads=threads)


def _steps_bf16(plan) -> int:
    from deepsparse_lite.step_params import GEMM, view

    return sum(int(view(s, GEMM)["bf16"]) != 0 for s in plan.steps if s["op"] in (501, 503))


def _close(got, want_hi, scale, what):
    """|got - want| within fp32 summation error of the bf16 products (want in float64)."""
    err = np.abs(got.astype(np.float64) - want_hi)
    bound = 2e-6 * scale + 1e-6
    assert np.all(err <= bound), f"{what}: worst {float((err - bound).max()):.3g} over the bound"


def conv2d_ref(x, w, stride, pad, groups, absval=False):
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    if absval:
        x, w = np.abs(x), np.abs(w)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, co, oh, ow))
    cog = co // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cig:(g + 1) * cig, i:i + stride * oh:stride, j:j + stride * ow:stride]
                y[:, g * cog:(g + 1) * cog] += np.einsum("nchw,oc->nohw", patch,
                                                          w[g * cog:(g + 1) * cog, :, i, j].astype(np.float64))
    return y


@pytest.mark.parametrize("M,K,N", [(1, 7, 5), (37, 45, 70), (64, 96, 64), (129, 33, 31)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cap", CAPS)
def test_gemm_bias_relu(M, K, N, threads, cap, amx):
    rng = np.random.default_rng(M * 7 + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    model = _model([helper.make_node("Gemm", ["a", "w", "b"], ["g"]), helper.make_node("Relu", ["g"], ["y"])],
                   [helper.make_tensor_value_info("a", TP.FLOAT, [M, K])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [M, N])],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    plan, (y,) = _run(model, {"a": a}, threads, cap)
    assert _steps_bf16(plan) == 1
    ar, wr = bf16_round(a).astype(np.float64), bf16_round(w).astype(np.float64)
    want = np.maximum(ar @ wr + bias, 0)
    _close(y, want, np.abs(ar) @ np.abs(wr) + np.abs(bias), "gemm")


@pytest.mark.parametrize("cin,cout,hw,k,stride,pad,groups", [
    (8, 16, 9, 1, 1, 0, 1),      # 1x1 direct
    (3, 40, 11, 3, 1, 1, 1),     # odd channels, 3x3
    (32, 33, 7, 3, 1, 1, 1),     # one K step per tap, an edge row panel
    (64, 64, 14, 3, 1, 1, 1),
    (16, 24, 13, 3, 2, 1, 1),    # stride 2
    (12, 20, 10, 3, 1, 1, 2),    # grouped
    (8, 8, 12, 5, 1, 2, 1),      # 5x5
    (48, 32, 17, 1, 2, 0, 1),    # strided 1x1
])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cap", CAPS)
def test_conv_residual(cin, cout, hw, k, stride, pad, groups, threads, cap, amx):
    rng = np.random.default_rng(cin * 31 + cout + hw)
    x = rng.standard_normal((2, cin, hw, hw)).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    oh = (hw + 2 * pad - k) // stride + 1
    r = rng.standard_normal((2, cout, oh, oh)).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4, group=groups)
    model = _model([conv, helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
                   [helper.make_tensor_value_info("x", TP.FLOAT, x.shape),
                    helper.make_tensor_value_info("r", TP.FLOAT, r.shape)],
                   [helper.make_tensor_value_info("y", TP.FLOAT, r.shape)],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    plan, (y,) = _run(model, {"x": x, "r": r}, threads, cap)
    assert _steps_bf16(plan) == 1
    xr, wr = bf16_round(x), bf16_round(w)
    want = np.maximum(conv2d_ref(xr, wr, stride, pad, groups) + bias[None, :, None, None] + r, 0)
    scale = conv2d_ref(xr, wr, stride, pad, groups, absval=True) + np.abs(bias)[None, :, None, None] + np.abs(r)
    _close(y, want, scale, "conv")


def test_bf16_is_opt_in_and_checked(monkeypatch):
    monkeypatch.delenv("DSL_PRECISION", raising=False)
    assert config.precision_mode() == "fp32"
    monkeypatch.setenv("DSL_PRECISION", "bfloat16")
    assert config.precision_mode() == "bf16"
    monkeypatch.setenv("DSL_PRECISION", "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        config.precision_mode()
    monkeypatch.delenv("DSL_PRECISION")
    with pytest.raises(ValueError, match="precision must be one of"):
        config.precision_mode("int4")


def test_engine_bf16_resnet_close_to_fp32():
    """The sample ResNet-50 in bf16: every conv and the classifier on bf16 steps, logits
    within bfloat16's error of fp32, the argmax unchanged on a random image."""
    from deepsparse_lite.models import sample_model_path

    path = sample_model_path("resnet50")
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with Engine(path, batch_size=1, precision="bf16") as e16, Engine(path, batch_size=1) as e32:
        assert e16.precision == "bf16" and e32.precision == "fp32"
        assert e16._plan.stats["precision"] == "bf16"
        assert _steps_bf16(e16._plan) == 54 and _steps_bf16(e32._plan) == 0
        y16, y32 = e16.run([x])[0], e32.run([x])[0]
    rel = np.abs(y16 - y32).max() / np.abs(y32).max()
    assert 0 < rel < 2e-2, rel
    assert int(y16.argmax()) == int(y32.argmax())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cap", CAPS)
def test_conv_window_dilated_asymmetric(threads, cap, amx):
    """A windowed conv (stride 1, 60 channels padded to 64) with a 3 x 2 kernel, dilation
    (2, 1) and asymmetric pads: positions on the padded grid, taps at dilated offsets."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 60, 11, 9)).astype(np.float32)
    w = rng.standard_normal((70, 60, 3, 2)).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 2], pads=[1, 0, 2, 1],
                            dilations=[2, 1])
    ref = helper.make_model(helper.make_graph(
        [conv], "ref", [helper.make_tensor_value_info("x", TP.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)], [numpy_helper.from_array(bf16_round(w), "w")]),
        opset_imports=[helper.make_opsetid("", 17)])
    ref.ir_version = 8
    model = _model([conv], [helper.make_tensor_value_info("x", TP.FLOAT, x.shape)],
                   [helper.make_tensor_value_info("y", TP.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    plan, (y,) = _run(model, {"x": x}, threads, cap)
    from deepsparse_lite.step_params import GEMM, view
    assert [int(view(s, GEMM)["bf16"]) for s in plan.steps if s["op"] == 503] == [2]
    from onnx.reference import ReferenceEvaluator
    want = ReferenceEvaluator(ref).run(None, {"x": bf16_round(x).astype(np.float64).astype(np.float32)})[0]
    assert y.shape == want.shape
    wabs = np.abs(bf16_round(w))
    scale = conv2d_abs(np.abs(bf16_round(x)), wabs)
    _close(y, want.astype(np.float64), scale, "window conv")


def conv2d_abs(xa, wa):
    """An upper bound of sum |x||w| for the dilated conv above (every tap, every pixel)."""
    return np.full((1, wa.shape[0], 1, 1), float(xa.max() * wa.sum(axis=(1, 2, 3)).max()))


@pytest.mark.parametrize("sa,sb", [((2, 37, 45), (2, 45, 70)), ((3, 2, 33, 64), (64, 31)),
                                   ((1, 128, 64), (1, 64, 128))])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cap", CAPS)
def test_matmul_both_runtime(sa, sb, threads, cap, amx):
    """MatMul with both operands at run time (attention's Q K^T, P V): B packed per call."""
    rng = np.random.default_rng(len(sa) * 13 + sa[-1])
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    out = np.matmul(a, b).shape
    model = _model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                   [helper.make_tensor_value_info("a", TP.FLOAT, sa),
                    helper.make_tensor_value_info("b", TP.FLOAT, sb)],
                   [helper.make_tensor_value_info("y", TP.FLOAT, out)], [])
    plan, (y,) = _run(model, {"a": a, "b": b}, threads, cap)
    from deepsparse_lite.step_params import GEMM, view
    assert [int(view(s, GEMM)["bf16"]) for s in plan.steps if s["op"] == 502] == [1]
    ar, br = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
    _close(y, np.matmul(ar, br), np.matmul(np.abs(ar), np.abs(br)), "matmul")


@pytest.mark.parametrize("cin,cout,hw,kernel,strides,pads", [
    (64, 48, (14, 14), (3, 3), (2, 2), (1, 1, 1, 1)),    # ResNet's stride-2 3x3
    (64, 40, (15, 13), (3, 3), (2, 2), (0, 1, 1, 0)),    # odd sizes, asymmetric pads
    (64, 70, (17, 17), (1, 1), (2, 2), (0, 0, 0, 0)),    # the 1x1 / 2 downsample
    (60, 33, (12, 11), (3, 2), (2, 1), (1, 0, 2, 1)),    # mixed stride, channels padded to 64
    (32, 16, (9, 10), (5, 5), (2, 2), (2, 2, 2, 2)),     # 5x5 / 2: three phases per axis
])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cap", CAPS)
def test_conv_window_strided(cin, cout, hw, kernel, strides, pads, threads, cap, amx):
    """Stride-2 convs read B from phase planes of the input (csrc/bf16_gemm.h
    bg_win_phases): every output pixel against onnx.reference on bf16-rounded operands."""
    from onnx.reference import ReferenceEvaluator

    from deepsparse_lite.step_params import GEMM, view

    rng = np.random.default_rng(cin + cout * 3 + hw[0])
    x = rng.standard_normal((2, cin) + hw).astype(np.float32)
    w = rng.standard_normal((cout, cin) + kernel).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=list(kernel), strides=list(strides),
                            pads=list(pads))
    vin = [helper.make_tensor_value_info("x", TP.FLOAT, x.shape)]
    vout = [helper.make_tensor_value_info("y", TP.FLOAT, None)]
    ref = _model([conv], vin, vout, [numpy_helper.from_array(bf16_round(w), "w"), numpy_helper.from_array(bias, "b")])
    model = _model([conv], vin, vout, [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    plan, (y,) = _run(model, {"x": x}, threads, cap)
    assert [int(view(s, GEMM)["bf16"]) for s in plan.steps if s["op"] == 503] == [2]
    want = ReferenceEvaluator(ref).run(None, {"x": bf16_round(x)})[0].astype(np.float64)
    assert y.shape == want.shape
    wabs = np.abs(bf16_round(w)).astype(np.float64)
    scale = float(np.abs(bf16_round(x)).max() * wabs.sum(axis=(1, 2, 3)).max() + np.abs(bias).max())
    _close(y, want, np.full(want.shape, scale), "strided window conv")
