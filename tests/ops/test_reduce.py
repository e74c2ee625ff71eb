"""Reduce*, ArgMax/ArgMin and TopK against onnx.reference (every ISA level, 1 and 2 threads)."""
import numpy as np
import pytest

from deepsparse_lite.compiler import compile_onnx
from deepsparse_lite.ops.base import UnsupportedModelError
from deepsparse_lite.ops.reduce import reduce_layout
from tests.helpers import min_work, check_op, make_single_node_model

RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True, scope="module")
def _small_shapes_use_threads():
    """Per-thread work threshold 1: with threads=2 even these small shapes split (so the
    partitioning is tested); the default keeps small work on one thread."""
    with min_work(1, "reduce", "pool"):
        yield

REDUCES = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
           "ReduceL1", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


def _data(op, shape):
    if op in ("ReduceProd", "ReduceLogSum"):   # keep products finite, sums positive
        return RNG.uniform(0.8, 1.25, shape).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


def _check_reduce(op, x, axes, keepdims, opset, **kw):
    """Use the axes form of ``opset`` (attribute, or constant input from Sum-13 / others-18)."""
    attrs = {"keepdims": keepdims}
    consts = None
    axes_as_input = opset >= (13 if op == "ReduceSum" else 18)
    if axes is not None:
        if axes_as_input:
            consts = {"axes": np.array(axes, dtype=np.int64)}
        else:
            attrs["axes"] = list(axes)
    return check_op(op, {"x": x}, attrs, consts=consts, opset=opset, **kw)


@pytest.mark.parametrize("op", REDUCES)
@pytest.mark.parametrize("axes", [None, [0], [-1], [1, 3], [0, 2], [1, 2], [0, 1, 2, 3], [-3, 3]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_keepdims(op, axes, keepdims):
    x = _data(op, (2, 3, 5, 7))
    _check_reduce(op, x, axes, keepdims, opset=13, threads=(1,) if keepdims else (2,))


@pytest.mark.parametrize("op", REDUCES)
@pytest.mark.parametrize("opset", [11, 18])
def test_reduce_opset_forms(op, opset):
    x = _data(op, (3, 4, 6))
    _check_reduce(op, x, [0, 2], 1, opset=opset)
    _check_reduce(op, x, [-2], 0, opset=opset)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2", "ReduceLogSumExp"])
@pytest.mark.parametrize("shape,axes", [
    ((4, 130, 771), [-1]),        # rows: vector body + tails, split across threads
    ((3, 37, 1100), [1]),         # columns: two column blocks per outer index
    ((1, 50, 2100), [0, 1]),      # outer == 1: only column blocks give parallel work
    ((6, 20, 5, 33), [0, 2]),     # non-adjacent axes with a kept trailing block: permuting copy
    ((5, 40, 3, 90), [1, 3]),     # non-adjacent axes ending with a reduced one
])
def test_reduce_large(op, shape, axes):
    x = _data(op, shape)
    _check_reduce(op, x, axes, 1, opset=18, rtol=2e-4, atol=1e-4)


def test_reduce_noop_with_empty_axes():
    x = _data("ReduceSum", (3, 4, 5))
    # opset 13 ReduceSum: an empty axes input + noop -> identity; without noop -> all axes
    check_op("ReduceSum", {"x": x}, {"noop_with_empty_axes": 1},
             consts={"axes": np.array([], np.int64)}, opset=13)
    check_op("ReduceSum", {"x": x}, {"noop_with_empty_axes": 0, "keepdims": 0},
             consts={"axes": np.array([], np.int64)}, opset=13)
    # opset 18: the axes input omitted altogether
    check_op("ReduceMax", {"x": x}, {"noop_with_empty_axes": 1}, opset=18)
    check_op("ReduceMean", {"x": x}, {"keepdims": 1}, opset=18)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                "ReduceSumSquare"])
def test_reduce_int64(op):
    x = RNG.integers(-4, 5, (3, 4, 5)).astype(np.int64)
    _check_reduce(op, x, [1], 1, opset=13)
    _check_reduce(op, x, [0, 2], 0, opset=13)
    _check_reduce(op, x, None, 0, opset=13)


@pytest.mark.parametrize("op", REDUCES)
def test_reduce_float64(op):
    """float64 reductions run in double precision (not float32): tight tolerances."""
    x = _data(op, (3, 4, 5)).astype(np.float64) * (1 + 1e-9)
    _check_reduce(op, x, [1], 1, opset=13, rtol=1e-12, atol=1e-12)
    _check_reduce(op, x, [0, 2], 0, opset=13, rtol=1e-12, atol=1e-12)
    _check_reduce(op, x, None, 0, opset=13, rtol=1e-12, atol=1e-12)


def test_reduce_float64_nan_and_inf():
    x = np.array([[1.0, np.nan, 2.0], [-np.inf, -np.inf, 1.0], [np.inf, 3.0, 1.0]])
    for op in ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceLogSumExp"):
        _check_reduce(op, x, [1], 0, opset=13, rtol=1e-12, atol=0)


def test_reduce_rejects_runtime_axes_and_int32():
    x = np.ones((2, 3), np.float32)
    m = make_single_node_model("ReduceSum", {"x": x, "axes": np.array([1], np.int64)}, {}, opset=13)
    with pytest.raises(UnsupportedModelError, match="axes must be a constant"):
        compile_onnx(m)
    m = make_single_node_model("ReduceMean", {"x": np.ones((2, 3), np.int32)}, {"axes": [1]}, opset=13)
    with pytest.raises(UnsupportedModelError, match="int32"):
        compile_onnx(m)


def test_reduce_kind_codes_mirror_c():
    from deepsparse_lite.kernels import reduce as kreduce
    from deepsparse_lite.ops.reduce import RK
    assert kreduce.reduce_kinds() == {k: getattr(RK, k) for k in kreduce.reduce_kinds()}
    assert len(kreduce.reduce_kinds()) == len([k for k in vars(RK) if k.isupper()])


def test_reduce_layout_groups():
    # kept/reduced blocks are merged, size-1 dims dropped
    assert reduce_layout((2, 3, 5, 7), [1, 2]) == (2, 15, 7, None)
    assert reduce_layout((2, 1, 5, 7), [1, 2]) == (2, 5, 7, None)
    assert reduce_layout((2, 3, 5, 7), [3]) == (30, 7, 1, None)
    outer, n, inner, perm = reduce_layout((2, 3, 5, 7), [0, 2])
    assert (outer, n, inner) == (3, 10, 7)
    assert perm == [(3, 35), (2, 105), (5, 7), (7, 1)]


# ---- ArgMax / ArgMin ------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_ties(op, axis, keepdims, last):
    # few distinct values: many ties, so the first/last index rule is exercised
    x = RNG.integers(0, 3, (3, 4, 5)).astype(np.float32)
    check_op(op, {"x": x}, {"axis": axis, "keepdims": keepdims, "select_last_index": last}, opset=13)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_rows_vectorised(op, last):
    # last axis (contiguous rows): vector max/min pass + scan; ties near both row ends
    x = RNG.integers(0, 50, (9, 1003)).astype(np.float32)
    x[:, 5] = x[:, -3] = 60.0
    x[:, 7] = x[:, -2] = -10.0
    check_op(op, {"x": x}, {"axis": -1, "keepdims": 0, "select_last_index": last}, opset=13)
    y = RNG.standard_normal((130, 5)).astype(np.float32)   # rows shorter than a vector
    check_op(op, {"x": y}, {"axis": 1, "select_last_index": last}, opset=13)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_arg_segmentation_head(op, dtype):
    # argmax over the classes of [N, K, H, W]: column blocks of 256 plus a partial block
    x = RNG.integers(0, 6, (2, 21, 23, 30)).astype(dtype)
    check_op(op, {"x": x}, {"axis": 1, "keepdims": 1}, opset=13)
    check_op(op, {"x": x}, {"axis": 1, "keepdims": 0, "select_last_index": 1}, opset=13)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_int64_and_old_opset(op):
    x = RNG.integers(-50, 50, (7, 300)).astype(np.int64)
    check_op(op, {"x": x}, {"axis": 1, "keepdims": 0}, opset=13)
    y = RNG.standard_normal((40, 600)).astype(np.float32)
    check_op(op, {"x": y}, {"axis": 0}, opset=11)
    check_op(op, {"x": y}, {"axis": 1, "keepdims": 0}, opset=11)


# ---- TopK ------------------------------------------------------------------------------

@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis,k", [(-1, 3), (1, 4), (0, 1), (-1, 9)])
def test_topk_ties(largest, axis, k):
    x = RNG.integers(0, 4, (3, 5, 9)).astype(np.float32)   # ties everywhere
    check_op("TopK", {"x": x}, {"axis": axis, "largest": largest},
             consts={"k": np.array([min(k, x.shape[axis])], np.int64)}, n_outputs=2, opset=11)


def test_topk_random_large_and_unsorted():
    x = RNG.standard_normal((6, 1000)).astype(np.float32)
    check_op("TopK", {"x": x}, {"axis": 1}, consts={"k": np.array([50], np.int64)}, n_outputs=2,
             opset=11)
    # sorted=0 leaves the order to the engine: compare as sets, ordered by index
    x = RNG.standard_normal((4, 40)).astype(np.float32)
    vals, idx = check_op("TopK", {"x": x}, {"axis": 1, "sorted": 1},
                         consts={"k": np.array([5], np.int64)}, n_outputs=2, opset=11)
    from tests.helpers import run_model
    m = make_single_node_model("TopK", {"x": x}, {"axis": 1, "sorted": 0},
                               consts={"k": np.array([5], np.int64)}, n_outputs=2, opset=11)
    v2, i2 = run_model(m, {"x": x})
    np.testing.assert_array_equal(np.sort(i2, 1), np.sort(idx, 1))


def test_topk_int64_and_opset_forms():
    x = RNG.integers(-20, 20, (4, 30)).astype(np.int64)
    check_op("TopK", {"x": x}, {"axis": -1}, consts={"k": np.array([7], np.int64)}, n_outputs=2,
             opset=13)
    y = RNG.standard_normal((5, 17)).astype(np.float32)
    check_op("TopK", {"x": y}, {"axis": 1, "k": 4}, n_outputs=2, opset=9)       # k attribute
    check_op("TopK", {"x": y}, {"axis": 1}, consts={"k": np.array([4], np.int64)}, n_outputs=2,
             opset=10)                                                           # k input


def test_topk_values_only_output_used():
    x = RNG.standard_normal((3, 12)).astype(np.float32)
    check_op("TopK", {"x": x}, {"axis": 1}, consts={"k": np.array([2], np.int64)}, n_outputs=1,
             opset=11)
