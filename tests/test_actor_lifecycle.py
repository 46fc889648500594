"""__init__ on the default group before any call; a failing __init__; shutdown."""

import asyncio
import threading

import pytest
from gates import Countdown

import pyactors as ray
from pyactors.exceptions import ActorDiedError

pytestmark = pytest.mark.usefixtures("place")


@ray.remote(concurrency_groups={"io": 4})
class SlowInit:
    def __init__(self, release, log):
        self.log = log
        log.append(("init-start", threading.get_ident()))
        release.wait()  # other groups' calls are already queued while this runs
        log.append(("init-end", threading.get_ident()))

    @ray.method(concurrency_group="io")
    async def io_call(self):
        self.log.append(("io", threading.get_ident()))

    async def default_call(self):
        self.log.append(("default", threading.get_ident()))
        return threading.get_ident()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_calls_of_every_group_wait_for_init_which_runs_once_on_the_default_thread():
    release, log = threading.Event(), []
    a = SlowInit.remote(release, log)
    refs = [a.io_call.remote() for _ in range(5)] + [a.default_call.remote()]
    assert not any(ref.done() for ref in refs)
    release.set()
    default_thread = ray.get(refs)[-1]
    assert [event for event, _ in log[:2]] == ["init-start", "init-end"]
    assert sum(event == "init-start" for event, _ in log) == 1
    assert log[0][1] == log[1][1] == default_thread
    assert {event for event, _ in log[2:]} == {"io", "default"}


class InitFailed(Exception):
    pass


@ray.remote(concurrency_groups={"io": 1})
class BadInit:
    def __init__(self, gate):
        gate.wait()
        raise InitFailed("no config")

    async def f(self):
        return "never"

    @ray.method(concurrency_group="io")
    def g(self):
        return "never"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_failing_init_fails_every_call_with_actor_died_error_caused_by_it():
    gate = threading.Event()
    a = BadInit.remote(gate)
    queued = [a.f.remote(), a.g.remote()]  # submitted before __init__ fails
    gate.set()
    for ref in queued:
        with pytest.raises(ActorDiedError) as info:
            ray.get(ref)
        assert isinstance(info.value.__cause__, InitFailed)
        assert "no config" in str(info.value) and "BadInit" in str(info.value)
    # and calls made after the death fail at once, the same way
    with pytest.raises(ActorDiedError) as info:
        ray.get(a.f.remote())
    assert isinstance(info.value.__cause__, InitFailed)


@ray.remote
class Threaded:
    def __init__(self):
        self.calls = []

    def add(self, i):
        self.calls.append((i, threading.get_ident()))

    def mark(self, i):
        self.calls.append((i, threading.get_ident()))

    def log(self):
        return self.calls


def test_sync_actor_runs_calls_one_at_a_time_in_submission_order():
    a = Threaded.remote()
    refs = [(a.add if i % 2 else a.mark).remote(i) for i in range(1000)]
    ray.get(refs)
    calls = ray.get(a.log.remote())
    assert [i for i, _ in calls] == list(range(1000))
    assert len({thread for _, thread in calls}) == 1
    assert threading.get_ident() not in {thread for _, thread in calls}


@ray.remote
class Counter:
    def __init__(self):
        self.running = 0
        self.peak = 0

    def incr(self, started, release):
        self.running += 1
        self.peak = max(self.peak, self.running)
        started.count()
        release.wait()
        self.running -= 1
        return self.peak


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_sync_actor_default_limit_is_one():
    a = Counter.remote()
    release = threading.Event()
    started = Countdown(1)
    refs = [a.incr.remote(started, release) for _ in range(5)]
    started.wait()
    assert sum(ref.done() for ref in refs) == 0
    release.set()
    assert ray.get(refs) == [1] * 5


@ray.remote
class Sleeper:
    def __init__(self):
        self.running = 0
        self.peak = 0

    async def nap(self):
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.2)
        self.running -= 1

    def peak_running(self):
        return self.peak


def test_fifty_sleeps_run_together(benchmark_clock):
    a = Sleeper.remote()
    with benchmark_clock() as elapsed:
        ray.get([a.nap.remote() for _ in range(50)])
    assert ray.get(a.peak_running.remote()) == 50
    assert elapsed() >= 0.2


def test_max_concurrency_ten_runs_fifty_sleeps_in_five_waves(benchmark_clock):
    a = Sleeper.options(max_concurrency=10).remote()
    with benchmark_clock() as elapsed:
        ray.get([a.nap.remote() for _ in range(50)])
    assert ray.get(a.peak_running.remote()) == 10
    assert elapsed() >= 5 * 0.2


@ray.remote(concurrency_groups={"io": 2})
class Holder:
    def __init__(self, started):
        self.started = started

    @ray.method(concurrency_group="io")
    async def hold(self):
        self.started.count()
        await asyncio.Event().wait()  # only cancellation ends it

    def ping(self):
        return "pong"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_shutdown_fails_running_and_queued_calls_and_stops_every_thread():
    baseline = set(threading.enumerate())
    started = Countdown(2)
    a = Holder.remote(started)
    refs = [a.hold.remote() for _ in range(5)]  # 2 running, 3 queued
    started.wait()
    assert len(set(threading.enumerate()) - baseline) == 2  # default and io loop threads
    ray.shutdown()
    assert [t for t in threading.enumerate() if t.name.startswith("pyactors")] == []
    for ref in refs:
        with pytest.raises(ActorDiedError, match="shutdown"):
            ray.get(ref)
    assert not ray.is_initialized()
    ray.shutdown()  # idempotent
    # the next use starts a fresh runtime; the old handle stays dead
    b = Threaded.remote()
    ray.get(b.add.remote(1))
    assert ray.is_initialized()
    with pytest.raises(ActorDiedError, match="shutdown"):
        ray.get(a.ping.remote())


@ray.remote(concurrency_groups={"io": 2, "compute": 4})
class ThreeGroups:
    @ray.method(concurrency_group="io")
    async def io(self):
        return threading.get_ident()

    @ray.method(concurrency_group="compute")
    async def compute(self):
        return threading.get_ident()

    async def default(self):
        return threading.get_ident()


@ray.remote(concurrency_groups={"io": 2, "compute": 4})
class Initialised(ThreeGroups._cls):
    def __init__(self):
        self.init_thread = threading.get_ident()

    async def init_thread_of(self):
        return self.init_thread


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_groups_start_a_thread_on_their_first_call_only():
    before = threading.active_count()
    actors = [ThreeGroups.remote() for _ in range(20)]
    assert threading.active_count() == before, "no __init__, no call: no thread"
    ray.get([a.io.remote() for a in actors])
    assert threading.active_count() == before + 20, "one thread for each group called"
    ray.get([a.io.remote() for a in actors])
    assert threading.active_count() == before + 20, "the group keeps its thread"
    ray.get([a.compute.remote() for a in actors] + [a.default.remote() for a in actors])
    assert threading.active_count() == before + 60


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_init_costs_the_default_groups_thread_only_which_later_calls_use():
    before = threading.active_count()
    actors = [Initialised.remote() for _ in range(10)]
    assert threading.active_count() == before + 10, "__init__ needs the default group's thread"
    init_threads = ray.get([a.init_thread_of.remote() for a in actors])
    assert ray.get([a.default.remote() for a in actors]) == init_threads
    assert threading.active_count() == before + 10
