"""Element types beyond float32 / int64: the 16-bit and unsigned integers, float16,
bfloat16 and the float8 formats.

Oracles: numpy for float16 and the integers, ml_dtypes (what onnx.numpy_helper and
onnx.reference use) for bfloat16 and float8, onnx.numpy_helper.saturate_cast for ONNX Cast's
float8 saturation. Conversions are compared bit for bit (NaN payloads included where the
oracle defines them), first on the Cast kernel directly (every float16 value, millions of
float32 / float64 bit patterns, every float8 code) in both float16 forms (portable C and
F16C), then through the compiler for every (plan level, CPU cap) pair. float16 / bfloat16
arithmetic is computed in float32 and rounded once per op, which is exactly numpy's float16
and ml_dtypes' bfloat16 arithmetic: those ops must match the reference to the last bit.
"""
import warnings

import numpy as np
import pytest

from deepsparse_lite import kernels
from deepsparse_lite.kernels import eltwise
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import check_op, make_single_node_model, run_model

ml_dtypes = pytest.importorskip("ml_dtypes")
from onnx import TensorProto  # noqa: E402
from onnx.numpy_helper import saturate_cast  # noqa: E402

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
BF16 = np.dtype(ml_dtypes.bfloat16)
F8 = [np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                            ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz)]
SINTS = [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64)]
UINTS = [np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)]
NEW_INTS = [np.dtype(t) for t in (np.int16, np.uint16, np.uint32, np.uint64)]
ONNX_CODE = {F16: TensorProto.FLOAT16, BF16: TensorProto.BFLOAT16, F32: TensorProto.FLOAT,
             F64: TensorProto.DOUBLE, np.dtype(np.bool_): TensorProto.BOOL,
             **{d: getattr(TensorProto, d.name.upper()) for d in SINTS + UINTS},
             F8[0]: TensorProto.FLOAT8E4M3FN, F8[1]: TensorProto.FLOAT8E4M3FNUZ,
             F8[2]: TensorProto.FLOAT8E5M2, F8[3]: TensorProto.FLOAT8E5M2FNUZ}
FORMS = [0, 1] if kernels.top_isa_level() >= 1 else [0]   # float16 conversion forms
EXACT = dict(rtol=0, atol=0)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the reference on inf / NaN


def rng(seed=0):
    return np.random.default_rng(seed)


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits(got, want, what=""):
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    bad = np.nonzero(bits(got).ravel() != bits(want).ravel())[0]
    assert bad.size == 0, (f"{what}: {bad.size} of {got.size} differ, first at {bad[0]}: got "
                           f"{bits(got).ravel()[bad[0]]:#x}, want {bits(want).ravel()[bad[0]]:#x}")


def astype(x, dt):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return x.astype(dt)


def all_codes(dt):
    n = 1 << (8 * np.dtype(dt).itemsize)
    return np.arange(n, dtype=np.uint32).astype(bits(np.zeros(1, dt)).dtype).view(dt)


def f32_patterns(n=1_000_000, seed=0):
    """random float32 bit patterns, every float16 value widened, round-to-even ties of
    every narrow format, and the edges (overflow thresholds, subnormals, specials)"""
    r = rng(seed)
    rand = r.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32)
    ties = []
    for low in (13, 16, 20, 21):   # bits below float16 / bfloat16 / float8 mantissas
        base = r.integers(0x30000000, 0x48000000, 20000, dtype=np.uint64).astype(np.uint32)
        t = (base & ~np.uint32((1 << low) - 1)) | np.uint32(1 << (low - 1))
        ties += [t, t + 1, t - 1]
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, 65536, 6e-8, 3e-8,
                      2.98e-8, 5.96e-8, 448, 464, 465, 480, 240, 248, 57344, 61440, 61441, 3.4e38,
                      1e-45, 1.17549435e-38, -1.17549421e-38], F32)
    specials = np.array([0x7f800001, 0x7fa00001, 0xffc00000, 0x7fffffff, 0xff800001], np.uint32)
    return np.concatenate([rand.view(F32), all_codes(F16).astype(F32), np.concatenate(ties).view(F32),
                           edges, specials.view(F32)])


def f64_patterns(seed=1):
    r = rng(seed)
    f = astype(f32_patterns(200_000, seed), F64)
    return np.concatenate([r.integers(0, 2 ** 64, 300_000, dtype=np.uint64).view(F64),
                           f * (1 + 2.0 ** -40), f * (1 - 2.0 ** -40), f])


# ---------------------------------------------------------------------------------------
# The Cast kernel, directly (kernels/eltwise.cast)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_float16_to_float32_and_float64_every_value(form):
    h = all_codes(F16)
    assert_bits(eltwise.cast(h, F32, form=form), h.astype(F32), "f16 -> f32")
    assert_bits(eltwise.cast(h, F64, form=form), h.astype(F64), "f16 -> f64")


@pytest.mark.parametrize("form", FORMS)
def test_float32_to_float16_matches_numpy(form):
    x = f32_patterns()
    assert_bits(eltwise.cast(x, F16, form=form), astype(x, F16), "f32 -> f16")
    for n in range(1, 20):   # the F16C loops' tails, with NaNs in the vector body
        assert_bits(eltwise.cast(x[-n - 20:], F16, form=form), astype(x[-n - 20:], F16), f"tail {n}")


def test_float16_forms_are_bit_identical_on_nan_payloads():
    """F16C quiets signalling NaNs; the kernel redoes NaN lanes so both forms agree."""
    if 1 not in FORMS:
        pytest.skip("no F16C on this CPU")
    snan = np.array([0x7c01, 0xfc01, 0x7d55, 0x7e00, 0x7fff] * 4, np.uint16).view(F16)
    assert_bits(eltwise.cast(snan, F32, form=1), eltwise.cast(snan, F32, form=0))
    fnan = np.array([0x7f800001, 0x7fa00001, 0xff800100, 0x7fc00000] * 4, np.uint32).view(F32)
    assert_bits(eltwise.cast(fnan, F16, form=1), eltwise.cast(fnan, F16, form=0))
    assert_bits(eltwise.cast(fnan, F16, form=1), astype(fnan, F16))


def test_float64_and_integers_round_once_to_float16_and_bfloat16():
    d = f64_patterns()
    assert_bits(eltwise.cast(d, F16), astype(d, F16), "f64 -> f16")
    assert_bits(eltwise.cast(d, BF16), astype(d, BF16), "f64 -> bf16")
    r = rng(2)
    for t in SINTS + UINTS:
        ii = np.iinfo(t)
        v = np.concatenate([r.integers(ii.min, ii.max, 50000, dtype=t, endpoint=True),
                            np.arange(max(ii.min, -600), min(ii.max, 70000), dtype=t),
                            np.array([ii.min, ii.max], t)])
        assert_bits(eltwise.cast(v, F16), astype(v, F16), f"{t} -> f16")
        assert_bits(eltwise.cast(v, BF16), astype(v, BF16), f"{t} -> bf16")
    # 2^62 + 2^54 + 1 is above a bfloat16 tie; through double it would be the tie itself
    big = np.array([2 ** 62 + 2 ** 54 + 1, -(2 ** 62 + 2 ** 54 + 1)], np.int64)
    assert_bits(eltwise.cast(big, BF16), np.array([0x5e81, 0xde81], np.uint16).view(BF16))


def test_bfloat16_conversions():
    x = f32_patterns()
    assert_bits(eltwise.cast(x, BF16), astype(x, BF16), "f32 -> bf16 (round to nearest even)")
    b = all_codes(BF16)
    assert_bits(eltwise.cast(b, F32), b.astype(F32), "bf16 -> f32")
    assert_bits(eltwise.cast(b, F16), astype(b, F16), "bf16 -> f16")
    h = all_codes(F16)
    assert_bits(eltwise.cast(h, BF16), astype(h, BF16), "f16 -> bf16")


@pytest.mark.parametrize("f8", F8, ids=lambda d: d.name)
def test_float8_conversions(f8):
    codes = all_codes(f8)
    for dst in (F32, F16, BF16, *F8):
        if dst != f8:
            assert_bits(eltwise.cast(codes, dst, saturate=False), astype(codes, dst), f"{f8} -> {dst}")
        if dst in F8 and dst != f8:
            assert_bits(eltwise.cast(codes, dst, saturate=True), saturate_cast(codes, dst),
                        f"{f8} -> {dst} sat")
    got = eltwise.cast(codes, F64)
    want = codes.astype(F64)
    np.testing.assert_array_equal(got, want)
    r = rng(3)
    sources = {"f32": f32_patterns(300_000), "f64": f64_patterns(), "f16": all_codes(F16),
               "bf16": all_codes(BF16), "i64": r.integers(-70000, 70000, 20000, dtype=np.int64),
               "u8": np.arange(256, dtype=np.uint8)}
    for name, src in sources.items():
        assert_bits(eltwise.cast(src, f8, saturate=False), astype(src, f8), f"{name} -> {f8}")
        assert_bits(eltwise.cast(src, f8, saturate=True), saturate_cast(src, f8), f"{name} -> {f8} sat")


def test_float8_special_values():
    """ONNX Cast's tables: saturate maps +-inf and overflow to +-max; without it overflow is
    NaN (E4M3FN, FNUZ) or inf (E5M2); FNUZ formats have no -0."""
    x = np.array([np.inf, -np.inf, 1e6, -1e6, np.nan, -0.0, -1e-30, 465, 464], F32)
    e4m3fn, e4m3fnuz, e5m2, e5m2fnuz = F8
    cases = {
        (e4m3fn, True): [0x7e, 0xfe, 0x7e, 0xfe, 0x7f, 0x80, 0x80, 0x7e, 0x7e],
        (e4m3fn, False): [0x7f, 0xff, 0x7f, 0xff, 0x7f, 0x80, 0x80, 0x7f, 0x7e],
        (e4m3fnuz, True): [0x7f, 0xff, 0x7f, 0xff, 0x80, 0x00, 0x00, 0x7f, 0x7f],
        (e4m3fnuz, False): [0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x80, 0x80],
        (e5m2, True): [0x7b, 0xfb, 0x7b, 0xfb, 0x7e, 0x80, 0x80, 0x5f, 0x5f],
        (e5m2, False): [0x7c, 0xfc, 0x7c, 0xfc, 0x7e, 0x80, 0x80, 0x5f, 0x5f],
        (e5m2fnuz, True): [0x7f, 0xff, 0x7f, 0xff, 0x80, 0x00, 0x00, 0x63, 0x63],
        (e5m2fnuz, False): [0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x63, 0x63],
    }
    for (dt, sat), want in cases.items():
        got = bits(eltwise.cast(x, dt, saturate=sat))
        assert got.tolist() == want, f"{dt} saturate={sat}: {[hex(v) for v in got]}"


WIDE = [F32, F64, np.dtype(np.bool_)] + SINTS + UINTS


def _in_range_values(src, dst, n=3000, seed=4):
    """values of type src that every destination represents (the out-of-range results of
    float -> integer casts are undefined in ONNX; test_float_to_int_out_of_range pins ours)"""
    r = rng(seed)
    src, dst = np.dtype(src), np.dtype(dst)
    if src == np.bool_:
        return r.random(n) > 0.5
    lo, hi = -100.0, 100.0
    for t in (src, dst):
        if t.kind in "iu":
            ii = np.iinfo(t)
            lo, hi = max(lo, float(ii.min)), min(hi, float(ii.max))
    v = r.uniform(lo, hi, n)
    v[:6] = [0, -0.0, 1, lo, hi, 0.5 * (lo + hi)]
    if src.kind in "iu":
        return np.clip(np.round(v), lo, hi).astype(src)
    return astype(v, src)


@pytest.mark.parametrize("src", WIDE + [F16, BF16] + F8, ids=lambda d: d.name)
def test_cast_matrix_against_numpy(src):
    for dst in WIDE + [F16, BF16]:
        x = _in_range_values(src, dst)
        got = eltwise.cast(x, dst)
        want = astype(x, dst)
        if dst in (F16, BF16, F32, F64):
            assert_bits(np.where(np.isnan(want.astype(F32)), want, got), want, f"{src} -> {dst}")
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{src} -> {dst}")


def test_float_to_int_out_of_range():
    """Our (x86 / numpy-on-x86) results where ONNX leaves the result undefined: through
    int32 for 8/16-bit targets, GCC's unsigned sequences for uint32 / uint64; bfloat16 and
    float8 sources follow ml_dtypes (0 outside the target's range)."""
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 70000.5, -70000.5, 5e9, -5e9, 3e19], F64)
    want = {np.int16: [0, 0, 0, -1, 4464, -4464, 0, 0, 0],
            np.uint16: [0, 0, 0, 65535, 4464, 61072, 0, 0, 0],
            np.uint32: [2 ** 31, 0, 2 ** 31, 2 ** 32 - 1, 70000, 2 ** 32 - 70000, 0, 2 ** 31, 0],
            np.uint64: [2 ** 63, 0, 2 ** 63, 2 ** 64 - 1, 70000, 2 ** 64 - 70000, 5000000000,
                        2 ** 64 - 5000000000, 0]}
    for t, w in want.items():
        for src in (F64, F32):   # every value above is exact in float32 too
            got = eltwise.cast(x.astype(src), t)
            assert got.tolist() == w, f"{src} -> {t}: {got.tolist()}"
    b = np.array([np.nan, np.inf, -1.5, 127.5, 128, 300, -129], F32).astype(BF16)
    assert eltwise.cast(b, np.int8).tolist() == [0, 0, -1, 127, 0, 0, 0]
    assert eltwise.cast(b, np.uint8).tolist() == [0, 0, 0, 127, 128, 0, 0]


def test_cast_kernel_refuses_unknown_pairs():
    with pytest.raises(NotImplementedError):
        eltwise.cast(np.zeros(3, np.complex64), F32)


# ---------------------------------------------------------------------------------------
# Cast through the compiler (every plan level x CPU cap: both float16 forms)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dst", [F16, BF16] + F8 + NEW_INTS, ids=lambda d: d.name)
def test_cast_op_from_float32(dst):
    x = f32_patterns(3000)[-3000:].reshape(30, 100)
    if dst.kind in "iu":
        x = _in_range_values(F32, dst).reshape(30, 100)
    opset = 19 if dst in F8 else 17
    want = saturate_cast(x, dst) if dst in F8 else astype(x, dst)
    check_op("Cast", {"x": x}, {"to": ONNX_CODE[dst]}, opset=opset, expected=[want], **EXACT)
    if dst in F8:
        check_op("Cast", {"x": x}, {"to": ONNX_CODE[dst], "saturate": 0}, opset=19,
                 expected=[astype(x, dst)], threads=(1,), **EXACT)


@pytest.mark.parametrize("src", [F16, BF16] + F8 + NEW_INTS, ids=lambda d: d.name)
def test_cast_op_to_float32_and_back(src):
    x = _in_range_values(F32, src, n=999).astype(src).reshape(9, 111)
    check_op("Cast", {"x": x}, {"to": TensorProto.FLOAT}, opset=19, **EXACT)
    check_op("CastLike", {"x": x}, consts={"like": np.zeros(1, F16)}, opset=19, threads=(1,), **EXACT)
    check_op("Cast", {"x": x}, {"to": ONNX_CODE[src]}, opset=19, threads=(1,), **EXACT)   # identity


def test_cast_float16_large_threaded():
    old = eltwise.set_min_work(0)
    try:
        x = (rng(5).standard_normal(200_003) * 1000).astype(F32)
        check_op("Cast", {"x": x}, {"to": TensorProto.FLOAT16}, **EXACT)
        check_op("Cast", {"x": x.astype(F16)}, {"to": TensorProto.FLOAT}, **EXACT)
    finally:
        eltwise.set_min_work(old)


def test_cast_to_string_is_refused_cleanly():
    x = np.zeros(3, F32)
    m = make_single_node_model("Cast", {"x": x}, {"to": TensorProto.STRING})
    with pytest.raises(UnsupportedModelError, match="Cast"):
        run_model(m, {"x": x})


# ---------------------------------------------------------------------------------------
# Integer ops on every width
# ---------------------------------------------------------------------------------------

def _ints(dt, shape, seed, lo=None, hi=None, nonzero=False):
    ii = np.iinfo(dt)
    lo = ii.min if lo is None else lo
    hi = ii.max if hi is None else hi
    v = rng(seed).integers(lo, hi, size=shape, dtype=dt, endpoint=True)
    if nonzero:
        v = np.where(v == 0, np.array(3, dt), v)
    return np.asarray(v, dt)


@pytest.mark.parametrize("dt", NEW_INTS, ids=lambda d: d.name)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Mod"])
def test_integer_binary(op, dt):
    a = _ints(dt, (3, 4, 5), 10)
    b = _ints(dt, (4, 1), 11, nonzero=op in ("Div", "Mod"))
    attrs = {"fmod": 0} if op == "Mod" else None
    check_op(op, {"a": a, "b": b}, attrs, opset=13, threads=(1,))
    if op == "Mod" and dt.kind == "i":
        check_op(op, {"a": a, "b": b}, {"fmod": 1}, opset=13, threads=(1,))


def test_integer_div_edges():
    for dt in NEW_INTS + [np.dtype(np.uint8)]:
        ii = np.iinfo(dt)
        a = np.array([ii.max, ii.min, 7, ii.max, 0, 5], dt)
        b = np.array([ii.max, 1, 2, 1, 3, 0 if dt.kind == "u" else -1], dt)
        if dt.kind == "u":
            want = [1, 0, 3, ii.max, 0, 0]   # x / 0 gives 0 (the reference would raise)
        else:
            want = [1, ii.min, 3, ii.max, 0, -5]
        got = run_model(make_single_node_model("Div", {"a": a, "b": b}), {"a": a, "b": b})[0]
        assert got.tolist() == want, f"{dt}: {got.tolist()}"


@pytest.mark.parametrize("dt", NEW_INTS, ids=lambda d: d.name)
def test_integer_compare_pow_and_unary(dt):
    a = _ints(dt, (4, 6), 12, lo=0 if dt.kind == "u" else -4, hi=4)
    b = _ints(dt, (6,), 13, lo=0, hi=4)
    for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        check_op(op, {"a": a, "b": b}, opset=16, threads=(1,))
    check_op("Pow", {"a": a, "b": b}, opset=15, threads=(1,))
    x = _ints(dt, (3, 7), 14)
    ops = ("Abs", "Sign") if dt.kind == "u" else ("Abs", "Sign", "Neg", "Relu")
    for op in ops:
        check_op(op, {"x": x}, opset=14, threads=(1,))
    check_op("Clip", {"x": x}, consts={"lo": np.array(3, dt), "hi": np.array(100, dt)}, opset=13,
             threads=(1,))
    check_op("Sum", {"x0": x, "x1": x[:1]}, threads=(1,))


def test_uint64_wraps_and_pow_above_int64():
    a = np.array([2 ** 64 - 1, 2 ** 63, 3, 2], np.uint64)
    b = np.array([2, 2, 40, 64], np.uint64)
    for op in ("Add", "Mul", "Sub"):
        check_op(op, {"a": a, "b": b}, threads=(1,))
    got = run_model(make_single_node_model("Pow", {"a": a, "b": b}, opset=15), {"a": a, "b": b})[0]
    want = [pow(int(x), int(y), 2 ** 64) for x, y in zip(a, b)]
    assert got.tolist() == want


@pytest.mark.parametrize("dt", SINTS + UINTS, ids=lambda d: d.name)
def test_bitwise_ops(dt):
    a = _ints(dt, (2, 3, 5), 15)
    b = _ints(dt, (5,), 16)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        check_op(op, {"a": a, "b": b}, opset=18, threads=(1,))
    check_op("BitwiseNot", {"x": a}, opset=18, threads=(1,))


@pytest.mark.parametrize("dt", UINTS, ids=lambda d: d.name)
def test_bitshift(dt):
    bits_ = dt.itemsize * 8
    a = _ints(dt, (3, 17), 17)
    s = np.arange(17, dtype=dt) % (bits_ + 3)   # shifts of the width and beyond give 0
    for direction in ("LEFT", "RIGHT"):
        check_op("BitShift", {"a": a, "s": s}, {"direction": direction}, opset=11)
        check_op("BitShift", {"a": a}, {"direction": direction}, consts={"s": np.array(3, dt)},
                 opset=11, threads=(1,))


def test_bitshift_signed_is_refused():
    a = np.arange(4, dtype=np.int32)
    m = make_single_node_model("BitShift", {"a": a, "b": a}, {"direction": "LEFT"}, opset=11)
    with pytest.raises(UnsupportedModelError, match="BitShift node .* int32 .*unsigned"):
        run_model(m, {"a": a, "b": a})


# ---------------------------------------------------------------------------------------
# float16 / bfloat16 arithmetic: float32 compute, one rounding per op
# ---------------------------------------------------------------------------------------

def _floats(dt, shape, seed, scale=10.0, positive=False):
    v = rng(seed).standard_normal(shape) * scale
    if positive:
        v = np.abs(v) + 0.25
    return np.asarray(astype(v, dt))


NARROW = [F16, BF16]


@pytest.mark.parametrize("dt", NARROW, ids=lambda d: d.name)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@pytest.mark.parametrize("sa,sb", [((3, 4, 37), (37,)), ((3, 1, 37), (1, 4, 1)), ((), (300,)),
                                   ((300,), ())])
def test_narrow_float_binary(op, sa, sb, dt):
    a = _floats(dt, sa, 20, positive=op == "Pow", scale=2.0 if op == "Pow" else 10.0)
    b = _floats(dt, sb, 21, scale=2.0 if op == "Pow" else 10.0)
    check_op(op, {"a": a, "b": b}, threads=(1, 2), **EXACT)


def test_narrow_float_arithmetic_is_numpys_over_many_values():
    """float16(float32(a) op float32(b)) is numpy's float16 result (and ml_dtypes' for
    bfloat16): double rounding is innocuous for +-*/ since float32 has > 2p + 2 bits."""
    r = rng(22)
    for dt in NARROW:   # random bit patterns: every exponent, subnormals, inf, NaN
        x = r.integers(0, 2 ** 16, 200_000, dtype=np.uint64).astype(np.uint16).view(dt)
        y = r.integers(0, 2 ** 16, 200_000, dtype=np.uint64).astype(np.uint16).view(dt)
        for op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
            check_op(op, {"a": x, "b": y}, threads=(2,), **EXACT)
        check_op("Mod", {"a": x, "b": y}, {"fmod": 1}, opset=13, threads=(1,), **EXACT)
    x = r.integers(0, 2 ** 16, 100_000, dtype=np.uint64).astype(np.uint16).view(F16)
    y = r.integers(0, 2 ** 16, 100_000, dtype=np.uint64).astype(np.uint16).view(F16)
    check_op("Mod", {"a": x, "b": y}, {"fmod": 0}, opset=13, threads=(1,), **EXACT)


@pytest.mark.parametrize("dt", NARROW, ids=lambda d: d.name)
def test_narrow_float_compare_where_and_variadic(dt):
    a = astype(rng(23).integers(-3, 4, (4, 9)), dt)
    b = astype(rng(24).integers(-3, 4, (9,)), dt)
    a[0, :3] = [np.nan, np.inf, -np.inf]
    for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        check_op(op, {"a": a, "b": b}, opset=16, threads=(1,))
    cond = rng(25).random((4, 1)) > 0.5
    check_op("Where", {"c": cond, "x": a, "y": b}, opset=16, threads=(1,))
    for op in ("Max", "Min", "Sum", "Mean"):
        check_op(op, {"x0": a, "x1": b, "x2": a[:1]}, threads=(1,), **EXACT)
    check_op("PRelu", {"x": a}, consts={"slope": astype(np.array([0.25]), dt)}, threads=(1,), **EXACT)
    check_op("IsNaN", {"x": a}, opset=13, threads=(1,))
    check_op("IsInf", {"x": a}, opset=20, threads=(1,))


def test_float16_mod_mixed_signs_and_specials():
    a = np.array([5.5, -5.5, 5.5, -5.5, 0, 7, -3, 1e4, -65504, 6e-8], F16)
    b = np.array([2, 2, -2, -2, 3, 3.5, 1.5, 3e-3, 7, -6e-8], F16)
    check_op("Mod", {"a": a, "b": b}, {"fmod": 1}, opset=13, threads=(1,), **EXACT)
    check_op("Mod", {"a": a, "b": b}, {"fmod": 0}, opset=13, threads=(1,), **EXACT)


EXACT_UNARY = ["Relu", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Sqrt", "Reciprocal"]
MATH_UNARY = ["Sigmoid", "Tanh", "Exp", "Log", "Erf", "Softplus", "Elu"]


@pytest.mark.parametrize("dt", NARROW, ids=lambda d: d.name)
def test_narrow_float_unary(dt):
    x = _floats(dt, (5, 301), 26, scale=3.0)
    for op in EXACT_UNARY:   # one correctly rounded float32 op, then one rounding: numpy's
        xin = np.abs(x) if op in ("Sqrt",) else x
        check_op(op, {"x": xin}, threads=(1,), **EXACT)
    check_op("Clip", {"x": x}, consts={"lo": astype(np.array(-1.5), dt), "hi": astype(np.array(2.0), dt)},
             opset=13, threads=(1,), **EXACT)
    # vector math is within a few float32 ulps: after rounding to 11 (8) bits at most one
    # ulp of the narrow type from the float64 result (onnx.reference computes some of these
    # in float16 arithmetic, several roundings: it is not the oracle here)
    ulp = 2.0 ** -10 if dt == F16 else 2.0 ** -7
    import math
    ref64 = {"Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh, "Exp": np.exp, "Log": np.log,
             "Erf": np.vectorize(math.erf), "Elu": lambda v: np.where(v > 0, v, np.expm1(v)),
             "Softplus": lambda v: np.maximum(v, 0) + np.log1p(np.exp(-np.abs(v)))}
    for op in MATH_UNARY:
        xin = np.abs(x) + astype(np.array(0.1), dt) if op == "Log" else x
        want = astype(ref64[op](xin.astype(F64)), dt)
        check_op(op, {"x": xin}, threads=(1,), expected=[want], rtol=ulp, atol=1e-7)


def test_narrow_float_special_values_through_unary_and_binary():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 65504, -65504, 6e-8, 1e-5], F16)
    for op in ("Relu", "Neg", "Abs", "Sign", "Floor"):
        check_op(op, {"x": x}, threads=(1,), **EXACT)
    y = np.array([1, np.nan, np.inf, -0.0, 0.0, 65504, 1, 6e-8, -1e-5], F16)
    for op in ("Add", "Mul", "Max", "Min", "Div"):
        check_op(op, {"a": x, "b": y}, threads=(1,), **EXACT)


def test_mixed_pow_types_follow_numpy_promotion():
    """Pow computes in np.result_type(base, exponent), then casts to the base type."""
    a = _floats(F16, (4, 7), 27, positive=True, scale=2.0)
    check_op("Pow", {"a": a, "b": _floats(F32, (7,), 28, scale=2.0)}, opset=15, threads=(1,), **EXACT)
    check_op("Pow", {"a": a, "b": np.array([2, 3, 0, 1, 2, 3, 4], np.int64)}, opset=15, threads=(1,),
             **EXACT)
    x = _floats(F32, (4, 7), 29, positive=True)
    check_op("Pow", {"a": x, "b": np.array([2, 3, 0, 1, 2, 3, 4], np.uint32)}, opset=15,
             threads=(1,), rtol=1e-7, atol=0)
    u = _ints(np.dtype(np.uint64), (7,), 30, lo=0, hi=5)
    check_op("Pow", {"a": u, "b": np.array([1, 2, 0, 3, 1, 2, 1], np.int64)}, opset=15, threads=(1,))


# ---------------------------------------------------------------------------------------
# Data movement: only the element size matters
# ---------------------------------------------------------------------------------------

def _any(dt, shape, seed):
    if dt.kind in "iu":
        return _ints(dt, shape, seed)
    return _floats(dt, shape, seed)


@pytest.mark.parametrize("dt", [F16, BF16, F8[0], F8[2]] + NEW_INTS, ids=lambda d: d.name)
def test_data_movement(dt):
    x = _any(dt, (2, 3, 5), 31)
    y = _any(dt, (2, 1, 5), 32)
    check_op("Transpose", {"x": x}, {"perm": [2, 0, 1]}, threads=(1,), **EXACT)
    check_op("Concat", {"x": x, "y": y}, {"axis": 1}, threads=(1,), **EXACT)
    check_op("Identity", {"x": x}, threads=(1,), **EXACT)
    check_op("Reshape", {"x": x}, consts={"s": np.array([6, 5], np.int64)}, threads=(1,), **EXACT)
    check_op("Gather", {"x": x}, {"axis": 2}, consts={"i": np.array([4, 0, 2], np.int64)},
             threads=(1,), **EXACT)
    check_op("Slice", {"x": x}, consts={"st": np.array([1], np.int64), "en": np.array([3], np.int64),
                                         "ax": np.array([1], np.int64)}, threads=(1,), **EXACT)
    check_op("Expand", {"y": y}, consts={"s": np.array([2, 3, 5], np.int64)}, threads=(1,), **EXACT)
    check_op("Tile", {"y": y}, consts={"r": np.array([1, 2, 3], np.int64)}, threads=(1,), **EXACT)
    pad_value = np.array(7 if dt.kind in "iu" else 2.5, dt)   # FILL of a 1/2/8-byte pattern
    check_op("Pad", {"x": x}, consts={"p": np.array([0, 1, 0, 0, 0, 2], np.int64), "v": pad_value},
             opset=18, threads=(1,), **EXACT)
    check_op("Pad", {"x": x}, {"mode": "reflect"}, consts={"p": np.array([0, 1, 2, 0, 1, 2], np.int64)},
             opset=18, threads=(1,), **EXACT)
    cond = rng(33).random((3, 1)) > 0.5
    check_op("Where", {"c": cond, "x": x, "y": y}, opset=16, threads=(1,), **EXACT)


# ---------------------------------------------------------------------------------------
# What is not there is refused cleanly, naming the node and the element type
# ---------------------------------------------------------------------------------------

REFUSED = [
    ("Sigmoid", {"x": np.zeros((2, 3), np.uint32)}, {}, 17, "uint32"),
    ("Neg", {"x": np.zeros((2, 3), F8[0])}, {}, 19, "float8_e4m3fn"),
    ("Add", {"a": np.zeros(3, F8[2]), "b": np.zeros(3, F8[2])}, {}, 19, "float8_e5m2"),
    ("MatMul", {"a": np.zeros((2, 3), F16), "b": np.zeros((3, 2), F16)}, {}, 17, "float16"),
    ("Softmax", {"x": np.zeros((2, 3), F16)}, {}, 17, "float16"),
    ("ReduceSum", {"x": np.zeros((2, 3), np.uint16)}, {}, 17, "uint16"),
    ("BitwiseAnd", {"a": np.zeros(3, F16), "b": np.zeros(3, F16)}, {}, 18, "float16"),
    ("BitwiseNot", {"x": np.zeros(3, BF16)}, {}, 18, "bfloat16"),
    ("IsNaN", {"x": np.zeros(3, np.uint16)}, {}, 13, "uint16"),
    ("Relu", {"x": np.zeros(3, np.bool_)}, {}, 14, "bool"),
    ("Pow", {"a": np.zeros(3, F8[2]), "b": np.zeros(3, F32)}, {}, 19, "float8_e5m2"),
]


@pytest.mark.parametrize("op, feeds, attrs, opset, dtname", REFUSED, ids=[r[0] + "-" + r[4] for r in REFUSED])
def test_unsupported_element_types_are_refused(op, feeds, attrs, opset, dtname):
    m = make_single_node_model(op, feeds, attrs, opset=opset)
    with pytest.raises(UnsupportedModelError, match=f"{op} node '{op}_0'.*{dtname}"):
        run_model(m, feeds)
