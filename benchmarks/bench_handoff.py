"""What the scheduler adds to a request: Engine.run minus running the same plan directly.

For each scheduler (single_stream, multi_stream with one stream per core, elastic) and
1 and N callers (N = cores), every request's plan time comes from the Context's trace
(t0..t1 of the plan on its lease), so the hand-off is measured per request:

  * added per request   = Engine.run wall time - the plan's own run time (median, p99);
    with more callers than streams this includes waiting for a stream (reported apart);
  * overhead per item   = wall * streams / requests - median plan time: what the
    scheduler costs in throughput (the next request's start after the previous one's end).

Two models: a one-op model (the plan takes ~2 us: almost everything measured is the
scheduler and the Python call) and a sample model (default: the 512-1024-1024-1024-10 MLP).

    python benchmarks/bench_handoff.py [--model mlp] [--seconds 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tiny_model() -> str:
    import onnx
    from onnx import helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = os.path.join(tempfile.mkdtemp(prefix="dsl_handoff_"), "tiny.onnx")
    onnx.save(m, path)
    return path


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))] if v else float("nan")


def measure(path, scheduler, streams, callers, seconds, cores):
    from deepsparse_lite import Engine

    eng = Engine(path, batch_size=1, num_cores=cores, scheduler=scheduler, num_streams=streams)
    ctx = eng.context
    x = eng.generate_random_inputs()
    for _ in range(200):
        eng.run(x)
    walls = [[] for _ in range(callers)]
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(callers + 1)

    def caller(i):
        barrier.wait()
        w = walls[i]
        while True:
            t = time.perf_counter()
            if t >= stop:
                break
            eng.run(x)
            w.append((t, time.perf_counter()))

    ths = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in ths:
        t.start()
    ctx.start_trace()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    trace = ctx.stop_trace()
    nstreams = ctx.num_streams
    eng.close()
    # pair each call with its plan record: by caller thread and time order
    plan_times = sorted(r["t1"] - r["t0"] for r in trace)
    by_caller = {}
    for r in trace:
        by_caller.setdefault(r["caller"], []).append(r)
    added = []
    for recs in by_caller.values():
        recs.sort(key=lambda r: r["t0"])
    calls = sorted((c for w in walls for c in w), key=lambda c: c[0])
    recs_all = sorted(trace, key=lambda r: r["t0"])
    # each call contains exactly one plan run: match runs to calls by containment
    j = 0
    for a, b in calls:
        while j < len(recs_all) and recs_all[j]["t0"] < a:
            j += 1
        # the run of this call starts after a and ends before b (any caller's)
        for k in range(j, min(j + 2 * callers + 2, len(recs_all))):
            r = recs_all[k]
            if r["t0"] >= a and r["t1"] <= b:
                added.append((b - a) - (r["t1"] - r["t0"]))
                break
    n = sum(len(w) for w in walls)
    med_plan = statistics.median(plan_times) if plan_times else float("nan")
    per_item = wall * min(nstreams, callers) / max(n, 1) - med_plan
    return {"requests": n, "items_per_s": n / wall, "plan_us": med_plan * 1e6,
            "added_med_us": statistics.median(added) * 1e6 if added else float("nan"),
            "added_p99_us": _pct(added, 0.99) * 1e6, "overhead_per_item_us": per_item * 1e6,
            "streams": nstreams}


def versus_direct(path, scheduler, streams, cores, rounds=15, calls=2000):
    """Median per-call time of Engine.run and of the same plan run directly from Python
    (compiler.run on a preallocated arena, outputs allocated per call as Engine.run does),
    interleaved on one thread: what the scheduler adds, with Python's own cost on both
    sides. The plan runs on one thread directly, so use a model whose plan takes one
    thread (the one-Relu model)."""
    from deepsparse_lite import Engine, compiler

    eng = Engine(path, batch_size=1, num_cores=cores, scheduler=scheduler, num_streams=streams)
    x = eng.generate_random_inputs()
    plan = eng._plan
    arena, outs = compiler.new_arena(plan), compiler.allocate_outputs(plan)

    def direct():
        compiler.allocate_outputs(plan)
        compiler.run(plan, x, outs, arena, 1)

    fns = {"engine": lambda: eng.run(x), "direct": direct}
    times = {k: [] for k in fns}
    try:
        for _ in range(rounds):
            for k, f in fns.items():
                for _ in range(calls // 10):
                    f()
                t0 = time.perf_counter()
                for _ in range(calls):
                    f()
                times[k].append((time.perf_counter() - t0) / calls * 1e6)
    finally:
        eng.close()
    e, d = statistics.median(times["engine"]), statistics.median(times["direct"])
    return e, d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mlp", help="a sample-model name or an ONNX path")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args(argv)
    from deepsparse_lite.cpu import cpu_architecture
    from deepsparse_lite.models import sample_model_path

    arch = cpu_architecture()
    cores = arch.num_available_physical_cores
    print(f"CPU: {arch.vendor} {arch.isa} vnni={arch.vnni}, {cores} cores")
    models = [("one Relu", _tiny_model()),
              (args.model, args.model if os.path.exists(args.model) else sample_model_path(args.model))]
    scenarios = [("single_stream", None), ("multi_stream", cores), ("elastic", None)]
    print("Engine.run against the same plan run directly (one-Relu model, 1 caller, interleaved):")
    for sched, streams in scenarios:
        e, d = versus_direct(models[0][1], sched, streams, cores)
        print(f"  {sched:14s} Engine.run {e:6.2f} us   direct {d:6.2f} us   added {e - d:6.2f} us")
    print("Per request, from the Context's trace (Engine.run wall minus the plan's own run, "
          "tracing on):")
    print(f"{'model':10s} {'scheduler':14s} {'callers':>7s} {'items/s':>9s} {'plan us':>8s} "
          f"{'added med':>9s} {'added p99':>9s} {'ovh/item':>8s}")
    for name, path in models:
        for sched, streams in scenarios:
            for callers in sorted({1, cores}):
                r = measure(path, sched, streams, callers, args.seconds, cores)
                print(f"{name:10s} {sched:14s} {callers:7d} {r['items_per_s']:9.0f} {r['plan_us']:8.1f} "
                      f"{r['added_med_us']:9.1f} {r['added_p99_us']:9.1f} {r['overhead_per_item_us']:8.1f}")


if __name__ == "__main__":
    main()
