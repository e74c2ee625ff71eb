/* How many threads a kernel should use: small work runs on the calling thread alone, so a
 * batch-1 plan of many tiny steps does not pay an OpenMP fork/join for each of them. */
#ifndef DSL_THREADS_H
#define DSL_THREADS_H
#include <stdint.h>

static inline int dsl_threads_for(int64_t work, int64_t min_work_per_thread, int nt) {
    if (nt <= 1 || work <= min_work_per_thread) return 1;
    int64_t t = work / min_work_per_thread;
    return t < nt ? (int)t : nt;
}

/* Static partition of [0, n) into nchunks nearly equal contiguous chunks. */
static inline int64_t dsl_chunk_lo(int64_t n, int chunk, int nchunks) {
    return (n * (int64_t)chunk) / nchunks;
}
#endif
