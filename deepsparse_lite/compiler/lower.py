"""Lower a folded, fused graph to a Plan through the ops' lowerings."""
from __future__ import annotations

import numpy as np

from deepsparse_lite.compiler.graph import Graph
from deepsparse_lite.compiler.memory import _align, live_bounds, plan_memory, tensor_table
from deepsparse_lite.compiler.sparsity import make_timer
from deepsparse_lite.ops.base import UnsupportedModelError, emit_contiguous_copy, get_op
from deepsparse_lite.plan import STEP_DTYPE, IOInfo, Plan, PlanBuilder, Where


#: most steps one node may lower to. Real models need a handful (a Concat one per input);
#: a hostile parameter value (e.g. a reflect Pad of 2**20 on an axis of 2 becomes a copy per
#: mirrored chunk) would otherwise make compile time unbounded (~30 us per step).
MAX_STEPS_PER_NODE = 4096


class _BoundedBuilder(PlanBuilder):
    """A PlanBuilder that refuses a node lowering to more than MAX_STEPS_PER_NODE steps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._node_steps = 0
        self._node = None

    def emit(self, *args, **kwargs):
        if self.current_node != self._node:
            self._node, self._node_steps = self.current_node, 0
        self._node_steps += 1
        if self._node_steps > MAX_STEPS_PER_NODE:
            raise UnsupportedModelError(
                f"node '{self.current_node}' lowers to more than {MAX_STEPS_PER_NODE} steps "
                f"(its parameters ask for too many separate copies)")
        return super().emit(*args, **kwargs)


def lower_graph(graph: Graph, isa: int, max_threads: int, node_count: int = 0,
                sparse: str = "auto", precision: str = "fp32") -> Plan:
    b = _BoundedBuilder(isa=isa, max_threads=max_threads, graph_values=graph.values)
    b.sparse_mode = sparse
    b.precision = precision
    b.sparse_timer = make_timer(isa, max_threads, precision) if sparse == "auto" else None
    for k, name in enumerate(graph.outputs):
        b.graph_outputs.setdefault(name, k)
    for k, name in enumerate(graph.inputs):
        v = graph.values[name]
        b.input(k, name, v.shape, v.dtype)
    for node in graph.nodes:
        op = get_op(node.op_type, node.domain)
        if op is None:
            raise UnsupportedModelError(f"unsupported op type {node.op_type} in node '{node.name}'")
        b.current_node = node.name
        ins = [graph.values[i] if i else None for i in node.inputs]
        outs = [graph.values[o] if o else None for o in node.outputs]
        try:
            op.lower(node, b, ins, outs)
        except (UnsupportedModelError, MemoryError):
            raise
        except NotImplementedError as exc:
            raise UnsupportedModelError(f"{node.describe()}: {exc}") from None
        except Exception as exc:  # a lowering bug: still a clean refusal naming the node
            raise UnsupportedModelError(
                f"lowering failed for {node.describe()}: {type(exc).__name__}: {exc}") from exc
    b.current_node = "<outputs>"
    out_infos = []
    for k, name in enumerate(graph.outputs):
        v = graph.values[name]
        src = b.value(name)
        if not (src.where == Where.OUTPUT and src.index == k and src.root is None):
            dst = b._new(v.shape, v.dtype, Where.OUTPUT, k, name)
            emit_contiguous_copy(b, src, dst)
        out_infos.append(IOInfo(name, tuple(v.shape), np.dtype(v.dtype)))

    nio = len(graph.inputs) + len(graph.outputs)
    table_bytes = _align((len(b.tensors) + nio) * 8)
    arena = plan_memory(b, table_bytes)
    bounds = live_bounds(b)
    steps = np.array(b.steps, dtype=STEP_DTYPE) if b.steps else np.zeros(0, dtype=STEP_DTYPE)
    const_ptrs = np.array([c.ctypes.data for c in b.constants], dtype=np.int64)
    ops_hist = {}
    sparse_steps = 0
    for info in b.step_info:
        ops_hist[info.op] = ops_hist.get(info.op, 0) + 1
        sparse_steps += info.info.get("path") == "sparse"
    return Plan(
        steps=np.ascontiguousarray(steps),
        tensor_table=tensor_table(b),
        constants=b.constants,
        const_ptrs=const_ptrs,
        arena_bytes=arena,
        table_bytes=table_bytes,
        inputs=[IOInfo(n, graph.values[n].shape, graph.values[n].dtype) for n in graph.inputs],
        outputs=out_infos,
        step_info=b.step_info,
        node_count=node_count,
        stats={"isa": isa, "max_threads": max_threads, "steps_by_op": ops_hist,
               "lowered_nodes": len(graph.nodes), "sparse_mode": sparse, "precision": precision,
               "sparse_steps": sparse_steps, "arena_bytes": arena, **bounds},
    )
