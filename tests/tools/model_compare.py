"""Whole-model checks shared by test_sample_models.py and test_exported_models.py.

``ort_run`` is the oracle (onnxruntime, CPU provider); ``engine_run`` compiles the model with
deepsparse_lite and runs it; ``compile_or_skip`` fails (naming every op the engine lacks) when a
model does not compile. Every op these models use is supported, so that is a regression;
``DSL_STRICT_MODELS=0`` turns it back into a skip while developing a new op family.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import onnx
import pytest

STRICT = os.environ.get("DSL_STRICT_MODELS", "1") != "0"


def ort_run(model, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
    import onnxruntime as ort

    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def missing_ops(model) -> Tuple[List[str], bool]:
    """Op types the engine has no OpDef for, and whether that list is taken after the engine's
    own folding and passes (True) or from the raw graph because folding failed (False)."""
    import deepsparse_lite.ops  # noqa: F401  (registers every op)
    from deepsparse_lite.ops.base import get_op

    try:
        from deepsparse_lite.compiler.graph import build_graph, load_model_proto
        from deepsparse_lite.compiler.infer import fold_and_infer, prune
        from deepsparse_lite.compiler.passes import run_passes

        graph = build_graph(load_model_proto(model))
        fold_and_infer(graph)
        prune(graph)
        run_passes(graph)
        prune(graph)
        nodes, folded = [(n.op_type, n.domain) for n in graph.nodes], True
    except Exception:  # folding itself may need a missing op: fall back to the raw graph
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(model)
        nodes, folded = [(n.op_type, n.domain) for n in proto.graph.node], False
    return sorted({t for t, d in nodes if get_op(t, d or "") is None}), folded


def compile_or_skip(model, max_threads: int = 2, **compile_kw):
    """Compile with deepsparse_lite; skip (or fail when strict) if an op is unsupported."""
    from deepsparse_lite import compiler

    try:
        return compiler.compile_onnx(model, max_threads=max_threads, **compile_kw)
    except compiler.UnsupportedModelError as exc:
        missing, folded = missing_ops(model)
        where = "" if folded else " in the unfolded graph"
        reason = (f"engine cannot compile this model yet: {exc}"
                  + (f" (ops without an OpDef{where}: {', '.join(missing)})" if missing else ""))
        if STRICT:
            pytest.fail(reason)
        pytest.skip(reason)


def engine_run(plan, feeds: Dict[str, np.ndarray], threads: int) -> List[np.ndarray]:
    from deepsparse_lite import compiler

    return compiler.execute(plan, [feeds[i.name] for i in plan.inputs], num_threads=threads)


def assert_close(got: Sequence[np.ndarray], want: Sequence[np.ndarray], names: Sequence[str],
                 rtol: float, atol: float, what: str) -> None:
    """Per-output allclose where ``atol`` is relative to the output's largest magnitude, so
    one tolerance fits logits of size ~1 and feature maps of size ~10 alike."""
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for g, w, n in zip(got, want, names):
        w = np.asarray(w)
        assert g.shape == w.shape, f"{what} {n}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{what} {n}: dtype {g.dtype} != {w.dtype}"
        assert np.isfinite(g).all(), f"{what} {n}: non-finite values"
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale, err_msg=f"{what} {n}")
