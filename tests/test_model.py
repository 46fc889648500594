"""Model-based test (hypothesis stateful): real actors driven through the public API, or
through the compiled core alone, and compared, step by step, with a model of what the docs
promise.

Two actors: an async actor with four groups (one of them for `blocking=True` plain methods,
which run on worker threads) and a threaded actor with two. Rules submit calls (from the main
thread, a plain helper thread and an asyncio helper loop, one at a time or all three at once),
finish or fail them (each call waits on a gate of its own), cancel queued and running calls,
change limits with set_concurrency(), kill an actor (kill() or cancel(force=True)) and replace
a dead one. After every rule the test waits for the state the model predicts - the calls it
says have started, the refs it says have completed - and then checks, inside the actor and
through stats():

  * running <= limit in every group (each call checks the in-flight count when it starts);
  * queued calls start in FIFO order per group: the set of started calls is always a prefix
    of the queue, and where one thread starts them (an event loop, or a single worker) they
    start in exactly that order;
  * every call ends exactly once, with the outcome the model predicts (value, TaskError,
    TaskCancelledError, ActorDiedError), and runs at most once, only if the model says so;
  * stats() agrees: completed + failed + cancelled + running + queued == submitted, minus the
    calls a kill ended.

The "core" driver builds the same actors from the core's own objects (ActorCore, its groups,
RemoteMethods), with no ActorClass, handle or runtime registry: the core's admission,
cancellation, limits and stats are checked without the Python layer in between.

Why run_state_machine_as_test() and not `TestX = Machine.TestCase`: pytest does not give the
autouse, parametrised `loop_kind` fixture of conftest.py to unittest-style classes ("runTest
does not support fixtures"), so the TestCase would error; a plain test function running the
machine gets both loop kinds and the per-test thread check.
"""

import asyncio
import collections
import concurrent.futures
import functools
import itertools
import queue
import threading

import pytest
from gates import Gate
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import pyactors as ray
from pyactors import _runtime
from pyactors._actor import _assemble
from pyactors.exceptions import ActorDiedError, TaskCancelledError, TaskError

# Bound on anything the model says must happen (a start, a completion). Generous: the test VM
# is shared; a healthy step takes milliseconds.
WAIT = 30.0
VIAS = ("main", "thread", "loop")


class Boom(Exception):
    """What a call raises when its gate is opened with fail=True."""


# -- what the actors see ---------------------------------------------------------------------


class Token:
    """Everything a call needs: its id, expected group, gate and start signal."""

    __slots__ = ("cid", "gate", "group", "started", "value")

    def __init__(self, cid, group):
        self.cid = cid
        self.group = group
        self.gate = Gate()
        self.started = threading.Event()
        self.value = cid * 1000 + 7


class Recorder:
    """Shared by one actor and the test (nothing is copied in one process): what ran, where,
    in which order, and how many at once."""

    def __init__(self, limits):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.limits = dict(limits)  # kept up to date by the test
        self.in_flight = dict.fromkeys(limits, 0)
        self.starts = {g: [] for g in limits}
        self.executions = collections.Counter()
        self.finished = {}  # cid -> "value" | "raised" | "cancelled"
        self.violations = []

    def start(self, token):
        group = ray.get_runtime_context().concurrency_group
        with self.lock:
            self.executions[token.cid] += 1
            if self.executions[token.cid] > 1:
                self.violations.append(f"c{token.cid} ran {self.executions[token.cid]} times")
            if group != token.group:
                self.violations.append(f"c{token.cid} ran in {group!r}, not {token.group!r}")
            self.in_flight[group] += 1
            if self.in_flight[group] > self.limits[group]:
                self.violations.append(
                    f"c{token.cid} started with {self.in_flight[group]} running in {group!r}, "
                    f"limit {self.limits[group]}"
                )
            self.starts[group].append(token.cid)
        token.started.set()

    def finish(self, token, how):
        group = token.group
        with self.lock:
            self.in_flight[group] -= 1
            if token.cid in self.finished:
                self.violations.append(f"c{token.cid} finished twice")
            self.finished[token.cid] = how
            self.changed.notify_all()

    def wait_finished(self, calls):
        """How each of `calls` ended inside the actor, once they all have (bounded)."""
        with self.lock:
            self.changed.wait_for(lambda: all(c.cid in self.finished for c in calls), WAIT)
            return {c.cid: self.finished.get(c.cid) for c in calls}


async def async_body(rec, token):
    rec.start(token)
    try:
        fail = await token.gate.wait()
    except asyncio.CancelledError:
        rec.finish(token, "cancelled")
        raise
    rec.finish(token, "raised" if fail else "value")
    if fail:
        raise Boom(token.cid)
    return token.value


def blocking_body(rec, token):
    rec.start(token)
    fail = token.gate.wait_blocking(3 * WAIT)
    rec.finish(token, "raised" if fail else "value")
    if fail:
        raise Boom(token.cid)
    return token.value


@ray.remote(concurrency_groups={"io": 1, "cpu": 3, "blk": 2})
class AsyncSubject:
    def __init__(self, rec):
        self.rec = rec

    async def ready(self):
        return None

    async def default_work(self, token):
        return await async_body(self.rec, token)

    @ray.method(concurrency_group="io")
    async def io_work(self, token):
        return await async_body(self.rec, token)

    @ray.method(concurrency_group="cpu")
    async def cpu_work(self, token):
        return await async_body(self.rec, token)

    @ray.method(concurrency_group="blk", blocking=True)
    def blk_work(self, token):  # on a worker thread of "blk" (or of the group it is sent to)
        return blocking_body(self.rec, token)


@ray.remote(concurrency_groups={"io": 2})
class ThreadSubject:
    def __init__(self, rec):
        self.rec = rec

    def ready(self):
        return None

    def default_work(self, token):
        return blocking_body(self.rec, token)

    @ray.method(concurrency_group="io")
    def io_work(self, token):
        return blocking_body(self.rec, token)


SPECS = {
    # slot: (actor class, threaded?, initial limits per group)
    "async": (AsyncSubject, False, {"default": 2, "io": 1, "cpu": 3, "blk": 2}),
    "thread": (ThreadSubject, True, {"default": 1, "io": 2}),
}


# -- how the model reaches the actors ----------------------------------------------------------


class ApiDriver:
    """The public API."""

    killed = "killed by pyactors.kill()"  # in the ActorDiedError of kill()'s victims

    @staticmethod
    def create(slot, rec):
        cls, _, limits = SPECS[slot]
        return cls.options(max_concurrency=limits["default"]).remote(rec)

    stats = staticmethod(ray.stats)
    set_concurrency = staticmethod(ray.set_concurrency)
    kill = staticmethod(ray.kill)


class CoreDriver:
    """The compiled core, driven directly: the actor is assembled by the library's own code
    (groups, method objects, __init__) but not registered with the runtime, and limits, stats
    and kills go to the core instead of the public API."""

    killed = "killed by the model"

    @staticmethod
    def create(slot, rec):
        actor_class, _, limits = SPECS[slot]
        options = actor_class.options(max_concurrency=limits["default"])._options
        core, start = _assemble(actor_class, options, _runtime.current(), (rec,), {})
        handle = core.handle_factory()  # first, as the library does: it keeps the actor alive
        start()
        return handle

    @staticmethod
    def stats(handle):
        core = handle._pyactors_core
        return {name: core.group(name).stats() for name in core.group_names}

    @staticmethod
    def set_concurrency(handle, name, limit):
        handle._pyactors_core.group(name).set_limit(limit)

    @staticmethod
    def kill(handle):
        handle._pyactors_core.die(ActorDiedError(CoreDriver.killed))
        handle._pyactors_core.join(WAIT)


# -- caller threads ----------------------------------------------------------------------------


class ThreadHelper:
    """A long-lived plain caller thread: runs the functions handed to it, in order."""

    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="model:caller-thread", daemon=True)
        self._thread.start()

    def _run(self):
        while (item := self._queue.get()) is not None:
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the test
                fut.set_exception(exc)

    def submit(self, fn):
        fut = concurrent.futures.Future()
        self._queue.put((fn, fut))
        return fut

    def stop(self):
        self._queue.put(None)
        self._thread.join(WAIT)
        assert not self._thread.is_alive()


class LoopHelper:
    """A long-lived asyncio caller loop (of the runtime's loop kind) on a thread of its own."""

    def __init__(self):
        self.loop = _runtime.current().loop_factory()  # the loop kind the runtime runs
        self._thread = threading.Thread(target=self._run, name="model:caller-loop", daemon=True)
        self._thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, fn):
        """Run the plain function `fn` as a callback of the loop."""
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut

    def run_coroutine(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        assert not self._thread.is_alive()


# -- the model ---------------------------------------------------------------------------------


class MCall:
    def __init__(self, cid, actor, group, token, submitter, blocking, segment=None):
        self.cid = cid
        self.actor = actor
        self.group = group
        # A plain method blocking a thread (threaded actor, or blocking=True): a running one
        # cannot be cancelled, and kill() cannot interrupt it.
        self.blocking = blocking
        self.token = token
        self.submitter = submitter
        self.segment = segment  # calls of one concurrent burst: their mutual order is unknown
        self.ref = None
        self.status = "queued"  # queued -> running -> done (or queued -> done)
        self.outcome = None  # value | failed | cancelled-queued | cancelled-running | died-*
        self.preopen = None  # None, or "value"/"failed": the gate opened before it started
        self.cancel_asked = False  # cancel() told this running plain body to stop
        self.started = False
        self.checked = False  # outcome verified once done
        self.start_seen = False

    def __repr__(self):
        return f"c{self.cid}"


class MGroup:
    def __init__(self, name, limit, threaded):
        self.name = name
        self.limit = limit
        self.threaded = threaded
        self.running = []
        self.queue = []
        self.waves = []  # predicted start order: (kind, [calls]); kind exact|segment|unordered
        self.submitted = 0
        self.completed = self.failed = self.cancelled = self.died = 0


class MActor:
    _ids = itertools.count()

    def __init__(self, slot, driver):
        _, threaded, limits = SPECS[slot]
        self.slot = slot
        self.serial = next(self._ids)
        self.threaded = threaded
        self.rec = Recorder(limits)
        self.groups = {g: MGroup(g, limit, threaded) for g, limit in limits.items()}
        self.handle = driver.create(slot, self.rec)
        # Ready once a call submitted after __init__ has run, as a Ray program would see it:
        # until then the core counts __init__ as running in the default group, which the model
        # does not (it checks the groups' stats right after this).
        assert ray.get(self.handle.ready.remote(), timeout=WAIT) is None
        self.groups["default"].submitted = self.groups["default"].completed = 1
        self.dead = False
        self.death = None  # "killed" | "forced"
        self.calls = []

    def __repr__(self):
        return f"{self.slot}#{self.serial}{' (dead)' if self.dead else ''}"


def guarded(fn):
    """Mark the machine broken when a rule or invariant fails, so that teardown only cleans
    up instead of piling a second failure onto the first."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        self.history.append(f"{fn.__name__}({', '.join(map(repr, kwargs.values()))})")
        try:
            return fn(self, *args, **kwargs)
        except BaseException:
            self.broken = True
            # A race makes hypothesis's replay take another path, and it then reports no
            # steps ("Flaky"): print those this run took (pytest shows them with the failure).
            print("steps of this run, the last ones:", *self.history, sep="\n  ")
            raise

    return wrapper


class ActorModel(RuleBasedStateMachine):
    def __init__(self, loop_kind, driver):
        super().__init__()
        self.driver = driver
        self.broken = False
        self.history = collections.deque(maxlen=40)
        self.cids = itertools.count(1)
        self.segments = itertools.count(1)
        self.thread_helper = ThreadHelper()
        self.loop_helper = LoopHelper()
        self.actors = {slot: MActor(slot, driver) for slot in SPECS}
        self.incarnations = list(self.actors.values())
        self.all_calls = []

    # -- plumbing --------------------------------------------------------------------------

    def on(self, via, fn):
        """Run `fn` on the main thread or a helper, and return its result."""
        if via == "main":
            return fn()
        helper = self.thread_helper if via == "thread" else self.loop_helper
        return helper.submit(fn).result(WAIT)

    def new_call(self, actor, group, method_group, submitter, segment=None):
        cid = next(self.cids)
        blocking = actor.threaded or method_group == "blk"
        call = MCall(cid, actor, group, Token(cid, group), submitter, blocking, segment)
        actor.calls.append(call)
        self.all_calls.append(call)
        return call

    @staticmethod
    def remote_fn(actor, call, method_group):
        method = getattr(actor.handle, f"{method_group}_work")
        if method_group != call.group:  # a call-time override of the declared group
            method = method.options(concurrency_group=call.group)
        token = call.token
        return lambda: method.remote(token)

    def live(self):
        return [a for a in self.actors.values() if not a.dead]

    def complete(self, call, outcome):
        """The model's bookkeeping of a call ending (not by a kill)."""
        group = call.actor.groups[call.group]
        if call in group.running:
            group.running.remove(call)
        call.status = "done"
        # A plain body told to stop (cancel() while it ran) ends as cancelled, however it
        # ends, as in Ray.
        call.outcome = "cancelled-running" if call.cancel_asked else outcome
        if call.outcome == "value":
            group.completed += 1
        elif call.outcome == "failed":
            group.failed += 1
        else:
            group.cancelled += 1

    def admit(self, actor, group):
        """Start queued calls, FIFO, while the group has a free slot. A call whose gate was
        opened before it started finishes at once and frees its slot again."""
        if actor.dead:
            return
        started = []
        while group.queue and len(group.running) < group.limit:
            call = group.queue.pop(0)
            call.started = True
            started.append(call)
            if call.preopen is not None:
                self.complete(call, call.preopen)
            else:
                call.status = "running"
                group.running.append(call)
        if not started:
            return
        if (group.threaded and group.limit > 1) or (
            not group.threaded and any(c.blocking for c in started)
        ):
            # Several threads start these calls: which records its start first is a race.
            group.waves.append(("unordered", started))
            return
        for call in started:
            last = group.waves[-1] if group.waves else None
            if (
                call.segment is not None
                and last is not None
                and last[0] == "segment"
                and last[1][-1].segment == call.segment
            ):
                last[1].append(call)
            else:
                group.waves.append(("segment" if call.segment else "exact", [call]))

    # -- waiting for the predicted state, and checking it -----------------------------------

    def settle(self):
        """Wait until the actors reach the state the model predicts."""
        done = [c for c in self.all_calls if c.status == "done" and not c.checked]
        pending = [c.ref for c in done if not c.ref.done()]
        if pending:
            _, not_ready = ray.wait(pending, num_returns=len(pending), timeout=WAIT)
            assert not not_ready, f"calls the model says have ended did not: {not_ready}"
        for call in done:
            self.check_outcome(call)
        for actor in self.live():
            for group in actor.groups.values():
                for call in group.running:
                    if not call.start_seen:
                        assert call.token.started.wait(WAIT), (
                            f"{call} should have started in {actor}/{group.name}"
                        )
                        call.start_seen = True
                    assert not call.ref.done(), f"{call} ended while its gate is closed"

    def check_outcome(self, call):
        ref = call.ref
        assert ref.done(), call
        try:
            value = ray.get(ref, timeout=0)
        except TaskCancelledError as exc:
            got = "cancelled-running" if "while running" in str(exc) else "cancelled-queued"
            assert "before it started" in str(exc) or "while running" in str(exc), exc
        except ActorDiedError as exc:
            got = (
                "died-killed"
                if self.driver.killed in str(exc)
                else "died-forced"
                if "force=True" in str(exc)
                else f"died: {exc}"
            )
        except TaskError as exc:
            assert isinstance(exc, Boom) and exc.args == (call.cid,), repr(exc)
            got = "failed"
        else:
            assert value == call.token.value, (call, value)
            got = "value"
        assert got == call.outcome, f"{call}: model says {call.outcome}, the ref says {got}"
        call.checked = True

    @invariant()
    @guarded
    def actors_agree_with_the_model(self):
        for actor in self.actors.values():
            rec = actor.rec
            with rec.lock:
                assert not rec.violations, rec.violations
                starts = {g: list(s) for g, s in rec.starts.items()}
                in_flight = dict(rec.in_flight)
            stats = self.driver.stats(actor.handle)
            assert set(stats) == set(actor.groups)
            for name, group in actor.groups.items():
                self.check_start_order(actor, group, starts[name])
                if not actor.dead:
                    assert in_flight[name] == len(group.running), (actor, name, in_flight)
                s = stats[name]
                expected = {
                    "limit": group.limit,
                    "running": 0 if actor.dead else len(group.running),
                    "queued": 0 if actor.dead else len(group.queue),
                    "waiting_for_arguments": 0,
                    "completed": group.completed,
                    "failed": group.failed,
                    "cancelled": group.cancelled,
                }
                if {k: s[k] for k in expected} != expected:
                    core_group = actor.handle._pyactors_core.group(name)
                    raise AssertionError(
                        f"{actor}/{name}: stats {s}, the model expects {expected}; in flight "
                        f"in the core: {core_group.running_calls()}; the model's running: "
                        f"{group.running}, queue: {group.queue}"
                    )
                total = sum(s[k] for k in ("completed", "failed", "cancelled", "running", "queued"))
                assert total == group.submitted - group.died, (actor, name, s)
                assert s["max_queue_wait"] >= 0

    def check_start_order(self, actor, group, observed):
        """Starts recorded inside the actor follow the predicted FIFO waves."""
        pos = 0
        for kind, calls in group.waves:
            chunk = observed[pos : pos + len(calls)]
            pos += len(calls)
            assert sorted(chunk) == sorted(c.cid for c in calls), (
                f"{actor}/{group.name}: started {observed}, FIFO predicts {group.waves}"
            )
            if kind == "exact":
                assert chunk == [calls[0].cid]
            elif kind == "segment":  # each submitter's calls in its own (cid) order
                for who in VIAS:
                    theirs = {c.cid for c in calls if c.submitter == who}
                    mine = [cid for cid in chunk if cid in theirs]
                    assert mine == sorted(mine), (actor, group.name, who, chunk)
        assert pos == len(observed), (
            f"{actor}/{group.name}: started {observed}, the model predicts {group.waves}"
        )

    # -- rules -------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        slot=st.sampled_from(sorted(SPECS)),
        via=st.sampled_from(VIAS),
        preopen=st.sampled_from([None, None, None, "value", "failed"]),
    )
    @guarded
    def submit(self, data, slot, via, preopen):
        actor = self.actors[slot]
        names = sorted(actor.groups)
        group_name = data.draw(st.sampled_from(names), label="group")
        method_group = data.draw(
            st.sampled_from([group_name, group_name, *names]), label="method of group"
        )
        call = self.new_call(actor, group_name, method_group, via)
        if preopen is not None:
            call.token.gate.open(fail=preopen == "failed")
            call.preopen = preopen
        call.ref = self.on(via, self.remote_fn(actor, call, method_group))
        group = actor.groups[group_name]
        if actor.dead:
            # Calls made after kill() returns fail at once.
            assert call.ref.done(), f"{call} on a dead actor is pending"
            call.status, call.outcome = "done", f"died-{actor.death}"
            self.check_outcome(call)
            return
        group.submitted += 1
        group.queue.append(call)
        self.admit(actor, group)
        self.settle()

    @precondition(lambda self: self.live())
    @rule(data=st.data(), per_caller=st.integers(1, 6))
    @guarded
    def burst(self, data, per_caller):
        """The three callers submit at the same time into one group: calls that finish (or
        fail) as soon as they start. Their mutual order is a race; each caller's is not."""
        actor = data.draw(st.sampled_from(self.live()), label="actor")
        self.history.append(f"  actor {actor!r}")
        group = actor.groups[data.draw(st.sampled_from(sorted(actor.groups)), label="group")]
        segment = next(self.segments)
        modes = data.draw(
            st.lists(
                st.sampled_from(["value", "value", "failed"]),
                min_size=3 * per_caller,
                max_size=3 * per_caller,
            ),
            label="outcomes",
        )
        batches = {}
        for i, who in enumerate(VIAS):
            batch = batches[who] = []
            for mode in modes[i * per_caller : (i + 1) * per_caller]:
                call = self.new_call(actor, group.name, group.name, who, segment)
                call.preopen = mode
                call.token.gate.open(fail=mode == "failed")
                batch.append((call, self.remote_fn(actor, call, group.name)))
        barrier = threading.Barrier(len(VIAS), timeout=WAIT)

        def burst_of(who):
            def run():
                barrier.wait()
                for call, submit in batches[who]:
                    call.ref = submit()

            return run

        futures = [
            self.thread_helper.submit(burst_of("thread")),
            self.loop_helper.submit(burst_of("loop")),
        ]
        burst_of("main")()
        for fut in futures:
            fut.result(WAIT)
        for who in VIAS:
            for call, _ in batches[who]:
                group.submitted += 1
                group.queue.append(call)
        self.admit(actor, group)
        self.settle()

    def open_candidates(self):
        return [c for a in self.live() for c in a.calls if c.status != "done" and c.preopen is None]

    @precondition(lambda self: self.open_candidates())
    @rule(data=st.data(), fail=st.booleans())
    @guarded
    def open_gate(self, data, fail):
        """A running call returns (or raises); a queued one will, as soon as it starts."""
        call = data.draw(st.sampled_from(self.open_candidates()), label="call")
        self.history.append(f"  call {call!r} of {call.actor!r}/{call.group}, {call.status}")
        call.token.gate.open(fail=fail)
        outcome = "failed" if fail else "value"
        group = call.actor.groups[call.group]
        if call.status == "running":
            self.complete(call, outcome)
            self.admit(call.actor, group)
        else:
            call.preopen = outcome
        self.settle()

    def cancel_candidates(self):
        return [c for a in self.live() for c in a.calls]

    @precondition(lambda self: self.cancel_candidates())
    @rule(
        data=st.data(),
        via=st.sampled_from(VIAS),
        force=st.booleans(),
        spelling=st.sampled_from(["ray.cancel", "ref.cancel"]),
    )
    @guarded
    def cancel(self, data, via, force, spelling):
        call = data.draw(st.sampled_from(self.cancel_candidates()), label="call")
        self.history.append(f"  call {call!r} of {call.actor!r}/{call.group}, {call.status}")
        actor = call.actor
        group = actor.groups[call.group]
        # asyncio's ref.cancel() gives up on a running call at once, before its body has
        # unwound (tests/test_kill_cancel.py covers that); for running calls the model keeps
        # to pyactors.cancel, which completes the ref only once the body has ended.
        if spelling == "ref.cancel" and not force and call.status != "running":
            fn = call.ref.cancel
        else:
            ref = call.ref
            fn = lambda: ray.cancel(ref, force=force)  # noqa: E731
        if call.status == "running" and call.blocking and force:
            self.kill_blocked(actor, via, fn, expect=True, death="forced")
            return
        result = self.on(via, fn)
        if call.status == "queued":
            assert result is True, f"cancel({call}) of a queued call returned {result}"
            # It fails at once, without running, and never takes a slot.
            assert call.ref.done(), f"cancelled queued {call} is still pending"
            group.queue.remove(call)
            self.complete(call, "cancelled-queued")
            self.check_outcome(call)
        elif call.status == "running" and not call.blocking:
            assert result is True, f"cancel({call}) of a running async call returned {result}"
            self.complete(call, "cancelled-running")
            self.admit(actor, group)
        elif call.status == "running":  # a plain method: not interrupted, but told to stop
            assert result is True, f"cancel({call}) of a running plain method: {result}"
            assert not call.ref.done(), f"{call} ended although it cannot be interrupted"
            call.cancel_asked = True
        else:
            assert result is False, f"cancel({call}) of a finished call returned {result}"
            call.checked = False  # it keeps its outcome: check again
        self.settle()

    @precondition(lambda self: self.live())
    @rule(data=st.data(), via=st.sampled_from(VIAS), limit=st.integers(1, 4))
    @guarded
    def set_concurrency(self, data, via, limit):
        actor = data.draw(st.sampled_from(self.live()), label="actor")
        self.history.append(f"  actor {actor!r}")
        group = actor.groups[data.draw(st.sampled_from(sorted(actor.groups)), label="group")]
        handle, name = actor.handle, group.name
        rec = actor.rec
        if limit > group.limit:
            with rec.lock:  # the actor may start more from now on
                rec.limits[name] = limit
        self.on(via, lambda: self.driver.set_concurrency(handle, name, limit))
        with rec.lock:  # lowering only delays new starts
            rec.limits[name] = limit
        group.limit = limit
        self.admit(actor, group)
        self.settle()

    @precondition(lambda self: self.live())
    @rule(data=st.data(), via=st.sampled_from(VIAS))
    @guarded
    def kill(self, data, via):
        actor = data.draw(st.sampled_from(self.live()), label="actor")
        self.history.append(f"  actor {actor!r}")
        handle = actor.handle
        running = [c for g in actor.groups.values() for c in g.running]
        if any(c.blocking for c in running):
            self.kill_blocked(
                actor, via, lambda: self.driver.kill(handle), expect=None, death="killed"
            )
            return
        self.on(via, lambda: self.driver.kill(handle))
        self.mark_dead(actor, "killed")
        # Its running coroutines were cancelled inside (CancelledError), and saw it.
        finished = actor.rec.wait_finished(running)
        for call in running:
            assert finished[call.cid] == "cancelled", (call, finished[call.cid])
        self.settle()

    def kill_blocked(self, actor, via, fn, expect, death):
        """Kill an actor while some running calls block in plain methods, which cannot be
        interrupted: once the kill failed every call, open their gates so that the worker
        threads can end (kill() waits for them). Running coroutines are cancelled."""
        outstanding = [c for c in actor.calls if c.status != "done"]
        running = [c for g in actor.groups.values() for c in g.running]
        blocked = [c for c in running if c.blocking]

        def release_when_dead():
            refs = [c.ref for c in outstanding]
            if refs:
                _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=WAIT)
                assert not not_ready, f"the kill did not fail {not_ready}"
            for call in blocked:
                call.token.gate.open()

        if via == "main":
            releaser = self.thread_helper.submit(release_when_dead)
            result = fn()
        else:
            helper = self.thread_helper if via == "thread" else self.loop_helper
            killer = helper.submit(fn)
            release_when_dead()
            result = killer.result(WAIT)
        if via == "main":
            releaser.result(WAIT)
        if expect is not None:
            assert result is expect, result
        self.mark_dead(actor, death)
        # kill() waits for the actor's threads; cancel(force=True) does not: kill() again
        # (harmless on a dead actor) to wait for them here.
        self.driver.kill(actor.handle)
        finished = actor.rec.wait_finished(running)
        for call in running:  # blocked ones finished unseen: their refs keep ActorDiedError
            expected = "value" if call.blocking else "cancelled"
            assert finished[call.cid] == expected, (call, finished[call.cid])
        self.settle()

    def mark_dead(self, actor, death):
        actor.dead = True
        actor.death = death
        for group in actor.groups.values():
            for call in group.running + group.queue:
                assert call.ref.done(), f"{call} is pending after its actor died"
                call.status, call.outcome = "done", f"died-{death}"
                group.died += 1
            group.running, group.queue = [], []

    @precondition(lambda self: any(a.dead for a in self.actors.values()))
    @rule(data=st.data())
    @guarded
    def replace_dead_actor(self, data):
        actor = data.draw(
            st.sampled_from([a for a in self.actors.values() if a.dead]), label="actor"
        )
        self.history.append(f"  actor {actor!r}")
        fresh = self.actors[actor.slot] = MActor(actor.slot, self.driver)
        self.incarnations.append(fresh)
        self.settle()

    def done_calls(self):
        return [c for c in self.all_calls if c.status == "done"]

    @precondition(lambda self: self.done_calls())
    @rule(data=st.data(), how=st.sampled_from(["await", "gather", "future", "get"]))
    @guarded
    def observe(self, data, how):
        """A completed ref gives the same outcome to every kind of waiter."""
        call = data.draw(st.sampled_from(self.done_calls()), label="call")
        self.history.append(f"  call {call!r} of {call.actor!r}/{call.group}, {call.status}")
        ref = call.ref
        if how in ("await", "gather"):

            async def read():
                if how == "await":
                    return await ref
                return (await asyncio.gather(ref))[0]

            fut = self.loop_helper.run_coroutine(read())
        elif how == "future":
            fut = ref.future()
        else:
            fut = self.thread_helper.submit(lambda: ray.get(ref, timeout=WAIT))
        try:
            value = fut.result(WAIT)
        except BaseException as exc:
            assert call.outcome != "value", (call, exc)
            if ref.cancelled():
                # asyncio gave up on it (ref.cancel()): futures say so as futures do, get() as
                # Ray does.
                cancelled = (
                    TaskCancelledError
                    if how == "get"
                    else (asyncio.CancelledError, concurrent.futures.CancelledError)
                )
                assert isinstance(exc, cancelled), (call, how, exc)
                expected = TaskCancelledError
            else:
                expected = type(exc)
            with pytest.raises(expected):
                ray.get(ref, timeout=0)
        else:
            assert call.outcome == "value" and value == call.token.value, (call, value)

    # -- end of an example ---------------------------------------------------------------------

    def teardown(self):
        try:
            if not self.broken:
                self.drain_and_check()
        finally:
            for call in self.all_calls:
                call.token.gate.open()
            for actor in self.incarnations:
                self.driver.kill(actor.handle)  # waits for the actor's threads
            self.thread_helper.stop()
            self.loop_helper.stop()

    def drain_and_check(self):
        # Let every outstanding call finish: queued ones as soon as they start.
        for actor in self.live():
            for group in actor.groups.values():
                for call in list(group.queue):
                    if call.preopen is None:
                        call.token.gate.open()
                        call.preopen = "value"
                for call in list(group.running):
                    call.token.gate.open()
                    self.complete(call, "value")
                self.admit(actor, group)
        self.settle()
        self.actors_agree_with_the_model()
        for call in self.all_calls:
            assert call.status == "done" and call.checked, call
        # Every call ran exactly as often as the model says: once if it started, else never.
        for actor in self.incarnations:
            with actor.rec.lock:
                executions = dict(actor.rec.executions)
                finished = dict(actor.rec.finished)
            for call in actor.calls:
                assert executions.get(call.cid, 0) == (1 if call.started else 0), call
                if call.started:
                    assert call.cid in finished, f"{call} started and never finished"


@pytest.mark.stress
@pytest.mark.parametrize("drive", ["api", "core"])
def test_actor_model(loop_kind, drive):
    driver = ApiDriver() if drive == "api" else CoreDriver()
    run_state_machine_as_test(
        lambda: ActorModel(loop_kind, driver),
        settings=settings(
            max_examples=50,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
