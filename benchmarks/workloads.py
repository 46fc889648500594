"""The workloads W1 to W8, each defined once, in terms of an implementation adapter.

An adapter is a module (``benchmarks.impl_*``, listed in ``IMPLEMENTATIONS``) that exposes the
same small set of functions, so that every workload runs the same steps on every
implementation:

    NAME                   its name (IMPLEMENTATIONS says which loops it runs on)
    SIZES                  a Sizes: the workload sizes it runs (smaller for slow implementations)
    NOT_APPLICABLE         {workload: why}: workloads the implementation has no concept for
    NOTES                  {workload: note} printed under the table
    MULTIPROCESS           True when the implementation runs processes of its own (Ray)
    session(loop)          context manager: start/stop the runtime; yields a session
    noop_actor(session)    an actor with `async def noop(self): return None`, already called once
    roundtrips(actor, n)   n times: call noop and block for its result (plain thread)
    pipelined(actor, n)    submit n noop calls, then block for all results; returns them
    new_caller_loop(session)            a fresh event loop for an async caller (W3)
    async_roundtrips(actor, n)          coroutine: n sequential `await`s of noop calls
    async_gather(actor, n)              coroutine: gather of n noop calls
    tracker_actor(session, max_concurrency)
                           an actor with groups GROUP_LIMITS whose methods `io`, `compute` and
                           `default` (one per group) run InFlightTracker.track(group, delay)
    tracked_calls(actor, plan)          submit a call per (group, delay) of plan, wait for all
    max_in_flight(actor)                {group: most calls in flight seen inside the methods}
    lifecycle(session)     create an actor, call it once, kill it (W7)
    scale_actor(session)   an idle actor as W8 counts them (groups GROUP_LIMITS where it has any)
    touch_groups(actor)    call each of its groups once and wait (W8)

Every workload function takes (adapter, session, sizes) and returns {metric: value}.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

LOOP_KINDS = ("uvloop", "asyncio")
GROUP_LIMITS = {"io": 2, "compute": 4}  # W4 and W8: plus "default", limited by max_concurrency
GROUP_NAMES = ("io", "compute", "default")
DEFAULT_MAX_CONCURRENCY = 1000  # Ray's and pyactors' default for async actors
SETTLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ImplSpec:
    module: str  # the adapter
    loops: tuple  # event-loop kinds it runs on; (None,) when it has no choice
    requires: str  # the package an interpreter needs to run it
    one_process: bool = False  # all workloads in one process per repeat (slow to start)


# The order is the table's column order.
IMPLEMENTATIONS = {
    "pyactors": ImplSpec("benchmarks.impl_pyactors", LOOP_KINDS, "pyactors"),
    "floor": ImplSpec("benchmarks.impl_floor", LOOP_KINDS, "uvloop"),
    "rct": ImplSpec("benchmarks.impl_rct", ("uvloop",), "uvloop"),
    "ray": ImplSpec("benchmarks.impl_ray", (None,), "ray", one_process=True),
    "pyactors-ray": ImplSpec("benchmarks.impl_pyactors_ray", (None,), "ray", one_process=True),
    "pykka": ImplSpec("benchmarks.impl_pykka", (None,), "pykka"),
}


class NotApplicable(Exception):
    """The implementation has no such concept: the workload is reported as n/a."""


@dataclass(frozen=True)
class Sizes:
    w1_calls: int = 5_000
    w1_warmup: int = 500
    w2_calls: int = 10_000
    w2_batches: int = 5
    w3_calls: int = 5_000
    w3_gather: int = 10_000
    w3_batches: int = 3
    w4_calls: int = 400
    w4_batches: int = 5
    w5_calls: int = 50
    w5_sleep: float = 0.2
    w5_limit: int = 10
    w6_threads: int = 4
    w6_calls: int = 2_000
    w7_actors: int = 200
    w8_actors: int = 1_000


def load_adapter(name: str) -> ModuleType:
    return import_module(IMPLEMENTATIONS[name].module)


# -- what the methods run -----------------------------------------------------------------------


class InFlightTracker:
    """Base of W4/W5/W8 actors: counts calls in flight per group, inside the method bodies.

    Every call of one group runs on that group's thread, so each counter has one writer.
    """

    def __init__(self):
        self.in_flight = dict.fromkeys(GROUP_NAMES, 0)
        self.max_seen = dict.fromkeys(GROUP_NAMES, 0)

    async def track(self, group: str, delay: float) -> None:
        running = self.in_flight[group] + 1
        self.in_flight[group] = running
        if running > self.max_seen[group]:
            self.max_seen[group] = running
        try:
            await asyncio.sleep(delay)
        finally:
            self.in_flight[group] -= 1


def group_plan(calls: int, delay: float, groups=GROUP_NAMES) -> list[tuple[str, float]]:
    """``calls`` calls spread round-robin over ``groups``."""
    return [(groups[i % len(groups)], delay) for i in range(calls)]


# -- measuring ------------------------------------------------------------------------------


def timed(fn: Callable, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def run_in_loop(loop: asyncio.AbstractEventLoop, coroutine_fn, *args) -> float:
    """Seconds ``loop`` takes to run ``coroutine_fn(*args)``, in this thread."""
    start = time.perf_counter()
    loop.run_until_complete(coroutine_fn(*args))
    return time.perf_counter() - start


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(root: int | None = None) -> list[int]:
    """``root`` (default: this process) and every process descended from it."""
    children = _children()
    todo, tree = [root or os.getpid()], []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _proc_field(pid: int, name: str, field: str) -> int:
    """The number after `field` in /proc/PID/`name` (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(tree: bool) -> dict[str, float]:
    """RSS and PSS (MB) and OS threads of this process, or of it and its descendants."""
    pids = process_tree() if tree else [os.getpid()]
    return {
        "rss_mb": sum(_proc_field(pid, "status", "VmRSS:") for pid in pids) / 1024,
        "pss_mb": sum(_proc_field(pid, "smaps_rollup", "Pss:") for pid in pids) / 1024,
        "threads": sum(_proc_field(pid, "status", "Threads:") for pid in pids),
        "processes": len(pids),
    }


def os_threads() -> int:
    return _proc_field(os.getpid(), "status", "Threads:")


def wait_for_threads(at_most: int, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until this process has at most ``at_most`` threads (those of killed actors end
    in the background)."""
    deadline = time.monotonic() + timeout
    while os_threads() > at_most and time.monotonic() < deadline:
        time.sleep(0.001)


# -- the workloads --------------------------------------------------------------------------


def w1_sync_roundtrip(impl: ModuleType, session, sizes: Sizes) -> dict:
    """A plain thread: get(a.noop.remote()), again and again. µs per call."""
    actor = impl.noop_actor(session)
    impl.roundtrips(actor, sizes.w1_warmup)
    seconds = timed(impl.roundtrips, actor, sizes.w1_calls)
    return {"w1_us": seconds / sizes.w1_calls * 1e6}


def w2_pipelined(impl: ModuleType, session, sizes: Sizes) -> dict:
    """A plain thread submits w2_calls noop calls, then gets them all. Calls/s, median of
    w2_batches batches (one batch spans only a few GIL switch intervals)."""
    actor = impl.noop_actor(session)
    impl.pipelined(actor, min(sizes.w2_calls, 1000))
    seconds = statistics.median(
        timed(impl.pipelined, actor, sizes.w2_calls) for _ in range(sizes.w2_batches)
    )
    return {"w2_calls_per_s": sizes.w2_calls / seconds}


def w3_async_caller(impl: ModuleType, session, sizes: Sizes) -> dict:
    """In the caller's own event loop: sequential awaits (µs/call), and a gather of
    w3_gather calls (calls/s, median of w3_batches)."""
    actor = impl.noop_actor(session)
    loop = impl.new_caller_loop(session)
    try:
        run_in_loop(loop, impl.async_roundtrips, actor, min(sizes.w3_calls, 500))
        sequential = run_in_loop(loop, impl.async_roundtrips, actor, sizes.w3_calls)
        gather = statistics.median(
            run_in_loop(loop, impl.async_gather, actor, sizes.w3_gather)
            for _ in range(sizes.w3_batches)
        )
    finally:
        loop.close()
    return {
        "w3_seq_us": sequential / sizes.w3_calls * 1e6,
        "w3_gather_calls_per_s": sizes.w3_gather / gather,
    }


def w4_groups(impl: ModuleType, session, sizes: Sizes) -> dict:
    """Groups io=2, compute=4 and default: w4_calls calls of `await asyncio.sleep(0)` spread
    round-robin over the three, submitted by a plain thread, then waited for. Calls/s (median
    of w4_batches, a fresh actor each), and the most calls in flight per group seen inside the
    methods (the most over the batches)."""
    plan = group_plan(sizes.w4_calls, 0.0)
    default_calls = sum(group == "default" for group, _ in plan)
    seconds, maxima = [], []
    for _ in range(sizes.w4_batches):
        actor = impl.tracker_actor(session, DEFAULT_MAX_CONCURRENCY)
        impl.tracked_calls(actor, group_plan(len(GROUP_NAMES), 0.0))  # start every group
        seconds.append(timed(impl.tracked_calls, actor, plan))
        maxima.append(impl.max_in_flight(actor))
    limits = {**GROUP_LIMITS, "default": min(default_calls, DEFAULT_MAX_CONCURRENCY)}
    return {
        "w4_calls_per_s": sizes.w4_calls / statistics.median(seconds),
        "w4_max_in_flight": {g: max(m[g] for m in maxima) for g in GROUP_NAMES},
        "w4_default_calls": default_calls,
        # No group ever ran more calls at once than its limit:
        "w4_within_limits": all(m[g] <= limits[g] for m in maxima for g in GROUP_NAMES),
        # ... and io and compute reached theirs in every batch (they were saturated):
        "w4_exact": all(m[g] == GROUP_LIMITS[g] for m in maxima for g in GROUP_LIMITS),
    }


def w5_limit_wall(impl: ModuleType, session, sizes: Sizes) -> dict:
    """w5_calls calls of `await asyncio.sleep(w5_sleep)` at max_concurrency=w5_limit: wall
    time over the ideal (waves x sleep), ms."""
    actor = impl.tracker_actor(session, sizes.w5_limit)
    impl.tracked_calls(actor, [("default", 0.0)])  # start the group
    ideal = math.ceil(sizes.w5_calls / sizes.w5_limit) * sizes.w5_sleep
    seconds = timed(impl.tracked_calls, actor, [("default", sizes.w5_sleep)] * sizes.w5_calls)
    return {
        "w5_overhead_ms": (seconds - ideal) * 1e3,
        "w5_ideal_s": ideal,
        "w5_max_in_flight": impl.max_in_flight(actor)["default"],
    }


def w6_fan_in(impl: ModuleType, session, sizes: Sizes) -> dict:
    """w6_threads plain threads, each making w6_calls round trips to one actor. Calls/s."""
    actor = impl.noop_actor(session)
    impl.roundtrips(actor, sizes.w1_warmup)
    barrier = threading.Barrier(sizes.w6_threads + 1)

    def caller():
        barrier.wait()
        impl.roundtrips(actor, sizes.w6_calls)

    threads = [threading.Thread(target=caller) for _ in range(sizes.w6_threads)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return {"w6_calls_per_s": sizes.w6_threads * sizes.w6_calls / seconds}


def w7_lifecycle(impl: ModuleType, session, sizes: Sizes) -> dict:
    """Create an actor, call it once, kill it; w7_actors times. µs per actor, counting the wait
    for the killed actors' threads to end (pyactors' kill() and the floor's close() join them
    anyway; Ray's kill() returns before its worker process ends)."""
    impl.lifecycle(session)
    threads_before = os_threads()
    start = time.perf_counter()
    for _ in range(sizes.w7_actors):
        impl.lifecycle(session)
    returned = time.perf_counter() - start
    wait_for_threads(threads_before)
    seconds = time.perf_counter() - start
    return {
        "w7_us_per_actor": seconds / sizes.w7_actors * 1e6,
        "w7_us_per_actor_until_kill_returns": returned / sizes.w7_actors * 1e6,
    }


def w8_scale(impl: ModuleType, session, sizes: Sizes) -> dict:
    """w8_actors actors with groups io, compute and default: first never called (MB per actor,
    threads), then each group of each called once and left idle. Memory is PSS summed over
    the process tree (for one process, its private memory plus its share of shared pages)."""
    tree = impl.MULTIPROCESS
    warm = impl.scale_actor(session)
    impl.touch_groups(warm)
    time.sleep(0.1)
    base = memory_mb(tree)
    actors = [impl.scale_actor(session) for _ in range(sizes.w8_actors)]
    time.sleep(0.2)  # let threads started by creation settle
    idle = memory_mb(tree)
    for actor in actors:
        impl.touch_groups(actor)
    time.sleep(0.2)
    used = memory_mb(tree)
    n = sizes.w8_actors
    return {
        "w8_idle_mb_per_actor": (idle["pss_mb"] - base["pss_mb"]) / n,
        "w8_idle_threads_per_actor": (idle["threads"] - base["threads"]) / n,
        "w8_used_mb_per_actor": (used["pss_mb"] - base["pss_mb"]) / n,
        "w8_used_threads_per_actor": (used["threads"] - base["threads"]) / n,
        "w8_used_rss_mb_per_actor": (used["rss_mb"] - base["rss_mb"]) / n,
        "w8_idle_threads": idle["threads"] - base["threads"],
        "w8_used_threads": used["threads"] - base["threads"],
        "w8_processes": used["processes"] - base["processes"],
        "w8_actors": n,
    }


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    run: Callable[[ModuleType, object, Sizes], dict]


WORKLOADS = {
    w.key: w
    for w in (
        Workload("W1", "sync round trip", w1_sync_roundtrip),
        Workload("W2", "pipelined", w2_pipelined),
        Workload("W3", "async caller", w3_async_caller),
        Workload("W4", "concurrency groups", w4_groups),
        Workload("W5", "limit wall", w5_limit_wall),
        Workload("W6", "fan-in", w6_fan_in),
        Workload("W7", "actor lifecycle", w7_lifecycle),  # + the fresh process: benchmarks.fresh
        Workload("W8", "scale", w8_scale),
    )
}
