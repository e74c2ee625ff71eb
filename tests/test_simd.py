"""The vector vocabulary (csrc/dsl_simd_form.h), primitive by primitive, in every vector
form this CPU runs: AVX2 (8 lanes), AVX-512 (16) and the AVX-512 form on AVX2 halves (16),
against NumPy. Every SIMD kernel is written with these primitives, so a wrong one in any
form fails here by name, and the two 16-lane forms must agree bit for bit."""
import numpy as np
import pytest

from deepsparse_lite import kernels
from deepsparse_lite.kernels import abi

F32 = np.float32
N = 17 * 16
FORMS = [f for f in kernels.runnable_forms() if f != 0]

OPS = ["add", "sub", "mul", "div", "fma", "fnma", "fms", "min", "max", "sqrt_abs", "abs",
       "round", "floor", "ceil", "and", "or", "xor", "andnot", "to_i_to_f", "slli3", "srli5",
       "srai7", "iadd3", "isub", "iand", "ior", "lt", "le", "gt", "ge", "eq", "isnan",
       "lt_or_nan", "blend_and", "bcast", "set1", "exp", "load_even", "copy"]


def _inputs():
    rng = np.random.default_rng(11)
    a = (rng.standard_normal(N) * 4).astype(F32)
    b = (rng.standard_normal(N) * 4).astype(F32)
    c = rng.standard_normal(N).astype(F32)
    # special values, spread over lanes (and both halves of 16-lane vectors)
    a[[3, 12, 21, 30]] = [np.nan, np.inf, -np.inf, -0.0]
    b[[5, 12, 29, 40]] = [np.nan, 2.5, 0.0, np.nan]
    a[[7, 8, 9, 10, 11]] = [2.5, -2.5, 0.5, 1.5, -0.5]   # round half to even
    b[[50, 51]] = a[[50, 51]]                            # equal lanes
    return a, b, c


def _bits(x):
    return np.asarray(x, F32).view(np.int32)


def _expected(a, b, c, lanes):
    i32 = lambda v: np.asarray(v, np.int32).view(F32)  # noqa: E731
    ai, bi = _bits(a), _bits(b)
    with np.errstate(all="ignore"):
        f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
        exp = {
            "add": a + b, "sub": a - b, "mul": a * b, "div": a / b,
            "fma": (f64(a) * b + c).astype(F32), "fnma": (c - f64(a) * b).astype(F32),
            "fms": (f64(a) * b - c).astype(F32),
            # x86 min/max: the second operand unless the first is strictly smaller/larger
            "min": np.where(a < b, a, b), "max": np.where(a > b, a, b),
            "sqrt_abs": np.sqrt(np.abs(a)), "abs": np.abs(a), "round": np.round(a),
            "floor": np.floor(a), "ceil": np.ceil(a),
            "and": i32(ai & bi), "or": i32(ai | bi), "xor": i32(ai ^ bi), "andnot": i32(~ai & bi),
            "slli3": i32(ai << 3), "srli5": i32((ai.view(np.uint32) >> 5).view(np.int32)),
            "srai7": i32(ai >> 7), "iadd3": i32(ai + 3), "isub": i32(ai - bi),
            "iand": i32(ai & 0x7f0000ff), "ior": i32(ai | 1),
            "lt": (a < b).astype(F32), "le": (a <= b).astype(F32), "gt": (a > b).astype(F32),
            "ge": (a >= b).astype(F32), "eq": (a == b).astype(F32), "isnan": np.isnan(a).astype(F32),
            "lt_or_nan": ((a < b) | np.isnan(b)).astype(F32),
            "blend_and": np.where((a < b) & (b < c), c, a),
            "bcast": np.repeat(a[1::lanes], lanes), "set1": np.repeat(a[::lanes], lanes),
            "copy": c,
        }
        fin = np.isfinite(a)
        cvt = np.where(fin & (np.abs(a) < 2 ** 31), np.round(a), np.float32(-2 ** 31))
        exp["to_i_to_f"] = cvt.astype(np.int64).astype(F32)   # through an int: -0 becomes 0
        # VF_MIN(x, 80): x86 semantics, a NaN lane becomes 80
        exp["exp"] = np.exp(np.where(a < 80, a, F32(80)).astype(np.float64)).astype(F32)
        idx = np.concatenate([(2 * i) % (N - 2 * lanes + 1) + 2 * np.arange(lanes)
                              for i in range(0, N, lanes)])
        exp["load_even"] = a[idx]
    return exp


@pytest.mark.skipif(not FORMS, reason="no vector ISA on this CPU")
@pytest.mark.parametrize("form", FORMS)
def test_primitives_match_numpy(form):
    a, b, c = _inputs()
    lanes, out, scal = abi.simd_selftest(form, a, b, c)
    assert lanes == (8 if form == 1 else 16)
    exp = _expected(a, b, c, lanes)
    for k, name in enumerate(OPS):
        got, want = out[k], exp[name]
        if name == "exp":
            ok = np.isclose(got, want, rtol=3e-7, atol=0) | (np.isnan(got) & np.isnan(want))
            assert ok.all(), f"form {form}: {name} at lanes {np.where(~ok)[0][:8]}"
        elif name == "min" or name == "max":
            # NaN lanes: x86 returns the second operand
            assert np.array_equal(_bits(got), _bits(want)), f"form {form}: {name}"
        else:
            same = (_bits(got) == _bits(want)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (f"form {form}: {name} differs at lanes {np.where(~same)[0][:8]}: "
                                f"got {got[~same][:4]}, want {want[~same][:4]}")
    vec = a.reshape(-1, lanes)
    with np.errstate(invalid="ignore"):
        hsum = vec.astype(np.float64).sum(axis=1)
        fin = np.isfinite(hsum)
        assert np.allclose(scal[fin, 0], hsum[fin], rtol=1e-5, atol=1e-4), f"form {form}: hsum"
        ok = ~np.isnan(vec).any(axis=1)
        assert np.array_equal(scal[ok, 1], vec[ok].max(axis=1)), f"form {form}: hmax"
        assert np.array_equal(scal[ok, 2], vec[ok].min(axis=1)), f"form {form}: hmin"
    assert np.array_equal(scal[:, 3], (a < b).reshape(-1, lanes).all(axis=1).astype(F32)), \
        f"form {form}: all"
    tails = out[len(OPS)][: (lanes + 1) * lanes].reshape(lanes + 1, lanes)
    for k in range(lanes + 1):
        want = np.concatenate([a[:k] + 1, np.full(lanes - k, -7.0, F32)]).astype(F32)
        assert np.array_equal(tails[k], want, equal_nan=True), f"form {form}: load_n/store_n k={k}"


@pytest.mark.skipif(kernels.top_isa_level() < 2, reason="needs AVX-512 to compare the two 16-lane forms")
def test_avx512_and_its_avx2_halves_agree_bit_for_bit():
    a, b, c = _inputs()
    _, native, s1 = abi.simd_selftest(2, a, b, c)
    _, halves, s2 = abi.simd_selftest(3, a, b, c)
    for k, name in enumerate(OPS):
        same = (_bits(native[k]) == _bits(halves[k])) | (np.isnan(native[k]) & np.isnan(halves[k]))
        assert same.all(), f"{name}: native AVX-512 and AVX2-halves forms differ"
    # horizontal max/min of a vector holding a NaN depend on the reduction order: compare the rest
    ok = ~np.isnan(a.reshape(-1, 16)).any(axis=1)
    assert np.array_equal(s1[ok, 1:], s2[ok, 1:]) and np.array_equal(s1[:, 3], s2[:, 3])


def test_a_form_the_cpu_lacks_is_refused():
    if kernels.top_isa_level() >= 2:
        pytest.skip("every form runs here")
    with pytest.raises(ValueError, match="cannot run"):
        abi.simd_selftest(2, *_inputs())


@pytest.mark.parametrize("form", kernels.runnable_forms())
@pytest.mark.parametrize("n", [0, 1, 63, 64, 1000])
def test_stream_read_probe_sums_every_float(form, n):
    """The bandwidth probe of benchmarks/bench_gemm.py --suite small-m reads every float
    (its sum is right in every form, tails included)."""
    from deepsparse_lite.kernels import reduce as kreduce
    x = (np.arange(n) % 7).astype(F32)
    seconds, total = kreduce.stream_read_seconds(x, form, 2)
    assert seconds >= 0
    assert total == 2 * float(x.sum())


def test_stream_read_probe_refuses_unknown_or_unrunnable_forms():
    from deepsparse_lite.kernels import reduce as kreduce
    with pytest.raises(ValueError, match="unknown vector form"):
        kreduce.stream_read_seconds(np.ones(4, F32), 7)
    if 2 not in kernels.runnable_forms():
        with pytest.raises(ValueError, match="does not have"):
            kreduce.stream_read_seconds(np.ones(4, F32), 2)
