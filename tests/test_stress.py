"""Bounded stress tests: many calls from many callers with cancels and kills mid-flight,
cancels racing admission, and shutdown() with thousands of calls in flight (and with actors
being created). Every wait is bounded: a lost call fails the test instead of hanging it."""

import asyncio
import collections
import contextlib
import itertools
import os
import queue
import random
import sys
import threading
import time

import pytest
from gates import Countdown

import pyactors as ray
from pyactors import _runtime
from pyactors.exceptions import ActorDiedError, TaskCancelledError, TaskError

pytestmark = pytest.mark.stress

# Bound on waiting for anything that must happen; only reached when something is lost (a
# healthy run waits well under a second for any one thing). Kept low enough that a lost call
# fails the test before pytest's own 120 s timeout.
BOUND = 30.0


def value_of(cid):
    return 3 * cid + 1


def fails(cid):
    return cid % 101 == 0


class Log:
    """What one actor ran, appended to by its calls (list.append is atomic)."""

    def __init__(self):
        self.started = []
        self.returned = []
        self.raised = []


async def async_body(log, cid):
    log.started.append(cid)
    if cid % 3 == 0:
        await asyncio.sleep(0)  # in flight across loop iterations: cancels can hit it running
    if fails(cid):
        log.raised.append(cid)
        raise ValueError(cid)
    log.returned.append(cid)
    return value_of(cid)


def plain_body(log, cid):
    log.started.append(cid)
    if fails(cid):
        log.raised.append(cid)
        raise ValueError(cid)
    log.returned.append(cid)
    return value_of(cid)


GROUPS = ("default", "g1", "g2")


@ray.remote(concurrency_groups={"g1": 2, "g2": 8})
class AsyncBusy:
    def __init__(self, log):
        self.log = log

    async def default(self, cid):
        return await async_body(self.log, cid)

    @ray.method(concurrency_group="g1")
    async def g1(self, cid):
        return await async_body(self.log, cid)

    @ray.method(concurrency_group="g2")
    async def g2(self, cid):
        return await async_body(self.log, cid)


@ray.remote(concurrency_groups={"g1": 1, "g2": 3})
class ThreadBusy:
    def __init__(self, log):
        self.log = log

    def default(self, cid):
        return plain_body(self.log, cid)

    @ray.method(concurrency_group="g1")
    def g1(self, cid):
        return plain_body(self.log, cid)

    @ray.method(concurrency_group="g2")
    def g2(self, cid):
        return plain_body(self.log, cid)


class Progress:
    """Counts submissions; sets an event as the count passes each threshold."""

    def __init__(self, thresholds):
        self._count = itertools.count(1)
        self.events = {t: threading.Event() for t in thresholds}

    def tick(self):
        event = self.events.get(next(self._count))  # next() on a count is atomic
        if event is not None:
            event.set()


# The scenario at full scale: 200,000 calls across 50 actors x 3 groups, from 8 plain
# threads and 2 asyncio caller loops, with random cancels and 10 kills mid-flight. Every 5th
# actor is a threaded actor, the rest are async. Measured on the 2-core test VM (shared with
# other jobs): 7-11 s on uvloop, 17-35 s on asyncio (its loops wake up more slowly across 120+
# loop threads), so the full 200,000 is kept. PYACTORS_STRESS_CALLS scales it for quick runs.
N_CALLS = int(os.environ.get("PYACTORS_STRESS_CALLS", "200000"))
N_ACTORS = 50
N_THREADS = 8
N_LOOPS = 2
N_KILLS = 10
CANCEL_ONE_IN = 40
WINDOW = 2_000  # each caller keeps at most ~2 windows of calls outstanding


class Caller:
    """One caller's calls: (cid, actor index, group, ref), and what went wrong in it."""

    def __init__(self, index, n_callers, seed):
        self.cids = range(index, N_CALLS, n_callers)
        self.rng = random.Random(seed)
        self.calls = []
        self.errors = []
        self.cancels = 0

    def submit(self, cid, methods, progress):
        """Call `cid` on a random actor and group; maybe cancel an earlier call."""
        a = self.rng.randrange(N_ACTORS)
        g = self.rng.randrange(len(GROUPS))
        ref = methods[a][g](cid)
        self.calls.append((cid, a, g, ref))
        progress.tick()
        self.maybe_cancel()
        return ref

    def maybe_cancel(self):
        if self.calls and self.rng.randrange(CANCEL_ONE_IN) == 0:
            ref = self.calls[-1 - self.rng.randrange(min(len(self.calls), 500))][3]
            if self.rng.randrange(2):
                ray.cancel(ref)
            else:
                ref.cancel()
            self.cancels += 1


def run_plain_caller(caller, methods, progress):
    try:
        window = collections.deque()
        for cid in caller.cids:
            window.append(caller.submit(cid, methods, progress))
            if len(window) >= 2 * WINDOW:
                batch = [window.popleft() for _ in range(WINDOW)]
                _, not_ready = ray.wait(batch, num_returns=len(batch), timeout=BOUND)
                if not_ready:
                    caller.errors.append(f"{len(not_ready)} calls never completed")
                    return
    except BaseException as exc:  # reported by the test
        caller.errors.append(repr(exc))


async def run_loop_caller(caller, methods, progress):
    try:
        window = collections.deque()
        for cid in caller.cids:
            ref = caller.submit(cid, methods, progress)
            window.append(ref)
            if cid % 97 == 0:
                # Awaiting one ref: never blocks the caller's loop for long.
                with contextlib.suppress(TaskError, TaskCancelledError, ActorDiedError):
                    await ref
            if len(window) >= 2 * WINDOW:
                batch = [window.popleft() for _ in range(WINDOW)]
                _, pending = await asyncio.wait(batch, timeout=BOUND)
                if pending:
                    caller.errors.append(f"{len(pending)} calls never completed")
                    return
    except BaseException as exc:
        caller.errors.append(repr(exc))


def loop_thread(coroutine_factory):
    """A thread body running the coroutine on a new loop of the runtime's loop kind."""
    loop_factory = _runtime.current().loop_factory

    def run():
        loop = loop_factory()
        try:
            loop.run_until_complete(coroutine_factory())
        finally:
            loop.close()

    return run


def test_many_calls_many_callers_cancels_and_kills(loop_kind):
    started_at = time.monotonic()
    logs = [Log() for _ in range(N_ACTORS)]
    handles = [(ThreadBusy if i % 5 == 4 else AsyncBusy).remote(logs[i]) for i in range(N_ACTORS)]
    methods = [[getattr(h, g).remote for g in GROUPS] for h in handles]
    thresholds = [N_CALLS * k // (N_KILLS + 1) for k in range(1, N_KILLS + 1)]
    progress = Progress(thresholds)
    n_callers = N_THREADS + N_LOOPS
    callers = [Caller(i, n_callers, seed=i) for i in range(n_callers)]
    threads = [
        threading.Thread(
            target=run_plain_caller, args=(c, methods, progress), name=f"stress:caller-{i}"
        )
        for i, c in enumerate(callers[:N_THREADS])
    ]
    threads += [
        threading.Thread(
            target=loop_thread(lambda c=c: run_loop_caller(c, methods, progress)),
            name=f"stress:loop-{i}",
        )
        for i, c in enumerate(callers[N_THREADS:])
    ]
    for t in threads:
        t.start()

    # 10 kills, spread over the run: each one once that many calls have been submitted.
    rng = random.Random(1234)
    killed = []
    for threshold in thresholds:
        assert progress.events[threshold].wait(BOUND), f"callers stalled before {threshold}"
        victim = rng.choice([i for i in range(N_ACTORS) if i not in killed])
        ray.kill(handles[victim])
        killed.append(victim)

    for t in threads:
        t.join(BOUND)
    assert not [t for t in threads if t.is_alive()], "a caller hung"
    errors = [e for c in callers for e in c.errors]
    assert not errors, errors[:10]

    calls = [call for c in callers for call in c.calls]
    assert len(calls) == N_CALLS
    refs = [call[3] for call in calls]
    _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=BOUND)
    assert not not_ready, f"{len(not_ready)} of {len(refs)} calls never completed"
    submitted_for = time.monotonic() - started_at

    # What each call ended with.
    # (abandoned: asyncio's ref.cancel() gave up on it while it ran; its body may have finished)
    outcome = {}  # cid -> value | failed | cancelled-queued | cancelled-running | abandoned | died
    per_group = collections.defaultdict(collections.Counter)  # (actor, group) -> outcomes
    for cid, a, g, ref in calls:
        try:
            value = ray.get(ref, timeout=0)
        except TaskCancelledError as exc:
            if "while running" not in str(exc):
                kind = "cancelled-queued"
            elif ref.cancelled():
                kind = "abandoned"
            else:
                kind = "cancelled-running"
        except ActorDiedError as exc:
            assert a in killed, f"call {cid} of live actor {a} died: {exc}"
            kind = "died"
        except TaskError as exc:
            assert isinstance(exc, ValueError) and exc.args == (cid,), repr(exc)
            assert fails(cid)
            kind = "failed"
        else:
            assert value == value_of(cid), (cid, value)
            kind = "value"
        outcome[cid] = kind
        per_group[a, g][kind] += 1

    # What ran, seen from inside the actors.
    started = collections.Counter(cid for log in logs for cid in log.started)
    returned = collections.Counter(cid for log in logs for cid in log.returned)
    raised = collections.Counter(cid for log in logs for cid in log.raised)
    twice = [cid for cid, n in started.items() if n > 1]
    assert not twice, f"calls that ran more than once: {twice[:20]}"
    assert set(started) <= set(outcome), "an execution nobody submitted"
    for cid, kind in outcome.items():
        if kind == "value":
            assert returned[cid] == 1, f"call {cid} has a value but did not return once"
        elif kind == "failed":
            assert raised[cid] == 1, cid
        elif kind == "cancelled-queued":
            assert started[cid] == 0, f"call {cid} was cancelled before it started, yet ran"
        elif kind == "cancelled-running":
            # A body that awaited was interrupted there; one that cannot be interrupted (a
            # plain method, an async def without await) ended by itself - as cancelled.
            assert returned[cid] + raised[cid] <= 1, cid
    for cid in returned:
        # A call that returned completed with its value - unless a kill, asyncio's cancel(),
        # or cancel() while it ran came first.
        assert outcome[cid] in ("value", "died", "abandoned", "cancelled-running"), (
            cid,
            outcome[cid],
        )
    for cid in raised:
        assert outcome[cid] in ("failed", "died", "abandoned", "cancelled-running"), (
            cid,
            outcome[cid],
        )
    values = [value_of(cid) for cid, kind in outcome.items() if kind == "value"]
    unseen = [
        value_of(cid)
        for cid in returned
        if outcome[cid] in ("died", "abandoned", "cancelled-running")
    ]
    assert sum(values) == sum(value_of(cid) for cid in returned) - sum(unseen)

    # The groups' counters agree (killed actors' counters stopped at the kill).
    for a, handle in enumerate(handles):
        if a in killed:
            continue
        stats = ray.stats(handle)
        for g, name in enumerate(GROUPS):
            s, seen = stats[name], per_group[a, g]
            assert (s["running"], s["queued"], s["waiting_for_arguments"]) == (0, 0, 0), s
            assert s["completed"] == seen["value"], (a, name, s, seen)
            assert s["failed"] == seen["failed"], (a, name, s, seen)
            cancelled = seen["cancelled-queued"] + seen["cancelled-running"] + seen["abandoned"]
            assert s["cancelled"] == cancelled, (a, name, s, seen)

    kinds = collections.Counter(outcome.values())
    assert kinds["cancelled-queued"] + kinds["cancelled-running"] > 0
    assert kinds["died"] > 0 and kinds["failed"] > 0 and kinds["value"] > N_CALLS // 2
    print(f"\n{N_CALLS} calls in {submitted_for:.1f}s: {dict(kinds)}")


# -- cancel() racing admission -----------------------------------------------------------------


@ray.remote
class Echo:
    def __init__(self, ran):
        self.ran = ran
        self.active = 0
        self.idle = None

    async def echo(self, i):
        self.active += 1
        try:
            self.ran.append(i)
            await asyncio.sleep(0)
            return i
        finally:
            self.active -= 1
            if self.active == 0 and self.idle is not None:
                self.idle.set()

    async def drained(self):
        # A ref cancelled through asyncio while its call runs completes at once; the body
        # unwinds afterwards. Calls start in submission order: once no body submitted before
        # this call runs, every one of them has ended and given its slot back.
        while self.active:
            self.idle = asyncio.Event()
            await self.idle.wait()


def test_cancels_racing_admission_lose_no_call(loop_kind):
    """A thread cancels each call right behind the thread that submits it, so cancels land
    while the group admits calls and starts their tasks. Every call must still end (value or
    TaskCancelledError), run at most once, and free its slot. Frequent GIL switches widen the
    race windows."""
    rounds, per_round = 200, 1000
    ran = []
    echo = Echo.remote(ran)
    outcomes = collections.Counter()
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        for round_ in range(rounds):
            refs, handoff = [], queue.SimpleQueue()

            def canceller(handoff):
                while (ref := handoff.get()) is not None:
                    ref.cancel()

            # This round's queue, passed rather than closed over: a canceller that outlived
            # its round's join() must not read the next round's queue.
            thread = threading.Thread(target=canceller, args=(handoff,), name="stress:canceller")
            thread.start()
            for i in range(round_ * per_round, (round_ + 1) * per_round):
                ref = echo.echo.remote(i)
                refs.append(ref)
                handoff.put(ref)
            handoff.put(None)
            thread.join(BOUND)
            _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=10)
            assert not not_ready, (
                f"round {round_}: {len(not_ready)} cancelled calls never completed; "
                f"stats {ray.stats(echo)['default']}"
            )
            for i, ref in enumerate(refs, round_ * per_round):
                try:
                    assert ray.get(ref, timeout=0) == i
                    outcomes["value"] += 1
                except TaskCancelledError as exc:
                    outcomes["before" if "before it started" in str(exc) else "running"] += 1
    finally:
        sys.setswitchinterval(old_interval)
    ray.get(echo.drained.remote(), timeout=BOUND)
    executions = collections.Counter(ran)
    assert max(executions.values(), default=0) <= 1, "a call ran twice"
    assert len(executions) >= outcomes["value"]
    assert len(executions) <= rounds * per_round - outcomes["before"]
    stats = ray.stats(echo)["default"]
    assert stats["running"] == stats["queued"] == 0, stats
    assert stats["completed"] == outcomes["value"] + 1, (stats, outcomes)  # + drained()
    assert stats["cancelled"] == outcomes["before"] + outcomes["running"], (stats, outcomes)


# -- shutdown() with calls in flight --------------------------------------------------------


@ray.remote(concurrency_groups={"slow": 50})
class Held:
    def __init__(self):
        self.gate = None

    async def hold(self, i):
        if self.gate is None:
            self.gate = asyncio.Event()  # never set: held calls end only by shutdown()
        await self.gate.wait()
        return i

    async def quick(self, i):
        return i

    @ray.method(concurrency_group="slow")
    async def slow_hold(self, i):
        await asyncio.Event().wait()
        return i


@ray.remote(max_concurrency=2)
class HeldThreads:
    def quick(self, i):
        return i


N_IN_FLIGHT = 10_000
N_SUBMITTERS = 4


def test_shutdown_with_10000_calls_in_flight(loop_kind):
    actors = [Held.options(max_concurrency=100).remote() for _ in range(8)]
    threaded = [HeldThreads.remote() for _ in range(2)]
    per_thread = N_IN_FLIGHT // N_SUBMITTERS
    submitted = Countdown(N_IN_FLIGHT)
    results = {}  # caller name -> what its wait for its calls ended with

    def submitter(k):
        rng = random.Random(k)
        refs = []
        for i in range(per_thread):
            a = actors[rng.randrange(len(actors))]
            kind = rng.randrange(10)
            if kind < 6:
                refs.append(a.hold.remote(i))  # queued or running, held
            elif kind < 8:
                refs.append(a.slow_hold.remote(i))
            elif kind < 9:
                refs.append(a.quick.remote(i))
            else:
                refs.append(threaded[rng.randrange(2)].quick.remote(i))
            submitted.count()
        try:
            ray.get(refs)  # blocks until shutdown() fails the held calls
        except ActorDiedError as exc:
            results[f"thread-{k}"] = exc
        else:
            results[f"thread-{k}"] = "all finished"

    def racer(k):
        # Keeps submitting (and waiting) through the shutdown, until its calls fail.
        a = actors[k]
        n = 0
        try:
            while True:
                ref = a.quick.remote(n)
                n += 1
                ray.get(ref, timeout=BOUND)
        except ActorDiedError as exc:
            results[f"racer-{k}"] = exc
        except BaseException as exc:
            results[f"racer-{k}"] = repr(exc)

    loop_waiting = threading.Event()

    async def awaiter():
        refs = [actors[i % len(actors)].hold.remote(i) for i in range(200)]
        loop_waiting.set()
        # asyncio.wait, not wait_for: on Python 3.11 a wait_for timeout would cancel the calls
        done, _ = await asyncio.wait([asyncio.gather(*refs, return_exceptions=True)], timeout=BOUND)
        if done:
            results["loop"] = done.pop().result()

    threads = [
        threading.Thread(target=submitter, args=(k,), name=f"stress:submitter-{k}")
        for k in range(N_SUBMITTERS)
    ]
    threads += [
        threading.Thread(target=racer, args=(k,), name=f"stress:racer-{k}") for k in range(2)
    ]
    threads.append(threading.Thread(target=loop_thread(awaiter), name="stress:awaiting-loop"))
    for t in threads:
        t.start()
    submitted.wait(BOUND)
    assert loop_waiting.wait(BOUND)

    t0 = time.monotonic()
    ray.shutdown()
    shutdown_took = time.monotonic() - t0

    for t in threads:
        t.join(BOUND)
    assert not [t for t in threads if t.is_alive()], "a caller never returned"
    assert set(results) == {
        *(f"thread-{k}" for k in range(N_SUBMITTERS)),
        "racer-0",
        "racer-1",
        "loop",
    }, results
    for name, result in results.items():
        for error in result if name == "loop" else [result]:
            assert isinstance(error, ActorDiedError), (name, error)
            assert "shutdown() was called" in str(error), (name, error)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("pyactors:")]
    assert not leftover, f"pyactors threads survived shutdown(): {leftover}"
    assert shutdown_took < BOUND / 2, f"shutdown() took {shutdown_took:.1f}s"
    print(f"\nshutdown() with {N_IN_FLIGHT} calls in flight took {shutdown_took:.2f}s")


@ray.remote
class Pinger:
    async def ping(self):
        return "pong"


def test_actors_created_during_shutdown_do_not_outlive_it(loop_kind):
    """A thread creates actors while shutdown() runs. Each one belongs either to the runtime
    being shut down (and dies with it) or to the fresh runtime its creation started (and dies
    with the next shutdown()): none keeps serving calls or threads afterwards."""
    for attempt in range(20):
        ray.init(loop=loop_kind, ignore_reinit_error=True)
        handles = []
        creating = threading.Event()

        def creator(creating, handles):
            creating.set()
            handles.extend(Pinger.remote() for _ in range(30))

        # This attempt's event and list, passed rather than closed over: a creator that
        # outlived its attempt's join() must not add to the next attempt's list.
        thread = threading.Thread(target=creator, args=(creating, handles), name="stress:creator")
        thread.start()
        try:
            assert creating.wait(BOUND)
            ray.shutdown()
            thread.join(BOUND)
            ray.shutdown()  # the runtime that creations after the first shutdown() started
            alive = [h for h in handles if not h.ping.remote().done()]
            threads = [t.name for t in threading.enumerate() if t.name.startswith("pyactors:")]
        finally:  # whatever failed, leave no thread to the next tests
            thread.join(BOUND)
            for handle in handles:
                ray.kill(handle)
        assert not alive and not threads, (
            f"attempt {attempt}: {len(alive)} of {len(handles)} actors created during "
            f"shutdown() still accept calls; threads left: {threads}"
        )
