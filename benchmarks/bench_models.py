"""Whole-model latency, deepsparse_lite vs onnxruntime, side by side in one process.

Both engines get the same thread count and the same inputs. Timing rounds alternate
between the engines so that machine noise (2 shared cores) hits both alike; the report
gives the median of per-round medians and the ratio. Outputs are compared too.

    python benchmarks/bench_models.py --models resnet50,bert_base --threads 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__))))


def _inputs_for(engine, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for name, shape, dtype in zip(engine.input_names, engine.input_shapes, engine.input_dtypes):
        if np.dtype(dtype).kind in "iu":
            hi = 1000 if "input_ids" in name else 2
            arr = rng.integers(0, hi, size=shape).astype(dtype)
            if "mask" in name:
                arr[...] = 1
        else:
            arr = rng.standard_normal(shape).astype(dtype)
        out.append(arr)
    return out


def _time(fn, iters, settle=0.3):
    # Both runtimes keep their worker threads spinning for a while after a run (libgomp's
    # spin-wait, onnxruntime's spinning pool): let the other engine's threads park first,
    # or each would be measured on cores the other one still occupies.
    time.sleep(settle)
    fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(model_name: str, threads: int, iters: int, rounds: int, batch_size: int = 1):
    import onnxruntime as ort

    from deepsparse_lite import compile_model
    from deepsparse_lite.models import sample_model_path

    path = sample_model_path(model_name)
    t0 = time.perf_counter()
    engine = compile_model(path, batch_size=batch_size, num_cores=threads)
    compile_s = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inputs = _inputs_for(engine)
    feeds = dict(zip(engine.input_names, inputs))
    ours = engine.run(inputs)
    theirs = sess.run(None, feeds)
    max_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs))
    for _ in range(2):  # warm-up
        engine.run(inputs)
        sess.run(None, feeds)
    dsl, ortt = [], []
    for _ in range(rounds):
        dsl.append(_time(lambda: engine.run(inputs), iters))
        ortt.append(_time(lambda: sess.run(None, feeds), iters))
    d, o = statistics.median(dsl), statistics.median(ortt)
    return {
        "model": model_name, "batch_size": batch_size, "threads": threads,
        "deepsparse_lite_ms": round(d * 1e3, 3), "onnxruntime_ms": round(o * 1e3, 3),
        "speedup_vs_ort": round(o / d, 3), "max_abs_diff": max_diff,
        "compile_seconds": round(compile_s, 2), "arena_mb": round(engine.arena_bytes / 2**20, 2),
        "rounds": rounds, "iters_per_round": iters,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet50,bert_base")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", default=None, help="write results to this file")
    args = p.parse_args(argv)
    results = []
    print(f"{'model':<16}{'bs':>4}{'thr':>5}{'dsl ms':>10}{'ort ms':>10}{'ort/dsl':>9}{'max|diff|':>11}")
    for m in args.models.split(","):
        r = bench(m.strip(), args.threads, args.iters, args.rounds, args.batch_size)
        results.append(r)
        print(f"{r['model']:<16}{r['batch_size']:>4}{r['threads']:>5}{r['deepsparse_lite_ms']:>10.2f}"
              f"{r['onnxruntime_ms']:>10.2f}{r['speedup_vs_ort']:>9.2f}{r['max_abs_diff']:>11.2e}")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
