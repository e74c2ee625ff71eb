"""Arena memory planning: every intermediate tensor gets a byte offset in one arena.

A tensor lives from the first to the last step that touches it (or any view of it);
workspaces live for the one step that uses them. Offsets are assigned greedily, largest
tensor first, at the lowest address that overlaps no tensor whose lifetime intersects
(the "greedy by size" planner of TFLite / TVM). The front of the arena holds the runner's
pointer table. Inputs and outputs live outside the arena, so no step ever overwrites them.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from deepsparse_lite.plan import ALIGN, PlanBuilder, Where


def _align(n: int) -> int:
    return (int(n) + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(b: PlanBuilder) -> Dict[int, Tuple[int, int]]:
    """storage tensor id -> (first step, last step) for arena storage used by any step."""
    life: Dict[int, List[int]] = {}
    for s, info in enumerate(b.step_info):
        for tid in info.tensors:
            root = b.tensors[tid].storage
            if root.where != Where.ARENA:
                continue
            span = life.setdefault(root.id, [s, s])
            span[0] = min(span[0], s)
            span[1] = max(span[1], s)
    return {k: (v[0], v[1]) for k, v in life.items()}


def plan_memory(b: PlanBuilder, table_bytes: int) -> int:
    """Assign ``offset`` to every arena storage tensor; returns the arena size in bytes."""
    life = lifetimes(b)
    items = sorted(life.items(), key=lambda kv: (-b.tensors[kv[0]].nbytes, kv[1][0]))
    placed: List[Tuple[int, int, int, int]] = []  # (offset, end, first, last)
    peak = table_bytes
    for tid, (first, last) in items:
        size = _align(max(b.tensors[tid].nbytes, 1))
        # candidate offsets: the table end and the end of every live-overlapping block
        busy = sorted((o, e) for (o, e, f, l) in placed if not (l < first or f > last))
        offset = table_bytes
        for o, e in busy:
            if offset + size <= o:
                break
            offset = max(offset, e)
        b.tensors[tid].offset = offset
        placed.append((offset, offset + size, first, last))
        peak = max(peak, offset + size)
    return _align(peak)


def live_bounds(b: PlanBuilder) -> Dict[str, int]:
    """Lower bounds of any arena for this plan, per step over the arena tensors live at it
    (activations and workspaces): the largest sum of all of them (no placement does
    better) and the largest sum of the two biggest (the bound issue 10 states the plan
    against: an operator's input and output). Bytes, each tensor aligned as placed."""
    life = lifetimes(b)
    n = len(b.step_info)
    live: List[List[int]] = [[] for _ in range(n)]
    for tid, (first, last) in life.items():
        size = _align(max(b.tensors[tid].nbytes, 1))
        for s in range(first, last + 1):
            live[s].append(size)
    total = max((sum(v) for v in live), default=0)
    pair = max((sum(sorted(v)[-2:]) for v in live), default=0)
    return {"live_peak_bytes": int(total), "largest_pair_bytes": int(pair)}


def tensor_table(b: PlanBuilder) -> np.ndarray:
    table = np.zeros((len(b.tensors), 3), dtype=np.int64)
    for t in b.tensors:
        root = t.storage
        table[t.id, 0] = int(root.where)
        if root.where == Where.ARENA:
            table[t.id, 1] = max(root.offset, 0)
        else:
            table[t.id, 1] = root.index
        table[t.id, 2] = t.total_offset
    return table
