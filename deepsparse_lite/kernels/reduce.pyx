"""Reduction and normalisation kernels (family 3): reduce, softmax, layernorm, argmax, topk, LRN."""
from deepsparse_lite.kernels.dsl cimport dsl_step, DSL_ERR_UNKNOWN_OP


cdef int run_reduce(const dsl_step* s, char** p, int nt) noexcept nogil:
    return DSL_ERR_UNKNOWN_OP
