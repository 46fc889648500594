"""The workloads W1 to W10, each defined once, in terms of an implementation adapter.

An adapter is a module (``benchmarks.impl_*``, listed in ``IMPLEMENTATIONS``) that exposes the
same small set of functions, so that every workload runs the same steps on every
implementation:

    NAME                   its name (IMPLEMENTATIONS says which loops it runs on)
    SIZES                  a Sizes: the workload sizes it runs (smaller for slow implementations)
    NOT_APPLICABLE         {workload: why}: workloads the implementation has no concept for
    BODIES                 the method bodies (of BODIES below) its body_actor has; without it
                           only "noop", and the awaiting variants are reported as not run
    NOTES                  {workload: note} printed under the table
    MULTIPROCESS           True when the implementation runs processes of its own (Ray)
    session(loop)          context manager: start/stop the runtime; yields a session
    noop_actor(session)    an actor with `async def noop(self): return None`, already called once
    body_actor(session)    an actor with the methods of Bodies (every body), already called
    roundtrips(actor, n, body="noop")   n times: call method `body` and block for its result
                                        (plain thread)
    pipelined(actor, n, body="noop")    submit n calls of `body`, then block for all results;
                                        returns them
    new_caller_loop(session)            a fresh event loop for an async caller (W3)
    async_roundtrips(actor, n, body="noop")   coroutine: n sequential `await`s of `body` calls
    async_gather(actor, n, body="noop")       coroutine: gather of n `body` calls
    relay_chain(session, depth)         W9: `depth` actors, each with `async def relay(self)`
                           that awaits the next one's relay (the last returns None); the first
                           one, already called (its method is "relay": call it as a body)
    tracker_actor(session, max_concurrency)
                           an actor with groups GROUP_LIMITS whose methods `io`, `compute` and
                           `default` (one per group) run InFlightTracker.track(group, delay)
    tracked_calls(actor, plan)          submit a call per (group, delay) of plan, wait for all
    max_in_flight(actor)                {group: most calls in flight seen inside the methods}
    tracked_roundtrips(plan)            W10: for each (tracker actor, group) of plan, one call of
                                        that group's method with delay 0, blocking for it
    async_tracked_roundtrips(plan)      coroutine: the same, awaiting each call
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
from functools import partial
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


# W9 and W10 compare pyactors with the floor: rct and pykka have no relay_chain nor
# tracked_roundtrips, and Ray (which gets them from ray_api) is not run on them.
FLOOR_COMPARISON_ONLY = dict.fromkeys(
    ("W9", "W10"), "not written for this implementation: W9 and W10 compare pyactors with the floor"
)


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
    w9_calls: int = 2_000
    w9_warmup: int = 200
    w10_threads: int = 4
    w10_async_callers: int = 2
    w10_actors: int = 3
    w10_calls: int = 500  # per caller


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


BODIES = ("noop", "sleep0", "future", "lock")
AWAITING_BODIES = BODIES[1:]
BODY_TITLES = {
    "noop": "return None",
    "sleep0": "await asyncio.sleep(0)",
    "future": "await a future a callback completes",
    "lock": "async with an asyncio.Lock",
}


class Bodies:
    """The method bodies of W1-W3 and W6, one method each (named as in BODIES): the actor's
    work is the same, what differs is whether and how it awaits.

    ``noop`` cannot suspend. ``sleep0`` yields to the loop once. ``future`` awaits a future
    that another call on the actor's loop completes (a ``call_soon`` callback the body
    schedules): the shape of a body waiting for I/O that its loop completes. ``lock`` enters
    and leaves an ``asyncio.Lock`` of the actor; nothing holds it across a suspension, so it
    is never contended and the body does not suspend: what it measures is the lock's own cost
    inside a call.
    """

    def __init__(self):
        self._lock = asyncio.Lock()  # binds to the loop of its first contended use: none here

    async def noop(self):
        return None

    async def sleep0(self):
        await asyncio.sleep(0)

    async def future(self):
        future = asyncio.get_running_loop().create_future()
        future.get_loop().call_soon(future.set_result, None)
        return await future

    async def lock(self):
        async with self._lock:
            return None


def bodies_of(impl: ModuleType) -> tuple[str, ...]:
    """The bodies ``impl`` can run: every one when it has body_actor, else only noop."""
    return getattr(impl, "BODIES", ("noop",))


def body_metrics(metrics: dict, body: str) -> dict:
    """W1-W3 and W6 metrics of body ``body``: noop's keep their names (and their history),
    the others get ``:body`` appended."""
    return metrics if body == "noop" else {f"{key}:{body}": v for key, v in metrics.items()}


def body_args(body: str) -> tuple[str, ...]:
    """The body argument of an adapter's call functions: none for noop, so that adapters
    without bodies (rct, Ray, pykka) run W1-W3 and W6 as before."""
    return () if body == "noop" else (body,)


def actor_for(impl: ModuleType, session, body: str):
    """An actor for ``body``: noop's actor has no __init__, as in W1-W3 before the bodies."""
    return impl.noop_actor(session) if body == "noop" else impl.body_actor(session)


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


def w1_sync_roundtrip(impl: ModuleType, session, sizes: Sizes, body: str = "noop") -> dict:
    """A plain thread: get(a.<body>.remote()), again and again. µs per call."""
    actor = actor_for(impl, session, body)
    impl.roundtrips(actor, sizes.w1_warmup, *body_args(body))
    seconds = timed(impl.roundtrips, actor, sizes.w1_calls, *body_args(body))
    return body_metrics({"w1_us": seconds / sizes.w1_calls * 1e6}, body)


def w2_pipelined(impl: ModuleType, session, sizes: Sizes, body: str = "noop") -> dict:
    """A plain thread submits w2_calls calls, then gets them all. Calls/s, median of
    w2_batches batches (one batch spans only a few GIL switch intervals)."""
    actor = actor_for(impl, session, body)
    impl.pipelined(actor, min(sizes.w2_calls, 1000), *body_args(body))
    seconds = statistics.median(
        timed(impl.pipelined, actor, sizes.w2_calls, *body_args(body))
        for _ in range(sizes.w2_batches)
    )
    return body_metrics({"w2_calls_per_s": sizes.w2_calls / seconds}, body)


def w3_async_caller(impl: ModuleType, session, sizes: Sizes, body: str = "noop") -> dict:
    """In the caller's own event loop: sequential awaits (µs/call), and a gather of
    w3_gather calls (calls/s, median of w3_batches). Then the sequential awaits again from a
    stock asyncio loop whatever the actor's loops are (the same as the first figure for the
    asyncio columns): an asyncio application calling into the default uvloop actors."""
    actor = actor_for(impl, session, body)
    loop = impl.new_caller_loop(session)
    try:
        run_in_loop(loop, impl.async_roundtrips, actor, min(sizes.w3_calls, 500), *body_args(body))
        sequential = run_in_loop(
            loop, impl.async_roundtrips, actor, sizes.w3_calls, *body_args(body)
        )
        gather = statistics.median(
            run_in_loop(loop, impl.async_gather, actor, sizes.w3_gather, *body_args(body))
            for _ in range(sizes.w3_batches)
        )
    finally:
        loop.close()
    stock = asyncio.new_event_loop()
    try:
        run_in_loop(stock, impl.async_roundtrips, actor, min(sizes.w3_calls, 500), *body_args(body))
        from_asyncio = run_in_loop(
            stock, impl.async_roundtrips, actor, sizes.w3_calls, *body_args(body)
        )
    finally:
        stock.close()
    return body_metrics(
        {
            "w3_seq_us": sequential / sizes.w3_calls * 1e6,
            "w3_gather_calls_per_s": sizes.w3_gather / gather,
            "w3_seq_from_asyncio_us": from_asyncio / sizes.w3_calls * 1e6,
        },
        body,
    )


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


def run_callers(callers: list[Callable[[], object]]) -> float:
    """Run each of ``callers`` on a thread of its own, all released at once; seconds until
    the last has returned. A caller's exception is re-raised here."""
    barrier = threading.Barrier(len(callers) + 1)
    errors: list[BaseException] = []

    def run(caller):
        barrier.wait()
        try:
            caller()
        except BaseException as exc:  # re-raised by the measuring thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(caller,)) for caller in callers]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds


def fan_in(impl: ModuleType, actor, threads: int, calls: int, body: str = "noop") -> float:
    """``threads`` plain threads, each making ``calls`` round trips to ``actor``: seconds."""
    return run_callers([partial(impl.roundtrips, actor, calls, *body_args(body))] * threads)


def w6_fan_in(impl: ModuleType, session, sizes: Sizes, body: str = "noop") -> dict:
    """w6_threads plain threads, each making w6_calls round trips to one actor. Calls/s."""
    actor = actor_for(impl, session, body)
    impl.roundtrips(actor, sizes.w1_warmup, *body_args(body))
    seconds = fan_in(impl, actor, sizes.w6_threads, sizes.w6_calls, *body_args(body))
    return body_metrics({"w6_calls_per_s": sizes.w6_threads * sizes.w6_calls / seconds}, body)


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


def w9_actor_to_actor(impl: ModuleType, session, sizes: Sizes) -> dict:
    """An async actor method that awaits a call on a second actor (and, chain3, a chain of
    three actors), called w9_calls times from a plain thread and from an async caller's
    own loop. µs per call."""
    out = {}
    for depth, name in ((2, "w9"), (3, "w9_chain3")):
        head = impl.relay_chain(session, depth)
        impl.roundtrips(head, sizes.w9_warmup, "relay")
        sync = timed(impl.roundtrips, head, sizes.w9_calls, "relay")
        loop = impl.new_caller_loop(session)
        try:
            run_in_loop(loop, impl.async_roundtrips, head, sizes.w9_warmup, "relay")
            awaited = run_in_loop(loop, impl.async_roundtrips, head, sizes.w9_calls, "relay")
        finally:
            loop.close()
        out[f"{name}_sync_us"] = sync / sizes.w9_calls * 1e6
        out[f"{name}_async_us"] = awaited / sizes.w9_calls * 1e6
    return out


def mixed_plan(actors: list, calls: int) -> list[tuple[object, str]]:
    """W10's calls of one caller: round-robin over the actors, then over their groups, so
    that every (actor, group) pair comes once in every len(actors) x 3 calls."""
    n = len(actors)
    return [(actors[i % n], GROUP_NAMES[(i // n) % len(GROUP_NAMES)]) for i in range(calls)]


def mixed(impl: ModuleType, session, actors: list, sizes: Sizes, calls: int) -> float:
    """w10_threads plain threads and w10_async_callers async callers (each a thread running
    its own event loop), each making ``calls`` sequential calls of mixed_plan: seconds."""
    plan = mixed_plan(actors, calls)

    def async_caller():
        loop = impl.new_caller_loop(session)
        try:
            loop.run_until_complete(impl.async_tracked_roundtrips(plan))
        finally:
            loop.close()

    return run_callers(
        [partial(impl.tracked_roundtrips, plan)] * sizes.w10_threads
        + [async_caller] * sizes.w10_async_callers
    )


def mixed_actors(impl: ModuleType, session, sizes: Sizes) -> list:
    """W10's actors (groups io=2, compute=4, default), every group of every one started."""
    actors = [impl.tracker_actor(session, DEFAULT_MAX_CONCURRENCY) for _ in range(sizes.w10_actors)]
    for actor in actors:
        impl.touch_groups(actor)
    return actors


def w10_mixed(impl: ModuleType, session, sizes: Sizes) -> dict:
    """The shape of a service: w10_threads plain threads and w10_async_callers async callers
    at once, each making w10_calls sequential calls round-robin over w10_actors actors x their
    three groups (io=2, compute=4, default), each body `await asyncio.sleep(0)` inside
    InFlightTracker. Calls/s over all callers; and whether every group stayed within its
    limit."""
    actors = mixed_actors(impl, session, sizes)
    callers = sizes.w10_threads + sizes.w10_async_callers
    seconds = mixed(impl, session, actors, sizes, sizes.w10_calls)
    maxima = [impl.max_in_flight(actor) for actor in actors]
    return {
        "w10_calls_per_s": callers * sizes.w10_calls / seconds,
        "w10_within_limits": all(m[g] <= GROUP_LIMITS[g] for m in maxima for g in GROUP_LIMITS),
    }


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    run: Callable[..., dict]  # (adapter, session, sizes[, body]) -> {metric: value}
    bodies: bool = False  # run once per body of BODIES (the run takes a body)


WORKLOADS = {
    w.key: w
    for w in (
        Workload("W1", "sync round trip", w1_sync_roundtrip, bodies=True),
        Workload("W2", "pipelined", w2_pipelined, bodies=True),
        Workload("W3", "async caller", w3_async_caller, bodies=True),
        Workload("W4", "concurrency groups", w4_groups),
        Workload("W5", "limit wall", w5_limit_wall),
        Workload("W6", "fan-in", w6_fan_in, bodies=True),
        Workload("W7", "actor lifecycle", w7_lifecycle),  # + the fresh process: benchmarks.fresh
        Workload("W8", "scale", w8_scale),
        Workload("W9", "actor to actor", w9_actor_to_actor),
        Workload("W10", "mixed service", w10_mixed),
    )
}
