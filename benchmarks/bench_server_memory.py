"""Server memory under a long run: RSS of the server process after 10k and after 100k requests.

Starts ``python -m deepsparse_lite.server`` (a real Uvicorn process on 127.0.0.1) serving the
tiny sample text classifier (bert_tiny) on two endpoints of the shared Context, then
``--clients`` keep-alive client threads post ``--requests`` requests: texts of 1 - 40 words
over both endpoints, and every 20th request a faulty one (malformed JSON, wrong field,
unknown model: 422 / 404), so the error paths are in the run too. The server's RSS
(``/proc/PID/status`` VmRSS) is sampled every ``--every`` requests. The check (issue 11):
RSS after the last request within 10% of RSS after the first 10k (exit 1 otherwise).

    python benchmarks/bench_server_memory.py [--requests 100000] [--clients 8]
                                             [--every 10000] [--json out.json]

Not a CI test: 100k requests take a few minutes on 2 cores (run it under ``nice``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_server import _free_port, _stop  # noqa: E402

WORDS = ("fast easy slow server model request stream core cache batch token label memory "
         "leak arena plan engine thread queue").split()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _request(i):
    """(path, body bytes, expected status) of request ``i``."""
    if i % 20 == 19:
        kind = (i // 20) % 3
        if kind == 0:
            return "/v2/models/sentiment_analysis/infer", b'{"sequences": "a', 422
        if kind == 1:
            return "/v2/models/top2/infer", json.dumps({"sequence": "x"}).encode(), 422
        return "/v2/models/nope/infer", json.dumps({"sequences": "x"}).encode(), 404
    text = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 40))
    name = "top2" if i % 3 == 0 else "sentiment_analysis"
    return f"/v2/models/{name}/infer", json.dumps({"sequences": text}).encode(), 200


def main(argv=None) -> int:
    import httpx

    from deepsparse_lite.pipelines.samples import sample_text_folder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--every", type=int, default=10_000, help="sample RSS every N requests")
    ap.add_argument("--baseline", type=int, default=10_000, help="compare with RSS after N")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    folder = sample_text_folder("bert_tiny", {0: "negative", 1: "positive"})
    tmp = tempfile.mkdtemp(prefix="dsl-mem-")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"num_workers: 2\nendpoints:\n  - task: sentiment-analysis\n    model: {folder}\n"
                f"  - task: text_classification\n    model: {folder}\n    name: top2\n"
                f"    kwargs: {{top_k: 2}}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "deepsparse_lite.server", "--config-file", cfg,
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start; see " + log.name)
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        rss0 = rss_bytes(proc.pid)
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "wrong_status": 0, "errors": 0}
        samples = []   # (requests done, rss bytes, seconds)
        marks = set(range(args.every, args.requests + 1, args.every)) | {args.baseline}
        t0 = time.perf_counter()

        def client():
            with httpx.Client(base_url=url, timeout=60) as c:
                while True:
                    with lock:
                        i = state["next"]
                        if i >= args.requests:
                            return
                        state["next"] += 1
                    path, body, want = _request(i)
                    try:
                        r = c.post(path, content=body, headers={"content-type": "application/json"})
                        bad = r.status_code != want
                    except httpx.HTTPError:
                        bad = None
                    with lock:
                        if bad is None:
                            state["errors"] += 1
                        elif bad:
                            state["wrong_status"] += 1
                        state["done"] += 1
                        n = state["done"]
                    if n in marks:
                        samples.append((n, rss_bytes(proc.pid), time.perf_counter() - t0))
                        print(f"  {n:>7} requests  RSS {samples[-1][1] / 2**20:7.1f} MiB  "
                              f"({samples[-1][2]:.0f} s)", flush=True)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        samples.sort()
        base = next(s for s in samples if s[0] == args.baseline)
        last = samples[-1]
        growth = last[1] / base[1] - 1
        ok = growth <= 0.10 and state["errors"] == 0 and state["wrong_status"] == 0
        report = {"requests": args.requests, "clients": args.clients, "seconds": round(elapsed, 1),
                  "requests_per_s": round(args.requests / elapsed),
                  "rss_start_mib": round(rss0 / 2**20, 1),
                  "rss_after_baseline_mib": round(base[1] / 2**20, 1),
                  "rss_after_last_mib": round(last[1] / 2**20, 1),
                  "growth_pct": round(100 * growth, 2), "within_10pct": growth <= 0.10,
                  "wrong_status": state["wrong_status"], "errors": state["errors"],
                  "samples": [(n, round(b / 2**20, 1)) for n, b, _ in samples]}
        print(json.dumps(report, indent=1))
        print(f"RSS after {args.baseline}: {base[1] / 2**20:.1f} MiB, after {last[0]}: "
              f"{last[1] / 2**20:.1f} MiB ({100 * growth:+.1f}%): "
              f"{'OK' if ok else 'FAIL'} (limit +10%)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
        return 0 if ok else 1
    finally:
        _stop(proc)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
