"""Softmax, LogSoftmax, LayerNormalization, BatchNormalization and LRN against an oracle
(onnx.reference, or numpy / onnxruntime where the reference implements another version)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deepsparse_lite.compiler import compile_onnx
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import min_work, check_op, make_single_node_model

RNG = np.random.default_rng(4321)


@pytest.fixture(autouse=True, scope="module")
def _small_shapes_use_threads():
    """Per-thread work threshold 1: with threads=2 even these small shapes split (so the
    partitioning is tested); the default keeps small work on one thread."""
    with min_work(1, "reduce", "pool"):
        yield

def _randn(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _ort(model, inputs):
    """onnxruntime's outputs; the helper leaves output types undefined: float32 here."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for o in model.graph.output:
        o.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def _softmax_np(x, axis, log=False):
    x64 = x.astype(np.float64)
    z = x64 - x64.max(axis=axis, keepdims=True)
    if log:
        return (z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(np.float32)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


# ---- Softmax / LogSoftmax ---------------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [-1, 0, 1, 2, -4])
def test_softmax_opset13_axes(op, axis):
    x = _randn(2, 3, 5, 7, scale=3.0)
    check_op(op, {"x": x}, {"axis": axis}, opset=13)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_opset11_flattens_at_axis(op, axis):
    # before opset 13 the input is coerced to 2-D at axis: one softmax over the whole tail
    x = _randn(2, 3, 4, 5, scale=2.0)
    a = axis % x.ndim
    want = _softmax_np(x.reshape(int(np.prod(x.shape[:a])), -1), 1, op == "LogSoftmax").reshape(x.shape)
    check_op(op, {"x": x}, {"axis": axis}, opset=11, expected=[want])
    check_op(op, {"x": x}, {}, opset=11, expected=[_softmax_np(x.reshape(2, -1), 1, op == "LogSoftmax")
                                                   .reshape(x.shape)])   # default axis 1


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_attention_shape_and_masks(op):
    # BERT attention scores [1, 12, 128, 128] with additive -10000 masks on some keys
    x = _randn(1, 12, 128, 128, scale=4.0)
    x[..., 100:] += -10000.0
    # the reference's LogSoftmax is log(softmax) and gives -inf there; ours stays finite
    want = [_softmax_np(x, -1, log=True)] if op == "LogSoftmax" else None
    check_op(op, {"x": x}, {"axis": -1}, opset=13, rtol=1e-4, atol=1e-6, expected=want)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((3, 1, 77), -1), ((2, 5, 1100), 1), ((1, 9, 3000), 1),
                                        ((4, 1), -1), ((300, 3), 0)])
def test_softmax_odd_shapes(op, shape, axis):
    x = _randn(*shape, scale=10.0)   # large logits: the max subtraction must keep it finite
    check_op(op, {"x": x}, {"axis": axis}, opset=13)


# ---- LayerNormalization ------------------------------------------------------------------

def test_layernorm_bert_hidden():
    x = _randn(2, 128, 768) + 0.5
    w, bias = _randn(768), _randn(768)
    check_op("LayerNormalization", {"x": x}, {"axis": -1, "epsilon": 1e-12},
             consts={"w": w, "b": bias}, opset=17, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, -2, 1, 0])
def test_layernorm_axes_with_stats_outputs(axis):
    x = _randn(2, 3, 5, 7, scale=2.0) + 1.0
    norm = x.shape[axis % 4:]
    check_op("LayerNormalization", {"x": x}, {"axis": axis},
             consts={"w": _randn(*norm), "b": _randn(*norm)}, n_outputs=3, opset=17, rtol=1e-5,
             atol=1e-5)


def test_layernorm_no_bias_runtime_broadcast_scale():
    x = _randn(4, 6, 37)
    # Scale as a graph input, broadcast (37,) -> normalised shape (6, 37); no bias
    check_op("LayerNormalization", {"x": x, "w": _randn(37)}, {"axis": -2}, opset=17, rtol=1e-5,
             atol=1e-5)
    # broadcast bias given as a constant of shape (1, 37)
    check_op("LayerNormalization", {"x": x}, {"axis": -2},
             consts={"w": _randn(6, 37), "b": _randn(1, 37)}, opset=18, rtol=1e-5, atol=1e-5)


def test_layernorm_only_mean_output():
    x = _randn(3, 10)
    m = make_single_node_model("LayerNormalization", {"x": x}, {"axis": 1},
                               consts={"w": _randn(10), "b": _randn(10)}, n_outputs=2, opset=17)
    from tests.helpers import reference_outputs, run_model
    want = reference_outputs(m, {"x": x})
    got = run_model(m, {"x": x})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)


# ---- BatchNormalization -------------------------------------------------------------------

def _bn_params(c):
    return {"scale": _randn(c), "bias": _randn(c), "mean": _randn(c),
            "var": RNG.uniform(0.5, 2.0, c).astype(np.float32)}


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (3, 6), (2, 4, 33), (1, 3, 1, 1)])
@pytest.mark.parametrize("opset", [9, 14, 15])
def test_batchnorm_constant_params(shape, opset):
    x = _randn(*shape)
    params = _bn_params(shape[1])
    want = None
    if opset < 14:   # onnx.reference's BN-9 uses batch statistics (momentum default): ask ORT
        want = _ort(make_single_node_model("BatchNormalization", {"x": x}, {"epsilon": 1e-3},
                                           consts=params, opset=opset), {"x": x})
    check_op("BatchNormalization", {"x": x}, {"epsilon": 1e-3}, consts=params, opset=opset,
             expected=want)


def test_batchnorm_runtime_params():
    x = _randn(2, 4, 6, 5)
    ins = {"x": x, **_bn_params(4)}
    check_op("BatchNormalization", ins, {}, opset=15)


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 3, 4, 5), (3, 6), (2, 4, 33), (2, 3, 1, 1)])
@pytest.mark.parametrize("runtime", [True, False])
def test_batchnorm_training_mode(shape, runtime):
    # batch statistics; running_mean / running_var outputs (BN-14+)
    x = _randn(*shape, scale=3.0) + 2.0
    params = _bn_params(shape[1])
    attrs = {"training_mode": 1, "momentum": 0.7, "epsilon": 1e-2}
    if runtime:
        check_op("BatchNormalization", {"x": x, **params}, attrs, n_outputs=3, opset=15)
    else:
        check_op("BatchNormalization", {"x": x}, attrs, consts=params, n_outputs=3, opset=15)


def test_batchnorm_training_mode_some_outputs():
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    from tests.helpers import run_model

    x = _randn(2, 3, 4)
    params = _bn_params(3)
    check_op("BatchNormalization", {"x": x}, {"training_mode": 1}, consts=params, opset=14)
    # running_mean omitted, running_var requested
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"],
                            ["y", "", "rv"], training_mode=1)
    graph = helper.make_graph(
        [node], "bn", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in ("y", "rv")],
        [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    want = ReferenceEvaluator(model).run(None, {"x": x})
    for nt in (1, 2):
        got = run_model(model, {"x": x}, threads=nt)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_batchnorm_old_training_outputs_are_rejected():
    x = _randn(2, 3, 4)
    m = make_single_node_model("BatchNormalization", {"x": x}, {}, consts=_bn_params(3), opset=9,
                               n_outputs=3)
    with pytest.raises(UnsupportedModelError, match="BatchNormalization node .*training outputs"):
        compile_onnx(m)


# ---- LRN -----------------------------------------------------------------------------------

def _lrn_np(x, size, alpha, beta, bias):
    """The spec's formula: window [c - floor((size-1)/2), c + ceil((size-1)/2)] over channels."""
    c1, c2 = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.zeros_like(x, dtype=np.float64)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - c1), min(x.shape[1], c + c2 + 1)
        sq[:, c] = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    # onnx.reference's LRN loops over the batch instead of the channels: use the spec
    # formula, itself checked against onnxruntime (which only takes odd sizes)
    x = _randn(2, 7, 5, 6)
    attrs = {"size": size, "alpha": 2e-3, "beta": 0.75, "bias": 1.5}
    want = _lrn_np(x, size, 2e-3, 0.75, 1.5)
    if size % 2:
        m = make_single_node_model("LRN", {"x": x}, attrs, opset=13)
        np.testing.assert_allclose(_ort(m, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
    check_op("LRN", {"x": x}, attrs, opset=13, expected=[want])


# ---- InstanceNormalization ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 5, 33), (3, 4, 1, 1), (2, 16, 64, 64)])
def test_instance_norm(shape):
    x = _randn(*shape, scale=2.0) + 0.5
    c = shape[1]
    check_op("InstanceNormalization", {"x": x}, {"epsilon": 1e-4},
             consts={"s": _randn(c), "b": _randn(c)}, opset=13, rtol=1e-4, atol=1e-4)


def test_instance_norm_runtime_params():
    x = _randn(2, 3, 5, 6)
    check_op("InstanceNormalization", {"x": x, "s": _randn(3), "b": _randn(3)}, {}, opset=9,
             rtol=1e-4, atol=1e-4)


# ---- GroupNormalization, MeanVarianceNormalization ---------------------------------------

@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 7), 3), ((3, 4, 2, 2), 2), ((2, 8, 33), 8),
                                          ((2, 6, 3, 4, 2), 1)])
@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("runtime", [False, True])
def test_group_normalization(shape, groups, opset, runtime):
    # opsets 18-20: scale / bias per group; 21: per channel
    n = groups if opset < 21 else shape[1]
    x = _randn(*shape, scale=2.0) + 1.0
    params = {"scale": _randn(n), "bias": _randn(n)}
    attrs = {"num_groups": groups, "epsilon": 1e-3}
    if runtime:
        check_op("GroupNormalization", {"x": x, **params}, attrs, opset=opset, atol=1e-4)
    else:
        check_op("GroupNormalization", {"x": x}, attrs, consts=params, opset=opset, atol=1e-4)


def test_group_normalization_refusals():
    for attrs, n in (({"num_groups": 4}, 4), ({"num_groups": 2}, 6)):
        m = make_single_node_model("GroupNormalization", {"x": _randn(1, 6, 3)}, attrs,
                                   consts={"scale": _randn(n), "bias": _randn(n)}, opset=18)
        with pytest.raises(UnsupportedModelError, match="GroupNormalization node"):
            compile_onnx(m)


@pytest.mark.parametrize("shape,axes", [((2, 3, 4, 5), None), ((2, 3, 4, 5), [1]),
                                        ((3, 5, 7), [0, 2]), ((2, 3, 4, 5), [2, 3])])
def test_mean_variance_normalization(shape, axes):
    attrs = {} if axes is None else {"axes": axes}
    check_op("MeanVarianceNormalization", {"x": _randn(*shape, scale=3.0) + 1.0}, attrs, opset=13,
             atol=1e-4)
