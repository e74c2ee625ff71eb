"""Benchmarking: the ``deepsparse_lite.benchmark`` CLI and the result containers.

- ``benchmark_model(model_path, batch_size=1, ..., scenario="sync", time=10, ...)`` -> dict:
  compile, warm up, time back-to-back requests (sync) or ``num_streams`` concurrent Python
  request threads (async/elastic), and summarise latency percentiles and throughput. The
  console script ``deepsparse_lite.benchmark`` (``main``) prints DeepSparse's summary.
- ``-e onnxruntime`` runs the same loop on onnxruntime (``ORTEngine``) for comparisons.
- ``BenchmarkResults`` / ``BatchBenchmarkResult``: what ``Engine.benchmark`` returns.
"""
from deepsparse_lite.benchmark.results import BatchBenchmarkResult, BenchmarkResults
from deepsparse_lite.benchmark.benchmark_model import benchmark_model, main

__all__ = ["main", "benchmark_model", "BenchmarkResults", "BatchBenchmarkResult"]
