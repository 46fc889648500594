"""get / wait / put from plain threads."""

import signal
import threading

import pytest
from measure import in_threads, until_inside_its_first_call
from test_objectref import Echo, Gate

import pyactors as ray
from pyactors.exceptions import GetTimeoutError

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


def test_get_of_a_list_keeps_the_order_of_the_list():
    e, g = Echo.remote(), Gate.remote()
    held = g.wait.remote("last-to-finish")
    refs = [e.echo.remote(i) for i in range(50)]
    g.open.remote()
    assert ray.get([held, *refs, ray.put("put")]) == ["last-to-finish", *range(50), "put"]
    assert ray.get([]) == []


def test_get_timeout_raises_get_timeout_error_which_is_a_timeout_error(place):
    g = Gate.remote()
    held = g.wait.remote("v")
    with pytest.raises(GetTimeoutError) as info:
        ray.get(held, timeout=0.01)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(GetTimeoutError, match="1 of 2" if place != "ray" else None):
        ray.get([ray.put(1), held], timeout=0)
    # the timed-out wait left nothing behind: the ref still completes and get() works
    g.open.remote()
    assert ray.get(held, timeout=10) == "v"
    assert ray.get(held, timeout=0) == "v"


def test_a_late_result_after_a_timeout_does_not_wake_a_later_get():
    # The result of the timed-out get arrives while this thread waits for something else;
    # that must not end the second wait early.
    g1, g2 = Gate.remote(), Gate.remote()
    first, second = g1.wait.remote(1), g2.wait.remote(2)
    with pytest.raises(GetTimeoutError):
        ray.get(first, timeout=0.001)
    g1.open.remote()
    assert ray.get(first) == 1
    with pytest.raises(GetTimeoutError):
        ray.get(second, timeout=0.05)
    g2.open.remote()
    assert ray.get(second) == 2


@pytest.mark.not_on_ray("Ray lists ready refs in the order it found them ready")
def test_wait_partitions_in_input_order_and_respects_num_returns():
    e, g = Echo.remote(), Gate.remote()
    held = [g.wait.remote(i) for i in range(3)]
    done = [e.echo.remote(i) for i in range(4)]
    ray.get(done)
    refs = [held[0], done[0], held[1], done[1], done[2], held[2], done[3]]
    ready, not_ready = ray.wait(refs, num_returns=2)
    assert ready == [done[0], done[1]]
    assert not_ready == [held[0], held[1], done[2], held[2], done[3]]
    ready, not_ready = ray.wait(refs, num_returns=4, timeout=0)  # poll
    assert ready == done and not_ready == held
    ready, not_ready = ray.wait(refs, num_returns=5, timeout=0.01)  # times out with 4
    assert ready == done and not_ready == held
    g.open.remote()
    ready, not_ready = ray.wait(refs, num_returns=len(refs))
    assert ready == refs and not_ready == []


def test_wait_returns_as_soon_as_enough_are_ready():
    g = Gate.remote()
    held = g.wait.remote()
    e = Echo.remote()
    ready, not_ready = ray.wait([held, e.echo.remote(1)], num_returns=1)
    assert not_ready == [held] and ray.get(ready) == [1]
    g.open.remote()


def test_many_threads_get_the_same_ref():
    g = Gate.remote()
    ref = g.wait.remote("all")
    assert in_threads(8, lambda: ray.get(ref), g.open.remote) == ["all"] * 8


@pytest.mark.in_process_only("a concurrent future's callbacks run on the completing thread")
def test_a_done_callback_may_wait_for_a_thread_that_the_same_result_wakes():
    """The threads a completing call wakes are released after its ref is complete, without
    the GIL, but never after user code that runs meanwhile: a future's done callback that
    waits for a thread waiting in get() on the same ref must see it woken."""
    g = Gate.remote()
    ref = g.wait.remote("v")
    got, woken = [], threading.Event()

    def wait_in_get():
        got.append(ray.get(ref, timeout=30))  # woken after the callback at the latest
        woken.set()

    waiter = threading.Thread(target=wait_in_get)
    waiter.start()
    until_inside_its_first_call(waiter)  # registered before the callback
    seen = []
    ref.future().add_done_callback(lambda _: seen.append(woken.wait(5)))
    g.open.remote()
    waiter.join(30)
    assert got == ["v"]
    assert ray.get(g.wait.remote("again"), timeout=10) == "again"
    assert seen == [True]


class LocksOnRelease:
    """An argument whose finalizer takes a lock, as a registry of open resources does."""

    def __init__(self, lock, took, ran):
        self.lock, self.took, self.ran = lock, took, ran

    def __del__(self):
        took = self.lock.acquire(timeout=5)  # without a timeout: the hang itself
        if took:
            self.lock.release()
        self.took.append(took)
        self.ran.set()


@ray.remote
class Holder:
    def take(self, resource, gate):
        gate.wait(10)
        return "done"


@ray.remote
def take(resource, gate):
    gate.wait(10)
    return "done"


@pytest.mark.in_process_only("the argument's finalizer runs in this process")
@pytest.mark.parametrize("callee", ["actor", "function"])
def test_an_argument_finalizer_may_wait_for_the_thread_that_waits_for_the_result(callee):
    """A finished call drops its arguments (their finalizers are user code) only after the
    threads waiting for its result are released: here the waiting thread holds a lock the
    argument's finalizer takes."""
    lock, gate, took, ran = threading.Lock(), threading.Event(), [], threading.Event()
    target = Holder.remote().take if callee == "actor" else take
    ref = target.remote(LocksOnRelease(lock, took, ran), gate)
    with lock:
        gate.set()
        assert ray.get(ref, timeout=30) == "done"
    assert ran.wait(10)
    assert took == [True]
    assert ray.get(target.remote(None, gate), timeout=10) == "done"


@pytest.mark.not_on_ray("Ray's put() copies the value into its object store")
def test_put_returns_a_ready_ref_holding_the_value_itself():
    value = {"k": [1, 2]}
    ref = ray.put(value)
    assert ref.done()
    assert ray.get(ref) is value
    ready, _ = ray.wait([ref], timeout=0)
    assert ready == [ref]


@ray.remote
def signal_main_thread_and_return(submitted, handling, main_ident, value):
    assert submitted.wait(10)
    signal.pthread_kill(main_ident, signal.SIGUSR1)  # main is (almost always) parked in get()
    assert handling.wait(10)  # returns while the handler's own get() (almost always) waits
    return value


@ray.remote
def after_the_outer_call(outer, value):
    ray.get(outer[0])  # in a list: passed as a ref, waited for here
    return value


@pytest.mark.in_process_only("signals this process's main thread from the remote function")
def test_a_signal_handler_may_wait_while_its_thread_waits_in_get():
    """A handler (or a finalizer) that calls get() on a thread already waiting in get(): the
    outer result arrives while the handler waits, and neither wait takes the other's wakeup."""
    seen = []
    outer = []

    def handler(signum, frame):
        handling.set()
        seen.append(ray.get(after_the_outer_call.remote(outer, "inner")))

    submitted, handling = threading.Event(), threading.Event()
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        outer.append(
            signal_main_thread_and_return.remote(
                submitted, handling, threading.get_ident(), "outer"
            )
        )
        submitted.set()
        assert ray.get(outer[0]) == "outer"
        assert seen == ["inner"]
        assert ray.get(after_the_outer_call.remote(outer, "later")) == "later"  # parks as before
    finally:
        signal.signal(signal.SIGUSR1, previous)
