"""Streams: long-lived worker threads that run requests on pinned cores.

A *stream* (``StreamGroup``) owns a set of cores. Its worker threads are the masters of
their own OpenMP teams (libgomp keeps one pool per master thread), so a worker's team is
created once, pinned once per core lease, and reused by every request it runs.

- static streams (single_stream, multi_stream): one worker, one fixed lease = all the
  stream's cores; one request at a time.
- elastic streams: one *primary* worker plus one single-core *secondary* worker per other
  core. A lone request runs on the primary with every core of the stream; under load k
  the primary leases n-k+1 cores and each secondary one, so leases stay disjoint and every
  core stays busy. Only the primary ever owns a multi-thread OpenMP team: libgomp throttles
  its spin-wait (threads sleep between parallel regions) as soon as the threads of all
  teams outnumber the CPUs, and this layout keeps them within the core count.

Workers take requests from their Context's single queue, whichever engine they come from,
and keep one activation arena per (worker, engine), allocated on first use and replaced by
a larger one when a plan of the engine needs more (an engine with value-specialised plans
runs several plans; any arena at least ``plan.arena_bytes`` long fits a plan, since the
runner rebuilds its pointer table on every call). Keying arenas by plan instead would keep
one arena per cached plan per worker, and the plan cache's evictions would have to reach
every worker.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Dict, List, Optional, Sequence

from deepsparse_lite import config


class Request:
    """One inference: filled by the caller, run by a worker, waited on by the caller."""

    __slots__ = ("plan", "inputs", "outputs", "key", "done", "error", "t_start", "t_end",
                 "worker", "cpus")

    def __init__(self, plan, inputs, outputs, key):
        self.plan, self.inputs, self.outputs, self.key = plan, inputs, outputs, key
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.t_start = self.t_end = 0.0
        self.worker = ""
        self.cpus: tuple = ()


class StreamGroup:
    """The cores of one stream and how requests lease them."""

    def __init__(self, index: int, cpus: Sequence[int], elastic: bool, socket_cpus: Sequence[int] = ()):
        self.index = index
        self.cpus = tuple(cpus)
        self.elastic = elastic
        #: CPUs a thread may use when binding is "socket" (the stream's NUMA nodes)
        self.socket_cpus = tuple(socket_cpus) or self.cpus
        self._free = list(self.cpus)
        self._cond = threading.Condition()
        self._active = 0  # requests holding or waiting for a lease
        self.primary_busy = False  # guarded by the Context's queue condition
        # load estimate with memory: when demand k was last seen, and the typical request
        # duration. Demand sampled only at one instant flips between 1 and 2 as callers
        # re-submit, which would hand a "lone" request every core and make the next wait.
        self._seen_at = [0.0] * (len(self.cpus) + 2)
        self._dur = 0.0

    @property
    def num_workers(self) -> int:
        return len(set(self.cpus)) if self.elastic else 1

    def acquire(self, primary: bool, pending) -> tuple:
        """A lease of cores for one request; ``pending()`` counts requests still queued."""
        if not self.elastic:
            return self.cpus
        n = len(self.cpus)
        with self._cond:
            self._active += 1
            while True:
                demand = self._demand(self._active + pending())
                want = max(1, n - demand + 1) if primary else 1
                want = min(want, len(self._free)) if primary and self._free else want
                if self._free and len(self._free) >= want:
                    lease = tuple(self._free[:want])
                    del self._free[:want]
                    return lease
                self._cond.wait()

    def _demand(self, now_demand: int) -> int:
        """The highest concurrency seen within the last few request durations."""
        now = time.perf_counter()
        k = min(now_demand, len(self._seen_at) - 1)
        self._seen_at[k] = now
        window = 4.0 * self._dur + 1e-4
        for d in range(len(self._seen_at) - 1, k, -1):
            if now - self._seen_at[d] <= window:
                return d
        return k

    def release(self, lease: tuple, duration: float = 0.0) -> None:
        if not self.elastic:
            return
        with self._cond:
            self._dur = duration if self._dur == 0.0 else 0.8 * self._dur + 0.2 * duration
            self._free.extend(lease)
            self._free.sort(key=self.cpus.index)
            self._active -= 1
            self._cond.notify_all()


class Worker:
    """One thread of a stream: pinned to its lease, running requests from the queue."""

    def __init__(self, context, group: StreamGroup, index: int):
        self.context = context
        self.group = group
        self.primary = index == 0
        self.name = f"dsl-stream-{group.index}.{index}"
        self.arenas: Dict[int, object] = {}
        self.pinned: Optional[tuple] = None
        self.team: list = []
        self.tid: Optional[int] = None
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _pin(self, lease: tuple) -> None:
        if lease == self.pinned:
            return
        from deepsparse_lite.kernels import _openmp

        mode = self.context.binding
        allowed = self.group.socket_cpus if mode == config.BIND_SOCKET else lease
        try:
            os.sched_setaffinity(0, set(allowed))  # this thread (Linux: 0 = caller)
        except (AttributeError, OSError, ValueError):
            pass
        if mode == config.BIND_CORE:
            _openmp.pin_team([[c] for c in lease])
        else:
            _openmp.pin_team([list(allowed)] * len(lease))
        self.pinned = lease
        #: (team thread, kernel tid, affinity) of the team as placed: for tests and debugging
        self.team = _openmp.team_info(len(lease))

    def _can_take(self) -> bool:
        return self.primary or self.group.primary_busy

    def _main(self) -> None:
        from deepsparse_lite import compiler
        from deepsparse_lite.kernels import _openmp

        self.tid = _openmp.thread_id()
        ctx = self.context
        if not self.group.elastic:
            self._pin(self.group.cpus)
        while True:
            req = ctx._take(self)
            if req is None:
                break
            lease = self.group.acquire(self.primary, ctx._pending_count)
            try:
                self._pin(lease)
                arena = self.arenas.get(req.key)
                if arena is None or arena.nbytes < req.plan.arena_bytes:
                    # one arena per (worker, engine), as large as the largest plan the
                    # engine ran here: value-specialised engines have several plans
                    arena = compiler.new_arena(req.plan)
                    self.arenas[req.key] = arena
                req.worker, req.cpus = self.name, lease
                req.t_start = time.perf_counter()
                compiler.run(req.plan, req.inputs, req.outputs, arena, len(lease))
                req.t_end = time.perf_counter()
            except BaseException as exc:  # delivered to the caller, never kills the stream
                req.error = exc
                req.t_end = time.perf_counter()
            finally:
                self.group.release(lease, req.t_end - req.t_start if req.t_start else 0.0)
                ctx._finished(self)
                req.done.set()

    def forget(self, key: int) -> None:
        self.arenas.pop(key, None)


def elastic_partition(cores, num_streams: int) -> List[list]:
    """Elastic streams never cross NUMA nodes: at least one stream per node, the rest
    spread over the nodes by size, each node cut by the usual partition rule."""
    from deepsparse_lite.scheduler.partition import elastic_groups, partition

    nodes = elastic_groups(cores)
    k = max(num_streams, len(nodes))
    total = sum(len(n) for n in nodes)
    shares = [1] * len(nodes)
    extra = k - len(nodes)
    # largest remainder over node sizes, never more streams than cores in a node
    while extra > 0:
        best = max(range(len(nodes)), key=lambda j: (len(nodes[j]) / total * k - shares[j]
                                                      if shares[j] < len(nodes[j]) else -1e9))
        if shares[best] >= len(nodes[best]):
            break
        shares[best] += 1
        extra -= 1
    out = []
    for node, s in zip(nodes, shares):
        out.extend(partition(node, s))
    return out
