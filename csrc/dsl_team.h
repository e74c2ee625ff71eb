/* The threads of a stream: the parallel loop of the kernels when a plan runs on a stream.
 *
 * A request runs on a *lease*: an ordered set of the stream's cores. Thread 0 is whoever
 * runs the plan (the calling thread, pinned to the lease's first core); lease core i > 0
 * is served by its *helper*: a thread pinned to that core for the Context's lifetime.
 * `run_ranges` (kernels/dsl.pxd) hands chunk i of a parallel loop to helper i through its
 * own event word and runs chunk 0 itself, then waits (spinning) for the helpers.
 *
 * Why not OpenMP here: libgomp keeps one thread pool per master thread, so every caller
 * thread that ran a multi-core plan would own a pool, and as soon as the pools' threads
 * outnumber the CPUs libgomp cuts its spin-wait to ~100 iterations: every parallel region
 * then pays a futex wake-up (~30 us on a KVM guest, see dsl_sync.h). A helper here spins
 * for the Context's spin budget after each chunk, then sleeps; the plans of one caller
 * or of many find their helpers awake. (Plans run outside a stream, by compiler.execute,
 * still use OpenMP.)
 *
 * A helper whose core becomes a lease's first core (elastic leases move) is *parked*: told
 * to sleep at once, so it never competes with the thread running on its core.
 */
#ifndef DSL_TEAM_H
#define DSL_TEAM_H
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dsl_sync.h"

#define DSL_MAX_LEASE 256

typedef int64_t (*dsl_range_fn)(const void* ctx, int64_t lo, int64_t hi, int chunk);

/* [lo, hi) of chunk c of nth over n items, boundaries at multiples of align (the last at n) */
static inline int64_t dsl_chunk_bound(int64_t n, int c, int nth, int64_t align) {
    if (c >= nth) return n;
    int64_t b = (n * c) / nth;
    if (align > 1) b -= b % align;
    return b;
}

typedef struct {
    dsl_range_fn fn;
    const void* ctx;
    int64_t n, align;
    int nth;
    int64_t total;   /* the helpers' summed results */
    int remaining;   /* helpers still running their chunk */
} dsl_job;

#define DSL_H_RUN  0
#define DSL_H_PARK 1
#define DSL_H_STOP 2

typedef struct dsl_helper {
    dsl_event ev;          /* bumped by whoever gives the helper a job (or parks / stops it) */
    int state;             /* DSL_H_RUN / PARK / STOP */
    int cpu;               /* the core it is pinned to */
    int nallowed;          /* its affinity set (one core, or the stream's cores / node) */
    int allowed[DSL_MAX_LEASE];
    dsl_job* job;
    int chunk;
    int64_t spin_ns;
    int started;
    pthread_t thread;
    int64_t tid;           /* kernel thread id (tests check its affinity) */
    int64_t jobs_done;     /* chunks run (tests: the helpers did the work) */
    char pad_[64];
} dsl_helper;

typedef struct {
    int n;                                 /* threads: the runner + n - 1 helpers */
    int cpus[DSL_MAX_LEASE];
    dsl_helper* helpers[DSL_MAX_LEASE];    /* helpers[0] unused: the runner's own core */
} dsl_lease;

/* Run fn over [0, n) on the lease: chunk 0 here, chunk i on helper i (nth <= lease->n). */
static inline int64_t dsl_lease_run(const void* lease, dsl_range_fn fn, const void* ctx,
                                    int64_t n, int nth, int64_t align) {
    const dsl_lease* L = (const dsl_lease*)lease;
    if (nth > L->n) nth = L->n;
    if (nth <= 1 || n <= 1) return fn(ctx, 0, n, 0);
    dsl_job job;
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.align = align;
    job.nth = nth;
    job.total = 0;
    job.remaining = nth - 1;
    for (int i = 1; i < nth; ++i) {
        dsl_helper* h = L->helpers[i];
        h->job = &job;
        h->chunk = i;
        dsl_event_bump(&h->ev);
    }
    int64_t r = fn(ctx, 0, dsl_chunk_bound(n, 1, nth, align), 0);
    dsl_spin_until_zero(&job.remaining);
    return r + __atomic_load_n(&job.total, __ATOMIC_ACQUIRE);
}

static inline long dsl_gettid_(void) {
#if defined(__linux__)
    return (long)syscall(SYS_gettid);
#else
    return -1;
#endif
}

static inline int dsl_set_affinity(const int* cpus, int n) {
#if defined(__linux__)
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int i = 0; i < n; ++i)
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &s);
    return sched_setaffinity(0, sizeof(s), &s);
#else
    (void)cpus; (void)n;
    return -1;
#endif
}

static void* dsl_helper_main(void* arg) {
    dsl_helper* h = (dsl_helper*)arg;
    dsl_set_affinity(h->allowed, h->nallowed);
    __atomic_store_n(&h->tid, (int64_t)dsl_gettid_(), __ATOMIC_RELEASE);
    /* the word's value at creation (memset): a job may be posted before this thread runs */
    uint32_t seen = 0;
    for (;;) {
        const int st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
        if (st == DSL_H_STOP) break;
        seen = dsl_event_wait(&h->ev, seen, st == DSL_H_PARK ? 0 : h->spin_ns);
        if (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE) == DSL_H_STOP) break;
        dsl_job* j = __atomic_exchange_n(&h->job, (dsl_job*)0, __ATOMIC_ACQ_REL);
        if (j) {
            const int c = h->chunk;
            const int64_t r = j->fn(j->ctx, dsl_chunk_bound(j->n, c, j->nth, j->align),
                                    dsl_chunk_bound(j->n, c + 1, j->nth, j->align), c);
            if (r) __atomic_fetch_add(&j->total, r, __ATOMIC_RELAXED);
            ++h->jobs_done;
            __atomic_fetch_sub(&j->remaining, 1, __ATOMIC_RELEASE);
        }
    }
    return (void*)0;
}

/* Start a helper pinned to `allowed` (its core first). 0 on success. */
static inline int dsl_helper_start(dsl_helper* h, int cpu, const int* allowed, int nallowed,
                                   int64_t spin_ns) {
    memset(h, 0, sizeof(*h));
    h->cpu = cpu;
    h->nallowed = nallowed < DSL_MAX_LEASE ? nallowed : DSL_MAX_LEASE;
    for (int i = 0; i < h->nallowed; ++i) h->allowed[i] = allowed[i];
    h->spin_ns = spin_ns;
    h->state = DSL_H_RUN;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    const int rc = pthread_create(&h->thread, &attr, dsl_helper_main, h);
    pthread_attr_destroy(&attr);
    if (rc == 0) h->started = 1;
    return rc;
}

/* Park (or unpark) a helper. Parking a spinning helper moves its word so that it leaves
 * its spin and sleeps; one already asleep is left alone (no futex wake-up: an IPI). An
 * unparked helper stays asleep until its next chunk wakes it. */
static inline void dsl_helper_park(dsl_helper* h, int park) {
    __atomic_store_n(&h->state, park ? DSL_H_PARK : DSL_H_RUN, __ATOMIC_SEQ_CST);
    if (park && !__atomic_load_n(&h->ev.sleepers, __ATOMIC_SEQ_CST))
        __atomic_fetch_add(&h->ev.word, 1, __ATOMIC_SEQ_CST);
}

static inline void dsl_helper_stop(dsl_helper* h) {
    if (!h->started) return;
    __atomic_store_n(&h->state, DSL_H_STOP, __ATOMIC_RELEASE);
    dsl_event_bump(&h->ev);
    pthread_join(h->thread, (void**)0);
    h->started = 0;
}
#endif
