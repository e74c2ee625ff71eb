"""Ray Serve (two one-CPU replicas) next to one server process (a two-stream Context).

Both run the same config's one sentiment-analysis endpoint, started through the CLI:
``deepsparse_lite.server --config-file C`` with ``num_cores: 2, num_workers: 2``, then
``deepsparse_lite.server --config-file C --ray`` on a local Ray cluster (127.0.0.1) with
``num_replicas: 2, num_cpus_per_replica: 1``, each replica on a Context of one core. The
same load drives each: ``--clients`` keep-alive HTTP clients posting the seed request for
``--duration`` seconds. Reports req/s, p50 / p99 and failures (a non-200 or an answer that
differs from the in-process pipeline's), and for Ray how many requests each replica served
(the ``x-deepsparse-lite-replica`` header).

    python benchmarks/bench_ray.py [--model STUB_OR_FOLDER] [--clients 8] [--duration 15]
                                   [--json out.json]

Default model: the seed example's stub (BERT-base, 90% pruned, INT8), as bench_server.py.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_server import STUB, TEXT, _drive, _free_port, _stop  # noqa: E402

HEADER = "x-deepsparse-lite-replica"


def _serve(cfg_text, extra_args, clients, duration, expect):
    """Start the CLI on ``cfg_text``, drive it, stop it: (result, requests per replica)."""
    import httpx

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write(cfg_text)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen([sys.executable, "-m", "deepsparse_lite.server", "--config-file",
                                 cfg, "--host", "127.0.0.1", "--port", str(port),
                                 "--log-level", "warning"] + extra_args, env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 300
            while True:
                try:
                    r = httpx.get(url + "/v2/models/sentiment_analysis/ready", timeout=1)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"{' '.join(extra_args) or 'server'} did not start")
                time.sleep(0.2)
            conns = [httpx.Client(base_url=url, timeout=60) for _ in range(clients)]
            served = collections.Counter()
            body = {"sequences": TEXT}

            def call(k):
                try:
                    r = conns[k].post("/v2/models/sentiment_analysis/infer", json=body)
                except httpx.HTTPError:
                    return False
                served[r.headers.get(HEADER, "this process").split(" cpus=")[0]] += 1
                return r.status_code == 200 and r.json()["labels"] == expect["labels"] and \
                    abs(r.json()["scores"][0] - expect["scores"][0]) < 1e-6
            for _ in range(2):      # warm every connection (and both replicas)
                for k in range(clients):
                    call(k)
            served.clear()
            res = _drive(clients, duration, call)
            for c in conns:
                c.close()
        finally:
            _stop(proc, timeout=60)
    return res, dict(served)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=STUB)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from deepsparse_lite.pipelines import Pipeline

    with Pipeline.create("sentiment-analysis", model_path=args.model) as ref:
        expect = ref(sequences=TEXT).model_dump()
    ep = f"endpoints:\n  - task: sentiment-analysis\n    model: {args.model}\n"
    server, _ = _serve("num_cores: 2\nnum_workers: 2\n" + ep, [], args.clients, args.duration,
                       expect)
    ray, served = _serve(ep + "    num_replicas: 2\n    num_cpus_per_replica: 1\n", ["--ray"],
                         args.clients, args.duration, expect)
    res = {"model": args.model, "clients": args.clients, "duration_s": args.duration,
           "server_2_streams": server, "ray_2_replicas": ray, "ray_served_by": served,
           "ray_vs_server": round(ray["items_per_sec"] / server["items_per_sec"], 3)}
    print(f"model {args.model}  ({args.clients} concurrent clients, {args.duration:g} s each)")
    for k, label in (("server_2_streams", "server, 1 process, Context 2 cores / 2 streams"),
                     ("ray_2_replicas", "Ray Serve, 2 replicas x Context 1 core")):
        r = res[k]
        print(f"  {label:48s} {r['items_per_sec']:9.2f} req/s   p50 {r['p50_ms']:8.2f} ms   "
              f"p99 {r['p99_ms']:8.2f} ms   {r['requests']} requests, {r['failed']} failed")
    print(f"  Ray requests per replica: {served}")
    print(f"  Ray / server throughput: {res['ray_vs_server']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if server["failed"] == 0 and ray["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
