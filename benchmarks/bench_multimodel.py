"""Several models on one machine under mixed load: one shared Context against one engine
per model, onnxruntime and DeepSparse.

    python benchmarks/bench_multimodel.py [--models resnet50,bert_base,mlp] [--callers 2]
        [--seconds 8] [--streams 2] [--configs dsl_shared,dsl_nopause,dsl_separate,ort,ds_shared,ds_separate]
        [--deepsparse-python PY] [--json OUT] [--timeline OUT.png]

Each configuration runs in its own subprocess (this script re-invoked with ``--worker``; the
worker needs only the standard library, numpy and the engine it drives, so it also runs under
DeepSparse's interpreter). In a worker every model gets ``--callers`` Python threads calling
``run`` on batch 1 in a loop for ``--seconds``; it reports per model items/s, p50 and p99
latency, and the process's peak RSS.

=================  ==========================================================================
dsl_shared         one ``Context(num_streams=S)``, a ``MultiModelEngine`` per model (a short
                   request runs inside the pause of a long one: ``DSL_PREEMPT``, default 4)
dsl_nopause        the same with ``DSL_PREEMPT=0`` (every request waits its turn in the queue)
dsl_separate       one ``Engine(path, batch_size=1)`` per model (each its own Context on every core)
ort                one onnxruntime session per model (default threads), shared by its callers
ds_shared          DeepSparse 1.8: one ``Context(num_streams=S)``, a ``MultiModelEngine`` per model
ds_separate        DeepSparse 1.8: one ``Engine`` per model
dsl_alone / ds_alone  the last model alone on a shared Context: the baseline of its p99
=================  ==========================================================================

``--timeline`` draws what each core did during the ``dsl_shared`` run, coloured by model.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ["dsl_shared", "dsl_nopause", "dsl_separate", "ort", "ds_shared", "ds_separate",
           "dsl_alone", "ds_alone"]


# ---- worker (standard library + numpy + one engine) -------------------------------------
def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_inputs(npz_path):
    import numpy as np
    with np.load(npz_path) as z:
        return [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]


def _drive(runners, callers, seconds):
    """runners: {name: fn(inputs)}, inputs per name. Returns per-name stats."""
    import threading
    import numpy as np
    lat = {name: [] for name in runners}
    stop = threading.Event()
    start = threading.Barrier(len(runners) * callers + 1)

    def loop(name):
        fn, inp = runners[name]
        mine = []
        start.wait()
        while not stop.is_set():
            t = time.perf_counter()
            fn(inp)
            mine.append(time.perf_counter() - t)
        lat[name].extend(mine)

    threads = [threading.Thread(target=loop, args=(n,)) for n in runners for _ in range(callers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out = {}
    for name, xs in lat.items():
        a = np.asarray(xs) * 1e3
        out[name] = {"items_s": len(xs) / wall, "n": len(xs),
                     "p50_ms": float(np.percentile(a, 50)) if len(a) else None,
                     "p99_ms": float(np.percentile(a, 99)) if len(a) else None}
    return out


def worker(spec):
    cfg, models, callers, seconds, streams = (spec["config"], spec["models"], spec["callers"],
                                              spec["seconds"], spec["streams"])
    inputs = {m["name"]: _load_inputs(m["inputs"]) for m in models}
    closers = []
    trace = None
    ctx = None
    if cfg.startswith("dsl") or cfg.startswith("ds_"):
        if cfg.startswith("dsl"):
            import deepsparse_lite as lib
        else:
            os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
            import deepsparse as lib
        runners = {}
        if cfg.endswith("separate"):
            for m in models:
                e = lib.Engine(m["path"], batch_size=1)
                runners[m["name"]] = (e.run, inputs[m["name"]])
                closers.append(e)
        else:
            ctx = lib.Context(num_streams=streams)
            for m in models:
                e = lib.MultiModelEngine(m["path"], batch_size=1, context=ctx)
                runners[m["name"]] = (e.run, inputs[m["name"]])
                closers.append(e)
    elif cfg == "ort":
        import onnxruntime as ort
        runners = {}
        for m in models:
            s = ort.InferenceSession(m["path"], providers=["CPUExecutionProvider"])
            names = [i.name for i in s.get_inputs()]
            runners[m["name"]] = ((lambda inp, s=s, names=names: s.run(None, dict(zip(names, inp)))),
                                  inputs[m["name"]])
    else:
        raise SystemExit(f"unknown config {cfg}")
    for name, (fn, inp) in runners.items():  # compile / warm every model once
        fn(inp)
        fn(inp)
    if spec.get("trace") and ctx is not None and hasattr(ctx, "start_trace"):
        ctx.start_trace()
    res = _drive(runners, callers, seconds)
    if spec.get("trace") and ctx is not None and hasattr(ctx, "stop_trace"):
        keys = {}
        for e, m in zip(closers, models):
            keys[getattr(e, "_key", None)] = m["name"]
        trace = [dict(r, model=keys.get(r["engine"], str(r["engine"]))) for r in ctx.stop_trace()]
    out = {"config": cfg, "models": res, "peak_rss_mb": _peak_rss_mb()}
    if ctx is not None:
        try:
            out["stats"] = dict(ctx.stats)
            mem = ctx.memory()
            out["arena_mb"] = mem["arena_total"] / 2 ** 20
        except Exception:  # DeepSparse's Context has neither
            pass
    if trace is not None:
        out["trace"] = trace
    for e in closers:
        try:
            e.close() if hasattr(e, "close") else None
        except Exception:
            pass
    return out


# ---- driver -----------------------------------------------------------------------------
def _deepsparse_python(arg):
    for cand in (arg, os.environ.get("DEEPSPARSE_PYTHON"), "/work/venv-ds/bin/python"):
        if cand and os.path.exists(cand):
            return cand
    return None


def _prepare(names, tmp):
    sys.path.insert(0, os.path.dirname(HERE))
    import numpy as np
    from deepsparse_lite.models.registry import sample_inputs, sample_model_path
    out = []
    for n in names:
        path = sample_model_path(n, batch_size=1)
        inp = sample_inputs(n, batch_size=1)
        npz = os.path.join(tmp, f"{n}.npz")
        np.savez(npz, **{f"in_{i}": x for i, x in enumerate(inp)})
        out.append({"name": n, "path": str(path), "inputs": npz})
    return out


def _run_worker(python, spec, env_extra, timeout):
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([python, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        return {"config": spec["config"], "error": (p.stderr or p.stdout).strip().splitlines()[-1:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _timeline(trace, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not trace:
        return
    t0 = min(r["t0"] for r in trace)
    t_end = t0 + min(2.0, max(r["t1"] for r in trace) - t0)
    models = sorted({r["model"] for r in trace})
    colours = {m: c for m, c in zip(models, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])}
    cpus = sorted({c for r in trace for c in r["cpus"]})
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.9 * len(cpus)))
    for r in sorted(trace, key=lambda r: r["t1"] - r["t0"], reverse=True):  # short bars on top
        if r["t0"] > t_end:
            continue
        for c in r["cpus"]:
            y = cpus.index(c)
            ax.barh(y, (min(r["t1"], t_end) - r["t0"]) * 1e3, left=(r["t0"] - t0) * 1e3, height=0.8,
                    color=colours[r["model"]], linewidth=0)
    ax.set_yticks(range(len(cpus)), [f"cpu {c}" for c in cpus])
    ax.set_xlabel("ms")
    ax.set_title(title)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=colours[m], label=m) for m in models], loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet50,bert_base,mlp")
    ap.add_argument("--callers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--deepsparse-python", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--timeline", default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return 0
    names = [n for n in a.models.split(",") if n]
    ds_py = _deepsparse_python(a.deepsparse_python)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        models = _prepare(names, tmp)
        for cfg in [c for c in a.configs.split(",") if c]:
            python, env = sys.executable, {}
            if cfg.startswith("ds_"):
                if not ds_py:
                    print(f"{cfg}: skipped (no DeepSparse interpreter; --deepsparse-python)")
                    continue
                python = ds_py
            if cfg == "dsl_nopause":
                env["DSL_PREEMPT"] = "0"
            use = models[-1:] if cfg.endswith("alone") else models
            spec = {"config": cfg.replace("_alone", "_shared").replace("dsl_nopause", "dsl_shared"),
                    "models": use, "callers": a.callers, "seconds": a.seconds, "streams": a.streams,
                    "trace": bool(a.timeline) and cfg == "dsl_shared"}
            t = time.perf_counter()
            r = _run_worker(python, spec, env, a.timeout)
            r["config"] = cfg
            results.append(r)
            print(f"[{cfg}] done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    _print(results, names)
    trace = next((r.pop("trace") for r in results if r.get("trace")), None)
    if a.timeline and trace:
        _timeline(trace, a.timeline, f"one Context, {a.streams} streams: {', '.join(names)}, "
                                     f"{a.callers} callers each, batch 1")
        print(f"timeline: {a.timeline}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"models": names, "callers": a.callers, "seconds": a.seconds,
                       "streams": a.streams, "results": results}, f, indent=1)
    return 0


def _print(results, names):
    head = ["config"] + [f"{n} it/s | p50 | p99 ms" for n in names] + ["peak RSS MB", "notes"]
    print("  ".join(head))
    for r in results:
        if "error" in r:
            print(f"{r['config']:<14} error: {r['error']}")
            continue
        cells = [f"{r['config']:<14}"]
        for n in names:
            m = r["models"].get(n)
            cells.append("-" if not m else f"{m['items_s']:9.1f} | {m['p50_ms']:7.2f} | {m['p99_ms']:7.2f}")
        cells.append(f"{r['peak_rss_mb']:8.0f}")
        notes = []
        if "stats" in r:
            notes.append(f"nested {r['stats'].get('nested', 0)}")
        if "arena_mb" in r:
            notes.append(f"arenas {r['arena_mb']:.1f} MB")
        cells.append(", ".join(notes))
        print("  ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
