"""select_cores / partition / elastic_groups: DeepSparse's documented examples, the
NUMA-avoiding layout, capping and errors."""
import itertools
import random

import pytest

from deepsparse_lite.scheduler import (Topology, chunk_sizes, default_num_streams, elastic_groups,
                                       partition, select_cores)
from tests.scheduler import fake_sysfs


def ids(chunks):
    return [[c.cpu for c in chunk] for chunk in chunks]


def span(a, b, step=1):
    return list(range(a, b + 1, step))


TWO_BY_EIGHT = {"sockets": 2, "cores_per_socket": 8}


# ----------------------------------------------------------------------------- seed examples
@pytest.mark.parametrize("numbering,step,smt", [("intel", 1, 1), ("intel", 1, 2), ("amd", 2, 2)])
def test_seed_document_examples(tmp_path, numbering, step, smt):
    """2 sockets x 8 cores: default 2 streams 0-7 / 8-15; 3 streams 0-5, 6-10, 11-15;
    4 streams 0-3, 4-7, 8-11, 12-15 (in cores; AMD SMT numbering pins the even CPUs)."""
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=8,
                                                         threads_per_core=smt, numbering=numbering))
    topo = Topology.from_sysfs(root)
    cores = select_cores(topo, None)
    assert len(cores) == 16
    n = topo.default_num_streams(cores)
    assert n == 2
    c = lambda k: k * step  # the CPU pinned for physical core k
    assert ids(partition(cores, n)) == [[c(k) for k in span(0, 7)], [c(k) for k in span(8, 15)]]
    assert ids(partition(cores, 3)) == [[c(k) for k in span(*r)] for r in ((0, 5), (6, 10), (11, 15))]
    assert ids(partition(cores, 4)) == [[c(k) for k in span(4 * i, 4 * i + 3)] for i in range(4)]


def test_chunk_sizes():
    assert chunk_sizes(16, 3) == [6, 5, 5]
    assert chunk_sizes(12, 5) == [3, 3, 2, 2, 2]
    assert chunk_sizes(8, 4) == [2, 2, 2, 2]
    assert chunk_sizes(3, 3) == [1, 1, 1]


# ----------------------------------------------------------------------------- NUMA layout
def test_numa_avoiding_layout_example():
    """Nodes with 4 and 8 available cores, 5 streams: sizes [3,3,2,2,2] -> 2+2 | 3+3+2."""
    topo = Topology.from_dict(dict(TWO_BY_EIGHT, affinity=span(4, 15)))
    assert ids(partition(topo.physical_cores, 5)) == [[4, 5], [6, 7], [8, 9, 10], [11, 12, 13], [14, 15]]


def test_numa_avoiding_layout_puts_big_chunks_in_the_later_node():
    """Nodes of 8 and 10 cores, 4 streams [5,5,4,4]: plain 0-4, 5-9 straddles; 4+4 | 5+5 fits."""
    topo = Topology.from_dict({"sockets": 2, "cores_per_socket": 10, "affinity": span(0, 7) + span(10, 19)})
    assert ids(partition(topo.physical_cores, 4)) == [span(0, 3), span(4, 7), span(10, 14), span(15, 19)]


def test_numa_layout_when_no_tiling_exists_is_plain():
    """Nodes of 6 and 10, 4 streams of 4: 6 is no sum of 4s, so the plain (straddling) cut."""
    topo = Topology.from_dict({"sockets": 2, "cores_per_socket": 10, "affinity": span(4, 19)})
    assert ids(partition(topo.physical_cores, 4)) == [span(4, 7), span(8, 11), span(12, 15), span(16, 19)]


def test_numa_layout_with_four_nodes_and_smt():
    topo = Topology.from_dict({"sockets": 2, "cores_per_socket": 8, "numa_per_socket": 2,
                               "threads_per_core": 2, "numbering": "amd"})
    # 16 cores, 8 streams: 2 cores each, 2 streams per node, even CPUs.
    assert ids(partition(topo.physical_cores, 8)) == [[4 * i, 4 * i + 2] for i in range(8)]
    # 6 streams [3,3,3,3,2,2]: nodes of 4 cannot take a 3 without a 1 -> plain cut.
    assert [len(s) for s in partition(topo.physical_cores, 6)] == [3, 3, 3, 3, 2, 2]


def _straddles(chunks):
    return any(len({c.numa for c in chunk}) > 1 for chunk in chunks)


def _search(node_sizes, sizes):
    """Exhaustive search (big chunk tried first at every step, so the first hit is the
    lexicographically largest order) for an order of ``sizes`` whose running sums hit every
    node boundary; None if there is none."""
    bounds = list(itertools.accumulate(node_sizes))
    big, small = max(sizes), min(sizes)

    def dfs(pos, n_big, n_small, order):
        if n_big == n_small == 0:
            return order
        nxt = next(b for b in bounds if b > pos)
        for size, nb, ns in ((big, n_big - 1, n_small), (small, n_big, n_small - 1)):
            if nb < 0 or ns < 0 or pos + size > nxt:
                continue
            found = dfs(pos + size, nb, ns, order + [size])
            if found:
                return found
        return None

    n_big = sizes.count(big) if big != small else 0
    return dfs(0, n_big, len(sizes) - n_big, [])


def test_partition_matches_brute_force_on_random_layouts():
    rng = random.Random(1234)
    for _ in range(150):
        nodes = [rng.randint(1, 7) for _ in range(rng.randint(1, 4))]
        cps = max(nodes)
        mask = [s * cps + k for s, n in enumerate(nodes) for k in range(n)]
        topo = Topology.from_dict({"sockets": len(nodes), "cores_per_socket": cps, "affinity": mask})
        cores = topo.physical_cores
        for ns in range(1, len(cores) + 1):
            chunks = partition(cores, ns)
            sizes = chunk_sizes(len(cores), ns)
            assert [c for chunk in chunks for c in chunk] == cores  # contiguous, in order
            assert sorted(map(len, chunks)) == sorted(sizes)
            plain = [cores[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(ns)]
            tiling = _search(nodes, sizes)
            if not _straddles(plain):
                assert chunks == plain
            elif tiling:
                assert [len(c) for c in chunks] == tiling, (nodes, ns)
                assert not _straddles(chunks)
            else:
                assert chunks == plain


# ----------------------------------------------------------------------------- capping, errors
def test_num_streams_capped_to_cores():
    cores = Topology.from_dict({"cores_per_socket": 3}).physical_cores
    assert ids(partition(cores, 10)) == [[0], [1], [2]]
    assert ids(partition(cores, 1)) == [[0, 1, 2]]


@pytest.mark.parametrize("bad", [0, -1, None])
def test_num_streams_below_one_is_an_error(bad):
    cores = Topology.from_dict({"cores_per_socket": 3}).physical_cores
    with pytest.raises(ValueError, match="num_streams"):
        partition(cores, bad)


def test_partition_of_no_cores_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        partition([], 1)


# ----------------------------------------------------------------------------- select_cores
def test_select_cores_fills_fewest_sockets_evenly():
    topo = Topology.from_dict(TWO_BY_EIGHT)
    assert ids([select_cores(topo, 4)]) == [span(0, 3)]
    assert ids([select_cores(topo, 8)]) == [span(0, 7)]
    # More than one socket holds: evenly over two sockets, not 8 + 4.
    assert ids([select_cores(topo, 12)]) == [span(0, 5) + span(8, 13)]
    assert ids([select_cores(topo, 9)]) == [span(0, 4) + span(8, 11)]
    assert select_cores(topo, 16) == topo.physical_cores
    assert select_cores(topo, None) == topo.physical_cores


def test_select_cores_more_than_available_gives_all():
    topo = Topology.from_dict(TWO_BY_EIGHT)
    assert select_cores(topo, 40) == topo.physical_cores


@pytest.mark.parametrize("bad", [0, -3])
def test_select_cores_below_one_is_an_error(bad):
    with pytest.raises(ValueError, match="num_cores"):
        select_cores(Topology.from_dict(TWO_BY_EIGHT), bad)


def test_select_cores_prefers_the_socket_that_fits():
    """Socket 0 has 3 cores in the mask, socket 1 has 8: 5 cores fit in socket 1 alone."""
    topo = Topology.from_dict(dict(TWO_BY_EIGHT, affinity=span(0, 2) + span(8, 15)))
    assert ids([select_cores(topo, 5)]) == [span(8, 12)]
    assert ids([select_cores(topo, 3)]) == [span(8, 10)]  # largest socket first
    assert ids([select_cores(topo, 10)]) == [span(0, 2) + span(8, 14)]  # 3 (all) + 7


def test_select_cores_spreads_over_numa_nodes_and_l3_groups():
    topo = Topology.from_dict({"cores_per_socket": 16, "l3_per_numa": 4})
    chosen = select_cores(topo, 6)  # two L3 groups of 4 are needed: 3 + 3
    assert ids([chosen]) == [[0, 1, 2, 4, 5, 6]]
    assert default_num_streams(chosen) == 2
    assert ids(partition(chosen, default_num_streams(chosen))) == [[0, 1, 2], [4, 5, 6]]
    numa = Topology.from_dict({"sockets": 2, "cores_per_socket": 8, "numa_per_socket": 2})
    assert ids([select_cores(numa, 6)]) == [[0, 1, 2, 4, 5, 6]]


def test_select_cores_with_smt_pins_one_thread_per_core(tmp_path):
    root = fake_sysfs.write(tmp_path, fake_sysfs.machine(sockets=2, cores_per_socket=4,
                                                         threads_per_core=2, numbering="amd"))
    topo = Topology.from_sysfs(root)
    assert ids([select_cores(topo, 4)]) == [[0, 2, 4, 6]]
    assert ids([select_cores(topo, 6)]) == [[0, 2, 4, 8, 10, 12]]


def test_select_cores_accepts_a_core_list():
    cores = Topology.from_dict(TWO_BY_EIGHT).physical_cores
    assert select_cores(cores, 12) == select_cores(Topology.from_dict(TWO_BY_EIGHT), 12)


# ----------------------------------------------------------------------------- elastic
def test_elastic_groups_are_numa_nodes():
    topo = Topology.from_dict({"sockets": 2, "cores_per_socket": 8, "numa_per_socket": 2})
    assert ids(elastic_groups(topo.physical_cores)) == [span(4 * i, 4 * i + 3) for i in range(4)]
    assert ids(elastic_groups(select_cores(topo, 6))) == [[0, 1, 2], [4, 5, 6]]
    single = Topology.from_dict({"cores_per_socket": 4})
    assert ids(elastic_groups(single.physical_cores)) == [[0, 1, 2, 3]]


def test_this_machine_single_default_stream():
    topo = Topology.detect()
    cores = select_cores(topo, None)
    streams = partition(cores, topo.default_num_streams(cores))
    assert [c for s in streams for c in s] == cores
    assert len(streams) == max(len(topo.l3_groups), len(topo.numa_nodes))
