"""``python -m tests.scheduler.stress_concurrency [--threads 8] [--requests 10000]``: the
concurrency stress of tests/scheduler/test_stress.py, run in its own process so that a
deadlock ends in a traceback dump and a non-zero exit instead of a hung CI job.

Three Contexts (single_stream, multi_stream, elastic), each shared by engines of three small
sample models (mlp 64-64-64-10, bert_tiny at seq 8, resnet_tiny at 16x16), one standalone
Engine per scheduler, and a dynamic-batch mlp whose plan cache (2) is smaller than its
batch sizes (3), so its plans are evicted and recompiled under load: 13 engines. Every
input comes from a small seeded pool whose outputs were computed beforehand, one request at a
time, on the same engine; ``--threads`` callers then send ``--requests`` requests each, drawn
at random over every engine and input, and compare each output with the expected one (equal
bit for bit, or within 1e-6). Meanwhile a churn thread keeps creating engines on the shared
Contexts (and standalone Engines with their own Context), loads them from two threads of
their own and closes them while those threads are still sending: each of their requests must
either return the right output or raise ``RuntimeError(... closed)``.

Prints one JSON line (counts, requests/s); exit code 0 when nothing was wrong, 1 when an
output was wrong or a request failed, 3 on a hang (every join is bounded by ``--timeout``).
"""
import argparse
import faulthandler
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

#: sample models at sizes that make a request cost ~5 - 150 us on one core
MODELS = {"mlp": dict(sizes=(64, 64, 64, 10)), "bert_tiny": dict(seq_len=8),
          "resnet_tiny": dict(image_size=16)}
POOL = 8          # inputs per model
ATOL = 1e-6


def build(directory):
    from deepsparse_lite.models.registry import build_model, sample_inputs
    paths, pools = {}, {}
    for name, kw in MODELS.items():
        paths[name] = os.path.join(directory, name + ".onnx")
        build_model(name, paths[name], **kw)
        pools[name] = [sample_inputs(name, seed=s, **kw) for s in range(POOL)]
    # the churn engines' model: another mlp (other weights)
    paths["churn"] = os.path.join(directory, "churn.onnx")
    build_model("mlp", paths["churn"], seed=7, **MODELS["mlp"])
    pools["churn"] = pools["mlp"]
    # a dynamic-batch mlp: a plan per batch size, more sizes than its plan cache keeps
    paths["dyn"] = os.path.join(directory, "dyn.onnx")
    build_model("mlp", paths["dyn"], batch_size=None, seed=3, **MODELS["mlp"])
    rng = np.random.default_rng(5)
    pools["dyn"] = [rng.standard_normal((1 + k % 3, 64), dtype=np.float32) for k in range(POOL)]
    pools["dyn"] = [[x] for x in pools["dyn"]]
    return paths, pools


def same(got, want) -> str:
    """'equal', 'close' (within ATOL) or 'wrong'."""
    if len(got) != len(want):
        return "wrong"
    if all(g.dtype == w.dtype and np.array_equal(g, w) for g, w in zip(got, want)):
        return "equal"
    if all(g.shape == w.shape and np.allclose(g, w, rtol=0, atol=ATOL) for g, w in zip(got, want)):
        return "close"
    return "wrong"


class Result:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"equal": 0, "close": 0, "wrong": 0, "errors": 0}
        self.samples = []

    def add(self, kind, detail=None, n=1):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n
            if detail is not None and len(self.samples) < 5:
                self.samples.append(detail)


def caller(k, engines, pools, expected, n, res):
    rng = np.random.default_rng(1000 + k)
    picks = rng.integers(0, len(engines), n)
    items = rng.integers(0, POOL, n)
    local = {"equal": 0, "close": 0}
    for e_i, x_i in zip(picks.tolist(), items.tolist()):
        name, eng = engines[e_i]
        try:
            out = eng.run(pools[name][x_i])
        except Exception as e:  # noqa: BLE001 - any failure is counted and reported
            res.add("errors", f"caller {k} {name}: {type(e).__name__}: {e}")
            continue
        kind = same(out, expected[e_i][x_i])
        if kind == "wrong":
            res.add("wrong", f"caller {k}: engine {e_i} ({name}) input {x_i}")
        else:
            local[kind] += 1
    res.add("equal", n=local["equal"])
    res.add("close", n=local["close"])


def churn(contexts, paths, pools, stop, res, stats, timeout):
    """Create an engine, load it from two threads, close it under their feet; repeat."""
    from deepsparse_lite import Engine, MultiModelEngine
    names = list(contexts)
    cycle = 0
    while not stop.is_set():
        sched = names[cycle % len(names)]
        if cycle % 4 == 3:   # a standalone Engine: its close() also closes its own Context
            eng = Engine(paths["churn"], batch_size=1, scheduler=sched, num_cores=2)
        else:
            eng = MultiModelEngine(paths["churn"], 1, contexts[sched])
        want = [eng.run(x) for x in pools["churn"]]
        counts = {"ok": 0, "refused": 0}

        def user(j):
            i = j
            while True:
                try:
                    out = eng.run(pools["churn"][i % POOL])
                except RuntimeError as e:
                    if "closed" in str(e):
                        counts["refused"] += 1
                        return
                    res.add("errors", f"churn {sched}: RuntimeError: {e}")
                    return
                except Exception as e:  # noqa: BLE001
                    res.add("errors", f"churn {sched}: {type(e).__name__}: {e}")
                    return
                if same(out, want[i % POOL]) == "wrong":
                    res.add("wrong", f"churn engine on {sched}, input {i % POOL}")
                counts["ok"] += 1
                i += 1

        users = [threading.Thread(target=user, args=(j,), daemon=True) for j in range(2)]
        for t in users:
            t.start()
        time.sleep(0.005 + 0.01 * (cycle % 3))
        eng.close()
        for t in users:
            t.join(timeout)
            if t.is_alive():
                stats["hung_churn"] = True
                return
        stats["cycles"] += 1
        stats["ok"] += counts["ok"]
        stats["refused"] += counts["refused"]
        cycle += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=10000, help="per thread")
    ap.add_argument("--timeout", type=float, default=150.0, help="bound on every join (s)")
    ap.add_argument("--no-churn", action="store_true")
    args = ap.parse_args(argv)
    # a hang anywhere (even outside a join) ends the process with every thread's stack
    faulthandler.dump_traceback_later(args.timeout + 60, exit=True)

    from deepsparse_lite import Context, Engine, MultiModelEngine

    tmp = tempfile.mkdtemp(prefix="dsl-stress-")
    try:
        paths, pools = build(tmp)
        ncpu = len(os.sched_getaffinity(0))
        contexts = {"single_stream": Context(_scheduler="single_stream"),
                    "multi_stream": Context(num_streams=min(2, ncpu), _scheduler="multi_stream"),
                    "elastic": Context(num_streams=min(2, ncpu))}
        engines = [(name, MultiModelEngine(paths[name], 1, ctx))
                   for ctx in contexts.values() for name in MODELS]
        # and one standalone Engine per scheduler (its own Context), in the same mix
        engines += [(name, Engine(paths[name], batch_size=1, scheduler=sched))
                    for name, sched in zip(MODELS, contexts)]
        # and the dynamic-batch engine: 3 batch sizes, 2 plans kept, so plans are evicted
        # and compiled again while other threads still run them
        os.environ["DSL_PLAN_CACHE_SIZE"] = "2"
        engines.append(("dyn", MultiModelEngine(paths["dyn"], None, contexts["elastic"])))
        del os.environ["DSL_PLAN_CACHE_SIZE"]
        # expected outputs: the same engine, the same input, one request at a time
        expected = [[eng.run(x) for x in pools[name]] for name, eng in engines]

        res = Result()
        stop = threading.Event()
        stats = {"cycles": 0, "ok": 0, "refused": 0, "hung_churn": False}
        churner = None
        if not args.no_churn:
            churner = threading.Thread(target=churn, daemon=True,
                                       args=(contexts, paths, pools, stop, res, stats, args.timeout))
        threads = [threading.Thread(target=caller, daemon=True,
                                    args=(k, engines, pools, expected, args.requests, res))
                   for k in range(args.threads)]
        t0 = time.perf_counter()
        if churner is not None:
            churner.start()
        for t in threads:
            t.start()
        deadline = time.monotonic() + args.timeout
        hung = []
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                hung.append(t.name)
        elapsed = time.perf_counter() - t0
        stop.set()
        if churner is not None:
            churner.join(args.timeout)
            if churner.is_alive() or stats["hung_churn"]:
                hung.append("churn")
        if hung:
            print(f"HANG: threads {hung} still running after {args.timeout:.0f} s; stacks:",
                  file=sys.stderr, flush=True)
            faulthandler.dump_traceback(sys.stderr, all_threads=True)
            print(json.dumps({"hang": hung, **res.counts}), flush=True)
            os._exit(3)
        for _, eng in engines:
            eng.close()
        for ctx in contexts.values():
            ctx.close(timeout=args.timeout)
        total = args.threads * args.requests
        dyn = engines[-1][1]._model.stats
        report = {"threads": args.threads, "requests": total, **res.counts,
                  "dyn_plan_compiles": dyn["misses"], "dyn_plan_evictions": dyn["evictions"],
                  "seconds": round(elapsed, 2), "requests_per_s": round(total / elapsed),
                  "churn_cycles": stats["cycles"], "churn_ok": stats["ok"],
                  "churn_refused": stats["refused"], "samples": res.samples}
        print(json.dumps(report), flush=True)
        ok = (res.counts["wrong"] == 0 and res.counts["errors"] == 0
              and res.counts["equal"] + res.counts["close"] == total)
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
