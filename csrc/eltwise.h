/* The eltwise family (op = 200 + sub-op): step validation, work sizes for threading, and
 * the kernel for one contiguous range [lo, hi) of output elements. kernels/eltwise.pyx
 * splits the range over threads; everything here runs on one thread without allocating.
 * Every step carries a dsl_eltwise_params record (csrc/dsl_params.h; documented in
 * kernels/eltwise.pyx).
 *
 * Broadcasting steps (BINARY, WHERE) see their iteration space already merged at compile
 * time: shape[ndim] (size-1 dims dropped, contiguous dims fused) and, per input, element
 * strides over that shape (0 on broadcast dims). The output is contiguous in that order.
 * The walk is [outer rows, inner row]: every input's inner stride is 0 or 1, so a row is a
 * vv / vs / sv loop; rows advance with an odometer (no division per row).
 *
 * float16 / bfloat16 operands (UNARY_F32 and BINARY with dtype F16 / BF16) are widened to
 * float32 a chunk at a time on the stack, computed by the float32 kernels and rounded back
 * (narrow_float.h). Steps with float16 conversions also run in a DSL_KV_F16CVT form.
 */
#ifndef ELTWISE_H
#define ELTWISE_H
#include <stdint.h>
#include "dsl_plan.h"
#include "dsl_cpu.h"
#include "dsl_vmath.h"
#include "eltwise_binary.h"
#include "eltwise_cast.h"

#define DSL_EW_P(s) DSL_PARAMS_OF(dsl_eltwise_params, s)

/* elements per thread below which a step stays on one thread: roughly 10-20 us of work,
 * well above an OpenMP fork/join */
#define DSL_EW_MIN_CHEAP  32768
#define DSL_EW_MIN_MATH    8192

typedef void (*dsl_ew_row)(const void* ctx, const char* const* in, char* y, int64_t n);

/* Visit output elements [lo, hi) row by row; in[k] points at input k's first element of the
 * current piece (element strides st[k], element sizes esz[k]). */
static inline void dsl_ew_walk(int ndim, const int64_t* shape, int nin, const int64_t* const* st,
                               const char* const* base, const int64_t* esz, char* y,
                               int64_t esz_y, int64_t lo, int64_t hi, dsl_ew_row row,
                               const void* ctx) {
    int64_t inner = shape[ndim - 1];
    int64_t idx[8] = {0, 0, 0, 0, 0, 0, 0, 0}, off[3] = {0, 0, 0};
    int64_t r = lo / inner, col = lo - r * inner, rem = r, pos = lo;
    const char* ptr[3] = {0, 0, 0};
    int d, j;
    for (d = ndim - 2; d >= 0; --d) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
        for (j = 0; j < nin; ++j) off[j] += idx[d] * st[j][d];
    }
    while (pos < hi) {
        int64_t n = inner - col;
        if (n > hi - pos) n = hi - pos;
        for (j = 0; j < nin; ++j)
            ptr[j] = base[j] + (off[j] + col * st[j][ndim - 1]) * esz[j];
        row(ctx, ptr, y + pos * esz_y, n);
        pos += n;
        col = 0;
        for (d = ndim - 2; d >= 0; --d) {   /* odometer over the outer dims */
            for (j = 0; j < nin; ++j) off[j] += st[j][d];
            if (++idx[d] < shape[d]) break;
            for (j = 0; j < nin; ++j) off[j] -= shape[d] * st[j][d];
            idx[d] = 0;
        }
    }
}

static void dsl_ew_binary_row(const void* ctx, const char* const* in, char* y, int64_t n) {
    (*(const dsl_bin_loop*)ctx)(in[0], in[1], y, n);
}

/* float16 / bfloat16 binary rows: operands widened to float32 (a: run or one element per
 * row), the float32 loop, results rounded back (or bool written directly) */
typedef struct { dsl_bin_loop loop; int dt, form, out_bool, va, vb; } dsl_nf_bin_ctx;

static void dsl_ew_nf_binary_row(const void* ctx, const char* const* in, char* y, int64_t n) {
    const dsl_nf_bin_ctx* c = (const dsl_nf_bin_ctx*)ctx;
    float xa[DSL_NF_CHUNK], xb[DSL_NF_CHUNK], r[DSL_NF_CHUNK];
    if (!c->va) dsl_nf_load(c->dt, c->form, in[0], xa, 1);
    if (!c->vb) dsl_nf_load(c->dt, c->form, in[1], xb, 1);
    for (int64_t off = 0; off < n; off += DSL_NF_CHUNK) {
        const int64_t m = n - off < DSL_NF_CHUNK ? n - off : DSL_NF_CHUNK;
        if (c->va) dsl_nf_load(c->dt, c->form, in[0] + off * 2, xa, m);
        if (c->vb) dsl_nf_load(c->dt, c->form, in[1] + off * 2, xb, m);
        if (c->out_bool) {
            c->loop((const char*)xa, (const char*)xb, y + off, m);
        } else {
            c->loop((const char*)xa, (const char*)xb, (char*)r, m);
            dsl_nf_store(c->dt, c->form, 0, r, y + off * 2, m);
        }
    }
}

typedef struct { int64_t esz, sc, sx, sy; } dsl_where_ctx;

#define DSL_WHERE_ROW(T)                                                                    \
    {                                                                                       \
        const uint8_t* c = (const uint8_t*)in[0];                                           \
        const T* a = (const T*)in[1]; const T* b = (const T*)in[2]; T* o = (T*)y;           \
        if (w->sc && w->sx && w->sy) {                                                      \
            for (k = 0; k < n; ++k) o[k] = c[k] ? a[k] : b[k];                              \
        } else {                                                                            \
            for (k = 0; k < n; ++k) o[k] = c[k * w->sc] ? a[k * w->sx] : b[k * w->sy];      \
        }                                                                                   \
        return;                                                                             \
    }

static void dsl_ew_where_row(const void* ctx, const char* const* in, char* y, int64_t n) {
    const dsl_where_ctx* w = (const dsl_where_ctx*)ctx;
    int64_t k;
    switch (w->esz) {
    case 1: DSL_WHERE_ROW(uint8_t)
    case 2: DSL_WHERE_ROW(uint16_t)
    case 4: DSL_WHERE_ROW(uint32_t)
    case 8: DSL_WHERE_ROW(uint64_t)
    default: return;
    }
}

static inline int dsl_ew_esz(int dtype) { return dsl_dtype_size(dtype); }

/* The form a step runs in on a CPU capped at `cap` (unary: vector math; binary: the f32
 * loops; everything else has one portable loop). */
static inline int dsl_ew_form(const dsl_step* s, int cap) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    if (s->op == DSL_OP_UNARY_F32) return dsl_kv_form(DSL_KV_UNARY, (int)q->level, cap);
    if (s->op == DSL_OP_BINARY && q->dtype == DSL_F32)
        return dsl_kv_form(DSL_KV_BINARY, (int)q->level, cap);
    return DSL_FORM_GENERIC;
}

/* Does the step convert float16 <-> float32 (and so run a DSL_KV_F16CVT form)? */
static inline int dsl_ew_uses_f16(const dsl_step* s) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    if (s->op == DSL_OP_CAST) return q->dtype == DSL_F16 || q->out_dtype == DSL_F16;
    return (s->op == DSL_OP_UNARY_F32 || s->op == DSL_OP_BINARY) && q->dtype == DSL_F16;
}

/* The form of the float16 conversions of a step (generic for steps without any). */
static inline int dsl_ew_cvt_form(const dsl_step* s, int cap) {
    if (!dsl_ew_uses_f16(s)) return DSL_FORM_GENERIC;
    return dsl_kv_form(DSL_KV_F16CVT, (int)DSL_EW_P(s)->level, cap);
}

/* Count the variants a step runs (once per step). */
static inline void dsl_ew_hit(const dsl_step* s, const dsl_exec* x) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    if (s->op == DSL_OP_UNARY_F32) dsl_hit(x, DSL_KV_UNARY, dsl_ew_form(s, x->cap));
    else if (s->op == DSL_OP_BINARY && q->dtype == DSL_F32 && q->fn != DSL_BIN_POW)
        dsl_hit(x, DSL_KV_BINARY, dsl_ew_form(s, x->cap));
    if (dsl_ew_uses_f16(s)) dsl_hit(x, DSL_KV_F16CVT, dsl_ew_cvt_form(s, x->cap));
}

/* Is the merged broadcast layout well formed (inner strides 0/1, sizes consistent)? */
static inline int dsl_ew_check_walk(const dsl_step* s, int nin) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    int ndim = (int)q->ndim, d, k;
    int64_t total = 1;
    if (ndim < 1 || ndim > 8) return DSL_ERR_BAD_PARAM;
    for (d = 0; d < ndim; ++d) {
        if (q->shape[d] < 1) return DSL_ERR_BAD_PARAM;
        total *= q->shape[d];
    }
    if (total != q->n) return DSL_ERR_BAD_PARAM;
    int any_unit = 0;
    for (k = 0; k < nin; ++k) {
        int64_t inner = q->strides[8 * k + ndim - 1];
        if (inner != 0 && inner != 1) return DSL_ERR_BAD_PARAM;
        any_unit |= inner == 1;
    }
    if (!any_unit && q->shape[ndim - 1] != 1) return DSL_ERR_BAD_PARAM;
    return DSL_OK;
}

static inline int dsl_ew_bin_variant(const dsl_step* s) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    int ndim = (int)q->ndim;
    int64_t sa = q->strides[ndim - 1], sb = q->strides[8 + ndim - 1];
    if (sa && !sb) return DSL_BIN_VS;
    if (!sa && sb) return DSL_BIN_SV;
    return DSL_BIN_VV;   /* both 1, or both 0 with a row of one element */
}

/* DSL_OK if the step can run; called once per step before any thread starts. */
static inline int dsl_ew_check(const dsl_step* s) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    int64_t fn = q->fn;
    if (q->n < 0) return DSL_ERR_BAD_PARAM;
    switch (s->op) {
    case DSL_OP_UNARY_F32:
        if (q->dtype != DSL_F32 && q->dtype != DSL_F16 && q->dtype != DSL_BF16) return DSL_ERR_BAD_PARAM;
        return (fn >= 0 && fn < DSL_VF_COUNT) ? DSL_OK : DSL_ERR_BAD_PARAM;
    case DSL_OP_UNARY_F64:
        return (fn >= 0 && fn < DSL_VF_COUNT) ? DSL_OK : DSL_ERR_BAD_PARAM;
    case DSL_OP_UNARY_INT:
        return dsl_unary_int_ok((int)q->dtype, (int)fn) ? DSL_OK : DSL_ERR_BAD_PARAM;
    case DSL_OP_NOT:
        return DSL_OK;
    case DSL_OP_BINARY:
        if (!dsl_binary_loop((int)q->dtype, (int)fn, DSL_FORM_GENERIC, DSL_BIN_VV))
            return DSL_ERR_BAD_PARAM;
        return dsl_ew_check_walk(s, 2);
    case DSL_OP_WHERE: {
        int64_t esz = q->esz;
        if (esz != 1 && esz != 2 && esz != 4 && esz != 8) return DSL_ERR_BAD_PARAM;
        return dsl_ew_check_walk(s, 3);
    }
    case DSL_OP_CAST:
        if (q->saturate != 0 && q->saturate != 1) return DSL_ERR_BAD_PARAM;
        return (dsl_ew_esz((int)q->dtype) && dsl_ew_esz((int)q->out_dtype)) ? DSL_OK : DSL_ERR_BAD_PARAM;
    default:
        return DSL_ERR_UNKNOWN_OP;
    }
}

/* Elements per thread below which the step should not be split. */
static inline int64_t dsl_ew_min_work(const dsl_step* s) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    int fn = (int)q->fn;
    if (s->op == DSL_OP_UNARY_F64) return DSL_EW_MIN_MATH / 4;
    if (s->op == DSL_OP_UNARY_F32) {
        switch (fn) {
        case DSL_ACT_NONE: case DSL_ACT_RELU: case DSL_ACT_LEAKY_RELU: case DSL_ACT_CLIP:
        case DSL_ACT_HARD_SIGMOID: case DSL_ACT_HARD_SWISH: case DSL_VF_NEG: case DSL_VF_ABS:
        case DSL_VF_AFFINE: case DSL_VF_FLOOR: case DSL_VF_CEIL: case DSL_VF_ROUND:
        case DSL_VF_SIGN:
            return DSL_EW_MIN_CHEAP;
        default:
            return DSL_EW_MIN_MATH;
        }
    }
    if (s->op == DSL_OP_BINARY && fn == DSL_BIN_POW) return DSL_EW_MIN_MATH / 2;
    return DSL_EW_MIN_CHEAP;
}

/* Compute output elements [lo, hi) of a checked step, in form dsl_ew_form(s, cap) with
 * float16 conversions in form dsl_ew_cvt_form(s, cap). */
static inline int dsl_ew_range(const dsl_step* s, char** p, int64_t lo, int64_t hi, int form,
                               int cvt_form) {
    const dsl_eltwise_params* q = DSL_EW_P(s);
    int fn = (int)q->fn;
    int64_t n = hi - lo;
    if (n <= 0) return DSL_OK;
    switch (s->op) {
    case DSL_OP_UNARY_F32: {
        if (q->dtype != DSL_F32) {   /* float16 / bfloat16: through float32 chunks */
            const int dt = (int)q->dtype;
            const char* x = p[s->t[0]] + lo * 2;
            char* y = p[s->t[1]] + lo * 2;
            float buf[DSL_NF_CHUNK];
            for (int64_t off = 0; off < n; off += DSL_NF_CHUNK) {
                const int64_t m = n - off < DSL_NF_CHUNK ? n - off : DSL_NF_CHUNK;
                dsl_nf_load(dt, cvt_form, x + off * 2, buf, m);
                dsl_vunary_f32(form, fn, buf, buf, m, q->a, q->b);
                dsl_nf_store(dt, cvt_form, 0, buf, y + off * 2, m);
            }
            return DSL_OK;
        }
        const float* x = (const float*)p[s->t[0]];
        float* y = (float*)p[s->t[1]];
        dsl_vunary_f32(form, fn, x + lo, y + lo, n, q->a, q->b);
        return DSL_OK;
    }
    case DSL_OP_UNARY_F64: {
        const double* x = (const double*)p[s->t[0]];
        double* y = (double*)p[s->t[1]];
        dsl_unary_f64(fn, x + lo, y + lo, n, q->a, q->b);
        return DSL_OK;
    }
    case DSL_OP_UNARY_INT: {
        int dt = (int)q->dtype;
        int64_t esz = dsl_ew_esz(dt);
        return dsl_unary_int(dt, fn, p[s->t[0]] + lo * esz, p[s->t[1]] + lo * esz, n);
    }
    case DSL_OP_NOT:
        dsl_not_bool(p[s->t[0]] + lo, p[s->t[1]] + lo, n);
        return DSL_OK;
    case DSL_OP_BINARY: {
        int dt = (int)q->dtype;
        const int v = dsl_ew_bin_variant(s);
        dsl_bin_loop loop = dsl_binary_loop(dt, fn, form, v);
        if (!loop) return DSL_ERR_BAD_PARAM;
        int64_t esz = dsl_ew_esz(dt);
        const int out_bool = dsl_bin_writes_bool(fn);
        int64_t esz_y = out_bool ? 1 : esz;
        const int64_t* st[2] = {&q->strides[0], &q->strides[8]};
        const char* base[2] = {p[s->t[0]], p[s->t[1]]};
        int64_t eszs[2] = {esz, esz};
        if (dt == DSL_F16 || dt == DSL_BF16) {
            dsl_nf_bin_ctx c = {loop, dt, cvt_form, out_bool, v != DSL_BIN_SV, v != DSL_BIN_VS};
            dsl_ew_walk((int)q->ndim, q->shape, 2, st, base, eszs, p[s->t[2]], esz_y, lo, hi,
                        dsl_ew_nf_binary_row, &c);
            return DSL_OK;
        }
        dsl_ew_walk((int)q->ndim, q->shape, 2, st, base, eszs, p[s->t[2]], esz_y, lo, hi,
                    dsl_ew_binary_row, &loop);
        return DSL_OK;
    }
    case DSL_OP_WHERE: {
        int ndim = (int)q->ndim;
        int64_t esz = q->esz;
        const int64_t* st[3] = {&q->strides[0], &q->strides[8], &q->strides[16]};
        const char* base[3] = {p[s->t[0]], p[s->t[1]], p[s->t[2]]};
        int64_t eszs[3] = {1, esz, esz};
        dsl_where_ctx w = {esz, st[0][ndim - 1], st[1][ndim - 1], st[2][ndim - 1]};
        dsl_ew_walk(ndim, q->shape, 3, st, base, eszs, p[s->t[3]], esz, lo, hi,
                    dsl_ew_where_row, &w);
        return DSL_OK;
    }
    case DSL_OP_CAST: {
        int st_ = (int)q->dtype, dt = (int)q->out_dtype;
        return dsl_cast(st_, dt, p[s->t[0]] + lo * dsl_ew_esz(st_), p[s->t[1]] + lo * dsl_ew_esz(dt),
                        n, (int)q->saturate, cvt_form);
    }
    default:
        return DSL_ERR_UNKNOWN_OP;
    }
}
#endif
