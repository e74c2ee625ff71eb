"""GFLOP/s of the deepsparse_lite fp32 GEMM / conv kernels against NumPy (OpenBLAS) and
onnxruntime, each given the same number of threads.

    python benchmarks/bench_gemm.py [--threads 1 2] [--repeats 30] [--isa 1]
    python benchmarks/bench_gemm.py --suite small-m [--threads 1 2]

``--suite small-m``: batch 1-8 Gemm with constant (packed) weights at the MLP's and
BERT-base's shapes, a bandwidth-bound workload: reported as GB/s of weights streamed,
beside the read bandwidth of this machine measured on a buffer of the same size (the
weights stay in L3 when one matrix is run in a loop) and on a chain of layers larger than
L3 (weights from DRAM, as in a whole BERT-base).

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


def _interleaved(fns: dict, repeats: int, clock, min_time=0.02) -> dict:
    """(median, best) seconds per call of each callable, timed in interleaved rounds so that
    load from other processes hits every contender alike."""
    inner = {}
    for name, fn in fns.items():
        fn()
        fn()
        t0 = time.perf_counter()
        fn()
        inner[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(inner[name]):
                fn()
            times[name].append((clock() - t0) / inner[name])
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


def _ours(model, x, threads, isa):
    """Run the plan through the runner directly (what an engine stream does per call)."""
    from deepsparse_lite.kernels import runner

    plan = compiler.compile_onnx(model, max_threads=threads, isa=isa)
    arena = compiler.new_arena(plan)
    outs = compiler.allocate_outputs(plan)
    nbytes = np.array([x.nbytes], dtype=np.int64)
    args = (plan.steps, plan.tensor_table, plan.const_ptrs, [x], nbytes, outs, arena,
            plan.table_bytes, threads)

    def run(plan=plan):  # the plan keeps the packed constants alive
        rc, _ = runner.run_plan(*args)
        assert rc == 0
    return run


def _ort(model, x, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"x": x})


def _cases(rng, isa):
    """(name, flops, {contender: factory(threads) -> callable})."""
    cases = []
    for (M, K, N) in [(128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1, 768, 768),
                      (1, 768, 3072)]:
        a = rng.standard_normal((M, K), dtype=np.float32)
        w = rng.standard_normal((K, N), dtype=np.float32)
        out = np.empty((M, N), np.float32)
        m = _model("MatMul", (M, K), w)
        cases.append((f"MatMul {M}x{K}x{N}", 2.0 * M * N * K, {
            "ours": lambda nt, m=m, a=a: _ours(m, a, nt, isa),
            "numpy": lambda nt, a=a, w=w, out=out: (lambda: np.matmul(a, w, out=out)),
            "ort": lambda nt, m=m, a=a: _ort(m, a, nt)}))
    # ResNet-like convolutions (NCHW, batch 1) and a MobileNet-like depthwise one
    for (ci, co, hw, k, s, g) in [(64, 64, 56, 3, 1, 1), (64, 256, 56, 1, 1, 1),
                                  (128, 128, 28, 3, 1, 1), (256, 256, 14, 3, 1, 1),
                                  (128, 256, 56, 3, 2, 1), (144, 144, 56, 3, 1, 144)]:
        x = rng.standard_normal((1, ci, hw, hw), dtype=np.float32)
        w = rng.standard_normal((co, ci // g, k, k), dtype=np.float32) * 0.05
        m = _model("Conv", x.shape, w, {"pads": [k // 2] * 4, "strides": [s, s], "group": g})
        oh = (hw + 2 * (k // 2) - k) // s + 1
        name = f"{'DWConv' if g > 1 else 'Conv'} {ci}->{co} {k}x{k}/{s} @{hw}"
        cases.append((name, 2.0 * co * oh * oh * (ci // g) * k * k, {
            "ours": lambda nt, m=m, x=x: _ours(m, x, nt, isa),
            "ort": lambda nt, m=m, x=x: _ort(m, x, nt)}))
    return cases


def _chain_model(M, K, N, layers, rng):
    """``layers`` Gemm(+Relu) layers K->N->N...: weights of every layer distinct, so a
    chain larger than L3 streams its weights from DRAM."""
    nodes, inits, prev, k = [], [], "x", K
    for i in range(layers):
        w = (rng.standard_normal((k, N), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"y{i}" if i < layers - 1 else "y"]))
        prev, k = f"y{i}", N
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (M, K))],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m, sum(int(np.prod(t.dims)) * 4 for t in inits)


def _read_gbps(nbytes: int, repeats: int) -> float:
    """Median GB/s of the best vector form reading a buffer of ``nbytes`` front to back."""
    from deepsparse_lite import kernels
    from deepsparse_lite.kernels import reduce as kreduce

    form = min(kernels.isa_level(), 2)  # DSL_FORM_GENERIC / AVX2 / AVX512
    buf = np.ones(max(16, nbytes // 4), np.float32)
    passes = max(1, int(2e8 // max(buf.nbytes, 1)))
    kreduce.stream_read_seconds(buf, form, passes)
    ts = []
    for _ in range(repeats):
        t0 = time.thread_time()
        kreduce.stream_read_seconds(buf, form, passes)
        ts.append(time.thread_time() - t0)
    return buf.nbytes * passes / statistics.median(ts) / 1e9


def small_m(args) -> None:
    """GB/s of weights streamed at batch 1-8 (see the module docstring)."""
    rng = np.random.default_rng(0)
    shapes = [("mlp", 512, 1024), ("mlp", 1024, 1024), ("bert", 768, 768), ("bert", 768, 3072),
              ("bert", 3072, 768)]
    cases = []
    for M in args.m:
        for tag, K, N in shapes:
            w = rng.standard_normal((K, N), dtype=np.float32)
            cases.append((f"{tag} {M}x{K}x{N}", M, K * N * 4, _model("MatMul", (M, K), w),
                          rng.standard_normal((M, K), dtype=np.float32)))
        # BERT-base's 12 layers of weights do not fit in L3: 24 distinct 768x768 layers (57 MB)
        m, nbytes = _chain_model(M, 768, 768, 24, rng)
        cases.append((f"dram {M}x768x768 x24", M, nbytes, m, rng.standard_normal((M, 768), dtype=np.float32)))
    print("GB/s of weights streamed per call (median). 1 thread: thread CPU time, interleaved; "
          ">1 thread: best wall time. 'read': this machine's read bandwidth on a buffer of the "
          "weights' size (1 thread)")
    print(f"{'case':26s} {'thr':>3s} {'ours us':>9s} {'ort us':>9s} {'ours GB/s':>10s} {'ort GB/s':>9s} "
          f"{'read GB/s':>10s} {'ours/ort':>9s}")
    read = {}
    for nt in args.threads:
        for name, M, nbytes, model, x in cases:
            if nbytes not in read:
                read[nbytes] = _read_gbps(nbytes, args.repeats)
            fns = {"ours": _ours(model, x, nt, args.isa), "ort": _ort(model, x, nt)}
            if nt == 1:
                t = _interleaved(fns, args.repeats, time.thread_time)
                sec = {k: v[0] for k, v in t.items()}
            else:
                sec = {}
                for k, fn in fns.items():
                    sec[k] = _interleaved({k: fn}, 4 * args.repeats, time.perf_counter, min_time=0.0)[k][1]
                    time.sleep(0.3)
            print(f"{name:26s} {nt:3d} {sec['ours'] * 1e6:9.1f} {sec['ort'] * 1e6:9.1f} "
                  f"{nbytes / sec['ours'] / 1e9:10.1f} {nbytes / sec['ort'] / 1e9:9.1f} "
                  f"{read[nbytes]:10.1f} {sec['ort'] / sec['ours']:9.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--isa", type=int, default=None, help="plan ISA level (default: best)")
    ap.add_argument("--suite", choices=["kernels", "small-m"], default="kernels")
    ap.add_argument("--m", type=int, nargs="+", default=[1, 2, 4, 8], help="batch rows (small-m)")
    args = ap.parse_args(argv)
    if args.suite == "small-m":
        return small_m(args)
    set_blas = _openblas_set_threads()
    cases = _cases(np.random.default_rng(0), args.isa)
    rows = []
    for nt in args.threads:
        results = {name: {} for name, _, _ in cases}
        if nt == 1:
            # thread CPU time, contenders interleaved: robust to other processes on the core
            if set_blas:
                set_blas(1)
            for name, _, facts in cases:
                results[name] = _interleaved({c: f(1) for c, f in facts.items()}, args.repeats,
                                             time.thread_time)
        else:
            # wall time, one contender at a time: two spinning thread pools on the same
            # cores would only measure each other
            for contender in ("ours", "numpy", "ort"):
                if contender == "numpy" and set_blas:
                    set_blas(nt)
                for name, _, facts in cases:
                    if contender in facts:
                        fn = facts[contender](nt)
                        # single calls, many rounds: the best one is a call no other
                        # process interrupted
                        results[name].update(_interleaved({contender: fn}, 4 * args.repeats,
                                                          time.perf_counter, min_time=0.0))
                        del fn
                if contender == "numpy" and set_blas:
                    set_blas(1)
                time.sleep(0.5)  # let the pool's workers stop spinning
        rows += [(name, nt, flops, results[name]) for name, flops, _ in cases]
    print("GFLOP/s; 1 thread: median thread CPU time, interleaved; >1 thread: best wall time")
    print(f"{'case':28s} {'thr':>3s} {'ours':>7s} {'numpy':>7s} {'ort':>7s} {'/numpy':>7s} {'/ort':>6s}")
    for name, nt, flops, t in rows:
        # 1 thread: median of thread CPU time. More threads: best wall time of the rounds, the
        # closest to an idle machine when other processes share the cores (a team waits for
        # its slowest, possibly descheduled, thread).
        g = {k: flops / (v[0] if nt == 1 else v[1]) / 1e9 for k, v in t.items()}
        npy = g.get("numpy", float("nan"))
        print(f"{name:28s} {nt:3d} {g['ours']:7.1f} {npy:7.1f} {g['ort']:7.1f} "
              f"{g['ours'] / npy:7.2f} {g['ours'] / g['ort']:6.2f}")


if __name__ == "__main__":
    main()
