from deepsparse_lite.kernels.dsl cimport dsl_step, dsl_exec
cdef int run_sparse(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil
