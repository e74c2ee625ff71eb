"""Elementwise kernels (family 2): unary math, broadcasting binary ops, where, cast."""
from deepsparse_lite.kernels.dsl cimport dsl_step, DSL_ERR_UNKNOWN_OP


cdef int run_eltwise(const dsl_step* s, char** p, int nt) noexcept nogil:
    return DSL_ERR_UNKNOWN_OP
