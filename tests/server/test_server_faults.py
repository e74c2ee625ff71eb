"""The server under load and faults (issue 11): a real Uvicorn subprocess on 127.0.0.1,
good requests checked one by one against the pipeline run in process while malformed,
oversized, slow and abruptly closed requests are mixed in; schemathesis over the server's own
OpenAPI schema; SIGTERM with requests in flight. Bounded in count and time; latencies are
printed, never asserted."""
import json
import os
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.server.conftest import ROOT, ServerProcess, free_port

BODY_LIMIT = 64 * 1024
WORDS = "fast easy slow server model request stream core cache batch token label".split()
TEXTS = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 9)) for i in range(32)]


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory, tiny_text_folder):
    """The text-classification server: two endpoints on the shared Context, 64 KiB bodies."""
    p = tmp_path_factory.mktemp("faults") / "config.yaml"
    p.write_text(f"num_workers: 2\nmax_request_body_bytes: {BODY_LIMIT}\nendpoints:\n"
                 f"  - task: sentiment-analysis\n    model: {tiny_text_folder}\n"
                 f"  - task: text_classification\n    model: {tiny_text_folder}\n"
                 f"    name: top2\n    kwargs: {{top_k: 2}}\n")
    port = free_port()
    srv = ServerProcess(["-m", "deepsparse_lite.server", "--config-file", str(p), "--host",
                         "127.0.0.1", "--port", str(port), "--log-level", "warning"], port)
    try:
        yield srv.wait_ready(60)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def expected(tiny_text_folder):
    from deepsparse_lite.pipelines import Pipeline
    p1 = Pipeline.create("sentiment-analysis", model_path=tiny_text_folder)
    p2 = Pipeline.create("text_classification", model_path=tiny_text_folder, top_k=2)
    out = {("sentiment_analysis", t): p1(sequences=t).model_dump() for t in TEXTS}
    out.update({("top2", t): p2(sequences=t).model_dump() for t in TEXTS})
    return out


def _same(got, want, tol=1e-5):
    import numpy as np
    return got["labels"] == want["labels"] and np.allclose(
        np.asarray(got["scores"], dtype=float), np.asarray(want["scores"], dtype=float), atol=tol)


def _server_errors(srv):
    """Lines of the server's log that tell of an unhandled error."""
    return [ln for ln in srv.output.splitlines()
            if "Traceback" in ln or "Exception in ASGI" in ln or " 500 " in ln]


# ---- raw HTTP over a socket (what httpx will not send) -----------------------------------

def _request(path, body: bytes, headers=()):
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _raw(port, parts, pause=0.0, read=True, reset=False, timeout=20.0):
    """Send ``parts`` (pausing between them); then read the whole response (status, body) or,
    without ``read``, close at once (``reset``: with an RST instead of a FIN)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        for k, part in enumerate(parts):
            if k and pause:
                time.sleep(pause)
            s.sendall(part)
        if not read:
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return None
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data:
            return None, b""
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body
    finally:
        s.close()


def _faults(port, good_labels):
    """(name, action) pairs; each action returns None when the server answered as it must,
    else what went wrong (``good_labels``: the answer to the slow client's good request)."""
    url = f"http://127.0.0.1:{port}"
    infer = "/v2/models/sentiment_analysis/infer"
    good = json.dumps({"sequences": TEXTS[3]}).encode()

    def http(status, error=None, path=infer, **kw):
        def act():
            r = httpx.post(url + path, timeout=20, **kw)
            if r.status_code != status:
                return f"status {r.status_code}: {r.text[:200]}"
            if error and r.json().get("error") != error:
                return f"error {r.json().get('error')!r}, expected {error!r}"
            return None
        return act

    def raw(status, parts, **kw):
        def act():
            got = _raw(port, parts, **kw)
            if status is None:
                return None
            if got is None or got[0] != status:
                return f"raw answer {got and got[0]}, expected {status}"
            return None
        return act

    def slow_good():
        data = _request(infer, good)
        pieces = [data[i:i + 9] for i in range(0, len(data), 9)]   # headers too, in bits
        status, body = _raw(port, pieces, pause=0.01)
        if status != 200 or json.loads(body)["labels"] != good_labels:
            return f"slow client got {status}: {body[:200]!r}"
        return None

    def chunked_too_large():
        def gen():
            for _ in range(BODY_LIMIT // 4096 + 4):
                yield b"x" * 4096
        try:
            r = httpx.post(url + infer, content=gen(), timeout=20)
        except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError):
            return None   # the 413 went out and the server closed while we still wrote: dropped
        return None if r.status_code == 413 else f"status {r.status_code}"

    return [
        ("malformed JSON", http(422, "InvalidJSON", content=b'{"sequences": "a"')),
        ("JSON not an object", http(422, "InvalidBody", json=["a"])),
        ("nested too deeply", http(422, "InvalidJSON", content=b"[" * 50000)),
        ("not UTF-8", http(422, "InvalidJSON", content=b'{"sequences": "\xff\xfe"}')),
        ("wrong field", http(422, "ValidationError", json={"sequence": "a"})),
        ("wrong type", http(422, "ValidationError", json={"sequences": 5})),
        ("empty list", http(422, "ValidationError", json={"sequences": []})),
        ("unpaired surrogate", http(422, "ValidationError", content=b'{"sequences": "\\ud800"}')),
        ("unknown model", http(404, "ModelNotFound", json={"sequences": "a"},
                               path="/v2/models/nope/infer")),
        ("too large (Content-Length)", http(413, "PayloadTooLarge",
                                            content=b'{"sequences": "' + b"x" * BODY_LIMIT + b'"}')),
        ("too large (chunked)", chunked_too_large),
        ("wrong method", lambda: None if httpx.put(url + infer, timeout=20).status_code == 405
         else "PUT on infer is not 405"),
        ("garbage request line", raw(400, [b"NOT HTTP AT ALL\r\n\r\n"])),
        ("bad Content-Length", raw(400, [b"POST " + infer.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: lots\r\n\r\n"])),
        ("slow client", slow_good),
        ("closed mid-headers", raw(None, [_request(infer, good)[:30]], read=False)),
        ("closed mid-body", raw(None, [_request(infer, good)[:-10]], read=False)),
        ("reset mid-body", raw(None, [_request(infer, good)[:-10]], read=False, reset=True)),
        ("reset before the answer", raw(None, [_request(infer, good)], read=False, reset=True)),
        ("connect and close", raw(None, [], read=False)),
    ]


def test_load_with_faults_mixed_in(fault_server, expected):
    """6 clients x 400 good requests over two endpoints while 2 clients send 20 kinds of
    faulty requests in turn and 16 connections stall half-way through their request: every
    good request is answered 200 and correct, every fault gets its 4xx (or its connection is
    dropped), no unhandled error in the server's log, and the server is healthy and correct
    afterwards; p50 / p99 of the good requests printed."""
    srv = fault_server
    faults = _faults(srv.port, expected[("sentiment_analysis", TEXTS[3])]["labels"])
    n_clients, per_client = 6, 400
    lat, failures, mismatches, fault_bad = [], [], [], []
    fault_counts = {}
    done = threading.Event()

    def client(k):
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(per_client):
                name = "top2" if (i + k) % 3 == 0 else "sentiment_analysis"
                t = TEXTS[(i * 5 + k) % len(TEXTS)]
                t0 = time.perf_counter()
                try:
                    r = c.post(f"/v2/models/{name}/infer", json={"sequences": t})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    failures.append((r.status_code, r.text[:200]))
                elif not _same(r.json(), expected[(name, t)]):
                    mismatches.append((name, t, r.json()))

    def faulty(k):
        i = k
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline and i < 2000:
            name, act = faults[i % len(faults)]
            try:
                err = act()
            except Exception as e:  # noqa: BLE001 - a fault whose client side broke
                err = f"{type(e).__name__}: {e}"
            fault_counts[name] = fault_counts.get(name, 0) + 1
            if err is not None:
                fault_bad.append((name, err))
            i += 2

    # clients that stall: 16 connections hold half a request each for the whole run
    stalled = []
    for k in range(16):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        data = _request("/v2/models/top2/infer", json.dumps({"sequences": TEXTS[k]}).encode())
        s.sendall(data[:len(data) // 2 + k])
        stalled.append(s)
    t0 = time.monotonic()
    with ThreadPoolExecutor(n_clients + 2) as ex:
        bad_futs = [ex.submit(faulty, k) for k in range(2)]
        good = list(ex.map(client, range(n_clients)))
        done.set()
        for f in bad_futs:
            f.result(timeout=150)
    elapsed = time.monotonic() - t0
    for k, s in enumerate(stalled):   # they give up: half by FIN, half by RST
        if k % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert len(good) == n_clients
    lat.sort()
    n = len(lat)
    print(f"\nload: {n_clients * per_client} good requests in {elapsed:.1f} s "
          f"({n_clients * per_client / elapsed:.0f}/s) with {sum(fault_counts.values())} faulty "
          f"ones mixed in ({len(fault_counts)} kinds); good latency p50 "
          f"{lat[n // 2] * 1e3:.1f} ms, p99 {lat[min(n - 1, int(n * 0.99))] * 1e3:.1f} ms, "
          f"max {lat[-1] * 1e3:.1f} ms")
    assert not failures, failures[:3]
    assert not mismatches, mismatches[:3]
    assert not fault_bad, fault_bad[:5]
    assert set(fault_counts) == {name for name, _ in faults}
    # still healthy, still right
    assert httpx.get(srv.url + "/v2/health/ready", timeout=10).status_code == 200
    r = httpx.post(srv.url + "/v2/models/top2/infer", json={"sequences": TEXTS[0]}, timeout=10)
    assert r.status_code == 200 and _same(r.json(), expected[("top2", TEXTS[0])])
    m = httpx.get(srv.url + "/metrics", timeout=10).text
    assert 'status="500"' not in m
    assert not _server_errors(srv), srv.output[-6000:]


# ---- schemathesis over /openapi.json ------------------------------------------------------

try:
    import schemathesis
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - depends on the environment
    schemathesis = None


@pytest.mark.skipif(schemathesis is None, reason="schemathesis is not installed (pip install "
                    "schemathesis, or the [test] extra)")
def test_openapi_schema_no_server_error(fault_server):
    """Every operation of the server's own /openapi.json with generated inputs (derandomized,
    no example database; the infer body valid and invalid, at a served model and at random
    names): no 5xx for any of them, healthy afterwards. (Driven through hypothesis directly:
    schemathesis' lazy pytest fixture loader does not run on pytest 9.)"""
    from hypothesis import given
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(fault_server.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert any(op.path == "/v2/models/{name}/infer" for op in ops)
    errors, calls = [], []
    runs = []
    for op in ops:
        runs.append((op, GenerationMode.POSITIVE, None, 10))
        if "{name}" in op.path:  # also at the served models, not only at random names (404)
            for name in ("sentiment_analysis", "top2"):
                runs.append((op, GenerationMode.POSITIVE, {"name": name},
                             60 if op.path.endswith("/infer") else 5))
        if op.path.endswith("/infer"):
            runs.append((op, GenerationMode.NEGATIVE, {"name": "top2"}, 80))
    t_end = time.monotonic() + 120   # a bound on the whole run, whatever the machine
    for op, mode, path_params, n in runs:
        if time.monotonic() > t_end:
            break
        @settings(max_examples=n, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_params))
        def run(case):
            r = case.call(timeout=20)
            calls.append(r.status_code)
            if r.status_code >= 500:
                errors.append((op.method.upper(), case.formatted_path, case.body, r.status_code,
                               r.text[:300]))
        run()
    print(f"\nschemathesis: {len(ops)} operations, {len(calls)} calls, statuses "
          f"{ {s: calls.count(s) for s in sorted(set(calls))} }")
    assert not errors, errors[:5]
    assert httpx.get(fault_server.url + "/v2/health/ready", timeout=10).status_code == 200
    assert not _server_errors(fault_server), fault_server.output[-6000:]


# ---- graceful shutdown ---------------------------------------------------------------------

def test_sigterm_with_16_requests_in_flight_loses_none():
    """16 slow requests in flight (4 running, 12 queued for an inference thread), SIGTERM,
    and clients still knocking: the 16 all get their 200 answer, each late request is either
    refused at connect or answered, then the server exits cleanly."""
    port = free_port()
    srv = ServerProcess([os.path.join(ROOT, "tests", "server", "serve_fake.py"), str(port)], port)
    try:
        srv.wait_ready(30)
        n = 16
        results, late = {}, []

        def go(i):
            try:
                r = httpx.post(srv.url + "/v2/models/echo/infer",
                               json={"sequences": f"s{i}", "delay": 0.5}, timeout=30)
                results[i] = (r.status_code, r.json())
            except httpx.HTTPError as e:
                results[i] = ("error", repr(e))

        ts = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(n)]
        for t in ts:
            t.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:   # every one of them has reached the handler
            m = httpx.get(srv.url + "/metrics", timeout=5).text
            if f'deepsparse_lite_in_flight_requests{{endpoint="echo"}} {float(n)}' in m:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the 16 requests did not all reach the server")
        srv.proc.send_signal(signal.SIGTERM)

        def knock():
            for _ in range(20):
                try:
                    r = httpx.post(srv.url + "/v2/models/echo/infer", json={"sequences": "late"},
                                   timeout=10, headers={"Connection": "close"})
                    late.append(r.status_code)
                except httpx.ConnectError:
                    late.append("refused")
                except httpx.HTTPError as e:   # accepted by the kernel, closed unread
                    late.append(type(e).__name__)
                time.sleep(0.05)

        k = threading.Thread(target=knock, daemon=True)
        k.start()
        for t in ts:
            t.join(30)
        k.join(30)
        assert results == {i: (200, {"labels": [f"S{i}"], "scores": [float(len(f"s{i}"))]})
                           for i in range(n)}
        assert all(s in (200, "refused", "RemoteProtocolError", "ReadError",
                                "WriteError") for s in late), late
        assert srv.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        print(f"\nSIGTERM with {n} in flight: all {n} answered; late requests: "
              f"{ {s: late.count(s) for s in set(late)} }")
    finally:
        srv.stop()


def test_client_faults_found_here_are_4xx_in_process(tiny_text_folder):
    """The faults that were 500s (or tracebacks) before, in process: JSON nested too deeply,
    an unpaired surrogate, a text the pipeline's pre-processing refuses (ValueError); a
    pipeline that breaks is still a 500."""
    from fastapi.testclient import TestClient

    from deepsparse_lite.server.app import create_app
    from tests.server.fake_pipelines import echo_app

    app = create_app({"endpoints": [{"task": "text_classification", "model": tiny_text_folder,
                                     "name": "strict", "kwargs": {"truncation": False}}]})
    with TestClient(app, raise_server_exceptions=False) as c:
        url = "/v2/models/strict/infer"
        r = c.post(url, content=b"[" * 100000)
        assert r.status_code == 422 and r.json()["error"] == "InvalidJSON"
        assert "nested too deeply" in r.json()["message"]
        r = c.post(url, content=b'{"sequences": ["ok", "\\udc80"]}')
        assert r.status_code == 422 and "sequences[1] is not valid Unicode text" in r.json()["message"]
        r = c.post(url, json={"sequences": "w " * 100})
        assert r.status_code == 422 and r.json()["error"] == "InvalidInput"
        assert "more than the pipeline's sequence_length" in r.json()["message"]
        assert c.post(url, json={"sequences": "w " * 4}).status_code == 200
    app, _ = echo_app()
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v2/models/echo/infer", json={"sequences": "a", "fail": True})
        assert r.status_code == 500 and r.json()["error"] == "RuntimeError"


def test_sigterm_with_a_stalled_client_still_exits(tmp_path, tiny_text_folder):
    """A client that stalls half-way through its body cannot hold the shutdown: the server
    (``graceful_shutdown_timeout: 2``) still exits after SIGTERM (within 20 s here), and a
    request answered before the signal was answered right."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"graceful_shutdown_timeout: 2\nendpoints:\n  - task: sentiment-analysis\n"
                   f"    model: {tiny_text_folder}\n")
    port = free_port()
    srv = ServerProcess(["-m", "deepsparse_lite.server", "--config-file", str(cfg), "--host",
                         "127.0.0.1", "--port", str(port), "--log-level", "warning"], port)
    try:
        srv.wait_ready(60)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        data = _request("/v2/models/sentiment_analysis/infer", b'{"sequences": "stalled"}')
        s.sendall(data[:-8])
        r = httpx.post(srv.url + "/v2/models/sentiment_analysis/infer",
                       json={"sequences": "fine"}, timeout=10)
        assert r.status_code == 200 and r.json()["labels"][0] in ("positive", "negative")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(timeout=20)
        except Exception:
            pytest.fail("the server did not exit 20 s after SIGTERM with a stalled client")
        print(f"\nexit {rc} {time.monotonic() - t0:.1f} s after SIGTERM with a stalled client")
        assert rc in (0, -signal.SIGTERM)
        s.close()
    finally:
        srv.stop()
