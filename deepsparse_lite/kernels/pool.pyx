"""Pooling kernels (family 4): max / average / global pooling."""
from deepsparse_lite.kernels.dsl cimport dsl_step, DSL_ERR_UNKNOWN_OP


cdef int run_pool(const dsl_step* s, char** p, int nt) noexcept nogil:
    return DSL_ERR_UNKNOWN_OP
