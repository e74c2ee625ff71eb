"""Timings of batched inference runs, as ``deepsparse.benchmark.results``.

``BatchBenchmarkResult`` is one timed batch; ``BenchmarkResults`` collects them (it is what
``Engine.benchmark`` / ``Engine.benchmark_loader`` return). Units follow DeepSparse exactly,
mixed as they are: ``ms_per_batch`` / ``ms_per_item`` are milliseconds while
``batch_times`` and ``batch_times_mean`` / ``_median`` / ``_std`` are **seconds**.

Example::

    results = engine.benchmark(engine.generate_random_inputs(), num_iterations=50)
    print(results.items_per_second, results.ms_per_batch)
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

import numpy

__all__ = ["BatchBenchmarkResult", "BenchmarkResults"]

Arrays = Optional[Union[List[numpy.ndarray], Dict[str, numpy.ndarray]]]


class BatchBenchmarkResult:
    """One timed batch.

    :param time_start: clock reading (seconds) when the batch started
    :param time_end: clock reading (seconds) when it ended
    :param batch_size: items in the batch
    :param inputs: the batch's inputs, if kept
    :param outputs: the batch's outputs, if kept
    :param extras: anything else worth keeping about the run
    """

    def __init__(self, time_start: float, time_end: float, batch_size: int, inputs: Arrays = None,
                 outputs: Arrays = None, extras: Any = None):
        self._time_start = time_start
        self._time_end = time_end
        self._batch_size = batch_size
        self._inputs = inputs
        self._outputs = outputs
        self._extras = extras

    def __repr__(self) -> str:
        props = {
            "time_start": self.time_start,
            "time_end": self.time_end,
            "size": self.batch_size,
            "batches_per_second": self.batches_per_second,
            "items_per_second": self.items_per_second,
            "ms_per_batch": self.ms_per_batch,
            "ms_per_item": self.ms_per_item,
        }
        return f"{self.__class__.__name__}({props})"

    def __str__(self) -> str:
        return (f"{self.__class__.__name__}(ms_per_batch={self.ms_per_batch}, "
                f"items_per_second={self.items_per_second})")

    @property
    def time_start(self) -> float:
        return self._time_start

    @property
    def time_end(self) -> float:
        return self._time_end

    @property
    def time_elapsed(self) -> float:
        """Seconds from start to end."""
        return self._time_end - self._time_start

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def inputs(self) -> Arrays:
        return self._inputs

    @property
    def outputs(self) -> Arrays:
        return self._outputs

    @property
    def extras(self) -> Any:
        return self._extras

    @property
    def batches_per_second(self) -> float:
        return 1.0 / self.time_elapsed

    @property
    def items_per_second(self) -> float:
        return self._batch_size / self.time_elapsed

    @property
    def ms_per_batch(self) -> float:
        return self.time_elapsed * 1000.0

    @property
    def ms_per_item(self) -> float:
        return self.time_elapsed * 1000.0 / self._batch_size


class BenchmarkResults(Iterable):
    """The timed batches of one benchmark: iterable, indexable, ``len()`` = batches.

    Aggregates: ``items_per_second`` / ``batches_per_second`` (over the summed batch times,
    i.e. excluding gaps between batches), ``ms_per_batch`` / ``ms_per_item`` (ms) and
    ``batch_times_mean`` / ``_median`` / ``_std`` (seconds)."""

    def __init__(self):
        self._results: List[BatchBenchmarkResult] = []

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._properties_dict})"

    def __str__(self) -> str:
        lines = ["\t{}: {}".format(k, v) for k, v in self._properties_dict.items()]
        return "{}:\n{}".format(self.__class__.__name__, "\n".join(lines))

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, index: int) -> BatchBenchmarkResult:
        return self._results[index]

    def __iter__(self) -> Iterator[BatchBenchmarkResult]:
        return iter(list(self._results))

    @property
    def _properties_dict(self) -> Dict[str, float]:
        return {
            "items_per_second": self.items_per_second,
            "ms_per_batch": self.ms_per_batch,
            "batch_times_mean": self.batch_times_mean,
            "batch_times_median": self.batch_times_median,
            "batch_times_std": self.batch_times_std,
        }

    @property
    def results(self) -> List[BatchBenchmarkResult]:
        return self._results

    @property
    def num_batches(self) -> int:
        return len(self._results)

    @property
    def num_items(self) -> int:
        return sum(r.batch_size for r in self._results)

    @property
    def batch_times(self) -> List[float]:
        """Seconds per batch."""
        return [r.time_elapsed for r in self._results]

    @property
    def batch_sizes(self) -> List[int]:
        return [r.batch_size for r in self._results]

    @property
    def batch_times_mean(self) -> float:
        """Seconds."""
        return numpy.mean(self.batch_times).item()

    @property
    def batch_times_median(self) -> float:
        """Seconds."""
        return numpy.median(self.batch_times).item()

    @property
    def batch_times_std(self) -> float:
        """Seconds."""
        return numpy.std(self.batch_times).item()

    @property
    def batches_per_second(self) -> float:
        return self.num_batches / sum(self.batch_times)

    @property
    def items_per_second(self) -> float:
        return self.num_items / sum(self.batch_times)

    @property
    def ms_per_batch(self) -> float:
        return sum(self.batch_times) * 1000.0 / self.num_batches

    @property
    def ms_per_item(self) -> float:
        return sum(self.batch_times) * 1000.0 / self.num_items

    @property
    def inputs(self) -> List[Arrays]:
        return [r.inputs for r in self._results]

    @property
    def outputs(self) -> List[Arrays]:
        return [r.outputs for r in self._results]

    def append_batch(self, time_start: float, time_end: float, batch_size: int, inputs: Arrays = None,
                     outputs: Arrays = None, extras: Any = None) -> None:
        """Record one timed batch."""
        self._results.append(
            BatchBenchmarkResult(time_start, time_end, batch_size, inputs, outputs, extras))
