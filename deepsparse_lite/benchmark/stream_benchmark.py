"""The timing loops behind the benchmark CLI (DeepSparse's ``model_stream_benchmark``).

- ``singlestream``: one caller runs the model back to back until the deadline.
- ``multistream`` / ``elastic``: ``num_streams`` Python threads each run the model back to
  back until a shared deadline (the engine releases the GIL, so requests overlap as far as
  the scheduler allows). The warm-up is a shorter run of the same kind.

Every call is ``model.run(inputs, val_inp=False)`` timed with ``time.perf_counter``.
``progress``, when given, is called with the end time of each call (from every request
thread): the CLI's progress bar (``ProgressBar``) advances on it, off the timed interval.
Throughput is measured over the wall clock, ``batch_size * iterations / (last end - first
start)``, so it includes the loop's own overhead; latencies are per call, in milliseconds.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy

__all__ = ["model_stream_benchmark", "singlestream_benchmark", "multistream_benchmark",
           "PERCENTILES", "ProgressBar"]

PERCENTILES = (25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
SCENARIOS = ("singlestream", "multistream", "elastic")


def singlestream_benchmark(model, input_list: List[numpy.ndarray], seconds_to_run: float,
                           progress: Optional[Callable[[float], None]] = None) -> List[List[float]]:
    """[start, end] of each call made back to back for ``seconds_to_run`` seconds."""
    times = []
    clock = time.perf_counter
    deadline = clock() + seconds_to_run
    while clock() < deadline:
        start = clock()
        model.run(input_list, val_inp=False)
        end = clock()
        times.append([start, end])
        if progress is not None:
            progress(end)
    return times


def _stream_worker(model, input_list, deadline: float, out: "queue.Queue", errors: list,
                   progress: Optional[Callable[[float], None]] = None) -> None:
    clock = time.perf_counter
    try:
        while clock() < deadline:
            start = clock()
            model.run(input_list, val_inp=False)
            end = clock()
            out.put([start, end])
            if progress is not None:
                progress(end)
    except BaseException as exc:  # surfaced by the caller instead of dying in a thread
        errors.append(exc)


def multistream_benchmark(model, input_list: List[numpy.ndarray], seconds_to_run: float,
                          num_streams: int,
                          progress: Optional[Callable[[float], None]] = None) -> List[List[float]]:
    """[start, end] of each call made by ``num_streams`` threads until a shared deadline."""
    times: "queue.Queue" = queue.Queue()
    errors: list = []
    deadline = time.perf_counter() + seconds_to_run
    threads = [threading.Thread(target=_stream_worker,
                                args=(model, input_list, deadline, times, errors, progress),
                                name=f"dsl-bench-stream-{k}", daemon=True)
               for k in range(max(1, int(num_streams or 1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return list(times.queue)


def _timings(model, input_list, scenario: str, seconds: float, num_streams: int,
             progress: Optional[Callable[[float], None]] = None) -> List[List[float]]:
    if scenario == "singlestream":
        return singlestream_benchmark(model, input_list, seconds, progress)
    return multistream_benchmark(model, input_list, seconds, num_streams, progress)


class ProgressBar:
    """A tqdm bar over the benchmark's seconds (warm-up, then the timed run) on stderr.

    ``phase(name, seconds)`` starts a phase; calling the bar with a ``perf_counter`` time
    moves it to the seconds elapsed in the phase (redrawn at most every 0.1 s, so the
    request loops pay one comparison per call). ``disable=True`` (``-q``) draws nothing."""

    def __init__(self, total_seconds: float, disable: bool = False, file=None):
        from tqdm import tqdm

        self._total = float(total_seconds)
        self._bar = tqdm(total=self._total, unit="s", file=file or sys.stderr,
                         disable=disable, dynamic_ncols=True, leave=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s "
                                    "[{elapsed}<{remaining}]")
        self._base = 0.0       # seconds of the phases already finished
        self._t0 = time.perf_counter()
        self._span = 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def phase(self, name: str, seconds: float) -> None:
        with self._lock:
            self._base += self._span  # the previous phase is complete
            self._move(self._base)
            self._bar.set_description_str(name, refresh=False)
            self._t0 = time.perf_counter()
            self._span = float(seconds)
            self._next = self._t0

    def __call__(self, now: float) -> None:
        if now < self._next:
            return
        with self._lock:
            self._next = now + 0.1
            self._move(self._base + min(now - self._t0, self._span))

    def close(self) -> None:
        with self._lock:
            self._move(self._base + self._span)
            self._bar.close()

    def _move(self, seconds: float) -> None:
        seconds = min(seconds, self._total)
        if not self._bar.disable and seconds > self._bar.n:
            self._bar.n = seconds
            self._bar.refresh()


def model_stream_benchmark(model, input_list: List[numpy.ndarray], scenario: str, seconds_to_run: float,
                           seconds_to_warmup: float, num_streams: int,
                           progress: Optional[ProgressBar] = None) -> Dict:
    """Warm up, time, and summarise: the dict stored under ``benchmark_result`` in the CLI's
    JSON (keys ``scenario, items_per_sec, seconds_ran, iterations, median, mean, std`` and
    the percentiles ``"25.0%" ... "99.9%"``, latencies in ms). ``progress``: a
    :class:`ProgressBar` to advance (phases "warmup" and "benchmark")."""
    if scenario not in SCENARIOS:
        raise Exception(f"Unknown scenario '{scenario}'")
    if seconds_to_warmup and seconds_to_warmup > 0:
        if progress is not None:
            progress.phase("warmup", seconds_to_warmup)
        _timings(model, input_list, scenario, seconds_to_warmup, num_streams, progress)
    if progress is not None:
        progress.phase(scenario, seconds_to_run)
    batch_times = _timings(model, input_list, scenario, seconds_to_run, num_streams, progress)
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
