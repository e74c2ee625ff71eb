/* N-d strided copy: the one data-movement primitive behind Transpose, Slice, Concat,
 * Split, Expand, Tile and layout changes. Shapes and byte strides are fixed at compile
 * time (dims already merged where contiguous). Rows [lo, hi) of the outer iteration space
 * (all dims but the last) are copied, so callers split rows across threads. */
#ifndef DSL_COPY_H
#define DSL_COPY_H
#include <stdint.h>
#include <string.h>

static inline void dsl_copy_rows(const char* src, char* dst, int ndim, int64_t esz,
                                 const int64_t* shape, const int64_t* ss, const int64_t* ds,
                                 int64_t lo, int64_t hi) {
    int64_t n_in = shape[ndim - 1], s_in = ss[ndim - 1], d_in = ds[ndim - 1];
    int contiguous = (s_in == esz && d_in == esz);
    for (int64_t r = lo; r < hi; ++r) {
        /* decode the row index into src/dst offsets over dims 0..ndim-2 */
        int64_t rem = r, so = 0, dof = 0;
        for (int d = ndim - 2; d >= 0; --d) {
            int64_t q = rem % shape[d];
            rem /= shape[d];
            so += q * ss[d];
            dof += q * ds[d];
        }
        const char* sp = src + so;
        char* dp = dst + dof;
        if (contiguous) {
            memcpy(dp, sp, (size_t)(n_in * esz));
        } else if (esz == 4) {
            for (int64_t k = 0; k < n_in; ++k)
                *(uint32_t*)(dp + k * d_in) = *(const uint32_t*)(sp + k * s_in);
        } else if (esz == 8) {
            for (int64_t k = 0; k < n_in; ++k)
                *(uint64_t*)(dp + k * d_in) = *(const uint64_t*)(sp + k * s_in);
        } else if (esz == 1) {
            for (int64_t k = 0; k < n_in; ++k) dp[k * d_in] = sp[k * s_in];
        } else {
            for (int64_t k = 0; k < n_in; ++k) memcpy(dp + k * d_in, sp + k * s_in, (size_t)esz);
        }
    }
}
#endif
