/* Waiting without the GIL and without a wake-up when it can be avoided.
 *
 * On a KVM guest a futex wake of a thread asleep on another core is an inter-processor
 * interrupt: measured on the 2-core Zen 4 guest, a futex ping-pong round trip is ~60 us
 * (~30 us a wake-up), a spinning one ~0.5 us. So every wait here spins first for a bounded
 * time (reading the word, with `pause`), then sleeps on the futex; every signal stores the
 * word and issues FUTEX_WAKE only when a sleeper announced itself. Spinning is bounded by
 * a budget in nanoseconds (DSL_SPIN_US, deepsparse_lite/config.py), 0 when the cores are
 * oversubscribed (a spinning thread would steal the core another one needs).
 */
#ifndef DSL_SYNC_H
#define DSL_SYNC_H
#include <stdint.h>
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DSL_CPU_RELAX() _mm_pause()
#else
#define DSL_CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

static inline int64_t dsl_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A spinning thread yields its core this often (ns): a thread woken on the same core (a
 * caller back from its request, the GIL's next holder) would otherwise wait for the
 * spinner's whole time slice, milliseconds (seen as a 4 ms p99 with 2 callers on one
 * 2-core stream). With nothing else runnable sched_yield returns at once. */
#define DSL_YIELD_NS 20000

/* A spinner's periodic check (every 64 relaxes: the clock is a vDSO call, not free):
 * yields when DSL_YIELD_NS passed since *ty, the last yield or the spin's start. */
static inline void dsl_spin_yield(int64_t now, int64_t* ty) {
    if (now - *ty > DSL_YIELD_NS) {
        sched_yield();
        *ty = now;
    }
}

/* Spin until *word (an int) is 0, yielding the core now and then. */
static inline void dsl_spin_until_zero(const int* word) {
    int k = 0;
    int64_t ty = dsl_now_ns();
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) > 0) {
        DSL_CPU_RELAX();
        if (++k == 64) {
            k = 0;
            dsl_spin_yield(dsl_now_ns(), &ty);
        }
    }
}

static inline void dsl_futex_wait(uint32_t* addr, uint32_t val) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, (void*)0, (void*)0, 0);
#else
    (void)addr; (void)val;
#endif
}

static inline void dsl_futex_wake(uint32_t* addr, int n) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, (void*)0, (void*)0, 0);
#else
    (void)addr; (void)n;
#endif
}

/* A word others change to wake its owner: `sleepers` counts threads that may be asleep on
 * it, so a signal with nobody asleep is one store (no syscall). */
typedef struct {
    uint32_t word;
    uint32_t sleepers;
} dsl_event;

/* Wait until *word != seen: spin up to spin_ns, then sleep. Returns the new value. */
static inline uint32_t dsl_event_wait(dsl_event* e, uint32_t seen, int64_t spin_ns) {
    uint32_t v = __atomic_load_n(&e->word, __ATOMIC_ACQUIRE);
    if (v != seen) return v;
    if (spin_ns > 0) {
        const int64_t t0 = dsl_now_ns();
        int64_t ty = t0;
        int k = 0;
        do {
            DSL_CPU_RELAX();
            v = __atomic_load_n(&e->word, __ATOMIC_ACQUIRE);
            if (v != seen) return v;
            if (++k == 64) {
                k = 0;
                const int64_t now = dsl_now_ns();
                if (now - t0 > spin_ns) break;
                dsl_spin_yield(now, &ty);
            }
        } while (1);
    }
    for (;;) {
        __atomic_fetch_add(&e->sleepers, 1, __ATOMIC_SEQ_CST);
        v = __atomic_load_n(&e->word, __ATOMIC_SEQ_CST);
        if (v == seen) dsl_futex_wait(&e->word, seen);
        __atomic_fetch_sub(&e->sleepers, 1, __ATOMIC_SEQ_CST);
        v = __atomic_load_n(&e->word, __ATOMIC_ACQUIRE);
        if (v != seen) return v;
    }
}

/* Set the word (release) and wake its sleepers, if any. */
static inline void dsl_event_set(dsl_event* e, uint32_t value) {
    __atomic_store_n(&e->word, value, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&e->sleepers, __ATOMIC_SEQ_CST)) dsl_futex_wake(&e->word, 0x7fffffff);
}

/* Advance the word by one (any number of signallers) and wake its sleepers, if any. */
static inline void dsl_event_bump(dsl_event* e) {
    __atomic_fetch_add(&e->word, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&e->sleepers, __ATOMIC_SEQ_CST)) dsl_futex_wake(&e->word, 0x7fffffff);
}

/* A test-and-test-and-set lock for short critical sections (queue updates). A holder can
 * be preempted when threads outnumber cores, so a waiter yields its time slice after a
 * short spin instead of burning it. */
typedef struct { int locked; } dsl_spinlock;

static inline void dsl_lock(dsl_spinlock* l) {
    int k = 0;
    for (;;) {
        if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) return;
        while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
            DSL_CPU_RELAX();
            if (++k >= 2000) {
                k = 0;
                sched_yield();
            }
        }
    }
}

static inline void dsl_unlock(dsl_spinlock* l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE); }
#endif
