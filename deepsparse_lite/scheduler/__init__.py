"""Scheduling requests onto the CPU: where streams run and which cores they own.

``topology`` reads the machine (sockets, NUMA nodes, L3 groups, physical cores within the
process affinity mask); ``partition`` chooses a Context's cores and cuts them into streams.
The Context / stream machinery that runs requests on those cores builds on these.

    >>> from deepsparse_lite.scheduler import Topology, select_cores, partition
    >>> topo = Topology.from_dict({"sockets": 2, "cores_per_socket": 8})
    >>> [[c.cpu for c in s] for s in partition(select_cores(topo, 16), 3)]
    [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
"""
from deepsparse_lite.scheduler.topology import Core, Topology, default_num_streams
from deepsparse_lite.scheduler.partition import chunk_sizes, elastic_groups, partition, select_cores
from deepsparse_lite.scheduler.context import Context, Scheduler

__all__ = [
    "Context",
    "Scheduler",
    "Core",
    "Topology",
    "chunk_sizes",
    "default_num_streams",
    "elastic_groups",
    "partition",
    "select_cores",
]
