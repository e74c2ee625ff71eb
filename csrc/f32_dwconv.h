/* Depthwise convolution (groups == C_in == C_out), NCHW, one output plane per channel.
 *
 * Each plane is first copied into a zero-bordered per-thread buffer, so every tap of every
 * output pixel is in bounds and the inner loops have no border cases. The borders are
 * zeroed once per call (later planes only overwrite the interior). For stride 2 each
 * buffer row is stored de-interleaved (even columns, then odd columns), so the taps of 8
 * consecutive output pixels are again 8 contiguous floats. Blocks of 8 (or 16) output
 * pixels then accumulate all taps in registers and are stored once; 3x3 kernels keep the
 * nine weights in registers with the taps unrolled. The activation runs once per plane.
 *
 * The body is written with GCC vector extensions and compiled twice, generic and with
 * AVX2 enabled (target attribute on the wrapper); an AVX-512 form runs 3x3 kernels at
 * stride 1 / 2 on 16 lanes with masked moves (short rows: one masked block, no scalar
 * copies) and Relu / Clip in registers. f32_dwconv_select picks one. */
#ifndef F32_DWCONV_H
#define F32_DWCONV_H
#include <stdint.h>
#include <string.h>
#include "dsl_act.h"
#include "dsl_cpu.h"

/* Short row copies must stay inline vector moves, not memmove calls. */
#pragma GCC push_options
#pragma GCC optimize("no-tree-loop-distribute-patterns")

typedef struct {
    int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
} f32_dw_geom;

/* 8 floats, loads/stores at any float alignment: two SSE registers or one ymm. */
typedef float f32_dw_v8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t f32_dw_i8 __attribute__((vector_size(32)));
#define F32_DW_LD(p) (*(const f32_dw_v8*)(p))

#define F32_DW_MAX_TAPS 64

/* Rows x floats per row of the padded buffer (mirrored in ops/conv.py). Stride 2 rows are
 * two halves of wp/2: even then odd columns of the padded row. */
static inline void f32_dwconv_padded_dims(const f32_dw_geom* g, int64_t* hp, int64_t* wp) {
    /* columns rounded to 16: the AVX-512 form reads blocks of 16 outputs' taps */
    const int64_t owr = (g->OW + 15) / 16 * 16, ext = (g->KW - 1) * g->DW;
    *hp = (g->OH - 1) * g->SH + (g->KH - 1) * g->DH + 1;
    if (g->SW == 2)
        *wp = 2 * (owr + ext / 2 + 1);
    else
        *wp = (owr - 1) * g->SW + ext + 1 + 8;
}

/* Fill the buffer's interior with one input plane (borders hold zeros). */
static inline __attribute__((always_inline)) void
f32_dwconv_fill(const f32_dw_geom* g, const float* restrict x, float* restrict pad, int64_t Wp) {
    const int64_t W = g->W, H = g->H, left = g->PW;
    const int64_t r0 = g->PH, r1 = g->PH + H < 0 ? 0 : g->PH + H; /* buffer rows holding data */
    int64_t Hp, Wpp;
    f32_dwconv_padded_dims(g, &Hp, &Wpp);
    const int64_t rend = r1 < Hp ? r1 : Hp;
    if (g->SW == 2) {
        const int64_t wh = Wp / 2;
        /* padded column c = left + t goes to half c & 1, index c >> 1 */
        int64_t n = 2 * wh - left < W ? 2 * wh - left : W;
        const f32_dw_i8 even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = {1, 3, 5, 7, 9, 11, 13, 15};
        for (int64_t r = r0; r < rend; ++r) {
            const float* restrict xr = x + (r - g->PH) * W;
            float* restrict ev = pad + r * Wp;
            float* restrict od = ev + wh;
            /* xr[2u] lands in a[u], xr[2u + 1] in b[u] */
            float* restrict a = (left & 1) ? od + (left >> 1) : ev + (left >> 1);
            float* restrict b = (left & 1) ? ev + ((left + 1) >> 1) : od + (left >> 1);
            int64_t u = 0;
            for (; 2 * u + 16 <= n; u += 8) {
                const f32_dw_v8 v0 = F32_DW_LD(xr + 2 * u), v1 = F32_DW_LD(xr + 2 * u + 8);
                *(f32_dw_v8*)(a + u) = __builtin_shuffle(v0, v1, even);
                *(f32_dw_v8*)(b + u) = __builtin_shuffle(v0, v1, odd);
            }
            for (; 2 * u < n; ++u) {
                a[u] = xr[2 * u];
                if (2 * u + 1 < n) b[u] = xr[2 * u + 1];
            }
        }
        return;
    }
    const int64_t n = Wp - left < W ? Wp - left : W;
    for (int64_t r = r0; r < rend; ++r) {
        const float* restrict xr = x + (r - g->PH) * W;
        float* restrict pr = pad + r * Wp + left;
        if (n >= 8) { /* vector moves, the last one overlapping: no memcpy call per row */
            int64_t t = 0;
            for (; t + 8 <= n; t += 8) *(f32_dw_v8*)(pr + t) = *(const f32_dw_v8*)(xr + t);
            if (t < n) *(f32_dw_v8*)(pr + n - 8) = *(const f32_dw_v8*)(xr + n - 8);
        } else {
            for (int64_t t = 0; t < n; ++t) pr[t] = xr[t];
        }
    }
}

/* Store a block of 8 outputs of row yr. A block running past OW (rows shorter than 8) may
 * spill into the following rows of the plane, which are computed (and overwritten) later;
 * `room` is how many floats of the plane remain from yr + ow: with fewer than 8 only the
 * valid part is stored. */
static inline __attribute__((always_inline)) void f32_dw_store(float* yr, int64_t ow, int64_t OW,
                                                               f32_dw_v8 acc, int64_t room) {
    if (ow + 8 <= OW || room >= 8) {
        *(f32_dw_v8*)(yr + ow) = acc;
    } else {
        float t[8];
        memcpy(t, &acc, sizeof(t));
        for (int64_t j = 0; j < OW - ow; ++j) yr[ow + j] = t[j];
    }
}

/* 3x3, contiguous taps (stride 1, or stride 2 de-interleaved): weights in registers. */
static inline __attribute__((always_inline)) void
f32_dwconv_rows_3x3(const f32_dw_geom* g, const float* restrict pad, int64_t Wp,
                    const int64_t* off, const float* restrict w, float bias, float* restrict y) {
    const int64_t OW = g->OW;
    const f32_dw_v8 vb = {bias, bias, bias, bias, bias, bias, bias, bias};
    /* off[kh*3 + kw] = kh*rs + c[kw]: three row pointers and three column offsets keep
     * the addressing in registers */
    const int64_t rs = off[3] - off[0], c0 = off[0], c1 = off[1], c2 = off[2];
#define F32_DW_BC(k) const f32_dw_v8 w##k = {w[k], w[k], w[k], w[k], w[k], w[k], w[k], w[k]}
    F32_DW_BC(0); F32_DW_BC(1); F32_DW_BC(2); F32_DW_BC(3); F32_DW_BC(4);
    F32_DW_BC(5); F32_DW_BC(6); F32_DW_BC(7); F32_DW_BC(8);
#undef F32_DW_BC
#define F32_DW_TAPS(acc, r)                                                                   \
    do {                                                                                      \
        const float* q0 = (r);                                                                \
        const float* q1 = q0 + rs;                                                            \
        const float* q2 = q1 + rs;                                                            \
        acc = vb + w0 * F32_DW_LD(q0 + c0) + w1 * F32_DW_LD(q0 + c1) + w2 * F32_DW_LD(q0 + c2); \
        acc += w3 * F32_DW_LD(q1 + c0) + w4 * F32_DW_LD(q1 + c1) + w5 * F32_DW_LD(q1 + c2);     \
        acc += w6 * F32_DW_LD(q2 + c0) + w7 * F32_DW_LD(q2 + c1) + w8 * F32_DW_LD(q2 + c2);     \
    } while (0)
    for (int64_t oh = 0; oh < g->OH; ++oh) {
        float* restrict yr = y + oh * OW;
        const float* p0 = pad + oh * g->SH * Wp;
        int64_t ow = 0;
        for (; ow + 16 <= OW; ow += 16) {
            f32_dw_v8 a0, a1;
            F32_DW_TAPS(a0, p0 + ow);
            F32_DW_TAPS(a1, p0 + ow + 8);
            *(f32_dw_v8*)(yr + ow) = a0;
            *(f32_dw_v8*)(yr + ow + 8) = a1;
        }
        for (; ow + 8 <= OW; ow += 8) {
            f32_dw_v8 a0;
            F32_DW_TAPS(a0, p0 + ow);
            *(f32_dw_v8*)(yr + ow) = a0;
        }
        if (ow < OW) { /* tail: one more block ending at OW (overlapping), or a short row */
            f32_dw_v8 a0;
            ow = OW >= 8 ? OW - 8 : ow;
            F32_DW_TAPS(a0, p0 + ow);
            f32_dw_store(yr, ow, OW, a0, (g->OH - oh) * OW - ow);
        }
    }
#undef F32_DW_TAPS
}

/* Any kernel, contiguous taps at offsets off[0..ntaps). */
static inline __attribute__((always_inline)) void
f32_dwconv_rows_taps(const f32_dw_geom* g, const float* restrict pad, int64_t Wp,
                     const int64_t* off, int64_t ntaps, const float* restrict w, float bias,
                     float* restrict y) {
    const int64_t OW = g->OW;
    const f32_dw_v8 vb = {bias, bias, bias, bias, bias, bias, bias, bias};
    for (int64_t oh = 0; oh < g->OH; ++oh) {
        float* restrict yr = y + oh * OW;
        const float* p0 = pad + oh * g->SH * Wp;
        for (int64_t ow0 = 0; ow0 < OW; ow0 += 8) {
            /* the last block of a row ends at OW (overlapping) unless the row is short */
            const int64_t ow = ow0 + 8 > OW && OW >= 8 ? OW - 8 : ow0;
            f32_dw_v8 a0 = vb, a1 = vb * 0.f; /* two chains over alternating taps */
            int64_t k = 0;
            for (; k + 2 <= ntaps; k += 2) {
                a0 += w[k] * F32_DW_LD(p0 + ow + off[k]);
                a1 += w[k + 1] * F32_DW_LD(p0 + ow + off[k + 1]);
            }
            if (k < ntaps) a0 += w[k] * F32_DW_LD(p0 + ow + off[k]);
            f32_dw_store(yr, ow, OW, a0 + a1, (g->OH - oh) * OW - ow);
        }
    }
}

/* Strides other than 1 and 2: gathered taps. */
static inline __attribute__((always_inline)) void
f32_dwconv_rows_strided(const f32_dw_geom* g, const float* restrict pad, int64_t Wp,
                        const float* restrict w, float bias, float* restrict y) {
    const int64_t OW = g->OW, SW = g->SW, KW = g->KW;
    for (int64_t oh = 0; oh < g->OH; ++oh) {
        float* restrict yr = y + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
            float acc = bias;
            for (int64_t kh = 0; kh < g->KH; ++kh) {
                const float* pr = pad + (oh * g->SH + kh * g->DH) * Wp + ow * SW;
                for (int64_t kw = 0; kw < KW; ++kw) acc += w[kh * KW + kw] * pr[kw * g->DW];
            }
            yr[ow] = acc;
        }
    }
}

/* One plane. `fresh`: the buffer has not been used yet in this call (zero it first). */
static inline __attribute__((always_inline)) void
f32_dwconv_plane_body(const f32_dw_geom* g, const float* restrict x, const float* restrict w,
                      float bias, float* restrict y, int act_form, int act, float aa, float ab,
                      float* restrict pad, int fresh) {
    int64_t Hp, Wp;
    f32_dwconv_padded_dims(g, &Hp, &Wp);
    if (fresh) memset(pad, 0, (size_t)(Hp * Wp) * sizeof(float));
    f32_dwconv_fill(g, x, pad, Wp);
    const int64_t ntaps = g->KH * g->KW;
    if ((g->SW != 1 && g->SW != 2) || ntaps > F32_DW_MAX_TAPS) {
        f32_dwconv_rows_strided(g, pad, Wp, w, bias, y);
        dsl_act_row(act_form, act, y, g->OH * g->OW, aa, ab);
        return;
    }
    int64_t off[F32_DW_MAX_TAPS];
    for (int64_t kh = 0; kh < g->KH; ++kh)
        for (int64_t kw = 0; kw < g->KW; ++kw) {
            const int64_t c = kw * g->DW; /* column offset in the padded row */
            const int64_t col = g->SW == 1 ? c : ((c & 1) ? Wp / 2 : 0) + (c >> 1);
            off[kh * g->KW + kw] = kh * g->DH * Wp + col;
        }
    if (ntaps == 9)
        f32_dwconv_rows_3x3(g, pad, Wp, off, w, bias, y);
    else
        f32_dwconv_rows_taps(g, pad, Wp, off, ntaps, w, bias, y);
    dsl_act_row(act_form, act, y, g->OH * g->OW, aa, ab); /* whole plane at once (still in L1) */
}

static void f32_dwconv_plane__generic(const f32_dw_geom* g, const float* x, const float* w,
                                      float bias, float* y, int act_form, int act, float aa,
                                      float ab, float* pad, int fresh) {
    f32_dwconv_plane_body(g, x, w, bias, y, act_form, act, aa, ab, pad, fresh);
}

#if defined(__x86_64__)
static __attribute__((target(DSL_TARGET_AVX2))) void
f32_dwconv_plane__avx2(const f32_dw_geom* g, const float* x, const float* w, float bias,
                       float* y, int act_form, int act, float aa, float ab, float* pad,
                       int fresh) {
    f32_dwconv_plane_body(g, x, w, bias, y, act_form, act, aa, ab, pad, fresh);
}
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define F32_DW512 static inline __attribute__((always_inline, target(DSL_TARGET_AVX512)))

F32_DW512 __mmask16 f32_dw_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* The fused activations that clamp (Relu, Clip) on 16 lanes, NaN kept as the scalar forms
 * keep it (max / min return their second operand when one is NaN). */
F32_DW512 __m512 f32_dw_clamp(__m512 v, int act, __m512 lo, __m512 hi) {
    if (act == DSL_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == DSL_ACT_CLIP) return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    return v;
}

/* Fill the buffer's interior with one input plane by 16-float masked moves (stride 2:
 * even / odd columns split with two-source permutes), borders untouched. */
F32_DW512 void f32_dwconv_fill16(const f32_dw_geom* g, const float* restrict x,
                                 float* restrict pad, int64_t Hp, int64_t Wp) {
    const int64_t W = g->W, left = g->PW, r0 = g->PH;
    const int64_t r1 = g->PH + g->H < Hp ? g->PH + g->H : Hp;
    if (g->SW == 2) {
        const int64_t wh = Wp / 2, n = 2 * wh - left < W ? 2 * wh - left : W;
        const int64_t na = (n + 1) / 2, nb = n / 2;
        const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for (int64_t r = r0 < 0 ? 0 : r0; r < r1; ++r) {
            const float* restrict xr = x + (r - g->PH) * W;
            float* restrict ev = pad + r * Wp;
            float* restrict od = ev + wh;
            float* restrict a = (left & 1) ? od + (left >> 1) : ev + (left >> 1);
            float* restrict b = (left & 1) ? ev + ((left + 1) >> 1) : od + (left >> 1);
            for (int64_t u = 0; u < na; u += 16) {
                const int64_t rem = n - 2 * u;
                const __m512 v0 = _mm512_maskz_loadu_ps(f32_dw_mask(rem), xr + 2 * u);
                const __m512 v1 = _mm512_maskz_loadu_ps(f32_dw_mask(rem - 16), xr + 2 * u + 16);
                _mm512_mask_storeu_ps(a + u, f32_dw_mask(na - u), _mm512_permutex2var_ps(v0, ie, v1));
                _mm512_mask_storeu_ps(b + u, f32_dw_mask(nb - u), _mm512_permutex2var_ps(v0, io, v1));
            }
        }
        return;
    }
    const int64_t n = Wp - left < W ? Wp - left : W;
    for (int64_t r = r0 < 0 ? 0 : r0; r < r1; ++r) {
        const float* restrict xr = x + (r - g->PH) * W;
        float* restrict pr = pad + r * Wp + left;
        for (int64_t t = 0; t < n; t += 16) {
            const __mmask16 m = f32_dw_mask(n - t);
            _mm512_mask_storeu_ps(pr + t, m, _mm512_maskz_loadu_ps(m, xr + t));
        }
    }
}

/* 3x3 (stride 1, or 2 de-interleaved; undilated): blocks of 16 outputs with the nine
 * weights in registers, a masked store for a row's last block, Relu / Clip applied in
 * registers. Other kernels, strides and dilations run the 8-lane body. */
static __attribute__((target(DSL_TARGET_AVX512))) void
f32_dwconv_plane__avx512(const f32_dw_geom* g, const float* x, const float* w, float bias,
                         float* y, int act_form, int act, float aa, float ab, float* pad,
                         int fresh) {
    if (g->KH != 3 || g->KW != 3 || (g->SW != 1 && g->SW != 2) || g->DH != 1 || g->DW != 1) {
        f32_dwconv_plane_body(g, x, w, bias, y, act_form, act, aa, ab, pad, fresh);
        return;
    }
    int64_t Hp, Wp;
    f32_dwconv_padded_dims(g, &Hp, &Wp);
    if (fresh) memset(pad, 0, (size_t)(Hp * Wp) * sizeof(float));
    f32_dwconv_fill16(g, x, pad, Hp, Wp);
    const int64_t OW = g->OW, rs = Wp;
    const int64_t c1 = g->SW == 1 ? 1 : Wp / 2, c2 = g->SW == 1 ? 2 : 1;
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]), w2 = _mm512_set1_ps(w[2]);
    const __m512 w3 = _mm512_set1_ps(w[3]), w4 = _mm512_set1_ps(w[4]), w5 = _mm512_set1_ps(w[5]);
    const __m512 w6 = _mm512_set1_ps(w[6]), w7 = _mm512_set1_ps(w[7]), w8 = _mm512_set1_ps(w[8]);
    const int clamp = act == DSL_ACT_RELU || act == DSL_ACT_CLIP;
    const __m512 lo = _mm512_set1_ps(aa), hi = _mm512_set1_ps(ab);
    for (int64_t oh = 0; oh < g->OH; ++oh) {
        float* restrict yr = y + oh * OW;
        const float* q0 = pad + oh * g->SH * Wp;
        const float* q1 = q0 + rs;
        const float* q2 = q1 + rs;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            __m512 a = _mm512_fmadd_ps(w0, _mm512_loadu_ps(q0 + ow), vb);
            __m512 b = _mm512_mul_ps(w1, _mm512_loadu_ps(q0 + ow + c1));
            a = _mm512_fmadd_ps(w2, _mm512_loadu_ps(q0 + ow + c2), a);
            b = _mm512_fmadd_ps(w3, _mm512_loadu_ps(q1 + ow), b);
            a = _mm512_fmadd_ps(w4, _mm512_loadu_ps(q1 + ow + c1), a);
            b = _mm512_fmadd_ps(w5, _mm512_loadu_ps(q1 + ow + c2), b);
            a = _mm512_fmadd_ps(w6, _mm512_loadu_ps(q2 + ow), a);
            b = _mm512_fmadd_ps(w7, _mm512_loadu_ps(q2 + ow + c1), b);
            a = _mm512_fmadd_ps(w8, _mm512_loadu_ps(q2 + ow + c2), a);
            __m512 v = _mm512_add_ps(a, b);
            if (clamp) v = f32_dw_clamp(v, act, lo, hi);
            _mm512_mask_storeu_ps(yr + ow, f32_dw_mask(OW - ow), v);
        }
    }
    if (!clamp) dsl_act_row(act_form, act, y, g->OH * g->OW, aa, ab);
}
#undef F32_DW512
#endif

typedef void (*f32_dwconv_plane_fn)(const f32_dw_geom*, const float*, const float*, float,
                                    float*, int, int, float, float, float*, int);

/* The plane kernel of a form (dsl_kv_form(DSL_KV_DWCONV, level, cap)). */
static inline f32_dwconv_plane_fn f32_dwconv_select(int form) {
#if defined(__x86_64__)
    if (form == DSL_FORM_AVX512) return f32_dwconv_plane__avx512;
    if (form != DSL_FORM_GENERIC) return f32_dwconv_plane__avx2;
#endif
    (void)form;
    return f32_dwconv_plane__generic;
}
#pragma GCC pop_options
#endif
