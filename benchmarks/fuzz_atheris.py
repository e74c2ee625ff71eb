"""Coverage-guided fuzzing (atheris / libFuzzer) of the ONNX loader and the Engine input checks.

    python benchmarks/fuzz_atheris.py loader -- -max_total_time=30 -seed=1
    python benchmarks/fuzz_atheris.py inputs -- -max_total_time=30 -seed=1

``loader``: the fuzzer's bytes are an ONNX file, seeded with a few small valid models
written at start (libFuzzer mutates them, guided by the coverage of the instrumented
deepsparse_lite Python code); each is compiled with ``compile_onnx`` and, when it compiles
to small inputs, run once. ``inputs``: the bytes choose what is handed to ``Engine.run``
of a two-input model: how many arrays, their dtypes, ranks, dims, contiguity, non-arrays,
a tuple instead of a list, ``val_inp`` on or off.

The accepted refusals are the engine's own: ``ModelLoadError`` / ``UnsupportedModelError``
/ ``PlanExecutionError`` / ``ValueError`` / ``MemoryError`` from the loader, and from the
input checks ``ValueError`` or DeepSparse's ``RuntimeError('NM: error: ...')``. Anything
else escapes ``TestOneInput``: atheris prints the traceback, writes the input as
``crash-*`` and exits non-zero, which is what tests/test_fuzz_models.py checks for.
Arguments after ``--`` go to libFuzzer (``-max_total_time=``, ``-seed=``, ``-runs=``).
"""
from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import atheris  # noqa: E402

with atheris.instrument_imports(include=["deepsparse_lite"]):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    import deepsparse_lite.ops  # noqa: F401  (the shape rules and lowerings, instrumented)
    from deepsparse_lite import Engine
    from deepsparse_lite.compiler import (ModelLoadError, PlanExecutionError, UnsupportedModelError,
                                          compile_onnx, execute)

OURS = (ModelLoadError, UnsupportedModelError, PlanExecutionError, ValueError, MemoryError)
F, I = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def _model(nodes, inputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info("y", F, None)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def seed_models():
    """Small valid models covering the common op families: conv / pool, gemm, reshape /
    transpose / concat / gather, reduce / softmax, pad / slice."""
    rng = np.random.default_rng(0)
    N = helper.make_node
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    fc = numpy_helper.from_array(rng.standard_normal((16, 5)).astype(np.float32), "fc")
    shp = numpy_helper.from_array(np.array([1, -1], np.int64), "shp")
    idx = numpy_helper.from_array(np.array([0, 2, 1], np.int64), "idx")
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    pads = numpy_helper.from_array(np.array([0, 1, 0, 2], np.int64), "pads")
    st, en = (numpy_helper.from_array(np.array(v, np.int64), n) for v, n in (([0, 1], "st"), ([1, 4], "en")))
    return [
        _model([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
                N("Relu", ["c"], ["r"]), N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                N("GlobalAveragePool", ["p"], ["y"])], [("x", F, [1, 3, 8, 8])], [w, b]),
        _model([N("Reshape", ["x", "shp"], ["f"]), N("Gemm", ["f", "fc"], ["g"], alpha=0.5),
                N("Softmax", ["g"], ["y"], axis=-1)], [("x", F, [1, 4, 4])], [fc, shp]),
        _model([N("Transpose", ["x"], ["t"], perm=[0, 2, 1]), N("Gather", ["t", "idx"], ["gt"], axis=1),
                N("Concat", ["gt", "gt"], ["cc"], axis=2), N("ReduceMean", ["cc"], ["y"], axes=[2], keepdims=1)],
               [("x", F, [2, 4, 3])], [idx]),
        _model([N("Pad", ["x", "pads"], ["pd"], mode="constant"), N("Slice", ["pd", "st", "en"], ["s"]),
                N("Unsqueeze", ["s", "ax"], ["y"])], [("x", F, [2, 3])], [pads, st, en]),
    ]


def fuzz_loader(data: bytes) -> None:
    try:
        plan = compile_onnx(data)
    except OURS:
        return
    ins = []
    for io in plan.inputs:
        if int(np.prod(io.shape, dtype=np.int64)) * io.dtype.itemsize > (16 << 20):
            return
        ins.append(np.zeros(io.shape, io.dtype))
    try:
        execute(plan, ins)
    except OURS:
        pass


_ENGINE = None
DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int8, np.uint8, np.bool_, np.complex64]


def _engine():
    global _ENGINE
    if _ENGINE is None:
        N = helper.make_node
        shp = numpy_helper.from_array(np.array([0, 2, 2], np.int64), "shp")
        m = _model([N("Flatten", ["x"], ["xf"], axis=1), N("Reshape", ["z", "shp"], ["z2"]),
                    N("ReduceSum", ["z2"], ["zs"], keepdims=0), N("Relu", ["xf"], ["y"])],
                   [("x", F, [1, 8]), ("z", F, [1, 4])], [shp])
        m.graph.output.append(helper.make_tensor_value_info("zs", F, None))
        path = os.path.join(tempfile.mkdtemp(prefix="dsl_atheris_"), "two_in.onnx")
        onnx.save(m, path)
        _ENGINE = Engine(path, batch_size=1, num_cores=1)
    return _ENGINE


def fuzz_inputs(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    eng = _engine()
    n = fdp.ConsumeIntInRange(0, 4)
    arrays = []
    for _ in range(n):
        kind = fdp.ConsumeIntInRange(0, 9)
        if kind == 0:
            arrays.append(fdp.ConsumeFloatList(fdp.ConsumeIntInRange(0, 8)))  # a list, not an array
            continue
        if kind == 1:
            arrays.append(None)
            continue
        if kind in (3, 4) and len(arrays) < len(eng.input_shapes):  # the expected array
            k = len(arrays)
            arrays.append(np.full(eng.input_shapes[k], fdp.ConsumeFloat(), eng.input_dtypes[k]))
            continue
        rank = fdp.ConsumeIntInRange(0, 4)
        shape = [fdp.ConsumeIntInRange(0, 9) for _ in range(rank)]
        dt = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)]
        a = np.zeros(shape, dt)
        if kind == 2 and a.ndim >= 1 and a.shape[-1] > 1:
            a = np.zeros(shape[:-1] + [shape[-1] * 2], dt)[..., ::2]  # not C-contiguous
        arrays.append(a)
    container = tuple(arrays) if fdp.ConsumeBool() else arrays
    try:
        eng.run(container, val_inp=fdp.ConsumeBool())
    except (ValueError, PlanExecutionError):
        pass
    except RuntimeError as exc:
        if not str(exc).startswith("NM: error"):
            raise


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "loader"
    lib_args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    corpus = tempfile.mkdtemp(prefix=f"dsl_atheris_{target}_")
    if target == "loader":
        for k, m in enumerate(seed_models()):
            with open(os.path.join(corpus, f"seed{k}.onnx"), "wb") as f:
                f.write(m.SerializeToString())
        test = fuzz_loader
    elif target == "inputs":
        test = fuzz_inputs
    else:
        raise SystemExit(f"unknown target {target!r}: loader or inputs")
    atheris.Setup([sys.argv[0], *lib_args, "-rss_limit_mb=6144", "-timeout=30",
                   f"-artifact_prefix={corpus}/", corpus], test)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
