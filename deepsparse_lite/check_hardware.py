"""``deepsparse_lite.check_hardware``: what this CPU offers and how a Context would use it.

Prints DeepSparse's ``deepsparse.check_hardware`` summary (``cpu.print_hardware_capability``
wording: cores, FP32 / INT8 support) followed by the details the engine acts on:

- ISA: the instruction set the kernels run (``cpu_architecture().isa``, after NM_ARCH /
  DSL_ISA) and the hardware's; VNNI (AVX512-VNNI / AVX-VNNI), BF16, AMX when present;
- cores: physical and logical, the process affinity mask, hardware threads per core;
- NUMA nodes and L3 groups (which logical CPUs share each), and the L3 size;
- the streams the default ``Context()`` makes (``--num_cores`` / ``--num_streams`` for
  another one): which CPUs each stream owns, read back from a real Context, so the
  partition shown is the scheduler's own, not a re-implementation.

Usage::

    deepsparse_lite.check_hardware            # or: python -m deepsparse_lite.check_hardware
    deepsparse_lite.check_hardware --json     # the same report as one JSON object
    deepsparse_lite.check_hardware -ncores 2 -nstreams 2

``hardware_report(num_cores=None, num_streams=None) -> dict`` is the report as data.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List, Optional

__all__ = ["hardware_report", "format_report", "main"]

#: /proc/cpuinfo flags worth naming (AMX appears on Sapphire Rapids and later)
_FLAG_NAMES = {
    "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512dq": "avx512dq", "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni", "avx512_bf16": "avx512_bf16",
    "avx512vbmi": "avx512_vbmi", "avx512_vbmi2": "avx512_vbmi2", "avx512_fp16": "avx512_fp16",
    "amx_tile": "amx_tile", "amx_int8": "amx_int8", "amx_bf16": "amx_bf16",
    "asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "bf16": "bf16",
}


def _cpu_flags() -> set:
    from deepsparse_lite.cpu import _cpuinfo

    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def _ranges(cpus) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    cpus = sorted(set(cpus))
    out, k = [], 0
    while k < len(cpus):
        j = k
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[k]) if j == k else f"{cpus[k]}-{cpus[j]}")
        k = j + 1
    return ",".join(out)


def _context_report(num_cores, num_streams, core_of) -> Dict:
    """The streams a real ``Context(num_cores, num_streams)`` makes (closed right after:
    no worker thread has started)."""
    from deepsparse_lite.scheduler import Context

    with Context(num_cores=num_cores, num_streams=num_streams) as ctx:
        streams = []
        for i, cpus in enumerate(ctx.stream_cpus):
            known = [core_of[c] for c in cpus if c in core_of]
            streams.append({"stream": i, "cpus": list(cpus),
                            "numa": sorted({c.numa for c in known}),
                            "l3": sorted({c.l3 for c in known})})
        context = {"default": num_cores is None and num_streams is None,
                   "num_cores": ctx.num_cores, "num_streams": ctx.num_streams,
                   "scheduler": str(ctx.scheduler), "repr": repr(ctx), "streams": streams}
    return context


def hardware_report(num_cores: Optional[int] = None, num_streams: Optional[int] = None) -> Dict:
    """The CPU, its topology and the streams ``Context(num_cores, num_streams)`` makes.

    Keys: ``isa``, ``hardware_isa``, ``vnni``, ``bf16``, ``amx`` (list of AMX flags, [] if
    none), ``flags`` (the SIMD flags found), ``vendor``, ``model_name``, ``physical_cores``,
    ``logical_cpus`` (both within the affinity mask), ``machine_physical_cores``,
    ``machine_logical_cpus``, ``affinity`` (logical CPUs), ``threads_per_core``,
    ``sockets``, ``numa_nodes`` / ``l3_groups`` (lists of ``{"id", "cpus", "cores"}``),
    ``caches`` (bytes), ``openmp``, ``thread_binding`` and ``context``
    (``{"default", "num_cores", "num_streams", "scheduler", "repr", "streams": [{"stream",
    "cpus", "numa", "l3"}]}``)."""
    from deepsparse_lite import config
    from deepsparse_lite.cpu import _affinity, cpu_architecture
    from deepsparse_lite.scheduler import Topology

    arch = cpu_architecture()
    flags = _cpu_flags()
    topo = Topology.detect()
    cores = topo.physical_cores
    core_of = {cpu: c for c in cores for cpu in c.siblings}

    def groups(attr: str) -> List[Dict]:
        out: Dict[int, Dict] = {}
        for c in cores:
            g = out.setdefault(getattr(c, attr), {"id": getattr(c, attr), "cpus": [], "cores": 0})
            g["cpus"].extend(c.siblings)
            g["cores"] += 1
        for g in out.values():
            g["cpus"].sort()
        return [out[k] for k in sorted(out)]

    try:
        context = _context_report(num_cores, num_streams, core_of)
    except (ImportError, RuntimeError, OSError) as exc:  # e.g. the extensions are not built
        context = {"default": num_cores is None and num_streams is None,
                   "error": f"{type(exc).__name__}: {exc}", "streams": []}
    try:
        from deepsparse_lite import openmp_enabled
        openmp = bool(openmp_enabled())
    except ImportError:  # pragma: no cover - extensions not built
        openmp = None
    return {
        "vendor": arch.vendor,
        "model_name": arch.vendor_model,
        "architecture": arch.architecture,
        "isa": arch.isa,
        "hardware_isa": arch.get("hardware_isa", arch.isa),
        "vnni": bool(arch.vnni),
        "bf16": bool(arch.bf16),
        "amx": sorted(f for f in flags if f.startswith("amx")),
        "flags": sorted({name for flag, name in _FLAG_NAMES.items() if flag in flags}),
        "physical_cores": topo.num_physical_cores,
        "logical_cpus": topo.num_hw_threads,
        "machine_physical_cores": arch.num_cores,
        "machine_logical_cpus": arch.num_hw_threads,
        "affinity": _affinity(),
        "threads_per_core": topo.threads_per_core,
        "sockets": len(topo.sockets),
        "numa_nodes": groups("numa"),
        "l3_groups": groups("l3"),
        "caches": {k: arch[k] for k in ("L1_data_cache_size", "L1_instruction_cache_size",
                                        "L2_cache_size", "L3_cache_size")},
        "topology_source": topo.source,
        "openmp": openmp,
        "thread_binding": config.thread_binding(),
        "context": context,
    }


def _size(n: int) -> str:
    if not n:
        return "unknown"
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % (div // 16 or 1) == 0:
            return f"{n / div:g} {unit}"
    return f"{n} B"


def format_report(r: Dict) -> str:
    """The report as the text ``check_hardware`` prints after DeepSparse's summary."""
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    isa = r["isa"] if r["isa"] == r["hardware_isa"] else f"{r['isa']} (hardware: {r['hardware_isa']}, lowered by NM_ARCH/DSL_ISA)"
    lines = [
        "",
        f"CPU: {r['model_name'] or r['vendor']} ({r['architecture']})",
        f"Kernel ISA: {isa}",
        f"VNNI: {yes(r['vnni'])}   BF16: {yes(r['bf16'])}   AMX: {', '.join(r['amx']) if r['amx'] else 'no'}",
        f"SIMD flags: {' '.join(r['flags']) or 'none'}",
        f"Cores: {r['physical_cores']} physical / {r['logical_cpus']} logical available "
        f"({r['machine_physical_cores']} / {r['machine_logical_cpus']} on the machine), "
        f"{r['threads_per_core']} thread(s) per core, {r['sockets']} socket(s)",
        f"Affinity: CPUs {_ranges(r['affinity'])}",
        f"Caches: L1d {_size(r['caches']['L1_data_cache_size'])}, L2 {_size(r['caches']['L2_cache_size'])}, "
        f"L3 {_size(r['caches']['L3_cache_size'])} per group",
        f"NUMA nodes: {len(r['numa_nodes'])}",
    ]
    lines += [f"  node {g['id']}: {g['cores']} cores, CPUs {_ranges(g['cpus'])}" for g in r["numa_nodes"]]
    lines.append(f"L3 groups: {len(r['l3_groups'])}")
    lines += [f"  l3 {g['id']}: {g['cores']} cores, CPUs {_ranges(g['cpus'])}" for g in r["l3_groups"]]
    lines.append(f"OpenMP: {r['openmp']}   thread binding: {r['thread_binding']}")
    ctx = r["context"]
    label = "Default context" if ctx.get("default") else "Context"
    lines.append(f"{label}: {ctx['repr']}" if "repr" in ctx else f"{label}: unavailable ({ctx.get('error')})")
    for s in ctx["streams"]:
        lines.append(f"  stream {s['stream']}: CPUs {_ranges(s['cpus'])} ({len(s['cpus'])} threads; "
                     f"NUMA {','.join(map(str, s['numa']))}; L3 {','.join(map(str, s['l3']))})")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deepsparse_lite.check_hardware",
        description="Show the CPU features, topology and default stream layout deepsparse_lite uses")
    parser.add_argument("-ncores", "--num_cores", type=int, default=None,
                        help="Cores of the Context to show (default: all available physical cores)")
    parser.add_argument("-nstreams", "--num_streams", type=int, default=None,
                        help="Streams of the Context to show (default: the engine's choice)")
    parser.add_argument("--json", action="store_true", default=False,
                        help="Print the report as one JSON object (no summary text)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Console entry point (returns None: console-script wrappers sys.exit on it)."""
    args = parse_args(argv)
    report = hardware_report(args.num_cores, args.num_streams)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    from deepsparse_lite.cpu import print_hardware_capability

    _print_summary(print_hardware_capability)
    print(format_report(report))


def _print_summary(print_hardware_capability) -> None:
    """DeepSparse's summary lines, without the raw architecture dict it ends with (the
    report below says the same, readably)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_hardware_capability()
    text = buf.getvalue()
    cut = text.find("Additional CPU info:")
    print((text[:cut] if cut >= 0 else text).rstrip())


if __name__ == "__main__":
    main()
