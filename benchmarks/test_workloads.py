"""pytest-benchmark figures of W3 to W10 on pyactors and the floor, both loops.

Each round is smaller than in `python -m benchmarks.compare` (sizes below), so that the smoke
run (`--benchmark-disable`, one round each) stays within seconds; times are per round, and
`extra_info` says what a round holds. The workloads' semantics are asserted as well: the most
calls in flight per group (W4, W5) and the resident memory per idle actor is recorded (W8).
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.callgrind import KERNELS, Cell, measure_cells
from benchmarks.workloads import (
    AWAITING_BODIES,
    DEFAULT_MAX_CONCURRENCY,
    GROUP_LIMITS,
    GROUP_NAMES,
    Sizes,
    group_plan,
    memory_mb,
    mixed,
    mixed_actors,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
W3_SEQUENTIAL = 200
W3_GATHER = 2_000
W4_CALLS = 400
W4_SATURATING_CALLS, W4_SATURATING_SLEEP = 30, 0.02  # io: 5 waves of 20 ms
W5_CALLS, W5_LIMIT, W5_SLEEP = 50, 10, 0.02  # ideal: 5 waves x 20 ms = 0.1 s
W6_THREADS, W6_CALLS = 4, 200
W7_ACTORS = 20
W8_ACTORS, W8_ROUNDS = 50, 3
BODY_CALLS = 200
W9_CALLS = 200
W10_SIZES = Sizes(w10_calls=60)
CALLGRIND_CALLS = 12  # a multiple of every kernel's callers (4 and 6)


@pytest.fixture
def caller_loop(impl, session):
    loop = impl.new_caller_loop(session)
    yield loop
    loop.close()


def test_w3_async_sequential(benchmark, impl, noop_actor, caller_loop, group_of):
    benchmark.group = group_of(f"W3 async sequential x{W3_SEQUENTIAL}")
    benchmark.extra_info["calls_per_round"] = W3_SEQUENTIAL
    benchmark(
        lambda: caller_loop.run_until_complete(impl.async_roundtrips(noop_actor, W3_SEQUENTIAL))
    )


def test_w3_async_gather(benchmark, impl, noop_actor, caller_loop, group_of):
    benchmark.group = group_of(f"W3 async gather x{W3_GATHER}")
    benchmark.extra_info["calls_per_round"] = W3_GATHER
    results = benchmark(
        lambda: caller_loop.run_until_complete(impl.async_gather(noop_actor, W3_GATHER))
    )
    assert list(results) == [None] * W3_GATHER


def test_w4_groups(benchmark, impl, session, group_of):
    benchmark.group = group_of(f"W4 groups x{W4_CALLS}")
    benchmark.extra_info["calls_per_round"] = W4_CALLS
    actor = impl.tracker_actor(session, DEFAULT_MAX_CONCURRENCY)
    plan = group_plan(W4_CALLS, 0.0)
    benchmark(impl.tracked_calls, actor, plan)
    maxima = impl.max_in_flight(actor)
    benchmark.extra_info["max_in_flight"] = maxima
    # sleep(0) bodies may finish as fast as they come, so only the limits are certain here ...
    assert all(maxima[g] <= limit for g, limit in GROUP_LIMITS.items())
    assert 1 <= maxima["default"] <= sum(g == "default" for g, _ in plan)
    # ... and calls that stay in flight for a while must fill every group to its limit.
    tracker = impl.tracker_actor(session, DEFAULT_MAX_CONCURRENCY)
    impl.tracked_calls(tracker, group_plan(W4_SATURATING_CALLS, W4_SATURATING_SLEEP))
    assert impl.max_in_flight(tracker) == {**GROUP_LIMITS, "default": W4_SATURATING_CALLS // 3}


def test_w5_limit_wall(benchmark, impl, session, group_of):
    benchmark.group = group_of(f"W5 limit wall {W5_CALLS}x{W5_SLEEP}s at {W5_LIMIT}")
    benchmark.extra_info["ideal_seconds"] = W5_CALLS / W5_LIMIT * W5_SLEEP
    actor = impl.tracker_actor(session, W5_LIMIT)
    benchmark(impl.tracked_calls, actor, [("default", W5_SLEEP)] * W5_CALLS)
    assert impl.max_in_flight(actor)["default"] == W5_LIMIT


def test_w6_fan_in(benchmark, impl, noop_actor, group_of):
    benchmark.group = group_of(f"W6 fan-in {W6_THREADS} threads x{W6_CALLS}")
    benchmark.extra_info["calls_per_round"] = W6_THREADS * W6_CALLS

    def fan_in():
        threads = [
            threading.Thread(target=impl.roundtrips, args=(noop_actor, W6_CALLS))
            for _ in range(W6_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    benchmark(fan_in)


def test_w7_lifecycle(benchmark, impl, session, group_of):
    benchmark.group = group_of(f"W7 create+call+kill x{W7_ACTORS}")
    benchmark.extra_info["actors_per_round"] = W7_ACTORS

    def lifecycles():
        for _ in range(W7_ACTORS):
            impl.lifecycle(session)

    benchmark(lifecycles)


def test_w7_fresh_process(benchmark, impl, loop_kind, group_of):
    benchmark.group = group_of("W7 fresh process, spawn to exit")
    command = [sys.executable, "-m", "benchmarks.fresh", impl.NAME, "--loop", loop_kind]
    out = benchmark(
        subprocess.run, command, cwd=REPO_ROOT, check=True, capture_output=True, text=True
    )
    benchmark.extra_info["last_process"] = out.stdout.strip()


def test_w8_scale(benchmark, impl, session, group_of):
    benchmark.group = group_of(f"W8 create {W8_ACTORS} actors, call each group once")
    benchmark.extra_info["actors_per_round"] = W8_ACTORS
    impl.touch_groups(impl.scale_actor(session))
    before = memory_mb(tree=False)
    kept = []

    def scale():
        actors = [impl.scale_actor(session) for _ in range(W8_ACTORS)]
        for actor in actors:
            impl.touch_groups(actor)
        kept.extend(actors)

    benchmark.pedantic(scale, rounds=W8_ROUNDS)
    time.sleep(0.05)
    after = memory_mb(tree=False)
    benchmark.extra_info["mb_per_actor"] = (after["pss_mb"] - before["pss_mb"]) / len(kept)
    benchmark.extra_info["threads_per_actor"] = (after["threads"] - before["threads"]) / len(kept)
    assert after["threads"] - before["threads"] <= len(GROUP_NAMES) * len(kept)


@pytest.mark.parametrize("body", AWAITING_BODIES)
def test_awaiting_bodies(benchmark, impl, session, caller_loop, group_of, body):
    benchmark.group = group_of(f"W1-W3 body {body}: round trips, pipelined, awaited x{BODY_CALLS}")
    benchmark.extra_info["calls_per_round"] = 3 * BODY_CALLS
    actor = impl.body_actor(session)

    def calls():
        impl.roundtrips(actor, BODY_CALLS, body)
        awaited = caller_loop.run_until_complete(impl.async_gather(actor, BODY_CALLS, body))
        return impl.pipelined(actor, BODY_CALLS, body) + list(awaited)

    assert benchmark(calls) == [None] * (2 * BODY_CALLS)


@pytest.mark.parametrize("depth", [2, 3])
def test_w9_actor_to_actor(benchmark, impl, session, caller_loop, group_of, depth):
    benchmark.group = group_of(f"W9 chain of {depth}, thread then async caller x{W9_CALLS}")
    benchmark.extra_info["calls_per_round"] = 2 * W9_CALLS
    head = impl.relay_chain(session, depth)

    def calls():
        impl.roundtrips(head, W9_CALLS, "relay")
        caller_loop.run_until_complete(impl.async_roundtrips(head, W9_CALLS, "relay"))

    benchmark(calls)


def test_w10_mixed(benchmark, impl, session, group_of):
    callers = W10_SIZES.w10_threads + W10_SIZES.w10_async_callers
    benchmark.group = group_of(f"W10 mixed, {callers} callers x{W10_SIZES.w10_calls}")
    benchmark.extra_info["calls_per_round"] = callers * W10_SIZES.w10_calls
    actors = mixed_actors(impl, session, W10_SIZES)
    benchmark(mixed, impl, session, actors, W10_SIZES, W10_SIZES.w10_calls)
    for actor in actors:
        maxima = impl.max_in_flight(actor)
        assert all(maxima[g] <= limit for g, limit in GROUP_LIMITS.items()), maxima
        assert all(maxima[g] >= 1 for g in GROUP_NAMES), maxima  # every group got calls


@pytest.mark.parametrize("workload", KERNELS)
def test_callgrind_kernel_runs(impl, loop_kind, workload):
    """What `python -m benchmarks.callgrind --table` runs under valgrind, without it."""
    body = "future" if KERNELS[workload].bodies else "noop"
    measure_cells([Cell(workload, body, impl.NAME, loop_kind)], CALLGRIND_CALLS)
