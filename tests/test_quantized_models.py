"""Sample models quantized by onnxruntime's own tools, run against onnxruntime on the same file.

* ``quantize_dynamic`` (MatMulInteger + DynamicQuantizeLinear, int8 weights) of the tiny BERT;
* ``quantize_static`` in QDQ format (per-channel int8 weights, uint8 activations, 4
  calibration inputs) of the tiny ResNet and MobileNetV2.
Outputs are fp32 (the models end in DequantizeLinear / fp32 ops): they must agree within the
dequantized equivalent of one quantization step of the last quantized tensor."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deepsparse_lite import compiler
from deepsparse_lite.models.registry import build_model, sample_inputs

quantization = pytest.importorskip("onnxruntime.quantization")


def _ort(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _ours(model, feeds, threads, isa=None):
    plan = compiler.compile_onnx(model, max_threads=threads, isa=isa)
    return compiler.execute(plan, [feeds[i.name] for i in plan.inputs], num_threads=threads)


def _last_step(model) -> float:
    """The scale of the last DequantizeLinear (one quantization step of the output)."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    return float(np.max(inits[dq[-1].input[1]])) if dq else 0.0


def _compare(q, feeds, tol):
    want = _ort(q, feeds)
    for isa, threads in ((None, 1), (None, 2), (0, 2)):
        got = _ours(q, feeds, threads, isa)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=0, atol=tol, err_msg=f"isa={isa} threads={threads}")


def test_quantize_dynamic_bert(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = os.path.join(tmp_path, "f.onnx"), os.path.join(tmp_path, "q.onnx")
    build_model("bert_tiny", src)
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    q = onnx.load(dst)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= {n.op_type for n in q.graph.node}
    names = [i.name for i in q.graph.input]
    feeds = dict(zip(names, sample_inputs("bert_tiny", seed=3)))
    # integer GEMMs are exact and the fp32 around them is the same arithmetic up to rounding
    _compare(q, feeds, tol=1e-4)


def _int8_steps(q, feeds):
    from deepsparse_lite.ops.quant import QuantOp
    plan = compiler.compile_onnx(q)
    return sum(int(s["op"]) in (QuantOp.QCONV, QuantOp.QCONVCW, QuantOp.QGEMM) for s in plan.steps)


@pytest.mark.parametrize("name,preprocess", [("resnet_tiny", True), ("resnet_tiny", False),
                                             ("mobilenet_v2_tiny", True)])
def test_quantize_static_qdq(tmp_path, monkeypatch, name, preprocess):
    """With onnxruntime's pre-processing (BatchNorm folded) every Conv / Gemm becomes one
    INT8 step (the QDQ rewrite); without it the BatchNorms keep the convs in fp32."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    src, dst = os.path.join(tmp_path, "f.onnx"), os.path.join(tmp_path, "q.onnx")
    m = build_model(name, src)
    inp = m.graph.input[0].name
    if preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process
        pre = os.path.join(tmp_path, "p.onnx")
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        src = pre

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp: sample_inputs(name, seed=k)[0]} for k in range(4)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = onnx.load(dst)
    assert "QuantizeLinear" in {n.op_type for n in q.graph.node}
    feeds = {inp: sample_inputs(name, seed=11)[0]}
    n_int8 = _int8_steps(q, feeds)
    n_conv = sum(n.op_type in ("Conv", "Gemm", "MatMul") for n in q.graph.node)
    if preprocess:
        assert n_int8 == n_conv, f"{n_int8} INT8 steps for {n_conv} Conv / Gemm nodes"
    _compare(q, feeds, tol=1.01 * _last_step(q) + 1e-6)
    if preprocess:   # the fp32 fallback (no rewrite) agrees too
        monkeypatch.setenv("DSL_QDQ", "0")
        assert _int8_steps(q, feeds) == 0
        _compare(q, feeds, tol=1.01 * _last_step(q) + 1e-6)


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenet_v2_tiny"])
def test_quantize_static_qoperator(tmp_path, name):
    """onnxruntime's QOperator format (per-tensor QLinearConv, com.microsoft QLinearAdd,
    QLinearGlobalAveragePool and QGemm) runs and agrees with onnxruntime."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, dst = (os.path.join(tmp_path, f) for f in ("f.onnx", "p.onnx", "q.onnx"))
    m = build_model(name, src)
    inp = m.graph.input[0].name
    quant_pre_process(src, pre, skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp: sample_inputs(name, seed=k)[0]} for k in range(4)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QOperator, per_channel=False,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = onnx.load(dst)
    ops = {(n.domain, n.op_type) for n in q.graph.node}
    assert ("", "QLinearConv") in ops
    if name == "resnet_tiny":
        assert {("com.microsoft", "QLinearAdd"), ("com.microsoft", "QLinearGlobalAveragePool"),
                ("com.microsoft", "QGemm")} <= ops
    feeds = {inp: sample_inputs(name, seed=12)[0]}
    assert _int8_steps(q, feeds) >= sum(op == "QLinearConv" for _, op in ops)
    deq = [n for n in q.graph.node if n.op_type == "DequantizeLinear"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in q.graph.initializer}
    step = max(float(np.max(inits[n.input[1]])) for n in deq if n.input[1] in inits) if deq else 0.1
    _compare(q, feeds, tol=1.01 * step + 1e-6)
