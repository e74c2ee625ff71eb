/* Primitive-level self-test of one vector form (no include guard: instantiated per form
 * after dsl_simd_form.h by kernels/abi.pyx). Each primitive runs over whole vectors of the
 * inputs a, b, c (n floats, n a multiple of VM_LEN) and writes its results to out[op * n +
 * i]; tests/test_simd.py compares every form with NumPy and with the other forms. The
 * vocabulary is what every SIMD kernel is built from, so a wrong primitive in any form
 * (the AVX-512 one included, on an AVX-512 machine) fails here by name. */

static VM_TARGET void VM_SFX(dsl_simd_selftest)(const float* a, const float* b, const float* c,
                                                int64_t n, float* out, float* scal) {
    const VF zero = VF_ZERO(), one = VF_SET1(1.f);
    for (int64_t i = 0; i + VM_LEN <= n; i += VM_LEN) {
        const VF x = VF_LOAD(a + i), y = VF_LOAD(b + i), z = VF_LOAD(c + i);
        float* o = out + i;
        VF_STORE(o + 0 * n, VF_ADD(x, y));
        VF_STORE(o + 1 * n, VF_SUB(x, y));
        VF_STORE(o + 2 * n, VF_MUL(x, y));
        VF_STORE(o + 3 * n, VF_DIV(x, y));
        VF_STORE(o + 4 * n, VF_FMA(x, y, z));
        VF_STORE(o + 5 * n, VF_FNMA(x, y, z));
        VF_STORE(o + 6 * n, VF_FMS(x, y, z));
        VF_STORE(o + 7 * n, VF_MIN(x, y));
        VF_STORE(o + 8 * n, VF_MAX(x, y));
        VF_STORE(o + 9 * n, VF_SQRT(VF_ABS(x)));
        VF_STORE(o + 10 * n, VF_ABS(x));
        VF_STORE(o + 11 * n, VF_ROUND(x));
        VF_STORE(o + 12 * n, VF_FLOOR(x));
        VF_STORE(o + 13 * n, VF_CEIL(x));
        VF_STORE(o + 14 * n, VF_AND(x, y));
        VF_STORE(o + 15 * n, VF_OR(x, y));
        VF_STORE(o + 16 * n, VF_XOR(x, y));
        VF_STORE(o + 17 * n, VF_ANDNOT(x, y));
        VF_STORE(o + 18 * n, VI_TO_F(VF_TO_I(x)));
        VF_STORE(o + 19 * n, VI_AS_F(VI_SLLI(VF_AS_I(x), 3)));
        VF_STORE(o + 20 * n, VI_AS_F(VI_SRLI(VF_AS_I(x), 5)));
        VF_STORE(o + 21 * n, VI_AS_F(VI_SRAI(VF_AS_I(x), 7)));
        VF_STORE(o + 22 * n, VI_AS_F(VI_ADD(VF_AS_I(x), VI_SET1(3))));
        VF_STORE(o + 23 * n, VI_AS_F(VI_SUB(VF_AS_I(x), VF_AS_I(y))));
        VF_STORE(o + 24 * n, VI_AS_F(VI_AND(VF_AS_I(x), VI_SET1(0x7f0000ff))));
        VF_STORE(o + 25 * n, VI_AS_F(VI_OR(VF_AS_I(x), VI_SET1(1))));
        VF_STORE(o + 26 * n, VF_BLEND(M_LT(x, y), zero, one));
        VF_STORE(o + 27 * n, VF_BLEND(M_LE(x, y), zero, one));
        VF_STORE(o + 28 * n, VF_BLEND(M_GT(x, y), zero, one));
        VF_STORE(o + 29 * n, VF_BLEND(M_GE(x, y), zero, one));
        VF_STORE(o + 30 * n, VF_BLEND(M_EQ(x, y), zero, one));
        VF_STORE(o + 31 * n, VF_BLEND(M_ISNAN(x), zero, one));
        VF_STORE(o + 32 * n, VF_BLEND(M_OR(M_LT(x, y), M_ISNAN(y)), zero, one));
        VF_STORE(o + 33 * n, VF_BLEND(M_AND(M_LT(x, y), M_LT(y, z)), x, z));
        VF_STORE(o + 34 * n, VF_BCAST(a + i + 1));
        VF_STORE(o + 35 * n, VF_SET1(a[i]));
        VF_STORE(o + 36 * n, VF_EXP(VF_MIN(x, VF_SET1(80.f))));
        VF_STORE(o + 37 * n, VF_LOAD_EVEN(a + (2 * i) % (n - 2 * VM_LEN + 1)));
        VF_STORE(o + 38 * n, VF_ADD(VF_LOAD(c + i), zero));
        /* per-vector scalars: sums, max, min, all(x < y) */
        const int64_t v = i / VM_LEN;
        scal[4 * v + 0] = VF_HSUM(x);
        scal[4 * v + 1] = VF_HMAX(x);
        scal[4 * v + 2] = VF_HMIN(x);
        scal[4 * v + 3] = (float)M_ALL(M_LT(x, y));
    }
    /* masked tails: lanes [0, k) of a at every k, the rest zero; stores touch only [0, k) */
    float* t = out + 39 * n;
    for (int64_t k = 0; k <= VM_LEN && (k + 1) * VM_LEN <= n; ++k) {
        float* row = t + k * VM_LEN;
        for (int j = 0; j < VM_LEN; ++j) row[j] = -7.f;
        VF_STORE_N(row, VF_ADD(VF_LOAD_N(a, k), one), k);
    }
}
