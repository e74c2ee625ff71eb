"""What the CPU under this process looks like: vector ISA, cores, sockets, NUMA, caches.

``cpu_architecture()`` mirrors ``deepsparse.cpu.cpu_architecture``: a memoised, read-only
``architecture`` dict (also readable by attribute). DeepSparse gets it from a bundled
``arch.bin``; here it is read from ``/proc/cpuinfo`` and ``/sys/devices/system/cpu``
(``topology/``, ``cache/index*``, ``/sys/devices/system/node/node*``), with psutil as the
fallback when sysfs is missing. The ``available_*`` counts follow the process affinity mask
(``taskset``/``numactl``), like DeepSparse's.

The ``isa`` is the one the kernels really run: it comes from
``deepsparse_lite.kernels.isa_level()`` when the extensions are built (0 generic,
1 avx2+fma, 2 avx512). ``NM_ARCH`` (or ``DSL_ISA``, which wins when both are set) may lower it
— never raise it above the hardware — and must be one of ``avx2, avx512, generic, neon,
sve``; anything else is an ``OSError``. A family that cannot run here (``neon`` on x86,
``avx2`` on ARM) means the portable C kernels, reported as ``generic``.

``python -m deepsparse_lite.cpu`` prints ``print_hardware_capability()`` (DeepSparse's
``deepsparse.check_hardware``).
"""
from __future__ import annotations

import glob
import logging
import os
import platform
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "VALID_VECTOR_EXTENSIONS",
    "architecture",
    "cpu_architecture",
    "cpu_details",
    "cpu_vnni_compatible",
    "cpu_avx2_compatible",
    "cpu_avx512_compatible",
    "cpu_neon_compatible",
    "cpu_sve_compatible",
    "cpu_quantization_compatible",
    "print_hardware_capability",
    "check_hardware",
]

_LOGGER = logging.getLogger(__name__)

VALID_VECTOR_EXTENSIONS = {"avx2", "avx512", "generic", "neon", "sve"}
from deepsparse_lite.config import ISA_ENV_VARS, isa_env  # noqa: E402  (precedence as csrc/dsl_cpu.h)
_X86_ORDER = ("generic", "avx2", "avx512")  # index == kernels.isa_level()
_ARM_ORDER = ("generic", "neon", "sve")
_SYS_CPU = "/sys/devices/system/cpu"
_SYS_NODE = "/sys/devices/system/node"


class architecture(dict):
    """All the architecture details of the current CPU, as a read-only dict whose keys are
    also attributes (``arch.isa == arch["isa"]``).

    Keys include: ``isa`` ('avx512', 'avx2', 'neon', 'sve' or 'generic'), ``vnni``, ``bf16``,
    ``vendor``, ``architecture``, ``num_cores`` (physical), ``num_hw_threads``,
    ``num_sockets``, ``num_numa``, ``cores_per_socket``, ``threads_per_core``,
    ``L1_data_cache_size`` / ``L1_instruction_cache_size`` / ``L2_cache_size`` /
    ``L3_cache_size`` (bytes, per core for L1/L2 and per L3 group for L3), and the counts
    restricted to the process affinity mask: ``available_num_cores``,
    ``available_num_hw_threads``, ``available_num_numa``, ``available_num_sockets``
    (= ``available_sockets``), ``available_cores_per_socket``,
    ``available_threads_per_core``.

    Example::

        from deepsparse_lite.cpu import cpu_architecture
        arch = cpu_architecture()
        print(arch.isa, arch.num_available_physical_cores)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "__dict__", self)

    def _refuse(self, name, value=None):
        raise AttributeError(
            "deepsparse_lite: Architecture: can't modify {} to {}".format(name, value))

    def __setattr__(self, name: str, value: Any):
        self._refuse(name, value)

    def __delattr__(self, name: str):
        self._refuse(name)

    # The memoised instance is shared by the whole process: item writes are refused too.
    def __setitem__(self, key, value):
        self._refuse(key, value)

    def __delitem__(self, key):
        self._refuse(key)

    def _blocked(self, *args, **kwargs):
        raise AttributeError("deepsparse_lite: Architecture: can't modify a read-only architecture")

    update = pop = popitem = clear = setdefault = _blocked

    def __reduce__(self):  # pickling must not go through the blocked __setitem__
        return (architecture, (dict(self),))

    def override_isa(self, value: str):
        """Set the isa to ``value`` (the only mutator, as in DeepSparse)."""
        dict.__setitem__(self, "isa", value)

    @property
    def threads_per_socket(self) -> int:
        """Hardware threads per socket on this machine."""
        return self.threads_per_core * self.cores_per_socket

    @property
    def num_threads(self) -> int:
        """Hardware threads on this machine."""
        return self.threads_per_socket * self.num_sockets

    @property
    def num_physical_cores(self) -> int:
        """Physical cores on this machine (``cores_per_socket * num_sockets``)."""
        return self.cores_per_socket * self.num_sockets

    @property
    def num_available_physical_cores(self) -> int:
        """Physical cores with at least one hardware thread in the affinity mask.

        DeepSparse computes ``available_cores_per_socket * available_sockets``; that product is
        the same number whenever the mask covers sockets evenly, and over-counts when it does
        not, so the exact count is returned here."""
        return self.available_num_cores


# ----------------------------------------------------------------------------- readers
def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _parse_cpu_list(text: Optional[str]) -> List[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]."""
    out: List[int] = []
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def _parse_size(text: Optional[str]) -> int:
    """sysfs cache sizes: '32K' -> 32768, '1M' -> 1048576; 0 when unknown."""
    if not text:
        return 0
    m = re.match(r"^\s*(\d+)\s*([KMG]?)", text, re.I)
    if not m:
        return 0
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]
    return int(m.group(1)) * mult


def _cpuinfo() -> Dict[str, str]:
    """The first processor block of /proc/cpuinfo (flags, vendor, family, model)."""
    info: Dict[str, str] = {}
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if not line.strip():
            if info:
                break
            continue
        if ":" in line:
            k, v = line.split(":", 1)
            info.setdefault(k.strip(), v.strip())
    return info


def _affinity() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cache_sizes(cpu: int) -> Dict[str, int]:
    sizes = {"L1_data_cache_size": 0, "L1_instruction_cache_size": 0,
             "L2_cache_size": 0, "L3_cache_size": 0}
    for idx in sorted(glob.glob(os.path.join(_SYS_CPU, f"cpu{cpu}", "cache", "index[0-9]*"))):
        level = _read(os.path.join(idx, "level"))
        kind = (_read(os.path.join(idx, "type")) or "").lower()
        size = _parse_size(_read(os.path.join(idx, "size")))
        if level == "1" and kind == "data":
            sizes["L1_data_cache_size"] = size
        elif level == "1" and kind == "instruction":
            sizes["L1_instruction_cache_size"] = size
        elif level in ("2", "3"):
            sizes[f"L{level}_cache_size"] = size
    return sizes


def _hardware_isa(machine: str, flags: set) -> str:
    if machine in ("x86_64", "amd64", "i386", "i686"):
        # The same test as dsl_isa_hardware() in csrc/dsl_cpu.h (F16C is part of both levels).
        if "f16c" not in flags:
            return "generic"
        if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"} <= flags:
            return "avx512"
        if {"avx2", "fma"} <= flags:
            return "avx2"
        return "generic"
    if machine in ("aarch64", "arm64"):
        if "sve" in flags:
            return "sve"
        if "asimd" in flags or machine == "arm64":
            return "neon"
    return "generic"


def _isa_override() -> Optional[Tuple[str, str]]:
    """(variable, value) of the ISA override in force; None when unset. Every set variable
    is validated, even the one that loses (DSL_ISA wins over NM_ARCH, as in dsl_cpu.h)."""
    found = None
    for var, value in isa_env():
        if not value:
            continue
        if value not in VALID_VECTOR_EXTENSIONS:
            raise OSError(
                "deepsparse_lite: Invalid instruction set '{}' in {}: must be one of {}.".format(
                    value, var, ",".join(sorted(VALID_VECTOR_EXTENSIONS))))
        found = found or (var, value)
    return found


def _effective_isa(hw_isa: str) -> str:
    """The hardware ISA lowered by NM_ARCH/DSL_ISA, then checked against the kernels."""
    order = _ARM_ORDER if hw_isa in _ARM_ORDER[1:] else _X86_ORDER
    isa = hw_isa
    override = _isa_override()
    if override is not None:
        var, value = override
        want = value if value in order else "generic"  # other ISA family: portable kernels
        if order.index(want) < order.index(isa):
            isa = want
        if isa != hw_isa or value != hw_isa:
            _LOGGER.info("deepsparse_lite: Using env variable %s=%s for isa_type (running %s)",
                         var, value, isa)
    if order is _X86_ORDER:
        try:
            from deepsparse_lite.kernels import isa_level
            level = int(isa_level())
        except ImportError:  # extensions not built: the Python reading stands
            level = None
        if level is not None and 0 <= level < len(order):
            isa = order[level]  # what the microkernels actually dispatch to
    return isa


# ----------------------------------------------------------------------------- public
def _build_architecture() -> architecture:
    if not sys.platform.startswith("linux"):
        if sys.platform == "darwin":
            pass  # sysfs is missing: psutil numbers below
        else:
            raise OSError(
                "deepsparse_lite: Only Linux or MacOS is supported, not '{}'.".format(sys.platform))
    machine = platform.machine().lower() or "unknown"
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    vendor = info.get("vendor_id") or info.get("CPU implementer") or platform.processor() or "unknown"
    family = int(info.get("cpu family", "0") or 0) if info.get("cpu family", "").isdigit() else 0
    model = int(info.get("model", "0") or 0) if info.get("model", "").isdigit() else 0

    # Counts come from the scheduler's Topology so that "available cores" here and the
    # cores a Context actually uses can never disagree (it also does the psutil fallback).
    from deepsparse_lite.scheduler.topology import Topology
    allowed = _affinity()
    topo = Topology.from_sysfs(cpu_dir=_SYS_CPU, node_dir=_SYS_NODE, affinity=None)
    whole = topo
    try:
        topo = topo.restrict(allowed)
    except ValueError:  # the mask names no CPU sysfs knows: report the whole machine
        pass
    num_cores, num_hw = whole.num_physical_cores, whole.num_hw_threads
    num_sockets, num_numa = len(whole.sockets), len(whole.numa_nodes)
    cores_per_socket, threads_per_core = whole.cores_per_socket, whole.threads_per_core
    a_num_cores, a_num_hw = topo.num_physical_cores, topo.num_hw_threads
    a_num_sockets, a_num_numa = len(topo.sockets), len(topo.numa_nodes)
    a_cps, a_tpc = topo.cores_per_socket, topo.threads_per_core
    cache_cpu = topo.cpus[0]

    hw_isa = _hardware_isa(machine, flags)
    arch = architecture(
        architecture=machine,
        vendor=vendor,
        vendor_id=info.get("vendor_id", vendor),
        vendor_model=info.get("model name", ""),
        family=family,
        model=model,
        hardware_isa=hw_isa,
        isa=_effective_isa(hw_isa),
        vnni=bool(flags & {"avx512_vnni", "avx_vnni"}),
        bf16=bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}),
        dotprod="asimddp" in flags,
        i8mm="i8mm" in flags,
        vbmi="avx512vbmi" in flags,
        vbmi2="avx512_vbmi2" in flags,
        zen1=vendor == "AuthenticAMD" and family == 0x17 and model < 0x30,
        num_cores=num_cores,
        num_hw_threads=num_hw,
        num_sockets=num_sockets,
        num_numa=num_numa,
        cores_per_socket=cores_per_socket,
        threads_per_core=threads_per_core,
        available_num_cores=a_num_cores,
        available_num_hw_threads=a_num_hw,
        available_num_sockets=a_num_sockets,
        available_sockets=a_num_sockets,
        available_num_numa=a_num_numa,
        available_cores_per_socket=a_cps,
        available_threads_per_core=a_tpc,
        **_cache_sizes(cache_cpu),
    )
    return arch


_MEMO: Dict[Tuple, architecture] = {}


def cpu_architecture() -> architecture:
    """The CPU's :class:`architecture`, computed once per process (and per ISA override).

    Raises OSError when NM_ARCH / DSL_ISA hold an unknown instruction set."""
    key = tuple(value for _, value in isa_env())
    arch = _MEMO.get(key)
    if arch is None:
        arch = _MEMO[key] = _build_architecture()
    return arch


def cpu_vnni_compatible() -> bool:
    """True when the CPU has VNNI int8 dot products (AVX512-VNNI or AVX-VNNI)."""
    return bool(cpu_architecture().vnni)


def cpu_avx512_compatible() -> bool:
    """True when the kernels run their AVX-512 variants."""
    return cpu_architecture().isa == "avx512"


def cpu_avx2_compatible() -> bool:
    """True when the kernels run AVX2 or AVX-512 variants."""
    return cpu_architecture().isa == "avx2" or cpu_avx512_compatible()


def cpu_neon_compatible() -> bool:
    return cpu_architecture().isa == "neon"


def cpu_sve_compatible() -> bool:
    return cpu_architecture().isa == "sve"


def cpu_quantization_compatible() -> bool:
    """True when int8 models run with vector kernels (AVX2, AVX-512, NEON or SVE)."""
    return cpu_avx2_compatible() or cpu_neon_compatible() or cpu_sve_compatible()


def cpu_details() -> Tuple[int, str, bool]:
    """(available physical cores, isa, vnni), as ``deepsparse.cpu.cpu_details``."""
    arch = cpu_architecture()
    return arch.num_available_physical_cores, arch.isa, arch.vnni


def print_hardware_capability() -> None:
    """Print the detected CPU and what deepsparse_lite can do on it."""
    arch = cpu_architecture()
    quantized = "TRUE" if (cpu_vnni_compatible() or cpu_neon_compatible() or cpu_sve_compatible()) \
        else ("TRUE (emulated)" if cpu_quantization_compatible() else "FALSE")
    fp32 = cpu_avx2_compatible() or cpu_neon_compatible() or cpu_sve_compatible()
    message = (
        f"{arch.vendor} CPU detected with {arch.num_available_physical_cores} cores. "
        f"({arch.available_sockets} sockets with {arch.available_cores_per_socket} cores each)\n"
        f"deepsparse_lite FP32 model performance supported: {fp32}.\n"
        f"deepsparse_lite INT8 (quantized) model performance supported: {quantized}.\n\n"
    )
    if arch.isa == "generic":
        message += ("No supported vector instruction set detected (or NM_ARCH/DSL_ISA=generic): "
                    "the portable C kernels will be used, which are much slower.\n\n")
    elif cpu_avx2_compatible() and not cpu_avx512_compatible():
        message += ("AVX2 instruction set detected. Performance speedups are available, "
                    "but inference time will be slower compared with an AVX-512 system.\n\n")
    if cpu_quantization_compatible() and not cpu_vnni_compatible() and arch.isa in ("avx2", "avx512"):
        message += ("Non VNNI system detected. INT8 (quantized) models run with emulated "
                    "dot products, slower than on a VNNI system.\n\n")
    message += f"Additional CPU info: {dict(arch)}"
    print(message)


def check_hardware() -> None:
    """``deepsparse.check_hardware`` equivalent (``python -m deepsparse_lite.cpu``)."""
    print_hardware_capability()


if __name__ == "__main__":
    check_hardware()
