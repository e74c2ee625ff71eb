"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool against onnx.reference (small
shapes) or onnxruntime (large shapes, where the reference's Python loops are slow, and the
ceil_mode cases where the reference shifts its windows)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deepsparse_lite.compiler import compile_onnx
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import min_work, check_op, make_single_node_model

RNG = np.random.default_rng(99)


@pytest.fixture(autouse=True, scope="module")
def _small_shapes_use_threads():
    """Per-thread work threshold 1: with threads=2 even these small shapes split (so the
    partitioning is tested); the default keeps small work on one thread."""
    with min_work(1, "reduce", "pool"):
        yield

def _randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _ort(op, x, attrs, opset):
    model = make_single_node_model(op, {"x": x}, attrs, opset=opset)
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


def check_pool(op, x, attrs, opset=19, oracle="reference", **kw):
    want = _ort(op, x, attrs, opset) if oracle == "ort" else None
    return check_op(op, {"x": x}, attrs, opset=opset, expected=want, **kw)


POOL_CASES = [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),          # ResNet stem form
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3]),                                              # stride 1, no pad
    dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0]),          # asymmetric pads
    dict(kernel_shape=[1, 3], strides=[1, 1]),
    dict(kernel_shape=[3, 1], strides=[2, 1], pads=[1, 0, 1, 0]),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 0, 1], ceil_mode=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(kernel_shape=[2, 4], strides=[2, 3], auto_pad="SAME_LOWER"),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
    dict(kernel_shape=[5, 5], strides=[3, 3], pads=[2, 2, 2, 2]),
]


@pytest.mark.parametrize("attrs", POOL_CASES)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool2d(op, attrs):
    x = _randn(2, 3, 11, 13)
    # the reference's MaxPool with strides takes floor(in / stride) for SAME_LOWER
    oracle = "ort" if "auto_pad" in attrs else "reference"
    check_pool(op, x, attrs, oracle=oracle)


@pytest.mark.parametrize("attrs", [a for a in POOL_CASES if "auto_pad" not in a
                                   and any(a.get("pads", [0]))])
def test_avgpool_count_include_pad(attrs):
    x = _randn(1, 4, 10, 9)
    check_pool("AveragePool", x, dict(attrs, count_include_pad=1))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], dilations=[2, 2]),
    dict(kernel_shape=[2, 3], dilations=[2, 1], pads=[1, 2, 1, 2], strides=[1, 2]),
    dict(kernel_shape=[3, 3], dilations=[1, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
])
def test_pool2d_dilations(op, attrs):
    x = _randn(2, 2, 12, 14)
    check_pool(op, x, attrs, oracle="ort")


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("cip", [0, 1])
def test_pool_ceil_mode_stride3_ort(op, cip):
    # stride 3 + ceil_mode: the last window hangs over the end (onnx.reference shifts it)
    attrs = dict(kernel_shape=[3, 3], strides=[3, 3], pads=[1, 0, 1, 0], ceil_mode=1)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    check_pool(op, _randn(1, 3, 10, 11), attrs, oracle="ort")


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [dict(kernel_shape=[3], strides=[2], pads=[1, 1]),
                                   dict(kernel_shape=[4], auto_pad="SAME_UPPER"),
                                   dict(kernel_shape=[2], strides=[2], ceil_mode=1)])
def test_pool1d(op, attrs):
    check_pool(op, _randn(2, 3, 17), attrs, oracle="ort")


def test_maxpool_resnet_stem():
    x = _randn(1, 64, 112, 112)
    check_pool("MaxPool", x, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
               opset=13, oracle="ort")


def test_avgpool_large_opset11():
    x = _randn(1, 32, 35, 35)
    check_pool("AveragePool", x, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
               opset=11, oracle="ort")


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(1, 2048, 7, 7), (2, 5, 3, 4), (2, 6, 9), (3, 4, 1, 1)])
def test_global_pool(op, shape):
    x = _randn(*shape)
    axes = tuple(range(2, len(shape)))
    # numpy oracle: the reference drops the spatial dim of rank-3 inputs
    want = x.mean(axis=axes, keepdims=True) if op == "GlobalAveragePool" else x.max(axis=axes, keepdims=True)
    check_op(op, {"x": x}, {}, opset=13, expected=[want])


def test_pool_unsupported_forms():
    x = _randn(1, 2, 4, 4, 4)
    with pytest.raises(UnsupportedModelError, match="MaxPool node .*Indices"):
        compile_onnx(make_single_node_model("MaxPool", {"x": x}, {"kernel_shape": [2, 2, 2]},
                                            n_outputs=2, opset=13))
    with pytest.raises(UnsupportedModelError, match="AveragePool node .*rank 2"):
        compile_onnx(make_single_node_model("AveragePool", {"x": _randn(2, 5)}, {"kernel_shape": [2]}, opset=13))
    x = _randn(1, 2, 5, 5).astype(np.int64)
    with pytest.raises(UnsupportedModelError, match="float32 only"):
        compile_onnx(make_single_node_model("AveragePool", {"x": x}, {"kernel_shape": [2, 2]}, opset=13))


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[2, 3], strides=[1, 2], dilations=[2, 1], storage_order=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, storage_order=1),
    dict(kernel_shape=[3], strides=[2], pads=[1, 1]),
])
def test_maxpool_indices(attrs):
    # ties (integer-valued data) exercise the first-maximum rule
    nd = len(attrs["kernel_shape"])
    x = RNG.integers(0, 4, (2, 3, 9, 11)[:2 + nd]).astype(np.float32)
    model = make_single_node_model("MaxPool", {"x": x}, attrs, n_outputs=2, opset=12)
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    model.graph.output[1].type.tensor_type.elem_type = onnx.TensorProto.INT64
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})
    check_op("MaxPool", {"x": x}, attrs, n_outputs=2, opset=12, expected=want)


# ---- N-d pooling: separable POOL2D passes (ops/pool.py _lower_nd) ---------------------------

POOL3D_CASES = [
    dict(kernel_shape=[2, 3, 2]),
    dict(kernel_shape=[3, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 1, 2, 0]),
    dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1]),
    dict(kernel_shape=[1, 2, 3], strides=[1, 2, 1]),
    dict(kernel_shape=[3, 2, 3], strides=[2, 2, 3], auto_pad="SAME_UPPER"),
    dict(kernel_shape=[3, 2, 3], strides=[2, 2, 3], auto_pad="SAME_LOWER"),
    dict(kernel_shape=[3, 2, 3], strides=[2, 1, 3], auto_pad="VALID"),
    dict(kernel_shape=[3, 2, 3], strides=[3, 2, 3], ceil_mode=1),
    dict(kernel_shape=[3, 2, 3], strides=[3, 2, 3], pads=[1, 1, 1, 1, 1, 1], ceil_mode=1),
]


@pytest.mark.parametrize("attrs", POOL3D_CASES)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool3d(op, attrs):
    # onnxruntime is the oracle: the reference is wrong for SAME_LOWER with strides and
    # ceil_mode with stride >= 3 (docs/DESIGN_NOTES.md)
    check_pool(op, _randn(2, 3, 7, 7, 8), attrs, oracle="ort")


@pytest.mark.parametrize("attrs", [dict(kernel_shape=[3, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 1, 2, 0]),
                                   dict(kernel_shape=[3, 2, 3], strides=[3, 2, 3], ceil_mode=1,
                                        pads=[1, 1, 1, 1, 1, 1])])
def test_avgpool3d_count_include_pad(attrs):
    check_pool("AveragePool", _randn(1, 2, 7, 7, 8), dict(attrs, count_include_pad=1), oracle="ort")


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool3d_dilations(op):
    check_pool(op, _randn(2, 3, 9, 7, 8), dict(kernel_shape=[3, 2, 3], dilations=[2, 1, 2],
                                               pads=[1, 1, 1, 0, 0, 1]), oracle="ort")


def _pool_numpy(x, kernel, strides, pads, avg, include_pad):
    """Brute-force N-d pooling with explicit pads (the oracle for ranks the others lack)."""
    nd = len(kernel)
    pb, pe = pads[:nd], pads[nd:]
    pad = [(0, 0), (0, 0)] + list(zip(pb, pe))
    xp = np.pad(x.astype(np.float64), pad, constant_values=0.0 if avg else -np.inf)
    valid = np.pad(np.ones(x.shape[2:]), list(zip(pb, pe)))
    out_sp = [(x.shape[2 + d] + pb[d] + pe[d] - kernel[d]) // strides[d] + 1 for d in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(out_sp))
    for o in np.ndindex(*out_sp):
        box = tuple(slice(o[d] * strides[d], o[d] * strides[d] + kernel[d]) for d in range(nd))
        win = xp[(slice(None), slice(None)) + box]
        if avg:
            cnt = np.prod(kernel) if include_pad else valid[box].sum()
            y[(Ellipsis,) + o] = win.sum(axis=tuple(range(2, 2 + nd))) / cnt
        else:
            y[(Ellipsis,) + o] = win.max(axis=tuple(range(2, 2 + nd)))
    return y.astype(np.float32)


@pytest.mark.parametrize("op,cip", [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)])
def test_pool4d(op, cip):
    x = _randn(2, 2, 5, 6, 7, 4)
    attrs = dict(kernel_shape=[2, 3, 2, 2], strides=[2, 1, 2, 1], pads=[1, 0, 1, 1, 0, 1, 0, 1])
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    want = _pool_numpy(x, attrs["kernel_shape"], attrs["strides"], attrs["pads"], op == "AveragePool", cip)
    check_op(op, {"x": x}, attrs, opset=13, expected=[want])


# ---- LpPool: sum pool of |x|^p, then the p-th root ----------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("shape,attrs", [
    ((2, 3, 9, 8), dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1])),
    ((2, 3, 17), dict(kernel_shape=[4], strides=[3], pads=[1, 2])),
    ((1, 2, 5, 6, 7), dict(kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[1, 1, 0, 0, 1, 1])),
    ((2, 3, 9, 8), dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 1], ceil_mode=1)),
    ((2, 3, 9, 8), dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
])
def test_lppool(p, shape, attrs):
    # the reference pads ceil_mode's overhang with edge values: onnxruntime there
    check_pool("LpPool", _randn(*shape), dict(attrs, p=p), opset=18, atol=1e-4,
               oracle="ort" if attrs.get("ceil_mode") else "reference")


def test_lppool_before_opset18_has_no_dilations():
    model = make_single_node_model("LpPool", {"x": _randn(1, 2, 6, 6)},
                                   {"kernel_shape": [2, 2], "dilations": [2, 2]}, opset=11)
    # dilations are ignored below LpPool-18 (as for AveragePool below 19): a plain 2x2 window
    want = make_single_node_model("LpPool", {"x": _randn(1, 2, 6, 6)}, {"kernel_shape": [2, 2]}, opset=11)
    assert [int(s["op"]) for s in compile_onnx(model).steps] == \
        [int(s["op"]) for s in compile_onnx(want).steps]
