"""Context and streams: partitioning, concurrency semantics, pinning, errors, lifecycle.

Only semantics are asserted (outputs, overlap of execution intervals, thread affinities,
thread counts), never speed.
"""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite import Context, Engine, MultiModelEngine, Scheduler
from deepsparse_lite.compiler import PlanExecutionError
from deepsparse_lite.scheduler import Topology

NCPU = len(os.sched_getaffinity(0))


def _mlp(path, width=64, layers=3, seed=0, batch=1):
    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch, width])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    nodes, inits, prev = [], [], "x"
    for k in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        out = "y" if k == layers - 1 else f"h{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}"], [f"g{k}"]))
        nodes.append(helper.make_node("Relu", [f"g{k}"], [out]))
        prev = out
    m = helper.make_model(helper.make_graph(nodes, "mlp", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return str(path)


def _gather_model(path):
    ids = helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    table = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "table")
    m = helper.make_model(helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                                            "g", [ids], [y], [table]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return str(path)


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory):
    return _mlp(tmp_path_factory.mktemp("m") / "mlp.onnx")


@pytest.fixture(scope="module")
def slow_path(tmp_path_factory):
    # a few ms per request, so concurrent requests overlap in time
    return _mlp(tmp_path_factory.mktemp("s") / "slow.onnx", width=512, layers=4, batch=32)


def _fake(spec):
    return Topology.from_dict(spec)


# ---- partitioning through Context (no thread is started until the first request) --------

def test_context_defaults_and_repr():
    with Context() as ctx:
        assert ctx.num_cores == NCPU
        assert ctx.num_streams == Topology.detect().default_num_streams()
        assert ctx.scheduler == Scheduler.elastic
        assert repr(ctx) == f"Context(num_cores={NCPU}, num_streams={ctx.num_streams}, scheduler=Scheduler.elastic)"
        assert ctx.helpers == []  # lazily started


def test_context_validation(caplog):
    with pytest.raises(ValueError, match="num_streams must be greater than 0"):
        Context(num_streams=-2)
    with pytest.raises(ValueError, match="num_cores must be greater than 0"):
        Context(num_cores=-1)
    with caplog.at_level("WARNING"):
        ctx = Context(num_cores=1, num_streams=4)
    assert ctx.num_streams == 1 and "capping to 1" in caplog.text
    ctx.close()


@pytest.mark.parametrize("streams, expect", [
    (None, [list(range(0, 8)), list(range(8, 16))]),
    (3, [list(range(0, 6)), list(range(6, 11)), list(range(11, 16))]),
    (4, [list(range(0, 4)), list(range(4, 8)), list(range(8, 12)), list(range(12, 16))]),
])
def test_multi_stream_partition_on_two_sockets(streams, expect):
    topo = _fake({"sockets": 2, "cores_per_socket": 8})
    ctx = Context(num_streams=streams, _scheduler="multi_stream", _topology=topo)
    assert [list(c) for c in ctx.stream_cpus] == expect


def test_single_stream_uses_all_cores_and_one_thread_per_core():
    topo = _fake({"sockets": 2, "cores_per_socket": 8, "threads_per_core": 2, "numbering": "amd"})
    ctx = Context(num_streams=4, _scheduler="single_stream", _topology=topo)
    assert ctx.num_streams == 1 and ctx.stream_cpus == [tuple(range(0, 32, 2))]


def test_elastic_streams_never_cross_numa_nodes():
    topo = _fake({"sockets": 2, "cores_per_socket": 8})
    ctx = Context(num_streams=3, _topology=topo)  # user Contexts are elastic
    nodes = [set(range(0, 8)), set(range(8, 16))]
    for cpus in ctx.stream_cpus:
        assert any(set(cpus) <= n for n in nodes), ctx.stream_cpus
    assert sorted(c for s in ctx.stream_cpus for c in s) == list(range(16))


def test_elastic_default_is_one_stream_per_numa_node():
    topo = _fake({"sockets": 2, "cores_per_socket": 4})
    ctx = Context(_topology=topo)
    assert [list(c) for c in ctx.stream_cpus] == [[0, 1, 2, 3], [4, 5, 6, 7]]


# ---- execution semantics ------------------------------------------------------------------

def _sequential_reference(path, inputs):
    eng = Engine(path, batch_size=None, num_cores=1)
    try:
        return [eng.run([x])[0] for x in inputs]
    finally:
        eng.close()


@pytest.mark.parametrize("scheduler, streams", [("single_stream", None), ("multi_stream", 2), ("elastic", None)])
def test_many_threads_one_engine_match_sequential(mlp_path, scheduler, streams):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((1, 64)).astype(np.float32) for _ in range(40)]
    want = _sequential_reference(mlp_path, inputs)
    eng = Engine(mlp_path, batch_size=1, scheduler=scheduler, num_streams=streams)
    errors = []

    def worker(t):
        for rep in range(5):
            for k in range(t, len(inputs), 4):
                got = eng.run([inputs[k]])[0]
                if not np.array_equal(got, want[k]):
                    errors.append((t, k))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors
    eng.close()
    assert eng.context.helpers == [] and eng.context.closed


def test_multimodel_engines_share_one_context(tmp_path):
    paths = [_mlp(tmp_path / f"m{k}.onnx", width=32 + 16 * k, seed=k) for k in range(3)]
    with Context(num_streams=2) as ctx:
        engines = [MultiModelEngine(p, 1, ctx) for p in paths]
        assert all(e.num_streams == ctx.num_streams and e.scheduler == Scheduler.elastic for e in engines)
        assert "MultiModelEngine" in repr(engines[0])
        rng = np.random.default_rng(2)
        data = [[rng.standard_normal((1, 32 + 16 * k)).astype(np.float32) for _ in range(10)] for k in range(3)]
        want = [_sequential_reference(p, d) for p, d in zip(paths, data)]
        errors = []

        def worker(t):
            for rep in range(20):
                k = (t + rep) % 3
                j = rep % 10
                if not np.array_equal(engines[k].run([data[k][j]])[0], want[k][j]):
                    errors.append((t, k, j))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads) and not errors
        n_threads = threading.active_count()
        more = [MultiModelEngine(paths[0], 1, ctx) for _ in range(10)]
        for e in more:
            e.run([data[0][0]])
        assert threading.active_count() == n_threads  # engines add no threads
        for e in engines + more:
            e.close()
    assert ctx.helpers == [] and ctx.closed


def _intervals(ctx, key, plan, make_input, callers, per_caller):
    from deepsparse_lite.compiler import allocate_outputs
    reqs, lock = [], threading.Lock()

    def worker():
        for _ in range(per_caller):
            r = ctx.run(key, plan, [make_input()], allocate_outputs(plan), record=True)
            with lock:
                reqs.append(r)

    threads = [threading.Thread(target=worker) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return reqs


def _overlaps(reqs):
    rs = sorted(reqs, key=lambda r: r.t_start)
    return sum(1 for a, b in zip(rs, rs[1:]) if b.t_start < a.t_end)


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_two_streams_run_concurrently_on_disjoint_pinned_cores(slow_path):
    eng = Engine(slow_path, batch_size=32, scheduler="multi_stream", num_streams=2)
    ctx = eng.context
    x = np.random.rand(32, 512).astype(np.float32)
    reqs = _intervals(ctx, eng._key, eng.plan, lambda: x, callers=2, per_caller=15)
    by_stream = {}
    for r in reqs:
        by_stream.setdefault(r.stream, set()).add(r.cpus)
    assert len(by_stream) == 2, by_stream  # both streams served requests
    assert all(len(v) == 1 for v in by_stream.values()) and by_stream[0] != by_stream[1]
    leases = [next(iter(v)) for v in by_stream.values()]
    assert not set(leases[0]) & set(leases[1])  # disjoint cores
    assert _overlaps(reqs) > 0  # really concurrent
    # one-core streams need no helper: the callers ran the requests themselves
    assert ctx.helpers == [] and ctx.stats["inline"] + ctx.stats["handed"] + ctx.stats["combined"] >= 30
    eng.close()


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_single_stream_serialises_and_pins_its_team(slow_path):
    eng = Engine(slow_path, batch_size=32, scheduler="single_stream")
    ctx = eng.context
    x = np.random.rand(32, 512).astype(np.float32)
    reqs = _intervals(ctx, eng._key, eng.plan, lambda: x, callers=3, per_caller=6)
    assert _overlaps(reqs) == 0
    assert {r.cpus for r in reqs} == {ctx.stream_cpus[0]}
    # the stream's helpers: one pinned to each core but the first (its runner's), and they
    # did run chunks of the plans
    helpers = ctx.helpers
    assert [cpu for _, cpu, _, _, _ in helpers] == list(ctx.stream_cpus[0][1:])
    for _, cpu, tid, chunks, _ in helpers:
        assert os.sched_getaffinity(tid) == {cpu} and chunks > 0
    eng.close()


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_a_caller_runs_on_its_lease_and_gets_its_affinity_back(slow_path):
    """The calling thread runs its request on the lease's first core; its own affinity
    comes back when the Context closes (sticky placement) or after each request."""
    mine = os.sched_getaffinity(0)
    for sticky in ("sticky", "call"):
        os.environ["DSL_PIN_CALLER"] = sticky
        try:
            eng = Engine(slow_path, batch_size=32, scheduler="multi_stream", num_streams=2)
            x = np.random.rand(32, 512).astype(np.float32)
            seen = []

            def caller():
                r = eng.context.run(eng._key, eng.plan, [x], [np.empty((32, 512), np.float32)], record=True)
                seen.append((r, os.sched_getaffinity(0)))

            t = threading.Thread(target=caller)
            t.start()
            t.join()
            (r, aff), = seen
            assert aff == ({r.cpus[0]} if sticky == "sticky" else mine)
            eng.run([x])
            assert os.sched_getaffinity(0) == (mine if sticky == "call" else {eng.context.run(
                eng._key, eng.plan, [x], [np.empty((32, 512), np.float32)], record=True).cpus[0]})
            eng.close()
            assert os.sched_getaffinity(0) == mine
        finally:
            os.environ.pop("DSL_PIN_CALLER", None)


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_one_sticky_caller_per_lease_head(slow_path):
    """Two live threads on one stream: the first stays on the lease head until a second one
    runs there; the head is then shared: the first gets its affinity back at once and every
    thread is pinned for its request only (two threads kept on one core wait for each
    other's time slices)."""
    mine = os.sched_getaffinity(0)
    eng = Engine(slow_path, batch_size=32, scheduler="single_stream")
    x = np.random.rand(32, 512).astype(np.float32)
    head = eng.context.stream_cpus[0][0]
    first_ran, done = threading.Event(), threading.Event()
    seen = {}

    def first():
        eng.run([x])
        seen["first"] = os.sched_getaffinity(0)
        first_ran.set()
        done.wait(30)
        seen["first_after"] = os.sched_getaffinity(0)

    def second():
        r = eng.context.run(eng._key, eng.plan, [x], [np.empty((32, 512), np.float32)], record=True)
        seen["second_ran_on"] = r.cpus[0]
        seen["second"] = os.sched_getaffinity(0)

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_ran.wait(30)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(30)
    done.set()
    t1.join(30)
    assert seen["first"] == {head}
    assert seen["second_ran_on"] == head and seen["second"] == mine
    assert seen["first_after"] == mine  # the owner got its own affinity back at once
    # the head stays shared: a new thread too pins for its request only
    def third():
        r = eng.context.run(eng._key, eng.plan, [x], [np.empty((32, 512), np.float32)], record=True)
        seen["third"] = (r.cpus[0], os.sched_getaffinity(0))
    t3 = threading.Thread(target=third)
    t3.start()
    t3.join(30)
    assert seen["third"] == (head, mine)
    eng.close()
    assert os.sched_getaffinity(0) == mine


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_a_new_context_pins_a_caller_restored_by_a_closed_one(slow_path):
    """A thread remembers which scheduler placed it; a Context closed and freed can have
    its memory reused by the next one, which must still pin the caller (CI saw the main
    thread left unpinned after an earlier test's Context closed)."""
    mine = os.sched_getaffinity(0)
    x = np.random.rand(32, 512).astype(np.float32)
    for _ in range(6):
        eng = Engine(slow_path, batch_size=32, scheduler="multi_stream", num_streams=2)
        eng.run([x])
        assert len(os.sched_getaffinity(0)) == 1
        eng.close()
        assert os.sched_getaffinity(0) == mine
        del eng


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_threads_started_by_a_sticky_caller_get_the_callers_own_affinity(slow_path):
    """A thread started by a caller that stays pinned inherits its one core; that core is
    not taken for the new thread's own affinity: when the Context closes it gets the first
    caller's affinity, not the inherited core."""
    mine = os.sched_getaffinity(0)
    eng = Engine(slow_path, batch_size=32, scheduler="multi_stream", num_streams=2)
    x = np.random.rand(32, 512).astype(np.float32)
    eng.run([x])  # this thread now stays on its lease head
    pinned = os.sched_getaffinity(0)
    assert len(pinned) == 1
    ran, closed, seen = threading.Event(), threading.Event(), {}

    def child():
        seen["start"] = os.sched_getaffinity(0)
        for _ in range(3):
            eng.context.run(eng._key, eng.plan, [x], [np.empty((32, 512), np.float32)], record=True)
        ran.set()
        closed.wait(30)
        seen["after_close"] = os.sched_getaffinity(0)

    t = threading.Thread(target=child)
    t.start()
    assert ran.wait(30)
    eng.close()
    closed.set()
    t.join(30)
    assert seen["start"] == pinned
    assert seen["after_close"] == mine
    assert os.sched_getaffinity(0) == mine


def test_bad_request_fails_only_its_caller(tmp_path):
    eng = Engine(_gather_model(tmp_path / "g.onnx"), batch_size=1, scheduler="multi_stream", num_streams=2)
    good = np.array([[0, 3, 9, 2]], dtype=np.int64)
    want = np.arange(40, dtype=np.float32).reshape(10, 4)[good]
    bad = np.array([[0, 3, 99, 2]], dtype=np.int64)
    results = {"ok": 0, "bad": 0, "wrong": 0}
    lock = threading.Lock()

    def worker(t):
        for k in range(30):
            use_bad = (t == 0 and k % 3 == 0)
            try:
                y = eng.run([bad if use_bad else good])[0]
                with lock:
                    results["ok" if np.array_equal(y, want) and not use_bad else "wrong"] += 1
            except PlanExecutionError as exc:
                assert "out of range" in str(exc)
                with lock:
                    results["bad" if use_bad else "wrong"] += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {"ok": 110, "bad": 10, "wrong": 0}
    assert np.array_equal(eng.run([good])[0], want)  # streams carry on
    eng.close()


def test_binding_env_none_leaves_team_unpinned(mlp_path, monkeypatch):
    monkeypatch.setenv("NM_BIND_THREADS_TO_CORES", "0")
    monkeypatch.setenv("NM_BIND_THREADS_TO_SOCKETS", "0")
    eng = Engine(mlp_path, batch_size=1, scheduler="single_stream")
    ctx = eng.context
    assert ctx.binding == "none" and ctx.spin_us == 0  # floating threads never spin
    eng.run([np.random.rand(1, 64).astype(np.float32)])
    for _, _, tid, _, _ in ctx.helpers:
        assert os.sched_getaffinity(tid) == set(ctx.stream_cpus[0])
    eng.close()


def test_closed_context_and_engine_refuse_work(mlp_path):
    ctx = Context()
    eng = MultiModelEngine(mlp_path, 1, ctx)
    eng.run([np.random.rand(1, 64).astype(np.float32)])
    eng.close()
    with pytest.raises(RuntimeError, match="closed"):
        eng.run([np.random.rand(1, 64).astype(np.float32)])
    ctx.close()
    assert ctx.helpers == []
    with pytest.raises(RuntimeError, match="closed"):
        MultiModelEngine(mlp_path, 1, ctx)


def test_process_with_open_engines_exits_cleanly(mlp_path):
    code = textwrap.dedent(f"""
        import numpy as np, threading
        from deepsparse_lite import Engine, Context, MultiModelEngine
        e = Engine({mlp_path!r}, batch_size=1, scheduler="multi_stream", num_streams=2)
        ctx = Context()
        m = MultiModelEngine({mlp_path!r}, 1, ctx)
        x = np.random.rand(1, 64).astype(np.float32)
        ts = [threading.Thread(target=lambda: [e.run([x]) for _ in range(50)]) for _ in range(3)]
        [t.start() for t in ts]; [t.join() for t in ts]
        m.run([x])
        print("done")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "done" in res.stdout


@pytest.mark.skipif(NCPU < 2, reason="needs 2 cores")
def test_elastic_lone_request_gets_all_cores_and_concurrent_ones_disjoint_cores(slow_path):
    eng = Engine(slow_path, batch_size=32, scheduler="elastic")
    ctx = eng.context
    x = np.random.rand(32, 512).astype(np.float32)
    alone = _intervals(ctx, eng._key, eng.plan, lambda: x, callers=1, per_caller=3)
    assert all(r.cpus == ctx.stream_cpus[0] for r in alone)  # every core of the node
    busy = _intervals(ctx, eng._key, eng.plan, lambda: x, callers=3, per_caller=8)
    rs = sorted(busy, key=lambda r: r.t_start)
    pairs = [(a, b) for i, a in enumerate(rs) for b in rs[i + 1:] if b.t_start < a.t_end]
    assert pairs, "no concurrent requests were observed"
    for a, b in pairs:
        assert not set(a.cpus) & set(b.cpus), (a.cpus, b.cpus)
    # one helper pinned per core of the node; none runs where a lease's runner is
    assert sorted(cpu for _, cpu, _, _, _ in ctx.helpers) == sorted(ctx.stream_cpus[0])
    eng.close()


def test_close_while_requests_run_lets_them_finish(slow_path):
    eng = Engine(slow_path, batch_size=32, scheduler="multi_stream", num_streams=2)
    x = np.random.rand(32, 512).astype(np.float32)
    want = eng.run([x])[0]
    results, errors = [], []

    def caller():
        for _ in range(5):
            try:
                results.append(np.array_equal(eng.run([x])[0], want))
            except RuntimeError as exc:  # refused after close: never a hang
                errors.append(str(exc))

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    eng.context.close()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller hangs after close"
    assert all(results) and all("closed" in e for e in errors)
    eng.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_engine_used_in_a_forked_child_raises_instead_of_hanging(mlp_path):
    code = textwrap.dedent(f"""
        import os, sys, numpy as np
        from deepsparse_lite import Engine
        e = Engine({mlp_path!r}, batch_size=1)
        x = np.random.rand(1, 64).astype(np.float32)
        e.run([x])
        pid = os.fork()
        if pid == 0:
            try:
                e.run([x])
                os._exit(2)
            except RuntimeError as exc:
                os._exit(0 if "another process" in str(exc) else 3)
        _, status = os.waitpid(pid, 0)
        e.run([x])  # the parent's engine keeps working
        print("child", os.waitstatus_to_exitcode(status))
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "child 0" in res.stdout


def test_trace_records_each_request(mlp_path):
    """start_trace / stop_trace: one record per request with when, where and for whom."""
    with Context(num_streams=min(2, NCPU)) as ctx:
        eng = MultiModelEngine(mlp_path, batch_size=1, context=ctx)
        x = [np.ones((1, 64), np.float32)]
        eng.run(x)
        ctx.start_trace()
        both = threading.Barrier(2)

        def caller():
            both.wait()
            for _ in range(5):
                eng.run(x)
            both.wait()  # alive together: their thread idents differ

        ths = [threading.Thread(target=caller) for _ in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        recs = ctx.stop_trace()
        eng.run(x)
        assert ctx.stop_trace() == []
    assert len(recs) == 10
    assert len({r["caller"] for r in recs}) == 2
    assert all(r["t0"] <= r["t1"] and r["cpus"] and set(r["cpus"]) <= set(sum(ctx.stream_cpus, ()))
               for r in recs)


@pytest.mark.parametrize("combine", ["0", "1", "3"])
@pytest.mark.parametrize("scheduler, streams", [("multi_stream", 2), ("single_stream", None), ("elastic", None)])
def test_queued_requests_are_combined_or_handed_over_and_all_correct(mlp_path, monkeypatch, combine,
                                                                     scheduler, streams):
    """More callers than streams: waiting requests are run by the thread that frees a lease
    (DSL_COMBINE of them) or handed the lease; every one completes with its own result."""
    monkeypatch.setenv("DSL_COMBINE", combine)
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((1, 64)).astype(np.float32) for _ in range(24)]
    want = _sequential_reference(mlp_path, inputs)
    eng = Engine(mlp_path, batch_size=1, scheduler=scheduler, num_streams=streams)
    errors = []

    def caller(t):
        for rep in range(15):
            k = (t * 7 + rep) % len(inputs)
            if not np.array_equal(eng.run([inputs[k]])[0], want[k]):
                errors.append((t, k))

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors
    st = eng.context.stats
    assert st["inline"] + st["combined"] + st["handed"] >= 6 * 15 and st["queued"] == 0
    if combine == "0":
        assert st["combined"] == 0
    eng.close()
