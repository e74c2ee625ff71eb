"""Server test helpers: the tiny text-classification sample folder and a real Uvicorn server
in a subprocess on 127.0.0.1 (free port), always killed in teardown."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import importlib.util

# the server tests need the [server] extra (and httpx); without it they are not collected
_MISSING = [m for m in ("fastapi", "uvicorn", "httpx", "yaml", "prometheus_client")
            if importlib.util.find_spec(m) is None]
collect_ignore_glob = ["test_*.py"] if _MISSING else []

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def tiny_text_folder():
    from deepsparse_lite.pipelines.samples import sample_text_folder
    return sample_text_folder("bert_tiny", {0: "negative", 1: "positive"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python <args>`` serving on ``self.url``; ``start`` waits for /v2/health/ready."""

    def __init__(self, args, port, cwd=ROOT):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable] + list(args), cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # drained all along: a server logging more than a pipe holds (64 KiB of warnings
        # under a fault load) would otherwise block on its next write
        self.lines = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return "".join(self.lines)

    def wait_ready(self, timeout=60.0):
        import httpx
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n"
                                   f"{self.output[-4000:]}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def server_factory():
    servers = []

    def start(args, port=None, timeout=60.0):
        port = port or free_port()
        s = ServerProcess([a.replace("{port}", str(port)) for a in args], port)
        servers.append(s)
        return s.wait_ready(timeout)

    yield start
    for s in servers:
        s.stop()
