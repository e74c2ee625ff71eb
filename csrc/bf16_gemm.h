/* bfloat16 GEMM with fp32 accumulation: the precision="bf16" option (kernels/gemm.pyx).
 *
 *   C[M, N] = act(alpha * bf16(A)[M, K] · bf16(B)[K, N] + bias + beta * D)
 *
 * Both operands are rounded to bfloat16 (round to nearest even) when they are packed: the
 * constant one at compile time, the run-time one (conv input through im2col, MatMul input
 * rows) per call; products and sums are fp32, C and the epilogue fp32 like f32_gemm.h's.
 *
 * One geometry, 32 x 32 blocks of C over K steps of 32 (uint16 elements, K padded with
 * zeros in both operands, rows / columns past the matrix edge zero):
 *   A layout  [ceil(M/32)][K32][32 rows][32 k]                 (an AMX A tile = 16 rows)
 *   B layout  [ceil(N/32)][K32][2 halves][16 k pairs][16 n][2] (an AMX B tile = one half:
 *             element (r, 2n + j) = B[32 kb + 2r + j][32 q + 16 h + n])
 * Forms (csrc/dsl_cpu.h DSL_KV_BGEMM): GENERIC (portable C, the same layouts and loop
 * order: the twin every machine tests), AVX512 (AVX-512 BF16: vdpbf16ps on a broadcast
 * A pair x 16 B column pairs, 8 x 32 register tiles) and, inside the AVX512 form, AMX
 * (tdpbf16ps: 2 x 2 tiles of 16 x 16 per K step) when the CPU has AMX-BF16, Linux grants
 * the tile data and bg_amx_enabled is set (DSL_AMX=0, tests).
 *
 * Loop nest of one rectangle (one operand prepacked, the other packed per chunk):
 *   chunk of the run-time operand (<= BG_CHUNK_BYTES of bf16, all of K, in L2) >
 *   prepacked 32-panel > K slice of BG_KS steps (the prepacked slice stays in L1) >
 *   run-time 32-panel of the chunk: block (C partial sums in fp32 scratch between slices)
 *   > epilogue of the prepacked panel's blocks
 * The run-time B goes through f32_gemm_pack.h's packers (strided or im2col) into an fp32
 * [kt][32] panel, then is rounded and pair-interleaved into the B layout. */
#ifndef BF16_GEMM_H
#define BF16_GEMM_H
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#include "dsl_simd.h"
#include "narrow_float.h"
#include "f32_gemm.h"

#define BG_T 32              /* block rows, columns and K step */
#define BG_BLK 1024          /* uint16 elements of one 32 x 32 block */
#define BG_KT 256            /* K rows of one fp32 B staging panel */
#define BG_CHUNK_BYTES (256 * 1024)
#define BG_KS 8              /* K steps per slice: a 16 KB slice of each operand in L1 */
#define BG_MAXP 8            /* run-time panels per chunk */

static inline int64_t bg_k32(int64_t K) { return K > 0 ? (K + BG_T - 1) / BG_T : 0; }

/* uint16 elements of a packed operand of `rows` rows (M for A, N for B) over K */
static inline int64_t bg_packed_elems(int64_t rows, int64_t K) {
    return (rows + BG_T - 1) / BG_T * bg_k32(K) * BG_BLK;
}

/* Rows (multiple of 32) of the run-time operand packed per chunk: all of K each. */
static inline int64_t bg_chunk_rows(int64_t rows, int64_t K) {
    const int64_t per = bg_k32(K) * BG_BLK * 2; /* bytes of one 32-row panel */
    int64_t n = per > 0 ? BG_CHUNK_BYTES / per : 8;
    const int64_t have = (rows + BG_T - 1) / BG_T;
    if (n < 1) n = 1;
    if (n > BG_MAXP) n = BG_MAXP;
    if (n > have) n = have > 0 ? have : 1;
    return n * BG_T;
}

/* Bytes of workspace one bg_gemm_range call needs for a run-time operand of `rows` rows:
 * the chunk, the fp32 staging panel, an fp32 32 x 32 block per chunk panel (64-byte
 * aligned parts). */
static inline int64_t bg_ws_bytes(int64_t rows, int64_t K) {
    return bg_chunk_rows(rows, K) * bg_k32(K) * BG_T * 2 + BG_KT * BG_T * 4 +
           BG_MAXP * BG_BLK * 4 + bg_k32(K) * 8 + 128;
}

/* ... and of a MatMul with both operands at run time: B's columns of the rectangle are
 * packed first (all of K), then it runs like a prepacked B. */
static inline int64_t bg_ws_bytes_both(int64_t M, int64_t N, int64_t K) {
    return bg_ws_bytes(M, K) + bg_packed_elems(N, K) * 2 + 64;
}

/* ---- packing (generic; the compile-time packers use these too) ----------------------- */

/* Rows [m0, m0 + mcount) of a[m * rsa + k * csa] (k < K) into A-layout panels at dst,
 * rows past mcount up to the next multiple of 32 and k past K zero. */
static void bg_pack_a__generic(const float* a, int64_t rsa, int64_t csa, int64_t m0,
                               int64_t mcount, int64_t K, uint16_t* dst) {
    const int64_t k32 = bg_k32(K), panels = (mcount + BG_T - 1) / BG_T;
    for (int64_t p = 0; p < panels; ++p)
        for (int64_t kb = 0; kb < k32; ++kb) {
            uint16_t* blk = dst + (p * k32 + kb) * BG_BLK;
            for (int r = 0; r < BG_T; ++r) {
                const int64_t m = p * BG_T + r;
                for (int c = 0; c < BG_T; ++c) {
                    const int64_t k = kb * BG_T + c;
                    blk[r * BG_T + c] = (m < mcount && k < K)
                                            ? dsl_f32_to_bf16(a[(m0 + m) * rsa + k * csa])
                                            : 0;
                }
            }
        }
}

/* Columns [n0, n0 + ncount) of b[k * rsb + n * csb] (k < K) into B-layout panels. */
static void bg_pack_b__generic(const float* b, int64_t rsb, int64_t csb, int64_t n0,
                               int64_t ncount, int64_t K, uint16_t* dst) {
    const int64_t k32 = bg_k32(K), panels = (ncount + BG_T - 1) / BG_T;
    for (int64_t q = 0; q < panels; ++q)
        for (int64_t kb = 0; kb < k32; ++kb) {
            uint16_t* blk = dst + (q * k32 + kb) * BG_BLK;
            for (int h = 0; h < 2; ++h)
                for (int r = 0; r < 16; ++r)
                    for (int n = 0; n < 16; ++n)
                        for (int j = 0; j < 2; ++j) {
                            const int64_t k = kb * BG_T + 2 * r + j, col = q * BG_T + 16 * h + n;
                            blk[h * 512 + r * 32 + n * 2 + j] =
                                (k < K && col < ncount)
                                    ? dsl_f32_to_bf16(b[k * rsb + (n0 + col) * csb])
                                    : 0;
                        }
        }
}

/* An fp32 staging panel src[kt][32] (rows k0 .. k0 + kt of one 32-column panel, k0 a
 * multiple of 32) into the panel's B-layout blocks from block k0 / 32 on: rows past kt
 * (the end of K) zero. */
static void bg_cvt_b__generic(const float* src, int64_t kt, uint16_t* blk0) {
    const int64_t nb = (kt + BG_T - 1) / BG_T;
    for (int64_t kb = 0; kb < nb; ++kb) {
        uint16_t* blk = blk0 + kb * BG_BLK;
        for (int h = 0; h < 2; ++h)
            for (int r = 0; r < 16; ++r)
                for (int n = 0; n < 16; ++n)
                    for (int j = 0; j < 2; ++j) {
                        const int64_t k = kb * BG_T + 2 * r + j;
                        blk[h * 512 + r * 32 + n * 2 + j] =
                            k < kt ? dsl_f32_to_bf16(src[k * BG_T + 16 * h + n]) : 0;
                    }
    }
}

/* ---- blocks: c[32][32] (+)= A panel . B over ns K steps ---------------------------------
 * A: the prepacked A layout (1024 elements per step). B: K step kk's 16 k-pair rows start
 * at b + koff[kk], ldb elements apart, columns 16..31 hoff elements after 0..15 (the B
 * layout: koff[kk] = 1024 kk, ldb 32, hoff 512; a conv window: rows are channel pairs of
 * the pair-interleaved input, hoff 32). acc: add to c instead of overwriting it. */

static void bg_block__generic(const uint16_t* a, const uint16_t* b, const int64_t* koff,
                              int64_t ldb, int64_t hoff, int64_t ns, float* c, int acc) {
    if (!acc)
        for (int i = 0; i < BG_BLK; ++i) c[i] = 0.f;
    for (int64_t kb = 0; kb < ns; ++kb) {
        const uint16_t* ak = a + kb * BG_BLK;
        const uint16_t* bk = b + koff[kb];
        for (int m = 0; m < BG_T; ++m)
            for (int r = 0; r < 16; ++r) {
                const float a0 = dsl_bf16_to_f32(ak[m * BG_T + 2 * r]);
                const float a1 = dsl_bf16_to_f32(ak[m * BG_T + 2 * r + 1]);
                for (int h = 0; h < 2; ++h)
                    for (int n = 0; n < 16; ++n) {
                        const uint16_t* bp = bk + r * ldb + h * hoff + n * 2;
                        c[m * BG_T + 16 * h + n] +=
                            a0 * dsl_bf16_to_f32(bp[0]) + a1 * dsl_bf16_to_f32(bp[1]);
                    }
            }
    }
}

/* ---- stride-1 convolution windows (no im2col) ------------------------------------------
 * Output pixels are indexed on the zero-padded grid: position q = oh * Wp + ow (Wp = OW +
 * (KW - 1) DW; ow >= OW are computed and dropped), so tap (kh, kw) of position q reads the
 * padded input at q + kh DH Wp + kw DW: one offset per K step for 16 consecutive
 * positions. A window holds padded positions [f0, f0 + lw) of the input as pairs of
 * channels, one 32-bit word (channel 2 cp, 2 cp + 1 as bf16) per position, a row of ldw
 * words per channel pair: 16 rows of a window are an AMX B tile as they are. K runs over
 * (tap, 32-channel block): the weights are packed [Cout][taps][Cp] (Cp = Cin rounded up to
 * 32, zero weights past Cin). */
typedef struct {
    const float* x; /* the image's first channel, NCHW */
    int64_t Cin, Cp, H, W, KH, KW, PH, PW, DH, DW, OH, OW, Wp;
    int64_t SH, SW; /* stride (> 1 only undilated): the window holds phase planes */
} bg_win_geom;

/* A stride S conv is S x S stride-1 convs over phase planes: phase (a, b) of the padded
 * input is element (S i + a, S j + b); tap (kh, kw) reads phase (kh % SH, kw % SW) at
 * (kh / SH, kw / SW). Only the phases some tap reads are held: min(S, K) per axis (a 1x1
 * stride-2 conv holds phase (0, 0) alone). Stride 1 has one phase and taps at kh DH Wp +
 * kw DW. Wp = OW + ((KW - 1) DW) / SW. */
static inline int64_t bg_win_phases_h(const bg_win_geom* g) { return g->SH < g->KH ? g->SH : g->KH; }
static inline int64_t bg_win_phases_w(const bg_win_geom* g) { return g->SW < g->KW ? g->SW : g->KW; }
static inline int64_t bg_win_phases(const bg_win_geom* g) {
    return bg_win_phases_h(g) * bg_win_phases_w(g);
}

static inline int64_t bg_win_halo(const bg_win_geom* g) {
    return ((g->KH - 1) * g->DH) / g->SH * g->Wp + ((g->KW - 1) * g->DW) / g->SW;
}

/* Positions (multiple of 32) per window chunk: the window within ~BG_WIN_BYTES. */
#define BG_WIN_BYTES (384 * 1024)
#ifndef BG_WIN_MAXPOS
#define BG_WIN_MAXPOS 512
#endif
static inline int64_t bg_win_chunk(const bg_win_geom* g, int64_t positions) {
    const int64_t per = g->Cp * 2 * bg_win_phases(g); /* bytes per window position */
    int64_t p = (BG_WIN_BYTES / (per > 0 ? per : 1) - bg_win_halo(g)) / BG_T * BG_T;
    const int64_t all = (positions + BG_T - 1) / BG_T * BG_T;
    if (p < 4 * BG_T) p = 4 * BG_T;
    if (p > BG_WIN_MAXPOS) p = BG_WIN_MAXPOS;
    return p < all ? p : all;
}

static inline int64_t bg_win_ldw(const bg_win_geom* g, int64_t chunk) {
    return (chunk + bg_win_halo(g) + 15) / 16 * 16 + 16; /* 64-byte rows, +1 line of slack */
}

/* Workspace bytes of one bg_conv_window_range call over `positions` positions. */
static inline int64_t bg_win_ws_bytes(const bg_win_geom* g, int64_t positions) {
    const int64_t chunk = bg_win_chunk(g, positions);
    return g->Cp / 2 * bg_win_phases(g) * bg_win_ldw(g, chunk) * 4 + BG_MAXP * BG_BLK * 4 +
           g->KH * g->KW * (g->Cp / BG_T) * 8 + 128;
}

/* Padded positions [f0, f0 + lw) of channel pairs [0, Cp / 2) and phases into win (row
 * (pair, phase) at (pair * phases + phase) * ldw words): zero outside the image and past
 * Cin. */
static void bg_win_fill__generic(const bg_win_geom* g, int64_t f0, int64_t lw, int64_t ldw,
                                 uint32_t* win) {
    const int64_t hw = g->H * g->W, npw = bg_win_phases_w(g), nph = bg_win_phases(g);
    for (int64_t r = 0; r < g->Cp / 2 * nph; ++r) {
        const int64_t cp = r / nph, pa = (r % nph) / npw, pb = (r % nph) % npw;
        const float* x0 = 2 * cp < g->Cin ? g->x + 2 * cp * hw : 0;
        const float* x1 = 2 * cp + 1 < g->Cin ? g->x + (2 * cp + 1) * hw : 0;
        uint32_t* row = win + r * ldw;
        for (int64_t w = 0; w < lw; ++w) {
            const int64_t f = f0 + w;
            const int64_t ih = (f / g->Wp) * g->SH + pa - g->PH, iw = (f % g->Wp) * g->SW + pb - g->PW;
            uint32_t v = 0;
            if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W) {
                const int64_t o = ih * g->W + iw;
                v = (uint32_t)(x0 ? dsl_f32_to_bf16(x0[o]) : 0) |
                    ((uint32_t)(x1 ? dsl_f32_to_bf16(x1[o]) : 0) << 16);
            }
            row[w] = v;
        }
    }
}

typedef void (*bg_win_fill_fn)(const bg_win_geom*, int64_t, int64_t, int64_t, uint32_t*);

/* ---- epilogue: the valid mr x nr corner of c[32][32] into C -------------------------- */
static void bg_epi__generic(float* c, float* y, int64_t ldy, int mr, int nr,
                            const f32_gemm_epi* e) {
    f32_gemm_store_tile(c, BG_T, y, ldy, mr, nr, 0, e);
}

typedef void (*bg_block_fn)(const uint16_t*, const uint16_t*, const int64_t*, int64_t, int64_t,
                            int64_t, float*, int);
typedef void (*bg_pack_a_fn)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             uint16_t*);
typedef void (*bg_cvt_b_fn)(const float*, int64_t, uint16_t*);
typedef void (*bg_epi_fn)(float*, float*, int64_t, int, int, const f32_gemm_epi*);

/* ---- AVX-512 BF16 and AMX ---------------------------------------------------------- */
static int bg_amx_state = -1;      /* -1 not probed, 0 no, 1 yes */
static int bg_amx_enabled = 1;
static uint64_t bg_amx_runs = 0;  /* rectangles run on AMX (tests) */

#if defined(DSL_SIMD_X86) && defined(__linux__)
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>
#define BG_HAVE_X86 1
#define DSL_TARGET_BF16 DSL_TARGET_AVX512 ",avx512bf16"
#define BG_BF16 static __attribute__((target(DSL_TARGET_BF16)))
#define BG_BF16_INL static inline __attribute__((always_inline, target(DSL_TARGET_BF16)))
#define BG_AMX static __attribute__((target(DSL_TARGET_AMX_BF16)))

static inline int bg_amx_usable(void) {
    int st = __atomic_load_n(&bg_amx_state, __ATOMIC_ACQUIRE);
    if (st < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        st = 0;
        /* CPUID.7.0:EDX bit 22 AMX-BF16, bit 24 AMX-TILE */
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22)) && (d & (1u << 24)) &&
            dsl_cpu_has_avx512bf16() &&
            syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0)
            st = 1;
        __atomic_store_n(&bg_amx_state, st, __ATOMIC_RELEASE);
    }
    return st;
}

typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} bg_tilecfg;

/* a constant object in memory (gcc does not model ldtilecfg's read of a stack buffer) */
static const bg_tilecfg bg_tile_config __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

BG_AMX void bg_amx_begin(void) {
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&bg_tile_config);
}

BG_AMX void bg_amx_end(void) { _tile_release(); }

/* C tiles 0-3 (rows 0-15 / 16-31 x columns 0-15 / 16-31), A 4-5, B 6-7 */
BG_AMX void bg_block__amx(const uint16_t* a, const uint16_t* b, const int64_t* koff,
                          int64_t ldb, int64_t hoff, int64_t ns, float* c, int acc) {
    const int64_t stride = ldb * 2;
    if (acc) {
        _tile_loadd(0, c, BG_T * 4);
        _tile_loadd(1, c + 16, BG_T * 4);
        _tile_loadd(2, c + 16 * BG_T, BG_T * 4);
        _tile_loadd(3, c + 16 * BG_T + 16, BG_T * 4);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t kb = 0; kb < ns; ++kb) {
        const uint16_t* ak = a + kb * BG_BLK;
        const uint16_t* bk = b + koff[kb];
        _tile_loadd(4, ak, 64);
        _tile_loadd(6, bk, stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, bk + hoff, stride);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, ak + 512, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, BG_T * 4);
    _tile_stored(1, c + 16, BG_T * 4);
    _tile_stored(2, c + 16 * BG_T, BG_T * 4);
    _tile_stored(3, c + 16 * BG_T + 16, BG_T * 4);
}

/* 8 rows at a time: 16 accumulators, a pair of A broadcast against 2 x 16 B column pairs */
BG_BF16 void bg_block__avx512(const uint16_t* a, const uint16_t* b, const int64_t* koff,
                              int64_t ldb, int64_t hoff, int64_t ns, float* c, int add) {
    for (int g = 0; g < BG_T; g += 8) {
        __m512 acc[8][2];
        for (int i = 0; i < 8; ++i) {
            acc[i][0] = add ? _mm512_loadu_ps(c + (g + i) * BG_T) : _mm512_setzero_ps();
            acc[i][1] = add ? _mm512_loadu_ps(c + (g + i) * BG_T + 16) : _mm512_setzero_ps();
        }
        for (int64_t kb = 0; kb < ns; ++kb) {
            const uint16_t* ak = a + kb * BG_BLK + g * BG_T;
            const uint16_t* bk = b + koff[kb];
            for (int r = 0; r < 16; ++r) {
                const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void*)(bk + r * ldb));
                const __m512bh b1 =
                    (__m512bh)_mm512_loadu_si512((const void*)(bk + r * ldb + hoff));
                for (int i = 0; i < 8; ++i) {
                    uint32_t w;
                    memcpy(&w, ak + i * BG_T + 2 * r, 4);
                    const __m512bh av = (__m512bh)_mm512_set1_epi32((int)w);
                    acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
                    acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
                }
            }
        }
        for (int i = 0; i < 8; ++i) {
            _mm512_storeu_ps(c + (g + i) * BG_T, acc[i][0]);
            _mm512_storeu_ps(c + (g + i) * BG_T + 16, acc[i][1]);
        }
    }
}

/* 32 floats (n valid, the rest zero) rounded to 32 bf16 */
BG_BF16_INL __m512i bg_cvt32(const float* s, int n) {
    const __mmask16 m0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
    const int n1 = n - 16;
    const __mmask16 m1 = n1 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n1 > 0 ? n1 : 0)) - 1u);
    const __m512 lo = _mm512_maskz_loadu_ps(m0, s), hi = _mm512_maskz_loadu_ps(m1, s + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

BG_BF16 void bg_pack_a__avx512(const float* a, int64_t rsa, int64_t csa, int64_t m0,
                               int64_t mcount, int64_t K, uint16_t* dst) {
    if (csa != 1) {
        bg_pack_a__generic(a, rsa, csa, m0, mcount, K, dst);
        return;
    }
    const int64_t k32 = bg_k32(K), panels = (mcount + BG_T - 1) / BG_T;
    for (int64_t p = 0; p < panels; ++p)
        for (int r = 0; r < BG_T; ++r) {
            const int64_t m = p * BG_T + r;
            const float* row = a + (m0 + m) * rsa;
            for (int64_t kb = 0; kb < k32; ++kb) {
                uint16_t* o = dst + (p * k32 + kb) * BG_BLK + r * BG_T;
                const int64_t left = K - kb * BG_T;
                const __m512i v = m < mcount ? bg_cvt32(row + kb * BG_T, left > 32 ? 32 : (int)left)
                                             : _mm512_setzero_si512();
                _mm512_storeu_si512((void*)o, v);
            }
        }
}

BG_BF16 void bg_cvt_b__avx512(const float* src, int64_t kt, uint16_t* blk0) {
    /* [lo 16 of row k | lo 16 of row k + 1] -> (n, j) pairs */
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i idx = _mm512_loadu_si512((const void*)order);
    const int64_t nb = (kt + BG_T - 1) / BG_T;
    for (int64_t kb = 0; kb < nb; ++kb) {
        uint16_t* blk = blk0 + kb * BG_BLK;
        for (int r = 0; r < 16; ++r) {
            const int64_t k = kb * BG_T + 2 * r;
            const float* s0 = src + k * BG_T;
            for (int h = 0; h < 2; ++h) {
                const __m512 x0 = k < kt ? _mm512_loadu_ps(s0 + 16 * h) : _mm512_setzero_ps();
                const __m512 x1 = k + 1 < kt ? _mm512_loadu_ps(s0 + BG_T + 16 * h)
                                             : _mm512_setzero_ps();
                const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                _mm512_storeu_si512((void*)(blk + h * 512 + r * 32),
                                    _mm512_permutexvar_epi16(idx, v));
            }
        }
    }
}

BG_BF16 void bg_epi__avx512(float* c, float* y, int64_t ldy, int mr, int nr,
                            const f32_gemm_epi* e) {
    const __mmask16 k0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    const __mmask16 k1 = nr >= 32 ? (__mmask16)0xffff
                                  : (nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : 0);
    const __m512 al = _mm512_set1_ps(e ? e->alpha : 1.f);
    const __m512 lo = _mm512_set1_ps(e ? e->lo : -INFINITY), hi = _mm512_set1_ps(e ? e->hi : INFINITY);
    const __m512 be = _mm512_set1_ps(e ? e->beta : 0.f);
    __m512 bc0 = _mm512_setzero_ps(), bc1 = _mm512_setzero_ps();
    if (e && e->bias_c) {
        bc0 = _mm512_maskz_loadu_ps(k0, e->bias_c);
        bc1 = _mm512_maskz_loadu_ps(k1, e->bias_c + 16);
    }
    for (int r = 0; r < mr; ++r) {
        __m512 v0 = _mm512_maskz_loadu_ps(k0, c + r * BG_T);
        __m512 v1 = _mm512_maskz_loadu_ps(k1, c + r * BG_T + 16);
        if (e) {
            const __m512 br = _mm512_set1_ps(e->bias_r ? e->bias_r[r] : 0.f);
            v0 = _mm512_fmadd_ps(al, v0, _mm512_add_ps(br, bc0));
            v1 = _mm512_fmadd_ps(al, v1, _mm512_add_ps(br, bc1));
            if (e->d) {
                const float* dr = e->d + r * e->ldd;
                v0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(k0, dr), v0);
                v1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(k1, dr + 16), v1);
            }
            v0 = _mm512_min_ps(hi, _mm512_max_ps(lo, v0)); /* NaN in v stays NaN */
            v1 = _mm512_min_ps(hi, _mm512_max_ps(lo, v1));
        }
        _mm512_mask_storeu_ps(y + r * ldy, k0, v0);
        _mm512_mask_storeu_ps(y + r * ldy + 16, k1, v1);
    }
}
/* n pair words from two fp32 rows (x1 NULL: zero high halves) */
BG_BF16_INL void bg_pairs(const float* x0, const float* x1, int64_t n, uint32_t* o,
                          __m512i idx) {
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t left = n - j;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        const __m512 v0 = _mm512_maskz_loadu_ps(m, x0 + j);
        const __m512 v1 = x1 ? _mm512_maskz_loadu_ps(m, x1 + j) : _mm512_setzero_ps();
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);
        _mm512_mask_storeu_epi32((void*)(o + j), m, _mm512_permutexvar_epi16(idx, v));
    }
}

BG_BF16_INL void bg_zero_words(uint32_t* o, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t left = n - j;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        _mm512_mask_storeu_epi32((void*)(o + j), m, _mm512_setzero_si512());
    }
}

/* n pair words from two fp32 rows read at stride 2 (x1 NULL: zero high halves) */
BG_BF16_INL void bg_pairs_s2(const float* x0, const float* x1, int64_t n, uint32_t* o,
                             __m512i idx) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t left = n - j;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        /* elements 2 i < 2 left: the first vector covers i < 8, the second i >= 8 */
        const int64_t e = 2 * (left < 16 ? left : 16) - 1; /* last element read + 1 */
        const __mmask16 la = e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << e) - 1u);
        const __mmask16 lb = e > 16 ? (__mmask16)((1u << (e - 16 < 16 ? e - 16 : 16)) - 1u) : 0;
        const float* s0 = x0 + 2 * j;
        const __m512 v0 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(la, s0), even,
                                                 _mm512_maskz_loadu_ps(lb, s0 + 16));
        __m512 v1 = _mm512_setzero_ps();
        if (x1) {
            const float* s1 = x1 + 2 * j;
            v1 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(la, s1), even,
                                        _mm512_maskz_loadu_ps(lb, s1 + 16));
        }
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);
        _mm512_mask_storeu_epi32((void*)(o + j), m, _mm512_permutexvar_epi16(idx, v));
    }
}

BG_BF16 void bg_win_fill__avx512(const bg_win_geom* g, int64_t f0, int64_t lw, int64_t ldw,
                                 uint32_t* win) {
    if (g->SW > 2) {
        bg_win_fill__generic(g, f0, lw, ldw, win);
        return;
    }
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i idx = _mm512_loadu_si512((const void*)order);
    const int64_t hw = g->H * g->W, npw = bg_win_phases_w(g), nph = bg_win_phases(g);
    const int64_t S = g->SW;
    for (int64_t r = 0; r < g->Cp / 2 * nph; ++r) {
        const int64_t cp = r / nph, pa = (r % nph) / npw, pb = (r % nph) % npw;
        uint32_t* row = win + r * ldw;
        if (2 * cp >= g->Cin) {
            bg_zero_words(row, lw);
            continue;
        }
        const float* x0 = g->x + 2 * cp * hw;
        const float* x1 = 2 * cp + 1 < g->Cin ? x0 + hw : 0;
        int64_t w = 0;
        while (w < lw) { /* one row of the phase plane at a time */
            const int64_t f = f0 + w, i = f / g->Wp, j = f % g->Wp;
            int64_t seg = g->Wp - j;
            if (seg > lw - w) seg = lw - w;
            const int64_t ih = i * g->SH + pa - g->PH;
            uint32_t* o = row + w;
            if (ih < 0 || ih >= g->H) {
                bg_zero_words(o, seg);
            } else {
                /* column j + t reads iw = (j + t) S + pb - PW: valid for t in [a, e) */
                const int64_t c0 = j * S + pb - g->PW;
                int64_t a = c0 >= 0 ? 0 : (-c0 + S - 1) / S;
                int64_t e = g->W - c0 > 0 ? (g->W - c0 + S - 1) / S : 0;
                a = a > seg ? seg : a;
                e = e < a ? a : (e > seg ? seg : e);
                if (a) bg_zero_words(o, a);
                const int64_t src = ih * g->W + c0 + a * S;
                if (e > a) {
                    if (S == 1)
                        bg_pairs(x0 + src, x1 ? x1 + src : 0, e - a, o + a, idx);
                    else
                        bg_pairs_s2(x0 + src, x1 ? x1 + src : 0, e - a, o + a, idx);
                }
                if (seg > e) bg_zero_words(o + e, seg - e);
            }
            w += seg;
        }
    }
}
/* Peak probes (benchmarks/kernels.py): `iters` rounds of 4 tdpbf16ps (2 x 2 tiles) on
 * L1-resident operands / 16 independent vdpbf16ps; returns the FLOPs done. */
BG_AMX double bg_amx_peak(int64_t iters, float* sink) {
    static uint16_t a[1024] __attribute__((aligned(64))), b[1024] __attribute__((aligned(64)));
    float c[256] __attribute__((aligned(64)));
    bg_amx_begin();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a + 512, 64);
    _tile_loadd(6, b, 64);
    _tile_loadd(7, b + 512, 64);
    for (int64_t i = 0; i < iters; ++i) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    bg_amx_end();
    *sink = c[0];
    return (double)iters * 4 * 16 * 16 * 32 * 2;
}

BG_BF16 double bg_dpbf16_peak(int64_t iters, float* sink) {
    __m512 acc[16];
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = x;
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __m512 t = acc[0];
    for (int i = 1; i < 16; ++i) t = _mm512_add_ps(t, acc[i]);
    *sink = _mm512_reduce_add_ps(t);
    return (double)iters * 16 * 16 * 2 * 2;
}
#else
static inline double bg_amx_peak(int64_t iters, float* sink) { (void)iters; *sink = 0; return 0; }
static inline double bg_dpbf16_peak(int64_t iters, float* sink) { (void)iters; *sink = 0; return 0; }
static inline int bg_amx_usable(void) { return 0; }
#endif

static inline int bg_amx_on(void) { return bg_amx_enabled && bg_amx_usable(); }

typedef struct {
    int form, amx;
    bg_block_fn block;
    bg_pack_a_fn pack_a;
    bg_cvt_b_fn cvt_b;
    bg_epi_fn epi;
    bg_win_fill_fn win_fill;
} bg_kernel;

static inline void bg_select(int cap, bg_kernel* k) {
    k->form = dsl_form_bf16(0, cap);
    k->amx = 0;
    k->block = bg_block__generic;
    k->pack_a = bg_pack_a__generic;
    k->cvt_b = bg_cvt_b__generic;
    k->epi = bg_epi__generic;
    k->win_fill = bg_win_fill__generic;
#ifdef BG_HAVE_X86
    if (k->form == DSL_FORM_AVX512) {
        k->block = bg_block__avx512;
        k->pack_a = bg_pack_a__avx512;
        k->cvt_b = bg_cvt_b__avx512;
        k->epi = bg_epi__avx512;
        k->win_fill = bg_win_fill__avx512;
        if (bg_amx_on()) {
            k->amx = 1;
            k->block = bg_block__amx;
        }
    }
#endif
}

/* B's columns [n0, n1) (run time: strided or im2col) into B-layout panels at pk. */
static void bg_pack_b_runtime(const f32_gemm_desc* d, const bg_kernel* bk, int64_t n0,
                              int64_t n1, float* stage, uint16_t* pk) {
    const int64_t K = d->K, pstride = bg_k32(K) * BG_BLK;
    for (int64_t q = 0; q * BG_T < n1 - n0; ++q) {
        const int64_t j0 = n0 + q * BG_T, jn = n1 - j0 < BG_T ? n1 - j0 : BG_T;
        for (int64_t pc = 0; pc < K; pc += BG_KT) {
            const int64_t kt = K - pc < BG_KT ? K - pc : BG_KT;
            if (d->b_kind == F32_GEMM_B_STRIDED)
                d->k.pack_b(d->b, d->rsb, d->csb, pc, kt, j0, jn, BG_T, stage);
            else
                d->k.pack_im2col(&d->conv, pc, kt, j0, jn, BG_T, stage);
            bk->cvt_b(stage, kt, pk + q * pstride + (pc / BG_T) * BG_BLK);
        }
    }
}

/* C[m0:m1, n0:n1] of the product described by d (f32_gemm.h's descriptor; a / b point at
 * bf16 layouts when prepacked). m0 / n0 must be multiples of 32 on a prepacked side. With
 * both operands at run time (MatMul) B's columns are packed first. ws: bg_ws_bytes of the
 * run-time side's extent (bg_ws_bytes_both for a MatMul). */
static void bg_gemm_range(const f32_gemm_desc* d, const bg_kernel* bk, int64_t m0, int64_t m1,
                          int64_t n0, int64_t n1, char* ws) {
    const int64_t K = d->K, k32 = bg_k32(K), pstride = k32 * BG_BLK, rsc = d->rsc;
    const int a_rt = d->a_kind != F32_GEMM_A_PACKED;
    const int both = a_rt && d->b_kind != F32_GEMM_B_PACKED;
    const int64_t rt_rows = a_rt ? m1 - m0 : n1 - n0;
    const int64_t chunk = bg_chunk_rows(rt_rows, K);
    uint16_t* pk = (uint16_t*)ws;
    float* stage = (float*)(ws + ((chunk * k32 * BG_T * 2 + 63) / 64) * 64);
    float* cbuf = stage + BG_KT * BG_T; /* BG_MAXP blocks */
    int64_t* koff = (int64_t*)(cbuf + BG_MAXP * BG_BLK);
    uint16_t* bpk = (uint16_t*)(ws + ((bg_ws_bytes(rt_rows, K) + 63) / 64) * 64);
    const int post = f32_gemm_needs_post(d), fuse_d = f32_gemm_fuse_d(d);
    const f32_gemm_epi e0 = f32_gemm_tile_epi(d);
    const int need_epi = e0.alpha != 1.f || d->bias_mode != F32_GEMM_BIAS_NONE ||
                         e0.lo != -INFINITY || e0.hi != INFINITY || fuse_d;
    f32_gemm_epi e;
    if (m0 >= m1 || n0 >= n1) return;
    for (int64_t kk = 0; kk < k32; ++kk) koff[kk] = kk * BG_BLK;
    if (both) bg_pack_b_runtime(d, bk, n0, n1, stage, bpk);
#ifdef BG_HAVE_X86
    if (bk->amx) bg_amx_begin();
#endif
    for (int64_t c0 = a_rt ? m0 : n0; c0 < (a_rt ? m1 : n1); c0 += chunk) {
        const int64_t cn = ((a_rt ? m1 : n1) - c0) < chunk ? ((a_rt ? m1 : n1) - c0) : chunk;
        const int64_t cp = (cn + BG_T - 1) / BG_T; /* run-time panels in the chunk */
        /* pack the chunk, all of K */
        if (a_rt)
            bk->pack_a(d->a, d->rsa, d->csa, c0, cn, K, pk);
        else
            bg_pack_b_runtime(d, bk, c0, c0 + cn, stage, pk);
        /* the prepacked side's panels over [lo, hi) (packed above from n0 when both) */
        const int64_t lo = a_rt ? n0 : m0, hi = a_rt ? n1 : m1, origin = both ? n0 : 0;
        const uint16_t* pre = both ? bpk
                                   : (const uint16_t*)(a_rt ? (const void*)d->b : (const void*)d->a);
        for (int64_t s = lo; s < hi; s += BG_T) {
            const uint16_t* sp = pre + ((s - origin) / BG_T) * pstride;
            const int sn = (int)(hi - s < BG_T ? hi - s : BG_T);
            int64_t ks = 0;
            do { /* (one pass with no K step for K = 0: the blocks are zero) */
                const int64_t ns = k32 - ks < BG_KS ? k32 - ks : BG_KS;
                for (int64_t q = 0; q < cp; ++q) {
                    const uint16_t* rp = pk + q * pstride;
                    if (a_rt)
                        bk->block(rp + ks * BG_BLK, sp, koff + ks, BG_T, 512, ns,
                                  cbuf + q * BG_BLK, ks > 0);
                    else
                        bk->block(sp + ks * BG_BLK, rp, koff + ks, BG_T, 512, ns,
                                  cbuf + q * BG_BLK, ks > 0);
                }
                ks += ns;
            } while (ks < k32);
            for (int64_t q = 0; q < cp; ++q) {
                const int64_t r0 = c0 + q * BG_T;
                const int rn = (int)(c0 + cn - r0 < BG_T ? c0 + cn - r0 : BG_T);
                const int64_t m = a_rt ? r0 : s, n = a_rt ? s : r0;
                const int mr = a_rt ? rn : sn, nr = a_rt ? sn : rn;
                float* cblk = cbuf + q * BG_BLK;
                const f32_gemm_epi* ep = 0;
                if (need_epi) {
                    e = e0;
                    if (d->bias_mode == F32_GEMM_BIAS_ROW) e.bias_r = d->bias + m;
                    if (d->bias_mode == F32_GEMM_BIAS_COL) e.bias_c = d->bias + n;
                    if (fuse_d) e.d = d->d + m * d->rsd + n;
                    ep = &e;
                }
                bk->epi(cblk, d->c + m * rsc + n, rsc, mr, nr, ep);
                if (post) f32_gemm_post(d, m, mr, n, nr);
            }
        }
    }
#ifdef BG_HAVE_X86
    if (bk->amx) {
        bg_amx_end();
        __atomic_fetch_add(&bg_amx_runs, 1, __ATOMIC_RELAXED);
    }
#endif
}
/* Output channels [m0, m1) x padded positions [q0, q1) (q0 a multiple of 32) of a stride-1
 * convolution of one image: d's A is the prepacked [Cout][taps][Cp] weights, C / D / bias
 * as a conv's (Y[co * rsc + pixel]). ws: bg_win_ws_bytes over the step's positions. */
static void bg_conv_window_range(const f32_gemm_desc* d, const bg_kernel* bk,
                                 const bg_win_geom* g, int64_t m0, int64_t m1, int64_t q0,
                                 int64_t q1, char* ws) {
    const int64_t np_all = g->OH * g->Wp, nsteps = g->KH * g->KW * (g->Cp / BG_T);
    const int64_t chunk = bg_win_chunk(g, np_all), ldw = bg_win_ldw(g, chunk);
    const int64_t halo = bg_win_halo(g), pstride = nsteps * BG_BLK, rsc = d->rsc;
    uint32_t* win = (uint32_t*)ws;
    float* cbuf = (float*)(ws + ((g->Cp / 2 * bg_win_phases(g) * ldw * 4 + 63) / 64) * 64);
    int64_t* koff = (int64_t*)(cbuf + BG_MAXP * BG_BLK);
    const int post = f32_gemm_needs_post(d), fuse_d = f32_gemm_fuse_d(d);
    const f32_gemm_epi e0 = f32_gemm_tile_epi(d);
    const int need_epi = e0.alpha != 1.f || d->bias_mode != F32_GEMM_BIAS_NONE ||
                         e0.lo != -INFINITY || e0.hi != INFINITY || fuse_d;
    f32_gemm_epi e;
    if (q1 > np_all) q1 = np_all;
    if (m0 >= m1 || q0 >= q1) return;
    const int64_t nph = bg_win_phases(g), npw = bg_win_phases_w(g);
    { /* K step (tap, channel block) -> its rows' offset in a window, in uint16 elements */
        int64_t kk = 0;
        for (int64_t kh = 0; kh < g->KH; ++kh)
            for (int64_t kw = 0; kw < g->KW; ++kw) {
                const int64_t th = kh * g->DH, tw = kw * g->DW;
                const int64_t phase = (th % g->SH) * npw + tw % g->SW;
                for (int64_t cb = 0; cb < g->Cp / BG_T; ++cb, ++kk)
                    koff[kk] = 2 * ((cb * 16 * nph + phase) * ldw + (th / g->SH) * g->Wp +
                                    tw / g->SW);
            }
    }
#ifdef BG_HAVE_X86
    if (bk->amx) bg_amx_begin();
#endif
    for (int64_t c0 = q0; c0 < q1; c0 += chunk) {
        const int64_t cn = q1 - c0 < chunk ? q1 - c0 : chunk;
        const int64_t cp = (cn + BG_T - 1) / BG_T;
        bk->win_fill(g, c0, cp * BG_T + halo, ldw, win);
        for (int64_t s = m0; s < m1; s += BG_T) {
            const uint16_t* sp = (const uint16_t*)(const void*)d->a + (s / BG_T) * pstride;
            const int mr = (int)(m1 - s < BG_T ? m1 - s : BG_T);
            for (int64_t g0 = 0; g0 < cp; g0 += BG_MAXP) { /* groups of blocks */
                const int64_t gn = cp - g0 < BG_MAXP ? cp - g0 : BG_MAXP;
                int64_t ks = 0;
                do {
                    const int64_t ns = nsteps - ks < BG_KS ? nsteps - ks : BG_KS;
                    for (int64_t q = 0; q < gn; ++q)
                        bk->block(sp + ks * BG_BLK, (const uint16_t*)(win + (g0 + q) * BG_T),
                                  koff + ks, 2 * nph * ldw, 32, ns, cbuf + q * BG_BLK, ks > 0);
                    ks += ns;
                } while (ks < nsteps);
                for (int64_t q = 0; q < gn; ++q) { /* the block's positions, row by row */
                    const int64_t qb = c0 + (g0 + q) * BG_T;
                    int64_t j = 0;
                    while (j < BG_T && qb + j < c0 + cn) {
                        const int64_t pos = qb + j, oh = pos / g->Wp, ow = pos % g->Wp;
                        int64_t run = g->Wp - ow; /* to the end of the padded row */
                        if (run > BG_T - j) run = BG_T - j;
                        if (run > c0 + cn - pos) run = c0 + cn - pos;
                        if (ow < g->OW) {
                            const int nr = (int)(g->OW - ow < run ? g->OW - ow : run);
                            const int64_t n = oh * g->OW + ow;
                            const f32_gemm_epi* ep = 0;
                            if (need_epi) {
                                e = e0;
                                if (d->bias_mode == F32_GEMM_BIAS_ROW) e.bias_r = d->bias + s;
                                if (fuse_d) e.d = d->d + s * d->rsd + n;
                                ep = &e;
                            }
                            bk->epi(cbuf + q * BG_BLK + j, d->c + s * rsc + n, rsc, mr, nr, ep);
                            if (post) f32_gemm_post(d, s, mr, n, nr);
                        }
                        j += run;
                    }
                }
            }
        }
    }
#ifdef BG_HAVE_X86
    if (bk->amx) {
        bg_amx_end();
        __atomic_fetch_add(&bg_amx_runs, 1, __ATOMIC_RELAXED);
    }
#endif
}
#endif
