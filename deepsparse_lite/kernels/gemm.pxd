from deepsparse_lite.kernels.dsl cimport dsl_step
cdef int run_gemm(const dsl_step* s, char** p, int nt) noexcept nogil
