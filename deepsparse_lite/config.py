"""Environment flags, read in one place.

- ``NM_BIND_THREADS_TO_CORES`` / ``NM_BIND_THREADS_TO_SOCKETS`` (DeepSparse's names):
  how a stream's OpenMP team is placed. ``core`` (the default here, and the default of
  DeepSparse's benchmark CLI and server): each team thread pinned to one core of its
  stream. ``socket`` (CORES=0, SOCKETS=1): threads may run anywhere on their stream's NUMA
  nodes. ``none`` (both 0): threads may run anywhere on their stream's cores. A stream's
  worker thread is always restricted to its cores; a plain DeepSparse Engine pins nothing
  unless asked, we pin by default because streams are defined by their cores.
- ``NM_ARCH`` / ``DSL_ISA``: lower the kernel ISA (read here for cpu.py, and by the C
  dispatch in csrc/dsl_cpu.h, which cannot call Python; DSL_ISA wins in both).
- ``DSL_CACHE_DIR``: root of the local caches (sample models are built under models/).
- ``DSL_SPIN_US``, ``DSL_PIN_CALLER``, ``DSL_COMBINE``: how streams wait, place the
  threads that run requests, and share leases (spin_us, sticky_callers, combine_max).
- ``DSL_PLAN_CACHE_SIZE``: value-specialised plans an Engine keeps (default 8; see
  compiler/specialize.py), read when an engine is compiled.
- ``DSL_SPARSE``: ``auto`` (default: per layer, measured), ``sparse`` (every constant
  GEMM / groups-1 conv weight as CSR) or ``dense``: how plans run pruned weights
  (ops/sparse.py); ``compile_onnx(..., sparse=...)`` overrides it.
- ``DSL_WINOGRAD``: ``auto`` (default: eligible 3x3 convs timed against the direct conv),
  ``on`` or ``off`` (ops/conv.py), read when a plan is compiled.
- ``DSL_FUSE_DW``: ``0`` keeps a 1x1 conv and the depthwise conv it feeds as two steps
  (compiler/passes.py fuse_expand_dw), read when a plan is compiled.
- ``DSL_MAX_TENSOR_BYTES``: the largest tensor (or arena) a plan may need; default the
  memory available when the plan is compiled. A model, or a parameter value, asking for more is refused at
  compile time instead of exhausting memory (an OOM kill is a crash).
"""
from __future__ import annotations

import os

BIND_CORE, BIND_SOCKET, BIND_NONE = "core", "socket", "none"


def _flag(name: str):
    v = os.environ.get(name)
    if v is None or v.strip() == "":
        return None
    return v.strip().lower() not in ("0", "false", "no", "off")


def thread_binding() -> str:
    """The team placement policy from NM_BIND_THREADS_TO_CORES / _SOCKETS (read at Context
    creation, as DeepSparse reads them when an engine is created)."""
    cores = _flag("NM_BIND_THREADS_TO_CORES")
    sockets = _flag("NM_BIND_THREADS_TO_SOCKETS")
    if cores is True:
        return BIND_CORE
    if sockets is True:
        return BIND_SOCKET
    if cores is False:
        return BIND_NONE
    return BIND_CORE


#: ISA override variables, highest precedence first (same order as csrc/dsl_cpu.h)
ISA_ENV_VARS = ("DSL_ISA", "NM_ARCH")


def isa_env() -> tuple:
    """(variable, value) for each ISA override variable, in precedence order."""
    return tuple((v, os.environ.get(v)) for v in ISA_ENV_VARS)


def cache_root() -> str:
    """``$DSL_CACHE_DIR`` or ``~/.cache/deepsparse_lite``."""
    return os.environ.get("DSL_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "deepsparse_lite")


DEFAULT_PLAN_CACHE_SIZE = 8


def plan_cache_size() -> int:
    """``$DSL_PLAN_CACHE_SIZE`` (>= 1) or 8: value-specialised plans kept per engine."""
    v = os.environ.get("DSL_PLAN_CACHE_SIZE")
    if v is None or not v.strip():
        return DEFAULT_PLAN_CACHE_SIZE
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"DSL_PLAN_CACHE_SIZE must be an integer >= 1, got {v!r}") from None
    if n < 1:
        raise ValueError(f"DSL_PLAN_CACHE_SIZE must be an integer >= 1, got {v!r}")
    return n


def max_tensor_bytes() -> int:
    """``$DSL_MAX_TENSOR_BYTES``, else the memory available now (``MemAvailable``; the
    physical memory where /proc/meminfo is missing), in bytes."""
    v = os.environ.get("DSL_MAX_TENSOR_BYTES")
    if v is not None and v.strip():
        try:
            return max(int(v), 1)
        except ValueError:
            raise ValueError(f"DSL_MAX_TENSOR_BYTES must be an integer, got {v!r}") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 1 << 40


def spin_us() -> float:
    """``DSL_SPIN_US``: how long an idle stream helper thread (and nothing else) spins,
    waiting for its next chunk, before it sleeps (default 1000 us). A sleeping thread's
    wake-up costs ~30 us on a KVM guest (an inter-processor interrupt); spinning costs the
    core, which belongs to the stream anyway. A Context that oversubscribes its cores, or
    whose threads are not pinned one per core, never spins."""
    v = os.environ.get("DSL_SPIN_US")
    try:
        return max(0.0, float(v)) if v not in (None, "") else 1000.0
    except ValueError:
        return 1000.0


def sticky_callers() -> bool:
    """``DSL_PIN_CALLER`` (default ``sticky``): a request runs on its calling thread, placed
    on the stream's cores. ``sticky`` leaves the thread there between requests (its own
    affinity comes back when the Context closes): placing and restoring a thread costs ~5 us
    a request on a KVM guest. ``call`` restores it after every request."""
    return (os.environ.get("DSL_PIN_CALLER") or "sticky").strip().lower() != "call"


def preempt_ratio() -> int:
    """``DSL_PREEMPT``: a request waiting for a stream is run inside the pause of a running
    request of another engine (between two of its steps) when its engine's runs take at
    most 1/``DSL_PREEMPT`` of the running one's (default 4; 0 turns pausing off)."""
    try:
        v = os.environ.get("DSL_PREEMPT")
        return max(0, int(v)) if v not in (None, "") else 4
    except ValueError:
        return 4


def fair_queueing() -> bool:
    """``DSL_FAIR`` (default on): when requests of several engines wait for a stream, the
    engine that has had the least lease time so far goes first (its oldest request: one
    engine's requests keep their order). ``0``: one FIFO queue in arrival order."""
    return (os.environ.get("DSL_FAIR") or "1").strip().lower() not in ("0", "off", "false", "no")


def nest_share() -> int:
    """``DSL_NEST_SHARE`` (default 3): a request paused for short ones of other engines keeps
    at least ``k / (k + 1)`` of its lease's time (its own steps >= k x the nested runs)."""
    try:
        v = os.environ.get("DSL_NEST_SHARE")
        return max(1, int(v)) if v not in (None, "") else 3
    except ValueError:
        return 3


def combine_max() -> int:
    """``DSL_COMBINE``: how many queued requests the thread finishing one may run on its lease
    before handing the lease to the next waiting caller (default 1)."""
    try:
        return max(0, int(os.environ.get("DSL_COMBINE") or 1))
    except ValueError:
        return 1


def fuse_expand_depthwise() -> bool:
    """DSL_FUSE_DW=0 turns off the fusion of a 1x1 conv into the depthwise conv it feeds
    (compiler/passes.py's fuse_expand_dw: the expanded tensor then goes through memory)."""
    return (os.environ.get("DSL_FUSE_DW") or "1").strip() != "0"


def qdq_rewrite() -> bool:
    """DSL_QDQ=0 turns the QDQ rewrite off (compiler/passes.py's fuse_qdq): QDQ models then
    run in fp32 between DequantizeLinear and QuantizeLinear, as ONNX defines them."""
    return (os.environ.get("DSL_QDQ") or "1").strip() != "0"


SPARSE_MODES = ("auto", "sparse", "dense")


def sparse_mode(override=None) -> str:
    """``override`` or ``$DSL_SPARSE`` (``auto`` when unset): auto / sparse / dense."""
    v = override if override is not None else os.environ.get("DSL_SPARSE")
    v = "auto" if v is None or not str(v).strip() else str(v).strip().lower()
    v = {"on": "sparse", "force": "sparse", "1": "sparse", "off": "dense", "0": "dense"}.get(v, v)
    if v not in SPARSE_MODES:
        raise ValueError(f"sparse mode must be one of {SPARSE_MODES}, got {v!r}")
    return v


PRECISIONS = ("fp32", "bf16")


def precision_mode(override=None) -> str:
    """``override`` or ``$DSL_PRECISION`` (``fp32`` when unset): fp32 / bf16. bf16 rounds
    the operands of constant-weight GEMMs and convolutions to bfloat16 and accumulates in
    fp32 (csrc/bf16_gemm.h); everything else stays fp32."""
    v = override if override is not None else os.environ.get("DSL_PRECISION")
    v = "fp32" if v is None or not str(v).strip() else str(v).strip().lower()
    v = {"f32": "fp32", "float32": "fp32", "bfloat16": "bf16"}.get(v, v)
    if v not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {v!r}")
    return v


WINOGRAD_MODES = ("auto", "on", "off")


def winograd_mode() -> str:
    """``$DSL_WINOGRAD`` (``auto`` when unset): auto / on / off."""
    v = (os.environ.get("DSL_WINOGRAD") or "").strip().lower() or "auto"
    v = {"1": "on", "true": "on", "0": "off", "false": "off"}.get(v, v)
    if v not in WINOGRAD_MODES:
        raise ValueError(f"DSL_WINOGRAD must be one of {WINOGRAD_MODES}, got {v!r}")
    return v
