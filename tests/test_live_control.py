"""Backpressure (max_pending_calls), live limits (set_concurrency) and stats() - observed
inside the actor."""

import threading

import pytest
from gates import Countdown, Gate

import pyactors as ray
from pyactors.exceptions import PendingCallsLimitExceededError

pytestmark = pytest.mark.usefixtures("place")


@ray.remote(concurrency_groups={"io": 2, "ctl": 1})
class Pool:
    def __init__(self):
        self.running = 0
        self.peak = 0
        self.gate = None
        self.started = None

    def expect(self, n):
        self.started = Countdown(n)

    @ray.method(concurrency_group="io")
    def make_gate(self):
        # The caller gets the gate itself (nothing is copied in one process) and can open
        # it without a call, even when the actor accepts no more calls.
        self.gate = Gate()
        return self.gate

    @ray.method(concurrency_group="io")
    async def work(self, value):
        self.running += 1
        self.peak = max(self.peak, self.running)
        if self.started is not None:
            self.started.count()
        await self.gate.wait()
        self.running -= 1
        return value

    @ray.method(concurrency_group="ctl")
    def wait_started(self):
        self.started.wait()
        return self.running

    @ray.method(concurrency_group="ctl")
    def release(self):
        self.gate.open()

    @ray.method(concurrency_group="ctl")
    def peak_running(self):
        return self.peak

    @ray.method(concurrency_group="io")
    async def fail(self):
        raise RuntimeError("no")


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_max_pending_calls_rejects_at_once_and_keeps_what_is_queued():
    p = Pool.options(max_pending_calls=6).remote()
    gate = ray.get(p.make_gate.remote())
    refs = [p.work.remote(i) for i in range(6)]  # 2 running, 4 queued: none can finish
    with pytest.raises(PendingCallsLimitExceededError, match="max_pending_calls=6"):
        p.work.remote(99)
    with pytest.raises(PendingCallsLimitExceededError):
        p.peak_running.remote()  # every call counts, whatever its group
    gate.open()
    assert ray.get(refs) == list(range(6))  # nothing submitted was lost
    assert ray.get(p.work.remote(6)) == 6


@ray.remote
class SlowStart:
    def __init__(self, release):
        release.wait(10)

    async def echo(self, x):
        return x


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_max_pending_calls_does_not_count_init():
    release = threading.Event()
    a = SlowStart.options(max_pending_calls=2).remote(release)
    refs = [a.echo.remote(0), a.echo.remote(1)]  # both accepted while __init__ still runs
    with pytest.raises(PendingCallsLimitExceededError, match="has 2 calls pending"):
        a.echo.remote(2)
    release.set()
    assert ray.get(refs) == [0, 1]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_set_concurrency_raises_admit_queued_calls_at_once_and_lowering_only_delays():
    p = Pool.remote()
    ray.get([p.make_gate.remote(), p.expect.remote(2)])
    refs = [p.work.remote(i) for i in range(6)]
    assert ray.get(p.wait_started.remote()) == 2  # io's limit
    ray.get(p.expect.remote(2))  # two more will start when the limit rises to 4
    ray.set_concurrency(p, "io", 4)
    assert ray.get(p.wait_started.remote()) == 4
    ray.set_concurrency(p, "io", 1)  # running calls are not interrupted
    assert ray.stats(p)["io"]["running"] == 4
    ray.get(p.release.remote())
    assert ray.get(refs) == list(range(6))
    assert ray.get(p.peak_running.remote()) == 4
    with pytest.raises(ValueError, match="no concurrency group 'gpu'"):
        ray.set_concurrency(p, "gpu", 2)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        ray.set_concurrency(p, "io", 0)


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_stats_counts_what_the_group_did():
    p = Pool.remote()
    ray.get([p.make_gate.remote(), p.expect.remote(2)])
    refs = [p.work.remote(i) for i in range(5)]
    assert ray.get(p.wait_started.remote()) == 2
    stats = ray.stats(p)
    assert stats["io"]["limit"] == 2 and stats["io"]["running"] == 2
    assert stats["io"]["queued"] == 3
    assert ray.cancel(refs[4]) is True
    with pytest.raises(RuntimeError):
        ray.get(p.fail.options(concurrency_group="ctl").remote())
    ray.get(p.release.remote())
    ray.get(refs[:4])
    io = ray.stats(p)["io"]
    assert (io["completed"], io["failed"], io["cancelled"]) == (4 + 1, 0, 1)  # + make_gate
    assert io["running"] == 0 and io["queued"] == 0
    assert io["max_queue_wait"] > 0
    ctl = ray.stats(p)["ctl"]
    assert ctl["failed"] == 1
    assert set(ray.stats(p)) == {"default", "io", "ctl"}


@ray.remote
class Mixed:
    def __init__(self):
        self.loop_thread = threading.get_ident()

    @ray.method(blocking=True)
    def blocking_wait(self, event, started):
        started.set()
        event.wait(timeout=10)  # would stall the loop if it ran on it
        return threading.get_ident()

    @ray.method(blocking=True)
    def get_inside(self, refs):
        return ray.get(refs[0])  # allowed: not on a loop thread

    async def ping(self):
        return threading.get_ident()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_blocking_methods_run_on_a_worker_thread_and_leave_the_loop_free():
    m = Mixed.remote()
    event, started = threading.Event(), threading.Event()
    blocked = m.blocking_wait.remote(event, started)
    assert started.wait(10)
    loop_threads = set(ray.get([m.ping.remote() for _ in range(10)]))
    assert not blocked.done()
    event.set()
    worker_thread = ray.get(blocked)
    assert len(loop_threads) == 1 and worker_thread not in loop_threads
    assert ray.get(m.get_inside.remote([ray.put(7)])) == 7


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_blocking_methods_count_against_their_groups_limit():
    m = Mixed.options(max_concurrency=1).remote()
    event, started = threading.Event(), threading.Event()
    blocked = m.blocking_wait.remote(event, started)
    after = m.ping.remote()
    assert started.wait(10)
    assert not after.done() and ray.stats(m)["default"]["queued"] == 1
    event.set()
    ray.get([blocked, after])


def test_blocking_is_only_for_plain_def_methods():
    with pytest.raises(ValueError, match="blocking=True is for plain def methods"):

        @ray.remote
        class A:
            @ray.method(blocking=True)
            async def f(self):
                pass
