"""Cython + OpenMP kernels and the plan runner.

``runner.run_plan`` executes a compiled plan in one nogil call; each family module
(``data``, ``eltwise``, ``reduce``, ``pool``, ``gemm``) implements its sub-ops as
``cdef ... noexcept nogil`` functions over ``dsl_step`` records (see ``csrc/dsl_plan.h``).

ISA: a step's *level* (0 generic, 1 avx2, 2 avx512) is fixed when the plan is compiled
(packed layouts depend on it); the *CPU cap* is the highest instruction set kernels may
execute, one value for the whole process, kept by the runner and passed to every kernel.
A plan of any level runs under any cap: the kernel *form* (csrc/dsl_cpu.h) is chosen from
both, down to portable C, so the AVX-512 geometry is exercised on every machine.
"""
from __future__ import annotations

import contextlib

FORMS = ("generic", "avx2", "avx512", "avx512_on_avx2")


def _runner():
    from . import runner
    return runner


def isa_level() -> int:
    """The CPU cap: 0 generic, 1 avx2+fma, 2 avx512 (what compiled plans default to)."""
    return _runner().isa_level()


def top_isa_level() -> int:
    """The highest level this CPU and NM_ARCH / DSL_ISA allow."""
    return _runner().top_isa_level()


def set_isa_level(level: int) -> int:
    """Set the CPU cap for every kernel (clamped to ``top_isa_level()``); returns the old
    cap. Used by tests to run each kernel form."""
    return _runner().set_isa_level(int(level))


@contextlib.contextmanager
def isa_cap(level: int):
    """``with isa_cap(1): ...`` runs the block with the CPU cap lowered to ``level``."""
    old = set_isa_level(level)
    try:
        yield
    finally:
        set_isa_level(old)


def runnable_forms() -> list:
    """Kernel forms (indices into FORMS) this CPU can execute."""
    top = top_isa_level()
    return [f for f, need in ((0, 0), (1, 1), (2, 2), (3, 1)) if top >= need]


def record_variants(on: bool) -> bool:
    return _runner().record_variants(bool(on))


def variant_hits() -> dict:
    return _runner().variant_hits()


def reset_variant_hits() -> None:
    _runner().reset_variant_hits()


class _VariantDelta(dict):
    """The (kernel, form) -> runs of a ``with variants_run() as ran:`` block (filled at exit)."""


@contextlib.contextmanager
def variants_run():
    """Count the kernel variants the block runs, without disturbing the session's counts:

        with kernels.variants_run() as ran:
            compiler.execute(plan, inputs)
        assert ("gemm_tile", "avx512") in ran
    """
    old = record_variants(True)
    before = variant_hits()
    delta = _VariantDelta()
    try:
        yield delta
    finally:
        after = variant_hits()
        record_variants(old)
        delta.update({k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)})


def reachable_variants(cap: int = -1) -> set:
    return _runner().reachable_variants(int(cap))
