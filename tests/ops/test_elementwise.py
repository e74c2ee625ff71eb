"""Elementwise family: vector math accuracy, then every op against onnx.reference.

Tolerances. The vector math is checked against float64 references in ulps (exact bounds per
function, every ISA level this CPU has). The op tests compare with
onnx.reference.ReferenceEvaluator, which computes exp/tanh/log/... with numpy's own float32
routines (each ~1 ulp off) while ours are within ~2-3 ulp: two correct float32 results can
differ by ~4 ulp ~ 5e-7 relative, so transcendental ops use rtol=2e-6 (tight enough that
any algorithmic slip -- a wrong coefficient, a lost range reduction -- fails). Where the
reference itself cancels (Gelu computes 1 + erf(x/sqrt2) in float32, HardSwish's
x/6 + 0.5 near -3) an absolute atol=1e-6 covers its error. Exact ops (Relu, Add, Max, compare,
Cast, Where ...) must match to the last bit or within 1 ulp (rtol=1e-6).
"""
import math

import numpy as np
import pytest

from deepsparse_lite import kernels
from deepsparse_lite.kernels import eltwise
from tests.helpers import check_op

ISAS = kernels.runnable_forms()  # vector-math kernel forms this CPU runs (0 = generic)
F32, F64, I64, I32, I8, U8, BOOL = (np.float32, np.float64, np.int64, np.int32, np.int8,
                                    np.uint8, np.bool_)
MATH = dict(rtol=2e-6, atol=1e-7)


@pytest.fixture(autouse=True, scope="module")
def _small_shapes_use_threads():
    """Per-thread work threshold 1: with threads=2 even small shapes split (chunks start
    mid-row of a broadcast walk), so the partitioning is tested. The *_large_threaded
    tests run with the default thresholds (``default_thresholds``)."""
    old = eltwise.set_min_work(1)
    yield
    eltwise.set_min_work(old)


@pytest.fixture
def default_thresholds():
    old = eltwise.set_min_work(0)
    yield
    eltwise.set_min_work(old)


def rng(seed=0):
    return np.random.default_rng(seed)


def randn(*shape, seed=0, scale=1.0, dtype=F32):
    return (rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------------------------------
# Vector math (kernels/eltwise.vunary_f32), against float64 references
# ---------------------------------------------------------------------------------------

class Fn:
    RELU, LEAKY, CLIP, SIGMOID, TANH, HSIG, HSWISH, GELU, GELU_TANH, ELU, SELU, SOFTPLUS = range(1, 13)
    EXP, LOG, SQRT, NEG, ABS, RECIP, ERF, AFFINE, FLOOR, CEIL, ROUND, SIGN, SOFTSIGN, POW = range(13, 27)


_erf64 = np.vectorize(math.erf)
_erfc64 = np.vectorize(math.erfc)


def _gelu64(x):
    return 0.5 * x * _erfc64(-x / math.sqrt(2.0))


def _gelu_tanh64(x):
    u = 2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    return x / (1 + np.exp(-u))   # = 0.5 x (1 + tanh(u/2)), without the cancellation


def _softplus64(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# fn: (reference, a, b, x range, max ulp on vector ISAs, max ulp on generic libm)
ACCURACY = {
    "exp": (Fn.EXP, np.exp, 0, 0, (-87.0, 88.7), 1.5, 1.0),
    "tanh": (Fn.TANH, np.tanh, 0, 0, (-10.0, 10.0), 2.0, 3.0),
    "sigmoid": (Fn.SIGMOID, lambda x: 1 / (1 + np.exp(-x)), 0, 0, (-80.0, 30.0), 3.0, 3.0),
    "erf": (Fn.ERF, _erf64, 0, 0, (-5.0, 5.0), 3.0, 2.0),
    "gelu": (Fn.GELU, _gelu64, 0, 0, (-5.0, 10.0), 8.0, 30.0),
    "softplus": (Fn.SOFTPLUS, _softplus64, 0, 0, (-40.0, 40.0), 2.5, 2.5),
    "elu": (Fn.ELU, lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)), 0.7, 0, (-20.0, 5.0), 2.0, 2.0),
    "selu": (Fn.SELU, lambda x: 1.0507 * np.where(x > 0, x, 1.6733 * np.expm1(x)), 1.6733, 1.0507,
             (-20.0, 5.0), 3.0, 3.0),
}


def _ulps(got, ref):
    ref32 = ref.astype(F32)
    ulp = np.spacing(np.abs(ref32)).astype(F64)
    return np.abs(got.astype(F64) - ref) / np.maximum(ulp, 2.0 ** -149)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", sorted(ACCURACY))
def test_vmath_accuracy(name, isa):
    fn, ref, a, b, (lo, hi), bound_vec, bound_generic = ACCURACY[name]
    x = np.linspace(lo, hi, 200003, dtype=F64).astype(F32)
    got = eltwise.vunary_f32(fn, x, isa, a, b)
    # the references use the float32-rounded parameters the kernel sees
    want = ref(x.astype(F64))
    err = _ulps(got, want)
    bound = bound_generic if isa == 0 else bound_vec
    k = int(np.argmax(err))
    assert err[k] <= bound, f"{name} isa={isa}: {err[k]:.2f} ulp at x={x[k]!r} (got {got[k]!r}, want {want[k]!r})"


@pytest.mark.parametrize("isa", ISAS)
def test_vmath_log_accuracy_including_denormals(isa):
    x = np.concatenate([np.geomspace(1e-45, 1e-37, 20001), np.geomspace(1e-37, 3e38, 200003),
                        np.linspace(0.5, 2.0, 20001)]).astype(F32)
    x = x[x > 0]
    got = eltwise.vunary_f32(Fn.LOG, x, isa)
    err = _ulps(got, np.log(x.astype(F64)))
    assert err.max() <= 1.5, f"log: {err.max():.2f} ulp at x={x[np.argmax(err)]!r}"


@pytest.mark.parametrize("isa", ISAS)
def test_vmath_gelu_tanh(isa):
    x = np.linspace(-6, 10, 100003).astype(F32)
    got = eltwise.vunary_f32(Fn.GELU_TANH, x, isa).astype(F64)
    want = _gelu_tanh64(x.astype(F64))
    # the vector form x * sigmoid(2y) is accurate to ~3e-6 relative (float32 rounding of y
    # is amplified by |2y|); the generic 0.5x(1 + tanh y) has an absolute error ~1e-7
    np.testing.assert_allclose(got, want, rtol=4e-6, atol=1.5e-7)


INF, NAN = np.inf, np.nan
SPECIAL_X = np.array([INF, -INF, NAN, 0.0, -0.0, 100.0, -100.0, 88.8, -104.0, 1e-40, 20.0, -20.0],
                     dtype=F32)
SPECIAL = {
    # expected outputs for SPECIAL_X (None = not checked); values from float64 references.
    # Results below FLT_MIN may be flushed to 0 (the vector sigmoid/softplus/erfc do that,
    # so no denormals flow into the next layer); only Exp returns denormals.
    Fn.EXP: [INF, 0, NAN, 1, 1, INF, 3.7835059e-44, INF, 0, 1, 485165184.0, 2.0611537e-9],
    Fn.LOG: [INF, NAN, NAN, -INF, -INF, 4.6051702, NAN, 4.4863868, NAN, -92.103409, 2.9957323, NAN],
    Fn.TANH: [1, -1, NAN, 0, -0.0, 1, -1, 1, -1, 1e-40, 1, -1],
    # sigmoid flushes results below FLT_MIN to 0 (no denormals flowing into the next layer)
    Fn.SIGMOID: [1, 0, NAN, 0.5, 0.5, 1, 0, 1, 0, 0.5, 1, 2.0611537e-9],
    Fn.ERF: [1, -1, NAN, 0, -0.0, 1, -1, 1, -1, 1.1283731e-40, 1, -1],
    Fn.SOFTPLUS: [INF, 0, NAN, 0.6931472, 0.6931472, 100, 3.7835059e-44, 88.8, 0, 0.6931472, 20,
                  2.0611537e-9],
    Fn.GELU: [INF, None, NAN, 0, -0.0, 100, -0.0, 88.8, -0.0, 5e-41, 20, -0.0],
    Fn.RELU: [INF, 0, NAN, 0, -0.0, 100, 0, 88.8, 0, 1e-40, 20, 0],
    Fn.SQRT: [INF, NAN, NAN, 0, -0.0, 10, NAN, 9.4233751, NAN, 9.999973e-21, 4.472136, NAN],
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fn", sorted(SPECIAL))
def test_vmath_special_values(fn, isa):
    got = eltwise.vunary_f32(fn, SPECIAL_X, isa)
    for x, g, w in zip(SPECIAL_X, got, SPECIAL[fn]):
        if w is None:
            continue
        if np.isnan(w):
            assert np.isnan(g), f"fn {fn}({x}) = {g}, want nan"
        elif np.isinf(w) or w == 0:
            assert g == w, f"fn {fn}({x}) = {g}, want {w}"
        elif abs(w) < 1.1754944e-38:   # denormal results may be flushed to zero
            assert abs(g) < 1.1754944e-38 and (g == 0 or abs(g - w) <= 3e-45), f"fn {fn}({x}) = {g!r}"
        else:
            assert abs(g - w) <= 4e-7 * abs(w) + 3e-45, f"fn {fn}({x}) = {g!r}, want {w!r}"


@pytest.mark.parametrize("isa", ISAS[1:])
@pytest.mark.parametrize("fn", list(range(0, 27)))
def test_vmath_vector_matches_generic_on_every_tail_length(fn, isa):
    """Lengths 1..40 exercise the masked tail loads/stores of every function."""
    a, b = {Fn.LEAKY: (0.1, 0), Fn.CLIP: (-0.5, 0.7), Fn.HSIG: (0.2, 0.5), Fn.ELU: (1.0, 0),
            Fn.SELU: (1.67, 1.05), Fn.AFFINE: (2.5, -1.0), Fn.POW: (1.7, 0)}.get(fn, (0, 0))
    for n in range(1, 41):
        x = randn(n, seed=n, scale=2.0)
        if fn in (Fn.LOG, Fn.SQRT, Fn.POW):
            x = np.abs(x) + 0.1
        got = eltwise.vunary_f32(fn, x, isa, a, b)
        want = eltwise.vunary_f32(fn, x, 0, a, b)
        np.testing.assert_allclose(got, want, rtol=3e-6, atol=2e-7, err_msg=f"fn={fn} n={n}")


@pytest.mark.parametrize("isa", ISAS)
def test_vmath_exact_functions(isa):
    x = np.concatenate([randn(1001, scale=5.0), np.array([2.5, -2.5, 0.5, -0.5, 1.5, 3.0, -0.0],
                                                          F32)])
    cases = {
        Fn.NEG: -x, Fn.ABS: np.abs(x), Fn.FLOOR: np.floor(x), Fn.CEIL: np.ceil(x),
        Fn.ROUND: np.round(x), Fn.SIGN: np.sign(x), Fn.RELU: np.maximum(x, 0),
        Fn.CLIP: np.clip(x, F32(-1.5), F32(2.0)),
    }
    for fn, want in cases.items():
        a, b = (-1.5, 2.0) if fn == Fn.CLIP else (0, 0)
        np.testing.assert_array_equal(eltwise.vunary_f32(fn, x, isa, a, b), want, err_msg=f"fn={fn}")
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(eltwise.vunary_f32(Fn.RECIP, x, isa), F32(1) / x, rtol=1e-7)
    np.testing.assert_allclose(eltwise.vunary_f32(Fn.SOFTSIGN, x, isa), x / (1 + np.abs(x)), rtol=2e-7)
    np.testing.assert_array_equal(eltwise.vunary_f32(Fn.POW, x, isa, 2.0), x * x)
    np.testing.assert_array_equal(eltwise.vunary_f32(Fn.POW, np.array([-INF, 4.0, 0.25, -1], F32), isa, 0.5),
                                  np.array([NAN, 2.0, 0.5, NAN], F32))


# ---------------------------------------------------------------------------------------
# Unary ops through the compiler
# ---------------------------------------------------------------------------------------

SHAPES = [(1,), (7,), (3, 11), (2, 3, 4, 5)]
UNARY_MATH = ["Sigmoid", "Tanh", "Softplus", "Erf", "Exp", "Elu", "Selu", "Softsign"]
UNARY_EXACT = ["Relu", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Reciprocal", "Sqrt",
               "HardSigmoid", "LeakyRelu"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", UNARY_MATH)
def test_unary_math_ops(op, shape):
    x = randn(*shape, seed=len(shape), scale=3.0)
    check_op(op, {"x": x}, **MATH)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", UNARY_EXACT)
def test_unary_exact_ops(op, shape):
    x = randn(*shape, seed=1, scale=3.0)
    if op in ("Sqrt",):
        x = np.abs(x)
    # HardSigmoid: our a*x+b is one FMA rounding, the reference's two (cancels near 0)
    check_op(op, {"x": x}, rtol=1e-6, atol=1e-7 if op == "HardSigmoid" else 0)


def test_log_positive_inputs():
    check_op("Log", {"x": np.abs(randn(3, 33, scale=10.0)) + 1e-3}, **MATH)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(1,), (33,), (2, 3, 4, 5)])
def test_gelu_opset20(approximate, shape):
    x = randn(*shape, seed=3, scale=3.0)
    check_op("Gelu", {"x": x}, {"approximate": approximate}, opset=20, rtol=2e-6, atol=1e-6)


def test_hardswish_opset14():
    x = np.concatenate([randn(333, scale=4.0), np.array([-3.0, 3.0, 0.0, -6, 6], F32)])
    check_op("HardSwish", {"x": x}, opset=14, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("attrs", [{"alpha": 0.3}, {}])
def test_attr_defaults_and_values(attrs):
    x = randn(5, 7, seed=4, scale=3.0)
    check_op("LeakyRelu", {"x": x}, attrs, rtol=1e-6, atol=0)
    check_op("Elu", {"x": x}, attrs, **MATH)
    check_op("HardSigmoid", {"x": x}, dict(attrs, beta=0.4) if attrs else {}, rtol=1e-6, atol=1e-7)
    check_op("Selu", {"x": x}, dict(attrs, gamma=1.2) if attrs else {}, **MATH)


def test_unary_special_values_through_ops():
    x = SPECIAL_X.copy()
    for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Erf", "LeakyRelu"):
        check_op(op, {"x": x}, threads=(1,), rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("op", ["Sigmoid", "Relu", "Tanh"])
def test_unary_large_threaded(op, default_thresholds):
    x = randn(1000003, seed=5, scale=4.0)
    check_op(op, {"x": x}, **MATH)


@pytest.mark.parametrize("dtype", [I64, I32, I8])
@pytest.mark.parametrize("op", ["Neg", "Abs", "Sign", "Relu"])
def test_integer_unary(op, dtype):
    x = rng(6).integers(-100, 100, size=(3, 13)).astype(dtype)
    check_op(op, {"x": x}, opset=14)


def test_not():
    check_op("Not", {"x": rng(7).random((4, 9)) > 0.5})


def test_float64_unary():
    x = randn(3, 17, seed=8, dtype=F64)
    for op in ("Sigmoid", "Tanh", "Exp", "Neg", "Relu", "Abs", "Softplus", "Log"):
        check_op(op, {"x": np.abs(x) if op == "Log" else x}, rtol=1e-12, atol=1e-15)
    # the reference's Erf rounds through float32 even for doubles: compare with math.erf
    check_op("Erf", {"x": x}, expected=[_erf64(x)], rtol=1e-13, atol=0)


# ---- Clip across opsets ----------------------------------------------------------------

def test_clip_attributes_before_opset11():
    x = randn(4, 9, seed=9, scale=3.0)
    check_op("Clip", {"x": x}, {"min": -1.0, "max": 0.5}, opset=9)
    check_op("Clip", {"x": x}, {"min": -1.0}, opset=6 + 3)
    check_op("Clip", {"x": x}, {}, opset=9)


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_clip_inputs(opset):
    x = randn(4, 9, seed=10, scale=3.0)
    lo, hi = np.array(-1.0, F32), np.array(0.5, F32)
    check_op("Clip", {"x": x}, consts={"lo": lo, "hi": hi}, opset=opset, rtol=0, atol=0)
    check_op("Clip", {"x": x}, consts={"lo": lo}, opset=opset, input_order=["x", "lo"])
    check_op("Clip", {"x": x}, consts={"hi": hi}, opset=opset, input_order=["x", "", "hi"])
    check_op("Clip", {"x": x}, opset=opset)
    # bounds that arrive at run time take the Max/Min path
    check_op("Clip", {"x": x, "lo": lo, "hi": hi}, opset=opset)
    # min > max gives max everywhere (numpy's clip)
    check_op("Clip", {"x": x}, consts={"lo": hi, "hi": lo}, opset=opset)


def test_clip_integers():
    x = rng(11).integers(-50, 50, size=(3, 7)).astype(I64)
    check_op("Clip", {"x": x}, consts={"lo": np.array(-5, I64), "hi": np.array(9, I64)}, opset=13)
    x32 = x.astype(I32)
    check_op("Clip", {"x": x32}, consts={"hi": np.array(3, I32)}, opset=13, input_order=["x", "", "hi"])


# ---------------------------------------------------------------------------------------
# Binary ops with broadcasting
# ---------------------------------------------------------------------------------------

BROADCASTS = [
    ((2, 3, 4, 5), (5,)),            # row broadcast (bias over last dim)
    ((2, 1, 4, 1), (1, 3, 1, 5)),    # both sides broadcast
    ((2, 3, 4, 5), (1, 3, 1, 1)),    # per-channel over HW
    ((3, 1), (3, 7)),                # column
    ((), (3, 4)),                    # 0-d against a matrix
    ((3, 4), ()),
    ((7,), (7,)),                    # same shape
    ((1,), (1,)),
    ((), ()),
    ((33,), (1,)),
    ((2, 3, 4, 5), (2, 3, 4, 5)),
]


def _operands(sa, sb, dtype, seed=0, positive_b=False):
    r = rng(seed)
    if np.dtype(dtype).kind == "f":
        a = r.standard_normal(sa).astype(dtype) * 3
        b = r.standard_normal(sb).astype(dtype) * 3
        if positive_b:
            b = np.abs(b) + 0.5
    else:
        a = r.integers(-40, 40, size=sa).astype(dtype)
        b = r.integers(-40, 40, size=sb).astype(dtype)
        if positive_b:
            b = np.where(b == 0, 7, b).astype(dtype)   # no division by zero
    return np.asarray(a, dtype), np.asarray(b, dtype)


@pytest.mark.parametrize("sa,sb", BROADCASTS)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_f32_broadcast(op, sa, sb):
    a, b = _operands(sa, sb, F32, seed=len(sa) + 3 * len(sb), positive_b=op == "Div")
    check_op(op, {"a": a, "b": b}, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [I64, I32])
@pytest.mark.parametrize("sa,sb", BROADCASTS[:5])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_int_broadcast(op, sa, sb, dtype):
    a, b = _operands(sa, sb, dtype, seed=2, positive_b=op == "Div")
    check_op(op, {"a": a, "b": b})


def test_integer_div_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 0, 5, -1, 9223372036854775807], I64)
    b = np.array([2, 2, -2, -2, 3, -5, 3, 2], I64)
    got = check_op("Div", {"a": a, "b": b})[0]
    np.testing.assert_array_equal(got, [3, -3, -3, 3, 0, -1, 0, 4611686018427387903])


def test_integer_div_by_zero_and_overflow_do_not_trap():
    from tests.helpers import make_single_node_model, run_model
    a = np.array([5, -9223372036854775808, 3], I64)
    b = np.array([0, -1, 1], I64)
    m = make_single_node_model("Div", {"a": a, "b": b})
    got = run_model(m, {"a": a, "b": b})[0]
    np.testing.assert_array_equal(got, [0, -9223372036854775808, 3])


@pytest.mark.parametrize("dtype", [F32, F64, I64, I32])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod(fmod, dtype):
    if fmod == 0 and np.dtype(dtype).kind == "f":
        a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, 7.0, -3.0], dtype)
        b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.5, 1.5], dtype)
    else:
        a, b = _operands((4, 9), (9,), dtype, seed=3, positive_b=True)
        b = np.where(np.arange(9) % 2 == 0, b, -np.abs(b)).astype(dtype)   # both divisor signs
    check_op("Mod", {"a": a, "b": b}, {"fmod": fmod}, opset=13, rtol=1e-6, atol=0)


@pytest.mark.parametrize("sa,sb", [((2, 3, 4, 5), (5,)), ((7,), (7,)), ((3, 1), (1, 4)), ((), (6,))])
def test_pow_f32(sa, sb):
    a, _ = _operands(sa, sb, F32, seed=12)
    b = rng(13).uniform(-2, 3, size=sb).astype(F32)
    check_op("Pow", {"a": np.abs(a) + 0.1, "b": b}, **MATH)


@pytest.mark.parametrize("e", [2.0, 0.5, -1.0, 3.0, 1.0, 1.7, 0.0])
def test_pow_constant_exponent_fast_paths(e):
    a = np.abs(randn(5, 33, seed=14, scale=3.0)) + 0.01
    check_op("Pow", {"a": a}, consts={"b": np.array(e, F32)}, rtol=1e-6, atol=0)
    check_op("Pow", {"a": a}, consts={"b": np.array([e], F64)}, rtol=1e-6, atol=0)   # T1 = double
    # a runtime scalar exponent takes the same fast paths inside the binary kernel
    check_op("Pow", {"a": a, "b": np.array(e, F32)}, rtol=1e-6, atol=0)


def test_pow_half_is_sqrt_nan_for_negatives():
    a = np.array([-4.0, -np.inf, 4.0, 0.0], F32)
    check_op("Pow", {"a": a}, consts={"b": np.array(0.5, F32)}, threads=(1,))


def test_pow_integers():
    a = rng(15).integers(-6, 7, size=(4, 5)).astype(I64)
    b = rng(16).integers(0, 5, size=(5,)).astype(I64)
    check_op("Pow", {"a": a, "b": b})
    check_op("Pow", {"a": a.astype(I32), "b": b.astype(I32)})
    check_op("Pow", {"a": a}, consts={"b": np.array(2, I64)})
    check_op("Pow", {"a": a}, consts={"b": np.array(2.0, F32)})   # float exponent: via float64


@pytest.mark.parametrize("dtype", [F32, I64, I32])
@pytest.mark.parametrize("sa,sb", [((2, 3, 4, 5), (5,)), ((2, 1, 4, 1), (1, 3, 1, 5)), ((), (9,)), ((9,), (9,))])
@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_comparisons(op, sa, sb, dtype):
    r = rng(17)
    # small integers so that ties (equality) actually happen
    a = r.integers(-3, 4, size=sa).astype(dtype)
    b = r.integers(-3, 4, size=sb).astype(dtype)
    check_op(op, {"a": np.asarray(a), "b": np.asarray(b)}, opset=16)


def test_comparisons_with_nan():
    a = np.array([np.nan, 1.0, np.nan, -np.inf], F32)
    b = np.array([np.nan, np.nan, 1.0, -np.inf], F32)
    for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        check_op(op, {"a": a, "b": b}, opset=16, threads=(1,))


def test_max_min_propagate_nan():
    a = np.array([np.nan, 1.0, 2.0, -np.inf, np.inf], F32)
    b = np.array([1.0, np.nan, 3.0, 0.0, np.nan], F32)
    for op in ("Max", "Min"):
        check_op(op, {"a": a, "b": b}, threads=(1,))


@pytest.mark.parametrize("op", ["And", "Or", "Xor", "Equal"])
@pytest.mark.parametrize("sa,sb", [((4, 9), (4, 9)), ((4, 1), (1, 9)), ((), (5,))])
def test_logical(op, sa, sb):
    r = rng(18)
    a, b = np.asarray(r.random(sa) > 0.5), np.asarray(r.random(sb) > 0.5)
    check_op(op, {"a": a, "b": b}, opset=11)


@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (1,), (), (2, 3, 4, 5), (3,)])
def test_prelu(slope_shape):
    x = randn(2, 3, 4, 5, seed=19)
    slope = rng(20).uniform(0, 0.5, size=slope_shape).astype(F32)
    check_op("PRelu", {"x": x, "slope": slope}, rtol=1e-6, atol=0)
    check_op("PRelu", {"x": x}, consts={"slope": slope}, rtol=1e-6, atol=0)


def test_binary_with_constant_operand_of_other_type():
    x = randn(3, 5, seed=21)
    check_op("Add", {"x": x}, consts={"c": np.arange(5, dtype=F32)}, rtol=0, atol=0)
    check_op("Mul", {"x": x}, consts={"c": np.array(0.5, F32)}, rtol=0, atol=0)
    check_op("Sub", consts={"c": np.ones((3, 1), F32)}, inputs={"x": x}, input_order=["c", "x"])


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_binary_large_threaded(op, default_thresholds):
    a = randn(1000003, seed=22)
    check_op(op, {"a": a, "b": randn(1000003, seed=23)}, rtol=1e-6, atol=0)
    big = randn(16, 64, 1001, seed=24)
    check_op(op, {"a": big, "b": randn(64, 1, seed=25)}, rtol=1e-6, atol=0)   # per-channel
    check_op(op, {"a": big, "b": randn(1001, seed=26)}, rtol=1e-6, atol=0)    # bias row
    check_op(op, {"a": randn(200001, 5, seed=27), "b": randn(5, seed=28)}, rtol=1e-6, atol=0)


@pytest.mark.parametrize("opset", [9, 13, 21])
def test_binary_opsets(opset):
    a, b = _operands((2, 3, 4, 5), (1, 3, 1, 1), F32, seed=29)
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        check_op(op, {"a": a, "b": b}, opset=opset, threads=(2,))


# ---------------------------------------------------------------------------------------
# Variadic, Where, Cast
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("shapes", [[(3, 4)], [(3, 4), (3, 4)], [(2, 1, 4), (3, 1), (4,)],
                                    [(5,), (1,), (), (5,)]])
def test_variadic(op, shapes):
    ins = {f"x{k}": randn(*s, seed=30 + k) for k, s in enumerate(shapes)}
    expected = None
    if op == "Mean":   # the reference's Mean accumulates in place: wrong when input 0 broadcasts
        arrs = list(ins.values())
        acc = arrs[0]
        for a in arrs[1:]:
            acc = acc + a
        expected = [(acc / F32(len(arrs))).astype(F32)]
    check_op(op, ins, rtol=1e-6, atol=0, expected=expected)


def test_variadic_integers():
    ins = {f"x{k}": rng(k).integers(-9, 9, size=(3, 5)).astype(I64) for k in range(3)}
    for op in ("Sum", "Max", "Min"):
        check_op(op, ins)


@pytest.mark.parametrize("dtype", [F32, I64, BOOL, U8, F64, I32])
@pytest.mark.parametrize("sc,sx,sy", [((4, 5), (4, 5), (4, 5)), ((4, 1), (1, 5), ()),
                                      ((2, 3, 4, 5), (5,), (3, 1, 1)), ((), (7,), (7,)),
                                      ((33,), (), ())])
def test_where(dtype, sc, sx, sy):
    r = rng(40)
    cond = np.asarray(r.random(sc) > 0.5)
    x = np.asarray((r.standard_normal(sx) * 10).astype(dtype))
    y = np.asarray((r.standard_normal(sy) * 10).astype(dtype))
    check_op("Where", {"c": cond, "x": x, "y": y}, opset=16)


def test_where_large_threaded(default_thresholds):
    cond = rng(41).random((64, 1, 4001)) > 0.3
    check_op("Where", {"c": cond, "x": randn(64, 7, 1, seed=42), "y": randn(4001, seed=43)})


CAST_TYPES = [F32, F64, I64, I32, BOOL, U8, I8]
_ONNX_TYPE = {F32: 1, U8: 2, I8: 3, I32: 6, I64: 7, BOOL: 9, F64: 11}


def _cast_source(src, dst):
    r = rng(44)
    vals = r.uniform(-100, 100, size=(3, 37))
    if np.dtype(dst).kind == "u" or np.dtype(src).kind == "u":
        vals = np.abs(vals)
    if np.dtype(src).kind == "f":
        vals[0, :6] = [2.7, -2.7, 0.5, -0.5, 0.0, 99.9]
        if np.dtype(dst) == np.bool_:
            vals[1, :2] = [np.nan, -0.0]
    if np.dtype(src) == np.bool_:
        return vals > 20
    return vals.astype(src)


@pytest.mark.parametrize("dst", CAST_TYPES)
@pytest.mark.parametrize("src", CAST_TYPES)
def test_cast(src, dst):
    x = _cast_source(src, dst)
    check_op("Cast", {"x": x}, {"to": _ONNX_TYPE[dst]}, threads=(1,))


def test_cast_large_threaded_and_castlike(default_thresholds):
    x = randn(1000003, seed=45, scale=1000.0)
    check_op("Cast", {"x": x}, {"to": 7})
    check_op("CastLike", {"x": x}, consts={"like": np.zeros(1, I32)}, opset=15)


def test_unsupported_types_raise_cleanly():
    from deepsparse_lite.ops.base import UnsupportedModelError
    from tests.helpers import make_single_node_model, run_model
    x = rng(46).integers(0, 5, size=(4,)).astype(I64)
    m = make_single_node_model("Sigmoid", {"x": x})
    with pytest.raises(UnsupportedModelError):
        run_model(m, {"x": x})


def test_kernel_rejects_malformed_steps():
    """A corrupted plan step fails with a clear error instead of computing garbage."""
    from deepsparse_lite import compiler
    from tests.helpers import make_single_node_model
    x = randn(4, 5)
    from deepsparse_lite import step_params as sp
    cases = [("Relu", {"x": x}, "fn", 99),                    # unknown unary function
             ("Add", {"a": x, "b": randn(5)}, "fn", 77),       # unknown binary function
             ("Add", {"a": x, "b": randn(5)}, "ndim", 9),      # ndim out of range
             ("Add", {"a": x, "b": randn(5)}, "n", 21)]        # n inconsistent with the shape
    for op, feeds, field, value in cases:
        plan = compiler.compile_onnx(make_single_node_model(op, feeds))
        sp.view(plan.steps[0], sp.ELTWISE)[field] = value
        with pytest.raises(compiler.PlanExecutionError, match="invalid parameter"):
            compiler.execute(plan, list(feeds.values()))


@pytest.mark.parametrize("op, attrs", [("IsNaN", {}), ("IsInf", {}), ("IsInf", {"detect_negative": 0}),
                                       ("IsInf", {"detect_positive": 0}),
                                       ("IsInf", {"detect_positive": 0, "detect_negative": 0})])
def test_isnan_isinf(op, attrs):
    x = np.array([[0.0, np.nan, np.inf, -np.inf, 1.5, -0.0, 3e38, np.nan]] * 3, dtype=np.float32)
    check_op(op, {"x": x}, attrs, opset=20 if op == "IsInf" else 13)
