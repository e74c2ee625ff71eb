"""The compiler: ONNX file -> graph IR -> passes -> lowered steps -> Plan.

``compile_onnx`` loads the model (never writing the user's file; opset 1-6 models are
upgraded in memory, see ``opsets.py``), gives every input a static shape (``batch_size`` /
``input_shapes`` overrides are applied in memory), folds constants and infers every shape,
runs the fusion passes, lowers each node through its OpDef (packing weights once) and plans
the arena. ``SpecializedModel`` (``specialize.py``) wraps it for models whose parameters
(axes, pads, target shapes, ...) arrive as graph inputs or whose dims are symbolic: one plan
per parameter key, compiled on first use and cached. ``execute`` runs a plan once; engines
keep their own arenas and call the runner directly.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from deepsparse_lite.compiler.graph import (ModelLoadError, ShapeOverrideError,
                                            build_graph, load_model)
from deepsparse_lite.compiler.infer import TensorSizeError, fold_and_infer, prune
from deepsparse_lite.config import max_tensor_bytes, precision_mode, sparse_mode
from deepsparse_lite.compiler.lower import lower_graph
from deepsparse_lite.compiler.passes import run_passes
from deepsparse_lite.compiler.specialize import SpecializedModel
from deepsparse_lite.ops.base import UnsupportedModelError
from deepsparse_lite.plan import ERROR_MESSAGES, Err, Plan

__all__ = ["compile_onnx", "compile_proto", "execute", "describe_plan", "new_arena", "PlanExecutionError", "ModelLoadError",
           "ShapeOverrideError", "UnsupportedModelError", "SpecializedModel"]


class PlanExecutionError(RuntimeError):
    """A kernel refused its inputs at run time (for example a Gather index out of range)."""


def compile_onnx(model, batch_size: Optional[int] = None, input_shapes=None, max_threads: int = 1,
                 isa: Optional[int] = None, fuse: bool = True, sparse: Optional[str] = None,
                 precision: Optional[str] = None) -> Plan:
    """One static plan for ``model`` (a path, bytes or ModelProto). Every input must get a
    static shape and every parameter (axes, pads, target shapes, ...) must be a constant;
    :class:`SpecializedModel` compiles the others, one plan per parameter value.
    ``sparse``: ``auto`` / ``sparse`` / ``dense`` (default ``$DSL_SPARSE`` or auto): how
    pruned constant weights choose sparse kernels (ops/sparse.py). ``precision``: ``fp32`` /
    ``bf16`` (default ``$DSL_PRECISION`` or fp32): bf16 runs constant-weight GEMMs and
    convolutions on bfloat16 operands with fp32 accumulation."""
    return compile_proto(load_model(model), batch_size=batch_size, input_shapes=input_shapes,
                         max_threads=max_threads, isa=isa, fuse=fuse, sparse=sparse,
                         precision=precision)


def compile_proto(proto, batch_size: Optional[int] = None, input_shapes=None, max_threads: int = 1,
                  isa: Optional[int] = None, fuse: bool = True, sparse: Optional[str] = None,
                  precision: Optional[str] = None, **build_kw) -> Plan:
    """Compile a loaded (upgraded) ModelProto; ``build_kw`` goes to ``build_graph``
    (``shapes``, ``bind``, ``batch_exempt``: how value-specialised plans are made)."""
    import deepsparse_lite.ops  # noqa: F401  (registers every op)
    from deepsparse_lite import kernels

    # A plan of any level runs under any CPU cap (the kernels fall back to a form the CPU
    # has, down to portable C); by default it is compiled for the cap in force now.
    level = kernels.isa_level() if isa is None else int(isa)
    if not 0 <= level <= 2:
        raise ValueError(f"isa level must be 0 (generic), 1 (avx2) or 2 (avx512), got {isa}")
    graph = build_graph(proto, batch_size=batch_size, input_shapes=input_shapes, **build_kw)
    node_count = len(graph.nodes)
    fold_and_infer(graph)
    prune(graph)
    try:
        run_passes(graph, fuse=fuse, fuse_dw=precision_mode(precision) == "fp32")
    except (UnsupportedModelError, MemoryError):
        raise
    except Exception as exc:  # a pass bug on an odd graph: a clean refusal, the cause kept
        raise UnsupportedModelError(f"graph passes failed: {type(exc).__name__}: {exc}") from exc
    prune(graph)
    plan = lower_graph(graph, isa=level, max_threads=max_threads, node_count=node_count,
                       sparse=sparse_mode(sparse), precision=precision_mode(precision))
    limit = max_tensor_bytes()
    if plan.arena_bytes > limit:
        raise TensorSizeError(f"the plan needs an arena of {plan.arena_bytes / 2 ** 30:.3g} GiB, more than "
                              f"the {limit / 2 ** 30:.3g} GiB allowed (DSL_MAX_TENSOR_BYTES)")
    return plan


def new_arena(plan: Plan) -> np.ndarray:
    """A 64-byte-aligned byte buffer big enough for ``plan`` (one per stream and model)."""
    n = plan.arena_bytes
    buf = np.empty(n + 64, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64
    return buf[start:start + n]


def allocate_outputs(plan: Plan) -> List[np.ndarray]:
    return [np.empty(o.shape, dtype=o.dtype) for o in plan.outputs]


def run(plan: Plan, inputs: List[np.ndarray], outputs: List[np.ndarray], arena: np.ndarray,
        num_threads: int, profile: Optional[np.ndarray] = None) -> None:
    from deepsparse_lite.kernels import runner

    if arena.nbytes < plan.arena_bytes:  # the runner only checks the pointer table's bytes
        raise ValueError(f"arena of {arena.nbytes} bytes is too small for this plan ({plan.arena_bytes})")

    rc, failed = runner.run_plan(plan.steps, plan.tensor_table, plan.const_ptrs, inputs, plan.input_nbytes,
                                 outputs, arena, plan.table_bytes, int(num_threads), profile)
    if rc != 0:
        _raise_plan_error(plan, rc, failed)


def _raise_plan_error(plan: Plan, rc: int, failed: int) -> None:
    """PlanExecutionError naming the node whose step returned error code ``rc``."""
    info = plan.step_info[failed] if 0 <= failed < len(plan.step_info) else None
    where = f" in node '{info.node}'" if info else ""
    msg = ERROR_MESSAGES.get(Err(rc) if rc in Err._value2member_map_ else rc, f"error code {rc}")
    raise PlanExecutionError(f"inference failed{where}: {msg}")


def profile_plan(plan: Plan, inputs: List[np.ndarray], num_threads: int = 1, iterations: int = 10,
                 warmup: int = 2) -> List[dict]:
    """Per-step mean wall time (ms) over ``iterations`` runs, with the node each step
    comes from: what model_debug_analysis-style reports are built on."""
    inputs = [np.ascontiguousarray(x, dtype=io.dtype) for x, io in zip(inputs, plan.inputs)]
    outputs, arena = allocate_outputs(plan), new_arena(plan)
    for _ in range(warmup):
        run(plan, inputs, outputs, arena, num_threads)
    prof = np.zeros(max(plan.num_steps, 1), dtype=np.float64)
    for _ in range(iterations):
        run(plan, inputs, outputs, arena, num_threads, prof)
    return [{"step": k, "op": int(plan.steps[k]["op"]), "node": plan.step_info[k].node,
             "ms": prof[k] / iterations / 1e6} for k in range(plan.num_steps)]


def execute(plan: Plan, inputs: List[np.ndarray], num_threads: int = 1) -> List[np.ndarray]:
    """Run ``plan`` once on ``inputs`` (C-contiguous arrays of the planned dtypes/shapes)."""
    inputs = [np.ascontiguousarray(x, dtype=io.dtype) for x, io in zip(inputs, plan.inputs)]
    outputs = allocate_outputs(plan)
    run(plan, inputs, outputs, new_arena(plan), num_threads)
    return outputs


def describe_plan(plan: Plan) -> List[dict]:
    """One row per step: its node, kernel name (csrc/dsl_params.h's op names), and for
    steps on a constant weight (dense GEMM / Conv and the sparse family) whether it runs
    sparse, the weight's sparsity and why that kernel was chosen (ops/sparse.py)."""
    from deepsparse_lite.kernels import abi

    names = {v: k for k, v in abi.code_tables()["op"].items()}
    rows = []
    for k, info in enumerate(plan.step_info):
        op = int(plan.steps[k]["op"])
        extra = dict(info.info)
        extra.pop("path", None)
        rows.append({"step": k, "node": info.node, "kernel": names.get(op, str(op)),
                     "sparse": op // 100 == 6, "sparsity": extra.pop("sparsity", None), **extra})
    return rows


def format_plan(plan: Plan) -> str:
    """describe_plan as a text table (node, kernel, sparse, sparsity, why)."""
    lines = [f"{'step':>4}  {'node':<40} {'kernel':<14} {'sparse':<6} {'sparsity':>8}  why"]
    for r in describe_plan(plan):
        sp = "" if r["sparsity"] is None else f"{r['sparsity']:.3f}"
        why = r.get("why", "")
        if "dense_ms" in r:
            why += f" (dense {r['dense_ms']:.3f} ms, sparse {r['sparse_ms']:.3f} ms)"
        lines.append(f"{r['step']:>4}  {r['node'][:40]:<40} {r['kernel']:<14} "
                     f"{'yes' if r['sparse'] else '':<6} {sp:>8}  {why}")
    return "\n".join(lines)
