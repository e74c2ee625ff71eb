/* Template for the x86 fp32 GEMM microkernels: one source for every vector form.
 *
 * Included (no include guard) once per vector form through dsl_simd_forms.h (the
 * primitives and VM_SFX / VM_TARGET / VM_LEN of one form). The tile is T_MR rows x T_NR
 * columns (2 vectors of VM_LEN): 6 x 16 for AVX2, 8 x 32 for the 16-lane forms.
 * It defines f32_gemm_ukernel_<mr>x<T_NR>__<form> for mr = 1..T_MR (full-width tiles,
 * written straight into C), the half-width f32_gemm_ukernel_<mr>x<VM_LEN>__<form> for narrow
 * column edges, and f32_gemm_tile_<T_MR>x<T_NR>__<form>, the tile entry point that picks
 * one and handles partial tiles (computed into a local tile, valid corner copied).
 *
 * On the last K block the tile applies the epilogue `e` in registers before its one store
 * (alpha, per-row / per-column bias, clamp; see f32_gemm_scalar.h).
 *
 * Each k step loads two B vectors, broadcasts one A value per row and issues 2 FMAs per
 * row into 2*T_MR accumulators (12 ymm for 6x16, 16 zmm for 8x32): enough independent
 * chains to cover FMA latency x 2 pipes. The 1-row kernel (GEMV, M = 1) has too few
 * chains, so it splits K four ways into separate accumulators. (The 8x32 tile on AVX2
 * halves needs 32 ymm accumulators and spills: it exists to test the AVX-512 source on
 * AVX2 machines, not to be fast.) */

#if DSL_SIMD_FORM == DSL_FORM_AVX2
#define T_MR 6
#define T_NR 16
#else
#define T_MR 8
#define T_NR 32
#endif
#define T_XSFX(name) VM_SFX(name) /* expands `name` before VM_SFX pastes the suffix */
#define T_PASTE4_(a, b, c, d) a##b##c##d
#define T_PASTE4(a, b, c, d) T_PASTE4_(a, b, c, d)
#define T_UK(mr) T_XSFX(T_PASTE4(f32_gemm_ukernel_, mr, x, T_NR))
#define T_TILE T_XSFX(T_PASTE4(f32_gemm_tile_, T_MR, x, T_NR))
#define T_BODY VM_SFX(f32_gemm_body)
#define T_BODY1 VM_SFX(f32_gemm_body1)
#define T_UKH(mr) T_XSFX(T_PASTE4(f32_gemm_ukernel_, mr, x, VM_LEN))
#define T_BODYH VM_SFX(f32_gemm_bodyh)
#define T_EPI VM_SFX(f32_gemm_epi_vec)
/* row counts whose tiles split k into even and odd accumulators (too few chains else;
 * on AVX2 halves the doubled accumulators spill: that form is for tests) */
#define T_SPLIT2(mr) ((mr) == 2 || (mr) == 3)

/* Final value of one vector of C: alpha * v + row bias + column bias, plus beta * D (dv:
 * this vector's D, or NULL), clamped (when `clamp`). max/min take the bound first so that a
 * NaN in v is what they return (propagated, like numpy). */
static inline __attribute__((always_inline)) VM_TARGET VF
T_EPI(VF v, VF alpha, VF bias, const float* dv, VF beta, VF lo, VF hi, int clamp) {
    v = VF_FMA(alpha, v, bias);
    if (dv) v = VF_FMA(beta, VF_LOAD(dv), v);
    return clamp ? VF_MIN(hi, VF_MAX(lo, v)) : v;
}

static inline __attribute__((always_inline)) VM_TARGET void
T_BODY(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
       float* restrict c, int64_t ldc, int acc, const f32_gemm_epi* e) {
    VF c0[T_MR], c1[T_MR];
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        c0[r] = VF_ZERO();
        c1[r] = VF_ZERO();
    }
    int64_t k = 0;
    if (T_SPLIT2(mr)) {
        /* 2 or 3 rows: 4-6 accumulator chains cannot cover the FMA latency (the loop would
         * run at one k step per FMA latency, below L3 bandwidth for a batch-2 GEMV), so
         * even and odd k go to separate accumulators, summed at the end */
        VF d0[T_MR], d1[T_MR];
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            d0[r] = VF_ZERO();
            d1[r] = VF_ZERO();
        }
        for (; k + 2 <= kc; k += 2) {
            const VF b0 = VF_LOAD(b), b1 = VF_LOAD(b + VM_LEN);
            const VF b2 = VF_LOAD(b + T_NR), b3 = VF_LOAD(b + T_NR + VM_LEN);
#pragma GCC unroll 16
            for (int r = 0; r < mr; ++r) {
                const VF av = VF_BCAST(a + r), aw = VF_BCAST(a + T_MR + r);
                c0[r] = VF_FMA(av, b0, c0[r]);
                c1[r] = VF_FMA(av, b1, c1[r]);
                d0[r] = VF_FMA(aw, b2, d0[r]);
                d1[r] = VF_FMA(aw, b3, d1[r]);
            }
            a += 2 * T_MR;
            b += 2 * T_NR;
        }
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            c0[r] = VF_ADD(c0[r], d0[r]);
            c1[r] = VF_ADD(c1[r], d1[r]);
        }
    }
#pragma GCC unroll 4
    for (; k < kc; ++k) {
        const VF b0 = VF_LOAD(b), b1 = VF_LOAD(b + VM_LEN);
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const VF av = VF_BCAST(a + r);
            c0[r] = VF_FMA(av, b0, c0[r]);
            c1[r] = VF_FMA(av, b1, c1[r]);
        }
        a += T_MR;
        b += T_NR;
    }
    if (acc) {
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            c0[r] = VF_ADD(c0[r], VF_LOAD(c + r * ldc));
            c1[r] = VF_ADD(c1[r], VF_LOAD(c + r * ldc + VM_LEN));
        }
    }
    if (e) {
        const VF al = VF_SET1(e->alpha), lo = VF_SET1(e->lo), hi = VF_SET1(e->hi);
        const VF be = VF_SET1(e->beta);
        const VF bc0 = e->bias_c ? VF_LOAD(e->bias_c) : VF_ZERO();
        const VF bc1 = e->bias_c ? VF_LOAD(e->bias_c + VM_LEN) : VF_ZERO();
        const int cl = e->lo != -INFINITY || e->hi != INFINITY;
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const VF br = e->bias_r ? VF_SET1(e->bias_r[r]) : VF_ZERO();
            const float* dr = e->d ? e->d + r * e->ldd : 0;
            c0[r] = T_EPI(c0[r], al, VF_ADD(bc0, br), dr, be, lo, hi, cl);
            c1[r] = T_EPI(c1[r], al, VF_ADD(bc1, br), dr ? dr + VM_LEN : 0, be, lo, hi, cl);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        VF_STORE(c + r * ldc, c0[r]);
        VF_STORE(c + r * ldc + VM_LEN, c1[r]);
    }
}

static inline __attribute__((always_inline)) VM_TARGET void
T_BODY1(int64_t kc, const float* restrict a, const float* restrict b, float* restrict c, int acc,
        const f32_gemm_epi* e) {
    VF s0 = VF_ZERO(), s1 = VF_ZERO(), s2 = VF_ZERO(), s3 = VF_ZERO();
    VF s4 = VF_ZERO(), s5 = VF_ZERO(), s6 = VF_ZERO(), s7 = VF_ZERO();
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const VF a0 = VF_BCAST(a), a1 = VF_BCAST(a + T_MR);
        const VF a2 = VF_BCAST(a + 2 * T_MR), a3 = VF_BCAST(a + 3 * T_MR);
        s0 = VF_FMA(a0, VF_LOAD(b), s0);
        s1 = VF_FMA(a0, VF_LOAD(b + VM_LEN), s1);
        s2 = VF_FMA(a1, VF_LOAD(b + T_NR), s2);
        s3 = VF_FMA(a1, VF_LOAD(b + T_NR + VM_LEN), s3);
        s4 = VF_FMA(a2, VF_LOAD(b + 2 * T_NR), s4);
        s5 = VF_FMA(a2, VF_LOAD(b + 2 * T_NR + VM_LEN), s5);
        s6 = VF_FMA(a3, VF_LOAD(b + 3 * T_NR), s6);
        s7 = VF_FMA(a3, VF_LOAD(b + 3 * T_NR + VM_LEN), s7);
        a += 4 * T_MR;
        b += 4 * T_NR;
    }
    for (; k < kc; ++k) {
        const VF a0 = VF_BCAST(a);
        s0 = VF_FMA(a0, VF_LOAD(b), s0);
        s1 = VF_FMA(a0, VF_LOAD(b + VM_LEN), s1);
        a += T_MR;
        b += T_NR;
    }
    s0 = VF_ADD(VF_ADD(s0, s2), VF_ADD(s4, s6));
    s1 = VF_ADD(VF_ADD(s1, s3), VF_ADD(s5, s7));
    if (acc) {
        s0 = VF_ADD(s0, VF_LOAD(c));
        s1 = VF_ADD(s1, VF_LOAD(c + VM_LEN));
    }
    if (e) {
        const VF al = VF_SET1(e->alpha), lo = VF_SET1(e->lo), hi = VF_SET1(e->hi);
        const VF be = VF_SET1(e->beta);
        const VF br = e->bias_r ? VF_SET1(e->bias_r[0]) : VF_ZERO();
        const VF bc0 = e->bias_c ? VF_LOAD(e->bias_c) : VF_ZERO();
        const VF bc1 = e->bias_c ? VF_LOAD(e->bias_c + VM_LEN) : VF_ZERO();
        const int cl = e->lo != -INFINITY || e->hi != INFINITY;
        s0 = T_EPI(s0, al, VF_ADD(bc0, br), e->d, be, lo, hi, cl);
        s1 = T_EPI(s1, al, VF_ADD(bc1, br), e->d ? e->d + VM_LEN : 0, be, lo, hi, cl);
    }
    VF_STORE(c, s0);
    VF_STORE(c + VM_LEN, s1);
}

/* Half-width tile (one vector of columns): the column edge of a matrix whose N leaves at
 * most VM_LEN columns in the last panel (e.g. 49 output pixels = 3 x 16 + 1). B keeps its
 * T_NR-wide packing. The arithmetic is exactly the full-width tile's (one FMA chain per row
 * in k order, the 4-way k split of T_BODY1 for a single row, the same epilogue), so a
 * column gives the same bits whichever panel it lands in: equal logits stay equal, which
 * a softmax over 1e30-sized logits turns into the difference between right and wrong. */
static inline __attribute__((always_inline)) VM_TARGET void
T_BODYH(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
        float* restrict c, int64_t ldc, int acc, const f32_gemm_epi* e) {
    VF c0[T_MR];
    if (mr == 1) {
        VF s0 = VF_ZERO(), s2 = VF_ZERO(), s4 = VF_ZERO(), s6 = VF_ZERO();
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            s0 = VF_FMA(VF_BCAST(a), VF_LOAD(b), s0);
            s2 = VF_FMA(VF_BCAST(a + T_MR), VF_LOAD(b + T_NR), s2);
            s4 = VF_FMA(VF_BCAST(a + 2 * T_MR), VF_LOAD(b + 2 * T_NR), s4);
            s6 = VF_FMA(VF_BCAST(a + 3 * T_MR), VF_LOAD(b + 3 * T_NR), s6);
            a += 4 * T_MR;
            b += 4 * T_NR;
        }
        for (; k < kc; ++k) {
            s0 = VF_FMA(VF_BCAST(a), VF_LOAD(b), s0);
            a += T_MR;
            b += T_NR;
        }
        c0[0] = VF_ADD(VF_ADD(s0, s2), VF_ADD(s4, s6));
    } else {
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) c0[r] = VF_ZERO();
        int64_t k = 0;
        if (T_SPLIT2(mr)) { /* the full-width tile's even/odd k split, same order */
            VF d0[T_MR];
#pragma GCC unroll 16
            for (int r = 0; r < mr; ++r) d0[r] = VF_ZERO();
            for (; k + 2 <= kc; k += 2) {
                const VF b0 = VF_LOAD(b), b2 = VF_LOAD(b + T_NR);
#pragma GCC unroll 16
                for (int r = 0; r < mr; ++r) {
                    c0[r] = VF_FMA(VF_BCAST(a + r), b0, c0[r]);
                    d0[r] = VF_FMA(VF_BCAST(a + T_MR + r), b2, d0[r]);
                }
                a += 2 * T_MR;
                b += 2 * T_NR;
            }
#pragma GCC unroll 16
            for (int r = 0; r < mr; ++r) c0[r] = VF_ADD(c0[r], d0[r]);
        }
#pragma GCC unroll 4
        for (; k < kc; ++k) {
            const VF b0 = VF_LOAD(b);
#pragma GCC unroll 16
            for (int r = 0; r < mr; ++r) c0[r] = VF_FMA(VF_BCAST(a + r), b0, c0[r]);
            a += T_MR;
            b += T_NR;
        }
    }
    if (acc) {
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) c0[r] = VF_ADD(c0[r], VF_LOAD(c + r * ldc));
    }
    if (e) {
        const VF al = VF_SET1(e->alpha), lo = VF_SET1(e->lo), hi = VF_SET1(e->hi);
        const VF be = VF_SET1(e->beta);
        const VF bc0 = e->bias_c ? VF_LOAD(e->bias_c) : VF_ZERO();
        const int cl = e->lo != -INFINITY || e->hi != INFINITY;
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const VF br = e->bias_r ? VF_SET1(e->bias_r[r]) : VF_ZERO();
            c0[r] = T_EPI(c0[r], al, VF_ADD(bc0, br), e->d ? e->d + r * e->ldd : 0, be, lo, hi,
                          cl);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) VF_STORE(c + r * ldc, c0[r]);
}

#define T_DEFINE_UKH(mr)                                                                       \
    static __attribute__((noinline)) VM_TARGET void T_UKH(mr)(                        \
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
    static __attribute__((noinline)) VM_TARGET void T_UK(mr)(                         \
        int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc,           \
        const f32_gemm_epi* e) {                                                               \
        T_BODY(mr, kc, a, b, c, ldc, acc, e);                                                  \
    }

static __attribute__((noinline)) VM_TARGET void T_UK(1)(
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

static VM_TARGET void T_TILE(int64_t kc, const float* a, const float* b,
                                                    float* c, int64_t ldc, int mr, int nr,
                                                    int acc, const f32_gemm_epi* e) {
    float t[T_MR * T_NR] __attribute__((aligned(64)));
    float dt[T_MR * T_NR] __attribute__((aligned(64)));
    f32_gemm_epi el;
    const int half = nr <= VM_LEN, width = half ? VM_LEN : T_NR;
    float* dst = c;
    int64_t ldd = ldc;
    if (nr != width) {
        /* partial tile: run the same kernel (same arithmetic, epilogue included) on a local
         * full-width tile holding the valid corner of C, then store that corner back */
        dst = t;
        ldd = width;
        for (int r = 0; r < mr; ++r)
            for (int j = 0; j < width; ++j) t[r * width + j] = (acc && j < nr) ? c[r * ldc + j] : 0.f;
        if (e && e->d) { /* the addend's valid corner, zero padded like the tile */
            for (int r = 0; r < mr; ++r)
                for (int j = 0; j < width; ++j) dt[r * width + j] = j < nr ? e->d[r * e->ldd + j] : 0.f;
            el = *e;
            el.d = dt;
            el.ldd = width;
            e = &el;
        }
    }
#define T_CASE(m)                                                                              \
    case m:                                                                                    \
        if (half)                                                                              \
            T_UKH(m)(kc, a, b, dst, ldd, acc, e);                                              \
        else                                                                                   \
            T_UK(m)(kc, a, b, dst, ldd, acc, e);                                               \
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
    if (dst == t)
        for (int r = 0; r < mr; ++r)
            for (int j = 0; j < nr; ++j) c[r * ldc + j] = t[r * width + j];
}

#undef T_MR
#undef T_NR
#undef T_DEFINE_UK
#undef T_DEFINE_UKH
#undef T_UK
#undef T_UKH
#undef T_BODYH
#undef T_EPI
#undef T_SPLIT2
#undef T_TILE
#undef T_BODY
#undef T_BODY1
#undef T_XSFX
#undef T_PASTE4_
#undef T_PASTE4
