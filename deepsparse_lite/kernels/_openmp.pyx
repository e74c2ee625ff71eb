"""Run-time facts about the OpenMP build (cf. sklearn.utils._openmp_helpers)."""
from deepsparse_lite.kernels.dsl cimport dsl_isa, dsl_set_isa

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int dsl_openmp_built(void) { return 1; }
    static int dsl_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int dsl_openmp_built(void) { return 0; }
    static int dsl_omp_max_threads(void) { return 1; }
    #endif
    """
    int dsl_openmp_built() nogil
    int dsl_omp_max_threads() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (parallel execution available)."""
    return bool(dsl_openmp_built())


def omp_max_threads():
    return dsl_omp_max_threads()


def isa_level():
    """The ISA variant this module's kernels use: 0 generic, 1 avx2+fma, 2 avx512."""
    return dsl_isa()


def set_isa_level(int level):
    dsl_set_isa(level)
