"""Elementwise kernels: deepsparse_lite vs numpy vs onnxruntime on ~1M-element tensors.

Cases: Add with a row broadcast ([1024, 1024] + [1024]), Add of two same-shape tensors,
Sigmoid, GELU (exact, opset 20) and GELU (tanh). Each engine runs a one-node model with the
same thread count; numpy runs the textbook formula (single-threaded). Rounds alternate
between the engines so machine noise (2 shared cores) hits them alike; the report gives
the median time (and the best round, which is what survives when other processes share the
cores), effective GB/s (bytes read + written) and the ratio to our time.

    python benchmarks/bench_eltwise.py --threads 1,2 --iters 30 --rounds 5 [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N_ROWS, N_COLS = 1024, 1024


def _model(op, inputs, attrs=None, opset=20):
    node = helper.make_node(op, list(inputs), ["y"], **(attrs or {}))
    g = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def _erf_np():
    try:
        from scipy.special import erf
        return erf
    except ImportError:   # vectorised math.erf: slow, but numpy has no erf
        return np.vectorize(math.erf, otypes=[np.float32])


def cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_ROWS, N_COLS)).astype(np.float32)
    x2 = rng.standard_normal((N_ROWS, N_COLS)).astype(np.float32)
    bias = rng.standard_normal(N_COLS).astype(np.float32)
    erf = _erf_np()
    k = np.float32(math.sqrt(2 / math.pi))
    return [
        ("Add [1024,1024]+[1024]", _model("Add", {"a": x, "b": bias}), {"a": x, "b": bias},
         lambda: x + bias, (x.nbytes + bias.nbytes + x.nbytes)),
        ("Add same shape", _model("Add", {"a": x, "b": x2}), {"a": x, "b": x2},
         lambda: x + x2, 3 * x.nbytes),
        ("Sigmoid", _model("Sigmoid", {"x": x}), {"x": x},
         lambda: 1 / (1 + np.exp(-x)), 2 * x.nbytes),
        ("Gelu (erf)", _model("Gelu", {"x": x}), {"x": x},
         lambda: 0.5 * x * (1 + erf(x * np.float32(1 / math.sqrt(2)))), 2 * x.nbytes),
        ("Gelu (tanh)", _model("Gelu", {"x": x}, {"approximate": "tanh"}), {"x": x},
         lambda: 0.5 * x * (1 + np.tanh(k * (x + np.float32(0.044715) * x * x * x))), 2 * x.nbytes),
    ]


def _median_time(fn, iters):
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def run(threads, iters, rounds):
    import onnxruntime as ort

    from deepsparse_lite import compiler

    results = []
    for name, model, feeds, np_fn, nbytes in cases():
        for nt in threads:
            plan = compiler.compile_onnx(model, max_threads=nt)
            arena = compiler.new_arena(plan)
            ins = [feeds[i.name] for i in plan.inputs]

            def ours():
                outs = compiler.allocate_outputs(plan)
                compiler.run(plan, ins, outs, arena, nt)
                return outs

            so = ort.SessionOptions()
            so.intra_op_num_threads = nt
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            # ORT's pool threads spin after each run; with rounds alternating between the
            # engines on 2 cores they would steal the CPU our OpenMP worker needs
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                sess = ort.InferenceSession(model.SerializeToString(), so,
                                            providers=["CPUExecutionProvider"])
                ort_fn = lambda: sess.run(None, feeds)   # noqa: E731
                np.testing.assert_allclose(ours()[0], ort_fn()[0], rtol=1e-4, atol=1e-5)
            except Exception as exc:   # an ORT build without this op version
                print(f"  onnxruntime skipped for {name}: {exc}")
                ort_fn = None
            np.testing.assert_allclose(ours()[0], np_fn(), rtol=1e-4, atol=1e-5)
            t_us, t_ort, t_np = [], [], []
            for _ in range(rounds):
                t_us.append(_median_time(ours, iters))
                if ort_fn is not None:
                    t_ort.append(_median_time(ort_fn, iters))
                if nt == 1:
                    t_np.append(_median_time(np_fn, max(3, iters // 3)))
            row = {"case": name, "threads": nt, "ours_ms": 1e3 * statistics.median(t_us),
                   "ours_best_ms": 1e3 * min(t_us),
                   "ours_GBps": nbytes / statistics.median(t_us) / 1e9}
            if t_ort:
                row["ort_ms"] = 1e3 * statistics.median(t_ort)
                row["ort_best_ms"] = 1e3 * min(t_ort)
                row["ort_over_ours"] = statistics.median(t_ort) / statistics.median(t_us)
                row["ort_over_ours_best"] = min(t_ort) / min(t_us)
            if t_np:
                row["numpy_ms"] = 1e3 * statistics.median(t_np)
                row["numpy_over_ours"] = statistics.median(t_np) / statistics.median(t_us)
            results.append(row)
            print(_fmt(row), flush=True)
    return results


def _fmt(r):
    s = f"{r['case']:<24} t={r['threads']}  ours {r['ours_ms']:7.3f} ms ({r['ours_GBps']:5.1f} GB/s)"
    s += f" best {r['ours_best_ms']:6.3f}"
    if "ort_ms" in r:
        s += (f"  ort {r['ort_ms']:7.3f} ms (x{r['ort_over_ours']:.2f}; best {r['ort_best_ms']:6.3f},"
              f" x{r['ort_over_ours_best']:.2f})")
    if "numpy_ms" in r:
        s += f"  numpy {r['numpy_ms']:7.3f} ms (x{r['numpy_over_ours']:.2f})"
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    res = run(threads, args.iters, args.rounds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
