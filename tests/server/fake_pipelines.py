"""Small stand-in pipelines for the server tests (pydantic v2 schemas, no engine)."""
import threading
import time
from typing import List, Union

from pydantic import BaseModel


class EchoInput(BaseModel):
    sequences: Union[List[str], str]
    delay: float = 0.0
    fail: bool = False


class EchoOutput(BaseModel):
    labels: List[str]
    scores: List[float]


class EchoPipeline:
    """``sequences`` -> labels = the texts upper-cased, scores = their lengths; ``fail``
    raises, ``delay`` sleeps (to hold a request in flight)."""
    input_schema = EchoInput
    output_schema = EchoOutput
    task = "echo"
    model_path = "/fake/model.onnx"

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def __call__(self, **kwargs):
        inp = self.input_schema(**kwargs)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if inp.delay:
                time.sleep(inp.delay)
            if inp.fail:
                raise RuntimeError("pipeline exploded on purpose")
            seqs = [inp.sequences] if isinstance(inp.sequences, str) else inp.sequences
            return EchoOutput(labels=[s.upper() for s in seqs], scores=[float(len(s)) for s in seqs])
        finally:
            with self.lock:
                self.active -= 1


def echo_app(**config):
    from deepsparse_lite.server.app import create_app
    from deepsparse_lite.server.config import load_config
    cfg = load_config(dict({"endpoints": [{"task": "echo", "model": "fake", "name": "echo"},
                                          {"task": "echo", "model": "fake", "route": "/a/b"}]},
                           **config))
    pipes = {ep.url_name: (ep, EchoPipeline()) for ep in cfg.endpoints}
    return create_app(cfg, pipelines=pipes), pipes
