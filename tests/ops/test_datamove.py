"""Data-movement ops against onnx.reference (onnxruntime where the reference has no
implementation): every dtype, negative axes, odd sizes, opset variants, 1 and 2 threads,
every ISA level of this CPU (check_op), and runtime index errors that must raise, not crash.
"""
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

from deepsparse_lite import compiler
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import check_op, make_single_node_model, reference_outputs

RNG = np.random.default_rng(1234)
DTYPES = [np.float32, np.int64, np.int32, np.bool_]


def rand(shape, dtype=np.float32):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind in "iu":
        return RNG.integers(-50, 50, size=shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def i64(*v):
    return np.array(v, dtype=np.int64)


def ort_model_outputs(model, inputs):
    """onnxruntime as the oracle where onnx.reference lacks (or gets wrong) an op version;
    the outputs take the first input's dtype."""
    import onnxruntime as ort
    model = onnx.ModelProto.FromString(model.SerializeToString())
    first = np.asarray(inputs[next(iter(inputs))])
    for o in model.graph.output:
        o.type.tensor_type.elem_type = onnx.helper.np_dtype_to_tensor_dtype(first.dtype)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def ort_outputs(op_type, inputs, attrs=None, consts=None, opset=17):
    return ort_model_outputs(make_single_node_model(op_type, inputs, attrs, consts=consts,
                                                    opset=opset), inputs)


# --------------------------------------------------------------------------------------
# Transpose (COPY, including the tiled transpose path), DepthToSpace, SpaceToDepth
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,perm", [
    ((1, 128, 12, 64), [0, 2, 1, 3]),     # attention: split heads
    ((1, 128, 12, 64), [0, 2, 3, 1]),     # attention: K^T (tiled path)
    ((1, 12, 128, 64), [0, 2, 1, 3]),     # attention: merge heads
    ((3, 17, 9), [2, 0, 1]),              # odd sizes, tiles with edges
    ((13, 21), [1, 0]),                   # 2-D transpose, both dims not multiples of 8
    ((2, 3, 4, 5, 6), [4, 2, 0, 3, 1]),
    ((5, 1, 7), None),                    # default perm (reverse)
])
def test_transpose(dtype, shape, perm):
    attrs = {} if perm is None else {"perm": perm}
    check_op("Transpose", {"x": rand(shape, dtype)}, attrs)


def test_transpose_negative_perm_and_rank1():
    check_op("Transpose", {"x": rand((4, 9, 10))}, {"perm": [-1, 0, -2]})
    check_op("Transpose", {"x": rand((7,), np.int64)})


@pytest.mark.parametrize("op,shape,attrs", [
    ("DepthToSpace", (2, 8, 3, 5), {"blocksize": 2}),
    ("DepthToSpace", (1, 18, 4, 3), {"blocksize": 3, "mode": "CRD"}),
    ("DepthToSpace", (1, 8, 2, 2), {"blocksize": 2, "mode": "DCR"}),
    ("SpaceToDepth", (2, 3, 4, 6), {"blocksize": 2}),
    ("SpaceToDepth", (1, 5, 9, 6), {"blocksize": 3}),
])
def test_depth_space(op, shape, attrs):
    check_op(op, {"x": rand(shape)}, attrs, opset=13)
    check_op(op, {"x": rand(shape, np.int64)}, attrs, opset=13, isas=[0], threads=[1])


# --------------------------------------------------------------------------------------
# Slice
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_dtypes(dtype):
    check_op("Slice", {"x": rand((5, 7, 9), dtype)},
             consts={"s": i64(1, -1), "e": i64(100, -8), "a": i64(0, 2), "st": i64(2, -2)})


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([0], [3], [1], None),                              # axes given, steps omitted
    ([-3, 2], [-1, 1000], [-1, 0], [1, 1]),            # negative axes/starts, clamped end
    ([10], [-10], [2], [-3]),                           # negative step from a clamped start
    ([-1, -1, -1], [-100, -100, -100], None, [-1, -1, -1]),  # full reversal
    ([2], [2], [0], None),                              # empty result
    ([1, 0], [4, 9223372036854775807], [0, 1], [2, 3]),  # INT64_MAX end
    ([6], [0], [1], [-2]),
])
def test_slice_variants(starts, ends, axes, steps):
    x = rand((6, 7, 11))
    consts = {"s": i64(*starts), "e": i64(*ends)}
    order = ["x", "s", "e"]
    if axes is not None:
        consts["a"] = i64(*axes)
        order.append("a")
    if steps is not None:
        if axes is None:
            order.append("")
        consts["st"] = i64(*steps)
        order.append("st")
    check_op("Slice", {"x": x}, consts=consts, input_order=order)


def test_slice_int32_params_and_opset10():
    x = rand((4, 10))
    check_op("Slice", {"x": x}, consts={"s": np.array([1], np.int32), "e": np.array([-2], np.int32),
                                        "a": np.array([-1], np.int32)}, opset=10)


def test_slice_opset9_attributes():
    check_op("Slice", {"x": rand((5, 6, 7))}, {"starts": [1, -4], "ends": [4, 100], "axes": [0, 2]},
             opset=9)
    check_op("Slice", {"x": rand((5, 6))}, {"starts": [1, 2], "ends": [3, 5]}, opset=9)


# --------------------------------------------------------------------------------------
# Concat, Split
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_dtypes(dtype):
    check_op("Concat", {"a": rand((2, 3, 4), dtype), "b": rand((2, 5, 4), dtype),
                        "c": rand((2, 1, 4), dtype)}, {"axis": -2})


def test_concat_axes_and_many_inputs():
    check_op("Concat", {"a": rand((3, 4)), "b": rand((2, 4))}, {"axis": 0})
    check_op("Concat", {"a": rand((3, 4, 1)), "b": rand((3, 4, 6))}, {"axis": 2})
    check_op("Concat", {"a": rand((7,), np.int64), "c": rand((2,), np.int64)}, {"axis": 0},
             consts={"b": rand((0,), np.int64)}, input_order=["a", "b", "c"])
    # more inputs than a step has tensor slots: one copy per input
    many = {f"x{k}": rand((2, k + 1, 3)) for k in range(11)}
    check_op("Concat", many, {"axis": 1})
    check_op("Concat", {"a": rand((2, 3))}, consts={"b": rand((2, 2))}, attrs={"axis": -1})


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_equal(dtype):
    check_op("Split", {"x": rand((2, 12, 3), dtype)}, {"axis": 1}, n_outputs=3)


def test_split_opset_variants():
    x = rand((4, 10, 3))
    check_op("Split", {"x": x}, {"axis": 1, "split": [3, 7]}, n_outputs=2, opset=11)
    check_op("Split", {"x": x}, {"axis": -2}, consts={"s": i64(2, 0, 8)}, n_outputs=3, opset=13)
    check_op("Split", {"x": x}, {"axis": 1, "num_outputs": 3}, n_outputs=3, opset=18)  # 4,4,2
    check_op("Split", {"x": x}, {"axis": 0}, n_outputs=2, opset=9)
    check_op("Split", {"x": rand((7, 2))}, {"axis": 0, "num_outputs": 4}, n_outputs=4, opset=18)


# --------------------------------------------------------------------------------------
# Expand, Tile
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_dtypes(dtype):
    check_op("Expand", {"x": rand((3, 1, 5), dtype)}, consts={"s": i64(2, 1, 4, 1)})


@pytest.mark.parametrize("shape,target", [
    ((1,), (7, 9)),
    ((4, 1), (4, 33)),          # broadcast along the innermost dim
    ((1, 1, 1, 9), (2, 3, 9, 9)),
    ((3, 5), (1, 5)),           # target smaller than input along a dim: input wins
    ((2, 1, 3), (2, 6, 3)),
])
def test_expand_shapes(shape, target):
    check_op("Expand", {"x": rand(shape)}, consts={"s": i64(*target)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_dtypes(dtype):
    check_op("Tile", {"x": rand((3, 1, 5), dtype)}, consts={"r": i64(2, 3, 2)})


def test_tile_shapes():
    check_op("Tile", {"x": rand((7,))}, consts={"r": i64(5)})
    check_op("Tile", {"x": rand((2, 3, 4, 5))}, consts={"r": i64(2, 1, 3, 2)})
    check_op("Tile", {"x": rand((2, 3))}, consts={"r": i64(0, 2)})
    # 5-D with every dim repeated: 10 copy dims, more than a step holds
    check_op("Tile", {"x": rand((2, 3, 2, 3, 2))}, consts={"r": i64(2, 2, 3, 2, 2)})


# --------------------------------------------------------------------------------------
# Pad
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_modes(mode, dtype):
    check_op("Pad", {"x": rand((3, 4, 5), dtype)}, {"mode": mode},
             consts={"p": i64(1, 2, 0, 2, 3, 3)}, opset=19)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
def test_pad_large_pads(mode):
    # pads larger than the dim: reflect / wrap repeat periodically
    check_op("Pad", {"x": rand((2, 3, 4))}, {"mode": mode}, consts={"p": i64(0, 7, 9, 0, 5, 6)},
             opset=19)
    check_op("Pad", {"x": rand((1, 5))}, {"mode": mode}, consts={"p": i64(0, 13, 0, 11)}, opset=19)


def test_pad_constant_value_and_opsets():
    x = rand((2, 3, 4, 5))
    check_op("Pad", {"x": x}, consts={"p": i64(0, 0, 1, 2, 0, 0, 3, 1), "v": np.array(1.5, np.float32)},
             opset=13)
    check_op("Pad", {"x": x}, {"pads": [0, 1, 0, 2, 0, 2, 0, 1], "value": -2.0}, opset=9)
    check_op("Pad", {"x": x}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "mode": "reflect"}, opset=9)
    xi = rand((3, 4), np.int64)
    check_op("Pad", {"x": xi}, consts={"p": i64(1, 1, 1, 1), "v": np.array(7, np.int64)}, opset=11)
    # opset 18 axes input (negative axis), omitted constant_value
    check_op("Pad", {"x": x}, {"mode": "edge"}, consts={"p": i64(2, 1, 3, 0), "a": i64(-1, 1)},
             input_order=["x", "p", "", "a"], opset=18)
    check_op("Pad", {"x": x}, consts={"p": i64(0, 0, 0, 0, 0, 0, 0, 0)}, opset=18)


def test_pad_negative_crops():
    # onnx.reference cannot crop (np.pad rejects negative widths): onnxruntime is the oracle
    x = rand((4, 6))
    consts = {"p": i64(-1, 2, 1, -3)}
    want = ort_outputs("Pad", {"x": x}, consts=consts, opset=13)
    check_op("Pad", {"x": x}, consts=consts, opset=13, expected=want)


# --------------------------------------------------------------------------------------
# Gather, GatherElements
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_gather_runtime_indices(dtype, idx_dtype):
    idx = np.array([[0, -1, 3], [29, 3, -30]], idx_dtype)
    check_op("Gather", {"x": rand((30, 7), dtype), "i": idx}, {"axis": 0})
    check_op("Gather", {"x": rand((3, 30, 5), dtype), "i": idx}, {"axis": -2})
    check_op("Gather", {"x": rand((3, 4, 30), dtype), "i": idx}, {"axis": 2})


def test_gather_embedding_lookup():
    # the BERT hot case: [1,128] ids into a constant [vocab, hidden] table
    table = rand((2000, 96))
    ids = RNG.integers(0, 2000, size=(1, 128)).astype(np.int64)
    check_op("Gather", {"i": ids}, {"axis": 0}, consts={"w": table}, input_order=["w", "i"])
    ids32 = RNG.integers(-2000, 2000, size=(3, 17)).astype(np.int32)
    check_op("Gather", {"i": ids32}, {"axis": 0}, consts={"w": table}, input_order=["w", "i"])


@pytest.mark.parametrize("idx", [
    np.array(2, np.int64),                       # scalar: removes the axis
    np.array([4, 1, 3, 3], np.int64),            # not a progression: gather kernel, const table
    np.array([0, 2, 4], np.int64),               # progression: one strided copy
    np.array([-1, -2, -3], np.int32),            # reversed progression, negative
    np.array([[1]], np.int64),
    np.zeros((0,), np.int64),
])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_constant_indices(idx, axis):
    check_op("Gather", {"x": rand((5, 6, 7))}, {"axis": axis}, consts={"i": idx})


def test_gather_scalar_runtime_index():
    check_op("Gather", {"x": rand((4, 5), np.int64), "i": np.array(-4, np.int64)}, {"axis": 0})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(dtype, axis):
    x = rand((4, 5, 6), dtype)
    n = x.shape[axis]
    idx = RNG.integers(-n, n, size=x.shape).astype(np.int64)
    check_op("GatherElements", {"x": x, "i": idx}, {"axis": axis})


def test_gather_elements_index_shapes():
    x = rand((5, 3))
    check_op("GatherElements", {"x": x, "i": np.array([[0, 4, -5], [1, 2, 3]], np.int32)}, {"axis": 0})
    check_op("GatherElements", {"x": rand((3, 7)), "i": np.array([[6, 0], [1, -7], [2, 2]], np.int64)},
             {"axis": 1})
    check_op("GatherElements", {"x": rand((2, 40)), "i": RNG.integers(0, 40, (2, 100))}, {"axis": 1})
    # indices smaller than data along a non-axis dim (onnx.reference rejects it, ORT allows it)
    inputs = {"x": x, "i": np.array([[0], [4], [-1]], np.int64)}
    want = ort_outputs("GatherElements", inputs, {"axis": 0})
    check_op("GatherElements", inputs, {"axis": 0}, expected=want)


# --------------------------------------------------------------------------------------
# runtime index errors: raise, never read out of bounds, the engine keeps working
# --------------------------------------------------------------------------------------

def _compiled(op_type, inputs, attrs, consts=None, input_order=None, threads=2):
    model = make_single_node_model(op_type, inputs, attrs, consts=consts, input_order=input_order)
    return compiler.compile_onnx(model, max_threads=threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_gather_out_of_range_raises(threads, idx_dtype):
    table = rand((300, 16))
    ok = np.array([[0, 5, -300, 299]], idx_dtype)
    plan = _compiled("Gather", {"i": ok}, {"axis": 0}, consts={"w": table},
                     input_order=["w", "i"], threads=threads)
    for bad in ([[0, 300, 1, 2]], [[0, -301, 1, 2]], [[2 ** 31 - 1, 0, 0, 0]], [[-2 ** 31, 0, 0, 0]]):
        with pytest.raises(RuntimeError, match="out of range"):
            compiler.execute(plan, [np.array(bad, idx_dtype)], num_threads=threads)
    # the same plan still works afterwards
    out = compiler.execute(plan, [ok], num_threads=threads)[0]
    np.testing.assert_array_equal(out, np.take(table, ok.astype(np.int64), axis=0))
    # runtime data, runtime indices, inner axis
    x = rand((6, 9))
    plan = _compiled("Gather", {"x": x, "i": np.array([1, 2], idx_dtype)}, {"axis": 1},
                     threads=threads)
    with pytest.raises(RuntimeError, match="out of range"):
        compiler.execute(plan, [x, np.array([1, 9], idx_dtype)], num_threads=threads)
    out = compiler.execute(plan, [x, np.array([8, -9], idx_dtype)], num_threads=threads)[0]
    np.testing.assert_array_equal(out, x[:, [8, 0]])


@pytest.mark.parametrize("threads", [1, 2])
def test_gather_elements_out_of_range_raises(threads):
    # big enough to be split across threads; the bad index sits in the last chunk
    x = rand((256, 40))
    idx = RNG.integers(0, 40, size=(256, 300)).astype(np.int64)
    plan = _compiled("GatherElements", {"x": x, "i": idx}, {"axis": 1}, threads=threads)
    bad = idx.copy()
    bad[255, 299] = 40
    with pytest.raises(RuntimeError, match="out of range"):
        compiler.execute(plan, [x, bad], num_threads=threads)
    bad[255, 299] = -(2 ** 40)
    with pytest.raises(RuntimeError, match="out of range"):
        compiler.execute(plan, [x, bad], num_threads=threads)
    out = compiler.execute(plan, [x, idx], num_threads=threads)[0]
    np.testing.assert_array_equal(out, np.take_along_axis(x, idx, axis=1))


def test_gather_out_of_range_in_subprocess():
    """A huge index must not crash the interpreter (a wild read would segfault)."""
    code = textwrap.dedent("""
        import numpy as np
        from deepsparse_lite import compiler
        from tests.helpers import make_single_node_model
        w = np.ones((1000, 64), np.float32)
        m = make_single_node_model("Gather", {"i": np.zeros((1, 8), np.int64)}, {"axis": 0},
                                   consts={"w": w}, input_order=["w", "i"])
        plan = compiler.compile_onnx(m, max_threads=2)
        for v in (1 << 40, -(1 << 40), 1000, -1001):
            try:
                compiler.execute(plan, [np.full((1, 8), v, np.int64)], num_threads=2)
                raise SystemExit("no error for index %d" % v)
            except RuntimeError:
                pass
        out = compiler.execute(plan, [np.arange(8).reshape(1, 8)], num_threads=2)[0]
        assert out.shape == (1, 8, 64) and float(out.sum()) == 512.0
        print("survived")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "survived" in res.stdout


def test_constant_out_of_range_index_is_a_compile_error():
    model = make_single_node_model("Gather", {"x": rand((4, 3))}, {"axis": 0},
                                   consts={"i": i64(1, 4)})
    with pytest.raises(UnsupportedModelError):
        compiler.compile_onnx(model)


# --------------------------------------------------------------------------------------
# Resize, Upsample
# --------------------------------------------------------------------------------------

ROI = np.zeros(0, np.float32)


def f32(*v):
    return np.array(v, np.float32)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"])
def test_resize_nearest_modes(nearest_mode, ctm):
    attrs = {"mode": "nearest", "nearest_mode": nearest_mode, "coordinate_transformation_mode": ctm}
    x = rand((1, 3, 5, 7))
    check_op("Resize", {"x": x}, attrs, consts={"roi": ROI, "s": f32(1, 1, 2.5, 1.5)},
             threads=[2], isas=[1])
    check_op("Resize", {"x": x}, attrs, consts={"roi": ROI, "s": f32(1, 1, 0.6, 0.5)},
             threads=[1], isas=[1])


@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                 "half_pixel_symmetric"])
def test_resize_linear_modes(ctm):
    attrs = {"mode": "linear", "coordinate_transformation_mode": ctm}
    x = rand((2, 3, 5, 7))
    for consts, order, kw in [
        ({"roi": ROI, "s": f32(1, 1, 2, 1.7)}, None, {}),
        ({"roi": ROI, "s": f32(1, 1, 0.5, 0.8)}, None, {"threads": [1], "isas": [1]}),
        ({"roi": ROI, "sizes": i64(2, 3, 1, 9)}, ["x", "roi", "", "sizes"],
         {"threads": [2], "isas": [1]}),
    ]:
        want = None
        if ctm == "half_pixel_symmetric":
            # onnx.reference rounds x_ori + 1 and picks the wrong neighbour pair at an exact
            # integer coordinate (e.g. 0.8x of 7): onnxruntime is the oracle here
            model = make_single_node_model("Resize", {"x": x}, attrs, consts=consts, opset=19,
                                           input_order=order)
            want = ort_model_outputs(model, {"x": x})
        check_op("Resize", {"x": x}, attrs, consts=consts, input_order=order, opset=19,
                 expected=want, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_resize_nearest_dtypes(dtype):
    x = rand((2, 3, 4, 5), dtype)
    consts = {"roi": ROI, "s": f32(1, 1, 2, 0.7)}
    want = None
    if x.dtype == np.bool_:  # onnx.reference cannot resize bool: resize it as uint8
        model = make_single_node_model("Resize", {"x": x.astype(np.uint8)}, {"mode": "nearest"},
                                       consts=consts)
        want = [o.astype(np.bool_) for o in
                reference_outputs(model, {"x": x.astype(np.uint8)})]
    check_op("Resize", {"x": x}, {"mode": "nearest"}, consts=consts, expected=want)


def test_resize_variants():
    x = rand((1, 2, 6, 8))
    # sizes instead of scales (opset 13: roi/scales may be omitted with '')
    check_op("Resize", {"x": x}, {"mode": "nearest"}, consts={"sizes": i64(1, 2, 13, 5)},
             input_order=["x", "", "", "sizes"], opset=13)
    # opset 11: empty scales tensor, sizes used
    check_op("Resize", {"x": x}, {"mode": "linear"},
             consts={"roi": ROI, "s": np.zeros(0, np.float32), "sizes": i64(1, 2, 3, 17)}, opset=11)
    # nearest on every axis (N and C too), 3-D and 5-D inputs
    check_op("Resize", {"x": rand((2, 3, 4))}, {"mode": "nearest"},
             consts={"roi": ROI, "s": f32(2, 1, 1.5)})
    check_op("Resize", {"x": rand((1, 2, 3, 4, 5))}, {"mode": "nearest"},
             consts={"roi": ROI, "s": f32(1, 2, 1, 2, 0.5)})
    # linear on a 3-D input (last dim only) and a 2-D one
    check_op("Resize", {"x": rand((2, 3, 9))}, {"mode": "linear"},
             consts={"roi": ROI, "s": f32(1, 1, 1.8)})
    check_op("Resize", {"x": rand((5, 6))}, {"mode": "linear"},
             consts={"roi": ROI, "s": f32(2, 0.5)})
    # identity
    check_op("Resize", {"x": x}, {"mode": "linear"}, consts={"roi": ROI, "s": f32(1, 1, 1, 1)})


def test_resize_opset18_axes_and_aspect_policy():
    x = rand((1, 2, 6, 8))
    check_op("Resize", {"x": x}, {"mode": "linear", "axes": [2, 3]},
             consts={"roi": ROI, "s": f32(1.5, 2)}, opset=18)
    check_op("Resize", {"x": x}, {"mode": "nearest", "axes": [3]},
             consts={"roi": ROI, "s": f32(0.5)}, opset=18)
    # negative axes (onnx.reference mishandles them): onnxruntime as the oracle
    attrs = {"mode": "linear", "axes": [-1, -2]}
    consts = {"roi": ROI, "s": f32(2, 1.5)}
    want = ort_outputs("Resize", {"x": x}, attrs, consts=consts, opset=18)
    check_op("Resize", {"x": x}, attrs, consts=consts, opset=18, expected=want)
    for policy in ("not_larger", "not_smaller"):
        check_op("Resize", {"x": x}, {"mode": "nearest", "axes": [2, 3],
                                      "keep_aspect_ratio_policy": policy},
                 consts={"sizes": i64(9, 9)}, input_order=["x", "", "", "sizes"], opset=18)
    check_op("Resize", {"x": x}, {"mode": "linear", "antialias": 1},
             consts={"roi": ROI, "s": f32(1, 1, 2, 2)}, opset=18)


def test_resize_unsupported_modes_raise():
    x = rand((1, 1, 4, 4))
    for attrs, consts, opset, order in [
        ({"mode": "cubic"}, {"s": f32(1, 1, 2, 2)}, 10, None),                  # Resize-10: no cubic
        ({"mode": "nearest", "antialias": 1}, {"roi": ROI, "s": f32(1, 1, 0.5, 0.5)}, 18, None),
        ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"},
         {"roi": ROI, "s": f32(1, 1, 2, 2)}, 13, None),                        # no roi
        ({"mode": "cubic"}, {"roi": ROI, "s": f32(1, 1, -2, 2)}, 13, None),     # negative scale
    ]:
        model = make_single_node_model("Resize", {"x": x}, attrs, consts=consts, opset=opset,
                                       input_order=order)
        with pytest.raises(UnsupportedModelError, match="Resize node"):
            compiler.compile_onnx(model)
    # the matrix path is float32 only
    model = make_single_node_model("Resize", {"x": rand((1, 1, 4, 4), np.int64)}, {"mode": "cubic"},
                                   consts={"roi": ROI, "s": f32(1, 1, 2, 2)}, opset=13)
    with pytest.raises(UnsupportedModelError, match="float32"):
        compiler.compile_onnx(model)


# ---- the interpolation-matrix path: cubic, tf_crop_and_resize, antialias, N-d linear ------

@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"])
@pytest.mark.parametrize("scales", [(1, 1, 2, 1.7), (1, 1, 0.6, 0.8)])
def test_resize_cubic_modes(ctm, scales):
    attrs = {"mode": "cubic", "coordinate_transformation_mode": ctm}
    check_op("Resize", {"x": rand((2, 3, 5, 7))}, attrs, consts={"roi": ROI, "s": f32(*scales)},
             opset=13)


@pytest.mark.parametrize("attrs,consts,order", [
    ({"cubic_coeff_a": -0.5, "exclude_outside": 1}, {"roi": ROI, "s": f32(1, 1, 1.5, 2.2)}, None),
    ({"exclude_outside": 1}, {"roi": ROI, "s": f32(1, 1, 0.7, 0.5)}, None),
    ({}, {"roi": ROI, "sizes": i64(2, 3, 3, 11)}, ["x", "roi", "", "sizes"]),
    ({"antialias": 1}, {"roi": ROI, "s": f32(1, 1, 0.6, 0.4)}, None),
    ({"antialias": 1, "axes": [3, 2]}, {"roi": ROI, "s": f32(0.5, 0.75)}, None),
    ({"axes": [1, 3]}, {"roi": ROI, "s": f32(1.5, 0.8)}, None),          # cubic on C too
])
def test_resize_cubic_variants(attrs, consts, order):
    check_op("Resize", {"x": rand((2, 3, 5, 7))}, dict(attrs, mode="cubic"), consts=consts,
             input_order=order, opset=18)


def test_resize_cubic_half_pixel_symmetric():
    # onnx.reference's half_pixel_symmetric is wrong (see test_resize_linear_modes): ORT
    attrs = {"mode": "cubic", "coordinate_transformation_mode": "half_pixel_symmetric"}
    x = rand((1, 2, 5, 7))
    for consts in ({"roi": ROI, "s": f32(1, 1, 2, 1.7)}, {"roi": ROI, "s": f32(1, 1, 0.6, 0.8)}):
        want = ort_outputs("Resize", {"x": x}, attrs, consts=consts, opset=19)
        check_op("Resize", {"x": x}, attrs, consts=consts, opset=19, expected=want)


@pytest.mark.parametrize("attrs,scales", [
    ({}, (1, 2, 1.5, 1)),                                     # linear on C and H
    ({"antialias": 1}, (1, 1, 0.5, 0.6)),                     # antialiased downsampling
    ({"antialias": 1}, (1, 0.5, 1.4, 0.3)),
    ({"exclude_outside": 1, "coordinate_transformation_mode": "align_corners"}, (1, 3, 2, 1)),
])
def test_resize_linear_matrix(attrs, scales):
    check_op("Resize", {"x": rand((2, 3, 5, 7))}, dict(attrs, mode="linear"),
             consts={"roi": ROI, "s": f32(*scales)}, opset=18)


def test_resize_linear_5d():
    # trilinear (Upsample-7's name for 3-D linear)
    check_op("Resize", {"x": rand((1, 2, 3, 4, 5))}, {"mode": "linear"},
             consts={"roi": ROI, "s": f32(1, 1, 2, 1.5, 0.6)}, opset=13)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("roi,axes", [
    (f32(0, 0, 0.4, 0.6, 1, 1, 0.8, 1.2), None),          # the last window runs outside: extrapolated
    (f32(0.2, -0.3, 0.9, 0.8), [2, 3]),
    (f32(0.6, 0.4, 0.8, 0.6), [3, 2]),
])
def test_resize_tf_crop_and_resize(mode, roi, axes):
    attrs = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
             "extrapolation_value": 2.5}
    if axes is not None:
        attrs["axes"] = axes
    sizes = i64(2, 3, 4, 9) if axes is None else i64(4, 9)
    check_op("Resize", {"x": rand((2, 3, 5, 7))}, attrs, consts={"roi": roi, "sizes": sizes},
             input_order=["x", "roi", "", "sizes"], opset=18)


def test_resize_matrix_plan_is_one_gemm_per_axis():
    from deepsparse_lite.ops.gemm import GemmOp
    model = make_single_node_model("Resize", {"x": rand((1, 2, 6, 8))}, {"mode": "cubic"},
                                   consts={"roi": ROI, "s": f32(1, 1, 2, 0.5)}, opset=13)
    # (the interpolation matrices are mostly zeros: dense forced, the auto choice is timed)
    ops = [int(st["op"]) for st in compiler.compile_onnx(model, sparse="dense").steps]
    assert ops == [GemmOp.GEMM, GemmOp.CONV]   # W shrinks first (packed GEMM), then H (const-left)


@pytest.mark.parametrize("mode,scales", [
    ("nearest", (1, 1, 2, 2)), ("nearest", (1, 1, 2, 1.5)), ("nearest", (1, 1, 0.5, 0.6)),
    ("linear", (1, 1, 2, 1.5)), ("linear", (1, 1, 0.5, 0.75)),
])
@pytest.mark.parametrize("op,opset", [("Resize", 10), ("Upsample", 9)])
def test_legacy_resize_matches_onnxruntime(mode, scales, op, opset):
    if op == "Upsample" and min(scales) < 1:
        pytest.skip("Upsample cannot downsample")
    x = rand((1, 2, 5, 6))
    consts = {"s": f32(*scales)}
    want = ort_outputs(op, {"x": x}, {"mode": mode}, consts=consts, opset=opset)
    check_op(op, {"x": x}, {"mode": mode}, consts=consts, opset=opset, expected=want)


def test_upsample_nearest_reference():
    check_op("Upsample", {"x": rand((1, 2, 3, 4), np.int64)}, {"mode": "nearest"},
             consts={"s": f32(1, 1, 2, 3)}, opset=9)


# --------------------------------------------------------------------------------------
# sizes above the per-thread work threshold, so 2 threads really split the work
# --------------------------------------------------------------------------------------

def test_big_enough_to_thread():
    x = rand((3, 70, 130))
    check_op("Transpose", {"x": x}, {"perm": [2, 0, 1]})
    check_op("Transpose", {"x": rand((3, 70, 130), np.int64)}, {"perm": [0, 2, 1]})
    check_op("Slice", {"x": x}, consts={"s": i64(-1), "e": i64(-1000), "a": i64(1), "st": i64(-1)})
    check_op("Expand", {"x": rand((1, 70, 1))}, consts={"s": i64(5, 70, 130)})
    check_op("Pad", {"x": x}, {"mode": "reflect"}, consts={"p": i64(0, 3, 5, 0, 4, 6)})
    check_op("Gather", {"x": rand((50, 40, 30)), "i": RNG.integers(-40, 40, (5, 7))}, {"axis": 1})
    check_op("GatherElements", {"x": x, "i": RNG.integers(-3, 3, x.shape)}, {"axis": 0})
    # one long row: the copy is cut into per-thread segments
    check_op("Concat", {"a": rand((1, 50001)), "b": rand((1, 50001))}, {"axis": 0})
    check_op("Slice", {"x": rand((200001,))}, consts={"s": i64(-2), "e": i64(1), "st": i64(-3)},
             input_order=["x", "s", "e", "", "st"])
    check_op("Resize", {"x": rand((2, 8, 30, 40))}, {"mode": "nearest"},
             consts={"roi": ROI, "s": f32(1, 1, 2, 2)})
    check_op("Resize", {"x": rand((2, 8, 30, 40))}, {"mode": "linear"},
             consts={"roi": ROI, "s": f32(1, 1, 2, 2)})
