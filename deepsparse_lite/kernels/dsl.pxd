# Declarations shared by every kernel module: the step record and error codes
# (csrc/dsl_plan.h), ISA levels, kernel forms and the execution context (csrc/dsl_cpu.h),
# threading helpers.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "dsl_plan.h" nogil:
    ctypedef struct dsl_step:
        int32_t op
        int32_t nt
        int32_t t[8]
        unsigned char params[544]   # the sub-op's record: kernels/params.pxd
    int DSL_OK, DSL_ERR_UNKNOWN_OP, DSL_ERR_INDEX_RANGE, DSL_ERR_BAD_PARAM, DSL_ERR_NO_MEMORY
    int DSL_FAM_MISC, DSL_FAM_DATA, DSL_FAM_ELTWISE, DSL_FAM_REDUCE, DSL_FAM_POOL, DSL_FAM_GEMM, DSL_FAM_SPARSE
    int DSL_FAM_QUANT
    int DSL_F32, DSL_U8, DSL_I8, DSL_U16, DSL_I16, DSL_I32, DSL_I64, DSL_BOOL, DSL_F16, DSL_F64
    int DSL_U32, DSL_U64, DSL_BF16, DSL_F8E4M3FN, DSL_F8E4M3FNUZ, DSL_F8E5M2, DSL_F8E5M2FNUZ

cdef extern from "dsl_cpu.h" nogil:
    int DSL_ISA_GENERIC, DSL_ISA_AVX2, DSL_ISA_AVX512
    int DSL_FORM_GENERIC, DSL_FORM_AVX2, DSL_FORM_AVX512, DSL_FORM_AVX512_ON_AVX2, DSL_NFORMS
    int DSL_KV_GEMM_TILE, DSL_KV_GEMM_PACK, DSL_KV_DWCONV, DSL_KV_UNARY, DSL_KV_BINARY
    int DSL_KV_REDUCE, DSL_KV_SOFTMAX, DSL_KV_LAYERNORM, DSL_KV_INSTNORM, DSL_KV_ARGEXT
    int DSL_KV_AFFINE, DSL_KV_POOL, DSL_KV_TRANSPOSE, DSL_KV_F16CVT, DSL_KV_SPMM, DSL_KV_QGEMM
    int DSL_KV_QUANT, DSL_KV_QCONV, DSL_KV_BGEMM, DSL_NKV
    ctypedef struct dsl_exec:
        int nt
        int cap
        uint64_t* hits
        const void* team
    int dsl_isa_hardware()
    int dsl_isa_detect()
    int dsl_form(int level, int cap)
    int dsl_form_avx2_only(int level, int cap)
    int dsl_form_autovec(int level, int cap)
    int dsl_form_vnni(int level, int cap)
    int dsl_kv_form(int kv, int level, int cap)
    void dsl_hit(const dsl_exec* x, int kv, int form)
    const unsigned char* dsl_kv_dispatch
    const char* const* dsl_kv_names

cdef extern from "dsl_threads.h" nogil:
    int dsl_threads_for(int64_t work, int64_t min_work_per_thread, int nt)
    int64_t dsl_chunk_lo(int64_t n, int chunk, int nchunks)

# Every family module defines:
#   cdef int run_<family>(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil
ctypedef int (*family_fn)(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil

# ---- the one serial-or-parallel loop of the kernel drivers ------------------------------
# (cf. scikit-learn's _openmp_helpers): a kernel decides how many threads a step deserves
# (dsl_threads_for, capped by its workspaces), then hands a range function and a context
# to run_ranges, which cuts [0, n) into nth contiguous chunks (boundaries at multiples of
# `align` elements, the last one at n) and runs them: on the calling thread (nth <= 1), on
# the stream lease the plan runs on (x.team: the runner and its pinned helpers, csrc/
# dsl_team.h), or one chunk per thread of an OpenMP team (plans run outside a Context).
# fn gets the chunk index (for a per-thread workspace) and returns a count that run_ranges
# sums (errors, e.g. bad indices).
from cython.parallel cimport prange

ctypedef int64_t (*range_fn)(const void* ctx, int64_t lo, int64_t hi, int chunk) noexcept nogil

cdef extern from "dsl_team.h" nogil:
    int64_t dsl_chunk_bound(int64_t n, int c, int nth, int64_t align)
    int64_t dsl_lease_run(const void* lease, range_fn fn, const void* ctx, int64_t n, int nth,
                          int64_t align)


cdef inline int64_t run_ranges(const dsl_exec* x, range_fn fn, const void* ctx, int64_t n,
                               int nth, int64_t align=1) noexcept nogil:
    cdef int c
    cdef int64_t total = 0
    if n <= 0:
        return 0
    if nth <= 1:
        return fn(ctx, 0, n, 0)
    if x.team != NULL:
        return dsl_lease_run(x.team, fn, ctx, n, nth, align)
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        total += fn(ctx, dsl_chunk_bound(n, c, nth, align), dsl_chunk_bound(n, c + 1, nth, align), c)
    return total
