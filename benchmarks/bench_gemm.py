"""GFLOP/s of the deepsparse_lite fp32 GEMM / conv kernels against NumPy (OpenBLAS) and
onnxruntime, each given the same number of threads.

    python benchmarks/bench_gemm.py [--threads 1 2] [--repeats 30] [--isa 1]

Each case is compiled as a one-node ONNX model (constant weights, so MatMul uses the
packed-weight GEMM) and run through the plan runner with a preallocated arena; the
figure is the median of ``repeats`` timed runs after warm-up.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import os
import statistics
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper

from deepsparse_lite import compiler


def _openblas_set_threads():
    """A setter for NumPy's bundled OpenBLAS thread count (no threadpoolctl needed)."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def _model(op, x_shape, w, attrs=None):
    node = helper.make_node(op, ["x", "w"], ["y"], **(attrs or {}))
    g = helper.make_graph([node], "bench", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _median_time(fn, repeats, min_time=0.2):
    fn()
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(min_time / repeats / once))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def _ours(model, x, threads, isa):
    plan = compiler.compile_onnx(model, max_threads=threads, isa=isa)
    arena = compiler.new_arena(plan)
    outs = compiler.allocate_outputs(plan)
    return lambda: compiler.run(plan, [x], outs, arena, threads)


def _ort(model, x, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"x": x})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--isa", type=int, default=None, help="plan ISA level (default: best)")
    args = ap.parse_args(argv)
    set_blas = _openblas_set_threads()
    rng = np.random.default_rng(0)
    rows = []
    for nt in args.threads:
        if set_blas:
            set_blas(nt)
        for (M, K, N) in [(128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1, 768, 768)]:
            a = rng.standard_normal((M, K), dtype=np.float32)
            w = rng.standard_normal((K, N), dtype=np.float32)
            out = np.empty((M, N), np.float32)
            flops = 2.0 * M * N * K
            t_np = _median_time(lambda: np.matmul(a, w, out=out), args.repeats)
            t_us = _median_time(_ours(_model("MatMul", (M, K), w), a, nt, args.isa), args.repeats)
            t_ort = _median_time(_ort(_model("MatMul", (M, K), w), a, nt), args.repeats)
            rows.append((f"MatMul {M}x{K}x{N}", nt, flops / t_us / 1e9, flops / t_np / 1e9,
                         flops / t_ort / 1e9))
        # ResNet-like convolutions (NCHW, batch 1)
        for (ci, co, hw, k, s) in [(64, 64, 56, 3, 1), (64, 256, 56, 1, 1), (128, 128, 28, 3, 1),
                                   (256, 256, 14, 3, 1)]:
            x = rng.standard_normal((1, ci, hw, hw), dtype=np.float32)
            w = rng.standard_normal((co, ci, k, k), dtype=np.float32) * 0.05
            m = _model("Conv", x.shape, w, {"pads": [k // 2] * 4, "strides": [s, s]})
            oh = (hw + 2 * (k // 2) - k) // s + 1
            flops = 2.0 * co * oh * oh * ci * k * k
            t_us = _median_time(_ours(m, x, nt, args.isa), args.repeats)
            t_ort = _median_time(_ort(m, x, nt), args.repeats)
            rows.append((f"Conv {ci}->{co} {k}x{k} @{hw}", nt, flops / t_us / 1e9, float("nan"),
                         flops / t_ort / 1e9))
        # depthwise 3x3 (MobileNet-like)
        x = rng.standard_normal((1, 144, 56, 56), dtype=np.float32)
        w = rng.standard_normal((144, 1, 3, 3), dtype=np.float32)
        m = _model("Conv", x.shape, w, {"pads": [1] * 4, "group": 144})
        flops = 2.0 * 144 * 56 * 56 * 9
        t_us = _median_time(_ours(m, x, nt, args.isa), args.repeats)
        t_ort = _median_time(_ort(m, x, nt), args.repeats)
        rows.append(("DWConv 144 3x3 @56", nt, flops / t_us / 1e9, float("nan"), flops / t_ort / 1e9))
    print(f"{'case':28s} {'thr':>3s} {'ours':>8s} {'numpy':>8s} {'ort':>8s} {'/numpy':>7s} {'/ort':>6s}   (GFLOP/s)")
    for name, nt, us, npy, ort_ in rows:
        r_np = us / npy if npy == npy else float("nan")
        print(f"{name:28s} {nt:3d} {us:8.1f} {npy:8.1f} {ort_:8.1f} {r_np:7.2f} {us / ort_:6.2f}")


if __name__ == "__main__":
    main()
