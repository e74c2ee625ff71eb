/* Index-driven data movement: Gather, GatherElements and Resize (nearest / bilinear).
 *
 * Runtime indices are never trusted: every index is range-checked before the element it
 * names is read, and an out-of-range index makes the kernel report it (the caller returns
 * DSL_ERR_INDEX_RANGE) instead of reading outside the tensor. Resize tables are built at
 * compile time, so they are in range by construction.
 */
#ifndef DSL_DATA_H
#define DSL_DATA_H
#include <stdint.h>
#include <string.h>

static inline int64_t dsl_load_index(const char* idx, int64_t k, int is64) {
    return is64 ? ((const int64_t*)idx)[k] : (int64_t)((const int32_t*)idx)[k];
}

static inline void dsl_move_elem(char* dp, const char* sp, int64_t esz) {
    if (esz == 4) *(uint32_t*)dp = *(const uint32_t*)sp;
    else if (esz == 8) *(uint64_t*)dp = *(const uint64_t*)sp;
    else if (esz == 1) *dp = *sp;
    else memcpy(dp, sp, (size_t)esz);
}

/* 1 when some index is outside [-axis_len, axis_len). */
static inline int dsl_gather_check(const char* idx, int64_t n, int is64, int64_t axis_len) {
    int bad = 0;
    if (is64) {
        const int64_t* p = (const int64_t*)idx;
        for (int64_t k = 0; k < n; ++k) bad |= (p[k] < -axis_len) | (p[k] >= axis_len);
    } else {
        const int32_t* p = (const int32_t*)idx;
        for (int64_t k = 0; k < n; ++k) bad |= (p[k] < -axis_len) | (p[k] >= axis_len);
    }
    return bad;
}

/* Gather: data viewed as [outer, axis_len, inner_bytes], output as [outer, n_idx, inner_bytes].
 * Rows [lo, hi) of the output's [outer * n_idx] rows. Indices were checked by the caller. */
static inline void dsl_gather_rows(const char* data, const char* idx, char* dst, int is64,
                                   int64_t n_idx, int64_t axis_len, int64_t inner_bytes,
                                   int64_t lo, int64_t hi) {
    if (lo >= hi) return;
    int64_t o = lo / n_idx, k = lo % n_idx;
    char* dp = dst + lo * inner_bytes;
    for (int64_t r = lo; r < hi; ++r, dp += inner_bytes) {
        int64_t v = dsl_load_index(idx, k, is64);
        if (v < 0) v += axis_len;
        const char* sp = data + (o * axis_len + v) * inner_bytes;
        if (inner_bytes == 4) *(uint32_t*)dp = *(const uint32_t*)sp;
        else if (inner_bytes == 8) *(uint64_t*)dp = *(const uint64_t*)sp;
        else memcpy(dp, sp, (size_t)inner_bytes);
        if (++k == n_idx) { k = 0; ++o; }
    }
}

/* GatherElements: out[c] = data[c with c[axis] replaced by idx[c]]. Output and indices share
 * one contiguous shape (ndim dims); ds = data byte strides. Rows [lo, hi) over dims
 * 0..ndim-2. Returns the number of out-of-range indices met (their elements are zeroed). */
static inline int64_t dsl_gather_elements_rows(const char* data, const char* idx, char* dst,
                                               int ndim, int64_t esz, int is64, int axis,
                                               int64_t axis_len, const int64_t* shape,
                                               const int64_t* ds, int64_t lo, int64_t hi) {
    if (lo >= hi) return 0;
    int64_t n_in = shape[ndim - 1], bad = 0;
    int64_t c[8];
    int64_t rem = lo, base = 0;
    for (int d = ndim - 2; d >= 0; --d) {
        c[d] = rem % shape[d];
        rem /= shape[d];
        if (d != axis) base += c[d] * ds[d];
    }
    int last_is_axis = (axis == ndim - 1);
    int64_t s_last = ds[ndim - 1], s_axis = ds[axis];
    for (int64_t r = lo; r < hi; ++r) {
        char* dp = dst + r * n_in * esz;
        int64_t i0 = r * n_in;
        for (int64_t x = 0; x < n_in; ++x) {
            int64_t v = dsl_load_index(idx, i0 + x, is64);
            if (v < 0) v += axis_len;
            if (v < 0 || v >= axis_len) {
                ++bad;
                memset(dp + x * esz, 0, (size_t)esz);
                continue;
            }
            int64_t off = base + v * s_axis + (last_is_axis ? 0 : x * s_last);
            dsl_move_elem(dp + x * esz, data + off, esz);
        }
        for (int d = ndim - 2; d >= 0; --d) { /* odometer step over the outer dims */
            if (d != axis) base += ds[d];
            if (++c[d] < shape[d]) break;
            if (d != axis) base -= ds[d] * shape[d];
            c[d] = 0;
        }
    }
    return bad;
}

/* Nearest resize (any rank): out[c] = src[sum_d tab[toff[d] + c[d]]], the tables holding
 * source byte offsets per output coordinate. Rows [lo, hi) over dims 0..ndim-2; a row that
 * reads the same source row as the one before it (upsampling along H) is a memcpy of it. */
static inline void dsl_resize_nearest_rows(const char* src, char* dst, int ndim, int64_t esz,
                                           const int64_t* oshape, const int64_t* tab,
                                           const int64_t* toff, int64_t lo, int64_t hi) {
    if (lo >= hi) return;
    int64_t n_in = oshape[ndim - 1], row_bytes = n_in * esz;
    const int64_t* last = tab + toff[ndim - 1];
    int64_t c[8];
    int64_t rem = lo, so = 0, prev = -1;
    for (int d = ndim - 2; d >= 0; --d) {
        c[d] = rem % oshape[d];
        rem /= oshape[d];
        so += tab[toff[d] + c[d]];
    }
    char* dp = dst + lo * row_bytes;
    for (int64_t r = lo; r < hi; ++r, dp += row_bytes) {
        const char* sp = src + so;
        if (so == prev) {
            memcpy(dp, dp - row_bytes, (size_t)row_bytes);
        } else if (esz == 4) {
            for (int64_t x = 0; x < n_in; ++x) ((uint32_t*)dp)[x] = *(const uint32_t*)(sp + last[x]);
        } else if (esz == 8) {
            for (int64_t x = 0; x < n_in; ++x) ((uint64_t*)dp)[x] = *(const uint64_t*)(sp + last[x]);
        } else {
            for (int64_t x = 0; x < n_in; ++x) dsl_move_elem(dp + x * esz, sp + last[x], esz);
        }
        prev = so;
        for (int d = ndim - 2; d >= 0; --d) {
            so -= tab[toff[d] + c[d]];
            if (++c[d] < oshape[d]) { so += tab[toff[d] + c[d]]; break; }
            c[d] = 0;
            so += tab[toff[d]];
        }
    }
}

/* Bilinear resize of the last two dims, f32: src [outer, H, W] -> dst [outer, OH, OW].
 * iy = [y0[OH], y1[OH]], ix = [x0[OW], x1[OW]] (source element indices, clamped at compile
 * time), wy = [wy0[OH], wy1[OH]], wx = [wx0[OW], wx1[OW]]. Rows [lo, hi) of outer * OH.
 * Separable: each needed source row is interpolated along W once into one of two cached
 * rows (ws, 2 * OW floats per thread), then every output row is a blend of two cached rows,
 * so upsampling along H does not redo the horizontal gathers. */
static inline void f32_resize_hrow(const float* p, float* h, int64_t OW, const int64_t* x0,
                                   const int64_t* x1, const float* wx0, const float* wx1) {
    for (int64_t x = 0; x < OW; ++x) h[x] = wx0[x] * p[x0[x]] + wx1[x] * p[x1[x]];
}

static inline void f32_resize_bilinear_rows(const float* src, float* dst, int64_t H, int64_t W,
                                            int64_t OH, int64_t OW, const int64_t* iy,
                                            const int64_t* ix, const float* wy,
                                            const float* wx, float* ws, int64_t lo,
                                            int64_t hi) {
    const int64_t* x0 = ix;
    const int64_t* x1 = ix + OW;
    const float* wx0 = wx;
    const float* wx1 = wx + OW;
    float* buf[2] = {ws, ws + OW};
    int64_t key[2] = {-1, -1};   /* which source row (o * H + y) each buffer holds */
    for (int64_t r = lo; r < hi; ++r) {
        int64_t o = r / OH, y = r % OH;
        int64_t k0 = o * H + iy[y], k1 = o * H + iy[OH + y];
        const float* h[2];
        int64_t want[2] = {k0, k1};
        for (int j = 0; j < 2; ++j) {
            int64_t k = want[j];
            if (key[0] == k) { h[j] = buf[0]; continue; }
            if (key[1] == k) { h[j] = buf[1]; continue; }
            /* evict the buffer the other operand does not need */
            int slot = (j == 1 && h[0] == buf[0]) ? 1 : (j == 1 ? 0 : (key[0] == k1 ? 1 : 0));
            f32_resize_hrow(src + k * W, buf[slot], OW, x0, x1, wx0, wx1);
            key[slot] = k;
            h[j] = buf[slot];
        }
        float a = wy[y], b = wy[OH + y];
        float* d = dst + r * OW;
        const float* h0 = h[0];
        const float* h1 = h[1];
        for (int64_t x = 0; x < OW; ++x) d[x] = a * h0[x] + b * h1[x];
    }
}
#endif
