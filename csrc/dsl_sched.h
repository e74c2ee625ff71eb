/* The request scheduler of a Context, in C: streams, leases, the shared queue, arenas.
 *
 * A request is run by its own calling thread whenever a stream (an elastic stream: enough
 * of its cores) is free: the caller pins itself to the lease's first core, runs the plan
 * with the lease's helpers (dsl_team.h), and unpins. No thread is woken to start it and
 * none to report it done: on a KVM guest each such wake-up is an inter-processor
 * interrupt of ~30 us, more than a small model's whole hand-off budget.
 *
 * When every stream is busy the request waits in the Context's one queue (all the
 * engines of a Context share it) and its caller sleeps. The thread that finishes a
 * request then runs up to `combine_max` short queued requests on the lease it still holds
 * (the lease is warm, its helpers awake) and wakes their callers with the results; if
 * requests remain it hands its lease to the next one's caller, who runs its own request.
 * A stream is never idle while requests wait, every request completes, and one engine's
 * requests start in arrival order (across engines: fair queueing, below).
 *
 * Elastic streams lease cores per request: a lone request gets every core of the stream,
 * k concurrent ones a share each (n - k + 1 for the first, 1 for the others), judged from
 * the concurrency seen within the last few request durations (demand sampled at one
 * instant flips between 1 and 2 as callers re-submit). Static streams (single_stream,
 * multi_stream) lease all their cores.
 *
 * Fair queueing (DSL_FAIR, on by default): when requests of several engines wait, the
 * one to serve next is the first waiting request of the engine that has had the least core
 * time (run time x lease cores; charged the expected cost at dispatch, corrected at the
 * end). An engine that had nothing queued or running re-enters at the least service of the
 * busy ones, so idle time earns no credit. Served in arrival order, two engines with two
 * callers each took turns, and the costlier one held the cores in proportion to its cost
 * (BERT-base 2.5x ResNet-50's time); fair, they get the same core time. The thread that
 * finishes a request runs a queued one on its lease (combining) only when that one's
 * engine is short (<= DSL_COMBINE_MAX_NS): a long one is handed to its own caller, and
 * this thread returns to submit its next request (combining a long one left an engine's
 * second request alone in the queue, and fairness had nothing to choose from).
 *
 * Short requests do not wait behind long ones: between two steps of a request, its runner
 * looks at the queue (one relaxed load when it is empty). When a request of another
 * engine waits whose runs take at most 1/preempt_ratio of this engine's (learned per
 * engine), the runner pauses its own request, runs the waiting one to completion on the
 * same lease and wakes its caller, then resumes where it stopped. A paused request keeps
 * at least 2/3 of its lease's time (its own steps >= 2x the nested runs), nested runs never
 * nest, and requests of one engine never overtake each other: none starves.
 *
 * Arenas live per (stream, lease-head core, slot): slot 0 for the request holding the
 * lease, slot 1 for one nested inside it. The lease head is held by one request at a
 * time, so a request owns its arena without a lock. A slot is shared by every engine of
 * the Context (a request binds its plan's pointer table into the arena on every run) and
 * grows to the largest plan run there: memory per worker, not per (worker, model).
 */
#ifndef DSL_SCHED_H
#define DSL_SCHED_H
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dsl_sync.h"
#include "dsl_team.h"

#define DSL_R_QUEUED 0
#define DSL_R_HANDED 1 /* a lease was handed to the waiting owner: it runs its own request */
#define DSL_R_DONE   2 /* another thread ran it */

#define DSL_BIND_CORE   0 /* each thread pinned to one core of its lease */
#define DSL_BIND_SOCKET 1 /* threads anywhere on the stream's NUMA node(s) */
#define DSL_BIND_NONE   2 /* threads anywhere on the lease's cores */

#define DSL_SCHED_NO_MEMORY 4 /* = DSL_ERR_NO_MEMORY */
#define DSL_OTHERS_NS 2000000 /* callers count as several for 2 ms after a change of thread */
/* nest_share k (DSL_NEST_SHARE, default 3): a paused request keeps >= k / (k + 1) of its lease's
 * time. Measured (ResNet-50 + BERT-base + MLP, 2 callers each, 2 streams; items/s, MLP p99;
 * Intel Xeon, with fair queueing): k = 2: 8.0 / 3.5 / 1,793, 3.97 ms; k = 3: 9.1 / 4.0 / 1,363,
 * 4.37 ms; k = 4 (earlier, FIFO): p99 past 10x the MLP alone (see benchmarks/README.md) */
/* a queued request is run by the thread that finished the one before (combined) only when its
 * engine's runs take at most this long (unknown: yes) */
#define DSL_COMBINE_MAX_NS 1000000

typedef struct dsl_req dsl_req;
/* Runs one request on a lease with an arena of >= r->arena_bytes; returns 0 or an error. */
typedef int (*dsl_run_fn)(dsl_req* r, const dsl_lease* L, char* arena, void* user);

struct dsl_req {
    void* args;            /* what run_fn needs (the bound plan) */
    int64_t engine;        /* arena key */
    int64_t arena_bytes;
    int rc;
    int64_t failed;        /* the failing step (set by run_fn) */
    int64_t t0_ns, t1_ns;  /* when it ran (CLOCK_MONOTONIC = time.perf_counter) */
    int stream;
    int ncpus;
    int cpus[DSL_MAX_LEASE];
    dsl_event ev;          /* DSL_R_* */
    struct dsl_grant* handed;
    dsl_req* next;
    /* set by the scheduler while it runs (dsl_run_on): for dsl_sched_between */
    void* sched;
    const void* grant;
    int nested;            /* runs inside another request's pause: slot 1, never pauses */
    int64_t nested_ns;     /* time its lease spent on nested requests so far */
};

typedef struct { int64_t engine; char* base; int64_t bytes; } dsl_arena; /* engine: the slot */

#define DSL_MAX_COSTS 64
/* per engine: a moving average of its run times (`ns`, wall) and of their core time (`cns`:
 * wall x the lease's cores), and (fair queueing) the service it has had: `vt`, core-ns,
 * charged the expected core time when a request is dispatched and corrected to the
 * measured one when it ends; `outstanding`: its requests queued or running */
typedef struct { int64_t engine; double ns, cns; double vt; int outstanding; } dsl_cost;

typedef struct {
    dsl_arena* a;
    int n, cap;
} dsl_arena_list;

typedef struct {
    int index, n, elastic;
    int cpus[DSL_MAX_LEASE];
    int nsocket;
    int* socket_cpus;                 /* the CPUs of the stream's NUMA node(s) */
    dsl_helper* helpers[DSL_MAX_LEASE]; /* helper on cpus[i], or NULL */
    int busy;                         /* static stream: held */
    int free_idx[DSL_MAX_LEASE];      /* elastic: free cores (indices into cpus), in order */
    int nfree;
    int active;                       /* elastic: leases held */
    int64_t seen_at[DSL_MAX_LEASE + 2];
    double dur_ns;
    dsl_arena_list arenas[DSL_MAX_LEASE]; /* by lease-head index */
} dsl_stream;

typedef struct dsl_grant {
    dsl_lease L;
    int stream;
    int idx[DSL_MAX_LEASE]; /* the lease's cores as indices into the stream's cpus */
} dsl_grant;

typedef struct {
    dsl_spinlock lock;
    int nstreams;
    dsl_stream* streams;
    dsl_req* qhead;
    dsl_req* qtail;
    int queued;
    int64_t spin_ns;
    int binding;
    int combine_max;
    dsl_run_fn run;
    void* user;
    int started;
    int sticky;                                            /* placement (see below) */
    void* placement;                                       /* dsl_placement* */
    int64_t served_inline, served_combined, served_handed; /* counters (tests, tuning) */
    int64_t last_tid;   /* the thread that submitted the last request */
    int64_t others_ns;  /* when a request last came from a different thread than the one before */
    int preempt;        /* pause long requests for short ones of other engines (see top) */
    int preempt_ratio;  /* "short": an engine's runs take <= 1/preempt_ratio of the other's */
    int64_t served_nested;
    int fair;           /* the queue serves the engine with the least service first (see top) */
    int nest_share;     /* a paused request keeps >= nest_share / (nest_share + 1) of its time */
    dsl_cost costs[DSL_MAX_COSTS];
    int ncosts;
} dsl_sched;

static __thread int dsl_last_stream = -1; /* where this thread ran last: preferred */

static inline int dsl_imin(int a, int b) { return a < b ? a : b; }

/* ---- arenas ---------------------------------------------------------------------------- */

static char* dsl_arena_for(dsl_stream* st, int head, int64_t engine, int64_t bytes) {
    dsl_arena_list* l = &st->arenas[head];
    for (int i = 0; i < l->n; ++i) {
        if (l->a[i].engine != engine) continue;
        if (l->a[i].bytes >= bytes) return l->a[i].base;
        free(l->a[i].base);
        l->a[i].base = 0;
        l->a[i].bytes = 0;
        void* p = 0;
        if (posix_memalign(&p, 64, (size_t)(bytes > 0 ? bytes : 64)) != 0) return 0;
        l->a[i].base = (char*)p;
        l->a[i].bytes = bytes;
        return (char*)p;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        dsl_arena* na = (dsl_arena*)realloc(l->a, (size_t)cap * sizeof(dsl_arena));
        if (!na) return 0;
        l->a = na;
        l->cap = cap;
    }
    void* p = 0;
    if (posix_memalign(&p, 64, (size_t)(bytes > 0 ? bytes : 64)) != 0) return 0;
    l->a[l->n].engine = engine;
    l->a[l->n].base = (char*)p;
    l->a[l->n].bytes = bytes;
    ++l->n;
    return (char*)p;
}

/* An engine leaves: forget its run-time average. Arenas are shared by every engine (they
 * stay, sized for the largest plan run so far, until the Context closes). */
static void dsl_sched_forget(dsl_sched* S, int64_t engine) {
    dsl_lock(&S->lock);
    for (int i = 0; i < S->ncosts; ++i)
        if (S->costs[i].engine == engine) {
            S->costs[i] = S->costs[--S->ncosts];
            break;
        }
    dsl_unlock(&S->lock);
}

/* The bytes of every arena: out[i] for i < max, as (stream, head index, slot, bytes)
 * quadruples; returns how many exist (lock taken). */
static int dsl_sched_arenas(dsl_sched* S, int64_t* out, int max) {
    int n = 0;
    dsl_lock(&S->lock);
    for (int s = 0; s < S->nstreams; ++s)
        for (int h = 0; h < S->streams[s].n; ++h) {
            const dsl_arena_list* l = &S->streams[s].arenas[h];
            for (int i = 0; i < l->n; ++i, ++n)
                if (n < max) {
                    out[4 * n] = s;
                    out[4 * n + 1] = h;
                    out[4 * n + 2] = l->a[i].engine;
                    out[4 * n + 3] = l->a[i].bytes;
                }
        }
    dsl_unlock(&S->lock);
    return n;
}

/* Per engine known to the scheduler: (engine, mean run ns, lease-time service ns) into
 * out[3 * i ...] for i < max (lock taken); returns how many. */
static int dsl_sched_service(dsl_sched* S, double* out, int max) {
    dsl_lock(&S->lock);
    const int n = S->ncosts;
    for (int i = 0; i < n && i < max; ++i) {
        out[3 * i] = (double)S->costs[i].engine;
        out[3 * i + 1] = S->costs[i].ns;
        out[3 * i + 2] = S->costs[i].vt;
    }
    dsl_unlock(&S->lock);
    return n;
}

/* Free every arena and arena list (the scheduler is stopping). */
static void dsl_sched_free_arenas(dsl_sched* S) {
    for (int s = 0; s < S->nstreams; ++s)
        for (int h = 0; h < S->streams[s].n; ++h) {
            dsl_arena_list* l = &S->streams[s].arenas[h];
            for (int i = 0; i < l->n; ++i) free(l->a[i].base);
            free(l->a);
            l->a = 0;
            l->n = l->cap = 0;
        }
}

/* ---- leases ------------------------------------------------------------------------------ */

/* The highest concurrency seen within the last few request durations (lock held). */
static int dsl_demand(dsl_stream* st, int now_demand, int64_t now) {
    const int top = st->n + 1;
    int k = now_demand > top ? top : now_demand;
    st->seen_at[k] = now;
    const double window = 4.0 * st->dur_ns + 1e5;
    for (int d = top; d > k; --d)
        if (st->seen_at[d] && (double)(now - st->seen_at[d]) <= window) return d;
    return k;
}

static void dsl_grant_fill(dsl_stream* st, dsl_grant* g, const int* idx, int n) {
    g->stream = st->index;
    g->L.n = n;
    for (int i = 0; i < n; ++i) {
        g->idx[i] = idx[i];
        g->L.cpus[i] = st->cpus[idx[i]];
        g->L.helpers[i] = i ? st->helpers[idx[i]] : (dsl_helper*)0;
    }
}

/* Take a lease on stream s if it has one free (lock held). */
static int dsl_claim_on(dsl_sched* S, int s, dsl_grant* g) {
    dsl_stream* st = &S->streams[s];
    if (!st->elastic) {
        if (st->busy) return 0;
        st->busy = 1;
        int idx[DSL_MAX_LEASE];
        for (int i = 0; i < st->n; ++i) idx[i] = i;
        dsl_grant_fill(st, g, idx, st->n);
        return 1;
    }
    /* demand is recorded even when no core is free: a request that finds the stream fully
     * leased is concurrency too (else a lone request's whole-stream lease would hide the
     * second caller, whose requests then queue behind it, every lease the whole stream) */
    const int demand = dsl_demand(st, st->active + 1 + S->queued, dsl_now_ns());
    if (st->nfree == 0) return 0;
    int want = st->n - demand + 1;
    if (want < 1) want = 1;
    if (want > st->nfree) want = st->nfree;
    dsl_grant_fill(st, g, st->free_idx, want);
    memmove(st->free_idx, st->free_idx + want, (size_t)(st->nfree - want) * sizeof(int));
    st->nfree -= want;
    st->active += 1;
    /* the runner takes the lease's first core: its helper must not compete for it */
    if (st->helpers[g->idx[0]]) dsl_helper_park(st->helpers[g->idx[0]], 1);
    return 1;
}

static int dsl_claim(dsl_sched* S, dsl_grant* g) {
    const int pref = dsl_last_stream;
    if (pref >= 0 && pref < S->nstreams && dsl_claim_on(S, pref, g)) return 1;
    for (int s = 0; s < S->nstreams; ++s)
        if (s != pref && dsl_claim_on(S, s, g)) return 1;
    return 0;
}

/* Give a lease back (lock held); `dur` is the duration of the requests it ran. */
static void dsl_release(dsl_sched* S, dsl_grant* g, int64_t dur) {
    dsl_stream* st = &S->streams[g->stream];
    if (!st->elastic) {
        st->busy = 0;
        return;
    }
    st->dur_ns = st->dur_ns == 0.0 ? (double)dur : 0.8 * st->dur_ns + 0.2 * (double)dur;
    if (st->helpers[g->idx[0]]) dsl_helper_park(st->helpers[g->idx[0]], 0);
    /* back into the free list, kept in stream order */
    for (int i = 0; i < g->L.n; ++i) {
        int v = g->idx[i], j = st->nfree;
        while (j > 0 && st->free_idx[j - 1] > v) {
            st->free_idx[j] = st->free_idx[j - 1];
            --j;
        }
        st->free_idx[j] = v;
        ++st->nfree;
    }
    st->active -= 1;
}

/* ---- the calling thread's placement ---------------------------------------------------
 * A request runs on its caller's thread, so the caller is placed on the lease: pinned to
 * the lease's first core (DSL_BIND_CORE), or allowed on the lease's cores / the stream's
 * NUMA node(s). Setting and restoring a thread's affinity costs ~5 us a pair on a KVM
 * guest (measured), half the hand-off budget, so by default the placement is *sticky*: a
 * thread stays where its last request ran, and the next request on the same lease head
 * makes no system call. The thread's own affinity is saved at its first request and put
 * back when the Context closes (dsl_sched_restore_callers). With sticky = 0 every request
 * pins and restores. */

#define DSL_MAX_CALLERS 1024

typedef struct {
#if defined(__linux__)
    cpu_set_t mask;
#endif
    int64_t tid;
} dsl_caller;

static __thread const void* dsl_pin_sched = 0; /* the scheduler that placed this thread */
static __thread uint64_t dsl_pin_epoch = 0;
static __thread int dsl_pin_key = -1;          /* what it placed it on (a lease head CPU) */
#if defined(__linux__)
static __thread cpu_set_t dsl_pin_orig;        /* the thread's own affinity */
static __thread cpu_set_t dsl_pin_orig_call;   /* its affinity before a per-request pin */
#endif
static __thread int dsl_pin_orig_valid = 0;
static __thread int64_t dsl_pin_tid = 0;       /* its kernel thread id, once known */

static inline int64_t dsl_self_tid(void) {
    if (!dsl_pin_tid) dsl_pin_tid = (int64_t)dsl_gettid_();
    return dsl_pin_tid;
}

/* One sticky caller per lease head. A second thread kept on the same core would be
 * runnable there beside the one running a request (its Python code, its wait for the GIL),
 * and the kernel does not preempt a running thread for a woken one (EEVDF runs the current
 * one to its slice): it waits for the next tick, 4 ms (seen as the p99 with 2 callers on
 * one stream). So the first thread to run on a lease head owns it and stays pinned; when
 * a second live thread runs there, the head becomes *shared*: the owner gets its own
 * affinity back at once and every thread pins for its request only (~5 us a request, paid
 * only where callers outnumber that head's streams). */
#define DSL_MAX_OWNERS 256
typedef struct {
    int key;
    int shared;
    int64_t tid;
} dsl_owner;

typedef struct {
    dsl_caller callers[DSL_MAX_CALLERS];
    int ncallers;
    uint64_t epoch;
    dsl_owner owners[DSL_MAX_OWNERS];
    int nowners;
#if defined(__linux__)
    cpu_set_t base;  /* the first caller's own affinity (see dsl_own_mask) */
#endif
    int base_valid;
} dsl_placement;

/* Epochs are unique in the process, not per scheduler: a thread remembers the scheduler
 * (its address) and epoch it was placed by, and a Context closed and freed can have its
 * address reused by the next one. With per-scheduler epochs starting at 0 the new one
 * looked like the old one, and its first caller skipped its pin (seen in CI: the main
 * thread, restored by one test's close, was not pinned by the next test's Context). */
static uint64_t dsl_epoch_source = 0;
static inline uint64_t dsl_next_epoch(void) {
    return __atomic_add_fetch(&dsl_epoch_source, 1, __ATOMIC_RELAXED);
}

static dsl_placement* dsl_placement_new(void) {
    dsl_placement* P = (dsl_placement*)calloc(1, sizeof(dsl_placement));
    if (P) P->epoch = dsl_next_epoch();
    return P;
}

static dsl_owner* dsl_owner_find(dsl_placement* P, int key) {
    for (int i = 0; i < P->nowners; ++i)
        if (P->owners[i].key == key) return &P->owners[i];
    return 0;
}

/* Make `tid` the owner of `key`, giving up the head it owned before (lock held). Returns 0
 * when the table is full (the thread then pins per request). */
static int dsl_own(dsl_placement* P, int key, int64_t tid) {
    for (int i = 0; i < P->nowners;) {
        if (!P->owners[i].shared && (P->owners[i].tid == tid || P->owners[i].key == key))
            P->owners[i] = P->owners[--P->nowners];
        else
            ++i;
    }
    if (P->nowners == DSL_MAX_OWNERS) return 0;
    P->owners[P->nowners].key = key;
    P->owners[P->nowners].shared = 0;
    P->owners[P->nowners].tid = tid;
    ++P->nowners;
    return 1;
}

/* The affinity a thread calls its own, from the one it has now (lock held). A thread
 * started by a sticky caller inherits that caller's one core: when its mask is exactly
 * one core that this scheduler keeps a caller on, it is taken to be inherited and the
 * first caller's own affinity is used instead (seen: a benchmark warmed up in its main
 * thread, then started 2 callers, which "owned" core 0 only). */
#if defined(__linux__)
static void dsl_own_mask(dsl_placement* P, cpu_set_t* m, int64_t tid) {
    if (!P->base_valid) {
        P->base = *m;
        P->base_valid = 1;
        return;
    }
    if (CPU_COUNT(m) != 1 || CPU_COUNT(&P->base) <= 1) return;
    for (int i = 0; i < P->nowners; ++i)
        if (P->owners[i].tid != tid && CPU_ISSET(P->owners[i].key & 0xffff, m)) {
            *m = P->base;
            return;
        }
}
#endif

static void dsl_place_mask(dsl_sched* S, const dsl_grant* g) {
    const dsl_stream* st = &S->streams[g->stream];
    if (S->binding == DSL_BIND_CORE)
        dsl_set_affinity(g->L.cpus, 1);
    else if (S->binding == DSL_BIND_SOCKET && st->nsocket > 0)
        dsl_set_affinity(st->socket_cpus, st->nsocket);
    else
        dsl_set_affinity(g->L.cpus, g->L.n);
}

#if defined(__linux__)
/* Whether thread `tid` of this process has exited, waiting up to 2 ms for one that is
 * finishing (tgkill with signal 0 only checks). Paid once per lease head, when a second
 * thread first runs there. */
static int dsl_thread_gone(int64_t tid) {
    const int64_t until = dsl_now_ns() + 2000000;
    for (;;) {
        if (syscall(SYS_tgkill, getpid(), (pid_t)tid, 0) != 0 && errno == ESRCH) return 1;
        if (dsl_now_ns() > until) return 0;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, 0);
    }
}
#endif

/* Place the calling thread for grant g; *restore is set when it must be undone after. */
static void dsl_place_caller(dsl_sched* S, dsl_placement* P, int sticky, const dsl_grant* g,
                             int* restore) {
    *restore = 0;
#if defined(__linux__)
    const int key = S->binding == DSL_BIND_CORE ? g->L.cpus[0] : (g->stream << 16) | g->L.cpus[0];
    if (!sticky) {
        if (sched_getaffinity(0, sizeof(dsl_pin_orig), &dsl_pin_orig) == 0) *restore = 1;
        dsl_place_mask(S, g);
        return;
    }
    const int placed = dsl_pin_sched == (const void*)S && dsl_pin_epoch == P->epoch;
    const int64_t tid = dsl_self_tid();
    int64_t victim = 0;
    int mine = 0;
    cpu_set_t victim_mask;
    dsl_lock(&S->lock);
    dsl_owner* o = dsl_owner_find(P, key);
    if (o && !o->shared && o->tid != tid) {
        /* another thread owns the head: has it exited? (checked without the lock: a thread
         * Python has joined may still be finishing, seen in a third of joins) */
        const int64_t other = o->tid;
        dsl_unlock(&S->lock);
        const int gone = dsl_thread_gone(other);
        dsl_lock(&S->lock);
        o = dsl_owner_find(P, key);
        if (o && !o->shared && o->tid == other && gone) o = 0;
    }
    if (!o) {
        mine = dsl_own(P, key, tid);
    } else if (!o->shared && o->tid == tid) {
        mine = 1;
    } else if (!o->shared) { /* a second live thread: the head becomes shared */
        o->shared = 1;
        for (int i = 0; i < P->ncallers; ++i)
            if (P->callers[i].tid == o->tid) {
                victim = o->tid;
                victim_mask = P->callers[i].mask;
            }
    }
    dsl_unlock(&S->lock);
    if (victim) sched_setaffinity((pid_t)victim, sizeof(victim_mask), &victim_mask);
    if (!mine) { /* pin for this request only */
        if (placed && dsl_pin_key >= 0) { /* it was an owner here or elsewhere: give back */
            *restore = 1;
            dsl_pin_key = -1;
        } else if (sched_getaffinity(0, sizeof(dsl_pin_orig_call), &dsl_pin_orig_call) == 0) {
            dsl_lock(&S->lock);
            dsl_own_mask(P, &dsl_pin_orig_call, tid);
            dsl_unlock(&S->lock);
            *restore = 2;
        }
        dsl_place_mask(S, g);
        return;
    }
    if (placed && dsl_pin_key == key) return; /* already there: no system call */
    if (dsl_pin_sched != (const void*)S || dsl_pin_epoch != P->epoch) {
        if (!dsl_pin_orig_valid) {
            if (sched_getaffinity(0, sizeof(dsl_pin_orig), &dsl_pin_orig) != 0) return;
            dsl_pin_orig_valid = 1;
        }
        dsl_lock(&S->lock);
        dsl_own_mask(P, &dsl_pin_orig, tid);
        if (P->ncallers < DSL_MAX_CALLERS) {
            P->callers[P->ncallers].mask = dsl_pin_orig;
            P->callers[P->ncallers].tid = tid;
            ++P->ncallers;
        }
        dsl_unlock(&S->lock);
        dsl_pin_sched = S;
        dsl_pin_epoch = P->epoch;
    }
    dsl_place_mask(S, g);
    dsl_pin_key = key;
#else
    (void)S; (void)P; (void)sticky; (void)g;
#endif
}

static void dsl_unplace_caller(int restore) {
#if defined(__linux__)
    if (restore == 1) sched_setaffinity(0, sizeof(dsl_pin_orig), &dsl_pin_orig);
    if (restore == 2) sched_setaffinity(0, sizeof(dsl_pin_orig_call), &dsl_pin_orig_call);
#else
    (void)restore;
#endif
}

/* Give every thread this scheduler placed its own affinity back (the Context closes). */
static void dsl_sched_restore_callers(dsl_sched* S, dsl_placement* P) {
    dsl_lock(&S->lock);
#if defined(__linux__)
    for (int i = 0; i < P->ncallers; ++i)
        sched_setaffinity((pid_t)P->callers[i].tid, sizeof(P->callers[i].mask), &P->callers[i].mask);
#endif
    P->ncallers = 0;
    P->nowners = 0;
    P->epoch = dsl_next_epoch();
    dsl_unlock(&S->lock);
}

/* ---- running ---------------------------------------------------------------------------- */

/* The moving average of an engine's run times, 0 when unknown (lock held). */
static double dsl_cost_of(const dsl_sched* S, int64_t engine) {
    for (int i = 0; i < S->ncosts; ++i)
        if (S->costs[i].engine == engine) return S->costs[i].ns;
    return 0.0;
}

/* The engine's record, made when first seen (lock held); NULL when the table is full. */
static dsl_cost* dsl_cost_rec(dsl_sched* S, int64_t engine) {
    for (int i = 0; i < S->ncosts; ++i)
        if (S->costs[i].engine == engine) return &S->costs[i];
    if (S->ncosts == DSL_MAX_COSTS) return 0;
    dsl_cost* c = &S->costs[S->ncosts++];
    c->engine = engine;
    c->ns = 0.0;
    c->cns = 0.0;
    c->vt = 0.0;
    c->outstanding = 0;
    return c;
}

static void dsl_cost_add(dsl_sched* S, int64_t engine, double ns, int ncpus) {
    dsl_cost* c = dsl_cost_rec(S, engine);
    if (!c) return;
    const double cns = ns * (double)ncpus;
    c->ns = c->ns == 0.0 ? ns : 0.75 * c->ns + 0.25 * ns;
    c->cns = c->cns == 0.0 ? cns : 0.75 * c->cns + 0.25 * cns;
}

/* A request of `engine` arrives (lock held). An engine with nothing queued or running
 * re-enters at the least service of the engines that are busy: service it did not ask
 * for while idle is not owed to it (else a returning engine would hold every stream until
 * it caught up). */
static void dsl_fair_arrive(dsl_sched* S, int64_t engine) {
    dsl_cost* c = dsl_cost_rec(S, engine);
    if (!c) return;
    if (c->outstanding++ == 0) {
        double floor = -1.0;
        for (int i = 0; i < S->ncosts; ++i)
            if (S->costs[i].outstanding > 0 && &S->costs[i] != c && (floor < 0.0 || S->costs[i].vt < floor))
                floor = S->costs[i].vt;
        if (floor > c->vt) c->vt = floor;
    }
}

/* A request is dispatched (lock held): charge its engine the expected core time. */
static double dsl_fair_charge(dsl_sched* S, int64_t engine) {
    dsl_cost* c = dsl_cost_rec(S, engine);
    if (!c) return 0.0;
    c->vt += c->cns;
    return c->cns;
}

/* A request has ended (lock held): its engine's service becomes the measured core time. */
static void dsl_fair_settle(dsl_sched* S, int64_t engine, double charged, double cns) {
    dsl_cost* c = dsl_cost_rec(S, engine);
    if (!c) return;
    c->vt += cns - charged;
    if (c->outstanding > 0) c->outstanding -= 1;
}

/* The queued request to serve next (lock held, queue not empty), and in *prev_out the one
 * before it: the oldest one without fair queueing; with it, the first waiting request of
 * the engine that has had the least service (ties: the older). One engine's requests keep
 * their order. */
static dsl_req* dsl_queue_pick(dsl_sched* S, dsl_req** prev_out) {
    dsl_req *best = S->qhead, *best_prev = 0;
    if (S->fair) {
        double best_vt = 0.0;
        int64_t seen[DSL_MAX_COSTS];
        int nseen = 0;
        dsl_req* prev = 0;
        for (dsl_req* q = S->qhead; q; prev = q, q = q->next) {
            int dup = 0;
            for (int i = 0; i < nseen && !dup; ++i) dup = seen[i] == q->engine;
            if (dup) continue;
            if (nseen < DSL_MAX_COSTS) seen[nseen++] = q->engine;
            const dsl_cost* c = dsl_cost_rec(S, q->engine);
            const double vt = c ? c->vt : 0.0;
            if (q == S->qhead || vt < best_vt) {
                best = q;
                best_prev = prev;
                best_vt = vt;
            }
        }
    }
    *prev_out = best_prev;
    return best;
}

static void dsl_queue_unlink(dsl_sched* S, dsl_req* q, dsl_req* prev) {
    if (prev) prev->next = q->next; else S->qhead = q->next;
    if (S->qtail == q) S->qtail = prev;
    S->queued -= 1;
}

static dsl_req* dsl_queue_take(dsl_sched* S) {
    dsl_req* prev;
    dsl_req* q = dsl_queue_pick(S, &prev);
    dsl_queue_unlink(S, q, prev);
    return q;
}

static void dsl_run_on(dsl_sched* S, dsl_req* r, dsl_grant* g) {
    dsl_stream* st = &S->streams[g->stream];
    r->stream = g->stream;
    r->ncpus = g->L.n;
    for (int i = 0; i < g->L.n; ++i) r->cpus[i] = g->L.cpus[i];
    r->sched = S;
    r->grant = g;
    r->nested_ns = 0;
    dsl_lock(&S->lock);
    const double charged = dsl_fair_charge(S, r->engine);
    dsl_unlock(&S->lock);
    r->t0_ns = dsl_now_ns();
    char* arena = dsl_arena_for(st, g->idx[0], r->nested ? 1 : 0, r->arena_bytes);
    r->rc = arena ? S->run(r, &g->L, arena, S->user) : DSL_SCHED_NO_MEMORY;
    r->t1_ns = dsl_now_ns();
    r->sched = 0;
    const double own = (double)(r->t1_ns - r->t0_ns - r->nested_ns);
    dsl_lock(&S->lock);
    if (r->rc == 0) dsl_cost_add(S, r->engine, own, g->L.n);
    dsl_fair_settle(S, r->engine, charged, own * (double)g->L.n);
    dsl_unlock(&S->lock);
}

/* Between two steps of request r (run by its runner, see the top of this file): run the
 * short requests of other engines that wait, while r keeps at least half its lease. */
static void dsl_sched_between(dsl_req* r) {
    dsl_sched* S = (dsl_sched*)r->sched;
    if (!S || r->nested || !S->preempt) return;
    if (!__atomic_load_n(&S->queued, __ATOMIC_RELAXED)) return;
    for (;;) {
        const int64_t now = dsl_now_ns();
        if (S->nest_share * r->nested_ns > now - r->t0_ns - r->nested_ns) return;
        dsl_lock(&S->lock);
        const double mine = dsl_cost_of(S, r->engine);
        dsl_req *q = S->qhead, *prev = 0;
        int64_t skip[8];
        int nskip = 0;
        for (; q; prev = q, q = q->next) {
            /* the first waiting request of each engine only: one engine's requests start in
             * arrival order */
            int seen = q->engine == r->engine;
            for (int i = 0; i < nskip && !seen; ++i) seen = skip[i] == q->engine;
            if (seen) continue;
            const double c = dsl_cost_of(S, q->engine);
            if (c > 0.0 && mine > 0.0 && c * S->preempt_ratio <= mine) break;
            if (nskip == 8) { q = 0; break; }
            skip[nskip++] = q->engine;
        }
        if (!q) {
            dsl_unlock(&S->lock);
            return;
        }
        if (prev) prev->next = q->next; else S->qhead = q->next;
        if (S->qtail == q) S->qtail = prev;
        S->queued -= 1;
        S->served_nested += 1;
        dsl_unlock(&S->lock);
        q->nested = 1;
        dsl_run_on(S, q, (dsl_grant*)r->grant);
        r->nested_ns += q->t1_ns - q->t0_ns;
        dsl_event_set(&q->ev, DSL_R_DONE);
        if (!__atomic_load_n(&S->queued, __ATOMIC_RELAXED)) return;
    }
}

static inline void dsl_sched_between_void(void* r) { dsl_sched_between((dsl_req*)r); }

/* Run `mine` (the caller's request) to completion. Called without the GIL. Returns its rc. */
static int dsl_sched_run(dsl_sched* S, dsl_req* mine) {
    dsl_grant g;
    mine->next = 0;
    mine->handed = 0;
    mine->sched = 0;
    mine->nested = 0;
    mine->nested_ns = 0;
    mine->ev.word = DSL_R_QUEUED;
    mine->ev.sleepers = 0;
    const int64_t self = dsl_self_tid();
    if (__atomic_exchange_n(&S->last_tid, self, __ATOMIC_RELAXED) != self)
        __atomic_store_n(&S->others_ns, dsl_now_ns(), __ATOMIC_RELAXED);
    dsl_lock(&S->lock);
    dsl_fair_arrive(S, mine->engine);
    if (!S->qhead && dsl_claim(S, &g)) {
        dsl_unlock(&S->lock);
        __atomic_fetch_add(&S->served_inline, 1, __ATOMIC_RELAXED);
    } else {
        if (S->qtail) S->qtail->next = mine; else S->qhead = mine;
        S->qtail = mine;
        S->queued += 1;
        dsl_unlock(&S->lock);
        /* no spin: every core is running a request, a spinning waiter would slow one */
        const uint32_t st = dsl_event_wait(&mine->ev, DSL_R_QUEUED, 0);
        if (st == DSL_R_DONE) return mine->rc;
        g = *mine->handed; /* DSL_R_HANDED: the lease is ours */
        free(mine->handed);
        mine->handed = 0;
        __atomic_fetch_add(&S->served_handed, 1, __ATOMIC_RELAXED);
    }
    int restore;
    dsl_place_caller(S, (dsl_placement*)S->placement, S->sticky, &g, &restore);
    dsl_last_stream = g.stream;
    dsl_req* r = mine;
    int combined = 0;
    int64_t t_begin = dsl_now_ns();
    int woke = 0;
    for (;;) {
        dsl_run_on(S, r, &g);
        if (r != mine) {
            dsl_event_set(&r->ev, DSL_R_DONE);
            woke = 1;
        }
        dsl_lock(&S->lock);
        dsl_req *next = 0, *next_prev = 0;
        if (S->qhead && combined < S->combine_max) {
            /* run it here only when it is short: the hand-off's wake-up (~30-100 us on a
             * KVM guest) is what combining saves, and meanwhile this thread's own caller
             * waits. A long one is handed to its caller, and this one goes back to submit
             * its next request (else, with 2 callers per engine, an engine's second request
             * finds its first caller still busy here, and fair queueing has nothing to choose) */
            next = dsl_queue_pick(S, &next_prev);
            if (dsl_cost_of(S, next->engine) > (double)DSL_COMBINE_MAX_NS) next = 0;
        }
        if (next) {
            dsl_queue_unlink(S, next, next_prev);
            r = next;
            ++combined;
            dsl_unlock(&S->lock);
            __atomic_fetch_add(&S->served_combined, 1, __ATOMIC_RELAXED);
            continue;
        }
        const int64_t now = dsl_now_ns();
        dsl_release(S, &g, combined ? (now - t_begin) / (combined + 1) : now - t_begin);
        dsl_req* h = 0;
        dsl_grant* hg = 0;
        if (S->qhead) {
            /* hand a lease to the next waiter (the oldest, or by fair queueing): it is
             * asleep, its request waits for it */
            hg = (dsl_grant*)malloc(sizeof(dsl_grant));
            if (hg && dsl_claim_on(S, g.stream, hg)) {
                h = dsl_queue_take(S);
            } else {
                free(hg);
                hg = 0;
            }
        }
        dsl_unlock(&S->lock);
        if (h) {
            h->handed = hg;
            dsl_event_set(&h->ev, DSL_R_HANDED);
            woke = 1;
        }
        break;
    }
    dsl_unplace_caller(restore);
    /* Yield before going back for the GIL. Another caller waiting for the GIL (or woken
     * with its result) may be queued on this core: the kernel does not preempt a running
     * thread for it (EEVDF runs the current one to its slice), and this thread would take
     * the GIL back before it ever ran, request after request, until the next tick: 4 ms
     * (seen as the p99 with 2 callers on one stream). Only where another thread used this
     * scheduler lately: a yield costs ~7-10 us on the KVM guest even with nothing else to
     * run, more than a lone caller's whole hand-off. */
    if (woke || dsl_now_ns() - __atomic_load_n(&S->others_ns, __ATOMIC_RELAXED) < DSL_OTHERS_NS)
        sched_yield();
    return mine->rc;
}
#endif
