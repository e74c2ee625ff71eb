"""Routes and error handling of the app, in process (FastAPI TestClient, fake pipelines)."""
import threading

import pytest
from fastapi.testclient import TestClient

from tests.server.fake_pipelines import echo_app


@pytest.fixture
def client():
    app, pipes = echo_app(max_request_body_bytes=2048)
    with TestClient(app) as c:
        c.pipes = pipes
        yield c


def test_infer_and_routes(client):
    r = client.post("/v2/models/echo/infer", json={"sequences": "abc"})
    assert r.status_code == 200 and r.json() == {"labels": ["ABC"], "scores": [3.0]}
    r = client.post("/v2/models/a/b/infer", json={"sequences": ["x", "yz"]})
    assert r.json() == {"labels": ["X", "YZ"], "scores": [1.0, 2.0]}
    assert client.get("/v2/models/echo/ready").json() == {"status": "OK"}
    assert client.get("/v2/models/a/b/ready").json() == {"status": "OK"}
    meta = client.get("/v2/models/echo").json()
    assert meta["model_path"] == "/fake/model.onnx" and meta["task"] == "echo"
    assert meta["input_schema"]["title"] == "EchoInput"
    assert client.get("/v2/health/ready").json() == {"status": "OK"}
    assert client.get("/v2/health/live").json() == {"status": "OK"}
    cfg = client.get("/config").json()
    assert [e["name"] for e in cfg["endpoints"]] == ["echo", "echo-1"]
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/docs"
    assert client.get("/docs").status_code == 200
    assert "/v2/models/{name}/infer" in client.get("/openapi.json").text


def test_errors_and_server_keeps_serving(client):
    r = client.post("/v2/models/nope/infer", json={"sequences": "a"})
    assert r.status_code == 404 and "nope" in r.json()["message"]
    assert client.get("/v2/models/nope/ready").status_code == 404
    assert client.get("/v2/models/nope").status_code == 404
    r = client.post("/v2/models/echo/infer", json={"sequence": "a"})
    assert r.status_code == 422 and "sequences" in r.json()["message"]
    assert r.json()["detail"][0]["loc"] == ["sequences"]
    r = client.post("/v2/models/echo/infer", json={"sequences": 5})
    assert r.status_code == 422 and "sequences" in r.json()["message"]
    r = client.post("/v2/models/echo/infer", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "InvalidJSON"
    r = client.post("/v2/models/echo/infer", json=[1, 2])
    assert r.status_code == 422
    r = client.post("/v2/models/echo/infer", json={"sequences": "x" * 4000})
    assert r.status_code == 413 and "max_request_body_bytes" in r.json()["message"]

    def chunks():
        yield b'{"sequences": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'
    r = client.post("/v2/models/echo/infer", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v2/models/echo/infer", json={"sequences": "a", "fail": True})
    assert r.status_code == 500
    assert r.json() == {"error": "RuntimeError", "message": "pipeline exploded on purpose"}
    r = client.post("/v2/models/echo/infer", json={"sequences": "ok"})
    assert r.status_code == 200 and r.json()["labels"] == ["OK"]


def test_metrics(client):
    client.post("/v2/models/echo/infer", json={"sequences": "a"})
    client.post("/v2/models/echo/infer", json={"sequences": "a", "fail": True})
    text = client.get("/metrics").text
    assert 'deepsparse_lite_requests_total{endpoint="echo",status="200"} 1.0' in text
    assert 'deepsparse_lite_requests_total{endpoint="echo",status="500"} 1.0' in text
    # the fake pipeline exposes no stages: total only
    assert 'deepsparse_lite_prediction_latency_seconds_count{endpoint="echo",stage="total_inference"} 1.0' in text
    assert "deepsparse_lite_in_flight_requests" in text and "deepsparse_lite_queue_depth" in text


def test_requests_run_off_the_event_loop(client):
    """Concurrent requests overlap in the pipeline: inference is not on the event loop."""
    pipe = client.pipes["echo"][1]
    results = []

    def go():
        results.append(client.post("/v2/models/echo/infer",
                                   json={"sequences": "a", "delay": 0.3}).status_code)
    ts = [threading.Thread(target=go) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert results == [200] * 4
    assert pipe.max_active >= 2


def test_shared_context_and_own_engine(tiny_text_folder):
    """Endpoints without scheduler / num_streams share the server's Context (MultiModelEngine);
    one that sets them gets its own engine with those settings."""
    from deepsparse_lite.engine import MultiModelEngine
    from deepsparse_lite.server.app import build_pipelines
    from deepsparse_lite.server.config import load_config

    cfg = load_config({"num_workers": 2, "endpoints": [
        {"task": "sentiment-analysis", "model": tiny_text_folder},
        {"task": "text_classification", "model": tiny_text_folder, "name": "b", "batch_size": 2},
        {"task": "text_classification", "model": tiny_text_folder, "name": "own",
         "scheduler": "multi_stream", "num_streams": 2}]})
    ctx, pipes = build_pipelines(cfg)
    a, b, own = (pipes[n][1] for n in ("sentiment_analysis", "b", "own"))
    assert isinstance(a.engine, MultiModelEngine) and isinstance(b.engine, MultiModelEngine)
    assert ctx.num_streams == 2 and b.engine.batch_size == 2
    assert not isinstance(own.engine, MultiModelEngine)
    assert str(own.engine.scheduler) == "Scheduler.multi_stream" and own.engine.num_streams == 2
    assert a(sequences="x").model_dump() == own(sequences="x").model_dump()


def test_openapi_documents_the_infer_body(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["title"] == "EchoInput"
