"""Run-time facts about the OpenMP build (cf. sklearn.utils._openmp_helpers)."""

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


# ---------------------------------------------------------------------------------------
# Thread placement for streams. libgomp keeps one thread pool per master thread, and team
# thread i of a master is the same pthread in every parallel region, so pinning each team
# thread once (per lease) places every later kernel. Nothing here touches OMP_PLACES or
# OMP_PROC_BIND, which are process-wide and would make all streams' teams collide.
# ---------------------------------------------------------------------------------------
from libc.stdlib cimport malloc, free
from cython.parallel cimport parallel
cimport openmp

cdef extern from *:
    """
    #include <sched.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    static int dsl_pin_self(const int* cpus, int n) {
    #ifdef __linux__
        cpu_set_t s;
        CPU_ZERO(&s);
        for (int i = 0; i < n; ++i) if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &s);
        return sched_setaffinity(0, sizeof(s), &s);
    #else
        (void)cpus; (void)n; return -1;
    #endif
    }
    static long dsl_gettid(void) {
    #ifdef __linux__
        return (long)syscall(SYS_gettid);
    #else
        return -1;
    #endif
    }
    static int dsl_self_affinity(int* out, int cap) {
    #ifdef __linux__
        cpu_set_t s; int n = 0;
        if (sched_getaffinity(0, sizeof(s), &s) != 0) return -1;
        for (int c = 0; c < CPU_SETSIZE && n < cap; ++c) if (CPU_ISSET(c, &s)) out[n++] = c;
        return n;
    #else
        (void)out; (void)cap; return -1;
    #endif
    }
    """
    int dsl_pin_self(const int* cpus, int n) nogil
    long dsl_gettid() nogil
    int dsl_self_affinity(int* out, int cap) nogil

DEF MAX_REPORT_CPUS = 1024


def pin_team(list cpu_sets):
    """Pin OpenMP team thread t of the calling thread to ``cpu_sets[t]`` (a list of CPU
    ids); the calling thread is team thread 0. Returns the number of failed pins."""
    cdef int nteam = len(cpu_sets), t, off = 0, total = 0
    if nteam < 1:
        return 0
    for s in cpu_sets:
        total += len(s)
    cdef int* flat = <int*>malloc(sizeof(int) * (total + 1))
    cdef int* start = <int*>malloc(sizeof(int) * (nteam + 1))
    cdef int* rc = <int*>malloc(sizeof(int) * nteam)
    if flat == NULL or start == NULL or rc == NULL:
        free(flat); free(start); free(rc)
        raise MemoryError()
    try:
        for t, s in enumerate(cpu_sets):
            start[t] = off
            rc[t] = -1
            for c in s:
                flat[off] = <int>c
                off += 1
        start[nteam] = off
        with nogil, parallel(num_threads=nteam):
            t = openmp.omp_get_thread_num()
            if t < nteam:
                rc[t] = dsl_pin_self(flat + start[t], start[t + 1] - start[t])
        return sum(1 for t in range(nteam) if rc[t] != 0)
    finally:
        free(flat); free(start); free(rc)


def team_info(int nteam):
    """(team thread number, kernel thread id, sorted CPU affinity) for each thread of a
    team of ``nteam`` started from the calling thread: what tests observe."""
    cdef int t
    cdef long* tids = <long*>malloc(sizeof(long) * nteam)
    cdef int* counts = <int*>malloc(sizeof(int) * nteam)
    cdef int* cpus = <int*>malloc(sizeof(int) * nteam * MAX_REPORT_CPUS)
    if tids == NULL or counts == NULL or cpus == NULL:
        free(tids); free(counts); free(cpus)
        raise MemoryError()
    try:
        for t in range(nteam):
            counts[t] = -1
        with nogil, parallel(num_threads=nteam):
            t = openmp.omp_get_thread_num()
            if t < nteam:
                tids[t] = dsl_gettid()
                counts[t] = dsl_self_affinity(cpus + t * MAX_REPORT_CPUS, MAX_REPORT_CPUS)
        return [(t, tids[t], [cpus[t * MAX_REPORT_CPUS + k] for k in range(counts[t])])
                for t in range(nteam) if counts[t] >= 0]
    finally:
        free(tids); free(counts); free(cpus)


def thread_id():
    """The calling thread's kernel thread id (Linux)."""
    return dsl_gettid()
