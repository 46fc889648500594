"""Threaded actors (no async def): worker threads per group, limits, order."""

import threading

import pytest
from gates import Gate

import pyactors as ray

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


@ray.remote(concurrency_groups={"io": 2, "compute": 3})
class Workers:
    def __init__(self):
        self.lock = threading.Lock()
        self.running = {}
        self.peak = {}
        self.threads = {}

    def _run(self, group, barrier, release):
        with self.lock:
            self.running[group] = self.running.get(group, 0) + 1
            self.peak[group] = max(self.peak.get(group, 0), self.running[group])
            self.threads.setdefault(group, set()).add(threading.get_ident())
        if barrier is not None:
            barrier.wait(timeout=10)  # passes only if `parties` calls run at the same time
        release.wait(timeout=10)
        with self.lock:
            self.running[group] -= 1

    def default(self, barrier, release):
        self._run("default", barrier, release)

    @ray.method(concurrency_group="io")
    def io(self, barrier, release):
        self._run("io", barrier, release)

    @ray.method(concurrency_group="compute")
    def compute(self, barrier, release):
        self._run("compute", barrier, release)

    @ray.method(concurrency_group="io")
    def io_ping(self):
        return "io"

    def report(self):
        return self.peak, {g: len(t) for g, t in self.threads.items()}


@pytest.mark.in_process_only("threading.Barrier and Event shared with the actor")
def test_max_concurrency_n_runs_n_calls_at_once_on_n_threads():
    a = Workers.options(max_concurrency=4).remote()
    barrier, release = threading.Barrier(4 + 1), threading.Event()
    refs = [a.default.remote(barrier, release) for _ in range(4)]
    barrier.wait(timeout=10)  # all four are running together
    more = [a.default.remote(None, release) for _ in range(6)]
    release.set()
    ray.get(refs + more)
    peak, threads = ray.get(a.report.options(concurrency_group="io").remote())
    assert peak["default"] == 4 and threads["default"] == 4


@pytest.mark.in_process_only("threading.Barrier and Event shared with the actor")
def test_threaded_concurrency_groups_have_their_own_workers_and_limits():
    a = Workers.remote()
    io_barrier, compute_barrier = threading.Barrier(2 + 1), threading.Barrier(3 + 1)
    release = threading.Event()
    io = [a.io.remote(io_barrier, release) for _ in range(2)]
    compute = [a.compute.remote(compute_barrier, release) for _ in range(3)]
    io_barrier.wait(timeout=10)
    compute_barrier.wait(timeout=10)
    # both groups full, while the default group (limit 1) still serves
    queued_io = [a.io.remote(None, release) for _ in range(4)]
    assert ray.get(a.report.remote())[0] == {"io": 2, "compute": 3}
    release.set()
    ray.get(io + compute + queued_io)
    peak, threads = ray.get(a.report.remote())
    assert peak == {"io": 2, "compute": 3}
    assert threads == {"io": 2, "compute": 3}


@pytest.mark.in_process_only("threading.Barrier and Event shared with the actor")
def test_a_blocked_threaded_group_does_not_delay_another():
    a = Workers.remote()
    running, release = threading.Barrier(2), threading.Event()
    blocked = a.compute.remote(running, release)
    running.wait(timeout=10)
    assert ray.get([a.io_ping.remote() for _ in range(10)]) == ["io"] * 10
    assert not blocked.done()
    release.set()
    ray.get(blocked)


@ray.remote
class Recorder:
    def __init__(self):
        self.log = []

    def record(self, tag, value=None):
        self.log.append((tag, value))
        return tag

    def read(self):
        return self.log


@ray.remote
class Held:
    """Its wait() calls block a thread of their group until open() is called."""

    def __init__(self):
        self.gate = Gate()

    @ray.method(concurrency_group="wait")
    def wait(self, value):
        self.gate.wait_blocking(10)
        return value

    def open(self):
        self.gate.open()


def gate():
    return Held.options(concurrency_groups={"wait": 8}).remote()


def test_ordered_group_keeps_order_behind_a_call_waiting_for_its_argument():
    rec, g = Recorder.remote(), gate()
    held = g.wait.remote("late value")
    first = rec.record.remote("first", held)  # waits for `held`
    later = [rec.record.remote(f"later-{i}") for i in range(5)]
    g.open.remote()
    ray.get([*later, first])
    log = ray.get(rec.read.remote())
    assert log == [("first", "late value")] + [(f"later-{i}", None) for i in range(5)]


@ray.remote
class Giver:
    def give(self, value, gate):
        assert gate.wait(10)
        return value

    def thread(self):
        return threading.get_ident()


@ray.remote
class AsyncGiver:
    async def give(self, value, gate):
        assert gate.wait(10)  # (blocks its loop, briefly)
        return value

    async def thread(self):
        return threading.get_ident()


class SubmitsWhenFreed:
    """A result whose freeing submits a call to the same actor, as a freed value that lets
    another thread run (an unmapped buffer, a __del__) lets that thread submit one."""

    def __init__(self, actor):
        self.actor = actor
        self.freed_on_thread = []
        self.submitted = []
        self.freed = threading.Event()

    def __del__(self):
        self.submitted.append(self.actor.thread.remote())
        self.freed_on_thread.append(threading.get_ident())
        self.freed.set()


@pytest.mark.in_process_only("the result's finalizer reports through shared objects")
@pytest.mark.parametrize("kind", [Giver, AsyncGiver], ids=["threaded", "async"])
def test_a_call_submitted_while_the_last_result_is_freed_on_the_actors_thread_runs(kind):
    actor = kind.remote()
    gate = threading.Event()
    value = SubmitsWhenFreed(actor)
    freed, submitted, freed_on = value.freed, value.submitted, value.freed_on_thread
    ref = actor.give.remote(value, gate)
    del value, ref  # the call's own references are the last: freed where it ends
    gate.set()
    assert freed.wait(10)
    actor_thread = ray.get(submitted[0], timeout=10)  # stranded in the queue before the fix
    assert freed_on == [actor_thread], "the result was not freed on the actor's thread"
