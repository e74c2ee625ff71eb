"""Server throughput and latency: 8 concurrent HTTP clients on loopback vs the engine alone.

Starts ``python -m deepsparse_lite.server`` (a real Uvicorn process) serving one
sentiment-analysis endpoint on the shared Context, then runs ``--clients`` client threads
(each a keep-alive ``httpx.Client``) posting the seed request for ``--duration`` seconds.
Reports requests/s, p50 / p99 latency and the failed-request count (any non-200 or a
response that differs from the in-process pipeline's). Next to it: the engine's own
throughput on the same model and Context shape (``MultiModelEngine``, ``--clients`` Python
threads calling ``run`` on the pre-tokenised arrays), so the gap is the cost of HTTP, JSON,
pydantic, tokenisation and post-processing.

    python benchmarks/bench_server.py [--model STUB_OR_FOLDER] [--clients 8] [--duration 15]
                                      [--num-workers N] [--num-cores N] [--json out.json]

Default model: the seed example's stub (BERT-base, 90% pruned, INT8, a local sample with
synthetic weights), sequence length 128.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STUB = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
TEXT = "Sending requests to DeepSparse Server is fast and easy!"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def _stop(proc, timeout=30):
    """SIGTERM a server process (its graceful drain), then kill it if it does not exit."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _drive(clients, duration, call):
    """``clients`` threads calling ``call()`` (-> ok: bool) until ``duration`` s pass."""
    lat, fails = [[] for _ in range(clients)], [0] * clients
    stop = time.perf_counter() + duration
    barrier = threading.Barrier(clients + 1)

    def worker(k):
        barrier.wait()
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            ok = call(k)
            lat[k].append(time.perf_counter() - t0)
            if not ok:
                fails[k] += 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    all_lat = [x for row in lat for x in row]
    return {"requests": len(all_lat), "failed": sum(fails), "seconds": round(wall, 3),
            "items_per_sec": round(len(all_lat) / wall, 2),
            "p50_ms": round(1e3 * _pct(all_lat, 50), 3), "p99_ms": round(1e3 * _pct(all_lat, 99), 3),
            "mean_ms": round(1e3 * statistics.fmean(all_lat), 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=STUB)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--num-workers", type=int, default=None, help="streams of the shared Context")
    ap.add_argument("--num-cores", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import httpx

    from deepsparse_lite import Context, MultiModelEngine
    from deepsparse_lite.pipelines import Pipeline

    ctx = Context(num_cores=args.num_cores, num_streams=args.num_workers)
    ref = Pipeline.create("sentiment-analysis", model_path=args.model, context=ctx)
    expect = ref(sequences=TEXT).model_dump()
    arrays = ref.process_inputs(ref.parse_inputs(sequences=TEXT))
    engine = MultiModelEngine(ref.engine.model_path, 1, ctx)
    for _ in range(3):
        engine.run(arrays)
    eng = _drive(args.clients, args.duration, lambda k: bool(engine.run(arrays)))
    eng.update(num_cores=ctx.num_cores, num_streams=ctx.num_streams)
    del engine, ref

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write(f"num_cores: {json.dumps(args.num_cores)}\nnum_workers: "
                    f"{json.dumps(args.num_workers)}\nendpoints:\n  - task: sentiment-analysis\n"
                    f"    model: {args.model}\n")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen([sys.executable, "-m", "deepsparse_lite.server", "--config-file",
                                 cfg, "--host", "127.0.0.1", "--port", str(port),
                                 "--log-level", "warning"], env=env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 300
            while True:
                try:
                    if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            clients = [httpx.Client(base_url=url, timeout=60) for _ in range(args.clients)]
            body = {"sequences": TEXT}

            def call(k):
                try:
                    r = clients[k].post("/v2/models/sentiment_analysis/infer", json=body)
                except httpx.HTTPError:
                    return False
                return r.status_code == 200 and r.json()["labels"] == expect["labels"] and \
                    abs(r.json()["scores"][0] - expect["scores"][0]) < 1e-6
            for k in range(args.clients):
                call(k)
            srv = _drive(args.clients, args.duration, call)
            for c in clients:
                c.close()
        finally:
            _stop(proc)
    res = {"model": args.model, "clients": args.clients, "engine": eng, "server": srv,
           "server_vs_engine": round(srv["items_per_sec"] / eng["items_per_sec"], 3)}
    print(f"model {args.model}  ({args.clients} concurrent clients, {args.duration:g} s each, "
          f"Context num_cores={eng['num_cores']} num_streams={eng['num_streams']})")
    for k in ("engine", "server"):
        r = res[k]
        print(f"  {k:7s} {r['items_per_sec']:9.2f} req/s   p50 {r['p50_ms']:8.2f} ms   "
              f"p99 {r['p99_ms']:8.2f} ms   {r['requests']} requests, {r['failed']} failed")
    print(f"  server / engine throughput: {res['server_vs_engine']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if srv["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
