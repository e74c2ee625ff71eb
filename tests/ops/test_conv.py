"""Conv and ConvTranspose against the ONNX reference (or onnxruntime where the reference
is known to be wrong): groups, depthwise, strides, dilations, explicit and auto pads, 1-D,
batch 2, tile edges and K/N blocking, fused bias/activation, every ISA, 1-2 threads.
The im2col path (runtime weights or bias, 3-D and higher) is tested at the end."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deepsparse_lite import compiler, kernels
from deepsparse_lite.kernels import gemm as gemm_kernels
from deepsparse_lite.ops.base import Act, DataOp, UnsupportedModelError, get_op
from deepsparse_lite.ops.gemm import GemmOp
from deepsparse_lite.step_params import GEMM as GEMM_PARAMS
from deepsparse_lite.ops.reduce import ReduceOp
from tests.helpers import check_op, isa_combos, make_single_node_model, reference_outputs, run_model


def rnd(*shape, seed=0):
    return np.random.default_rng(seed + 7 * len(shape) + sum(shape)).standard_normal(shape).astype(np.float32)


@pytest.fixture(autouse=True)
def split_small_work():
    old = gemm_kernels.set_min_work(1)
    yield
    gemm_kernels.set_min_work(old)


def conv(x_shape, w_shape, attrs=None, bias=True, op="Conv", expected_from_ort=False):
    cout = w_shape[1] * attrs.get("group", 1) if op == "ConvTranspose" else w_shape[0]
    consts = {"w": rnd(*w_shape, seed=1) * 0.3}
    if bias:
        consts["b"] = rnd(cout, seed=2)
    inputs = {"x": rnd(*x_shape)}
    expected = None
    if expected_from_ort:
        model = make_single_node_model(op, inputs, attrs, consts=consts)
        model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = sess.run(None, inputs)
    return check_op(op, inputs, attrs or {}, consts=consts, rtol=1e-4, atol=2e-4, expected=expected)


# ---- Conv -----------------------------------------------------------------------------

@pytest.mark.parametrize("x,w,attrs", [
    ((1, 3, 10, 11), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 33, 9, 7), (17, 33, 3, 3), {}),                              # odd channels
    ((2, 6, 9, 8), (10, 3, 3, 3), {"group": 2, "pads": [1, 0, 2, 1]}),  # groups, asymmetric pads
    ((1, 6, 9, 8), (6, 2, 3, 2), {"group": 3, "strides": [2, 1]}),
    ((1, 4, 13, 12), (7, 4, 3, 3), {"strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((1, 4, 13, 12), (7, 4, 5, 3), {"dilations": [2, 3]}),
    ((1, 40, 12, 11), (19, 40, 3, 3), {"pads": [1, 1, 1, 1]}),       # K = 360: two K blocks
    ((1, 5, 40, 41), (9, 5, 3, 3), {"pads": [1, 1, 1, 1]}),          # N = 1640: two N blocks
    ((1, 3, 7, 7), (4, 3, 7, 7), {}),                                 # kernel == image
    ((1, 3, 5, 5), (4, 3, 3, 3), {"pads": [3, 3, 3, 3]}),             # more padding than kernel
    ((1, 3, 9, 70), (5, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),  # wide stride-2 rows
    ((1, 4, 5, 66), (3, 4, 1, 1), {"strides": [2, 2]}),
    ((1, 3, 9, 71), (5, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),  # ResNet stem-like
])
def test_conv_general(x, w, attrs):
    conv(x, w, attrs)


@pytest.mark.parametrize("ow", [5, 7, 8, 15, 16, 17, 20, 31, 32, 33, 48])
@pytest.mark.parametrize("attrs", [{"pads": [1, 1, 1, 1]}, {}, {"pads": [1, 1, 1, 1], "strides": [1, 2]}])
def test_conv_panels_cross_output_rows(ow, attrs):
    """The im2col packer's runs of output pixels: 8-, 16- and 32-wide panels (the generic,
    AVX2 and AVX-512 geometries, each run under every CPU cap) that start mid-row, span
    several short rows, or hold a 16-pixel run at a non-zero offset (the AVX-512 bug)."""
    sw = attrs.get("strides", [1, 1])[1]
    pw = sum(attrs.get("pads", [0, 0, 0, 0])[1::2])
    conv((1, 3, 6, (ow - 1) * sw + 3 - pw), (4, 3, 3, 3), attrs)


def test_conv_n_split_into_several_blocks():
    # N = 56 * 56 = 3136 output pixels: four NC blocks of a runtime B, split over 2 threads
    conv((1, 4, 56, 56), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("attrs", [{}, {"strides": [2, 2]}, {"pads": [1, 0, 0, 1]}, {"group": 2}])
def test_conv_1x1(attrs):
    conv((2, 8, 10, 11), (6, 8 // attrs.get("group", 1), 1, 1), attrs)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides", [[1, 1], [2, 2], [3, 2]])
def test_conv_auto_pad(auto_pad, strides):
    conv((1, 3, 11, 10), (4, 3, 4, 3), {"auto_pad": auto_pad, "strides": strides})


@pytest.mark.parametrize("k,attrs", [
    (3, {"pads": [1, 1, 1, 1]}),
    (3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    (5, {"pads": [2, 2, 2, 2]}),
    (3, {"pads": [0, 1, 2, 1], "dilations": [2, 2]}),
    (3, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    (7, {"strides": [3, 3]}),
])
def test_conv_depthwise(k, attrs):
    c = 7
    conv((2, c, 12, 13), (c, 1, k, k), dict(attrs, group=c))


@pytest.mark.parametrize("k,attrs", [
    (3, {"pads": [1, 1, 1, 1]}), (5, {"pads": [2, 1, 0, 2], "dilations": [1, 2]}),
    (3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}), (3, {"pads": [0, 0, 1, 1], "strides": [1, 2]}),
    (5, {"pads": [2, 2, 2, 2], "strides": [2, 2], "dilations": [1, 3]}), (3, {"strides": [1, 3]}),
    (3, {"pads": [1, 1, 1, 1], "dilations": [2, 2]}),
])
@pytest.mark.parametrize("width", [45, 8, 5])
def test_conv_depthwise_row_widths(k, attrs, width):
    # wide rows use the 16/8-pixel blocks (and vector de-interleave for stride 2), short
    # rows the overlapping tail block or a partial one
    conv((1, 3, 6, width + 4), (3, 1, k, k), dict(attrs, group=3))


def test_conv_depthwise_channel_multiplier_uses_grouped_gemm():
    conv((1, 4, 9, 9), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("attrs", [{}, {"pads": [2, 1], "strides": [2], "dilations": [2]},
                                   {"auto_pad": "SAME_LOWER", "strides": [2]}, {"group": 2}])
def test_conv_1d(attrs):
    conv((2, 6, 19), (4, 6 // attrs.get("group", 1), 4), attrs)


def test_conv_1d_depthwise():
    conv((1, 6, 30), (6, 1, 5), {"group": 6, "pads": [2, 2]})


def test_conv_without_bias():
    conv((1, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, bias=False)


def test_conv_bad_groups_rejected():
    model = make_single_node_model("Conv", {"x": rnd(1, 6, 4, 4)}, {"group": 2}, consts={"w": rnd(9, 3, 2, 2)})
    with pytest.raises(UnsupportedModelError):
        compiler.compile_onnx(model)


@pytest.mark.parametrize("w_shape,attrs", [((6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
                                           ((7, 40, 3, 3), {"pads": [1, 1, 1, 1]}),  # 2 K blocks
                                           ((4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]})])
@pytest.mark.parametrize("act,a,b", [(Act.RELU, 0.0, 0.0), (Act.CLIP, 0.0, 6.0), (Act.LEAKY_RELU, 0.1, 0.0),
                                     (Act.HARD_SWISH, 0.0, 0.0)])
def test_conv_fused_bias_and_activation_attrs(w_shape, attrs, act, a, b):
    from tests.ops.test_gemm import compile_with_node_attrs

    cin = w_shape[1] * attrs.get("group", 1)
    x, w, bias = rnd(2, cin, 9, 10), rnd(*w_shape, seed=1) * 0.3, rnd(w_shape[0], seed=2)
    model = make_single_node_model("Conv", {"x": x}, attrs, consts={"w": w, "b": bias})
    (pre,) = reference_outputs(model, {"x": x})
    if act == Act.RELU:
        want = np.maximum(pre, 0)
    elif act == Act.CLIP:
        want = np.clip(pre, a, b)
    elif act == Act.LEAKY_RELU:
        want = np.where(pre >= 0, pre, a * pre)
    else:
        want = pre * np.clip(pre / 6 + 0.5, 0, 1)
    for isa, cap in isa_combos():
        for nt in (1, 2):
            plan = compile_with_node_attrs(model, {"_act": act, "_act_alpha": a, "_act_beta": b},
                                           isa=isa, max_threads=nt)
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [x], num_threads=nt)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"isa={isa} cap={cap}")


@pytest.mark.skipif(get_op("Relu") is None or get_op("BatchNormalization") is None,
                    reason="elementwise / normalization ops are not on this branch yet")
def test_conv_bn_relu_fused_end_to_end():
    import onnx
    from onnx import helper, numpy_helper

    c = 5
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
             helper.make_node("Relu", ["n"], ["y"])]
    inits = [numpy_helper.from_array(rnd(c, 3, 3, 3, seed=1), "w"),
             numpy_helper.from_array(np.abs(rnd(c, seed=2)) + 0.5, "s"),
             numpy_helper.from_array(rnd(c, seed=3), "bb"), numpy_helper.from_array(rnd(c, seed=4), "m"),
             numpy_helper.from_array(np.abs(rnd(c, seed=5)) + 0.5, "v")]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 9])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = rnd(1, 3, 8, 9)
    assert compiler.compile_onnx(model).num_steps == 1  # BN folded, Relu in the epilogue
    # onnxruntime is the oracle: ReferenceEvaluator's BatchNormalization-9 (chosen at opset 13)
    # normalises with the batch's own statistics instead of the running mean/var.
    typed = onnx.ModelProto.FromString(model.SerializeToString())
    typed.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    (want,) = ort.InferenceSession(typed.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for nt in (1, 2):
        np.testing.assert_allclose(run_model(model, {"x": x}, threads=nt)[0], want, rtol=1e-4, atol=1e-4)


# ---- ConvTranspose --------------------------------------------------------------------

@pytest.mark.parametrize("x,w,attrs", [
    ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 0]}),
    ((2, 3, 4, 4), (3, 5, 4, 4), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {}),
    ((1, 3, 5, 4), (3, 2, 3, 2), {"dilations": [2, 1], "strides": [1, 3]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"output_shape": [11, 10], "strides": [2, 2]}),
    ((1, 20, 6, 6), (20, 19, 2, 2), {"strides": [2, 2]}),
])
def test_conv_transpose(x, w, attrs):
    conv(x, w, attrs, op="ConvTranspose")


@pytest.mark.parametrize("attrs", [{"group": 2, "strides": [2, 2]}, {"group": 3, "pads": [1, 1, 1, 1]}])
def test_conv_transpose_groups(attrs):
    # onnx.reference mishandles grouped ConvTranspose: onnxruntime is the oracle here
    conv((2, 6, 5, 4), (6, 2, 3, 3), attrs, op="ConvTranspose", expected_from_ort=True)


@pytest.mark.parametrize("attrs", [{}, {"strides": [3], "pads": [1, 2], "output_padding": [1]}])
def test_conv_transpose_1d(attrs):
    conv((2, 3, 7), (3, 4, 3), attrs, op="ConvTranspose")


# ---- the im2col path: runtime weights / bias, 3-D and higher (ops/im2col.py) ---------------

def conv_rt(x_shape, w_shape, attrs, op="Conv", bias="runtime", w_runtime=True, expected_from_ort=False):
    """Weights (and bias, if ``bias == "runtime"``) as graph inputs, or constants."""
    cout = w_shape[1] * attrs.get("group", 1) if op == "ConvTranspose" else w_shape[0]
    inputs, consts = {"x": rnd(*x_shape)}, {}
    (inputs if w_runtime else consts)["w"] = rnd(*w_shape, seed=1) * 0.3
    if bias:
        (inputs if bias == "runtime" else consts)["b"] = rnd(cout, seed=2)
    order = ["x", "w"] + (["b"] if bias else [])
    expected = None
    if expected_from_ort:
        model = make_single_node_model(op, inputs, attrs, consts=consts, input_order=order)
        model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = sess.run(None, inputs)
    return check_op(op, inputs, attrs, consts=consts, input_order=order, rtol=1e-4, atol=2e-4,
                    expected=expected)


def plan_ops(op, inputs, attrs, consts=None, order=None):
    model = make_single_node_model(op, inputs, attrs, consts=consts, input_order=order)
    return [int(s["op"]) for s in compiler.compile_onnx(model).steps]


@pytest.mark.parametrize("x,w,attrs", [
    ((2, 6, 9, 8), (10, 3, 3, 3), {"group": 2, "pads": [1, 0, 2, 1]}),
    ((1, 33, 9, 7), (17, 33, 3, 3), {"strides": [2, 1], "dilations": [1, 2]}),   # tile edges
    ((2, 4, 13, 12), (7, 4, 5, 3), {"strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((1, 3, 5, 5), (4, 3, 3, 3), {"pads": [3, 3, 3, 3]}),            # taps entirely in the padding
    ((2, 5, 9, 8), (5, 1, 3, 3), {"group": 5, "pads": [1, 1, 1, 1]}),  # depthwise
    ((2, 8, 10, 11), (6, 8, 1, 1), {}),
    ((2, 6, 19), (4, 3, 4), {"group": 2, "pads": [2, 1], "strides": [2], "dilations": [2]}),  # 1-D
])
@pytest.mark.parametrize("bias", ["runtime", "const", None])
def test_conv_runtime_weights(x, w, attrs, bias):
    conv_rt(x, w, attrs, bias=bias)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides", [[1, 1], [3, 2]])
def test_conv_runtime_weights_auto_pad(auto_pad, strides):
    conv_rt((2, 3, 11, 10), (4, 3, 4, 3), {"auto_pad": auto_pad, "strides": strides}, bias=None)


def test_conv_const_weights_runtime_bias():
    conv_rt((2, 6, 9, 8), (10, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, w_runtime=False)


@pytest.mark.parametrize("x,w,attrs", [
    ((2, 4, 5, 6, 7), (6, 2, 3, 2, 3), {"group": 2, "pads": [1, 0, 1, 1, 2, 0], "strides": [1, 2, 1]}),
    ((1, 3, 7, 6, 9), (17, 3, 3, 3, 3), {"pads": [1, 1, 1, 1, 1, 1]}),       # M, N tile edges
    ((2, 2, 9, 8, 7), (3, 2, 3, 2, 2), {"dilations": [2, 3, 1], "strides": [2, 1, 3]}),
    ((1, 4, 4, 5, 6), (4, 1, 3, 3, 3), {"group": 4, "pads": [1, 1, 1, 1, 1, 1]}),  # depthwise 3-D
    ((1, 2, 4, 5, 3, 4), (3, 2, 2, 3, 2, 2), {"pads": [1, 0, 1, 0, 0, 1, 1, 0]}),  # 4-D
])
@pytest.mark.parametrize("w_runtime", [False, True])
def test_conv_nd(x, w, attrs, w_runtime):
    conv_rt(x, w, attrs, bias="const", w_runtime=w_runtime)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_3d_auto_pad(auto_pad):
    conv_rt((2, 3, 7, 6, 5), (4, 3, 3, 2, 3), {"auto_pad": auto_pad, "strides": [2, 1, 2]},
            bias="const", w_runtime=False)


def test_conv_im2col_chunks_images(monkeypatch):
    from deepsparse_lite.ops import im2col
    monkeypatch.setattr(im2col, "COL_BYTES_LIMIT", 4 * 3 * 8 * 7 * 7 * 2)   # two images a chunk
    conv_rt((5, 3, 7, 6, 5), (4, 3, 2, 2, 2), {"pads": [1, 1, 0, 0, 1, 1]}, bias="const", w_runtime=False)
    conv_rt((5, 3, 7, 6), (4, 3, 2, 2), {"pads": [1, 1, 0, 0]}, bias="runtime")
    conv_rt((5, 3, 3, 2), (3, 4, 2, 2), {"strides": [2, 2]}, op="ConvTranspose", bias="runtime")


def test_conv_paths_chosen():
    x, w, b = rnd(1, 4, 6, 6), rnd(5, 4, 3, 3), rnd(5)
    # constant 2-D weights keep the fused-im2col kernel: one step
    assert plan_ops("Conv", {"x": x}, {"pads": [1, 1, 1, 1]}, consts={"w": w, "b": b}) == [GemmOp.CONV]
    # runtime weights: FILL, a COPY per tap, MATMUL
    ops = plan_ops("Conv", {"x": x, "w": w}, {"pads": [1, 1, 1, 1]})
    assert ops[0] == DataOp.FILL and ops[-1] == GemmOp.MATMUL and ops.count(DataOp.COPY) == 9
    # 3-D constant weights: depth taps folded into channels (a COPY per depth tap), the 2-D
    # CONV kernel, a transposing COPY back
    ops = plan_ops("Conv", {"x": rnd(1, 2, 4, 4, 4)}, {}, consts={"w": rnd(3, 2, 2, 2, 2)})
    assert ops == [DataOp.COPY] * 2 + [GemmOp.CONV, DataOp.COPY]   # no padding: no FILL
    # 4-D constant weights: the column buffer read by the CONV kernel as a 1x1 conv
    ops = plan_ops("Conv", {"x": rnd(1, 2, 3, 3, 3, 3)}, {}, consts={"w": rnd(3, 2, 2, 1, 1, 2)})
    assert ops == [DataOp.COPY] * 4 + [GemmOp.CONV]   # every tap fills its box
    # runtime-weight ConvTranspose: MATMUL, then col2im (FILL, a COPY per tap, the bias
    # slot's COPY, REDUCE)
    ops = plan_ops("ConvTranspose", {"x": x, "w": rnd(4, 3, 2, 2), "b": rnd(3)}, {"strides": [2, 2]})
    assert ops == [GemmOp.MATMUL, DataOp.FILL] + [DataOp.COPY] * 5 + [ReduceOp.REDUCE]


@pytest.mark.parametrize("act,a,b", [(Act.RELU, 0.0, 0.0), (Act.CLIP, -0.5, 0.5), (Act.HARD_SWISH, 0.0, 0.0)])
@pytest.mark.parametrize("w_runtime", [False, True])
def test_conv_im2col_fused_activation(act, a, b, w_runtime):
    from tests.ops.test_gemm import compile_with_node_attrs

    x, w, bias = rnd(2, 4, 5, 6, 4), rnd(6, 2, 3, 3, 2, seed=1) * 0.3, rnd(6, seed=2)
    attrs = {"group": 2, "pads": [1, 1, 0, 1, 1, 1]}
    ins = {"x": x, "w": w} if w_runtime else {"x": x}
    model = make_single_node_model("Conv", ins, attrs, consts={"b": bias} if w_runtime else {"w": w, "b": bias},
                                   input_order=["x", "w", "b"])
    (pre,) = reference_outputs(model, ins)
    want = {Act.RELU: lambda v: np.maximum(v, 0), Act.CLIP: lambda v: np.clip(v, a, b),
            Act.HARD_SWISH: lambda v: v * np.clip(v / 6 + 0.5, 0, 1)}[act](pre)
    for isa, cap in isa_combos():
        plan = compile_with_node_attrs(model, {"_act": act, "_act_alpha": a, "_act_beta": b},
                                       isa=isa, max_threads=2)
        with kernels.isa_cap(cap):
            got = compiler.execute(plan, [ins[i.name] for i in plan.inputs], num_threads=2)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"isa={isa} cap={cap}")


CONVT_CASES = [
    ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 0]}),
    ((2, 3, 4, 4), (3, 5, 4, 4), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 3, 5, 4), (3, 2, 3, 2), {"dilations": [2, 1], "strides": [1, 3]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 3, 5, 4), (3, 2, 3, 3), {"output_shape": [11, 10], "strides": [2, 2]}),
    ((2, 3, 7), (3, 4, 3), {"strides": [3], "pads": [1, 2], "output_padding": [1], "dilations": [2]}),
    ((1, 1, 5, 4), (1, 9, 3, 3), {"strides": [2, 2]}),            # one input channel
    ((2, 3, 4, 5, 3), (3, 2, 3, 2, 3), {"strides": [2, 1, 2], "pads": [1, 0, 0, 0, 1, 1]}),  # 3-D
    ((1, 2, 3, 4, 3), (2, 3, 2, 3, 2), {"auto_pad": "SAME_LOWER", "strides": [2, 2, 3]}),
]
CONVT_GROUP_CASES = [
    ((2, 6, 5, 4), (6, 2, 3, 3), {"group": 2, "strides": [2, 2]}),
    ((2, 6, 5, 4), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    ((2, 6, 3, 4, 3), (6, 2, 3, 3, 2), {"group": 3, "strides": [2, 2, 1], "dilations": [1, 2, 1]}),
]


def _with_const_3d(cases):
    """Every case with runtime weights; the 3-D ones also with constant weights (constant
    1-D / 2-D ConvTranspose takes the CONVT kernel, tested above)."""
    return [c + (True,) for c in cases] + [c + (False,) for c in cases if len(c[0]) >= 5]


@pytest.mark.parametrize("x,w,attrs,w_runtime", _with_const_3d(CONVT_CASES))
def test_conv_transpose_im2col(x, w, attrs, w_runtime):
    conv_rt(x, w, attrs, op="ConvTranspose", bias="runtime" if w_runtime else "const", w_runtime=w_runtime)


def test_conv_transpose_const_weights_runtime_bias():
    conv_rt((2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]},
            op="ConvTranspose", w_runtime=False)


@pytest.mark.parametrize("x,w,attrs,w_runtime", _with_const_3d(CONVT_GROUP_CASES))
def test_conv_transpose_im2col_groups(x, w, attrs, w_runtime):
    # onnx.reference mishandles grouped ConvTranspose: onnxruntime is the oracle here
    conv_rt(x, w, attrs, op="ConvTranspose", bias="const", w_runtime=w_runtime, expected_from_ort=True)


@pytest.mark.parametrize("op,x,w", [
    ("Conv", (2, 3), (4, 3)),                                   # no spatial dim
    ("Conv", (1, 2) + (2,) * 8, (3, 2) + (1,) * 8),            # 8 spatial dims: a 9-d copy
    ("Conv", (1, 4, 5, 5), (3, 3, 2, 2)),                      # channels do not match
    ("ConvTranspose", (1, 4, 5, 5, 5), (3, 2, 2, 2, 2)),
])
def test_conv_im2col_refusals(op, x, w):
    model = make_single_node_model(op, {"x": rnd(*x), "w": rnd(*w)})
    with pytest.raises(UnsupportedModelError, match=f"{op} node"):
        compiler.compile_onnx(model)


def test_conv_runtime_bias_of_wrong_size_refused():
    model = make_single_node_model("Conv", {"x": rnd(1, 2, 4, 4), "w": rnd(3, 2, 2, 2), "b": rnd(4)})
    with pytest.raises(UnsupportedModelError, match="bias"):
        compiler.compile_onnx(model)


# ---- Col2Im: ConvTranspose's column buffer of the input, summed over the taps ------------

@pytest.mark.parametrize("image,block,attrs", [
    ([5, 5], [2, 2], {}),
    ([6, 7], [3, 2], {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]}),
    ([9], [3], {"strides": [2], "pads": [1, 1]}),
    ([4, 5, 3], [2, 3, 2], {"pads": [1, 1, 0, 0, 1, 1], "strides": [1, 2, 1]}),
])
def test_col2im(image, block, attrs):
    nd = len(image)
    st, dl = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
    pd = attrs.get("pads", [0] * 2 * nd)
    L = int(np.prod([(image[d] + pd[d] + pd[d + nd] - dl[d] * (block[d] - 1) - 1) // st[d] + 1
                     for d in range(nd)]))
    x = rnd(2, 3 * int(np.prod(block)), L)
    consts = {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}
    check_op("Col2Im", {"x": x}, attrs, consts=consts, opset=18)


def test_col2im_refusals():
    x = rnd(1, 8, 16)
    model = make_single_node_model("Col2Im", {"x": x, "image": np.array([5, 5], np.int64)},
                                   consts={"block": np.array([2, 2], np.int64)}, opset=18)
    with pytest.raises(UnsupportedModelError, match="Col2Im node .*image_shape must be a constant"):
        compiler.compile_onnx(model)
    model = make_single_node_model("Col2Im", {"x": x}, consts={"image": np.array([6, 5], np.int64),
                                                              "block": np.array([2, 2], np.int64)}, opset=18)
    with pytest.raises(UnsupportedModelError, match="Col2Im node .*16 blocks"):
        compiler.compile_onnx(model)


def _residual_model(x_shape, w_shape, attrs, act, out_shape, bias=True):
    """Conv(x, w[, b]) + s, then ``act``: the passes fuse the add into the conv's epilogue
    (the addend D) and a following Relu / Clip / Sigmoid into it too."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(11)
    inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32) * 0.3, "w")]
    ins = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "b"))
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], **attrs),
             helper.make_node("Add", ["c", "s"], ["a" if act else "y"])]
    if act == "Clip":
        inits += [numpy_helper.from_array(np.float32(-0.5), "lo"), numpy_helper.from_array(np.float32(0.75), "hi")]
        nodes.append(helper.make_node("Clip", ["a", "lo", "hi"], ["y"]))
    elif act:
        nodes.append(helper.make_node(act, ["a"], ["y"]))
    vi = onnx.helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", onnx.TensorProto.FLOAT, x_shape), vi("s", onnx.TensorProto.FLOAT, out_shape)],
                          [vi("y", onnx.TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((2, 5, 9, 10), (11, 5, 3, 3), {"pads": [1, 1, 1, 1]}),   # partial row and column tiles
    ((1, 8, 7, 7), (17, 8, 1, 1), {}),                       # 49 pixels: the half-width edge
    ((1, 6, 12, 12), (9, 6, 3, 3), {"strides": [2, 2], "pads": [0, 1, 1, 0]}),
    ((1, 16, 10, 13), (33, 16, 1, 1), {}),                    # X read directly, 130 pixels
    ((1, 3, 5, 5), (2, 3, 1, 1), {}),                         # one row tile of 2, a 25-wide column
])
@pytest.mark.parametrize("act", [None, "Relu", "Clip", "Sigmoid"])
def test_conv_residual_add_in_the_epilogue(x_shape, w_shape, attrs, act):
    """The residual addend D in the tile's register epilogue (after the bias, before the
    clamp; Sigmoid still runs after the store): full and partial tiles of every kernel
    form, 1-2 threads, against onnxruntime."""
    x = rnd(*x_shape)
    (c,) = reference_outputs(make_single_node_model("Conv", {"x": x}, attrs,
                                                    consts={"w": np.zeros(w_shape, np.float32)}), {"x": x})
    s = rnd(*c.shape, seed=5)
    model = _residual_model(x_shape, w_shape, attrs, act, list(c.shape))
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "s": s})[0]
    plan = compiler.compile_onnx(model)
    assert [i.name for i in plan.inputs] == ["x", "s"]
    assert len(plan.step_info) == 1, "the add and the activation fuse into the conv"
    for isa, cap in isa_combos():
        for nt in (1, 2):
            got = run_model(model, {"x": x, "s": s}, threads=nt, isa=isa, cap=cap)[0]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"isa={isa} cap={cap} nt={nt}")


WINO_CASES = [
    ((1, 4, 6, 6), 5, [1, 1, 1, 1]),
    ((2, 3, 7, 9), 9, [1, 1, 1, 1]),       # odd output: partial tiles at both edges, 2 images
    ((1, 16, 14, 14), 40, [1, 1, 1, 1]),   # 49 tiles: two blocks, a partial B panel
    ((1, 5, 5, 8), 3, [0, 0, 0, 0]),
    ((1, 6, 9, 5), 33, [2, 0, 1, 2]),      # asymmetric pads up to 2
    ((1, 8, 3, 2), 4, [2, 2, 2, 2]),       # the image smaller than a patch
    ((1, 24, 40, 40), 17, [1, 1, 1, 1]),   # several blocks per thread
    ((1, 8, 14, 14), 72, [1, 1, 1, 1]),    # few panels: 2 threads split the output channels
    ((1, 16, 7, 7), 80, [1, 1, 1, 1]),     # one block of 16 tiles, channels split
]


def test_winograd_layouts_cover_both_splits():
    """The cases above reach both ways of sharing one image between 2 threads."""
    from deepsparse_lite.kernels import gemm as kgemm

    parts = {kgemm.winograd_layout(2, x[0], x[1], c, x[2] + p[0] + p[2] - 2, x[3] + p[1] + p[3] - 2, 2)[2]
             for x, c, p in WINO_CASES}
    assert parts == {1, 2}


def _wino_model(x_shape, cout, pads, act, bias=True, addend=False):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(sum(x_shape) + cout)
    inits = [numpy_helper.from_array(rng.standard_normal((cout, x_shape[1], 3, 3)).astype(np.float32) * 0.3, "w")]
    ins = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        ins.append("b")
    oh, ow = (x_shape[2 + k] + pads[k] + pads[k + 2] - 2 for k in range(2))
    out = [x_shape[0], cout, oh, ow]
    nodes = [helper.make_node("Conv", ins, ["c"], pads=pads)]
    last = "c"
    if addend:
        nodes.append(helper.make_node("Add", ["c", "s"], ["a"]))
        last = "a"
    if act == "Clip":
        inits += [numpy_helper.from_array(np.float32(-0.5), "lo"), numpy_helper.from_array(np.float32(0.75), "hi")]
        nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["y"]))
    elif act:
        nodes.append(helper.make_node(act, [last], ["y"]))
    else:
        nodes[-1].output[0] = "y"
    vi = onnx.helper.make_tensor_value_info
    inputs = [vi("x", onnx.TensorProto.FLOAT, list(x_shape))] + ([vi("s", onnx.TensorProto.FLOAT, out)] if addend else [])
    g = helper.make_graph(nodes, "g", inputs, [vi("y", onnx.TensorProto.FLOAT, out)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m, out


@pytest.mark.parametrize("x_shape, cout, pads", WINO_CASES)
@pytest.mark.parametrize("act, bias, addend", [(None, True, False), ("Relu", True, True), ("Clip", False, False),
                                                (None, False, True)])
def test_winograd_conv_against_onnxruntime(monkeypatch, x_shape, cout, pads, act, bias, addend):
    """Winograd F(2x2, 3x3) forced on: tile edges, pads 0-2, batch 2, bias, the fused
    residual and Relu / Clip in the output transform, every kernel form, 1-2 threads."""
    monkeypatch.setenv("DSL_WINOGRAD", "on")
    model, out = _wino_model(x_shape, cout, pads, act, bias, addend)
    feeds = {"x": rnd(*x_shape)}
    if addend:
        feeds["s"] = rnd(*out, seed=3)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    plan = compiler.compile_onnx(model)
    assert [int(s["op"]) for s in plan.steps] == [GemmOp.WINO]
    assert plan.step_info[0].info.get("path") == "winograd"
    for isa, cap in isa_combos():
        for nt in (1, 2):
            got = run_model(model, feeds, threads=nt, isa=isa, cap=cap)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=f"isa={isa} cap={cap} nt={nt}")


@pytest.mark.parametrize("attrs, act", [({"strides": [2, 2], "pads": [1, 1, 1, 1]}, None),
                                        ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, None),
                                        ({"group": 2, "pads": [1, 1, 1, 1]}, None),
                                        ({"pads": [3, 3, 3, 3]}, None),
                                        ({"pads": [1, 1, 1, 1]}, "Sigmoid")])
def test_winograd_only_where_it_applies(monkeypatch, attrs, act):
    """Forced on, Winograd still leaves strided, dilated, grouped, over-padded convs and
    non-clamp activations to the direct kernel (and the results stay right)."""
    from onnx import helper

    monkeypatch.setenv("DSL_WINOGRAD", "on")
    x = rnd(1, 4, 9, 9)
    w = rnd(6, 4 // attrs.get("group", 1), 3, 3, seed=1) * 0.3
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], **attrs), helper.make_node(act or "Identity", ["c"], ["y"])]
    vi = onnx.helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", onnx.TensorProto.FLOAT, [1, 4, 9, 9])],
                          [vi("y", onnx.TensorProto.FLOAT, None)], [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    plan = compiler.compile_onnx(model)
    assert GemmOp.WINO not in [int(s["op"]) for s in plan.steps]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_model(model, {"x": x}, threads=2)[0], want, rtol=1e-4, atol=1e-5)


def test_winograd_chosen_per_layer_by_timing(monkeypatch):
    """auto: the plan listing records both timings of an eligible layer and the kernel
    follows them; off: never."""
    monkeypatch.setenv("DSL_WINOGRAD", "auto")
    model, _ = _wino_model((1, 32, 28, 28), 32, [1, 1, 1, 1], "Relu")
    plan = compiler.compile_onnx(model, max_threads=2)
    info = plan.step_info[0].info
    assert "winograd timed" in info["why"] and "direct_ms" in info and "winograd_ms" in info, info
    wino = int(plan.steps[0]["op"]) == GemmOp.WINO
    from deepsparse_lite.ops.conv import WINOGRAD_BIAS
    assert wino == (info["winograd_ms"] * WINOGRAD_BIAS < info["direct_ms"])
    monkeypatch.setenv("DSL_WINOGRAD", "off")
    assert int(compiler.compile_onnx(model, max_threads=2).steps[0]["op"]) == GemmOp.CONV


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((1, 24, 7, 7), (64, 24, 3, 3), {"pads": [1, 1, 1, 1]}),           # im2col, 49 pixels
    ((2, 40, 7, 7), (64, 40, 1, 1), {}),                               # X read directly
    ((1, 16, 14, 14), (96, 16, 1, 1), {"strides": [2, 2]}),            # a strided 1x1
    ((1, 8, 5, 5), (32, 8, 3, 3), {"pads": [1, 1, 1, 1]}),             # 25 pixels
    ((1, 8, 1, 13), (64, 8, 1, 3), {"pads": [0, 1, 0, 1]}),            # 13 pixels
])
@pytest.mark.parametrize("act, addend", [(None, False), ("Relu", True), ("Sigmoid", True)])
def test_conv_pixels_as_rows(monkeypatch, x_shape, w_shape, attrs, act, addend):
    """Small images run with the pixels as the tile's rows (W^T as the packed B, the output
    written transposed with bias, residual and activation) where that fills the tiles
    better: the plan takes the path pixel_rows_better names at each ISA level, and the
    results match onnxruntime in every kernel form, 1-2 threads."""
    from deepsparse_lite.ops.conv import pixel_rows_better

    monkeypatch.setenv("DSL_WINOGRAD", "off")
    x = rnd(*x_shape)
    (c,) = reference_outputs(make_single_node_model("Conv", {"x": x}, attrs,
                                                    consts={"w": np.zeros(w_shape, np.float32)}), {"x": x})
    feeds = {"x": x, "s": rnd(*c.shape, seed=5)}
    if addend:
        model = _residual_model(x_shape, w_shape, attrs, act, list(c.shape))
    else:
        from onnx import helper, numpy_helper
        vi = onnx.helper.make_tensor_value_info
        g = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)], "g",
                              [vi("x", onnx.TensorProto.FLOAT, list(x_shape))],
                              [vi("y", onnx.TensorProto.FLOAT, list(c.shape))],
                              [numpy_helper.from_array(rnd(*w_shape, seed=1) * 0.3, "w"),
                               numpy_helper.from_array(rnd(w_shape[0], seed=2), "b")])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        feeds = {"x": x}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    pixels = c.shape[2] * c.shape[3]
    used = set()
    for isa, cap in isa_combos():
        plan = compiler.compile_onnx(model, isa=isa, max_threads=2)
        conv_steps = [s for s in plan.steps if int(s["op"]) == GemmOp.CONV]
        assert len(conv_steps) == 1
        pr = int(np.frombuffer(conv_steps[0]["params"].tobytes()[:GEMM_PARAMS.itemsize], dtype=GEMM_PARAMS)[0]["pixel_rows"])
        assert pr == int(pixel_rows_better(pixels, w_shape[0], isa)), (isa, pixels)
        used.add(pr)
        for nt in (1, 2):
            got = run_model(model, feeds, threads=nt, isa=isa, cap=cap)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"isa={isa} cap={cap} nt={nt}")
    assert 1 in used, "some ISA level takes the pixel-rows path for this shape"


@pytest.mark.parametrize("width", [7, 14, 16, 17, 31, 33])
@pytest.mark.parametrize("strides,pads", [([1, 1], [1, 1, 1, 1]), ([2, 2], [1, 1, 1, 1]),
                                          ([2, 2], [0, 0, 1, 1]), ([2, 2], [1, 2, 0, 1]),
                                          ([1, 2], [0, 1, 2, 0])])
@pytest.mark.parametrize("act,a,b", [(Act.NONE, 0.0, 0.0), (Act.CLIP, 0.0, 6.0), (Act.RELU, 0.0, 0.0),
                                     (Act.HARD_SWISH, 0.0, 0.0)])
def test_conv_depthwise_3x3_blocks_and_fused_activation(width, strides, pads, act, a, b):
    """The 3x3 depthwise plane at row widths around the 8 / 16-lane blocks (one masked block
    for short rows, even and odd left pads for the stride-2 de-interleave), Relu / Clip in
    registers and other activations after, every ISA form, 1-2 threads."""
    from tests.ops.test_gemm import compile_with_node_attrs

    c = 5
    x, w, bias = rnd(2, c, 9, width) * 3, rnd(c, 1, 3, 3, seed=1), rnd(c, seed=2)
    attrs = {"group": c, "strides": strides, "pads": pads}
    model = make_single_node_model("Conv", {"x": x}, attrs, consts={"w": w, "b": bias})
    (pre,) = reference_outputs(model, {"x": x})
    want = {Act.NONE: pre, Act.CLIP: np.clip(pre, a, b), Act.RELU: np.maximum(pre, 0),
            Act.HARD_SWISH: pre * np.clip(pre / 6 + 0.5, 0, 1)}[act]
    for isa, cap in isa_combos():
        for nt in (1, 2):
            plan = compile_with_node_attrs(model, {"_act": act, "_act_alpha": a, "_act_beta": b},
                                           isa=isa, max_threads=nt)
            assert [s["op"] for s in plan.steps] == [504]
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [x], num_threads=nt)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"isa={isa} cap={cap} nt={nt}")


def _expand_dw_model(cin, ce, hw, k, strides, pads, ex_act, dw_act, biases=True, extra_output=False):
    from onnx import helper, numpy_helper

    def then(act, src, dst):  # src, or dst = act(src)
        if act is None:
            return src
        nodes.append(helper.make_node(act, [src, "lo", "hi"] if act == "Clip" else [src], [dst]))
        return dst

    nodes = [helper.make_node("Conv", ["x", "w1"] + (["b1"] if biases else []), ["e"], kernel_shape=[1, 1])]
    last = then(ex_act, "e", "ea")
    nodes.append(helper.make_node("Conv", [last, "wd"] + (["bd"] if biases else []), ["d"], group=ce,
                                  kernel_shape=[k, k], strides=strides, pads=pads))
    out = then(dw_act, "d", "y")
    inits = [numpy_helper.from_array(rnd(ce, cin, 1, 1, seed=1) * 0.4, "w1"),
             numpy_helper.from_array(rnd(ce, 1, k, k, seed=2) * 0.4, "wd"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    if biases:
        inits += [numpy_helper.from_array(rnd(ce, seed=3), "b1"), numpy_helper.from_array(rnd(ce, seed=4), "bd")]
    outputs = [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)]
    if extra_output:
        outputs.append(helper.make_tensor_value_info(last, onnx.TensorProto.FLOAT, None))
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, cin, hw[0], hw[1]])],
        outputs, inits), opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.fixture
def fuse_everything(monkeypatch):
    from deepsparse_lite.compiler import passes
    from deepsparse_lite.ops import conv as conv_ops

    monkeypatch.setattr(passes, "FUSE_DW_MIN_BYTES", 0)
    monkeypatch.setattr(passes, "FUSE_DW_MIN_PIXELS", 0)
    monkeypatch.setattr(conv_ops, "XDW_BUDGET", 6 * 1024)  # several bands and channel blocks


@pytest.mark.parametrize("cin,ce,hw,k,strides,pads", [
    (8, 24, (13, 11), 3, [1, 1], [1, 1, 1, 1]),
    (5, 20, (14, 15), 3, [2, 2], [1, 1, 1, 1]),     # channels not a multiple of the tile rows
    (16, 40, (12, 17), 3, [2, 2], [0, 1, 1, 0]),    # asymmetric pads
    (6, 16, (10, 9), 5, [1, 2], [2, 2, 2, 2]),      # 5x5, mixed strides
    (300, 32, (6, 7), 3, [1, 1], [1, 1, 1, 1]),     # K split into blocks
])
@pytest.mark.parametrize("ex_act,dw_act", [("Clip", "Clip"), (None, None), ("Relu", "HardSigmoid")])
def test_expand_depthwise_fused(fuse_everything, cin, ce, hw, k, strides, pads, ex_act, dw_act):
    """A 1x1 conv fused into the depthwise conv it feeds (compiler/passes.py
    fuse_expand_dw): one DWCONV step over bands of rows and blocks of channels, against
    onnx.reference, every ISA form, 1-2 threads, batch 2."""
    model = _expand_dw_model(cin, ce, hw, k, strides, pads, ex_act, dw_act, biases=cin != 300)
    x = rnd(2, cin, *hw)
    (want,) = reference_outputs(model, {"x": x})
    for isa, cap in isa_combos():
        for nt in (1, 2):
            plan = compiler.compile_onnx(model, isa=isa, max_threads=nt)
            steps = [s for s in plan.steps]
            assert [int(s["op"]) for s in steps] == [504]
            q = _gemm_params(steps[0])
            assert q["ex_rows"] > 0 and q["K"] == cin
            with kernels.isa_cap(cap):
                got = compiler.execute(plan, [x], num_threads=nt)[0]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4, err_msg=f"isa={isa} cap={cap} nt={nt}")


def _gemm_params(step):
    from deepsparse_lite.step_params import view

    return view(step, GEMM_PARAMS)


def test_expand_depthwise_not_fused_when_shared_or_off(fuse_everything, monkeypatch):
    """The expanded tensor stays a tensor when something else reads it (here: a graph
    output) and when DSL_FUSE_DW=0; results are the same either way."""
    x = rnd(2, 8, 13, 11)
    shared = _expand_dw_model(8, 24, (13, 11), 3, [1, 1], [1, 1, 1, 1], "Clip", "Clip", extra_output=True)
    assert sorted(int(s["op"]) for s in compiler.compile_onnx(shared).steps) == [503, 504]
    want = reference_outputs(shared, {"x": x})
    for got, ref in zip(run_model(shared, {"x": x}, threads=2), want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-4)
    model = _expand_dw_model(8, 24, (13, 11), 3, [1, 1], [1, 1, 1, 1], "Clip", "Clip")
    monkeypatch.setenv("DSL_FUSE_DW", "0")
    assert sorted(int(s["op"]) for s in compiler.compile_onnx(model).steps) == [503, 504]
    monkeypatch.setenv("DSL_FUSE_DW", "1")
    assert [int(s["op"]) for s in compiler.compile_onnx(model).steps] == [504]
    assert [int(s["op"]) for s in compiler.compile_onnx(model, precision="bf16").steps] != [504]


def test_expand_depthwise_bands_cover_the_image():
    """xdw_bands: the expanded rows of a band's channel block within the budget, channel
    blocks multiples of MR, enough work items for the threads."""
    from deepsparse_lite.ops.conv import xdw_bands

    for ce, H, W, OH, SH in [(96, 112, 112, 56, 2), (144, 56, 56, 56, 1), (960, 7, 7, 7, 1), (20, 3, 300, 3, 1)]:
        rows, cb = xdw_bands(ce, H, W, OH, 3, SH, 1, 8, 1, 2, budget=384 * 1024)
        assert 1 <= rows <= OH and cb % 8 == 0 and cb >= 8
        er = min(H, (rows - 1) * SH + 3)
        assert cb * er * W * 4 <= 384 * 1024 or rows == 1
