"""One helper to check any op against the ONNX reference implementation.

``check_op`` builds a one-node model, compiles it with deepsparse_lite for each requested
thread count and each ISA level this CPU supports, runs it, and compares every output with
``onnx.reference.ReferenceEvaluator``. Op tests call it with shapes that are not multiples
of kernel tiles, with broadcasting, and so on (cf. tinygrad's helper_test_op).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from deepsparse_lite import compiler, kernels

NP_TO_ONNX = {
    np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.float64): onnx.TensorProto.DOUBLE,
    np.dtype(np.int64): onnx.TensorProto.INT64, np.dtype(np.int32): onnx.TensorProto.INT32,
    np.dtype(np.bool_): onnx.TensorProto.BOOL, np.dtype(np.uint8): onnx.TensorProto.UINT8,
    np.dtype(np.int8): onnx.TensorProto.INT8, np.dtype(np.float16): onnx.TensorProto.FLOAT16,
    np.dtype(np.int16): onnx.TensorProto.INT16, np.dtype(np.uint16): onnx.TensorProto.UINT16,
    np.dtype(np.uint32): onnx.TensorProto.UINT32, np.dtype(np.uint64): onnx.TensorProto.UINT64,
}
try:  # bfloat16 / float8 (ml_dtypes, as onnx.numpy_helper gives them)
    import ml_dtypes

    NP_TO_ONNX.update({
        np.dtype(ml_dtypes.bfloat16): onnx.TensorProto.BFLOAT16,
        np.dtype(ml_dtypes.float8_e4m3fn): onnx.TensorProto.FLOAT8E4M3FN,
        np.dtype(ml_dtypes.float8_e4m3fnuz): onnx.TensorProto.FLOAT8E4M3FNUZ,
        np.dtype(ml_dtypes.float8_e5m2): onnx.TensorProto.FLOAT8E5M2,
        np.dtype(ml_dtypes.float8_e5m2fnuz): onnx.TensorProto.FLOAT8E5M2FNUZ,
    })
except ImportError:  # pragma: no cover
    pass


def available_isas() -> list:
    """Plan levels to test: all of them, on every machine. A level above the CPU's runs in
    the forms the CPU has (the AVX-512 form on AVX2 halves, or portable C), so the 8x32
    panels and 16-lane code of AVX-512 plans are exercised everywhere."""
    return [0, 1, 2]


def isa_combos() -> list:
    """(plan level, CPU cap) pairs that together run every kernel form this machine can:
    for each level, every cap up to the top one that changes some kernel's form."""
    from deepsparse_lite.kernels import runner

    out = []
    for level in (0, 1, 2):
        seen = set()
        for cap in range(kernels.top_isa_level(), -1, -1):
            forms = runner.kernel_forms(level, cap)
            if forms not in seen:
                seen.add(forms)
                out.append((level, cap))
    return out


def make_single_node_model(op_type: str, inputs: Dict[str, np.ndarray], attrs: Optional[dict] = None, *,
                           consts: Optional[Dict[str, np.ndarray]] = None, n_outputs: int = 1,
                           opset: int = 17, input_order: Optional[Sequence[str]] = None,
                           domain: str = "") -> onnx.ModelProto:
    consts = consts or {}
    order = list(input_order) if input_order is not None else list(inputs) + list(consts)
    outs = [f"out{k}" for k in range(n_outputs)]
    node = helper.make_node(op_type, order, outs, domain=domain or None, **(attrs or {}))
    g_inputs = [helper.make_tensor_value_info(n, NP_TO_ONNX[np.asarray(a).dtype], np.asarray(a).shape)
                for n, a in inputs.items()]
    g_outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in consts.items()]
    graph = helper.make_graph([node], f"test_{op_type}", g_inputs, g_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9)
    return model


def reference_outputs(model: onnx.ModelProto, inputs: Dict[str, np.ndarray]) -> list:
    return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, inputs)]


def run_model(model, inputs: Dict[str, np.ndarray], threads: int = 1, isa: Optional[int] = None,
              cap: Optional[int] = None, **compile_kw) -> list:
    """Compile for plan level ``isa`` and run with the CPU cap lowered to ``cap``."""
    plan = compiler.compile_onnx(model, max_threads=max(threads, 1), isa=isa, **compile_kw)
    with kernels.isa_cap(kernels.top_isa_level() if cap is None else cap):
        return compiler.execute(plan, [inputs[i.name] for i in plan.inputs], num_threads=threads)


def assert_outputs_close(got, want, rtol, atol, what=""):
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        assert g.shape == w.shape, f"{what} output {k}: shape {g.shape} != expected {w.shape}"
        assert g.dtype == w.dtype, f"{what} output {k}: dtype {g.dtype} != expected {w.dtype}"
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what} output {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what} output {k}")


def check_op(op_type: str, inputs: Dict[str, np.ndarray], attrs: Optional[dict] = None, *,
             consts: Optional[Dict[str, np.ndarray]] = None, n_outputs: int = 1, opset: int = 17,
             threads: Iterable[int] = (1, 2), isas: Optional[Iterable[int]] = None,
             rtol: float = 1e-4, atol: float = 1e-5, input_order: Optional[Sequence[str]] = None,
             domain: str = "", expected: Optional[list] = None) -> list:
    """Compile and run a one-node model; compare with the reference. Returns our outputs.

    Runs every (plan level, CPU cap) pair of ``isa_combos()`` (restricted to the levels in
    ``isas`` if given), each with 1..N threads."""
    model = make_single_node_model(op_type, inputs, attrs, consts=consts, n_outputs=n_outputs,
                                   opset=opset, input_order=input_order, domain=domain)
    want = expected if expected is not None else reference_outputs(model, inputs)
    got = None
    levels = None if isas is None else set(isas)
    for isa, cap in isa_combos():
        if levels is not None and isa not in levels:
            continue
        for nt in threads:
            got = run_model(model, inputs, threads=nt, isa=isa, cap=cap)
            assert_outputs_close(got, want, rtol, atol,
                                 f"{op_type} (isa={isa}, cap={cap}, threads={nt})")
    return got


class min_work:
    """Lower the per-thread work threshold of kernel families (``set_min_work``) so that
    small test shapes take the threaded path; restores the old thresholds on exit.

        with min_work(1, "reduce", "pool"):
            ...
    """

    def __init__(self, n: int, *families: str):
        import importlib
        self.n = n
        self.mods = [importlib.import_module(f"deepsparse_lite.kernels.{f}") for f in families]
        self.old = []

    def __enter__(self):
        self.old = [m.set_min_work(self.n) for m in self.mods]
        return self

    def __exit__(self, *exc):
        for m, o in zip(self.mods, self.old):
            m.set_min_work(o)
        return False
