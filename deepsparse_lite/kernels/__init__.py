"""Cython + OpenMP kernels and the plan runner.

``runner.run_plan`` executes a compiled plan in one nogil call; each family module
(``data``, ``eltwise``, ``reduce``, ``pool``, ``gemm``) implements its sub-ops as
``cdef ... noexcept nogil`` functions over ``dsl_step`` records (see ``csrc/dsl_plan.h``).
"""
import importlib

FAMILY_MODULES = ("data", "eltwise", "reduce", "pool", "gemm", "_openmp")


def set_isa_level(level: int) -> None:
    """Force the microkernel ISA in every kernel module (0 generic, 1 avx2, 2 avx512);
    it is clamped to what the CPU supports. Used by tests to compare variants."""
    for name in FAMILY_MODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        if hasattr(mod, "set_isa_level"):
            mod.set_isa_level(level)


def isa_level() -> int:
    from . import _openmp
    return _openmp.isa_level()
