"""The FastAPI app: one pipeline per endpoint, inference on a thread pool off the event loop.

Every endpoint without its own ``scheduler`` / ``num_streams`` runs on one shared elastic
:class:`~deepsparse_lite.Context` (``num_cores`` / ``num_workers`` at the top of the config),
so concurrent requests to any endpoint reach the Context's streams in parallel: the handler
hands the request to a ``ThreadPoolExecutor`` and the engine releases the GIL while it runs.
"""
import asyncio
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Callable, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import ClientDisconnect
from pydantic import ValidationError

from deepsparse_lite.server.config import EndpointConfig, ServerConfig, load_config
from deepsparse_lite.server.metrics import ServerMetrics

__all__ = ["create_app", "build_pipelines", "handle_request", "BodySizeLimit"]

_LOG = logging.getLogger("deepsparse_lite.server")


def _default_factory(ep: EndpointConfig, context, num_cores):
    from deepsparse_lite.pipelines import Pipeline
    kwargs = dict(ep.kwargs)
    if ep.scheduler is not None or ep.num_streams is not None:
        return Pipeline.create(task=ep.task, model_path=ep.model, batch_size=ep.batch_size,
                               num_cores=num_cores, num_streams=ep.num_streams,
                               scheduler=ep.scheduler, alias=ep.name, **kwargs)
    return Pipeline.create(task=ep.task, model_path=ep.model, batch_size=ep.batch_size,
                           context=context, alias=ep.name, **kwargs)


def build_pipelines(config: ServerConfig, factory: Optional[Callable] = None):
    """(shared Context, {url_name: (EndpointConfig, pipeline)}). ``factory(ep, context,
    num_cores)`` builds a pipeline; the default calls ``Pipeline.create``."""
    from deepsparse_lite.engine import Context
    context = Context(num_cores=config.num_cores, num_streams=config.num_workers)
    factory = factory or _default_factory
    out = {}
    for ep in config.endpoints:
        out[ep.url_name] = (ep, factory(ep, context, config.num_cores))
    return context, out


class BodySizeLimit:
    """ASGI middleware: a request body above ``limit`` bytes gets 413 (by Content-Length
    before reading, or while streaming a chunked body)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    n = 0
                if n > self.limit:
                    return await self._reject(send, n)
        total = 0
        limit = self.limit

        class _TooLarge(Exception):
            pass

        async def limited_receive():
            nonlocal total
            msg = await receive()
            if msg["type"] == "http.request":
                total += len(msg.get("body", b""))
                if total > limit:
                    raise _TooLarge()
            return msg

        started = False

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, total)

    async def _reject(self, send, n):
        body = json.dumps({"error": "PayloadTooLarge", "message": f"request body of {n} bytes "
                           f"exceeds the server's limit of {self.limit} bytes "
                           "(max_request_body_bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class InputError(ValueError):
    """The pipeline's pre-processing refused the request's values (a text too long, one the
    tokenizer cannot take, ...): the client's fault, answered with 422, not 500."""


def _run_timed(pipeline, body: dict, observe):
    """Run ``pipeline`` on ``body`` stage by stage when it exposes the stages
    (``parse_inputs`` / ``process_inputs`` / ``run_engine`` / ``process_engine_outputs``),
    else as one call; ``observe(stage, seconds)`` records each stage. A ValueError of the
    pre-processing stages is raised as :class:`InputError`."""
    t0 = time.perf_counter()
    stages = all(hasattr(pipeline, a) for a in ("parse_inputs", "process_inputs", "run_engine",
                                                 "process_engine_outputs"))
    if not stages:
        out = pipeline(**body)
    else:
        try:
            parsed = pipeline.parse_inputs(**body)
            processed = pipeline.process_inputs(parsed)
        except ValidationError:
            raise
        except ValueError as e:  # pipelines refuse bad input values with ValueError
            raise InputError(str(e)) from e
        arrays, ctx = processed if isinstance(processed, tuple) else (processed, {})
        t1 = time.perf_counter()
        outputs = pipeline.run_engine(arrays)
        t2 = time.perf_counter()
        out = pipeline.process_engine_outputs(outputs, **ctx)
        t3 = time.perf_counter()
        observe("pre_process", t1 - t0)
        observe("engine_forward", t2 - t1)
        observe("post_process", t3 - t2)
    observe("total_inference", time.perf_counter() - t0)
    return out.model_dump() if hasattr(out, "model_dump") else out


def _describe(errs) -> str:
    """``field: message; ...`` of pydantic errors (``<body>`` for the body itself)."""
    return "; ".join(f"{'.'.join(str(p) for p in x['loc']) or '<body>'}: {x['msg']}" for x in errs)


def _error(status: int, kind: str, message: str, **extra):
    return JSONResponse({"error": kind, "message": message, **extra}, status_code=status)


def handle_request(ep: EndpointConfig, pipeline, body: dict, observe):
    """(HTTP status, JSON payload) of one parsed request body: the body checked against the
    pipeline's ``input_schema`` (422 naming the fields), then the pipeline run (422 when its
    own validator refuses, 500 with the reason when it fails; the server keeps serving).
    Shared by the server's handler and the Ray Serve replicas, so both answer alike."""
    schema = getattr(pipeline, "input_schema", None)
    try:
        if schema is not None:
            schema.model_validate(body)
        return 200, _run_timed(pipeline, body, observe)
    except ValidationError as e:
        errs = [{"loc": list(x["loc"]), "msg": x["msg"], "type": x["type"]} for x in e.errors()]
        return 422, {"error": "ValidationError", "message": f"invalid request for {ep.name}: "
                     + _describe(errs), "detail": errs}
    except InputError as e:
        return 422, {"error": "InvalidInput", "message": f"invalid request for {ep.name}: {e}"}
    except Exception as e:
        _LOG.exception("endpoint %s failed", ep.name)
        return 500, {"error": type(e).__name__, "message": str(e)}


def create_app(config, pipelines: Optional[Dict] = None, factory: Optional[Callable] = None,
               context=None) -> FastAPI:
    """The server app for ``config`` (a ServerConfig, dict or YAML path).

    ``pipelines`` ({url_name: (EndpointConfig, pipeline)}) skips building them (tests);
    otherwise they are built here with ``factory`` (see :func:`build_pipelines`)."""
    config = load_config(config)
    if pipelines is None:
        context, pipelines = build_pipelines(config, factory)
    metrics = ServerMetrics()
    # enough threads that every stream (the shared Context's and any endpoint's own engine's)
    # has a request in hand while the next one is being tokenised
    streams = getattr(context, "num_streams", None) or 1
    streams += sum(ep.num_streams or 1 for ep, _ in pipelines.values()
                   if ep.scheduler is not None or ep.num_streams is not None)
    threads = config.inference_threads or max(4, 2 * streams)
    state = {"executor": None}

    @asynccontextmanager
    async def lifespan(app):
        state["executor"] = ThreadPoolExecutor(threads, thread_name_prefix="dsl-infer")
        _LOG.info("deepsparse_lite server: %d endpoint(s) %s, %d inference threads",
                  len(pipelines), sorted(pipelines), threads)
        yield
        # uvicorn has already stopped accepting and waited for open requests; finish any
        # work still queued before the pipelines go away
        state["executor"].shutdown(wait=True)

    app = FastAPI(title="deepsparse_lite server", lifespan=lifespan,
                  description="DeepSparse-compatible inference server (deepsparse_lite)")
    app.state.config = config
    app.state.pipelines = pipelines
    app.state.metrics = metrics
    app.state.context = context

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/docs")

    @app.get("/config")
    async def get_config():
        return config.model_dump()

    @app.get("/v2/health/ready")
    async def health_ready():
        return {"status": "OK"}

    @app.get("/v2/health/live")
    async def health_live():
        return {"status": "OK"}

    @app.get("/v2")
    async def v2():
        return "This is the deepsparse_lite server. Hello!"

    @app.get("/metrics", include_in_schema=False)
    async def get_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def _lookup(name):
        entry = pipelines.get(name)
        if entry is None:
            return None, _error(404, "ModelNotFound", f"no model named {name!r}; served models: "
                                f"{sorted(pipelines)}")
        return entry, None

    # the body is read by hand (so 413 / 422 are ours), so /docs is told its schema here
    bodies = []
    for _, p in pipelines.values():
        s = getattr(p, "input_schema", None)
        if s is not None and hasattr(s, "model_json_schema"):
            js = s.model_json_schema()
            if "$defs" not in js and js not in bodies:
                bodies.append(js)
    infer_doc = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": bodies[0] if len(bodies) == 1 else {"anyOf": bodies}}}}} if bodies else None

    @app.post("/v2/models/{name:path}/infer", openapi_extra=infer_doc,
              summary="Run the endpoint's pipeline on the JSON body (its input fields)")
    async def infer(name: str, request: Request):
        entry, err = _lookup(name)
        if err is not None:
            return err
        ep, pipeline = entry
        labels = (ep.name,)
        metrics.in_flight.labels(*labels).inc()
        try:
            resp = await _infer(ep, pipeline, request)
        finally:
            metrics.in_flight.labels(*labels).dec()
        metrics.requests.labels(ep.name, str(resp.status_code)).inc()
        return resp

    async def _infer(ep, pipeline, request):
        try:
            raw = await request.body()
        except ClientDisconnect:
            # the client went away mid-body: nobody to answer (this was an "Exception in
            # ASGI application" traceback per dropped connection); 499 only labels metrics
            _LOG.debug("endpoint %s: client disconnected before sending its body", ep.name)
            return Response(status_code=499)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as e:
            return _error(422, "InvalidJSON", f"request body is not valid JSON: {e}")
        except RecursionError:  # e.g. "[[[[..." within the body size limit: was a bare 500
            return _error(422, "InvalidJSON", "request body is not valid JSON: nested too deeply")
        if not isinstance(body, dict):
            return _error(422, "InvalidBody", "request body must be a JSON object of the "
                          "pipeline's input fields")

        def observe(stage, sec):
            metrics.latency.labels(ep.name, stage).observe(sec)

        headers = None
        remote = getattr(pipeline, "handle_remote", None)
        if remote is not None:      # a pipeline served elsewhere (ray_serve.py): no thread here
            status, payload, headers = await remote(body, observe)
        else:
            qd = metrics.queue_depth.labels(ep.name)
            qd.inc()

            def job():
                qd.dec()
                return handle_request(ep, pipeline, body, observe)

            loop = asyncio.get_running_loop()
            status, payload = await loop.run_in_executor(state["executor"], job)
        return JSONResponse(payload, status_code=status, headers=headers)

    @app.get("/v2/models/{name:path}/ready")
    async def model_ready(name: str):
        _, err = _lookup(name)
        return err or {"status": "OK"}

    @app.get("/v2/models/{name:path}")
    async def model_metadata(name: str):
        entry, err = _lookup(name)
        if err is not None:
            return err
        ep, p = entry
        meta = {"name": ep.name, "task": ep.task, "model_path": str(getattr(p, "model_path", ep.model)),
                "batch_size": ep.batch_size}
        for attr in ("input_schema", "output_schema"):
            s = getattr(p, attr, None)
            if s is not None and hasattr(s, "model_json_schema"):
                meta[attr] = s.model_json_schema()
        return meta

    app.add_middleware(BodySizeLimit, limit=config.max_request_body_bytes)
    return app
