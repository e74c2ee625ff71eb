"""Scheduler benchmark: single_stream vs multi_stream vs elastic under 1..N concurrent callers.

Each scenario runs ``callers`` Python threads that call ``engine.run`` in a loop for
``--seconds``; reported: items/s over wall clock and latency percentiles. All scenarios run
in one process, one after another, rounds interleaved so machine noise hits all alike;
the table gives medians over rounds. ``--deepsparse PYTHON`` runs the same scenarios with
DeepSparse 1.8 from its own interpreter (its venv pins old onnx/numpy) on the same ONNX file.

    python benchmarks/bench_scheduler.py --models mlp,resnet50 --callers 1,2,4
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCENARIOS = [("single_stream", None), ("multi_stream", 2), ("elastic", None)]

# The same loop, as a script for another interpreter (DeepSparse's venv).
_DRIVER = r'''
import json, sys, threading, time, numpy as np
def drive(engine, inputs, callers, seconds):
    lat = [[] for _ in range(callers)]
    for _ in range(3):
        engine.run(inputs)
    stop = time.perf_counter() + seconds
    def w(i):
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            engine.run(inputs)
            lat[i].append(time.perf_counter() - t0)
    ts = [threading.Thread(target=w, args=(i,)) for i in range(callers)]
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.perf_counter() - t0
    all_lat = sorted(x for l in lat for x in l)
    return {"items_per_sec": len(all_lat) / wall,
            "p50_ms": 1e3 * all_lat[len(all_lat) // 2] if all_lat else float("nan"),
            "p90_ms": 1e3 * all_lat[int(len(all_lat) * 0.9)] if all_lat else float("nan"),
            "p99_ms": 1e3 * all_lat[min(len(all_lat) - 1, int(len(all_lat) * 0.99))] if all_lat else float("nan")}
'''
exec(_DRIVER)  # defines drive() here too

_DS_MAIN = _DRIVER + r'''
from deepsparse import Engine
from deepsparse.utils import generate_random_inputs
path, sched, ns, callers, seconds, cores = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
ns = None if ns == "None" else int(ns)
eng = Engine(path, batch_size=1, num_cores=cores, scheduler=sched, num_streams=ns)
print("RESULT", json.dumps(drive(eng, generate_random_inputs(path, 1), callers, seconds)))
'''


def _ours(path, sched, ns, callers, seconds, cores, inputs_fn):
    sys.path.insert(0, ROOT)
    from deepsparse_lite import Engine

    eng = Engine(path, batch_size=1, num_cores=cores, scheduler=sched, num_streams=ns)
    try:
        return drive(eng, inputs_fn(eng), callers, seconds)
    finally:
        eng.close()


def _deepsparse(python, path, sched, ns, callers, seconds, cores):
    env = dict(os.environ, NM_DISABLE_ANALYTICS="1", NM_BIND_THREADS_TO_CORES="1")
    res = subprocess.run([python, "-c", _DS_MAIN, path, sched, str(ns), str(callers), str(seconds), str(cores)],
                         capture_output=True, text=True, env=env, timeout=600)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": res.stderr[-500:]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,resnet50")
    p.add_argument("--callers", default="1,2,4")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cores", type=int, default=None)
    p.add_argument("--deepsparse", default=None, help="python of a venv with deepsparse==1.8.0")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    from deepsparse_lite.cpu import cpu_architecture
    from deepsparse_lite.models import sample_model_path

    cores = args.cores or cpu_architecture().num_available_physical_cores
    callers = [int(c) for c in args.callers.split(",")]
    engines = [("dsl", None)] + ([("ds18", args.deepsparse)] if args.deepsparse else [])
    rows = []
    for model in args.models.split(","):
        path = sample_model_path(model.strip())
        runs = {}
        for _ in range(args.rounds):
            for c in callers:
                for sched, ns in SCENARIOS:
                    for eng_name, py in engines:
                        if eng_name == "dsl":
                            r = _ours(path, sched, ns, c, args.seconds, cores, lambda e: e.generate_random_inputs())
                        else:
                            r = _deepsparse(py, path, sched, ns, c, args.seconds, cores)
                        runs.setdefault((eng_name, sched, c), []).append(r)
        for (eng_name, sched, c), rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            if not ok:
                rows.append({"model": model, "engine": eng_name, "scheduler": sched, "callers": c,
                             "error": rs[0]["error"]})
                continue
            med = {k: statistics.median(r[k] for r in ok) for k in ("items_per_sec", "p50_ms", "p90_ms", "p99_ms")}
            rows.append({"model": model, "engine": eng_name, "scheduler": sched, "callers": c, **med})
    print(f"{'model':<10}{'engine':<6}{'scheduler':<15}{'callers':>8}{'items/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<10}{r['engine']:<6}{r['scheduler']:<15}{r['callers']:>8}  error: {r['error'][:80]}")
            continue
        print(f"{r['model']:<10}{r['engine']:<6}{r['scheduler']:<15}{r['callers']:>8}{r['items_per_sec']:>10.1f}"
              f"{r['p50_ms']:>9.3f}{r['p90_ms']:>9.3f}{r['p99_ms']:>9.3f}")
    for model in args.models.split(","):
        def tput(s, c, e="dsl"):
            return next((r["items_per_sec"] for r in rows if r["model"] == model and r["engine"] == e
                         and r["scheduler"] == s and r["callers"] == c and "items_per_sec" in r), float("nan"))
        if 2 in callers:
            print(f"{model}: multi_stream/single_stream throughput at 2 callers = "
                  f"{tput('multi_stream', 2) / tput('single_stream', 2):.2f}x; elastic/single at 1 caller = "
                  f"{tput('elastic', 1) / tput('single_stream', 1):.2f}x; elastic/multi at {max(callers)} callers = "
                  f"{tput('elastic', max(callers)) / tput('multi_stream', max(callers)):.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
