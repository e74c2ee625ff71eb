"""Benchmark an ONNX model: the ``deepsparse_lite.benchmark`` CLI (DeepSparse's
``deepsparse.benchmark``, same flags, defaults, stdout summary and JSON export).

##########
usage: deepsparse_lite.benchmark [-h] [-b BATCH_SIZE] [-i INPUT_SHAPES]
                                 [-ncores NUM_CORES] [-s {async,sync,elastic}]
                                 [-t TIME] [-w WARMUP_TIME] [-nstreams NUM_STREAMS]
                                 [-pin {none,core,numa}] [-e ENGINE] [-q]
                                 [-x EXPORT_PATH]
                                 model_path

Examples::

    # a local model, 10 s of back-to-back requests (sync = single stream)
    deepsparse_lite.benchmark /PATH/TO/model.onnx
    # batch 32, four Python threads sending requests to a multi-stream engine
    deepsparse_lite.benchmark model.onnx -b 32 -s async -nstreams 4
    # the same measurement on onnxruntime, for a side-by-side comparison
    deepsparse_lite.benchmark model.onnx -e onnxruntime -x ort.json
    # a SparseZoo stub resolves to the local sample model of that architecture
    deepsparse_lite.benchmark zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none

Scenarios: ``sync`` = ``singlestream`` (``Scheduler.single_stream``, one caller);
``async`` = ``multistream`` (``Scheduler.multi_stream``) and ``elastic``
(``Scheduler.elastic``) drive the engine from ``num_streams`` Python threads (default
``max(1, num_cores // 2)``). ``-pin`` sets ``NM_BIND_THREADS_TO_CORES`` /
``NM_BIND_THREADS_TO_SOCKETS`` before the engine is compiled.

Differences from DeepSparse: ``-i/-shapes`` never rewrites the ONNX file (overrides are
applied in memory or to a temporary copy); the exported ``model_path`` is the resolved
model, never a temporary file; ``benchmark_model(num_cores=None)`` resolves the available
physical cores first (DeepSparse's async default crashes on None); KV-cache flags are
accepted for compatibility but KV-cache models are not supported.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
from typing import Dict, Optional

__all__ = ["benchmark_model", "main", "parse_args"]

_LOGGER = logging.getLogger(__name__)
_PACKAGE_LOGGER = "deepsparse_lite"

DEEPSPARSE_ENGINE = "deepsparse"
ORT_ENGINE = "onnxruntime"


def _available_cores() -> int:
    from deepsparse_lite.cpu import cpu_architecture
    return int(cpu_architecture().num_available_physical_cores)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deepsparse_lite.benchmark",
        description="Benchmark ONNX models in the deepsparse_lite engine")
    parser.add_argument("model_path", type=str,
                        help="Path to an ONNX model file, a folder holding model.onnx, a "
                             "SparseZoo model stub (resolved to a local sample model) or a "
                             "sample model name (e.g. resnet50-pruned90)")
    parser.add_argument("-b", "--batch_size", type=int, default=1,
                        help="The batch size to run the analysis for. Must be greater than 0")
    parser.add_argument("-i", "-shapes", "--input_shapes", type=str, default="",
                        help="Override the shapes of the inputs, i.e. -shapes "
                             "\"[1,2,3],[4,5,6],[7,8,9]\" results in input0=[1,2,3] "
                             "input1=[4,5,6] input2=[7,8,9]")
    parser.add_argument("-ncores", "--num_cores", type=int, default=None,
                        help="The number of physical cores to run the analysis on, defaults to "
                             "all physical cores available on the system")
    parser.add_argument("-s", "--scenario", type=str, default="sync",
                        choices=["async", "sync", "elastic"],
                        help="Choose between using the async, sync and elastic scenarios. Sync "
                             "and async are similar to the single-stream/multi-stream scenarios. "
                             "Elastic behaves like async with the elastic scheduler. Default "
                             "value is sync.")
    parser.add_argument("-t", "--time", type=int, default=10,
                        help="The number of seconds the benchmark will run. Default is 10 seconds.")
    parser.add_argument("-w", "--warmup_time", type=int, default=2,
                        help="The number of seconds the benchmark will warmup before running."
                             "Default is 2 seconds.")
    parser.add_argument("-nstreams", "--num_streams", type=int, default=None,
                        help="The number of streams that will submit inferences in parallel "
                             "using async scenario. Default is automatically determined for "
                             "given hardware and may be sub-optimal.")
    parser.add_argument("-seq_len", "--sequence_length", type=int, default=None,
                        help="KV-cache models only (not supported by deepsparse_lite)")
    parser.add_argument("-input_ids_len", "--input_ids_length", type=int, default=1,
                        help="KV-cache models only (not supported by deepsparse_lite)")
    parser.add_argument("-pin", "--thread_pinning", type=str, default="core",
                        choices=["none", "core", "numa"],
                        help="Enable binding threads to cores ('core' the default), threads to "
                             "cores on sockets ('numa'), or disable ('none')")
    parser.add_argument("-e", "--engine", type=str, default=DEEPSPARSE_ENGINE,
                        help="Inference engine backend to run eval on. Choices are 'deepsparse' "
                             "(deepsparse_lite), 'onnxruntime'. Default is 'deepsparse'. Can also "
                             "specify a user defined engine class as "
                             "<path to python script>:<Engine Class name>")
    parser.add_argument("--no-internal-kv-cache", "--no_internal_kv_cache", dest="internal_kv_cache",
                        action="store_false", default=True,
                        help="KV-cache models only (not supported by deepsparse_lite)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="Lower logging verbosity (and no progress bar)")
    parser.add_argument("-x", "--export_path", type=str, default=None,
                        help="Store results into a JSON file")
    parser.add_argument("--disable-kv-cache-overrides", "--disable_kv_cache_overrides",
                        action="store_true", default=False,
                        help="KV-cache models only (not supported by deepsparse_lite)")
    parser.add_argument("--num-kv-cache-tokens", "--num_kv_cache_tokens", type=int, default=1,
                        help="KV-cache models only (not supported by deepsparse_lite)")
    return parser.parse_args(argv)


def set_logging_level(level: int) -> None:
    logging.getLogger(_PACKAGE_LOGGER).setLevel(level)


def decide_thread_pinning(pinning_mode: str) -> None:
    """Set the pinning variables the engine reads when it is created."""
    mode = (pinning_mode or "").lower()
    if mode == "core":
        os.environ["NM_BIND_THREADS_TO_CORES"] = "1"
        _LOGGER.info("Thread pinning to cores enabled")
    elif mode == "numa":
        os.environ["NM_BIND_THREADS_TO_CORES"] = "0"
        os.environ["NM_BIND_THREADS_TO_SOCKETS"] = "1"
        _LOGGER.info("Thread pinning to socket/numa nodes enabled")
    elif mode == "none":
        os.environ["NM_BIND_THREADS_TO_CORES"] = "0"
        os.environ["NM_BIND_THREADS_TO_SOCKETS"] = "0"
        _LOGGER.info("Thread pinning disabled, performance may be sub-optimal")
    else:
        _LOGGER.info("Recieved invalid option for thread_pinning '%s', skipping", pinning_mode)


def parse_scenario(scenario: str) -> str:
    """CLI scenario -> the name used in results: sync -> singlestream, async -> multistream."""
    scenario = scenario.lower()
    if scenario == "async":
        return "multistream"
    if scenario == "sync":
        return "singlestream"
    if scenario == "elastic":
        return "elastic"
    _LOGGER.info("Recieved invalid option for scenario'%s', defaulting to async", scenario)
    return "multistream"


def parse_scheduler(scenario: str):
    from deepsparse_lite.engine import Scheduler

    scenario = scenario.lower()
    if scenario == "singlestream":
        return Scheduler.single_stream
    if scenario == "elastic":
        return Scheduler.elastic
    return Scheduler.multi_stream


def parse_num_streams(num_streams: Optional[int], num_cores: int, scenario: str) -> int:
    """Python request threads (and engine streams): 1 for sync, else given or cores // 2."""
    if scenario in ("sync", "singlestream"):
        if num_streams and num_streams > 1:
            _LOGGER.info("num_streams reduced to 1 for singlestream scenario.")
        return 1
    if num_streams:
        return int(num_streams)
    default = max(1, int(num_cores / 2))
    _LOGGER.warning("num_streams default value chosen of %d. This requires tuning and may be "
                    "sub-optimal", default)
    return default


def load_custom_engine(custom_engine_identifier: str):
    """``'path/to/script.py:ClassName'`` -> the class, imported from that file."""
    path, name = custom_engine_identifier.rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("user_defined_custom_engine", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"Invalid engine choice '{custom_engine_identifier}': cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _warn_kv_cache(sequence_length, input_ids_length, internal_kv_cache, disable_kv_cache_overrides,
                   num_kv_cache_tokens) -> None:
    if (sequence_length is not None or input_ids_length != 1 or not internal_kv_cache
            or disable_kv_cache_overrides or num_kv_cache_tokens != 1):
        _LOGGER.warning("KV-cache options are ignored: deepsparse_lite does not support "
                        "KV-cache (LLM) models")


def benchmark_model(
    model_path: str,
    batch_size: int = 1,
    input_shapes: str = "",
    num_cores: Optional[int] = None,
    scenario: str = "sync",
    time: int = 10,
    warmup_time: int = 2,
    num_streams: Optional[int] = None,
    sequence_length: Optional[int] = None,
    input_ids_length: Optional[int] = 1,
    thread_pinning: str = "core",
    engine: str = DEEPSPARSE_ENGINE,
    internal_kv_cache: bool = True,
    quiet: bool = False,
    export_path: Optional[str] = None,
    disable_kv_cache_overrides: bool = False,
    num_kv_cache_tokens: int = 1,
) -> Dict:
    """Compile ``model_path``, time it for ``time`` seconds after ``warmup_time`` seconds of
    warm-up, and return the export dict (also written to ``export_path`` as JSON)::

        {"engine": str(engine), "version", "orig_model_path", "model_path", "batch_size",
         "input_shapes", "num_cores", "scenario", "scheduler", "seconds_to_run",
         "num_streams", "benchmark_result": {"scenario", "items_per_sec", "seconds_ran",
         "iterations", "median", "mean", "std", "25.0%", ..., "99.9%"},
         "fraction_of_supported_ops"}

    Latencies are ms per batch; ``items_per_sec`` is over the wall clock. ``model_path``
    may also name a sample model (``resnet50-pruned90``: ``utils.resolve.resolve_model``).
    Unless ``quiet``, a progress bar over the warm-up and timed seconds goes to stderr."""
    from deepsparse_lite.benchmark.stream_benchmark import ProgressBar, model_stream_benchmark
    from deepsparse_lite.utils import (generate_random_inputs, override_onnx_input_shapes,
                                       parse_input_shapes)
    from deepsparse_lite.utils.resolve import resolve_model
    from deepsparse_lite.version import __version__

    if quiet:
        set_logging_level(logging.WARN)
    _warn_kv_cache(sequence_length, input_ids_length, internal_kv_cache, disable_kv_cache_overrides,
                   num_kv_cache_tokens)
    decide_thread_pinning(thread_pinning)

    scenario = parse_scenario(scenario)
    scheduler = parse_scheduler(scenario)
    shapes = parse_input_shapes(input_shapes) if isinstance(input_shapes, str) else input_shapes
    orig_model_path = model_path
    model_path = resolve_model(model_path)
    if num_cores is None:
        num_cores = _available_cores()
    num_streams = parse_num_streams(num_streams, num_cores, scenario)

    if engine == DEEPSPARSE_ENGINE:
        from deepsparse_lite.engine import compile_model
        model = compile_model(model_path, batch_size=batch_size, num_cores=num_cores,
                              num_streams=num_streams, scheduler=scheduler, input_shapes=shapes)
    elif engine == ORT_ENGINE:
        from deepsparse_lite.benchmark.ort_engine import ORTEngine
        model = ORTEngine(model_path, batch_size=batch_size, num_cores=num_cores, input_shapes=shapes)
    elif isinstance(engine, str) and ":" in engine:
        model = load_custom_engine(engine)(model_path=model_path, batch_size=batch_size,
                                           num_cores=num_cores)
    else:
        raise ValueError(f"Invalid engine choice '{engine}'")
    _LOGGER.info(model)

    try:
        if hasattr(model, "generate_random_inputs"):
            input_list = model.generate_random_inputs()  # the shapes the model was compiled for
        else:
            with override_onnx_input_shapes(model_path, shapes) as shaped_path:
                input_list = generate_random_inputs(shaped_path, batch_size)

        _LOGGER.info("Starting '%s' performance measurements for %s seconds", scenario, time)
        bar = ProgressBar(max(0, warmup_time or 0) + time, disable=quiet)
        try:
            result = model_stream_benchmark(model, input_list, scenario=scenario, seconds_to_run=time,
                                            seconds_to_warmup=warmup_time, num_streams=num_streams,
                                            progress=bar)
        finally:
            bar.close()
        engine_str = str(model)
        scheduler_str = str(getattr(model, "scheduler", None))
        fraction = getattr(model, "fraction_of_supported_ops", None)
    finally:
        if callable(getattr(model, "close", None)):
            model.close()  # release the engine's streams: nothing else holds it

    export = {
        "engine": engine_str,
        "version": __version__,
        "orig_model_path": orig_model_path,
        "model_path": model_path,
        "batch_size": batch_size,
        "input_shapes": shapes,
        "num_cores": num_cores,
        "scenario": scenario,
        "scheduler": scheduler_str,
        "seconds_to_run": time,
        "num_streams": num_streams,
        "benchmark_result": result,
        "fraction_of_supported_ops": fraction,
    }
    if export_path:
        _LOGGER.info("Saving benchmark results to JSON file at %s", export_path)
        with open(export_path, "w") as out:
            json.dump(export, out, indent=2)
    return export


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger(_PACKAGE_LOGGER)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARN if quiet else logging.INFO)


def main(argv=None) -> None:
    """Console entry point: run ``benchmark_model`` and print DeepSparse's summary.
    (Returns None: console-script wrappers pass the return value to ``sys.exit``.)"""
    args = parse_args(argv)
    _configure_logging(args.quiet)
    result = benchmark_model(
        model_path=args.model_path,
        batch_size=args.batch_size,
        input_shapes=args.input_shapes,
        num_cores=args.num_cores,
        scenario=args.scenario,
        time=args.time,
        warmup_time=args.warmup_time,
        num_streams=args.num_streams,
        sequence_length=args.sequence_length,
        input_ids_length=args.input_ids_length,
        thread_pinning=args.thread_pinning,
        engine=args.engine,
        internal_kv_cache=args.internal_kv_cache,
        quiet=args.quiet,
        export_path=args.export_path,
        disable_kv_cache_overrides=args.disable_kv_cache_overrides,
        num_kv_cache_tokens=args.num_kv_cache_tokens,
    )
    bench = result["benchmark_result"]
    print("Original Model Path: {}".format(args.model_path))
    print("Batch Size: {}".format(args.batch_size))
    print("Scenario: {}".format(args.scenario))
    print("Throughput (items/sec): {:.4f}".format(bench["items_per_sec"]))
    print("Latency Mean (ms/batch): {:.4f}".format(bench["mean"]))
    print("Latency Median (ms/batch): {:.4f}".format(bench["median"]))
    print("Latency Std (ms/batch): {:.4f}".format(bench["std"]))
    print("Iterations: {}".format(int(bench["iterations"])))


if __name__ == "__main__":
    main()
