/* Body of the vector math, written once against the VF_* / VI_* / M_* primitives that
 * dsl_vmath.h binds to one ISA before each inclusion (no include guard on purpose).
 * Every function name goes through VM_SFX (dsl_v_exp__avx2, ...) and carries VM_TARGET.
 *
 * Algorithms (Cephes-style range reduction + polynomials, all branches computed and
 * blended, so the code is straight-line; a branch only picks a whole-vector fast path):
 *   exp     x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial; the core covers |x| < 87.3
 *           with one 2^n scale, the full version (any vector with a lane outside) applies
 *           2^n in two halves so denormal results and overflow to inf are right.
 *   log     x = m 2^e, m in [sqrt(1/2), sqrt(2)), degree-9 polynomial in m - 1; vectors with
 *           a zero / negative / denormal / inf / NaN lane take the special-case path.
 *   tanh    odd polynomial for |x| < 0.625, 1 - 2 / (exp(2|x|) + 1) above (saturates to 1).
 *   sigmoid 1 / (1 + e) or e / (1 + e) with e = exp(-|x|): never overflows, keeps relative
 *           accuracy for very negative x.
 *   erf     z P(z^2) for |z| < 0.9; erfc(z) = t exp(-z^2 + Q(t)), t = 1 / (1 + z/2) above,
 *           with -z^2 carried in two floats (FMA) so large z keep their relative accuracy.
 *           GELU uses erfc directly for x < 0 (no cancellation in 1 + erf(x/sqrt2)).
 * Results below FLT_MIN of sigmoid, softplus and erfc (GELU's tail) are flushed to 0, so
 * no denormals flow into the next layer; Exp alone returns denormals.
 */

/* e^x for x in [-87.3, 88.3] (callers clamp; NaN propagates): n = round(x log2e) by the
 * 1.5*2^23 "magic" addition, whose low mantissa bits then hold n + 127, i.e. the exponent
 * field of 2^n after a shift; e^r = 1 + r + r^2 Q(r), Q a fitted quartic (Estrin). */
static inline VM_TARGET VF VM_SFX(dsl_v_exp_core)(VF x) {
    const VF magic = VF_SET1(12582912.f + 127.f);
    VF fn = VF_FMA(x, VF_SET1(DSL_VM_LOG2E), magic);
    VF scale = VI_AS_F(VI_SLLI(VF_AS_I(fn), 23));
    fn = VF_SUB(fn, magic);
    VF r = VF_FNMA(fn, VF_SET1(DSL_VM_LN2_HI), x);
    r = VF_FNMA(fn, VF_SET1(DSL_VM_LN2_LO), r);
    VF r2 = VF_MUL(r, r);
    VF q01 = VF_FMA(VF_SET1(1.666651846e-01f), r, VF_SET1(4.999998860e-01f));
    VF q23 = VF_FMA(VF_SET1(8.368916341e-03f), r, VF_SET1(4.166953311e-02f));
    VF q = VF_FMA(VF_FMA(VF_SET1(1.375140790e-03f), r2, q23), r2, q01);
    VF p = VF_ADD(VF_FMA(q, r2, r), VF_SET1(1.f));
    return VF_MUL(p, scale);
}

/* e^x over the whole float range: overflow gives inf, underflow gives denormals then 0.
 * 2^n is applied in two halves so both stay normal numbers for n in [-150, 128]. */
static inline VM_TARGET VF VM_SFX(dsl_v_exp_full)(VF x) {
    x = VF_MIN(VF_SET1(88.8f), x);    /* NaN passes: min/max return the 2nd operand on NaN */
    x = VF_MAX(VF_SET1(-104.0f), x);
    VF fn = VF_ROUND(VF_MUL(x, VF_SET1(DSL_VM_LOG2E)));
    VF r = VF_FNMA(fn, VF_SET1(DSL_VM_LN2_HI), x);
    r = VF_FNMA(fn, VF_SET1(DSL_VM_LN2_LO), r);
    VF r2 = VF_MUL(r, r);
    VF q01 = VF_FMA(VF_SET1(1.666651846e-01f), r, VF_SET1(4.999998860e-01f));
    VF q23 = VF_FMA(VF_SET1(8.368916341e-03f), r, VF_SET1(4.166953311e-02f));
    VF q = VF_FMA(VF_FMA(VF_SET1(1.375140790e-03f), r2, q23), r2, q01);
    VF p = VF_ADD(VF_FMA(q, r2, r), VF_SET1(1.f));
    VI n = VF_TO_I(fn);
    VI n1 = VI_SRAI(n, 1);
    VI n2 = VI_SUB(n, n1);
    VF s1 = VI_AS_F(VI_SLLI(VI_ADD(n1, VI_SET1(127)), 23));
    VF s2 = VI_AS_F(VI_SLLI(VI_ADD(n2, VI_SET1(127)), 23));
    return VF_MUL(VF_MUL(p, s1), s2);
}

/* e^x for any x: the core when every lane is in its range (the common case), else full. */
static inline VM_TARGET VF VM_SFX(dsl_v_exp)(VF x) {
    VF ax = VF_ANDNOT(VF_SET1(-0.f), x);
    if (M_ALL(M_LT(ax, VF_SET1(87.3f)))) return VM_SFX(dsl_v_exp_core)(x);
    return VM_SFX(dsl_v_exp_full)(x);
}

/* e^x - 1 without cancellation near 0, for the x <= 0 side of ELU / SELU (positive lanes
 * are computed on x clamped to 0 and discarded by the caller; below -87.3 it is -1). */
static inline VM_TARGET VF VM_SFX(dsl_v_expm1_neg)(VF x) {
    x = VF_MAX(VF_SET1(-87.3f), VF_MIN(VF_SET1(0.f), x));
    const VF one = VF_SET1(1.f);
    VF p = VF_SET1(1.f / 40320.f);
    p = VF_FMA(p, x, VF_SET1(1.f / 5040.f));
    p = VF_FMA(p, x, VF_SET1(1.f / 720.f));
    p = VF_FMA(p, x, VF_SET1(1.f / 120.f));
    p = VF_FMA(p, x, VF_SET1(1.f / 24.f));
    p = VF_FMA(p, x, VF_SET1(1.f / 6.f));
    p = VF_FMA(p, x, VF_SET1(0.5f));
    VF small = VF_FMA(VF_MUL(p, x), x, x);
    VF big = VF_SUB(VM_SFX(dsl_v_exp_core)(x), one);
    VF ax = VF_ANDNOT(VF_SET1(-0.f), x);
    return VF_BLEND(M_LT(ax, VF_SET1(0.5f)), big, small);
}

/* log(m 2^e) for x = m 2^(e-bias) given x's bits: e from the exponent field plus eadj,
 * m in [sqrt(1/2), sqrt(2)) - 1, degree-9 polynomial (Cephes logf). No special cases. */
static inline VM_TARGET VF VM_SFX(dsl_v_log_core)(VF xs, VF eadj) {
    const VF one = VF_SET1(1.f);
    VI bits = VF_AS_I(xs);
    VF e = VF_ADD(eadj, VI_TO_F(VI_SUB(VI_SRLI(bits, 23), VI_SET1(126))));
    VF m = VI_AS_F(VI_OR(VI_AND(bits, VI_SET1(0x007fffff)), VI_SET1(0x3f000000)));  /* [0.5,1) */
    VM lt = M_LT(m, VF_SET1(0.707106781186547524f));
    e = VF_BLEND(lt, e, VF_SUB(e, one));
    m = VF_SUB(VF_BLEND(lt, m, VF_ADD(m, m)), one);
    VF z = VF_MUL(m, m);
    VF p = VF_SET1(7.0376836292E-2f);
    p = VF_FMA(p, m, VF_SET1(-1.1514610310E-1f));
    p = VF_FMA(p, m, VF_SET1(1.1676998740E-1f));
    p = VF_FMA(p, m, VF_SET1(-1.2420140846E-1f));
    p = VF_FMA(p, m, VF_SET1(1.4249322787E-1f));
    p = VF_FMA(p, m, VF_SET1(-1.6668057665E-1f));
    p = VF_FMA(p, m, VF_SET1(2.0000714765E-1f));
    p = VF_FMA(p, m, VF_SET1(-2.4999993993E-1f));
    p = VF_FMA(p, m, VF_SET1(3.3333331174E-1f));
    p = VF_MUL(VF_MUL(p, m), z);
    p = VF_FMA(e, VF_SET1(DSL_VM_LN2_LO), p);
    p = VF_FNMA(VF_SET1(0.5f), z, p);
    VF r = VF_ADD(m, p);
    return VF_FMA(e, VF_SET1(DSL_VM_LN2_HI), r);
}

static inline VM_TARGET VF VM_SFX(dsl_v_log)(VF x) {
    const VF zero = VF_SET1(0.f), inf = VF_SET1(INFINITY);
    /* the common case: every lane a positive normal finite number */
    if (M_ALL(M_AND(M_GE(x, VF_SET1(1.17549435e-38f)), M_LT(x, inf))))
        return VM_SFX(dsl_v_log_core)(x, zero);
    /* denormals: scale by 2^23 first; then 0 -> -inf, < 0 -> NaN, inf -> inf, NaN -> NaN */
    VM tiny = M_LT(x, VF_SET1(1.17549435e-38f));
    VF xs = VF_BLEND(tiny, x, VF_MUL(x, VF_SET1(8388608.f)));
    VF r = VM_SFX(dsl_v_log_core)(xs, VF_BLEND(tiny, zero, VF_SET1(-23.f)));
    r = VF_BLEND(M_EQ(x, zero), r, VF_SET1(-INFINITY));
    r = VF_BLEND(M_LT(x, zero), r, VF_SET1(NAN));
    r = VF_BLEND(M_EQ(x, inf), r, inf);
    return VF_BLEND(M_ISNAN(x), r, x);
}

/* log(1 + u) for u >= 0 (softplus): log(w) corrected by the rounding of w = 1 + u. */
static inline VM_TARGET VF VM_SFX(dsl_v_log1p_pos)(VF u) {
    const VF one = VF_SET1(1.f);
    VF w = VF_ADD(one, u);
    VF corr = VF_DIV(VF_SUB(u, VF_SUB(w, one)), w);
    return VF_ADD(VM_SFX(dsl_v_log)(w), corr);
}

static inline VM_TARGET VF VM_SFX(dsl_v_tanh)(VF x) {
    const VF sign = VF_SET1(-0.f), one = VF_SET1(1.f);
    VF ax = VF_ANDNOT(sign, x);
    VF z = VF_MUL(x, x);
    VF p = VF_SET1(-5.70498872745E-3f);
    p = VF_FMA(p, z, VF_SET1(2.06390887954E-2f));
    p = VF_FMA(p, z, VF_SET1(-5.37397155531E-2f));
    p = VF_FMA(p, z, VF_SET1(1.33314422036E-1f));
    p = VF_FMA(p, z, VF_SET1(-3.33332819422E-1f));
    VF ys = VF_FMA(VF_MUL(p, z), x, x);
    /* tanh is 1 in float beyond 9.01: clamp so e^(2|x|) stays finite (NaN passes) */
    VF e = VM_SFX(dsl_v_exp_core)(VF_ADD(VF_MIN(VF_SET1(9.1f), ax), VF_MIN(VF_SET1(9.1f), ax)));
    VF yl = VF_SUB(one, VF_DIV(VF_SET1(2.f), VF_ADD(e, one)));
    yl = VF_OR(yl, VF_AND(sign, x));
    return VF_BLEND(M_LT(ax, VF_SET1(0.625f)), yl, ys);
}

static inline VM_TARGET VF VM_SFX(dsl_v_sigmoid)(VF x) {
    const VF sign = VF_SET1(-0.f), one = VF_SET1(1.f);
    /* e = exp(-|x|) in (0, 1]; below -87.3 the result is flushed to 0 (no denormals
     * flowing into the next layer), so the clamp costs nothing in accuracy */
    VF e = VM_SFX(dsl_v_exp_core)(VF_MAX(VF_SET1(-87.3f), VF_OR(x, sign)));
    VF s = VF_DIV(one, VF_ADD(one, e));
    s = VF_BLEND(M_LT(x, VF_SET1(0.f)), s, VF_MUL(e, s));
    return VF_BLEND(M_LT(x, VF_SET1(-87.3f)), s, VF_SET1(0.f));
}

/* erf(z) / z as a polynomial in z^2, for 0 <= z < DSL_VM_ERF_SPLIT (fitted, 1.7e-7 rel.) */
static inline VM_TARGET VF VM_SFX(dsl_v_erf_small)(VF z) {
    VF z2 = VF_MUL(z, z);
    VF p = VF_SET1(-6.144192367e-4f);
    p = VF_FMA(p, z2, VF_SET1(5.023307410e-3f));
    p = VF_FMA(p, z2, VF_SET1(-2.678741434e-2f));
    p = VF_FMA(p, z2, VF_SET1(1.128240908e-1f));
    p = VF_FMA(p, z2, VF_SET1(-3.761255504e-1f));
    p = VF_FMA(p, z2, VF_SET1(1.128379162e+00f));
    return VF_MUL(p, z);
}

/* erfc(z) for DSL_VM_ERF_SPLIT <= z (flushed to 0 below FLT_MIN), given z^2 = z2 + z2e exactly (two floats): erfc is
 * ill-conditioned for large z (relative error 2 z^2 eps), so callers form z^2 from the
 * exact input (x^2 or x^2 / 2 by FMA) instead of squaring a rounded z. */
static inline VM_TARGET VF VM_SFX(dsl_v_erfc_big)(VF z, VF z2, VF z2e) {
    const VF one = VF_SET1(1.f);
    VF t = VF_DIV(one, VF_FMA(VF_SET1(0.5f), z, one));
    /* degree-8 polynomial in t, Estrin's scheme (half the dependency chain of Horner) */
    VF t2 = VF_MUL(t, t);
    VF t4 = VF_MUL(t2, t2);
    VF p01 = VF_FMA(VF_SET1(9.995445284e-01f), t, VF_SET1(-1.265492680e+00f));
    VF p23 = VF_FMA(VF_SET1(6.296880348e-02f), t, VF_SET1(3.793069147e-01f));
    VF p45 = VF_FMA(VF_SET1(-1.329011892e-01f), t, VF_SET1(-4.218825068e-02f));
    VF p67 = VF_FMA(VF_SET1(5.793534078e-01f), t, VF_SET1(-3.614697337e-01f));
    VF p03 = VF_FMA(p23, t2, p01);
    VF p47 = VF_FMA(p67, t2, p45);
    VF p = VF_FMA(VF_FMA(VF_SET1(-2.201105430e-01f), t4, p47), t4, p03);
    /* erfc = t exp(p - z^2); p - z^2 as hi + lo, exp(hi + lo) = exp(hi)(1 + lo). Fast2Sum
     * is exact here: z^2 >= |p| on the whole branch (p in [-1.12, -0.41], z^2 >= 0.81). */
    VF hi = VF_SUB(p, z2);
    VF lo = VF_SUB(VF_SUB(p, VF_ADD(hi, z2)), z2e);
    VF q = VF_MUL(t, VM_SFX(dsl_v_exp_core)(VF_MAX(VF_SET1(-87.3f), hi)));
    q = VF_FMA(q, lo, q);
    /* erfc(z) < FLT_MIN beyond 9.19: flushed to 0 (this also absorbs z = inf) */
    return VF_BLEND(M_GT(z, VF_SET1(9.19f)), q, VF_SET1(0.f));
}

static inline VM_TARGET VF VM_SFX(dsl_v_erf)(VF x) {
    const VF sign = VF_SET1(-0.f);
    VF ax = VF_ANDNOT(sign, x);
    VF x2 = VF_MUL(x, x);
    VF small = VM_SFX(dsl_v_erf_small)(ax);
    VF big = VF_SUB(VF_SET1(1.f), VM_SFX(dsl_v_erfc_big)(ax, x2, VF_FMS(x, x, x2)));
    VF r = VF_BLEND(M_LT(ax, VF_SET1(DSL_VM_ERF_SPLIT)), big, small);
    return VF_OR(r, VF_AND(sign, x));
}

/* x * Phi(x), Phi(x) = erfc(-x / sqrt2) / 2 */
static inline VM_TARGET VF VM_SFX(dsl_v_gelu_erf)(VF x) {
    const VF one = VF_SET1(1.f), half = VF_SET1(0.5f);
    VF z = VF_MUL(VF_ANDNOT(VF_SET1(-0.f), x), VF_SET1(DSL_VM_SQRT1_2));
    VF x2 = VF_MUL(x, x);
    VF z2 = VF_MUL(half, x2), z2e = VF_MUL(half, VF_FMS(x, x, x2));   /* x^2/2, exact */
    VF qs = VF_SUB(one, VM_SFX(dsl_v_erf_small)(z));
    VF qb = VM_SFX(dsl_v_erfc_big)(z, z2, z2e);
    VF hq = VF_MUL(half, VF_BLEND(M_LT(z, VF_SET1(DSL_VM_ERF_SPLIT)), qb, qs));  /* erfc(|x|/sqrt2)/2 */
    VF phi = VF_BLEND(M_LT(x, VF_SET1(0.f)), VF_SUB(one, hq), hq);
    return VF_MUL(x, phi);
}

/* 0.5 x (1 + tanh(y)) = x * sigmoid(2y), y = sqrt(2/pi) (x + 0.044715 x^3) */
static inline VM_TARGET VF VM_SFX(dsl_v_gelu_tanh)(VF x) {
    VF x2 = VF_MUL(x, x);
    VF u = VF_MUL(VF_MUL(x, VF_SET1(2.f * DSL_VM_GELU_K)), VF_FMA(x2, VF_SET1(0.044715f), VF_SET1(1.f)));
    return VF_MUL(x, VM_SFX(dsl_v_sigmoid)(u));
}

static inline VM_TARGET VF VM_SFX(dsl_v_clamp01)(VF y) {
    /* NaN passes through both */
    return VF_MAX(VF_SET1(0.f), VF_MIN(VF_SET1(1.f), y));
}

/* Apply function `fn` to n floats. */
static VM_TARGET void VM_SFX(dsl_vunary_f32)(int fn, const float* x, float* y, int64_t n,
                                             float a, float b) {
    const VF va = VF_SET1(a), vb = VF_SET1(b), zero = VF_SET1(0.f), one = VF_SET1(1.f);
    const VF sign = VF_SET1(-0.f);
    int64_t k;
#define VM_MAP(EXPR)                                                          \
    for (k = 0; k + 2 * VM_LEN <= n; k += 2 * VM_LEN) {                       \
        VF y0, y1;                                                            \
        { VF v = VF_LOAD(x + k); y0 = (EXPR); }                               \
        { VF v = VF_LOAD(x + k + VM_LEN); y1 = (EXPR); }                      \
        VF_STORE(y + k, y0);                                                  \
        VF_STORE(y + k + VM_LEN, y1);                                         \
    }                                                                         \
    for (; k + VM_LEN <= n; k += VM_LEN) {                                    \
        VF v = VF_LOAD(x + k);                                                \
        VF_STORE(y + k, (EXPR));                                              \
    }                                                                         \
    if (k < n) {                                                              \
        VF v = VF_LOAD_N(x + k, n - k);                                       \
        VF_STORE_N(y + k, (EXPR), n - k);                                     \
    }                                                                         \
    return;

    switch (fn) {
    case DSL_ACT_NONE:
        if (x != y) memmove(y, x, (size_t)n * sizeof(float));
        return;
    case DSL_ACT_RELU: VM_MAP(VF_MAX(zero, v))
    case DSL_ACT_LEAKY_RELU: VM_MAP(VF_BLEND(M_LT(v, zero), v, VF_MUL(va, v)))
    case DSL_ACT_CLIP: VM_MAP(VF_MIN(vb, VF_MAX(va, v)))
    case DSL_ACT_SIGMOID: VM_MAP(VM_SFX(dsl_v_sigmoid)(v))
    case DSL_ACT_TANH: VM_MAP(VM_SFX(dsl_v_tanh)(v))
    case DSL_ACT_HARD_SIGMOID: VM_MAP(VM_SFX(dsl_v_clamp01)(VF_FMA(va, v, vb)))
    case DSL_ACT_HARD_SWISH:
        VM_MAP(VF_MUL(v, VM_SFX(dsl_v_clamp01)(VF_FMA(VF_SET1(1.f / 6.f), v, VF_SET1(0.5f)))))
    case DSL_ACT_GELU_ERF: VM_MAP(VM_SFX(dsl_v_gelu_erf)(v))
    case DSL_ACT_GELU_TANH: VM_MAP(VM_SFX(dsl_v_gelu_tanh)(v))
    case DSL_ACT_ELU:
        VM_MAP(VF_BLEND(M_LT(v, zero), v, VF_MUL(va, VM_SFX(dsl_v_expm1_neg)(v))))
    case DSL_ACT_SELU:
        VM_MAP(VF_MUL(vb, VF_BLEND(M_GT(v, zero), VF_MUL(va, VM_SFX(dsl_v_expm1_neg)(v)), v)))
    case DSL_ACT_SOFTPLUS:
        VM_MAP(VF_ADD(VF_MAX(zero, v), VF_BLEND(M_LT(v, VF_SET1(-87.3f)),
                      VM_SFX(dsl_v_log1p_pos)(VM_SFX(dsl_v_exp_core)(
                          VF_MAX(VF_SET1(-87.3f), VF_OR(v, sign)))), zero)))
    case DSL_VF_EXP: VM_MAP(VM_SFX(dsl_v_exp)(v))
    case DSL_VF_LOG: VM_MAP(VM_SFX(dsl_v_log)(v))
    case DSL_VF_SQRT: VM_MAP(VF_SQRT(v))
    case DSL_VF_NEG: VM_MAP(VF_XOR(v, sign))
    case DSL_VF_ABS: VM_MAP(VF_ANDNOT(sign, v))
    case DSL_VF_RECIP: VM_MAP(VF_DIV(one, v))
    case DSL_VF_ERF: VM_MAP(VM_SFX(dsl_v_erf)(v))
    case DSL_VF_AFFINE: VM_MAP(VF_FMA(va, v, vb))
    case DSL_VF_FLOOR: VM_MAP(VF_FLOOR(v))
    case DSL_VF_CEIL: VM_MAP(VF_CEIL(v))
    case DSL_VF_ROUND: VM_MAP(VF_ROUND(v))
    case DSL_VF_SIGN:
        VM_MAP(VF_BLEND(M_LT(v, zero), VF_BLEND(M_GT(v, zero), v, one), VF_SET1(-1.f)))
    case DSL_VF_SOFTSIGN: VM_MAP(VF_DIV(v, VF_ADD(one, VF_ANDNOT(sign, v))))
    case DSL_VF_POW:
        if (a == 2.f) { VM_MAP(VF_MUL(v, v)) }
        if (a == 1.f) { if (x != y) memmove(y, x, (size_t)n * sizeof(float)); return; }
        if (a == 0.5f) { VM_MAP(VF_SQRT(v)) }
        if (a == -1.f) { VM_MAP(VF_DIV(one, v)) }
        if (a == 3.f) { VM_MAP(VF_MUL(VF_MUL(v, v), v)) }
        for (k = 0; k < n; ++k) y[k] = powf(x[k], a);
        return;
    default:
        dsl_vunary_f32__generic(fn, x, y, n, a, b);
        return;
    }
#undef VM_MAP
}
