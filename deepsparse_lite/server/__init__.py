"""Server: DeepSparse-compatible HTTP serving of pipelines (FastAPI + Uvicorn).

``config.py`` validates the YAML config (DeepSparse 1.8's schema; unknown keys are errors),
``app.py`` builds one pipeline per endpoint on a shared Context and the routes
(``/v2/models/{name}/infer``, ``/ready``, metadata, health, ``/config``, ``/docs``, ``/metrics``),
``cli.py`` is the ``deepsparse_lite.server`` command. Needs the ``[server]`` extra.

    deepsparse_lite.server --config-file config.yaml
    curl -X POST http://localhost:5543/v2/models/sentiment_analysis/infer \\
         -H 'Content-Type: application/json' -d '{"sequences": "fast and easy"}'
"""
from deepsparse_lite.server.config import EndpointConfig, ServerConfig, load_config

__all__ = ["EndpointConfig", "ServerConfig", "load_config", "create_app", "main"]


def create_app(*args, **kwargs):
    from deepsparse_lite.server.app import create_app as _create
    return _create(*args, **kwargs)


def main(argv=None):
    from deepsparse_lite.server.cli import main as _main
    return _main(argv)
