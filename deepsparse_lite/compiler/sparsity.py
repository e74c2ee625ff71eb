"""Dense or sparse, per layer, by measurement (the ``auto`` mode of ops/sparse.py).

For a layer whose constant weight is sparse enough to be a candidate, the lowering hands
over two emitters (the dense step, the sparse step). Each is built into a one-step plan
of its own, with random inputs of the layer's shapes, and the two are timed interleaved
on the plan's ISA level and thread count (best of a few runs: the machine may be shared).
Timings are cached by (kind, shape key, sparsity in 5% buckets, isa, threads), so a model
repeating a layer shape (BERT's 12 encoders, ResNet's stages) times it once per process.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from deepsparse_lite.compiler.memory import _align, plan_memory, tensor_table
from deepsparse_lite.plan import STEP_DTYPE, IOInfo, Plan, PlanBuilder

#: (kind, key, bucket, isa, threads) -> (dense seconds, sparse seconds)
_TIMINGS: Dict[tuple, Tuple[float, float]] = {}
#: time spent per candidate (seconds) before the best-of is taken
BUDGET_S = 0.02
MAX_ROUNDS = 5


def clear_cache() -> None:
    _TIMINGS.clear()


def cache_size() -> int:
    return len(_TIMINGS)


def _one_step_plan(emit: Callable, inputs: Sequence[tuple], out_shape: tuple, isa: int,
                   threads: int, precision: str = "fp32") -> Plan:
    b = PlanBuilder(isa=isa, max_threads=threads)
    b.sparse_mode = "dense"  # the emitters decide themselves; nothing nested is timed
    b.precision = precision
    ins = [b.input(k, f"in{k}", shp, np.float32) for k, shp in enumerate(inputs)]
    b.graph_outputs["out"] = 0
    y = b.output("out", out_shape, np.float32)
    b.current_node = "timing"
    emit(b, ins, y)
    table_bytes = _align((len(b.tensors) + len(ins) + 1) * 8)
    arena = plan_memory(b, table_bytes)
    return Plan(steps=np.ascontiguousarray(np.array(b.steps, dtype=STEP_DTYPE)),
                tensor_table=tensor_table(b), constants=b.constants,
                const_ptrs=np.array([c.ctypes.data for c in b.constants], dtype=np.int64),
                arena_bytes=arena, table_bytes=table_bytes,
                inputs=[IOInfo(f"in{k}", tuple(s), np.dtype(np.float32)) for k, s in enumerate(inputs)],
                outputs=[IOInfo("out", tuple(out_shape), np.dtype(np.float32))],
                step_info=b.step_info)


def make_timer(isa: int, threads: int, precision: str = "fp32"):
    """The ``PlanBuilder.sparse_timer`` of one compilation (its one-step plans are built
    with the compilation's precision)."""
    def timer(kind: str, key: tuple, sparsity: float, emit_dense: Callable, emit_sparse: Callable,
              inputs: Sequence[tuple], out_shape: tuple) -> Tuple[float, float]:
        ck = (kind, key, int(sparsity * 100) // 5, int(isa), int(threads), precision)
        hit = _TIMINGS.get(ck)
        if hit is None:
            hit = _TIMINGS[ck] = _measure(emit_dense, emit_sparse, inputs, out_shape, isa, threads,
                                          precision)
        return hit
    return timer


def _measure(emit_dense, emit_sparse, inputs, out_shape, isa, threads,
             precision="fp32") -> Tuple[float, float]:
    from deepsparse_lite.compiler import allocate_outputs, new_arena, run

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in inputs]
    runs = []
    for emit in (emit_dense, emit_sparse):
        plan = _one_step_plan(emit, inputs, out_shape, isa, threads, precision)
        outs, arena = allocate_outputs(plan), new_arena(plan)
        run(plan, arrays, outs, arena, threads)  # warm-up (pages, caches, thread team)
        runs.append((plan, outs, arena))
    best = [float("inf"), float("inf")]
    spent = 0.0
    for _ in range(MAX_ROUNDS):
        for k, (plan, outs, arena) in enumerate(runs):
            t0 = time.perf_counter()
            run(plan, arrays, outs, arena, threads)
            dt = time.perf_counter() - t0
            best[k] = min(best[k], dt)
            spent += dt
        if spent > 2 * BUDGET_S:
            break
    return best[0], best[1]
