/* Template for the x86 fp32 GEMM microkernels: one source for AVX2 and AVX-512.
 *
 * Included (no include guard) by f32_gemm_x86.h after defining:
 *   T_ISA     name suffix (avx2, avx512)     T_TARGET  target attribute string
 *   T_MR      rows of the register tile      T_NR      columns (= 2 vectors)
 *   T_VW      floats per vector              VEC, VZERO, VLOAD, VSTORE, VBCAST, VFMA, VADD
 * It defines f32_gemm_ukernel_<mr>x<T_NR>__<T_ISA> for mr = 1..T_MR (full-width tiles,
 * written straight into C), the half-width f32_gemm_ukernel_<mr>x<T_VW>__<T_ISA> for narrow
 * column edges, and f32_gemm_tile_<T_MR>x<T_NR>__<T_ISA>, the tile entry point that picks
 * one and handles partial tiles (computed into a local tile, valid corner copied).
 *
 * On the last K block the tile applies the epilogue `e` in registers before its one store
 * (alpha, per-row / per-column bias, clamp; see f32_gemm_scalar.h).
 *
 * Each k step loads two B vectors, broadcasts one A value per row and issues 2 FMAs per
 * row into 2*T_MR accumulators (12 ymm for 6x16, 16 zmm for 8x32): enough independent
 * chains to cover FMA latency x 2 pipes. The 1-row kernel (GEMV, M = 1) has too few
 * chains, so it splits K four ways into separate accumulators. */

#define T_PASTE2_(a, b) a##b
#define T_PASTE2(a, b) T_PASTE2_(a, b)
#define T_PASTE5_(a, b, c, d, e) a##b##c##d##e
#define T_PASTE5(a, b, c, d, e) T_PASTE5_(a, b, c, d, e)
#define T_UK(mr) T_PASTE5(f32_gemm_ukernel_, mr, x, T_NR, T_PASTE2(__, T_ISA))
#define T_TILE T_PASTE5(f32_gemm_tile_, T_MR, x, T_NR, T_PASTE2(__, T_ISA))
#define T_BODY T_PASTE2(f32_gemm_body__, T_ISA)
#define T_BODY1 T_PASTE2(f32_gemm_body1__, T_ISA)
#define T_UKH(mr) T_PASTE5(f32_gemm_ukernel_, mr, x, T_VW, T_PASTE2(__, T_ISA))
#define T_BODYH T_PASTE2(f32_gemm_bodyh__, T_ISA)
#define T_EPI T_PASTE2(f32_gemm_epi_vec__, T_ISA)

/* Final value of one vector of C: alpha * v + row bias + column bias, clamped (when
 * `clamp`). max/min take the bound first so that a NaN in v is what they return
 * (propagated, like numpy). */
static inline __attribute__((always_inline, target(T_TARGET))) VEC
T_EPI(VEC v, VEC alpha, VEC bias, VEC lo, VEC hi, int clamp) {
    v = VFMA(alpha, v, bias);
    return clamp ? VMIN(hi, VMAX(lo, v)) : v;
}

static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODY(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
       float* restrict c, int64_t ldc, int acc, const f32_gemm_epi* e) {
    VEC c0[T_MR], c1[T_MR];
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        c0[r] = VZERO();
        c1[r] = VZERO();
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
        const VEC b0 = VLOAD(b), b1 = VLOAD(b + T_VW);
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const VEC av = VBCAST(a + r);
            c0[r] = VFMA(av, b0, c0[r]);
            c1[r] = VFMA(av, b1, c1[r]);
        }
        a += T_MR;
        b += T_NR;
    }
    if (acc) {
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            c0[r] = VADD(c0[r], VLOAD(c + r * ldc));
            c1[r] = VADD(c1[r], VLOAD(c + r * ldc + T_VW));
        }
    }
    if (e) {
        const VEC al = VSET1(e->alpha), lo = VSET1(e->lo), hi = VSET1(e->hi);
        const VEC bc0 = e->bias_c ? VLOAD(e->bias_c) : VZERO();
        const VEC bc1 = e->bias_c ? VLOAD(e->bias_c + T_VW) : VZERO();
        const int cl = e->lo != -INFINITY || e->hi != INFINITY;
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const VEC br = e->bias_r ? VSET1(e->bias_r[r]) : VZERO();
            c0[r] = T_EPI(c0[r], al, VADD(bc0, br), lo, hi, cl);
            c1[r] = T_EPI(c1[r], al, VADD(bc1, br), lo, hi, cl);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        VSTORE(c + r * ldc, c0[r]);
        VSTORE(c + r * ldc + T_VW, c1[r]);
    }
}

static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODY1(int64_t kc, const float* restrict a, const float* restrict b, float* restrict c, int acc,
        const f32_gemm_epi* e) {
    VEC s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
    VEC s4 = VZERO(), s5 = VZERO(), s6 = VZERO(), s7 = VZERO();
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const VEC a0 = VBCAST(a), a1 = VBCAST(a + T_MR);
        const VEC a2 = VBCAST(a + 2 * T_MR), a3 = VBCAST(a + 3 * T_MR);
        s0 = VFMA(a0, VLOAD(b), s0);
        s1 = VFMA(a0, VLOAD(b + T_VW), s1);
        s2 = VFMA(a1, VLOAD(b + T_NR), s2);
        s3 = VFMA(a1, VLOAD(b + T_NR + T_VW), s3);
        s4 = VFMA(a2, VLOAD(b + 2 * T_NR), s4);
        s5 = VFMA(a2, VLOAD(b + 2 * T_NR + T_VW), s5);
        s6 = VFMA(a3, VLOAD(b + 3 * T_NR), s6);
        s7 = VFMA(a3, VLOAD(b + 3 * T_NR + T_VW), s7);
        a += 4 * T_MR;
        b += 4 * T_NR;
    }
    for (; k < kc; ++k) {
        const VEC a0 = VBCAST(a);
        s0 = VFMA(a0, VLOAD(b), s0);
        s1 = VFMA(a0, VLOAD(b + T_VW), s1);
        a += T_MR;
        b += T_NR;
    }
    s0 = VADD(VADD(s0, s2), VADD(s4, s6));
    s1 = VADD(VADD(s1, s3), VADD(s5, s7));
    if (acc) {
        s0 = VADD(s0, VLOAD(c));
        s1 = VADD(s1, VLOAD(c + T_VW));
    }
    if (e) {
        const VEC al = VSET1(e->alpha), lo = VSET1(e->lo), hi = VSET1(e->hi);
        const VEC br = e->bias_r ? VSET1(e->bias_r[0]) : VZERO();
        const VEC bc0 = e->bias_c ? VLOAD(e->bias_c) : VZERO();
        const VEC bc1 = e->bias_c ? VLOAD(e->bias_c + T_VW) : VZERO();
        const int cl = e->lo != -INFINITY || e->hi != INFINITY;
        s0 = T_EPI(s0, al, VADD(bc0, br), lo, hi, cl);
        s1 = T_EPI(s1, al, VADD(bc1, br), lo, hi, cl);
    }
    VSTORE(c, s0);
    VSTORE(c + T_VW, s1);
}

/* Half-width tile (one vector of columns): the column edge of a matrix whose N leaves at
 * most T_VW columns in the last panel (e.g. 49 output pixels = 3 x 16 + 1). B keeps its
 * T_NR-wide packing; even and odd k accumulate separately to keep two chains per row. */
static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODYH(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
        float* restrict c, int64_t ldc, int acc, const f32_gemm_epi* e) {
    VEC c0[T_MR], c1[T_MR];
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        c0[r] = VZERO();
        c1[r] = VZERO();
    }
    int64_t k = 0;
#pragma GCC unroll 2
    for (; k + 2 <= kc; k += 2) {
        const VEC b0 = VLOAD(b), b1 = VLOAD(b + T_NR);
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            c0[r] = VFMA(VBCAST(a + r), b0, c0[r]);
            c1[r] = VFMA(VBCAST(a + T_MR + r), b1, c1[r]);
        }
        a += 2 * T_MR;
        b += 2 * T_NR;
    }
    if (k < kc) {
        const VEC b0 = VLOAD(b);
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) c0[r] = VFMA(VBCAST(a + r), b0, c0[r]);
    }
    const VEC al = VSET1(e ? e->alpha : 1.f), lo = VSET1(e ? e->lo : 0.f);
    const VEC hi = VSET1(e ? e->hi : 0.f);
    const VEC bc = e && e->bias_c ? VLOAD(e->bias_c) : VZERO();
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        VEC v = VADD(c0[r], c1[r]);
        if (acc) v = VADD(v, VLOAD(c + r * ldc));
        if (e) v = T_EPI(v, al, VADD(bc, e->bias_r ? VSET1(e->bias_r[r]) : VZERO()), lo, hi, 1);
        VSTORE(c + r * ldc, v);
    }
}

#define T_DEFINE_UKH(mr)                                                                       \
    static __attribute__((noinline, target(T_TARGET))) void T_UKH(mr)(                        \
        int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc,           \
        const f32_gemm_epi* e) {                                                               \
        T_BODYH(mr, kc, a, b, c, ldc, acc, e);                                                 \
    }
T_DEFINE_UKH(1)
T_DEFINE_UKH(2)
T_DEFINE_UKH(3)
T_DEFINE_UKH(4)
T_DEFINE_UKH(5)
T_DEFINE_UKH(6)
#if T_MR >= 8
T_DEFINE_UKH(7)
T_DEFINE_UKH(8)
#endif

#define T_DEFINE_UK(mr)                                                                        \
    static __attribute__((noinline, target(T_TARGET))) void T_UK(mr)(                         \
        int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc,           \
        const f32_gemm_epi* e) {                                                               \
        T_BODY(mr, kc, a, b, c, ldc, acc, e);                                                  \
    }

static __attribute__((noinline, target(T_TARGET))) void T_UK(1)(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc,
    const f32_gemm_epi* e) {
    (void)ldc;
    T_BODY1(kc, a, b, c, acc, e);
}
T_DEFINE_UK(2)
T_DEFINE_UK(3)
T_DEFINE_UK(4)
T_DEFINE_UK(5)
T_DEFINE_UK(6)
#if T_MR >= 8
T_DEFINE_UK(7)
T_DEFINE_UK(8)
#endif

static __attribute__((target(T_TARGET))) void T_TILE(int64_t kc, const float* a, const float* b,
                                                    float* c, int64_t ldc, int mr, int nr,
                                                    int acc, const f32_gemm_epi* e) {
    float t[T_MR * T_NR] __attribute__((aligned(64)));
    const int half = nr <= T_VW, width = half ? T_VW : T_NR;
    float* dst = c;
    int64_t ldd = ldc;
    int dacc = acc;
    const f32_gemm_epi* de = e;
    if (nr != width) { /* partial tile: compute into t, store the valid corner below */
        dst = t;
        ldd = width;
        dacc = 0;
        de = 0;
    }
#define T_CASE(m)                                                                              \
    case m:                                                                                    \
        if (half)                                                                              \
            T_UKH(m)(kc, a, b, dst, ldd, dacc, de);                                            \
        else                                                                                   \
            T_UK(m)(kc, a, b, dst, ldd, dacc, de);                                             \
        break;
    switch (mr) {
        T_CASE(1)
        T_CASE(2)
        T_CASE(3)
        T_CASE(4)
        T_CASE(5)
        T_CASE(6)
#if T_MR >= 8
        T_CASE(7)
        T_CASE(8)
#endif
    default: return;
    }
#undef T_CASE
    if (dst == t) f32_gemm_store_tile(t, width, c, ldc, mr, nr, acc, e);
}

#undef T_DEFINE_UK
#undef T_DEFINE_UKH
#undef T_UK
#undef T_UKH
#undef T_BODYH
#undef T_EPI
#undef T_TILE
#undef T_BODY
#undef T_BODY1
