"""Prometheus metrics of one server app, in their own registry (so several apps, e.g. in
tests, do not collide in the global one). Served at ``GET /metrics``."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("deepsparse_lite_requests", "inference requests by endpoint "
                                "and HTTP status", ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("deepsparse_lite_prediction_latency_seconds",
                                 "inference latency by stage (pre_process, engine_forward, "
                                 "post_process, total_inference)", ["endpoint", "stage"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("deepsparse_lite_in_flight_requests", "inference requests being "
                               "handled", ["endpoint"], registry=self.registry)
        self.queue_depth = Gauge("deepsparse_lite_queue_depth", "inference requests waiting for "
                                 "an inference thread", ["endpoint"], registry=self.registry)
