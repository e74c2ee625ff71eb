"""Fake /sys/devices/system trees for topology tests, written independently of
deepsparse_lite.scheduler.topology so the two can check each other."""
import os


def machine(sockets=1, cores_per_socket=2, threads_per_core=1, numbering="intel",
            numa_per_socket=1, l3_per_numa=1):
    """Thread records {cpu, socket, core_id, siblings, numa, l3}; cores are numbered socket by
    socket, core_id restarts at 0 on each socket (as on real machines). Intel numbering: the
    threads of core K are K, K+N, ...; AMD: K*T, K*T+1, ..."""
    total = sockets * cores_per_socket
    per_numa = cores_per_socket // numa_per_socket
    per_l3 = per_numa // l3_per_numa
    assert per_numa * numa_per_socket == cores_per_socket and per_l3 * l3_per_numa == per_numa

    def cpus_of(k):
        if numbering == "intel":
            return [k + t * total for t in range(threads_per_core)]
        return [k * threads_per_core + t for t in range(threads_per_core)]

    recs = []
    for k in range(total):
        s, local = divmod(k, cores_per_socket)
        numa = s * numa_per_socket + local // per_numa
        l3_first = s * cores_per_socket + (local // per_l3) * per_l3
        l3 = sorted(c for j in range(l3_first, l3_first + per_l3) for c in cpus_of(j))
        for cpu in cpus_of(k):
            recs.append(dict(cpu=cpu, socket=s, core_id=local, siblings=cpus_of(k), numa=numa, l3=l3))
    return sorted(recs, key=lambda r: r["cpu"])


def _cpu_list(cpus):
    """[0,1,2,5] -> '0-2,5' (the kernel's format)."""
    cpus = sorted(cpus)
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def write(root, recs, *, node_dir=True, node_links=False, cache=True,
          siblings_file="thread_siblings_list", online=True):
    """Write ``recs`` under ``root`` (``root/cpu``, ``root/node``); returns ``str(root)``."""
    root = str(root)
    cpu_dir = os.path.join(root, "cpu")
    os.makedirs(cpu_dir, exist_ok=True)
    if online:
        _write(os.path.join(cpu_dir, "online"), _cpu_list(r["cpu"] for r in recs))
    for r in recs:
        base = os.path.join(cpu_dir, f"cpu{r['cpu']}")
        topo = os.path.join(base, "topology")
        _write(os.path.join(topo, "physical_package_id"), str(r["socket"]))
        _write(os.path.join(topo, "core_id"), str(r["core_id"]))
        if siblings_file:
            _write(os.path.join(topo, siblings_file), _cpu_list(r["siblings"]))
        if cache:
            for i, (level, kind, shared) in enumerate([
                    (1, "Data", r["siblings"]), (1, "Instruction", r["siblings"]),
                    (2, "Unified", r["siblings"]), (3, "Unified", r["l3"])]):
                idx = os.path.join(base, "cache", f"index{i}")
                _write(os.path.join(idx, "level"), str(level))
                _write(os.path.join(idx, "type"), kind)
                _write(os.path.join(idx, "shared_cpu_list"), _cpu_list(shared))
                _write(os.path.join(idx, "size"), "32K")
        if node_links:
            os.makedirs(os.path.join(root, "node", f"node{r['numa']}"), exist_ok=True)
            os.symlink(os.path.join(root, "node", f"node{r['numa']}"),
                       os.path.join(base, f"node{r['numa']}"))
    if node_dir:
        nodes = {}
        for r in recs:
            nodes.setdefault(r["numa"], []).append(r["cpu"])
        for n, cpus in nodes.items():
            _write(os.path.join(root, "node", f"node{n}", "cpulist"), _cpu_list(cpus))
    return root
