"""Several models on one Context under mixed load: short requests run inside the pause of
long ones (csrc/dsl_sched.h, dsl_sched_between), arenas are shared per worker.

Semantics only (outputs, counters, memory accounting), never speed.
"""
import os
import threading
import time

import numpy as np
import pytest

from deepsparse_lite import Context, Engine, MultiModelEngine
from tests.scheduler.test_context import _mlp

NCPU = len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("mm")
    long_ = _mlp(d / "long.onnx", width=384, layers=12, batch=32, seed=1)  # ~ms, 24 steps
    short = _mlp(d / "short.onnx", width=48, layers=2, seed=2)             # ~us
    other = _mlp(d / "other.onnx", width=96, layers=3, seed=3)
    return long_, short, other


def _alone(path, xs):
    e = Engine(path, batch_size=None, num_cores=1)
    try:
        return [e.run([x])[0] for x in xs]
    finally:
        e.close()


def _mixed(ctx, paths, data, until, extra=None):
    """Callers loop over each model's inputs until ``until()``; returns mismatches."""
    engines = [MultiModelEngine(p, None, ctx) for p in paths]
    want = [_alone(p, d) for p, d in zip(paths, data)]
    bad, stop = [], threading.Event()

    def loop(k):
        j = 0
        while not stop.is_set():
            y = engines[k].run([data[k][j % len(data[k])]])[0]
            if not np.array_equal(y, want[k][j % len(data[k])]):
                bad.append((k, j))
            j += 1

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(len(paths)) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    try:
        while not until() and time.monotonic() < deadline:
            if extra:
                extra()
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    return engines, bad


def _inputs(rng, shape, n=4):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("streams", [1, 2] if NCPU >= 2 else [1])
def test_outputs_under_mixed_load_equal_each_model_alone_also_when_paused(models, streams):
    long_, short, other = models
    rng = np.random.default_rng(0)
    data = [_inputs(rng, (32, 384)), _inputs(rng, (1, 48)), _inputs(rng, (1, 96))]
    with Context(num_streams=streams) as ctx:
        engines, bad = _mixed(ctx, [long_, short, other], data,
                              until=lambda: ctx.stats["nested"] >= 20)
        assert not bad
        # the pause path ran: short requests were run inside the long one's pauses
        assert ctx.stats["nested"] >= 20
        for e in engines:
            e.close()


def test_pausing_off_runs_every_request_in_turn(models, monkeypatch):
    monkeypatch.setenv("DSL_PREEMPT", "0")
    long_, short, _ = models
    rng = np.random.default_rng(1)
    data = [_inputs(rng, (32, 384)), _inputs(rng, (1, 48))]
    with Context(num_streams=1) as ctx:
        t_end = time.monotonic() + 1.0
        engines, bad = _mixed(ctx, [long_, short], data, until=lambda: time.monotonic() > t_end)
        assert not bad and ctx.stats["nested"] == 0
        for e in engines:
            e.close()


def test_one_engine_closes_while_the_others_keep_running(models):
    long_, short, other = models
    rng = np.random.default_rng(2)
    data = [_inputs(rng, (32, 384)), _inputs(rng, (1, 48)), _inputs(rng, (1, 96))]
    with Context(num_streams=min(2, NCPU)) as ctx:
        e_other = MultiModelEngine(other, None, ctx)
        want_other = _alone(other, data[2])
        state = {"closed": False, "after": 0}

        def close_other():
            if not state["closed"] and ctx.stats["nested"] >= 5:
                y = e_other.run([data[2][0]])[0]
                assert np.array_equal(y, want_other[0])
                e_other.close()
                state["closed"] = True
                state["n0"] = ctx.stats["inline"] + ctx.stats["nested"] + ctx.stats["combined"]
            elif state["closed"]:
                state["after"] = (ctx.stats["inline"] + ctx.stats["nested"] + ctx.stats["combined"]
                                  - state["n0"])

        engines, bad = _mixed(ctx, [long_, short], data[:2],
                              until=lambda: state["closed"] and state["after"] >= 50, extra=close_other)
        assert not bad and state["closed"] and state["after"] >= 50
        with pytest.raises(RuntimeError, match="closed"):
            e_other.run([data[2][0]])
        for e in engines:
            e.close()


def test_a_model_added_to_a_live_context(models):
    long_, short, other = models
    rng = np.random.default_rng(3)
    data = [_inputs(rng, (32, 384)), _inputs(rng, (1, 48))]
    x_other = _inputs(rng, (1, 96))
    want_other = _alone(other, x_other)
    with Context(num_streams=1) as ctx:
        added = {}

        def add():
            if "e" not in added and ctx.stats["nested"] >= 5:
                added["e"] = MultiModelEngine(other, None, ctx)
            if "e" in added:
                added["ok"] = all(np.array_equal(added["e"].run([x])[0], w) for x, w in zip(x_other, want_other))

        engines, bad = _mixed(ctx, [long_, short], data, until=lambda: "ok" in added, extra=add)
        assert not bad and added.get("ok")
        for e in engines + [added["e"]]:
            e.close()


def test_arenas_are_per_worker_and_sized_for_the_largest_plan(models):
    long_, short, other = models
    rng = np.random.default_rng(4)
    with Context(num_streams=1) as ctx:
        a = MultiModelEngine(short, None, ctx)
        b = MultiModelEngine(long_, None, ctx)
        c = MultiModelEngine(other, None, ctx)
        assert ctx.arenas == []
        a.run(_inputs(rng, (1, 48), 1))
        assert [x["bytes"] for x in ctx.arenas] == [a.arena_bytes]
        b.run(_inputs(rng, (32, 384), 1))
        c.run(_inputs(rng, (1, 96), 1))
        a.run(_inputs(rng, (1, 48), 1))
        # one arena per lease-head core and slot, shared by the three engines: the largest plan
        arenas = [x for x in ctx.arenas if x["slot"] == 0]
        assert len(arenas) == 1 and arenas[0]["bytes"] == max(e.arena_bytes for e in (a, b, c))
        mem = ctx.memory()
        assert mem["weights"] == {e._key: e.plan.constant_bytes for e in (a, b, c)}
        assert mem["arena_total"] == sum(x["bytes"] for x in ctx.arenas)
        assert sum(mem["arenas"].values()) == mem["arena_total"]
        b.close()
        assert set(ctx.memory()["weights"]) == {a._key, c._key}
        for e in (a, c):
            e.close()


@pytest.mark.parametrize("fair", ["1", "0"])
def test_fair_queueing_shares_lease_time_not_turns(tmp_path, monkeypatch, fair):
    """Two engines, one ~3x the other's cost, two callers each, one one-core stream, pausing off.
    Served in arrival order (DSL_FAIR=0) they take turns: about as many requests each, so
    the costly one holds the stream ~3/4 of the time. Fair queueing serves the engine with
    the least lease time first: the cheap one completes ~3x as many. Counts, not timings:
    the costs only have to differ by well over 2x."""
    monkeypatch.setenv("DSL_PREEMPT", "0")
    monkeypatch.setenv("DSL_FAIR", fair)
    big = _mlp(tmp_path / "big.onnx", width=768, layers=24, batch=32, seed=4)
    small = _mlp(tmp_path / "small.onnx", width=768, layers=8, batch=32, seed=5)
    rng = np.random.default_rng(3)
    data = [_inputs(rng, (32, 768), 2), _inputs(rng, (32, 768), 2)]
    with Context(num_cores=1, num_streams=1) as ctx:
        engines = [MultiModelEngine(p, None, ctx) for p in (big, small)]
        want = [[e.run([x])[0] for x in d] for e, d in zip(engines, data)]
        for e, d in zip(engines, data):  # learn each engine's cost
            for x in d * 3:
                e.run([x])
        done, bad, stop = [0, 0], [], threading.Event()
        go = threading.Barrier(5)

        def loop(k):
            go.wait()
            j = 0
            while not stop.is_set():
                y = engines[k].run([data[k][j % 2]])[0]
                if not np.array_equal(y, want[k][j % 2]):
                    bad.append((k, j))
                done[k] += 1
                j += 1

        threads = [threading.Thread(target=loop, args=(k,)) for k in (0, 1) for _ in range(2)]
        for t in threads:
            t.start()
        go.wait()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(60)
        assert not bad
        big_n, small_n = done
        served = [v["served_ms"] for v in ctx.service.values()]
        assert len(served) == 2 and min(served) > 0
        assert big_n >= 10 and small_n >= 10, done  # neither starves
        if fair == "1":
            assert small_n >= 1.8 * big_n, done
            print(f"\nfair: {done}")
        else:
            assert small_n <= 1.4 * big_n, done
            print(f"\nfifo: {done}")
        for e in engines:
            e.close()
