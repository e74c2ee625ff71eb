"""The server's config as a Ray Serve application: the same routes, scaled out over replicas.

    deepsparse_lite.server --config-file config.yaml --ray [--address ADDR]

Layout: each endpoint is a deployment (:class:`EndpointReplica`) whose replicas each build
the endpoint's pipeline on their own :class:`~deepsparse_lite.Context` of
``num_cpus_per_replica`` cores, the replica's Ray ``num_cpus``. In front of them one
:class:`Ingress` deployment (``num_cpus: 0``: it only parses and forwards) serves the app of
:func:`~deepsparse_lite.server.app.create_app` with a :class:`RemotePipeline` per endpoint,
so the routes, bodies, errors and ``/metrics`` are the plain server's, and a replica runs a
request with the server's own :func:`~deepsparse_lite.server.app.handle_request`.

Cores: Ray's ``num_cpus`` is bookkeeping; every worker of a node starts with the same
affinity mask, so two one-core replicas on a node would both pin their Context to the mask's
first core. A replica therefore claims ``num_cpus`` physical cores of its mask with an
``flock`` per core (node-local lock files, released by the kernel when the replica dies),
narrows its process's mask to them, and only then builds the Context, which pins inside the
mask. A mask already narrowed by the platform (a container's cpuset) is respected the same
way: the claim never reaches outside it.
"""
import asyncio
import fcntl
import logging
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

from ray import serve

from deepsparse_lite.server.app import _default_factory, create_app, handle_request
from deepsparse_lite.server.config import EndpointConfig, load_config

__all__ = ["build_app", "deployment_options", "cpus_needed", "run_ray", "claim_cores",
           "EndpointReplica", "Ingress", "RemotePipeline", "APP_NAME", "REPLICA_HEADER"]

_LOG = logging.getLogger("deepsparse_lite.server.ray")

APP_NAME = "deepsparse_lite"
#: response header naming the replica that ran the request:
#: "<replica id> pid=<pid> num_cores=<its Context's> cpus=<its affinity mask>"
REPLICA_HEADER = "x-deepsparse-lite-replica"
LOCK_DIR = os.path.join(tempfile.gettempdir(), f"deepsparse_lite-cores-{os.getuid()}")


def _set_process_affinity(cpus) -> None:
    """``sched_setaffinity`` of every thread of this process (the call alone sets only the
    calling thread's; Ray's threads already run)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass          # a thread that ended meanwhile


def claim_cores(n: int, lock_dir: str = LOCK_DIR) -> Tuple[List[int], list]:
    """(logical CPUs, held lock files) of ``n`` physical cores of this process's affinity mask
    that no other process on this machine holds, and narrow the process's mask to them.

    When fewer than ``n`` cores are free (more replicas than cores on the node), the rest is
    taken from cores held by others, with a warning: they share those cores. The locks are
    kept as long as the returned files are open (the replica's lifetime)."""
    from deepsparse_lite.scheduler.topology import Topology

    cores = Topology.detect().physical_cores
    os.makedirs(lock_dir, exist_ok=True)
    mine, held = [], []
    for core in cores:
        if len(mine) == n:
            break
        f = open(os.path.join(lock_dir, f"cpu{core.cpu}.lock"), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        mine.append(core)
        held.append(f)
    if len(mine) < n:
        shared = [c for c in cores if c not in mine][:n - len(mine)]
        _LOG.warning("only %d of the %d cores this replica needs are free on this node; "
                     "sharing cores %s with another replica", len(mine), n,
                     [c.cpu for c in shared])
        mine += shared
    cpus = sorted(cpu for c in mine for cpu in c.siblings)
    _set_process_affinity(cpus)
    return cpus, held


class EndpointReplica:
    """One replica of one endpoint: its cores, its Context and the endpoint's pipeline."""

    def __init__(self, config: dict, url_name: str, num_cpus: int, max_ongoing_requests: int):
        from deepsparse_lite.engine import Context
        from deepsparse_lite.server.cli import apply_thread_pinning

        config = load_config(config)
        self.ep = next(ep for ep in config.endpoints if ep.url_name == url_name)
        cpus, self._locks = claim_cores(num_cpus)
        apply_thread_pinning(config)
        own = self.ep.scheduler is not None or self.ep.num_streams is not None
        context = None if own else Context(num_cores=num_cpus)
        self.pipeline = _default_factory(self.ep, context, num_cpus)
        self.context = context or self.pipeline.engine.context
        # every request Serve lets in (max_ongoing_requests) can be tokenised while the
        # Context's streams run the others
        self._executor = ThreadPoolExecutor(max_ongoing_requests, thread_name_prefix="dsl-replica")
        replica = serve.get_replica_context().replica_id.unique_id
        self._headers = {REPLICA_HEADER: f"{replica} pid={os.getpid()} num_cores="
                                         f"{self.context.num_cores} cpus={','.join(map(str, cpus))}"}
        _LOG.info("endpoint %s replica %s: %r on cpus %s", self.ep.name, replica, self.context,
                  cpus)

    def describe(self) -> dict:
        """What the ingress shows at ``/v2/models/{name}`` and ``/docs``."""
        p = self.pipeline
        return {"model_path": str(getattr(p, "model_path", self.ep.model)),
                "input_schema": getattr(p, "input_schema", None),
                "output_schema": getattr(p, "output_schema", None)}

    async def infer(self, body: dict):
        """(status, payload, [(stage, seconds)], headers) of one request body."""
        stages = []
        loop = asyncio.get_running_loop()
        status, payload = await loop.run_in_executor(
            self._executor, handle_request, self.ep, self.pipeline, body,
            lambda stage, sec: stages.append((stage, sec)))
        return status, payload, stages, self._headers

    def __del__(self):
        """Serve calls this when it stops the replica: finish the requests in hand, stop
        the Context's threads, give the cores back."""
        self._executor.shutdown(wait=True)
        self.pipeline.close()
        self.context.close()
        for f in self._locks:
            f.close()


class RemotePipeline:
    """An endpoint's pipeline as the ingress app sees it: metadata from a replica, and
    ``handle_remote`` (which the app prefers to running a pipeline itself) sending the body
    to the endpoint's deployment; the stage timings the replica measured go into the
    ingress's ``/metrics``."""

    def __init__(self, handle, meta: dict):
        self._handle = handle
        self.model_path = meta["model_path"]
        self.input_schema = meta["input_schema"]
        self.output_schema = meta["output_schema"]

    async def handle_remote(self, body: dict, observe):
        try:
            status, payload, stages, headers = await self._handle.infer.remote(body)
        except Exception as e:      # the replica died or is unreachable: the client is told
            _LOG.exception("replica call failed")
            return 503, {"error": type(e).__name__, "message": str(e)}, None
        for stage, sec in stages:
            observe(stage, sec)
        return status, payload, headers


@serve.ingress()
class Ingress:
    """The server's FastAPI app over the endpoints' deployment handles."""

    async def __init__(self, config: dict, handles: Dict[str, object]):
        config = load_config(config)
        pipelines = {}
        for ep in config.endpoints:
            handle = handles[ep.url_name]
            pipelines[ep.url_name] = (ep, RemotePipeline(handle, await handle.describe.remote()))
        self._app = create_app(config, pipelines=pipelines)

    def __serve_build_asgi_app__(self):
        return self._app


def _deployment_name(ep: EndpointConfig, taken: set) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", ep.url_name)
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def deployment_options(ep: EndpointConfig) -> dict:
    """Ray Serve options of ``ep``'s deployment: ``num_cpus`` = the replica Context's cores,
    ``num_replicas`` or ``autoscaling_config``, ``max_ongoing_requests``."""
    n = ep.num_cpus_per_replica or 1
    opts = {"ray_actor_options": {"num_cpus": n},
            "max_ongoing_requests": ep.max_ongoing_requests or max(4, 2 * (ep.num_streams or 1))}
    if ep.autoscaling_config is not None:
        opts["autoscaling_config"] = ep.autoscaling_config.model_dump(exclude_none=True)
    else:
        opts["num_replicas"] = ep.num_replicas or 1
    return opts


def cpus_needed(config) -> int:
    """CPUs the endpoints' replicas take at start (``initial_replicas``, else
    ``min_replicas``, when autoscaled): Serve waits for them without end when the cluster
    has fewer, so :func:`run_ray` checks first."""
    total = 0
    for ep in load_config(config).endpoints:
        opts = deployment_options(ep)
        auto = opts.get("autoscaling_config")
        replicas = opts["num_replicas"] if auto is None else auto.get(
            "initial_replicas", auto["min_replicas"])
        total += replicas * opts["ray_actor_options"]["num_cpus"]
    return total


def build_app(config):
    """The Ray Serve application of ``config`` (a ServerConfig, dict or YAML path): a
    deployment per endpoint (:func:`deployment_options`) and the ingress in front."""
    config = load_config(config)
    handles, taken = {}, {"Ingress"}
    for ep in config.endpoints:
        opts = deployment_options(ep)
        handles[ep.url_name] = serve.deployment(EndpointReplica).options(
            name=_deployment_name(ep, taken), **opts).bind(
            config.model_dump(), ep.url_name, opts["ray_actor_options"]["num_cpus"],
            opts["max_ongoing_requests"])
    # every request passes the ingress: let it take many at once (it waits, not computes)
    ingress = serve.deployment(Ingress).options(ray_actor_options={"num_cpus": 0},
                                                max_ongoing_requests=1000)
    return ingress.bind(config.model_dump(), handles)


def run_ray(config, address: Optional[str] = None, host: Optional[str] = None,
            port: int = 5543, wait=None) -> None:
    """Deploy ``config`` on the Ray cluster at ``address`` (``auto``, ``ray://...``, or an
    ``ip:port`` of a head) or on a new local one (CPUs = the physical cores of this
    process's affinity mask; on 127.0.0.1 when ``cli.RAY_LOOPBACK_ENV`` was set before Ray
    was imported, as the CLI does) and serve until SIGINT / SIGTERM; then delete the
    application (a cluster of its own is stopped). ``wait()``, when given, runs instead of
    waiting for a signal (the test drives the app from it)."""
    import signal
    import threading

    import ray

    from deepsparse_lite.server.cli import RAY_LOOPBACK_ENV, ServerStartError

    config = load_config(config)
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        host = host or "0.0.0.0"
    else:
        from deepsparse_lite.scheduler.topology import Topology

        # Ray counts logical CPUs; a replica's num_cpus are physical cores of its Context
        ray.init(address="local", include_dashboard=False,
                 num_cpus=Topology.detect().num_physical_cores, logging_level=logging.WARNING)
        host = host or "127.0.0.1"
        if ray.util.get_node_ip_address() != "127.0.0.1":
            _LOG.warning("the local Ray cluster listens on %s, not only on 127.0.0.1: set "
                         "%s=%s before ray is imported", ray.util.get_node_ip_address(),
                         *RAY_LOOPBACK_ENV)
    # after ray.init, which installs its own handler (a stack dump, then abort): SIGTERM
    # stops like Ctrl-C, through the clean-up below
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        need, have = cpus_needed(config), ray.cluster_resources().get("CPU", 0)
        if need > have:
            msg = (f"the endpoints' replicas need {need} CPUs (num_replicas x "
                   f"num_cpus_per_replica) and the Ray cluster has {have:g}")
            if not address:     # nothing will add CPUs to a cluster of our own
                raise ServerStartError(msg)
            _LOG.warning("%s: Serve waits until the cluster grows", msg)
        serve.start(http_options={"host": host, "port": port})
        try:
            serve.run(build_app(config), name=APP_NAME, route_prefix="/", blocking=False)
        except Exception as e:      # a replica's constructor failed: bad model path, task...
            raise ServerStartError(f"could not start the endpoints on Ray Serve: "
                                   f"{type(e).__name__}: {e}") from e
        _LOG.info("deepsparse_lite on Ray Serve at http://%s:%d: %s", host, port,
                  {ep.url_name: ep.num_replicas or ep.autoscaling_config or 1
                   for ep in config.endpoints})
        (wait or threading.Event().wait)()
    except KeyboardInterrupt:
        _LOG.info("stopping")
    finally:
        try:
            if address:
                serve.delete(APP_NAME)
            else:
                serve.shutdown()
        finally:
            ray.shutdown()
            signal.signal(signal.SIGTERM, previous)
