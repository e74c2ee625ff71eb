"""The server's config on a real local Ray cluster (127.0.0.1, the machine's 2 cores, no
dashboard): two one-CPU replicas of the tiny text classifier behind the server's routes, a
few hundred concurrent HTTP requests checked one by one against the same pipeline run in
process, both replicas seen serving on a core of their own; the cluster is always stopped."""
import importlib.util
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.server.conftest import free_port

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="needs the [ray] extra (pip install 'ray[serve]')"),
    # Ray's own pydantic models warn about pydantic v1 idioms at import
    pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_two_replicas_serve_the_server_routes(monkeypatch, tiny_text_folder):
    """``run_ray`` (what ``--ray`` calls) on a local cluster; the checks run in its ``wait``,
    and its ``finally`` stops Serve and the cluster whatever they find."""
    from deepsparse_lite.pipelines import Pipeline
    from deepsparse_lite.scheduler.topology import Topology
    from deepsparse_lite.server.cli import RAY_LOOPBACK_ENV

    cores = Topology.detect().num_physical_cores
    if cores < 2:
        pytest.skip("two one-core replicas need two cores")
    words = "fast easy slow server model request stream core cache batch token label".split()
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + i % 9)) for i in range(32)]
    with Pipeline.create("sentiment-analysis", model_path=tiny_text_folder, num_cores=1) as p:
        expect = {t: p(sequences=t).model_dump() for t in texts}

    monkeypatch.setenv(*RAY_LOOPBACK_ENV)      # read when ray is first imported
    import ray

    from deepsparse_lite.server.ray_serve import REPLICA_HEADER, run_ray

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {"endpoints": [{"task": "sentiment-analysis", "model": tiny_text_folder,
                             "num_replicas": 2, "num_cpus_per_replica": 1}]}
    seen, finished = {}, []

    def drive():
        assert ray.util.get_node_ip_address() == "127.0.0.1", \
            "ray was imported before this test could set " + "=".join(RAY_LOOPBACK_ENV)
        assert ray.cluster_resources()["CPU"] == cores
        _check_routes_and_load(url, texts, expect, REPLICA_HEADER, seen)
        finished.append(time.monotonic() - t0)

    # serve.run has no timeout of its own: past 240 s, Ctrl-C ends run_ray through its clean-up
    watchdog = threading.Timer(240, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    watchdog.start()
    try:
        run_ray(config, port=port, wait=drive)
    finally:
        watchdog.cancel()
        if ray.is_initialized():    # run_ray failed before its own clean-up could run
            ray.shutdown()
    assert not ray.is_initialized()
    assert finished, f"stopped after {time.monotonic() - t0:.0f} s, checks unfinished: {seen}"
    print(f"ray test {time.monotonic() - t0:.1f}s: {seen}")


def _check_routes_and_load(url, texts, expect, header, served_by):
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/v2/health/ready").json() == {"status": "OK"}
        deadline = time.monotonic() + 60
        while c.get("/v2/models/sentiment_analysis/ready").status_code != 200:
            assert time.monotonic() < deadline, "the Ray Serve app did not become ready"
            time.sleep(0.2)
        meta = c.get("/v2/models/sentiment_analysis").json()
        assert meta["model_path"].endswith("model.onnx") and "input_schema" in meta
        r = c.post("/v2/models/sentiment_analysis/infer", json={"sequence": "a"})
        assert r.status_code == 422 and "sequences" in r.json()["message"]
        assert c.post("/v2/models/nope/infer", json={"sequences": "a"}).status_code == 404

    failures, mismatches = [], []
    per_client, clients = 40, 8

    def client(k):
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(per_client):
                t = texts[(i * 5 + k) % len(texts)]
                try:
                    r = c.post("/v2/models/sentiment_analysis/infer", json={"sequences": t})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                    continue
                tag = r.headers.get(header, "")
                served_by[tag] = served_by.get(tag, 0) + 1
                got, want = r.json(), expect[t]
                if got["labels"] != want["labels"] or not _close(got["scores"], want["scores"]):
                    mismatches.append((t, got, want))

    t1 = time.monotonic()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(client, range(clients)))
    assert time.monotonic() - t1 < 60
    assert not failures, failures[:3]
    assert not mismatches, mismatches[:3]
    # both replicas served, each a one-core Context on a core of its own: the replica
    # process's whole affinity mask (its Ray threads too) is that core
    assert len(served_by) == 2 and all(served_by.values()), served_by
    masks = []
    for tag in served_by:
        fields = dict(f.split("=") for f in tag.split()[1:])
        assert fields["num_cores"] == "1", tag
        mask = {int(c) for c in fields["cpus"].split(",")}
        pid = int(fields["pid"])
        for tid in os.listdir(f"/proc/{pid}/task"):
            assert os.sched_getaffinity(int(tid)) == mask, (tag, tid)
        masks.append(mask)
    assert len(masks[0]) == 1 and masks[0] != masks[1], served_by
    m = httpx.get(url + "/metrics", timeout=10).text
    assert (f'deepsparse_lite_requests_total{{endpoint="sentiment_analysis",status="200"}} '
            f'{float(clients * per_client)}') in m
    assert 'stage="engine_forward"' in m


def test_deployment_options_follow_the_config():
    from deepsparse_lite.server.config import load_config
    from deepsparse_lite.server.ray_serve import cpus_needed, deployment_options

    eps = load_config({"endpoints": [
        {"task": "sentiment-analysis", "model": "m"},
        {"task": "sentiment-analysis", "model": "m", "name": "b", "num_replicas": 3,
         "num_cpus_per_replica": 2, "num_streams": 2},
        {"task": "sentiment-analysis", "model": "m", "name": "c", "max_ongoing_requests": 9,
         "autoscaling_config": {"min_replicas": 0, "max_replicas": 4}}]}).endpoints
    assert deployment_options(eps[0]) == {"ray_actor_options": {"num_cpus": 1},
                                          "max_ongoing_requests": 4, "num_replicas": 1}
    assert deployment_options(eps[1]) == {"ray_actor_options": {"num_cpus": 2},
                                          "max_ongoing_requests": 4, "num_replicas": 3}
    opts = deployment_options(eps[2])
    assert "num_replicas" not in opts and opts["max_ongoing_requests"] == 9
    assert opts["autoscaling_config"] == {"min_replicas": 0, "max_replicas": 4,
                                          "target_ongoing_requests": 2.0, "upscale_delay_s": 30.0,
                                          "downscale_delay_s": 600.0}
    assert cpus_needed({"endpoints": [e.model_dump() for e in eps]}) == 1 + 3 * 2 + 0


def test_cli_refuses_more_replicas_than_cores(tmp_path, tiny_text_folder):
    """A local cluster cannot grow: more replica CPUs than cores is an error, not a hang."""
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"endpoints:\n  - task: sentiment-analysis\n    model: {tiny_text_folder}\n"
                   f"    num_replicas: 64\n")
    r = subprocess.run([sys.executable, "-m", "deepsparse_lite.server", "--config-file", str(cfg),
                        "--ray", "--port", str(free_port())], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2 and "replicas need 64 CPUs" in r.stderr, r.stderr[-2000:]


def _close(a, b, tol=1e-5):
    import numpy as np
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=tol)
