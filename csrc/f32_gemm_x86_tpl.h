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

static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODY(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
       float* restrict c, int64_t ldc, int acc) {
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
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        VSTORE(c + r * ldc, c0[r]);
        VSTORE(c + r * ldc + T_VW, c1[r]);
    }
}

static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODY1(int64_t kc, const float* restrict a, const float* restrict b, float* restrict c, int acc) {
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
    VSTORE(c, s0);
    VSTORE(c + T_VW, s1);
}

/* Half-width tile (one vector of columns): the column edge of a matrix whose N leaves at
 * most T_VW columns in the last panel (e.g. 49 output pixels = 3 x 16 + 1). B keeps its
 * T_NR-wide packing; even and odd k accumulate separately to keep two chains per row. */
static inline __attribute__((always_inline, target(T_TARGET))) void
T_BODYH(const int mr, int64_t kc, const float* restrict a, const float* restrict b,
        float* restrict c, int64_t ldc, int acc) {
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
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r) {
        VEC v = VADD(c0[r], c1[r]);
        if (acc) v = VADD(v, VLOAD(c + r * ldc));
        VSTORE(c + r * ldc, v);
    }
}

#define T_DEFINE_UKH(mr)                                                                       \
    static __attribute__((noinline, target(T_TARGET))) void T_UKH(mr)(                        \
        int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc) {         \
        T_BODYH(mr, kc, a, b, c, ldc, acc);                                                    \
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
        int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc) {         \
        T_BODY(mr, kc, a, b, c, ldc, acc);                                                     \
    }

static __attribute__((noinline, target(T_TARGET))) void T_UK(1)(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int acc) {
    (void)ldc;
    T_BODY1(kc, a, b, c, acc);
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
                                                    int acc) {
    float t[T_MR * T_NR] __attribute__((aligned(64)));
    float* dst = c;
    int64_t ldd = ldc;
    int dacc = acc;
    if (nr <= T_VW) { /* narrow column edge: half-width tile */
        if (nr != T_VW) {
            dst = t;
            ldd = T_VW;
            dacc = 0;
        }
        switch (mr) {
        case 1: T_UKH(1)(kc, a, b, dst, ldd, dacc); break;
        case 2: T_UKH(2)(kc, a, b, dst, ldd, dacc); break;
        case 3: T_UKH(3)(kc, a, b, dst, ldd, dacc); break;
        case 4: T_UKH(4)(kc, a, b, dst, ldd, dacc); break;
        case 5: T_UKH(5)(kc, a, b, dst, ldd, dacc); break;
        case 6: T_UKH(6)(kc, a, b, dst, ldd, dacc); break;
#if T_MR >= 8
        case 7: T_UKH(7)(kc, a, b, dst, ldd, dacc); break;
        case 8: T_UKH(8)(kc, a, b, dst, ldd, dacc); break;
#endif
        default: return;
        }
        if (dst == t) f32_gemm_store_tile(t, T_VW, c, ldc, mr, nr, acc);
        return;
    }
    if (nr != T_NR) { /* column edge: full-width tile into t, then copy the valid part */
        dst = t;
        ldd = T_NR;
        dacc = 0;
    }
    switch (mr) {
    case 1: T_UK(1)(kc, a, b, dst, ldd, dacc); break;
    case 2: T_UK(2)(kc, a, b, dst, ldd, dacc); break;
    case 3: T_UK(3)(kc, a, b, dst, ldd, dacc); break;
    case 4: T_UK(4)(kc, a, b, dst, ldd, dacc); break;
    case 5: T_UK(5)(kc, a, b, dst, ldd, dacc); break;
    case 6: T_UK(6)(kc, a, b, dst, ldd, dacc); break;
#if T_MR >= 8
    case 7: T_UK(7)(kc, a, b, dst, ldd, dacc); break;
    case 8: T_UK(8)(kc, a, b, dst, ldd, dacc); break;
#endif
    default: return;
    }
    if (dst == t) f32_gemm_store_tile(t, T_NR, c, ldc, mr, nr, acc);
}

#undef T_DEFINE_UK
#undef T_DEFINE_UKH
#undef T_UK
#undef T_UKH
#undef T_BODYH
#undef T_TILE
#undef T_BODY
#undef T_BODY1
