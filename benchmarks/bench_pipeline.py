"""Pipeline overhead: text-classification pipeline latency vs the bare engine's, batch 1.

The pipeline and its own engine run the same request: the engine on the arrays the pipeline's
tokenizer produced, the pipeline on the raw text (pydantic validation, tokenisation, engine,
softmax, output schema). Calls alternate one by one (order flipped each time) so noise on the
shared cores hits both alike; figures are medians over every call, plus the median of the
paired (pipeline - engine) differences. The overhead share is
``(pipeline - engine) / engine``; the pre- and post-processing are also timed on their own
(``(pre + post) / engine``), which is the steadier figure on a busy machine.

    python benchmarks/bench_pipeline.py [--model STUB_OR_FOLDER] [--iters 30] [--rounds 3]
                                        [--text "..."] [--json out.json]

Default model: the seed example's stub (BERT-base, 90% pruned, INT8; a local sample with
synthetic weights), sequence length 128.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STUB = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
TEXT = "The sentiment analysis pipeline is fast and easy to use"


def _times(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=STUB)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from deepsparse_lite import Pipeline

    p = Pipeline.create("sentiment-analysis", model_path=args.model, batch_size=1)
    engine = p.engine
    parsed = p.parse_inputs(args.text)
    arrays = p.process_inputs(parsed)
    logits = engine.run(arrays)

    run_engine = lambda: engine.run(arrays)        # noqa: E731
    run_pipe = lambda: p(args.text)                # noqa: E731
    pre = lambda: p.process_inputs(p.parse_inputs(args.text))  # noqa: E731
    post = lambda: p.process_engine_outputs(logits)            # noqa: E731
    for f in (run_engine, run_pipe):
        _times(f, args.warmup)
    # strictly interleaved, order flipped every iteration: a burst of load from another
    # process hits both series alike, and the paired differences cancel it
    eng, pipe = [], []
    for r in range(args.rounds * args.iters):
        pair = (run_engine, run_pipe) if r % 2 == 0 else (run_pipe, run_engine)
        for f in pair:
            (eng if f is run_engine else pipe).append(_times(f, 1)[0])
    paired = statistics.median(b - a for a, b in zip(eng, pipe))
    t_pre = statistics.median(_times(pre, 200))
    t_post = statistics.median(_times(post, 200))
    t_eng, t_pipe = statistics.median(eng), statistics.median(pipe)
    res = {
        "model": args.model, "onnx": p.model_path, "sequence_length": p.sequence_length,
        "num_cores": engine.num_cores, "iterations": len(eng),
        "engine_ms": t_eng * 1e3, "pipeline_ms": t_pipe * 1e3,
        "pre_ms": t_pre * 1e3, "post_ms": t_post * 1e3,
        "overhead_share": (t_pipe - t_eng) / t_eng,
        "paired_overhead_share": paired / t_eng,
        "engine_min_ms": min(eng) * 1e3, "pipeline_min_ms": min(pipe) * 1e3,
        "pre_post_share": (t_pre + t_post) / t_eng,
    }
    print(f"model {args.model}\n  onnx {p.model_path} (seq {p.sequence_length}, "
          f"{engine.num_cores} cores, {len(eng)} iterations each)")
    print(f"  engine    median {res['engine_ms']:8.3f} ms")
    print(f"  pipeline  median {res['pipeline_ms']:8.3f} ms")
    print(f"  pre-processing {res['pre_ms']:.3f} ms, post-processing {res['post_ms']:.3f} ms")
    print(f"  overhead share (pipeline - engine) / engine: {res['overhead_share']:+.2%}")
    print(f"  median paired difference / engine:          {res['paired_overhead_share']:+.2%}")
    print(f"  best engine {res['engine_min_ms']:.3f} ms, best pipeline {res['pipeline_min_ms']:.3f} ms")
    print(f"  (pre + post) / engine:                       {res['pre_post_share']:.2%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    p.close()
    return res


if __name__ == "__main__":
    main()
