"""GEMM-family kernels (family 5): packed fp32 GEMM, MatMul, Conv, ConvTranspose."""
from deepsparse_lite.kernels.dsl cimport dsl_step, DSL_ERR_UNKNOWN_OP


cdef int run_gemm(const dsl_step* s, char** p, int nt) noexcept nogil:
    return DSL_ERR_UNKNOWN_OP
