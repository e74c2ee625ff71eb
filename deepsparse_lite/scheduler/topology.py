"""The CPU topology the scheduler places streams on: sockets, NUMA nodes, L3 groups and
physical cores, restricted to the process affinity mask.

One hardware thread per physical core is used (as in DeepSparse: "By default, only one
hyperthread per core is used"), so the unit here is the :class:`Core`: ``core.cpu`` is the
logical CPU to pin (the lowest hardware thread of that core inside the mask) and
``core.siblings`` all its hardware threads inside the mask. Both logical numberings of SMT
siblings exist in the wild — Intel-style K and K+N, and AMD-style 2K and 2K+1 — so siblings
are read from sysfs, never guessed from the CPU id.

Sources, in order:

* ``/sys/devices/system/cpu/cpu*/topology/{physical_package_id,core_id,
  core_cpus_list|thread_siblings_list}``; NUMA from ``/sys/devices/system/node/node*/cpulist``
  (or the ``cpu*/node*`` links); L3 groups from ``cpu*/cache/index*/{level,type,
  shared_cpu_list}`` (one group per NUMA node when the cache files are missing);
* without sysfs, psutil / ``os.cpu_count`` counts: 1 socket, 1 NUMA node, 1 L3 group, and
  SMT siblings assumed K and K+N (Linux's usual enumeration).

Example::

    topo = Topology.detect()            # this machine, within os.sched_getaffinity(0)
    [c.cpu for c in topo.physical_cores], topo.default_num_streams()
    Topology.from_dict({"sockets": 2, "cores_per_socket": 8})   # a synthetic machine (tests)
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from deepsparse_lite.cpu import _parse_cpu_list, _read

__all__ = ["Core", "Topology", "default_num_streams"]

_LOGGER = logging.getLogger(__name__)

SYSFS_ROOT = "/sys/devices/system"


@dataclass(frozen=True)
class Core:
    """One physical core. ``cpu`` is the logical CPU to pin a worker to (the lowest of
    ``siblings``), ``siblings`` its hardware threads in the affinity mask (ascending);
    ``socket``/``numa`` are the kernel's ids, ``l3`` a machine-wide L3-group index, and
    ``index`` the core's position in the machine-wide order (stable under any mask)."""

    cpu: int
    siblings: Tuple[int, ...]
    socket: int
    numa: int
    l3: int
    index: int

    def __repr__(self) -> str:
        sib = ",".join(map(str, self.siblings))
        return f"Core(cpu={self.cpu}, siblings=[{sib}], socket={self.socket}, numa={self.numa}, l3={self.l3})"


def default_num_streams(cores: Sequence[Core]) -> int:
    """One stream per L3 group or per NUMA node among ``cores``, whichever is more (so
    "requests are multiplexed across L3 caches" and no default stream spans NUMA nodes);
    at least 1."""
    return max(1, len({c.l3 for c in cores}), len({c.numa for c in cores}))


# ----------------------------------------------------------------------------- raw threads
@dataclass(frozen=True)
class _Thread:
    """A logical CPU as read from the machine. ``core``/``l3`` are opaque keys: equal keys
    mean the same physical core / the same L3 cache; ``l3`` None means unknown."""

    cpu: int
    core: object
    socket: int
    numa: int
    l3: object = None


def _build_cores(threads: Sequence[_Thread]) -> List[Core]:
    """Machine-wide cores (all their hardware threads as siblings) in the stable order
    socket, NUMA node, L3 group, lowest logical CPU."""
    by_core: Dict[object, List[_Thread]] = {}
    for t in threads:
        by_core.setdefault(t.core, []).append(t)
    groups = []
    for members in by_core.values():
        members.sort(key=lambda t: t.cpu)
        first = members[0]
        l3 = first.l3 if first.l3 is not None else ("numa", first.socket, first.numa)
        groups.append((first.socket, first.numa, l3, tuple(t.cpu for t in members)))
    # L3 index: groups ranked by where they first appear (socket, NUMA node, lowest CPU), so
    # l3 ids grow along the core order and are comparable across machines built the same way.
    l3_rank: Dict[object, Tuple[int, int, int]] = {}
    for socket, numa, l3, cpus in groups:
        key = (socket, numa, cpus[0])
        if l3 not in l3_rank or key < l3_rank[l3]:
            l3_rank[l3] = key
    l3_index = {k: i for i, k in enumerate(sorted(l3_rank, key=l3_rank.__getitem__))}
    groups.sort(key=lambda g: (g[0], g[1], l3_index[g[2]], g[3][0]))
    return [Core(cpu=cpus[0], siblings=cpus, socket=s, numa=n, l3=l3_index[l3], index=i)
            for i, (s, n, l3, cpus) in enumerate(groups)]


def _read_sysfs_threads(cpu_dir: str, node_dir: str) -> List[_Thread]:
    """Every online logical CPU with its topology; [] when sysfs (or any CPU's topology
    directory) is missing, so the caller falls back as a whole instead of mixing sources."""
    cpus = _parse_cpu_list(_read(os.path.join(cpu_dir, "online")))
    if not cpus:
        cpus = sorted(int(p.rsplit("cpu", 1)[1]) for p in glob.glob(os.path.join(cpu_dir, "cpu[0-9]*")))
    if not cpus:
        return []
    numa_of: Dict[int, int] = {}
    for path in glob.glob(os.path.join(node_dir, "node[0-9]*")):
        node = int(path.rsplit("node", 1)[1])
        for c in _parse_cpu_list(_read(os.path.join(path, "cpulist"))):
            numa_of[c] = node
    threads = []
    for c in cpus:
        base = os.path.join(cpu_dir, f"cpu{c}")
        topo = os.path.join(base, "topology")
        pkg = _read(os.path.join(topo, "physical_package_id"))
        core_id = _read(os.path.join(topo, "core_id"))
        if pkg is None or core_id is None:
            return []
        socket = max(int(pkg), 0)  # -1 on some VMs
        # core_id is unique only within a package (sometimes only within a die); the sibling
        # list names the physical core unambiguously. core_cpus_list is the newer name.
        sib = _read(os.path.join(topo, "core_cpus_list")) or _read(os.path.join(topo, "thread_siblings_list"))
        if sib:
            core_key: object = ("sib", socket, tuple(_parse_cpu_list(sib)))
        else:
            core_key = ("id", socket, _read(os.path.join(topo, "die_id")), core_id)
        numa = numa_of.get(c)
        if numa is None:  # no node/ directory: the cpuN/nodeM link, else one node per socket
            links = glob.glob(os.path.join(base, "node[0-9]*"))
            numa = int(links[0].rsplit("node", 1)[1]) if links else socket
        threads.append(_Thread(cpu=c, core=core_key, socket=socket, numa=numa, l3=_l3_key(base)))
    return threads


def _l3_key(cpu_base: str) -> Optional[Tuple[int, ...]]:
    """The CPUs sharing this CPU's last-level (L3) cache, as a hashable key; None if unknown."""
    for idx in sorted(glob.glob(os.path.join(cpu_base, "cache", "index[0-9]*"))):
        if _read(os.path.join(idx, "level")) != "3":
            continue
        if (_read(os.path.join(idx, "type")) or "").lower() == "instruction":
            continue
        shared = _parse_cpu_list(_read(os.path.join(idx, "shared_cpu_list")))
        if shared:
            return tuple(shared)
        cache_id = _read(os.path.join(idx, "id"))
        if cache_id is not None:
            return ("id", cache_id)
    return None


def _machine_counts() -> Tuple[int, int]:
    """(logical CPUs, physical cores) without sysfs: psutil, else os.cpu_count()."""
    try:
        import psutil
        logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        physical = psutil.cpu_count(logical=False) or logical
    except ImportError:
        logical = physical = os.cpu_count() or 1
    return logical, physical


# ----------------------------------------------------------------------------- Topology
class Topology:
    """The machine's physical cores as the scheduler sees them.

    ``physical_cores`` lists one :class:`Core` per physical core with at least one hardware
    thread in the affinity mask, ordered by (socket, NUMA node, L3 group, core). A core whose
    threads are all outside the mask is absent; a core with only some of its threads inside
    is kept, pinned through those. The machine-wide view (no mask) is ``unrestricted()``.

    Build it with :meth:`detect` (this process), :meth:`from_sysfs` (a sysfs tree),
    :meth:`from_dict` (a synthetic machine) or :meth:`from_counts` (just counts).
    """

    def __init__(self, machine_cores: Sequence[Core], affinity: Optional[Iterable[int]] = None,
                 source: str = "custom"):
        self._machine = tuple(machine_cores)
        self.source = source
        every = {c for core in self._machine for c in core.siblings}
        self._affinity = None if affinity is None else frozenset(affinity)
        allowed = every if self._affinity is None else every & self._affinity
        if not allowed:
            raise ValueError(
                f"the affinity mask {sorted(self._affinity or ())} holds none of this machine's "
                f"CPUs {sorted(every)}")
        cores = []
        for core in self._machine:
            sib = tuple(c for c in core.siblings if c in allowed)
            if sib:
                cores.append(Core(cpu=sib[0], siblings=sib, socket=core.socket, numa=core.numa,
                                  l3=core.l3, index=core.index))
        self._cores = tuple(cores)

    # -- constructors
    @classmethod
    def detect(cls) -> "Topology":
        """This machine (``/sys/devices/system``), restricted to ``os.sched_getaffinity(0)``."""
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            affinity = None
        try:
            return cls.from_sysfs(SYSFS_ROOT, affinity=affinity)
        except ValueError:  # a mask naming no online CPU: sysfs and the kernel disagree
            _LOGGER.warning("deepsparse_lite: affinity mask %s matches no CPU in sysfs; "
                            "using all CPUs", sorted(affinity or ()))
            return cls.from_sysfs(SYSFS_ROOT, affinity=None)

    @classmethod
    def from_sysfs(cls, root: Optional[str] = SYSFS_ROOT, affinity: Optional[Iterable[int]] = None,
                   *, cpu_dir: Optional[str] = None, node_dir: Optional[str] = None) -> "Topology":
        """Read ``root/cpu`` and ``root/node`` (``cpu_dir``/``node_dir`` override either).
        ``affinity`` None means every online CPU. Without a usable sysfs tree this falls back
        to :meth:`from_counts` with psutil's counts."""
        root = root or SYSFS_ROOT
        cpu_dir = cpu_dir or os.path.join(root, "cpu")
        node_dir = node_dir or os.path.join(root, "node")
        threads = _read_sysfs_threads(cpu_dir, node_dir)
        if not threads:
            logical, physical = _machine_counts()
            return cls.from_counts(logical, physical, affinity=affinity)
        return cls(_build_cores(threads), affinity, source="sysfs")

    @classmethod
    def from_counts(cls, num_hw_threads: int, num_physical_cores: Optional[int] = None,
                    affinity: Optional[Iterable[int]] = None) -> "Topology":
        """The no-sysfs fallback: 1 socket, 1 NUMA node, 1 L3 group. When the counts show SMT,
        siblings are taken to be K and K+N (how Linux usually enumerates both vendors' CPUs);
        CPUs in ``affinity`` beyond ``num_hw_threads`` count as cores of their own."""
        n_hw = max(1, int(num_hw_threads))
        n_phys = max(1, min(int(num_physical_cores or n_hw), n_hw))
        smt = n_hw % n_phys == 0 and n_phys < n_hw
        cpus = set(range(n_hw)) | set(affinity or ())
        threads = [_Thread(cpu=c, core=(c % n_phys) if smt and c < n_hw else c, socket=0, numa=0,
                           l3=0) for c in sorted(cpus)]
        return cls(_build_cores(threads), affinity, source="fallback")

    _DICT_KEYS = {"sockets": 1, "cores_per_socket": 1, "threads_per_core": 1, "numbering": "intel",
                  "numa_per_socket": 1, "l3_per_numa": 1, "affinity": None}

    @classmethod
    def from_dict(cls, spec: dict) -> "Topology":
        """A synthetic machine, e.g. ``{"sockets": 2, "cores_per_socket": 8,
        "threads_per_core": 2, "numbering": "intel" | "amd", "numa_per_socket": 1,
        "l3_per_numa": 1, "affinity": [...]}`` (all optional). Cores are numbered socket by
        socket; with ``intel`` numbering thread t of core K is CPU K + t*N (N = total cores),
        with ``amd`` it is CPU K*threads_per_core + t. NUMA nodes and L3 groups split their
        parent into contiguous, near-equal runs of cores."""
        unknown = set(spec) - set(cls._DICT_KEYS)
        if unknown:
            raise ValueError(f"unknown topology keys {sorted(unknown)}; expected {sorted(cls._DICT_KEYS)}")
        p = dict(cls._DICT_KEYS, **spec)
        sockets, cps, tpc = int(p["sockets"]), int(p["cores_per_socket"]), int(p["threads_per_core"])
        nps, lpn = int(p["numa_per_socket"]), int(p["l3_per_numa"])
        if min(sockets, cps, tpc, nps, lpn) < 1:
            raise ValueError(f"topology counts must be >= 1: {spec}")
        if nps > cps or lpn * nps > cps:
            raise ValueError(f"more NUMA nodes / L3 groups than cores per socket: {spec}")
        if p["numbering"] not in ("intel", "amd"):
            raise ValueError(f"numbering must be 'intel' or 'amd', not {p['numbering']!r}")
        total = sockets * cps
        threads = []
        for s in range(sockets):
            k = s * cps
            for n, numa_cores in enumerate(_near_equal(cps, nps)):
                numa = s * nps + n
                for l, l3_cores in enumerate(_near_equal(numa_cores, lpn)):
                    for _ in range(l3_cores):
                        for t in range(tpc):
                            cpu = k + t * total if p["numbering"] == "intel" else k * tpc + t
                            threads.append(_Thread(cpu=cpu, core=k, socket=s, numa=numa,
                                                   l3=numa * lpn + l))
                        k += 1
        return cls(_build_cores(threads), p["affinity"], source="dict")

    # -- views
    def restrict(self, affinity: Optional[Iterable[int]]) -> "Topology":
        """The same machine under another affinity mask (None: no mask)."""
        return Topology(self._machine, affinity, source=self.source)

    def unrestricted(self) -> "Topology":
        """The whole machine, ignoring the affinity mask."""
        return self.restrict(None)

    @property
    def affinity(self) -> Optional[frozenset]:
        """The mask this topology was restricted to (None: none)."""
        return self._affinity

    @property
    def physical_cores(self) -> List[Core]:
        return list(self._cores)

    @property
    def num_physical_cores(self) -> int:
        return len(self._cores)

    @property
    def cpus(self) -> List[int]:
        """Every available logical CPU (all hardware threads), ascending."""
        return sorted(c for core in self._cores for c in core.siblings)

    @property
    def num_hw_threads(self) -> int:
        return sum(len(core.siblings) for core in self._cores)

    @property
    def sockets(self) -> List[int]:
        return sorted({c.socket for c in self._cores})

    @property
    def numa_nodes(self) -> List[int]:
        return sorted({c.numa for c in self._cores})

    @property
    def l3_groups(self) -> List[int]:
        return sorted({c.l3 for c in self._cores})

    @property
    def threads_per_core(self) -> int:
        """Most available hardware threads on one core."""
        return max(len(c.siblings) for c in self._cores)

    @property
    def cores_per_socket(self) -> int:
        """Most available physical cores on one socket."""
        counts: Dict[int, int] = {}
        for c in self._cores:
            counts[c.socket] = counts.get(c.socket, 0) + 1
        return max(counts.values())

    def default_num_streams(self, cores: Optional[Sequence[Core]] = None) -> int:
        """Streams when ``num_streams`` is not given: one per L3 group / NUMA node among
        ``cores`` (default: all available cores), the larger count, at least 1."""
        return default_num_streams(self._cores if cores is None else cores)

    def __repr__(self) -> str:
        return (f"Topology(sockets={len(self.sockets)}, numa_nodes={len(self.numa_nodes)}, "
                f"l3_groups={len(self.l3_groups)}, physical_cores={self.num_physical_cores}, "
                f"hw_threads={self.num_hw_threads}, source={self.source!r})")


def _near_equal(total: int, parts: int) -> List[int]:
    """``total`` split into ``parts`` sizes, the first ``total % parts`` one larger."""
    q, r = divmod(total, parts)
    return [q + 1] * r + [q] * (parts - r)
