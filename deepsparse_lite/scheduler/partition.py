"""Which cores a Context uses, and how they are cut into streams.

* :func:`select_cores` picks ``num_cores`` physical cores spread evenly over as few sockets as
  possible (DeepSparse: "If more cores are requested than are available on a single socket,
  the engine will try to distribute them evenly across as few sockets as possible"), and the
  same way over NUMA nodes within a socket and L3 groups within a node.
* :func:`partition` cuts them into ``num_streams`` contiguous chunks, the first
  ``num_cores % num_streams`` one core larger (DeepSparse's worked example: 16 cores on
  2 sockets, 3 streams -> 0-5, 6-10, 11-15). When those same chunk sizes can be laid out so
  that no chunk crosses a NUMA node, that layout is used instead: a stream that straddles
  nodes pays remote-memory latency on every request.
* :func:`elastic_groups` gives the per-NUMA-node core sets the elastic scheduler works in.

Everything here is pure: lists of :class:`~deepsparse_lite.scheduler.topology.Core` in,
lists out. Warnings for capped values belong to the caller, which knows what the user asked.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

from deepsparse_lite.scheduler.topology import Core, Topology, default_num_streams

__all__ = ["select_cores", "partition", "elastic_groups", "default_num_streams", "chunk_sizes"]


def chunk_sizes(num_cores: int, num_streams: int) -> List[int]:
    """The plain rule: ``num_streams`` sizes summing to ``num_cores``, first ones larger."""
    q, r = divmod(num_cores, num_streams)
    return [q + 1] * r + [q] * (num_streams - r)


# ----------------------------------------------------------------------------- select_cores
def select_cores(topo: Union[Topology, Sequence[Core]], num_cores: Optional[int] = None) -> List[Core]:
    """``num_cores`` physical cores of ``topo``, in topology order.

    Fewest sockets first: the sockets with the most available cores are taken until they
    hold ``num_cores``, and the cores are spread evenly over them (the first ones taking the
    remainder); inside each socket the same is done over NUMA nodes, then over L3 groups,
    and inside an L3 group the lowest cores are used. ``num_cores`` None, or more than are
    available, means all of them (the caller warns); ``num_cores < 1`` is a ValueError.
    """
    cores = topo.physical_cores if isinstance(topo, Topology) else list(topo)
    if num_cores is not None and num_cores < 1:
        raise ValueError(f"num_cores must be greater than 0, got {num_cores}")
    if num_cores is None or num_cores >= len(cores):
        return list(cores)
    chosen = _pick(cores, num_cores, ("socket", "numa", "l3"))
    keep = {id(c) for c in chosen}
    return [c for c in cores if id(c) in keep]


def _pick(cores: List[Core], n: int, levels) -> List[Core]:
    if not levels:
        return cores[:n]
    groups = _group(cores, levels[0])
    # Fewest groups: largest first (ties: topology order), until they can hold n cores.
    by_size = sorted(range(len(groups)), key=lambda i: -len(groups[i]))
    used, held = [], 0
    for i in by_size:
        used.append(i)
        held += len(groups[i])
        if held >= n:
            break
    used.sort()
    caps = [len(groups[i]) for i in used]
    out: List[Core] = []
    for i, take in zip(used, _even_fill(n, caps)):
        out.extend(_pick(groups[i], take, levels[1:]))
    return out


def _even_fill(n: int, caps: List[int]) -> List[int]:
    """``n`` spread as evenly as the capacities allow; leftovers go to the first groups."""
    alloc = [0] * len(caps)
    while n > 0:
        open_ = [i for i, cap in enumerate(caps) if alloc[i] < cap]
        share, extra = divmod(n, len(open_))
        if share == 0:
            for i in open_[:extra]:
                alloc[i] += 1
            break
        for i in open_:
            take = min(share, caps[i] - alloc[i])
            alloc[i] += take
            n -= take
    return alloc


def _group(cores: Sequence[Core], attr: str) -> List[List[Core]]:
    """Cores grouped by ``attr``, groups in order of first appearance."""
    groups: Dict[int, List[Core]] = {}
    for c in cores:
        groups.setdefault(getattr(c, attr), []).append(c)
    return list(groups.values())


# ----------------------------------------------------------------------------- partition
def partition(cores: Sequence[Core], num_streams: int) -> List[List[Core]]:
    """Split ``cores`` (in the order given) into ``num_streams`` contiguous streams.

    Sizes follow the plain rule (:func:`chunk_sizes`). If some stream of the plain layout
    would straddle a NUMA node and the same multiset of sizes can instead tile every node
    exactly, that tiling is returned (larger chunks as early as possible, to stay close to
    the plain rule); otherwise the plain layout. ``num_streams`` above ``len(cores)`` is
    capped to ``len(cores)`` (the caller warns); below 1 is a ValueError.
    """
    cores = list(cores)
    if num_streams is None or num_streams < 1:
        raise ValueError(f"num_streams must be greater than 0, got {num_streams}")
    if not cores:
        raise ValueError("cannot partition an empty list of cores")
    num_streams = min(int(num_streams), len(cores))
    sizes = chunk_sizes(len(cores), num_streams)
    plain = _cut(cores, sizes)
    if all(len({c.numa for c in chunk}) == 1 for chunk in plain):
        return plain
    runs = _runs(cores)
    layout = _numa_layout([len(r) for r in runs], sizes)
    if layout is None:
        return plain
    out: List[List[Core]] = []
    for run, run_sizes in zip(runs, layout):
        out.extend(_cut(run, run_sizes))
    return out


def _cut(cores: List[Core], sizes: List[int]) -> List[List[Core]]:
    out, pos = [], 0
    for s in sizes:
        out.append(cores[pos:pos + s])
        pos += s
    return out


def _runs(cores: List[Core]) -> List[List[Core]]:
    """Maximal runs of consecutive cores on the same NUMA node."""
    runs: List[List[Core]] = []
    for c in cores:
        if runs and runs[-1][-1].numa == c.numa:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def _numa_layout(node_sizes: List[int], sizes: List[int]) -> Optional[List[List[int]]]:
    """Chunk sizes per node so that each node is covered exactly by whole chunks, using
    exactly the multiset ``sizes`` (at most two values: big = small + 1). Among the tilings,
    the one putting the most big chunks in the first node, then the second, ...; None if
    there is none.

    The cores consumed before node j are fixed, so the number of big chunks used so far
    determines the small ones: a DP over (node, big chunks used) is enough.
    """
    small = sizes[-1]
    big = small + 1
    n_big = sum(1 for s in sizes if s == big)
    n_small = len(sizes) - n_big
    m = len(node_sizes)
    before = [0] * (m + 1)
    for j, n in enumerate(node_sizes):
        before[j + 1] = before[j] + n

    def options(j: int, used_big: int):
        """(x big, y small) tiling node j, given used_big before it; largest x first."""
        used_small = (before[j] - used_big * big) // small
        for x in range(min(n_big - used_big, node_sizes[j] // big), -1, -1):
            rest = node_sizes[j] - x * big
            if rest % small == 0 and used_small + rest // small <= n_small:
                yield x, rest // small

    # ok[j] = the used_big counts from which nodes j.. can be finished.
    ok = [set() for _ in range(m + 1)]
    ok[m] = {n_big}
    for j in range(m - 1, -1, -1):
        for used in range(n_big + 1):
            if (before[j] - used * big) < 0 or (before[j] - used * big) % small:
                continue
            if any(used + x in ok[j + 1] for x, _ in options(j, used)):
                ok[j].add(used)
    if 0 not in ok[0]:
        return None
    layout, used = [], 0
    for j in range(m):
        x, y = next((x, y) for x, y in options(j, used) if used + x in ok[j + 1])
        layout.append([big] * x + [small] * y)
        used += x
    return layout


# ----------------------------------------------------------------------------- elastic
def elastic_groups(cores: Sequence[Core]) -> List[List[Core]]:
    """``cores`` grouped by NUMA node (nodes in order of first appearance, cores in the
    order given): the elastic scheduler never lets one request's threads cross a node."""
    return _group(cores, "numa")
