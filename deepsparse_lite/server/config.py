"""The server's YAML / JSON configuration, validated with pydantic v2.

The schema follows DeepSparse 1.8's ``ServerConfig`` / ``EndpointConfig`` with two deliberate
differences: an unknown key is an error naming the key (DeepSparse silently ignores it, so a
typo such as ``batchsize:`` went unnoticed), and an endpoint may set ``scheduler`` /
``num_streams`` (DeepSparse ignores both; the docs' ``scheduler: multi_stream`` example then
did nothing). An endpoint that sets neither runs on the server's shared Context.

``num_replicas`` / ``autoscaling_config`` / ``num_cpus_per_replica`` / ``max_ongoing_requests``
are for ``--ray`` (server/ray_serve.py: one Ray Serve deployment per endpoint, each replica
owning a Context of ``num_cpus_per_replica`` cores). They are validated in both modes; the
plain server runs one process and says at startup that it ignores them.
"""
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["EndpointConfig", "ServerConfig", "AutoscalingConfig", "RAY_KEYS", "load_config", "ConfigError", "DEFAULT_PORT",
           "DEFAULT_HOST"]

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 5543


class ConfigError(ValueError):
    """A server configuration that does not validate; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class AutoscalingConfig(_Strict):
    """Ray Serve's autoscaling of one endpoint's replicas (the keys Ray Serve names alike)."""
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    initial_replicas: Optional[int] = Field(None, ge=0)
    target_ongoing_requests: float = Field(2.0, gt=0, description="requests per replica "
                                           "(queued or running) the autoscaler aims for")
    upscale_delay_s: float = Field(30.0, ge=0)
    downscale_delay_s: float = Field(600.0, ge=0)

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must be <= max_replicas "
                             f"({self.max_replicas})")
        if self.initial_replicas is not None and not (
                self.min_replicas <= self.initial_replicas <= self.max_replicas):
            raise ValueError(f"initial_replicas ({self.initial_replicas}) must be between "
                             f"min_replicas and max_replicas")
        return self


#: the endpoint keys only ``--ray`` uses
RAY_KEYS = ("num_replicas", "autoscaling_config", "num_cpus_per_replica", "max_ongoing_requests")


class EndpointConfig(_Strict):
    task: str = Field(description="pipeline task, e.g. sentiment-analysis")
    model: str = Field(description="zoo: stub, model folder or path to model.onnx")
    name: Optional[str] = Field(None, description="endpoint name (URL /v2/models/{name}/infer); "
                                "default: the task with '-' replaced by '_'")
    route: Optional[str] = Field(None, description="URL part after /v2/models, e.g. /predict")
    batch_size: Optional[int] = 1
    scheduler: Optional[str] = Field(None, description="single_stream | multi_stream | elastic: "
                                     "give this endpoint its own engine instead of the shared Context")
    num_streams: Optional[int] = Field(None, description="streams of this endpoint's own engine")
    logging_config: Optional[Dict[str, Any]] = None   # accepted for DeepSparse configs; unused
    data_logging: Optional[Dict[str, Any]] = None     # accepted for DeepSparse configs; unused
    bucketing: Optional[Dict[str, Any]] = None
    middlewares: Optional[List[Any]] = None
    kwargs: Dict[str, Any] = Field(default_factory=dict, description="task kwargs, e.g. top_k")
    num_replicas: Optional[int] = Field(None, ge=1, description="--ray: replicas of this "
                                        "endpoint (default 1; not with autoscaling_config)")
    autoscaling_config: Optional[AutoscalingConfig] = Field(None, description="--ray: let "
                                                            "Ray Serve scale the replicas")
    num_cpus_per_replica: Optional[int] = Field(None, ge=1, description="--ray: cores of each "
                                                "replica's Context = its Ray num_cpus (default 1)")
    max_ongoing_requests: Optional[int] = Field(None, ge=1, description="--ray: requests a "
                                                "replica takes at once (default: 2 per stream, "
                                                "at least 4)")

    @field_validator("route")
    @classmethod
    def _clean_route(cls, v):
        if v is None:
            return v
        v = v.strip()
        if not v.startswith("/"):
            v = "/" + v
        v = v.rstrip("/")
        if v == "":
            raise ValueError("route must not be empty")
        return v

    @field_validator("batch_size", "num_streams")
    @classmethod
    def _non_negative(cls, v):
        if v is not None and v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v):
        if v is None:
            return v
        from deepsparse_lite.engine import Scheduler
        return Scheduler.from_str(v).value      # ValueError("unsupported Scheduler: X")

    @field_validator("bucketing")
    @classmethod
    def _bucketing(cls, v):
        if v:
            raise ValueError("bucketing is not supported by deepsparse_lite's server; give one "
                             "sequence_length in kwargs instead")
        return v

    @model_validator(mode="after")
    def _replicas(self):
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("give either num_replicas or autoscaling_config, not both")
        if (self.num_streams and self.num_cpus_per_replica
                and self.num_streams > self.num_cpus_per_replica):
            raise ValueError(f"num_streams ({self.num_streams}) must be <= num_cpus_per_replica "
                             f"({self.num_cpus_per_replica}): a stream needs a core")
        return self

    @property
    def ray_keys_set(self) -> List[str]:
        """The ``--ray``-only keys this endpoint sets (the plain server ignores them)."""
        return [k for k in RAY_KEYS if getattr(self, k) is not None]

    @property
    def url_name(self) -> str:
        """The part of the URL between ``/v2/models/`` and ``/infer``."""
        return self.route.lstrip("/") if self.route else self.name


class ServerConfig(_Strict):
    num_cores: Optional[int] = Field(None, description="cores of the shared Context (None: all)")
    num_workers: Optional[int] = Field(None, description="streams of the shared Context "
                                       "(None: the engine default)")
    integration: Optional[str] = Field(None, description="only 'local' is supported")
    engine_thread_pinning: str = "core"
    pytorch_num_threads: Optional[int] = 1          # accepted for DeepSparse configs; no torch here
    loggers: Dict[str, Any] = Field(default_factory=dict)       # accepted; metrics are at /metrics
    system_logging: Optional[Dict[str, Any]] = None             # accepted; unused
    max_request_body_bytes: int = Field(10 * 1024 * 1024, description="larger bodies get 413")
    inference_threads: Optional[int] = Field(None, description="threads running requests "
                                             "(default: 2 per stream, at least 4)")
    graceful_shutdown_timeout: float = Field(30.0, description="seconds to drain in-flight "
                                             "requests on shutdown")
    endpoints: List[EndpointConfig]

    @field_validator("num_cores")
    @classmethod
    def _cores(cls, v):
        if v is not None and v < 1:
            raise ValueError("num_cores must be greater than 0")
        return v

    @field_validator("num_workers")
    @classmethod
    def _workers(cls, v):
        if v is not None and v < 0:
            raise ValueError("num_workers must be >= 0")
        return v

    @field_validator("integration")
    @classmethod
    def _integration(cls, v):
        if v not in (None, "local"):
            raise ValueError(f"integration {v!r} is not supported by deepsparse_lite's server "
                             "(only 'local')")
        return v

    @field_validator("engine_thread_pinning")
    @classmethod
    def _pinning(cls, v):
        if v not in ("core", "numa", "none"):
            raise ValueError(f"Expected one of ['core', 'numa', 'none'] for "
                             f"engine_thread_pinning, found {v}")
        return v

    @model_validator(mode="after")
    def _names_and_routes(self):
        if not self.endpoints:
            raise ValueError("endpoints: at least one endpoint is required")
        counts: Dict[str, int] = {}
        for ep in self.endpoints:
            base = ep.task.lower().replace("-", "_")
            counts[base] = counts.get(base, 0) + 1
        for idx, ep in enumerate(self.endpoints):
            if ep.name is None:
                base = ep.task.lower().replace("-", "_")
                ep.name = base if counts[base] == 1 else f"{base}-{idx}"
        seen: Dict[str, int] = {}
        for ep in self.endpoints:
            seen[ep.url_name] = seen.get(ep.url_name, 0) + 1
        dups = [n for n, c in seen.items() if c > 1]
        if dups:
            raise ValueError(f"endpoint name/route {dups[0]!r} specified {seen[dups[0]]} times")
        return self


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<config>"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key {loc!r}")
        elif e["type"] == "missing":
            lines.append(f"missing required key {loc!r}")
        else:
            lines.append(f"{loc}: {e['msg']}")
    return "invalid server config: " + "; ".join(lines)


def load_config(source) -> ServerConfig:
    """A :class:`ServerConfig` from a ServerConfig, a dict, or a YAML / JSON file path.
    Raises :class:`ConfigError` naming the offending key."""
    if isinstance(source, ServerConfig):
        return source
    if not isinstance(source, dict):
        import yaml
        with open(source) as f:
            source = yaml.safe_load(f)
        if not isinstance(source, dict):
            raise ConfigError(f"invalid server config: expected a mapping at the top level")
    try:
        return ServerConfig.model_validate(source)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None
