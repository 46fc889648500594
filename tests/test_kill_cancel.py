"""kill(), cancel(), and handles passed around."""

import asyncio
import os
import threading
import time

import pytest
from gates import Countdown, Gate

import pyactors as ray
from pyactors.exceptions import ActorDiedError, TaskCancelledError

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


@ray.remote(concurrency_groups={"io": 1})
class Worker:
    def __init__(self, started=None, cancelled=None):
        self.started = started
        self.gate = None
        self.ran = []
        self.cancelled = [] if cancelled is None else cancelled

    async def hold(self, tag):
        if self.gate is None:
            self.gate = Gate()
        self.ran.append(tag)
        if self.started is not None:
            self.started.count()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(tag)
            raise
        return tag

    @ray.method(concurrency_group="io")
    def release(self):
        self.gate.open()  # the gate stays open: every later hold() passes

    @ray.method(concurrency_group="io")
    def log(self):
        return list(self.ran), list(self.cancelled)

    @ray.method(concurrency_group="io")
    def block(self, running, event):
        running.set()
        event.wait(timeout=10)
        return "finished"

    def thread_names(self):
        return threading.current_thread().name

    async def echo(self, value):
        return value


def actor_threads(actor):
    core = actor._pyactors_core
    prefix = f"pyactors:{core.class_name}({core.actor_id[:8]}):"
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_kill_fails_queued_running_and_later_calls_at_once_and_stops_threads():
    started = Countdown(2)
    w = Worker.options(max_concurrency=2).remote(started)
    other = Worker.remote()
    refs = [w.hold.remote(i) for i in range(5)]  # 2 running, 3 queued
    started.wait()
    ray.get(w.log.remote())
    assert len(actor_threads(w)) == 2
    ray.kill(w)
    for ref in refs:
        assert ref.done()
        with pytest.raises(ActorDiedError, match="killed"):
            ray.get(ref, timeout=0)
    with pytest.raises(ActorDiedError, match="killed"):
        ray.get(w.echo.remote(1), timeout=0)  # failed at once, no wait
    assert actor_threads(w) == []
    assert ray.get(other.echo.remote("untouched")) == "untouched"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_kill_cancels_running_async_calls_inside_the_coroutine():
    started, cancelled = Countdown(1), []
    w = Worker.remote(started, cancelled)
    ref = w.hold.remote("x")
    started.wait()
    ray.kill(w)  # returns once the actor's threads have ended
    assert cancelled == ["x"]
    with pytest.raises(ActorDiedError):
        ray.get(ref)


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_cancel_a_queued_call_removes_it_without_running_it():
    started = Countdown(1)
    w = Worker.options(max_concurrency=1).remote(started)
    running = w.hold.remote("running")
    queued = [w.hold.remote(f"q{i}") for i in range(3)]
    started.wait()
    assert ray.cancel(queued[1]) is True
    with pytest.raises(TaskCancelledError, match="before it started"):
        ray.get(queued[1], timeout=0)
    stats = ray.stats(w)["default"]
    assert stats["queued"] == 2 and stats["running"] == 1 and stats["cancelled"] == 1
    w.release.remote()
    assert ray.get([running, queued[0], queued[2]]) == ["running", "q0", "q2"]
    ran, _ = ray.get(w.log.remote())
    assert "q1" not in ran


@pytest.mark.parametrize(
    "cancel", [ray.cancel, lambda ref: ref.cancel()], ids=["ray.cancel(ref)", "ref.cancel()"]
)
@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_cancel_a_running_async_call_raises_cancelled_error_inside_it(cancel):
    started = Countdown(1)
    w = Worker.options(max_concurrency=1).remote(started)
    running = w.hold.remote("victim")
    nxt = w.echo.remote("next")
    started.wait()
    assert cancel(running) is True
    with pytest.raises(TaskCancelledError, match="while running"):
        ray.get(running)
    assert ray.get(nxt) == "next"  # the slot was freed
    assert ray.get(w.log.remote()) == (["victim"], ["victim"])
    assert ray.stats(w)["default"]["cancelled"] == 1


def test_cancel_a_finished_call_keeps_its_value(place):
    w = Worker.remote()
    ref = w.echo.remote(3)
    assert ray.get(ref) == 3
    assert ray.cancel(ref) is (None if place == "ray" else False)  # Ray's cancel() tells nothing
    assert ray.get(ref) == 3


@ray.remote
class Cooperative:
    def __init__(self):
        self.saw = None

    def work(self, running, event):
        running.set()
        event.wait(30)
        self.saw = ray.get_runtime_context().is_canceled()
        return "finished"

    def seen(self):
        return self.saw


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_a_running_sync_call_is_told_to_stop_and_ends_as_cancelled():
    """Ray's cooperative cancellation: a running plain method is not interrupted, but
    is_canceled() turns True inside it and its caller gets TaskCancelledError."""
    actor = Cooperative.remote()
    running, event = threading.Event(), threading.Event()
    ref = actor.work.remote(running, event)
    assert running.wait(10)
    assert ray.cancel(ref) is True
    assert ray.wait([ref], timeout=0)[0] == []  # not interrupted: it goes on
    event.set()
    with pytest.raises(TaskCancelledError, match="while running"):
        ray.get(ref, timeout=30)
    assert ray.get(actor.seen.remote()) is True  # inside, is_canceled() said so


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_is_canceled_turns_true_inside_the_running_call():
    @ray.remote
    class Polls:
        def poll(self, running):
            running.set()
            context = ray.get_runtime_context()
            while not context.is_canceled():
                time.sleep(0.001)
            return "saw it"

    actor = Polls.remote()
    running = threading.Event()
    ref = actor.poll.remote(running)
    assert running.wait(10)
    assert ray.cancel(ref) is True
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)  # it ended by itself once it saw the request


@ray.remote
class Reader:
    def read(self, path):
        with open(path) as fifo:  # returns once the test opened it too: the call runs
            return fifo.read()  # until the test closes it


@pytest.mark.not_on_ray("Ray refuses force=True for actor tasks (ValueError)")
def test_force_kills_the_actor_of_a_running_sync_call(tmp_path):
    os.mkfifo(tmp_path / "gate")
    r = Reader.remote()
    ref = r.read.remote(str(tmp_path / "gate"))
    with open(tmp_path / "gate", "w"):  # the call runs (in its worker process, or here)
        assert ray.cancel(ref, force=True) is True  # kills the actor
        with pytest.raises(ActorDiedError, match="force=True"):
            ray.get(ref, timeout=30)
    with pytest.raises(ActorDiedError, match="force=True"):
        ray.get(r.read.remote(str(tmp_path / "gate")), timeout=30)


def test_handles_travel_as_arguments_compare_equal_and_hash_alike(place):
    w = Worker.remote()

    @ray.remote
    def use(handle):
        return ray.get(handle.echo.remote("via function"))

    @ray.remote
    class User:
        async def use(self, handle):
            return await handle.echo.remote("via actor"), handle

    assert ray.get(use.remote(w)) == "via function"
    value, same = ray.get(User.remote().use.remote(w))
    assert value == "via actor"
    assert same == w and hash(same) == hash(w)
    if place != "ray":  # a handle that comes back from a Ray actor is a copy
        assert same is w
        assert repr(w) == f"Actor(Worker, {w._pyactors_core.actor_id})"
    assert w != Worker.remote()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_asyncio_cancel_gives_up_on_a_running_call_at_once_and_stops_it():
    started, cancelled = Countdown(1), []
    w = Worker.options(max_concurrency=1).remote(started, cancelled)
    running = w.hold.remote("victim")
    nxt = w.echo.remote("next")
    started.wait()
    assert running.cancel() is True  # asyncio's spelling: done at once, as an asyncio future
    assert running.done() and running.cancelled()
    with pytest.raises(asyncio.CancelledError):
        running.result()
    with pytest.raises(TaskCancelledError, match="through asyncio while running"):
        ray.get(running)  # plain threads see Ray's error
    assert ray.get(nxt) == "next"  # the call was stopped: its slot freed
    assert ray.get(w.log.remote())[1] == ["victim"]  # CancelledError inside the coroutine
    assert running.cancel() is False


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_asyncio_cancel_of_a_running_plain_method_abandons_it():
    w = Worker.remote()
    running, event = threading.Event(), threading.Event()
    ref = w.block.remote(running, event)
    assert running.wait(10)
    assert ref.cancel() is True and ref.cancelled()
    assert ray.stats(w)["io"]["running"] == 1  # it cannot be interrupted: it keeps its slot
    event.set()  # it ends unseen, and is counted as cancelled
    assert ray.get(w.log.remote()) == ([], [])
    io = ray.stats(w)["io"]
    assert (io["completed"], io["cancelled"]) == (1, 1)  # log() + the abandoned call


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_asyncio_timeouts_around_refs_raise_timeout_error_promptly():
    w = Worker.remote()
    running, event = threading.Event(), threading.Event()

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(w.block.remote(running, event), 0.05)
        started = Countdown(1)
        held = Worker.remote(started)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(held.hold.remote("x")), 0.05)
        shielded = held.echo.remote("kept")
        assert await asyncio.shield(shielded) == "kept"

    asyncio.run(main())
    event.set()


# -- Ray's documented cancellation examples (doc_code/actors.py) ------------------------------


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_rays_async_actor_cancel_example():
    seen = []

    @ray.remote
    class Actor:
        async def f(self, scheduled):
            scheduled.set()  # Ray's example sleeps 1 s instead, "until task is scheduled"
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                seen.append("Actor task canceled.")

    actor = Actor.remote()
    scheduled = threading.Event()
    ref = actor.f.remote(scheduled)
    assert scheduled.wait(10)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(ref)
    assert seen == ["Actor task canceled."]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_rays_graceful_sync_actor_cancel_example():
    @ray.remote
    class SyncActor:
        def __init__(self):
            self.is_canceled = False

        def long_running_method(self, started):
            started.set()
            for _ in range(1000):
                if ray.get_runtime_context().is_canceled():
                    self.is_canceled = True
                    return "canceled"
                time.sleep(0.01)
            return "completed"

        def get_cancel_status(self):
            return self.is_canceled

    actor = SyncActor.remote()
    started = threading.Event()
    actor_task_ref = actor.long_running_method.remote(started)
    assert started.wait(10)  # Ray's example cancels at once; here, once it runs
    ray.cancel(actor_task_ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(actor_task_ref)
    assert ray.get(actor.get_cancel_status.remote()) is True
