"""Sparse-weight kernels against our dense GEMM, side by side in one run.

    python benchmarks/bench_sparse.py [--threads 1 2] [--sparsity 0.8 0.9 0.95] [--rounds 7]
    python benchmarks/bench_sparse.py --models [--threads 1 2] [--model-sparsity 0.9]

Layers: BERT-base's MatMuls at M = 128 tokens (768x768, 768x3072, 3072x768) and
ResNet-50's 1x1 convs (batch 1), each compiled twice as a one-node model with the weight
magnitude-pruned to the given sparsity (random values, uniformly random zeros): once forced
dense, once forced sparse (``compile_onnx(..., sparse=...)``). Both run through the plan
runner with preallocated arenas, in interleaved rounds (load from other processes hits
both alike); the figure is the median. GFLOP/s are dense-equivalent (2*M*N*K / time), so
the sparse/dense ratio is the speedup.

``--models``: ResNet-50 (batch 1) and BERT-base (batch 1, 128 tokens) sample models with
every weight of rank >= 2 magnitude-pruned, sparse vs dense end to end.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper

from deepsparse_lite import compiler

BERT = [("bert 768x768", 128, 768, 768), ("bert 768x3072", 128, 768, 3072),
        ("bert 3072x768", 128, 3072, 768)]
# (name, Cin, Cout, H*W side): ResNet-50's 1x1 convs at 224x224 input
RESNET_1X1 = [("r50 1x1 64->256 56", 64, 256, 56), ("r50 1x1 256->64 56", 256, 64, 56),
              ("r50 1x1 512->128 28", 512, 128, 28), ("r50 1x1 256->1024 14", 256, 1024, 14),
              ("r50 1x1 1024->256 14", 1024, 256, 14), ("r50 1x1 512->2048 7", 512, 2048, 7),
              ("r50 1x1 2048->512 7", 2048, 512, 7)]


def prune(w: np.ndarray, sparsity: float, rng) -> np.ndarray:
    w = w.copy()
    w[rng.random(w.shape) < sparsity] = 0.0
    return w


def _model(op, x_shape, w):
    node = helper.make_node(op, ["x", "w"], ["y"])
    g = helper.make_graph([node], "bench", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _runner(plan, feeds, threads):
    outs, arena = compiler.allocate_outputs(plan), compiler.new_arena(plan)
    ins = [np.ascontiguousarray(f) for f in feeds]
    compiler.run(plan, ins, outs, arena, threads)

    def call():
        compiler.run(plan, ins, outs, arena, threads)
    return call


def interleaved(fns: dict, rounds: int, min_time: float = 0.01) -> dict:
    """Median seconds per call of each callable, in interleaved rounds."""
    inner = {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        f()
        dt = max(time.perf_counter() - t0, 1e-6)
        inner[k] = max(1, int(min_time / dt))
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner[k]):
                f()
            times[k].append((time.perf_counter() - t0) / inner[k])
    return {k: statistics.median(v) for k, v in times.items()}


def bench_layers(threads, sparsities, rounds):
    rng = np.random.default_rng(0)
    print(f"{'layer':<24} {'thr':>3} {'sparsity':>8} {'dense GF/s':>10} {'sparse GF/s-eq':>14} {'ratio':>6}")
    rows = []
    cases = [(n, "MatMul", (m, k), (k, nn), 2 * m * k * nn) for n, m, k, nn in BERT]
    cases += [(n, "Conv", (1, ci, s, s), (co, ci, 1, 1), 2 * ci * co * s * s) for n, ci, co, s in RESNET_1X1]
    for name, op, xs, ws, flops in cases:
        w0 = rng.standard_normal(ws).astype(np.float32)
        x = rng.standard_normal(xs).astype(np.float32)
        for sp in sparsities:
            m = _model(op, xs, prune(w0, sp, rng))
            for nt in threads:
                fns = {mode: _runner(compiler.compile_onnx(m, max_threads=nt, sparse=mode), [x], nt)
                       for mode in ("dense", "sparse")}
                t = interleaved(fns, rounds)
                r = t["dense"] / t["sparse"]
                rows.append((name, nt, sp, flops / t["dense"] / 1e9, flops / t["sparse"] / 1e9, r))
                print(f"{name:<24} {nt:>3} {sp:>8.2f} {rows[-1][3]:>10.1f} {rows[-1][4]:>14.1f} {r:>6.2f}",
                      flush=True)
    return rows


def magnitude_prune(model: onnx.ModelProto, sparsity: float) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim < 2 or w.dtype != np.float32 or w.size < 64:
            continue
        cut = np.quantile(np.abs(w), sparsity)
        init.CopyFrom(numpy_helper.from_array(np.where(np.abs(w) <= cut, 0, w).astype(np.float32), init.name))
    return out


def bench_models(threads, sparsity, rounds):
    from deepsparse_lite.models import build_model, sample_inputs

    print(f"{'model':<12} {'thr':>3} {'dense ms':>9} {'sparse ms':>9} {'auto ms':>8} {'ratio':>6} "
          f"{'sparse steps (auto)':>19}")
    for name in ("resnet50", "bert_base"):
        model = magnitude_prune(build_model(name, batch_size=1), sparsity)
        feeds = sample_inputs(name, 1)
        for nt in threads:
            plans = {mode: compiler.compile_onnx(model, max_threads=nt, sparse=mode)
                     for mode in ("dense", "sparse", "auto")}
            fns = {k: _runner(p, feeds, nt) for k, p in plans.items()}
            t = interleaved(fns, rounds, min_time=0.0)
            n_auto = plans["auto"].stats["sparse_steps"]
            n_all = plans["sparse"].stats["sparse_steps"]
            print(f"{name:<12} {nt:>3} {t['dense'] * 1e3:>9.2f} {t['sparse'] * 1e3:>9.2f} "
                  f"{t['auto'] * 1e3:>8.2f} {t['dense'] / t['sparse']:>6.2f} {n_auto:>12}/{n_all}",
                  flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sparsity", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--models", action="store_true", help="whole pruned models instead of layers")
    ap.add_argument("--model-sparsity", type=float, default=0.9)
    ap.add_argument("--only", default="", help="substring filter on layer names")
    args = ap.parse_args()
    if args.only:
        global BERT, RESNET_1X1
        BERT = [c for c in BERT if args.only in c[0]]
        RESNET_1X1 = [c for c in RESNET_1X1 if args.only in c[0]]
    if args.models:
        bench_models(args.threads, args.model_sparsity, args.rounds)
    else:
        bench_layers(args.threads, args.sparsity, args.rounds)


if __name__ == "__main__":
    main()
