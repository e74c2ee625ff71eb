"""Context: the cores, the streams and the request queue that engines share.

Lifecycle: ``Context(num_cores=None, num_streams=None)`` chooses cores from the CPU
topology and cuts them into streams (no thread starts yet); the first request starts the
stream workers; ``close()`` (or leaving a ``with`` block) stops and joins them. Every
``MultiModelEngine`` built on a Context sends its requests to the Context's one queue,
and the first free stream takes the next request, whichever model it belongs to.

    >>> from deepsparse_lite import Context
    >>> with Context(num_cores=2, num_streams=2) as ctx:
    ...     ctx.num_streams
    2

A user-made Context is elastic (as in DeepSparse); engines that build their own Context
pass their scheduler: single_stream = one stream with every core, multi_stream =
``num_streams`` fixed streams, elastic = NUMA-local streams whose cores are leased per
request (all of them to a lone request, an equal share each under load).
"""
from __future__ import annotations

import atexit
import collections
import enum
import itertools
import logging
import os
import threading
import time
import weakref
from typing import List, Optional

from deepsparse_lite import config
from deepsparse_lite.scheduler.streams import StreamGroup, elastic_partition

_LOGGER = logging.getLogger("deepsparse_lite.engine")


class Scheduler(str, enum.Enum):
    """How requests from several Python threads share the cores.

    - default: maps to single_stream
    - single_stream: requests from separate threads execute serially, each on all cores
    - multi_stream: requests from separate threads execute in parallel (``num_streams``)
    - elastic: requests from separate threads are distributed across NUMA nodes, each
      using all its node's cores when alone and a disjoint share under load

    A ``str`` enum, so ``"multi_stream" == Scheduler.multi_stream`` holds, as the docs promise.
    """

    default = "single_stream"
    single_stream = "single_stream"
    multi_stream = "multi_stream"
    elastic = "elastic"

    def __str__(self) -> str:  # keep "Scheduler.default" on every Python version
        return f"{type(self).__name__}.{self.name}"

    @staticmethod
    def from_str(key: str) -> "Scheduler":
        """Parse a scheduler name. Matching is exact (DeepSparse's substring test on
        "elastic", which maps "" or "e" to elastic, is deliberately not copied)."""
        if key in ("sync", "single", "single_stream"):
            return Scheduler.single_stream
        if key in ("async", "multi", "multi_stream"):
            return Scheduler.multi_stream
        if key == "elastic":
            return Scheduler.elastic
        raise ValueError(f"unsupported Scheduler: {key}")


# ---------------------------------------------------------------------------------------
# validators (messages as DeepSparse's)
# ---------------------------------------------------------------------------------------

def available_cores() -> int:
    from deepsparse_lite.cpu import cpu_architecture
    return int(cpu_architecture().num_available_physical_cores)


def validate_batch_size(batch_size: Optional[int]) -> Optional[int]:
    if batch_size is None or batch_size < 1:
        _LOGGER.warning("batch_size < 1 so disabling batch size override")
        return None
    return int(batch_size)


def validate_num_cores(num_cores: Optional[int], available: Optional[int] = None) -> int:
    avail = available_cores() if available is None else available
    if not num_cores:
        num_cores = avail
    if num_cores < 1:
        raise ValueError("num_cores must be greater than 0")
    if num_cores > avail:
        _LOGGER.warning(
            "only %d cores available in the calling process' cpu affinity set; %d threads will "
            "oversubscribe them (cpu contention)", avail, num_cores)
    return int(num_cores)


def validate_num_streams(num_streams: Optional[int], num_cores: int, available: Optional[int] = None) -> int:
    if not num_streams:
        return 0
    if num_streams < 0:
        raise ValueError("num_streams must be greater than 0")
    cap = min(available_cores() if available is None else available, num_cores)
    if num_streams > cap:
        _LOGGER.warning("num_streams exceeds num_cores - capping to %d", cap)
        return cap
    return int(num_streams)


def validate_scheduler(scheduler) -> Scheduler:
    if not scheduler:
        return Scheduler.default
    if isinstance(scheduler, Scheduler):
        return scheduler
    if isinstance(scheduler, str):
        return Scheduler.from_str(scheduler)
    raise ValueError(f"unsupported type for scheduler: {scheduler} ({type(scheduler)})")


# ---------------------------------------------------------------------------------------

_LIVE = weakref.WeakSet()
_keys = itertools.count(1)
#: set in a child process after fork(): only then does Context.run pay for os.getpid()
_FORKED = [False]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _FORKED.__setitem__(0, True))
else:  # pragma: no cover
    _FORKED[0] = True


@atexit.register
def _close_all() -> None:
    """A process with open engines exits cleanly: stop every stream before shutdown."""
    for ctx in list(_LIVE):
        try:
            ctx.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


class RunRecord(collections.namedtuple("RunRecord", "t_start t_end stream cpus caller")):
    """When a request ran (time.perf_counter seconds), on which stream and CPUs, for which
    caller thread (its ident)."""


class Context:
    """A set of cores cut into streams, shared by the engines built on it.

    :param num_cores: physical cores to use (default: every one available to the process)
    :param num_streams: streams (default: one per L3 group / NUMA node of those cores)
    """

    def __init__(self, num_cores: Optional[int] = None, num_streams: Optional[int] = None, *,
                 _scheduler=None, _topology=None):
        from deepsparse_lite.scheduler.partition import partition, select_cores
        from deepsparse_lite.scheduler.topology import Topology

        self._scheduler = validate_scheduler(_scheduler) if _scheduler else Scheduler.elastic
        topo = _topology if _topology is not None else Topology.detect()
        avail = topo.num_physical_cores
        self._num_cores = validate_num_cores(num_cores, avail)
        requested = validate_num_streams(num_streams, self._num_cores, avail)
        cores = select_cores(topo, min(self._num_cores, avail))
        if self._scheduler == Scheduler.single_stream:
            requested = 1
        elif not requested:
            requested = topo.default_num_streams(cores)
        if self._scheduler == Scheduler.elastic:
            groups = elastic_partition(cores, requested)
        else:
            groups = partition(cores, requested)
        cpu_groups = [[c.cpu for c in g] for g in groups]
        if self._num_cores > avail:  # oversubscribe: more threads than cores, cycled
            cpu_groups = _oversubscribed(cpu_groups, self._num_cores)
        numa_cpus = {}
        for c in cores:
            numa_cpus.setdefault(c.numa, []).append(c.cpu)
        self._groups: List[StreamGroup] = []
        for i, (g, cg) in enumerate(zip(groups, cpu_groups)):
            sock = sorted({cpu for c in g for cpu in numa_cpus.get(c.numa, [])})
            self._groups.append(StreamGroup(i, cg, self._scheduler == Scheduler.elastic, sock))
        self.binding = config.thread_binding()
        # Spinning pays only when every thread owns its core: never when the Context
        # oversubscribes the cores or its threads float over a stream / node.
        spin = config.spin_us() if (self._num_cores <= avail and self.binding == config.BIND_CORE) else 0.0
        self._spin_us = spin
        from deepsparse_lite.kernels import runner

        self._core = runner.StreamScheduler(
            [(g.cpus, g.elastic, g.socket_cpus) for g in self._groups], int(spin * 1000),
            self.binding, config.combine_max(), config.sticky_callers(), config.preempt_ratio(),
            config.fair_queueing(), config.nest_share())
        self._bound = {}  # id(plan) -> (weakref to the plan, BoundPlan, engine key)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._inflight = {}  # engine key -> requests not yet finished
        self._open = set()  # keys whose new requests are admitted (unregister removes them)
        self._pid = os.getpid()
        self._trace = None  # list of request records while tracing (start_trace)
        _LIVE.add(self)

    # ---- properties ------------------------------------------------------------------------
    @property
    def value(self) -> "Context":
        return self

    @property
    def num_cores(self) -> int:
        return self._num_cores

    @property
    def num_streams(self) -> int:
        return len(self._groups)

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def stream_cpus(self) -> List[tuple]:
        """The logical CPUs of each stream, in stream order."""
        return [g.cpus for g in self._groups]

    @property
    def helpers(self) -> List[tuple]:
        """(stream, cpu, kernel thread id, chunks run, parked) of every helper thread: one
        per core a lease's runner does not take (none before the first request)."""
        return self._core.helpers() if self._started else []

    @property
    def stats(self) -> dict:
        """Requests run by their own caller (inline), by the thread finishing another
        request (combined), by a caller that was handed a lease (handed), or inside the
        pause of a longer request of another engine (nested)."""
        return self._core.stats()

    @property
    def service(self) -> dict:
        """Per engine key: ``run_ms`` (the moving average of its run times) and
        ``served_ms`` (the core time its requests have had: run time x the lease's cores, what
        fair queueing orders the waiting engines by: ``DSL_FAIR``)."""
        return {k: {"run_ms": a, "served_ms": b} for k, (a, b) in self._core.service().items()}

    @property
    def arenas(self) -> List[dict]:
        """Every activation arena: one per lease-head core and slot (slot 0 for the request
        holding the lease, slot 1 for a short request run inside its pause), shared by all
        the engines on this Context and sized for the largest plan run there."""
        return [{"stream": s, "cpu": c, "slot": k, "bytes": b} for s, c, k, b in self._core.arenas()]

    def memory(self) -> dict:
        """Bytes held for the engines: ``weights`` per engine key (the plans' constants,
        packed weights included), ``arenas`` per worker (stream, lease-head cpu) and their
        total."""
        weights = {}
        for ref, _, key in list(self._bound.values()):
            plan = ref()
            if plan is not None and key is not None and key in self._open:
                weights[key] = max(weights.get(key, 0), int(plan.constant_bytes))
        per_worker = {}
        for a in self.arenas:
            per_worker[(a["stream"], a["cpu"])] = per_worker.get((a["stream"], a["cpu"]), 0) + a["bytes"]
        return {"weights": weights, "arenas": per_worker, "arena_total": sum(per_worker.values())}

    @property
    def spin_us(self) -> float:
        return self._spin_us

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"Context(num_cores={self.num_cores}, num_streams={self.num_streams}, scheduler={self.scheduler})"

    # ---- engines ---------------------------------------------------------------------------
    def register(self) -> int:
        """A key for one engine: its arenas and in-flight count are tracked under it."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this Context has been closed")
            key = next(_keys)
            self._inflight[key] = 0
            self._open.add(key)
            return key

    def unregister(self, key: int, timeout: Optional[float] = None) -> bool:
        """Refuse the engine's new requests, wait for its running ones, then drop its
        state. Returns False (and keeps counting them, so ``close`` still waits for them)
        when requests are still running after ``timeout``."""
        with self._lock:
            # from here on run() refuses the key: a request admitted after the idle check
            # below would run unseen (close() would stop the streams under it)
            self._open.discard(key)
        if not self._wait_idle(lambda: self._inflight.get(key, 0) == 0, timeout):
            return False
        with self._lock:
            self._inflight.pop(key, None)
            if not self._closed:
                self._core.forget(key)
        for k, v in list(self._bound.items()):  # list(): _bind may insert meanwhile
            if v[2] == key:
                self._bound.pop(k, None)
        return True

    def _bind(self, plan, key=None):
        """The plan's C view (cached: the request path only reads pointers).

        The cache holds the plan weakly: the C view keeps the plan's arrays alive, not the
        plan, and the entry goes when the plan does (a value-specialised engine's evicted
        plans are freed at once; a strong cache of up to 64 plans once kept 40 evicted MLP
        plans, 245 MiB, behind a plan cache of 2)."""
        pid = id(plan)
        hit = self._bound.get(pid)
        if hit is not None and hit[0]() is plan:
            return hit[1]
        from deepsparse_lite.kernels import runner

        bp = runner.BoundPlan(_PlanArrays(plan))
        bound = self._bound

        def gone(ref, pid=pid):
            entry = bound.get(pid)
            if entry is not None and entry[0] is ref:
                bound.pop(pid, None)

        self._bound[pid] = (weakref.ref(plan, gone), bp, key)
        return bp

    def run(self, key: int, plan, inputs, outputs, record: bool = False):
        """Run one request (the GIL is released while it runs or waits). With ``record``,
        returns a ``RunRecord`` (when it ran, on which stream and CPUs)."""
        if _FORKED[0] and os.getpid() != self._pid:
            # after fork() the helper threads do not exist in this process: refuse instead
            # of waiting forever
            raise RuntimeError(
                "this Context (and its engines) was created in another process; fork() does not "
                "carry its stream threads over: create engines after forking, or use the 'spawn' "
                "start method")
        inflight = self._inflight
        with self._lock:  # a plain lock: waiters (unregister, close) poll, nobody notifies
            if self._closed:
                raise RuntimeError("this Context has been closed")
            if key not in self._open:
                raise RuntimeError("this engine has been closed")
            inflight[key] += 1
        self._started = True
        trace = self._trace
        info = [] if (record or trace is not None) else None
        try:
            # bound once admitted: a refused request leaves nothing behind for a closed key
            hit = self._bound.get(id(plan))
            bp = hit[1] if hit is not None and hit[0]() is plan else self._bind(plan, key)
            rc, failed = self._core.run(bp, key, inputs, outputs, info)
        finally:
            with self._lock:
                if key in inflight:
                    inflight[key] -= 1
        if rc != 0:
            from deepsparse_lite.compiler import _raise_plan_error
            _raise_plan_error(plan, rc, failed)
        if info:
            t0, t1, stream, cpus = info[0]
            rec = RunRecord(t0, t1, stream, cpus, threading.get_ident())
            if trace is not None:
                trace.append({"t0": t0, "t1": t1, "cpus": cpus, "caller": rec.caller,
                              "engine": key, "stream": stream})
            return rec
        return None

    def _wait_idle(self, cond, timeout: Optional[float]) -> bool:
        """Poll until cond() holds (lock held while evaluating) or the timeout passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if cond():
                    return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.001)

    # ---- tracing (benchmarks/bench_scheduler.py --timeline draws it) ----------------------
    def start_trace(self) -> None:
        """Record every request from now on: when it ran (time.perf_counter seconds), on
        which CPUs, for which caller thread and engine."""
        self._trace = []

    def stop_trace(self) -> list:
        """The records of the requests that finished since start_trace (a request still
        running is not in it): dicts with t0, t1, cpus, caller (thread ident), engine
        (engine key) and stream (index). Never changes after it is returned."""
        trace, self._trace = self._trace, None
        return list(trace) if trace is not None else []

    # ---- lifecycle -------------------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> None:
        """Stop the streams after the running and queued requests finished; joins the
        helper threads, frees the arenas and gives the threads that ran requests their own
        CPU affinity back."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # no new request is admitted from here on
        # requests admitted before (counted in flight) still run
        if self._wait_idle(lambda: not any(self._inflight.values()), timeout):
            self._core.stop()
        _LIVE.discard(self)

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def __del__(self):  # pragma: no cover - depends on GC timing
        try:
            if not self._closed and self._started:
                self.close(timeout=1.0)
        except Exception:
            pass


class _PlanArrays:
    """What ``runner.BoundPlan`` reads of a plan, and the arrays its pointers reach (steps,
    tensor table, constants): the C view keeps these alive, not the plan itself."""

    __slots__ = ("steps", "tensor_table", "constants", "const_ptrs", "arena_bytes",
                 "table_bytes", "inputs", "outputs", "input_nbytes")

    def __init__(self, plan):
        for name in self.__slots__:
            setattr(self, name, getattr(plan, name))


def _oversubscribed(cpu_groups: List[List[int]], num_cores: int) -> List[List[int]]:
    """Streams with ``num_cores`` threads in total over fewer cores, cycling the cores."""
    flat = [c for g in cpu_groups for c in g]
    from deepsparse_lite.scheduler.partition import chunk_sizes
    sizes = chunk_sizes(num_cores, len(cpu_groups))
    out, k = [], 0
    for s in sizes:
        out.append([flat[(k + j) % len(flat)] for j in range(s)])
        k += s
    return out
