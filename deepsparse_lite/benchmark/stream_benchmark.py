"""The timing loops behind the benchmark CLI (DeepSparse's ``model_stream_benchmark``).

- ``singlestream``: one caller runs the model back to back until the deadline.
- ``multistream`` / ``elastic``: ``num_streams`` Python threads each run the model back to
  back until a shared deadline (the engine releases the GIL, so requests overlap as far as
  the scheduler allows). The warm-up is a shorter run of the same kind.

Every call is ``model.run(inputs, val_inp=False)`` timed with ``time.perf_counter``.
Throughput is measured over the wall clock, ``batch_size * iterations / (last end - first
start)``, so it includes the loop's own overhead; latencies are per call, in milliseconds.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Dict, List, Sequence

import numpy

__all__ = ["model_stream_benchmark", "singlestream_benchmark", "multistream_benchmark",
           "PERCENTILES"]

PERCENTILES = (25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
SCENARIOS = ("singlestream", "multistream", "elastic")


def singlestream_benchmark(model, input_list: List[numpy.ndarray], seconds_to_run: float) -> List[List[float]]:
    """[start, end] of each call made back to back for ``seconds_to_run`` seconds."""
    times = []
    clock = time.perf_counter
    deadline = clock() + seconds_to_run
    while clock() < deadline:
        start = clock()
        model.run(input_list, val_inp=False)
        times.append([start, clock()])
    return times


def _stream_worker(model, input_list, deadline: float, out: "queue.Queue", errors: list) -> None:
    clock = time.perf_counter
    try:
        while clock() < deadline:
            start = clock()
            model.run(input_list, val_inp=False)
            out.put([start, clock()])
    except BaseException as exc:  # surfaced by the caller instead of dying in a thread
        errors.append(exc)


def multistream_benchmark(model, input_list: List[numpy.ndarray], seconds_to_run: float,
                          num_streams: int) -> List[List[float]]:
    """[start, end] of each call made by ``num_streams`` threads until a shared deadline."""
    times: "queue.Queue" = queue.Queue()
    errors: list = []
    deadline = time.perf_counter() + seconds_to_run
    threads = [threading.Thread(target=_stream_worker, args=(model, input_list, deadline, times, errors),
                                name=f"dsl-bench-stream-{k}", daemon=True)
               for k in range(max(1, int(num_streams or 1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return list(times.queue)


def _timings(model, input_list, scenario: str, seconds: float, num_streams: int) -> List[List[float]]:
    if scenario == "singlestream":
        return singlestream_benchmark(model, input_list, seconds)
    return multistream_benchmark(model, input_list, seconds, num_streams)


def model_stream_benchmark(model, input_list: List[numpy.ndarray], scenario: str, seconds_to_run: float,
                           seconds_to_warmup: float, num_streams: int) -> Dict:
    """Warm up, time, and summarise: the dict stored under ``benchmark_result`` in the CLI's
    JSON (keys ``scenario, items_per_sec, seconds_ran, iterations, median, mean, std`` and
    the percentiles ``"25.0%" ... "99.9%"``, latencies in ms)."""
    if scenario not in SCENARIOS:
        raise Exception(f"Unknown scenario '{scenario}'")
    if seconds_to_warmup and seconds_to_warmup > 0:
        _timings(model, input_list, scenario, seconds_to_warmup, num_streams)
    batch_times = _timings(model, input_list, scenario, seconds_to_run, num_streams)
    if not batch_times:
        raise Exception("Generated no batch timings, try extending benchmark time with '--time'")
    return summarize(batch_times, _batch_size(model, input_list), scenario)


def _batch_size(model, input_list: Sequence[numpy.ndarray]) -> int:
    bs = getattr(model, "batch_size", None)
    if bs:
        return int(bs)
    # batch override disabled (batch_size None): count the items actually fed
    if input_list and getattr(input_list[0], "ndim", 0):
        return int(input_list[0].shape[0])
    return 1


def summarize(batch_times: Sequence[Sequence[float]], batch_size: int, scenario: str) -> Dict:
    latencies_ms = [(end - start) * 1000.0 for start, end in batch_times]
    first_start = min(t[0] for t in batch_times)
    last_end = max(t[1] for t in batch_times)
    wall = last_end - first_start
    items_per_sec = batch_size * len(batch_times) / wall if wall > 0 else float("inf")
    buckets = numpy.percentile(latencies_ms, PERCENTILES).tolist()
    return {
        "scenario": scenario,
        "items_per_sec": items_per_sec,
        "seconds_ran": wall,
        "iterations": len(latencies_ms),
        "median": float(numpy.median(latencies_ms)),
        "mean": float(numpy.mean(latencies_ms)),
        "std": float(numpy.std(latencies_ms)),
        **{"{:2.1f}%".format(p): v for p, v in zip(PERCENTILES, buckets)},
    }
