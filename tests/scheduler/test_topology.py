"""Topology: physical cores, SMT numbering, NUMA/L3 groups and the affinity mask, read from
fake sysfs trees (and once from this machine)."""
import os

import pytest

from deepsparse_lite.scheduler import topology as topo_mod
from deepsparse_lite.scheduler.topology import Core, Topology
from tests.scheduler import fake_sysfs


def cpus(cores):
    return [c.cpu for c in cores]


def sysfs(tmp_path, **machine):
    return fake_sysfs.write(tmp_path, fake_sysfs.machine(**machine))


def as_tuples(topo):
    return [(c.cpu, c.siblings, c.socket, c.numa, c.l3) for c in topo.physical_cores]


# ----------------------------------------------------------------------------- sysfs layouts
def test_two_sockets_no_smt(tmp_path):
    topo = Topology.from_sysfs(sysfs(tmp_path, sockets=2, cores_per_socket=8))
    assert topo.source == "sysfs"
    assert cpus(topo.physical_cores) == list(range(16))
    assert [c.siblings for c in topo.physical_cores] == [(k,) for k in range(16)]
    assert [c.socket for c in topo.physical_cores] == [0] * 8 + [1] * 8
    assert [c.numa for c in topo.physical_cores] == [0] * 8 + [1] * 8
    assert [c.l3 for c in topo.physical_cores] == [0] * 8 + [1] * 8
    assert [c.index for c in topo.physical_cores] == list(range(16))
    assert (topo.sockets, topo.numa_nodes, topo.l3_groups) == ([0, 1], [0, 1], [0, 1])
    assert (topo.num_physical_cores, topo.num_hw_threads) == (16, 16)
    assert (topo.cores_per_socket, topo.threads_per_core) == (8, 1)
    assert topo.default_num_streams() == 2


def test_smt_intel_numbering(tmp_path):
    """Threads of core K are K and K+16: one thread per core, the lower one."""
    topo = Topology.from_sysfs(sysfs(tmp_path, sockets=2, cores_per_socket=8, threads_per_core=2))
    assert cpus(topo.physical_cores) == list(range(16))
    assert [c.siblings for c in topo.physical_cores] == [(k, k + 16) for k in range(16)]
    assert [c.socket for c in topo.physical_cores] == [0] * 8 + [1] * 8
    assert (topo.num_physical_cores, topo.num_hw_threads, topo.threads_per_core) == (16, 32, 2)
    assert topo.cpus == list(range(32))
    assert topo.default_num_streams() == 2


def test_smt_amd_numbering(tmp_path):
    """Threads of core K are 2K and 2K+1: the even CPUs are used."""
    topo = Topology.from_sysfs(sysfs(tmp_path, sockets=2, cores_per_socket=8, threads_per_core=2,
                                     numbering="amd"))
    assert cpus(topo.physical_cores) == list(range(0, 32, 2))
    assert [c.siblings for c in topo.physical_cores] == [(2 * k, 2 * k + 1) for k in range(16)]
    assert [c.socket for c in topo.physical_cores] == [0] * 8 + [1] * 8
    assert (topo.num_physical_cores, topo.num_hw_threads) == (16, 32)
    assert topo.default_num_streams() == 2


def test_core_cpus_list_is_read_too(tmp_path):
    """Newer kernels name the sibling list core_cpus_list; core_id alone repeats per socket."""
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=4,
                                                         threads_per_core=2, numbering="amd"),
                            siblings_file="core_cpus_list")
    topo = Topology.from_sysfs(root)
    assert [c.siblings for c in topo.physical_cores] == [(2 * k, 2 * k + 1) for k in range(8)]


def test_no_sibling_lists_uses_socket_and_core_id(tmp_path):
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=4,
                                                         threads_per_core=2),
                            siblings_file=None)
    topo = Topology.from_sysfs(root)
    assert [c.siblings for c in topo.physical_cores] == [(k, k + 8) for k in range(8)]


def test_one_socket_four_l3_groups(tmp_path):
    """An AMD-style chiplet part: 1 socket, 1 NUMA node, 4 L3 caches of 4 cores."""
    topo = Topology.from_sysfs(sysfs(tmp_path, cores_per_socket=16, threads_per_core=2,
                                     numbering="amd", l3_per_numa=4))
    assert (topo.sockets, topo.numa_nodes, topo.l3_groups) == ([0], [0], [0, 1, 2, 3])
    assert [c.l3 for c in topo.physical_cores] == [g for g in range(4) for _ in range(4)]
    assert topo.default_num_streams() == 4
    assert topo.default_num_streams(topo.physical_cores[:8]) == 2
    assert topo.default_num_streams(topo.physical_cores[:3]) == 1


def test_two_numa_nodes_per_socket(tmp_path):
    topo = Topology.from_sysfs(sysfs(tmp_path, sockets=2, cores_per_socket=8, numa_per_socket=2))
    assert topo.numa_nodes == [0, 1, 2, 3]
    assert [c.numa for c in topo.physical_cores] == [n for n in range(4) for _ in range(4)]
    assert topo.default_num_streams() == 4  # L3s are per node here: 4 either way


def test_l3_shared_by_two_numa_nodes(tmp_path):
    """Sub-NUMA clustering: one L3 per socket, two NUMA nodes in it -> streams per node."""
    recs = fake_sysfs.machine(sockets=2, cores_per_socket=8)
    for r in recs:
        r["numa"] = r["cpu"] // 4
    topo = Topology.from_sysfs(fake_sysfs.write(tmp_path, recs))
    assert (len(topo.l3_groups), len(topo.numa_nodes)) == (2, 4)
    assert topo.default_num_streams() == 4
    assert cpus(topo.physical_cores) == list(range(16))


def test_numa_from_cpu_links_when_node_dir_is_missing(tmp_path):
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=2,
                                                         numa_per_socket=2),
                            node_dir=False, node_links=True)
    assert [c.numa for c in Topology.from_sysfs(root).physical_cores] == [0, 1, 2, 3]


def test_no_numa_and_no_cache_info(tmp_path):
    """Without node/ the socket is the NUMA node; without cache/ each node is one L3 group."""
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=4),
                            node_dir=False, cache=False, online=False)
    topo = Topology.from_sysfs(root)
    assert [c.numa for c in topo.physical_cores] == [0] * 4 + [1] * 4
    assert [c.l3 for c in topo.physical_cores] == [0] * 4 + [1] * 4
    assert topo.default_num_streams() == 2


def test_non_contiguous_cpu_ids_keep_core_order(tmp_path):
    """Order is (socket, NUMA, L3, lowest CPU) even when socket 1's CPUs come first."""
    recs = fake_sysfs.machine(sockets=2, cores_per_socket=2)
    for r in recs:  # socket 0 gets CPUs 2,3 and socket 1 gets 0,1
        r["socket"] = 1 - r["socket"]
        r["numa"] = r["socket"]
    topo = Topology.from_sysfs(fake_sysfs.write(tmp_path, recs))
    assert cpus(topo.physical_cores) == [2, 3, 0, 1]
    assert [c.socket for c in topo.physical_cores] == [0, 0, 1, 1]


# ----------------------------------------------------------------------------- affinity
def test_affinity_hides_whole_cores(tmp_path):
    root = sysfs(tmp_path, sockets=2, cores_per_socket=8, threads_per_core=2)
    # Cores 4-7 (CPUs 4-7 and 20-23) are outside the mask.
    mask = set(range(32)) - set(range(4, 8)) - set(range(20, 24))
    topo = Topology.from_sysfs(root, affinity=mask)
    assert cpus(topo.physical_cores) == [0, 1, 2, 3] + list(range(8, 16))
    assert [c.index for c in topo.physical_cores] == [0, 1, 2, 3] + list(range(8, 16))
    assert topo.cores_per_socket == 8 and topo.num_hw_threads == 24
    assert topo.unrestricted().num_physical_cores == 16
    assert topo.affinity == frozenset(mask)


def test_affinity_hiding_one_sibling_keeps_the_core(tmp_path):
    root = sysfs(tmp_path, sockets=2, cores_per_socket=8, threads_per_core=2)
    topo = Topology.from_sysfs(root, affinity=set(range(32)) - {0, 5})
    assert topo.num_physical_cores == 16
    first, sixth = topo.physical_cores[0], topo.physical_cores[5]
    assert (first.cpu, first.siblings) == (16, (16,))
    assert (sixth.cpu, sixth.siblings) == (21, (21,))
    assert topo.physical_cores[1].siblings == (1, 17)
    assert topo.threads_per_core == 2 and topo.num_hw_threads == 30


def test_affinity_amd_only_odd_threads(tmp_path):
    root = sysfs(tmp_path, sockets=1, cores_per_socket=4, threads_per_core=2, numbering="amd")
    topo = Topology.from_sysfs(root, affinity=[1, 3, 5])
    assert cpus(topo.physical_cores) == [1, 3, 5]
    assert topo.threads_per_core == 1


def test_affinity_hiding_a_socket(tmp_path):
    topo = Topology.from_sysfs(sysfs(tmp_path, sockets=2, cores_per_socket=8), affinity=range(8, 16))
    assert (topo.sockets, topo.numa_nodes, topo.l3_groups) == ([1], [1], [1])
    assert topo.default_num_streams() == 1


def test_affinity_without_any_cpu_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="affinity mask"):
        Topology.from_sysfs(sysfs(tmp_path, sockets=1, cores_per_socket=2), affinity=[7, 9])


# ----------------------------------------------------------------------------- fallback
def test_fallback_without_sysfs(tmp_path, monkeypatch):
    """No sysfs: psutil counts, 1 socket / NUMA node / L3; SMT siblings assumed K, K+N."""
    monkeypatch.setattr(topo_mod, "_machine_counts", lambda: (8, 4))
    topo = Topology.from_sysfs(str(tmp_path / "missing"))
    assert topo.source == "fallback"
    assert cpus(topo.physical_cores) == [0, 1, 2, 3]
    assert [c.siblings for c in topo.physical_cores] == [(k, k + 4) for k in range(4)]
    assert (topo.sockets, topo.numa_nodes, topo.l3_groups) == ([0], [0], [0])
    assert topo.default_num_streams() == 1
    masked = Topology.from_sysfs(str(tmp_path / "missing"), affinity=[1, 5, 2])
    assert [(c.cpu, c.siblings) for c in masked.physical_cores] == [(1, (1, 5)), (2, (2,))]


def test_fallback_with_real_counts(tmp_path):
    topo = Topology.from_sysfs(str(tmp_path / "missing"), affinity=os.sched_getaffinity(0))
    assert topo.source == "fallback"
    assert topo.num_hw_threads == len(os.sched_getaffinity(0))
    assert 1 <= topo.num_physical_cores <= topo.num_hw_threads


def test_from_counts_without_smt_information():
    topo = Topology.from_counts(6, 4)  # 6 threads on 4 cores: no regular SMT, every CPU a core
    assert cpus(topo.physical_cores) == list(range(6))


# ----------------------------------------------------------------------------- from_dict
@pytest.mark.parametrize("machine", [
    dict(sockets=2, cores_per_socket=8),
    dict(sockets=2, cores_per_socket=8, threads_per_core=2, numbering="intel"),
    dict(sockets=2, cores_per_socket=8, threads_per_core=2, numbering="amd"),
    dict(sockets=1, cores_per_socket=16, threads_per_core=2, numbering="amd", l3_per_numa=4),
    dict(sockets=2, cores_per_socket=12, numa_per_socket=2, l3_per_numa=3),
])
def test_from_dict_matches_sysfs(tmp_path, machine):
    from_sysfs = Topology.from_sysfs(sysfs(tmp_path, **machine))
    from_dict = Topology.from_dict(machine)
    assert as_tuples(from_dict) == as_tuples(from_sysfs)
    mask = set(range(0, 64, 3))
    assert as_tuples(from_dict.restrict(mask)) == as_tuples(from_sysfs.restrict(mask))
    assert as_tuples(Topology.from_dict(dict(machine, affinity=sorted(mask)))) == \
        as_tuples(from_sysfs.restrict(mask))


def test_from_dict_uneven_split_and_errors():
    topo = Topology.from_dict({"cores_per_socket": 6, "numa_per_socket": 4})
    assert [c.numa for c in topo.physical_cores] == [0, 0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown topology keys"):
        Topology.from_dict({"socket": 2})
    with pytest.raises(ValueError, match="numbering"):
        Topology.from_dict({"numbering": "arm"})
    with pytest.raises(ValueError):
        Topology.from_dict({"cores_per_socket": 0})
    with pytest.raises(ValueError):
        Topology.from_dict({"cores_per_socket": 2, "numa_per_socket": 3})


def test_core_is_immutable_and_readable():
    core = Topology.from_dict({"cores_per_socket": 2, "threads_per_core": 2}).physical_cores[0]
    assert isinstance(core, Core) and core.siblings == (0, 2)
    with pytest.raises(AttributeError):
        core.cpu = 3
    assert "cpu=0" in repr(core) and "siblings=[0,2]" in repr(core)
    assert "physical_cores=2" in repr(Topology.from_dict({"cores_per_socket": 2, "threads_per_core": 2}))


# ----------------------------------------------------------------------------- this machine
def _sysfs_cores_in(mask):
    """Physical cores with a thread in ``mask``, read straight from sysfs."""
    keys = set()
    for c in mask:
        path = f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list"
        with open(path) as f:
            keys.add(f.read().strip())
    return len(keys)


def test_detect_this_machine():
    mask = os.sched_getaffinity(0)
    topo = Topology.detect()
    assert topo.num_hw_threads == len(mask)
    assert set(topo.cpus) == mask
    assert len({c.cpu for c in topo.physical_cores}) == topo.num_physical_cores
    for c in topo.physical_cores:
        assert c.cpu == min(c.siblings) and set(c.siblings) <= mask
    if os.path.isdir("/sys/devices/system/cpu/cpu0/topology"):
        assert topo.source == "sysfs"
        assert topo.num_physical_cores == _sysfs_cores_in(mask)
    if len(mask) == 2 and topo.threads_per_core == 1 and len(topo.l3_groups) == 1 \
            and len(topo.numa_nodes) == 1:  # the 2-core development box
        assert topo.num_physical_cores == 2 and topo.default_num_streams() == 1


def test_detect_follows_the_affinity_mask():
    mask = os.sched_getaffinity(0)
    if len(mask) < 2:
        pytest.skip("needs 2 CPUs in the affinity mask")
    one = max(mask)
    try:
        os.sched_setaffinity(0, {one})
        topo = Topology.detect()
    finally:
        os.sched_setaffinity(0, mask)
    assert cpus(topo.physical_cores) == [one]
    assert topo.default_num_streams() == 1


def test_cpu_architecture_agrees_with_topology():
    from deepsparse_lite.cpu import cpu_architecture
    arch, topo = cpu_architecture(), Topology.detect()
    assert arch.available_num_cores == topo.num_physical_cores
    assert arch.available_num_numa == len(topo.numa_nodes)
    assert arch.num_cores == topo.unrestricted().num_physical_cores
