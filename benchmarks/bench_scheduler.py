"""Scheduler benchmark: single_stream vs multi_stream vs elastic under 1..N concurrent callers.

Each scenario runs ``callers`` Python threads that call ``engine.run`` in a loop for
``--seconds``; reported: items/s over wall clock and latency percentiles. All scenarios run
in one process, one after another, rounds interleaved so machine noise hits all alike;
the table gives medians over rounds. ``--deepsparse PYTHON`` runs the same scenarios with
DeepSparse 1.8 from its own interpreter (its venv pins old onnx/numpy) on the same ONNX file.

    python benchmarks/bench_scheduler.py --models mlp,resnet50 --callers 1,2,4

``--timeline FILE.png`` draws what each core did over ``--timeline-seconds`` of load, for
single_stream, multi_stream (one stream per core) and elastic, one panel each on one time
axis: one lane per core, one bar per request on every core it ran on, coloured by the caller
thread that sent it (the seed documents' single-stream and multi-stream diagrams, drawn from
``Context.start_trace`` records). ``--timeline-callers`` threads (default: one per core) call
``engine.run`` on ``--timeline-model`` (default resnet50: requests of tens to hundreds of ms,
visible bars over 1 s; zoom on the MLP's sub-millisecond requests with ``--timeline-seconds 0.02``). With
``--timeline`` the table is skipped unless ``--models`` is given too; ``--json PATH`` then
receives the trace records (or, when the table runs as well, the table rows, and the trace
goes to ``PATH`` with ``.timeline.json`` instead of ``.json``). Needs matplotlib.

    python benchmarks/bench_scheduler.py --timeline /tmp/timeline.png
    python benchmarks/bench_scheduler.py --timeline /tmp/mlp.png --timeline-model mlp --timeline-seconds 0.02
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

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


# ---------------------------------------------------------------------------------------
# --timeline: what each core did, per scheduler
# ---------------------------------------------------------------------------------------

def _trace_one(path, sched, ns, callers, seconds, cores, warmup):
    """Run ``callers`` threads on one engine, trace ``seconds`` of it (after ``warmup``).

    Returns the scheduler's panel: the Context's trace records (times relative to the
    window start, in seconds; ``caller`` renumbered 0..callers-1), the CPUs of its streams,
    items/s (requests finished in the window / its length) and caller-side latency.
    """
    sys.path.insert(0, ROOT)
    from deepsparse_lite import Engine

    eng = Engine(path, batch_size=1, num_cores=cores, scheduler=sched, num_streams=ns)
    ctx = eng.context
    try:
        inputs = eng.generate_random_inputs()
        for _ in range(2):
            eng.run(inputs)
        stop = threading.Event()
        calls = [0] * callers  # per caller: engine.run calls begun
        spans = [[] for _ in range(callers)]  # per caller: (submit, done) perf_counter
        idents = [None] * callers
        ready = threading.Barrier(callers + 1)

        def w(i):
            idents[i] = threading.get_ident()
            ready.wait()
            out = spans[i]
            while not stop.is_set():
                calls[i] += 1
                t0 = time.perf_counter()
                eng.run(inputs)
                out.append((t0, time.perf_counter()))

        ts = [threading.Thread(target=w, args=(i,), daemon=True) for i in range(callers)]
        for th in ts:
            th.start()
        ready.wait()
        time.sleep(warmup)
        # a request is traced when it is sent after start_trace and recorded when it ends:
        # the window opens once every caller has sent a new one (so every request running
        # at its start is traced, drawn clipped) and the trace stops once the callers are
        # joined (so every request running at its end is in the records)
        ctx.start_trace()
        sent = list(calls)
        deadline = time.perf_counter() + 60.0
        while any(c <= s for c, s in zip(calls, sent)) and time.perf_counter() < deadline:
            time.sleep(0.0005)
        w0 = time.perf_counter()
        time.sleep(seconds)
        w1 = time.perf_counter()
        stop.set()
        for th in ts:
            th.join()
        recs = ctx.stop_trace()
        stream_cpus = [tuple(c) for c in ctx.stream_cpus]
    finally:
        eng.close()
    who = {ident: i for i, ident in enumerate(idents)}
    out = []
    for r in recs:
        if r["t1"] < w0 or r["t0"] > w1:
            continue
        out.append({"t0": r["t0"] - w0, "t1": r["t1"] - w0, "cpus": list(r["cpus"]),
                    "caller": who.get(r["caller"], -1), "stream": r["stream"], "engine": r["engine"]})
    out.sort(key=lambda r: r["t0"])
    lat = sorted(d - s for sp in spans for s, d in sp if w0 <= d <= w1)
    run = sorted(r["t1"] - r["t0"] for r in out if 0 <= r["t1"] <= w1 - w0)
    return {"scheduler": sched, "num_streams": len(stream_cpus), "stream_cpus": stream_cpus,
            "callers": callers, "seconds": w1 - w0, "records": out,
            "items_per_sec": len(lat) / (w1 - w0),
            "p50_ms": 1e3 * statistics.median(lat) if lat else float("nan"),
            "run_p50_ms": 1e3 * statistics.median(run) if run else float("nan")}


def _plot_timeline(panels, model, png_path, dpi=120):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError as e:
        raise SystemExit(f"--timeline needs matplotlib ({e}): pip install matplotlib") from None

    cpus = sorted({c for p in panels for g in p["stream_cpus"] for c in g}
                  | {c for p in panels for r in p["records"] for c in r["cpus"]})
    lane = {c: i for i, c in enumerate(cpus)}
    ncallers = max(p["callers"] for p in panels)
    cmap = plt.get_cmap("tab10" if ncallers <= 10 else "tab20")
    colours = [cmap(i % cmap.N) for i in range(ncallers)]
    span_ms = 1e3 * max(p["seconds"] for p in panels)
    lane_in = max(0.15, min(0.75, 8.0 / len(cpus)))  # inches per lane: many cores stay on a page
    legend_rows = -(-ncallers // 8)
    fig_h = 0.9 + 0.25 * legend_rows + lane_in * len(cpus) * len(panels) + 0.9 * len(panels)
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False, figsize=(13, fig_h))
    for ax, p in zip(axes[:, 0], panels):
        w_ms = 1e3 * p["seconds"]
        per_lane = [[[] for _ in range(ncallers + 1)] for _ in cpus]  # lane -> caller -> bars
        busy = [0.0] * len(cpus)
        for r in p["records"]:
            a, b = max(0.0, 1e3 * r["t0"]), min(w_ms, 1e3 * r["t1"])
            if b <= a:
                continue
            for c in r["cpus"]:
                per_lane[lane[c]][r["caller"]].append((a, b - a))
                busy[lane[c]] += b - a
        nbars = max(1, max(sum(len(x) for x in L) for L in per_lane))
        # thin white separators between back-to-back requests while bars are wide enough
        lw = 0.8 if span_ms / nbars > 0.004 * span_ms else 0.0
        for li, L in enumerate(per_lane):
            for ci, bars in enumerate(L):
                if bars:
                    colour = colours[ci] if ci < ncallers else (0.5, 0.5, 0.5, 1.0)
                    ax.broken_barh(bars, (li - 0.38, 0.76), facecolors=colour,
                                   edgecolors="white", linewidth=lw)
                    for x, wd in bars:  # name the caller inside bars wide enough to hold it
                        if wd > 0.03 * span_ms:
                            ax.text(x + wd / 2, li, f"c{ci}" if ci < ncallers else "?", ha="center",
                                    va="center", color="white", fontsize=8, clip_on=True)
        ax.set_yticks(range(len(cpus)))
        ax.set_yticklabels([f"CPU {c}\n{100 * busy[i] / w_ms:.0f}% busy" for i, c in enumerate(cpus)],
                           fontsize=8)
        ax.set_ylim(len(cpus) - 0.5, -0.5)
        ax.set_xlim(0, span_ms)
        if w_ms < span_ms:  # this panel's window ended earlier (sleep overshoots differ)
            ax.axvspan(w_ms, span_ms, color="0.92", zorder=0)
        ax.grid(axis="x", alpha=0.3)
        if len(p["stream_cpus"]) <= 6:
            streams = "  ".join("s%d={%s}" % (i, ",".join(map(str, g))) for i, g in enumerate(p["stream_cpus"]))
        else:
            streams = "of %s CPU(s)" % "/".join(sorted({str(len(g)) for g in p["stream_cpus"]}, key=int))
        ax.set_title(f"{p['scheduler']}  —  {p['num_streams']} stream(s): {streams}   |   "
                     f"{p['items_per_sec']:.1f} items/s,  median latency {p['p50_ms']:.2f} ms "
                     f"(run {p['run_p50_ms']:.2f} ms),  {len(p['records'])} requests",
                     fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time from window start (ms)")
    handles = [Patch(facecolor=colours[i], label=f"caller {i}") for i in range(ncallers)]
    fig.suptitle(f"{model}, batch 1, {ncallers} caller thread(s): one lane per core, one bar per "
                 f"request on every core it ran on, coloured by caller", fontsize=11, x=0.01,
                 y=1 - 0.12 / fig_h, ha="left", va="top")
    below = ncallers > 4  # a few callers fit on the title's line, more get rows of their own
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1, 1 - (0.4 if below else 0.05) / fig_h),
               ncol=min(ncallers, 8), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.45 + 0.25 * legend_rows if below else 0.25) / fig_h))
    fig.savefig(png_path, dpi=dpi)
    plt.close(fig)


def timeline(png_path, model="resnet50", seconds=1.0, callers=None, cores=None, warmup=0.3,
             json_path=None, schedulers=("single_stream", "multi_stream", "elastic")):
    """Trace ``seconds`` of ``callers`` threads calling ``engine.run`` under each scheduler
    (multi_stream: one stream per core), draw the timeline into ``png_path``; returns
    ``{"model", "cores", "panels": [{"scheduler", "records", "items_per_sec", ...}]}``."""
    sys.path.insert(0, ROOT)
    from deepsparse_lite.cpu import cpu_architecture
    from deepsparse_lite.models import sample_model_path

    cores = cores or cpu_architecture().num_available_physical_cores
    callers = callers or cores
    path = model if os.path.exists(model) else sample_model_path(model)
    panels = [_trace_one(path, s, cores if s == "multi_stream" else None, callers, seconds, cores, warmup)
              for s in schedulers]
    _plot_timeline(panels, os.path.basename(model), png_path)
    res = {"model": model, "cores": cores, "callers": callers, "panels": panels}
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=None, help="comma-separated sample models or ONNX paths "
                   "(default mlp,resnet50; with --timeline the table runs only if given)")
    p.add_argument("--callers", default="1,2,4")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cores", type=int, default=None)
    p.add_argument("--deepsparse", default=None, help="python of a venv with deepsparse==1.8.0")
    p.add_argument("--json", default=None, help="write the table rows (or, with --timeline alone, "
                   "the trace records) to this file")
    p.add_argument("--timeline", default=None, metavar="FILE.png",
                   help="draw each core's requests over --timeline-seconds for every scheduler")
    p.add_argument("--timeline-model", default="resnet50")
    p.add_argument("--timeline-seconds", type=float, default=1.0)
    p.add_argument("--timeline-callers", type=int, default=None, help="default: one per core")
    args = p.parse_args(argv)
    if args.timeline:
        trace_json = None
        if args.json:
            trace_json = (args.json if args.models is None
                          else os.path.splitext(args.json)[0] + ".timeline.json")
        res = timeline(args.timeline, args.timeline_model, args.timeline_seconds,
                       args.timeline_callers, args.cores, json_path=trace_json)
        for pn in res["panels"]:
            print(f"timeline {res['model']:<10}{pn['scheduler']:<15}{len(pn['records']):>6} requests"
                  f"{pn['items_per_sec']:>10.1f} items/s  p50 {pn['p50_ms']:.3f} ms")
        print(f"timeline -> {args.timeline}" + (f" (trace: {trace_json})" if trace_json else ""))
        if args.models is None:
            return
    args.models = args.models or "mlp,resnet50"
    sys.path.insert(0, ROOT)
    from deepsparse_lite.cpu import cpu_architecture
    from deepsparse_lite.models import sample_model_path

    cores = args.cores or cpu_architecture().num_available_physical_cores
    callers = [int(c) for c in args.callers.split(",")]
    engines = [("dsl", None)] + ([("ds18", args.deepsparse)] if args.deepsparse else [])
    rows = []
    for model in args.models.split(","):
        path = model.strip() if os.path.exists(model.strip()) else sample_model_path(model.strip())
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
    print(f"{'model':<10}{'engine':<7}{'scheduler':<15}{'callers':>8}{'items/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<10}{r['engine']:<7}{r['scheduler']:<15}{r['callers']:>8}  error: {r['error'][:80]}")
            continue
        print(f"{r['model']:<10}{r['engine']:<7}{r['scheduler']:<15}{r['callers']:>8}{r['items_per_sec']:>10.1f}"
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
