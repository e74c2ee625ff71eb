"""Value-specialised plans: parameter inputs and symbolic dims (compiler/specialize.py)."""
import threading

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from deepsparse_lite import compiler
from deepsparse_lite.compiler import SpecializedModel
from deepsparse_lite.compiler.specialize import parameter_inputs

F, I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def _model(nodes, inputs, outputs, opset=18, inits=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, 0, None) for n in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _check(model, sm, arrays):
    plan = sm.plan_for(arrays)
    got = compiler.execute(plan, arrays)
    names = [i.name for i in model.graph.input]
    want = ReferenceEvaluator(model).run(None, dict(zip(names, arrays)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return plan


def _reduce_axes_model():
    return _model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
                  [("x", F, [2, 3, 4]), ("axes", I64, [None])], ["y"])


# ---------------------------------------------------------------- which inputs are parameters
def test_parameter_inputs_found_through_computation_but_not_through_shape():
    nodes = [helper.make_node("Shape", ["x"], ["sx"]),                   # x: its shape only
             helper.make_node("Slice", ["sx", "zero", "one"], ["n"]),
             helper.make_node("Mul", ["s", "one"], ["s1"]),               # s: through a Mul
             helper.make_node("Concat", ["n", "s1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"]),
             helper.make_node("ReduceMax", ["y", "axes"], ["z"])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    m = _model(nodes, [("x", F, [2, 12]), ("s", I64, [2]), ("axes", I64, [1])], ["z"], inits=inits)
    found = parameter_inputs(m, ["x", "s", "axes"])
    assert set(found) == {"s", "axes"}
    assert any("Reshape" in w and "input 1" in w for w in found["s"])
    sm = SpecializedModel(m)
    assert sm.specialized and sm.parameter_names == ["s", "axes"] and sm.dynamic_index == []
    x = np.random.rand(2, 12).astype(np.float32)
    for s, axes in (([3, 4], [1]), ([12, 1], [-1]), ([2, 6], [2])):
        _check(m, sm, [x, np.array(s, np.int64), np.array(axes, np.int64)])


def test_static_model_has_one_plan_compiled_at_construction():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2, 3])], ["y"])
    sm = SpecializedModel(m)
    assert not sm.specialized and sm.static_plan is not None
    x = np.random.rand(2, 3).astype(np.float32)
    assert sm.plan_for([x]) is sm.static_plan
    assert sm.stats["misses"] == 0


def test_unsupported_op_is_reported_at_construction_even_when_specialised():
    m = _model([helper.make_node("ReduceSum", ["x", "axes"], ["r"]), helper.make_node("Det", ["r"], ["y"], name="d")],
               [("x", F, [2, 3, 3]), ("axes", I64, [1])], ["y"])
    with pytest.raises(compiler.UnsupportedModelError, match=r"Det.*'d'"):
        SpecializedModel(m)


# ---------------------------------------------------------------- the cache
def test_a_plan_per_key_cached_lru():
    m = _reduce_axes_model()
    sm = SpecializedModel(m, cache_size=2)
    x = np.random.rand(2, 3, 4).astype(np.float32)
    a0, a1, a2 = (np.array(a, np.int64) for a in ([0], [1, 2], [-1]))
    p0 = _check(m, sm, [x, a0])
    assert sm.plan_for([x * 2, a0.copy()]) is p0             # same values: same plan, new data
    assert sm.stats == {**sm.stats, "hits": 1, "misses": 1}
    p1 = _check(m, sm, [x, a1])
    assert p1 is not p0 and p1.outputs[0].shape == (2,)
    assert sm.plan_for([x, a0]) is p0                         # p0 most recent now
    _check(m, sm, [x, a2])                                    # evicts a1
    assert sm.stats["evictions"] == 1 and len(sm.cached_plans()) == 2
    assert sm.plan_for([x, a0]) is p0
    assert sm.plan_for([x, a1]) is not p1                     # recompiled
    assert sm.stats["misses"] == 4


def test_key_distinguishes_dtype_shape_and_large_values():
    m = _reduce_axes_model()
    sm = SpecializedModel(m)
    a = np.array([0, 1], np.int64)
    assert sm.key([None, a]) == sm.key([None, a.copy()])
    assert sm.key([None, a]) != sm.key([None, a[::-1].copy()])
    assert sm.key([None, a]) != sm.key([None, a.astype(np.int32)])
    assert sm.key([None, a]) != sm.key([None, a.reshape(2, 1)])
    big = np.arange(1000, dtype=np.int64)
    big2 = big.copy()
    big2[500] = -1
    assert sm.key([None, big]) == sm.key([None, big.copy()]) != sm.key([None, big2])


def test_refused_key_is_cached_and_the_model_keeps_working():
    m = _reduce_axes_model()
    sm = SpecializedModel(m)
    x = np.random.rand(2, 3, 4).astype(np.float32)
    bad = np.array([7], np.int64)
    for _ in range(2):
        with pytest.raises(compiler.UnsupportedModelError, match="ReduceSum"):
            sm.plan_for([x, bad])
    assert sm.stats["misses"] == 1 and sm.stats["hits"] == 1
    _check(m, sm, [x, np.array([1], np.int64)])


def test_parameter_dtype_and_rank_are_checked():
    sm = SpecializedModel(_reduce_axes_model())
    x = np.random.rand(2, 3, 4).astype(np.float32)
    with pytest.raises(ValueError, match="int64"):
        sm.plan_for([x, np.array([1], np.int32)])
    with pytest.raises(ValueError, match="rank 1"):
        sm.plan_for([x, np.array([[1]], np.int64)])


def test_concurrent_first_calls_compile_once():
    m = _reduce_axes_model()
    sm = SpecializedModel(m)
    x = np.random.rand(2, 3, 4).astype(np.float32)
    axes = np.array([1], np.int64)
    plans, barrier = [], threading.Barrier(4)

    def call():
        barrier.wait()
        plans.append(sm.plan_for([x, axes]))
    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(p) for p in plans}) == 1 and sm.stats["misses"] == 1


# ---------------------------------------------------------------- symbolic dims
def test_symbolic_dims_get_a_plan_per_shape():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("Add", ["x", "ones"], ["a"]),
             helper.make_node("Flatten", ["a"], ["y"], axis=1)]
    m = _model(nodes, [("x", F, ["N", 3, "W"])], ["y"])
    sm = SpecializedModel(m)
    assert sm.specialized and sm.parameter_names == [] and sm.dynamic_index == [0]
    for shape in ((1, 3, 5), (4, 3, 2), (1, 3, 5)):
        plan = _check(m, sm, [np.random.rand(*shape).astype(np.float32)])
        assert plan.inputs[0].shape == shape
    assert sm.stats["misses"] == 2 and sm.stats["hits"] == 1
    with pytest.raises(ValueError, match="declares"):
        sm.plan_for([np.random.rand(1, 4, 5).astype(np.float32)])  # a static dim differs
    # batch_size fixes dim 0; the other symbolic dim still specialises
    sm1 = SpecializedModel(m, batch_size=2)
    assert sm1.inputs[0].shape == (2, 3, None)
    _check(m, sm1, [np.random.rand(2, 3, 7).astype(np.float32)])


def test_batch_size_does_not_override_parameter_inputs():
    m = _model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
               [("x", F, [1, 3, 4]), ("axes", I64, [2])], ["y"])
    sm = SpecializedModel(m, batch_size=5)
    assert [s.shape for s in sm.inputs] == [(5, 3, 4), (2,)]
    x = np.random.rand(5, 3, 4).astype(np.float32)
    got = compiler.execute(sm.plan_for([x, np.array([1, 2], np.int64)]), [x, np.array([1, 2], np.int64)])
    np.testing.assert_allclose(got[0], x.sum(axis=(1, 2), keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("case", ["slice", "pad", "resize", "topk", "tile", "expand", "range", "split",
                                  "unsqueeze", "squeeze", "constantofshape"])
def test_parameter_positions_of_each_op(case):
    x = np.random.rand(2, 3, 4).astype(np.float32)
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    if case == "slice":
        m = _model([helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
                   [("x", F, [2, 3, 4]), ("st", I64, [2]), ("en", I64, [2]), ("ax", I64, [2]), ("sp", I64, [2])], ["y"])
        arrays = [x, i64(0, 3), i64(2, 0), i64(0, 2), i64(1, -1)]
    elif case == "pad":
        m = _model([helper.make_node("Pad", ["x", "pads", "v"], ["y"])],
                   [("x", F, [2, 3, 4]), ("pads", I64, [6]), ("v", F, [])], ["y"])
        arrays = [x, i64(0, 1, 2, 1, 0, 1), np.array(0.5, np.float32)]
    elif case == "resize":
        m = _model([helper.make_node("Resize", ["x4", "", "", "sizes"], ["y"], mode="nearest")],
                   [("x4", F, [1, 2, 3, 4]), ("sizes", I64, [4])], ["y"])
        arrays = [x.reshape(1, 2, 3, 4), i64(1, 2, 6, 6)]
    elif case == "topk":
        m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)],
                   [("x", F, [2, 3, 4]), ("k", I64, [1])], ["v", "i"])
        arrays = [x, i64(3)]
    elif case == "tile":
        m = _model([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", F, [2, 3, 4]), ("r", I64, [3])], ["y"])
        arrays = [x, i64(2, 1, 3)]
    elif case == "expand":
        m = _model([helper.make_node("Expand", ["x", "s"], ["y"])], [("x", F, [2, 3, 4]), ("s", I64, [4])], ["y"])
        arrays = [x, i64(2, 2, 1, 4)]
    elif case == "range":
        m = _model([helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Add", ["r", "c"], ["y"])],
                   [("a", F, []), ("b", F, []), ("d", F, []), ("c", F, [1])], ["y"])
        arrays = [np.array(1.0, np.float32), np.array(7.5, np.float32), np.array(1.5, np.float32),
                  np.ones(1, np.float32)]
    elif case == "split":
        m = _model([helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=2)],
                   [("x", F, [2, 3, 4]), ("sp", I64, [2])], ["a", "b"])
        arrays = [x, i64(1, 3)]
    elif case == "unsqueeze":
        m = _model([helper.make_node("Unsqueeze", ["x", "ax"], ["y"])], [("x", F, [2, 3, 4]), ("ax", I64, [2])], ["y"])
        arrays = [x, i64(0, -1)]
    elif case == "squeeze":
        m = _model([helper.make_node("Squeeze", ["x1", "ax"], ["y"])],
                   [("x1", F, [2, 1, 4]), ("ax", I64, [1])], ["y"])
        arrays = [x[:, :1], i64(1)]
        arrays[0] = np.ascontiguousarray(arrays[0])
    else:  # constantofshape
        m = _model([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])],
                   [("s", I64, [3]), ("x", F, [2, 3, 4])], ["y"])
        arrays = [i64(2, 3, 4), x]
    sm = SpecializedModel(m)
    assert sm.specialized and sm.parameter_names
    _check(m, sm, arrays)


def test_resize_roi_and_col2im_shapes_as_inputs():
    """tf_crop_and_resize's roi and Col2Im's image/block shapes reach parameter positions."""
    m = _model([helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"],
                                 coordinate_transformation_mode="tf_crop_and_resize", mode="linear")],
               [("x", F, [1, 1, 4, 4]), ("roi", F, [8]), ("sizes", I64, [4])], ["y"])
    sm = SpecializedModel(m)
    assert sm.parameter_names == ["roi", "sizes"]
    x = np.random.rand(1, 1, 4, 4).astype(np.float32)
    for roi in ([0, 0, 0.4, 0.6, 1, 1, 0.6, 0.8], [0, 0, 0, 0, 1, 1, 1, 1]):
        _check(m, sm, [x, np.array(roi, np.float32), np.array([1, 1, 3, 3], np.int64)])
    m = _model([helper.make_node("Col2Im", ["x", "img", "blk"], ["y"])],
               [("x", F, [1, 5, 5]), ("img", I64, [2]), ("blk", I64, [2])], ["y"])
    sm = SpecializedModel(m)
    assert sm.parameter_names == ["img", "blk"]
    _check(m, sm, [np.random.rand(1, 5, 5).astype(np.float32), np.array([5, 5], np.int64),
                   np.array([1, 5], np.int64)])
