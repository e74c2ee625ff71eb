/* fp32 2-D pooling kernels (the four kernel forms from one template, pool_f32_tmpl.h).
 * Single-threaded over a range of output rows; kernels/pool.pyx splits rows across threads
 * and gives each thread its own row buffer of Wp floats from the step's workspace. */
#ifndef DSL_POOL_F32_H
#define DSL_POOL_F32_H
#include <math.h>
#include <stdint.h>
#include "dsl_cpu.h"

typedef struct {
    int64_t H, W, OH, OW;      /* input / output plane sizes */
    int64_t KH, KW, SH, SW;    /* kernel, strides */
    int64_t PT, PL, DH, DW;    /* top / left pads (bottom / right are implied by OH, OW), dilations */
    int64_t Wp;                /* row buffer length: (OW - 1) * SW + (KW - 1) * DW + 1 */
    int64_t avg;               /* 0 max, 1 average */
} dsl_pool2d;

/* Input columns some window reaches (the ceil_mode overhang may reach past W, a large
 * right pad may leave columns unread). */
static inline int64_t dsl_pool2d_cols(const dsl_pool2d* p) {
    const int64_t W = p->W, Wp = p->Wp, PL = p->PL;
    return W < Wp - PL ? (W > 0 ? W : 0) : (Wp - PL > 0 ? Wp - PL : 0);
}
/* Output row oh: its first input row base = oh * SH - PT and the valid kernel rows
 * [*kh0, *kh1) (empty when the window is all padding). */
static inline int64_t dsl_pool2d_krows(const dsl_pool2d* p, int64_t oh, int64_t* kh0, int64_t* kh1) {
    const int64_t base = oh * p->SH - p->PT, H = p->H, DH = p->DH;
    *kh0 = base >= 0 ? 0 : (-base + DH - 1) / DH;
    *kh1 = base > H - 1 ? 0 : (H - 1 - base) / DH + 1;
    if (*kh1 > p->KH) *kh1 = p->KH;
    return base;
}

#define DSL_SIMD_TEMPLATE "pool_f32_tmpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

typedef void (*f32_pool2d_rows_fn)(const float*, float*, const dsl_pool2d*, int64_t, int64_t,
                                   float*, const float*, const float*);

/* 8-bit 2-D max pooling (POOL2D with q8 = 1 uint8 / 2 int8; max only), the f32 kernel's
 * row scheme on bytes: int8 values are xor 0x80 on the way in and out, so one unsigned
 * max serves both and the identity (pads, the ceil_mode overhang) is 0. Plain C: the
 * byte loops vectorise under any target. rb: >= Wp + 1 bytes. */
static void q8_maxpool2d_rows(const uint8_t* x, uint8_t* y, const dsl_pool2d* p, int64_t r0,
                              int64_t r1, uint8_t* rb, int is_signed) {
    const int64_t H = p->H, W = p->W, OH = p->OH, OW = p->OW, KW = p->KW;
    const int64_t SW = p->SW, PL = p->PL, DH = p->DH, DW = p->DW, Wp = p->Wp;
    const uint8_t fl = is_signed ? 0x80 : 0;
    const int64_t wn = dsl_pool2d_cols(p);
    int64_t u;
    for (u = 0; u < PL && u < Wp + 1; ++u) rb[u] = 0;
    for (u = PL + wn; u < Wp + 1; ++u) rb[u] = 0;
    uint8_t* rw = rb + PL;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t plane = r / OH, oh = r % OH;
        const uint8_t* xp = x + plane * H * W;
        uint8_t* yr = y + r * OW;
        int64_t kh0, kh1;
        const int64_t base = dsl_pool2d_krows(p, oh, &kh0, &kh1);
        if (kh0 >= kh1) {
            for (int64_t w = 0; w < wn; ++w) rw[w] = 0;
        } else {
            const uint8_t* r0p = xp + (base + kh0 * DH) * W;
            for (int64_t w = 0; w < wn; ++w) rw[w] = (uint8_t)(r0p[w] ^ fl);
            for (int64_t kh = kh0 + 1; kh < kh1; ++kh) {
                const uint8_t* rp = xp + (base + kh * DH) * W;
                for (int64_t w = 0; w < wn; ++w) {
                    const uint8_t v = (uint8_t)(rp[w] ^ fl);
                    rw[w] = v > rw[w] ? v : rw[w];
                }
            }
        }
        /* horizontal: kw outer, so the inner loops have a literal stride (they vectorise) */
        for (int64_t kw = 0; kw < KW; ++kw) {
            const uint8_t* q = rb + kw * DW;
            if (SW == 1) {
                if (kw == 0) for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[ow];
                else for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[ow] > yr[ow] ? q[ow] : yr[ow];
            } else if (SW == 2) {
                if (kw == 0) for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[2 * ow];
                else for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[2 * ow] > yr[ow] ? q[2 * ow] : yr[ow];
            } else {
                if (kw == 0) for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[ow * SW];
                else for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = q[ow * SW] > yr[ow] ? q[ow * SW] : yr[ow];
            }
        }
        if (fl) for (int64_t ow = 0; ow < OW; ++ow) yr[ow] ^= fl;
    }
}

/* form: dsl_kv_form(DSL_KV_POOL, level, cap) */
static inline f32_pool2d_rows_fn f32_pool2d_rows_select(int form) {
    switch (form) {
#ifdef DSL_SIMD_X86
    case DSL_FORM_AVX2: return f32_pool2d_rows__avx2;
    case DSL_FORM_AVX512: return f32_pool2d_rows__avx512;
    case DSL_FORM_AVX512_ON_AVX2: return f32_pool2d_rows__avx512_on_avx2;
#endif
    default: return f32_pool2d_rows__generic;
    }
}
#endif
