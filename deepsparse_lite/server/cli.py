"""``deepsparse_lite.server``: serve a config file or one task over HTTP (Uvicorn).

    deepsparse_lite.server --config-file config.yaml
    deepsparse_lite.server --task sentiment-analysis --model_path zoo:... --port 5543
    deepsparse_lite.server --config-file config.yaml --ray [--address ADDR]

Option names accept ``-`` or ``_`` (``--config-file`` = ``--config_file``) as in DeepSparse.
"""
import argparse
import logging
import sys
from typing import List, Optional

from deepsparse_lite.server.config import (DEFAULT_HOST, DEFAULT_PORT, ConfigError,
                                           EndpointConfig, ServerConfig, load_config)

__all__ = ["main", "parse_args", "config_from_args", "run_server"]


def _both(name: str) -> List[str]:
    names = ["--" + name]
    alt = "--" + (name.replace("_", "-") if "_" in name else name.replace("-", "_"))
    if alt != names[0]:
        names.append(alt)
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepsparse_lite.server", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=None, help="model path (same as --model_path)")
    p.add_argument(*_both("config_file"), dest="config_file", default=None,
                   help="YAML server config (see docs)")
    p.add_argument("--task", default=None, help="serve one pipeline of this task")
    p.add_argument(*_both("model_path"), dest="model_path", default=None,
                   help="model for --task: zoo: stub, folder or model.onnx (default 'default')")
    p.add_argument("--host", default=None, help=f"default {DEFAULT_HOST}; with --ray and no "
                   "--address, 127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(*_both("batch_size"), dest="batch_size", type=int, default=1)
    p.add_argument(*_both("num_cores"), dest="num_cores", type=int, default=None)
    p.add_argument(*_both("num_workers"), dest="num_workers", type=int, default=None)
    p.add_argument(*_both("log_level"), dest="log_level", default="info",
                   choices=["debug", "info", "warn", "warning", "error", "critical", "fatal"])
    p.add_argument("--integration", default="local", help="only 'local' is supported")
    p.add_argument("--ray", action="store_true", help="serve on Ray Serve: one deployment "
                   "per endpoint (num_replicas, autoscaling_config, num_cpus_per_replica); "
                   "needs the [ray] extra")
    p.add_argument("--address", default=None, help="with --ray: the Ray cluster to deploy on "
                   "(auto, ray://host:10001, host:6379); default: start a local one on "
                   "127.0.0.1")
    p.add_argument(*_both("hot_reload_config"), dest="hot_reload_config", action="store_true",
                   help="not supported (refused)")
    return p


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if args.host is None:   # a local Ray cluster is this machine's only: loopback
        args.host = "127.0.0.1" if args.ray and not args.address else DEFAULT_HOST
    return args


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the CLI arguments describe; raises ValueError / ConfigError."""
    if args.integration not in (None, "local"):
        raise ValueError(f"--integration {args.integration} is not supported by "
                         "deepsparse_lite.server (only 'local')")
    if args.hot_reload_config:
        raise ValueError("--hot-reload-config is not supported by deepsparse_lite.server; "
                         "restart the server to apply a new config")
    if args.address and not args.ray:
        raise ValueError("--address is the Ray cluster of --ray; give --ray too")
    model = args.model_path or args.model
    if args.config_file:
        if args.task:
            raise ValueError("give either --config-file or --task, not both")
        cfg = load_config(args.config_file)
        updates = {}
        if args.num_cores is not None:
            updates["num_cores"] = args.num_cores
        if args.num_workers is not None:
            updates["num_workers"] = args.num_workers
        return load_config({**cfg.model_dump(), **updates}) if updates else cfg
    if not args.task:
        raise ValueError("Must specify either --task or --config_file. Found neither")
    name = args.task.lower().replace("-", "_")
    return load_config({"num_cores": args.num_cores, "num_workers": args.num_workers,
                        "endpoints": [{"task": args.task, "name": name,
                                       "model": model or "default",
                                       "batch_size": args.batch_size}]})


class ServerStartError(RuntimeError):
    """A pipeline of the config could not be built (bad model path, unknown task, ...)."""


#: set before ``import ray``: a local Ray cluster then runs on the loopback address (its gRPC
#: ports and agents listen on 127.0.0.1 instead of every interface; no other node can join)
RAY_LOOPBACK_ENV = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

_PINNING = {"core": ("1", "0"), "numa": ("0", "1"), "none": ("0", "0")}


def apply_thread_pinning(config: ServerConfig, environ=None) -> None:
    """``engine_thread_pinning`` -> NM_BIND_THREADS_TO_CORES / _SOCKETS, as DeepSparse's server
    sets them (read when the Context is created, see deepsparse_lite/config.py)."""
    import os
    environ = os.environ if environ is None else environ
    cores, sockets = _PINNING[config.engine_thread_pinning]
    environ["NM_BIND_THREADS_TO_CORES"] = cores
    environ["NM_BIND_THREADS_TO_SOCKETS"] = sockets


def run_server(config, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               log_level: str = "info") -> None:
    """Build the pipelines and serve until SIGINT / SIGTERM (then drain in-flight requests)."""
    import uvicorn

    from deepsparse_lite.server.app import create_app

    config = load_config(config)
    apply_thread_pinning(config)
    for ep in config.endpoints:
        if ep.ray_keys_set:
            logging.getLogger("deepsparse_lite.server").warning(
                "endpoint %s: %s apply only with --ray; this server is one process",
                ep.name, ", ".join(ep.ray_keys_set))
    try:
        app = create_app(config)
    except Exception as e:
        raise ServerStartError(f"could not start the endpoints: {type(e).__name__}: {e}") from e
    level = {"warn": "warning", "fatal": "critical"}.get(log_level, log_level)
    # one worker process: the models are not copied; concurrency comes from the streams
    uvicorn.run(app, host=host, port=port, log_level=level, workers=1,
                timeout_graceful_shutdown=config.graceful_shutdown_timeout)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.log_level in ("info", "debug") else logging.WARNING)
    try:
        cfg = config_from_args(args)
    except (ConfigError, ValueError, OSError) as e:
        print(f"deepsparse_lite.server: error: {e}", file=sys.stderr)
        return 2
    try:
        if args.ray:
            if not args.address:
                import os
                os.environ.setdefault(*RAY_LOOPBACK_ENV)
            try:
                from deepsparse_lite.server.ray_serve import run_ray
            except ImportError as e:
                raise ServerStartError(f"--ray needs the [ray] extra (pip install "
                                       f"'deepsparse_lite[ray]'): {e}") from None
            run_ray(cfg, address=args.address, host=args.host, port=args.port)
        else:
            run_server(cfg, host=args.host, port=args.port, log_level=args.log_level)
    except ServerStartError as e:
        print(f"deepsparse_lite.server: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
