"""Actor lifetime: an actor nobody references exits once its pending calls finish (Ray's
rule); named actors live until kill() or shutdown()."""

import gc
import os
import threading

import pytest
from gates import Countdown, Gate
from measure import join_actor_threads, python_heap_kept, rss_bytes

import pyactors as ray

pytestmark = pytest.mark.usefixtures("place")


@ray.remote
class Short:
    def __init__(self):
        self.gate = None

    def make_gate(self):
        self.gate = Gate()
        return self.gate

    async def hold(self, value):
        await self.gate.wait()
        return value

    async def thread(self):
        return threading.current_thread()

    async def one(self):
        return 1


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_dropping_every_handle_lets_pending_calls_finish_then_the_actor_exits():
    a = Short.remote()
    gate = ray.get(a.make_gate.remote())
    thread = ray.get(a.thread.remote())
    refs = [a.hold.remote(i) for i in range(5)]
    del a
    gc.collect()
    assert thread.is_alive()  # calls are pending: the actor stays
    gate.open()
    assert ray.get(refs) == list(range(5))
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_an_actor_with_a_handle_stays_alive_while_idle():
    a = Short.remote()
    thread = ray.get(a.thread.remote())
    gc.collect()
    assert ray.get(a.one.remote()) == 1 and thread.is_alive()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_calling_through_a_temporary_handle_works():
    # The handle dies before .remote() runs; the method object keeps the actor alive.
    assert [ray.get(Short.remote().one.remote()) for _ in range(200)] == [1] * 200


def test_a_kept_method_keeps_its_actor_alive():
    one = Short.remote().one
    gc.collect()
    assert ray.get([one.remote() for _ in range(3)]) == [1, 1, 1]


def test_named_actors_live_without_handles():
    Short.options(name="kept").remote()
    gc.collect()
    assert ray.get(ray.get_actor("kept").one.remote()) == 1


@pytest.mark.stress
@pytest.mark.in_process_only("11,000 actors: a worker process each would take minutes")
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
@pytest.mark.parametrize("kind", ["async", "threaded"])
def test_create_call_drop_cycles_leak_no_threads_and_no_memory(kind):
    @ray.remote
    class Async:
        async def f(self, x):
            return x

    @ray.remote
    class Threaded:
        def f(self, x):
            return x

    cls = Async if kind == "async" else Threaded
    baseline_threads = threading.active_count()

    def cycles(n):
        for i in range(n):
            assert ray.get(cls.remote().f.remote(i)) == i
        join_actor_threads(cls.__name__)

    cycles(1_000)  # warm up allocators, caches and freelists
    gc.collect()
    rss_before = rss_bytes()
    cycles(10_000)
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    assert threading.active_count() == baseline_threads
    # RSS swings by up to ~10 MB with malloc arenas and glibc's cache of thread stacks (it
    # plateaus: measured +0.4 to +8.7 MB after 5,000 to 30,000 actors), so it only catches
    # gross leaks (30 MB = 3 KB per actor); the Python heap is checked exactly below.
    assert rss_growth < 30_000_000, f"RSS grew {rss_growth / 1e6:.1f} MB over 10,000 actors"

    cycles(200)
    kept = python_heap_kept(lambda: cycles(1_000))
    assert kept < 1_000 * 50, f"{kept / 1_000:.0f} bytes of Python heap kept per actor"


@ray.remote(concurrency_groups={"io": 1, "compute": 1})
class Idle:
    def __init__(self, inited):
        self.init_thread = threading.get_ident()
        inited.count()

    async def threads(self):
        return self.init_thread, threading.get_ident()


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="counts fds in /proc")
def test_an_actor_nobody_calls_costs_one_parked_thread_and_no_event_loop():
    baseline_threads, baseline_fds = set(threading.enumerate()), open_fds()
    inited = Countdown(20)
    idle = [Idle.remote(inited) for _ in range(20)]
    inited.wait()
    new = [t for t in threading.enumerate() if t not in baseline_threads]
    # one default-group thread each (it ran __init__); io and compute never started one
    assert len(new) == 20 and all(t.name.endswith(":default") for t in new)
    assert open_fds() - baseline_fds < 20  # an event loop holds 3 (asyncio) or 5 (uvloop)
    # the first call starts the loop, on the thread that ran __init__
    init_thread, call_thread = ray.get(idle[0].threads.remote())
    assert init_thread == call_thread
