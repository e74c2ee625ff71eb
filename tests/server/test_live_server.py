"""A real Uvicorn process (subprocess, 127.0.0.1, free port) driven over HTTP with httpx:
the seed example, errors, metrics, a bounded 8-client load run checked response by response
against the same pipeline run in process, and graceful shutdown."""
import importlib.util
import json
import os
import re
import subprocess
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.server.conftest import ROOT, ServerProcess, free_port

SEED_STUB = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"


@pytest.fixture
def tiny_config(tmp_path, tiny_text_folder):
    p = tmp_path / "config.yaml"
    p.write_text(f"num_workers: 2\nendpoints:\n  - task: sentiment-analysis\n"
                 f"    model: {tiny_text_folder}\n    scheduler: multi_stream\n"
                 f"  - task: text_classification\n    model: {tiny_text_folder}\n"
                 f"    name: top2\n    kwargs: {{top_k: 2}}\n")
    return str(p)


def test_seed_example_config_and_client(server_factory):
    """The seed's config (zoo stub, ``scheduler: multi_stream``) and client, as written
    (examples/); only the client's URL is pointed at the test's free loopback port."""
    srv = server_factory(["-m", "deepsparse_lite.server", "--config-file",
                          os.path.join(ROOT, "examples", "sentiment-analysis-config.yaml"),
                          "--host", "127.0.0.1", "--port", "{port}"], timeout=120)
    obj = {"sequences": "Sending requests to DeepSparse Server is fast and easy!"}
    resp = httpx.post(srv.url + "/v2/models/sentiment_analysis/infer", json=obj, timeout=30)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert set(out) == {"labels", "scores"} and out["labels"][0] in ("positive", "negative")
    assert 0.5 <= out["scores"][0] <= 1.0
    if importlib.util.find_spec("requests") is None:
        return
    with open(os.path.join(ROOT, "examples", "server_client.py")) as f:
        code = f.read().replace("http://0.0.0.0:5543", srv.url)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.match(r'\{"labels":\["(positive|negative)"\],"scores":\[0\.\d+\]\}', r.stdout), r.stdout


def test_task_cli_routes_errors_metrics(server_factory, tiny_text_folder):
    srv = server_factory(["-m", "deepsparse_lite.server", "--task", "sentiment-analysis",
                          "--model_path", tiny_text_folder, "--host", "127.0.0.1",
                          "--port", "{port}", "--num_workers", "2", "--log-level", "warn"])
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequences": ["a b", "c"]})
        assert r.status_code == 200 and len(r.json()["labels"]) == 2
        assert c.get("/v2/models/sentiment_analysis/ready").json() == {"status": "OK"}
        assert c.get("/v2/models/sentiment_analysis").json()["model_path"].endswith("model.onnx")
        assert c.get("/v2/health/live").json() == {"status": "OK"}
        assert c.get("/config").json()["num_workers"] == 2
        assert c.get("/", follow_redirects=False).headers["location"] == "/docs"
        assert c.get("/docs").status_code == 200
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequence": "a"})
        assert r.status_code == 422 and "sequences" in r.json()["message"]
        assert c.post("/v2/models/nope/infer", json={"sequences": "a"}).status_code == 404
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequences": "x" * (11 << 20)})
        assert r.status_code == 413
        # a request the pipeline's own validator rejects, then business as usual
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequences": []})
        assert r.status_code == 422 and "sequences must not be empty" in r.json()["message"]
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequences": "still serving"})
        assert r.status_code == 200
        m = c.get("/metrics").text
        for stage in ("pre_process", "engine_forward", "post_process", "total_inference"):
            assert (f'deepsparse_lite_prediction_latency_seconds_count{{endpoint="sentiment_analysis",'
                    f'stage="{stage}"}} 2.0') in m
        assert 'deepsparse_lite_requests_total{endpoint="sentiment_analysis",status="200"} 2.0' in m


def test_cli_refuses_clearly(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints:\n  - task: sentiment-analysis\n    model: m\n    batchsize: 4\n")
    for args, msg in [(["--config-file", str(bad)], "unknown key 'endpoints.0.batchsize'"),
                      (["--task", "x", "--integration", "openai"], "not supported"),
                      ([], "Must specify either --task or --config_file"),
                      (["--task", "sentiment-analysis", "--model_path", str(tmp_path / "none")],
                       "could not start the endpoints: ValueError: model path must exist"),
                      (["--task", "nope", "--model_path", "m"], "Unknown Pipeline task nope")]:
        r = subprocess.run([sys.executable, "-m", "deepsparse_lite.server"] + args, env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and msg in r.stderr, r.stderr


def test_load_8_clients_all_correct(server_factory, tiny_config, tiny_text_folder):
    """8 concurrent clients, 2400 requests over two endpoints: 0 failures, every response equal
    to the same pipeline's in-process answer."""
    from deepsparse_lite.pipelines import Pipeline

    srv = server_factory(["-m", "deepsparse_lite.server", "--config-file", tiny_config,
                          "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"])
    words = "fast easy slow server model request stream core cache batch token label".split()
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + i % 9)) for i in range(48)]
    p1 = Pipeline.create("sentiment-analysis", model_path=tiny_text_folder)
    p2 = Pipeline.create("text_classification", model_path=tiny_text_folder, top_k=2)
    expect = {("sentiment_analysis", t): p1(sequences=t).model_dump() for t in texts}
    expect.update({("top2", t): p2(sequences=t).model_dump() for t in texts})
    per_client = 300
    failures, mismatches = [], []

    def client(k):
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(per_client):
                name = "top2" if (i + k) % 3 == 0 else "sentiment_analysis"
                t = texts[(i * 5 + k) % len(texts)]
                try:
                    r = c.post(f"/v2/models/{name}/infer", json={"sequences": t})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                    continue
                got, want = r.json(), expect[(name, t)]
                if got["labels"] != want["labels"] or json.dumps(got["scores"]) != json.dumps(
                        want["scores"]) and not _close(got["scores"], want["scores"]):
                    mismatches.append((name, t, got, want))

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(client, range(8)))
    elapsed = time.monotonic() - t0
    assert not failures, failures[:3]
    assert not mismatches, mismatches[:3]
    assert elapsed < 80
    m = httpx.get(srv.url + "/metrics").text
    total = sum(float(line.rsplit(" ", 1)[1]) for line in m.splitlines()
                if line.startswith("deepsparse_lite_requests_total{") and 'status="200"' in line)
    assert total == 8 * per_client


def _close(a, b, tol=1e-5):
    import numpy as np
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=tol)


def test_graceful_shutdown_drains_in_flight():
    """SIGTERM while 4 slow requests are in flight: all 4 complete with 200, then it exits."""
    port = free_port()
    srv = ServerProcess([os.path.join(ROOT, "tests", "server", "serve_fake.py"), str(port)], port)
    try:
        srv.wait_ready(30)
        results = []

        def go(i):
            r = httpx.post(srv.url + "/v2/models/echo/infer",
                           json={"sequences": f"s{i}", "delay": 1.5}, timeout=30)
            results.append((r.status_code, r.json()))
        ts = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        for t in ts:
            t.join(20)
        assert sorted(results, key=lambda r: r[1]["labels"]) == [
            (200, {"labels": [f"S{i}"], "scores": [2.0]}) for i in range(4)]
        # uvicorn re-raises the SIGTERM it handled once it has drained: -15 (or 0 on older)
        assert srv.proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        srv.stop()
