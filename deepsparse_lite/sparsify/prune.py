"""Unstructured magnitude pruning of the constant weights of Conv, Gemm and MatMul.

Why these choices:

- **Exact sparsity.** The k = round(sparsity * n) smallest-magnitude weights are zeroed
  (``argpartition``, so ties cannot make it over- or undershoot): per layer, every layer holds
  exactly its share; globally, the pruned layers together hold exactly the share of all their
  weights (larger layers with smaller weights give up more, as in SparseML's global GMP).
  Weights already zero count toward the target and are never revived.
- **What is pruned.** Conv weights (groups of 1; depthwise and grouped convs are tiny and
  SparseZoo keeps them dense, ``prune_grouped=True`` overrides), Gemm's B and MatMul's constant
  operand of rank >= 2. ``skip_first_conv`` and ``skip_classifier`` leave the first Conv and the
  last weighted node (in graph order) dense, as pruned SparseZoo models often do; ``skip``
  takes node or weight names (``fnmatch`` patterns).
- **Blocks.** ``block=4`` keeps or zeroes runs of 4 weights along the reduction axis (the
  sparse INT8 kernels' VNNI groups); a layer whose reduction size is not a multiple of the
  block is left dense and reported so.
- ``rescale=True`` multiplies each pruned layer's survivors so its L2 norm is kept: without
  fine-tuning that keeps activations of deep networks from shrinking layer after layer (the
  sample models use it: their weights are synthetic); leave it off for trained weights.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence

import numpy as np
import onnx

from deepsparse_lite.sparsify._model import Constants, ModelLike, attr, load, set_metadata

PRUNABLE_OPS = ("Conv", "Gemm", "MatMul")


@dataclass
class LayerSparsity:
    """One weight: where it is used, its size and its sparsity before and after."""
    node: str
    op_type: str
    weight: str
    shape: tuple
    params: int
    sparsity_before: float
    sparsity_after: float
    skipped: str = ""            # why the weight was left as it was ("" when pruned)

    @property
    def zeros(self) -> int:
        return int(round(self.sparsity_after * self.params))


@dataclass
class SparsityReport:
    """Per-layer sparsity of every prunable weight, and the totals."""
    layers: List[LayerSparsity] = field(default_factory=list)
    target: float = 0.0
    mode: str = "layer"

    def _total(self, layers) -> float:
        n = sum(l.params for l in layers)
        return sum(l.zeros for l in layers) / n if n else 0.0

    @property
    def pruned_sparsity(self) -> float:
        """Zeros / weights over the layers that were pruned."""
        return self._total([l for l in self.layers if not l.skipped])

    @property
    def overall_sparsity(self) -> float:
        """Zeros / weights over every prunable weight, skipped ones included."""
        return self._total(self.layers)

    def table(self) -> str:
        w = max([len(l.node) for l in self.layers] + [4])
        rows = [f"{'node':<{w}}  {'op':<6} {'shape':<20} {'params':>10} {'before':>7} "
                f"{'after':>7}  note"]
        for l in self.layers:
            rows.append(f"{l.node:<{w}}  {l.op_type:<6} {str(list(l.shape)):<20} "
                        f"{l.params:>10} {l.sparsity_before:>7.2%} {l.sparsity_after:>7.2%}  "
                        f"{l.skipped}")
        rows.append(f"pruned layers: {self.pruned_sparsity:.4%} sparse "
                    f"(target {self.target:.2%}, {self.mode}); all prunable weights: "
                    f"{self.overall_sparsity:.4%}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


@dataclass
class _Weight:
    node: onnx.NodeProto
    name: str
    in_axis: int                 # the reduction (input-channel / K) axis


def check_sparsity(sparsity: float) -> float:
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return s


def find_weights(model: onnx.ModelProto, consts: Constants, prune_grouped: bool = False):
    """(weight, skip reason) for every constant weight of Conv/Gemm/MatMul, in graph order; a
    weight shared by several nodes appears once, under its first user."""
    seen, out = set(), []
    for n in model.graph.node:
        if n.op_type not in PRUNABLE_OPS:
            continue
        w, reason = None, ""
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in consts:
            arr = consts.get(n.input[1])
            w = _Weight(n, n.input[1], 1)
            if attr(n, "group", 1) != 1 and not prune_grouped:
                reason = "grouped/depthwise conv"
        elif n.op_type == "Gemm" and len(n.input) > 1 and n.input[1] in consts:
            w = _Weight(n, n.input[1], 1 if attr(n, "transB", 0) else 0)
        elif n.op_type == "MatMul":
            for idx, ax in ((1, -2), (0, -1)):
                if n.input[idx] in consts and consts.get(n.input[idx]).ndim >= 2:
                    w = _Weight(n, n.input[idx], ax)
                    break
        if w is None or w.name in seen:
            continue
        arr = consts.get(w.name)
        if arr.dtype != np.float32 and arr.dtype != np.float16 and arr.dtype != np.float64:
            continue
        seen.add(w.name)
        out.append((w, reason))
    return out


def _matches(patterns: Sequence[str], *names: str) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def _scores(arr: np.ndarray, in_axis: int, block: int) -> Optional[np.ndarray]:
    """|w| per block of ``block`` weights along ``in_axis`` (flat), or None if it does not tile."""
    if block == 1:
        return np.abs(arr).reshape(-1)
    if arr.shape[in_axis] % block:
        return None
    v = np.moveaxis(np.abs(arr), in_axis, -1)
    return v.reshape(-1, block).sum(axis=1)


def _apply(arr: np.ndarray, in_axis: int, block: int, drop: np.ndarray,
           rescale: bool) -> np.ndarray:
    v = np.array(np.moveaxis(arr, in_axis, -1) if block > 1 else arr)
    shape = v.shape
    flat = v.reshape(-1, block)
    energy = float(np.square(flat, dtype=np.float64).sum()) if rescale else 0.0
    flat[drop] = 0
    if rescale:
        kept = float(np.square(flat, dtype=np.float64).sum())
        if kept > 0.0:
            flat *= flat.dtype.type(np.sqrt(energy / kept))
    v = flat.reshape(shape)
    return np.ascontiguousarray(np.moveaxis(v, -1, in_axis) if block > 1 else v)


def prune_model(model: ModelLike, sparsity: float, mode: str = "layer",
                skip_first_conv: bool = False, skip_classifier: bool = False,
                skip: Iterable[str] = (), block: int = 1, prune_grouped: bool = False,
                rescale: bool = False):
    """Magnitude-prune ``model`` (a path or ModelProto, never modified) to ``sparsity``.

    ``mode`` is ``"layer"`` (every pruned weight exactly at ``sparsity``) or ``"global"`` (one
    magnitude threshold over all pruned weights, exact in total). Returns ``(pruned
    ModelProto, SparsityReport)``; the report lists every prunable weight, pruned or skipped.

    >>> pruned, report = prune_model("model.onnx", 0.9, skip_first_conv=True)  # doctest: +SKIP
    >>> print(report)                                                          # doctest: +SKIP
    """
    sparsity = check_sparsity(sparsity)
    if mode not in ("layer", "global"):
        raise ValueError(f"mode must be 'layer' or 'global', got {mode!r}")
    if int(block) != block or block < 1:
        raise ValueError(f"block must be an integer >= 1, got {block!r}")
    block = int(block)
    skip = [skip] if isinstance(skip, str) else list(skip)
    proto = load(model)
    consts = Constants(proto)
    weights = find_weights(proto, consts, prune_grouped)
    convs = [w for w, _ in weights if w.node.op_type == "Conv"]
    first_conv = convs[0].name if convs else None
    classifier = weights[-1][0].name if weights else None

    report = SparsityReport(target=sparsity, mode=mode)
    todo = []                    # (weight, arr, scores, LayerSparsity)
    for w, reason in weights:
        arr = consts.get(w.name)
        if not reason:
            if skip_first_conv and w.name == first_conv:
                reason = "first conv"
            elif skip_classifier and w.name == classifier:
                reason = "classifier"
            elif _matches(skip, w.node.name, w.name):
                reason = "skipped by name"
        scores = None if reason else _scores(arr, w.in_axis, block)
        if not reason and scores is None:
            reason = f"reduction dim {arr.shape[w.in_axis]} not a multiple of block {block}"
        before = float(np.count_nonzero(arr == 0)) / arr.size if arr.size else 0.0
        ls = LayerSparsity(w.node.name or w.node.output[0], w.node.op_type, w.name,
                           tuple(arr.shape), int(arr.size), before, before, reason)
        report.layers.append(ls)
        if not reason:
            todo.append((w, arr, scores, ls))

    if sparsity > 0.0 and todo:
        if mode == "layer":
            drops = [np.argpartition(s, k - 1)[:k] if (k := int(round(sparsity * s.size))) else
                     np.zeros(0, np.int64) for _, _, s, _ in todo]
        else:
            drops = _global_drops([s for _, _, s, _ in todo], sparsity)
        for (w, arr, _, ls), drop in zip(todo, drops):
            new = _apply(arr, w.in_axis, block, drop, rescale)
            consts.set(w.name, new)
            ls.sparsity_after = float(np.count_nonzero(new == 0)) / new.size
    set_metadata(proto, **{"sparsify.sparsity": f"{sparsity:g}", "sparsify.sparsity_mode": mode,
                           "sparsify.sparsity_block": str(block)})
    return proto, report


def _global_drops(scores: List[np.ndarray], sparsity: float) -> List[np.ndarray]:
    """Indices to zero in each layer so that exactly round(sparsity * total) blocks go."""
    sizes = [s.size for s in scores]
    k = int(round(sparsity * sum(sizes)))
    if k == 0:
        return [np.zeros(0, np.int64) for _ in scores]
    allv = np.concatenate([s.astype(np.float32, copy=False) for s in scores])
    chosen = np.argpartition(allv, k - 1)[:k]
    del allv
    chosen.sort()
    bounds = np.cumsum([0] + sizes)
    return [chosen[np.searchsorted(chosen, lo):np.searchsorted(chosen, hi)] - lo
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def measure_sparsity(model: ModelLike, prune_grouped: bool = False) -> SparsityReport:
    """The sparsity of every prunable weight of ``model``, as :func:`prune_model` reports it."""
    proto = load(model)
    consts = Constants(proto)
    report = SparsityReport()
    for w, reason in find_weights(proto, consts, prune_grouped):
        arr = consts.get(w.name)
        s = float(np.count_nonzero(arr == 0)) / arr.size if arr.size else 0.0
        report.layers.append(LayerSparsity(w.node.name or w.node.output[0], w.node.op_type,
                                           w.name, tuple(arr.shape), int(arr.size), s, s, reason))
    return report
