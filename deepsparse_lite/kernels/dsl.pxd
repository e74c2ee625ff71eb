# Declarations shared by every kernel module: the step record and error codes
# (csrc/dsl_plan.h), the run-time ISA choice (csrc/dsl_cpu.h) and threading helpers.
from libc.stdint cimport int32_t, int64_t

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
    int dsl_isa()
    void dsl_set_isa(int level)

cdef extern from "dsl_threads.h" nogil:
    int dsl_threads_for(int64_t work, int64_t min_work_per_thread, int nt)
    int64_t dsl_chunk_lo(int64_t n, int chunk, int nchunks)

# Every family module defines:  cdef int run_<family>(const dsl_step* s, char** p, int nt) noexcept nogil
ctypedef int (*family_fn)(const dsl_step* s, char** p, int nt) noexcept nogil
