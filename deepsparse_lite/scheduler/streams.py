"""Streams: the core sets requests run on.

A *stream* (``StreamGroup``) owns a set of cores. A request runs on a *lease* of a stream:
all its cores for a static stream (single_stream, multi_stream), a share for an elastic one
(every core to a lone request, a disjoint share each under load). The calling thread runs
the plan itself, placed on the lease's first core; the lease's other cores are served by
*helper* threads pinned to them for the Context's lifetime, which spin for a bounded time
between chunks and requests, then sleep. The machinery is C (csrc/dsl_sched.h,
csrc/dsl_team.h, driven by ``kernels.runner.StreamScheduler``): the request path takes no
Python lock, wakes no thread when a stream is free, and holds no GIL.

Why the caller runs its own request: on a KVM guest a futex wake of a thread asleep on
another core costs ~30 us (measured), so a hand-off to a stream thread and back costs two
of them; and on a machine whose every core belongs to a stream, a caller that spins while
waiting steals a core from the stream. Requests that find every stream busy wait in the
Context's queue; the thread that finishes a request runs the next queued one on its lease
(and wakes its caller with the result) or hands it the lease.
"""
from __future__ import annotations

from typing import List, Sequence


class StreamGroup:
    """The cores of one stream."""

    def __init__(self, index: int, cpus: Sequence[int], elastic: bool, socket_cpus: Sequence[int] = ()):
        self.index = index
        self.cpus = tuple(cpus)
        self.elastic = elastic
        #: CPUs a thread may use when binding is "socket" (the stream's NUMA nodes)
        self.socket_cpus = tuple(socket_cpus) or self.cpus

    def __repr__(self) -> str:
        return f"StreamGroup({self.index}, cpus={self.cpus}, elastic={self.elastic})"


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
