# Declarations shared by every kernel module: the step record and error codes
# (csrc/dsl_plan.h), ISA levels, kernel forms and the execution context (csrc/dsl_cpu.h),
# threading helpers.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "dsl_plan.h" nogil:
    ctypedef struct dsl_step:
        int32_t op
        int32_t nt
        int32_t t[8]
        int64_t i[64]
        float f[8]
    int DSL_OK, DSL_ERR_UNKNOWN_OP, DSL_ERR_INDEX_RANGE, DSL_ERR_BAD_PARAM, DSL_ERR_NO_MEMORY
    int DSL_FAM_MISC, DSL_FAM_DATA, DSL_FAM_ELTWISE, DSL_FAM_REDUCE, DSL_FAM_POOL, DSL_FAM_GEMM
    int DSL_F32, DSL_U8, DSL_I8, DSL_I32, DSL_I64, DSL_BOOL, DSL_F64

cdef extern from "dsl_cpu.h" nogil:
    int DSL_ISA_GENERIC, DSL_ISA_AVX2, DSL_ISA_AVX512
    int DSL_FORM_GENERIC, DSL_FORM_AVX2, DSL_FORM_AVX512, DSL_FORM_AVX512_ON_AVX2, DSL_NFORMS
    int DSL_KV_GEMM_TILE, DSL_KV_GEMM_PACK, DSL_KV_DWCONV, DSL_KV_UNARY, DSL_KV_BINARY
    int DSL_KV_REDUCE, DSL_KV_SOFTMAX, DSL_KV_LAYERNORM, DSL_KV_INSTNORM, DSL_KV_ARGEXT
    int DSL_KV_AFFINE, DSL_KV_POOL, DSL_KV_TRANSPOSE, DSL_NKV
    ctypedef struct dsl_exec:
        int nt
        int cap
        uint64_t* hits
    int dsl_isa_hardware()
    int dsl_isa_detect()
    int dsl_form(int level, int cap)
    int dsl_form_avx2_only(int level, int cap)
    int dsl_form_autovec(int level, int cap)
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
