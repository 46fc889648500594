"""cancel() of remote functions, as Ray does it: a queued call never runs; a running plain
function gets KeyboardInterrupt raised in it; force=True fails the ref at once. Only the
cancelled call is affected: unrelated running, queued and later calls (plain and async) run."""

import asyncio
import contextlib
import threading
import time

import pytest
from gates import Countdown

import pyactors as ray
from pyactors.exceptions import TaskCancelledError

pytestmark = pytest.mark.usefixtures("place")


class Probe:
    """What a running function saw, observed from inside it."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.interrupted = threading.Event()


@ray.remote
def spin(probe):
    # Runs Python code until released: a KeyboardInterrupt lands at its next bytecode.
    probe.started.set()
    try:
        while not probe.release.wait(0.001):
            pass
    except KeyboardInterrupt:
        probe.interrupted.set()
        raise
    return "released"


@ray.remote
def value(x):
    return x


@ray.remote
async def async_value(x):
    await asyncio.sleep(0)
    return x


def one_worker(loop_kind):
    ray.shutdown()
    ray.init(loop=loop_kind, num_cpus=1)


def start_spinning():
    probe = Probe()
    ref = spin.remote(probe)
    assert probe.started.wait(10)
    return probe, ref


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.parametrize("force", [False, True])
def test_a_running_plain_function_gets_keyboard_interrupt(loop_kind, force):
    probe, ref = start_spinning()
    assert ray.cancel(ref, force=force) is True
    assert probe.interrupted.wait(10), "the function never saw KeyboardInterrupt"
    with pytest.raises(TaskCancelledError, match="while running"):
        ray.get(ref, timeout=10)


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_force_fails_the_ref_before_the_function_stops(loop_kind):
    """force=True does not wait for the function: a thread cannot be ended, so its ref fails
    at once, and the function stops when it next runs Python code."""
    probe = Probe()

    @ray.remote
    def stuck_in_c(probe):
        probe.started.set()
        probe.release.wait(10)  # blocked in C: an interrupt waits until this returns
        return "released"

    ref = stuck_in_c.remote(probe)
    assert probe.started.wait(10)
    assert ray.cancel(ref, force=True) is True
    with pytest.raises(TaskCancelledError, match="force=True"):
        ray.get(ref, timeout=0)  # failed at once, while the function still waits
    probe.release.set()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.parametrize("force", [False, True])
def test_only_the_cancelled_function_is_affected(loop_kind, force):
    bystander_probe, bystander = start_spinning()
    _probe, ref = start_spinning()
    # Saturate the pool so that later calls queue behind the two running ones.
    queued = [value.remote(i) for i in range(50)]
    assert ray.cancel(ref, force=force)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=10)
    assert not bystander_probe.interrupted.is_set()
    assert ray.get(queued, timeout=10) == list(range(50))
    assert ray.get([value.remote("later"), async_value.remote("later async")], timeout=10) == [
        "later",
        "later async",
    ]
    bystander_probe.release.set()
    assert ray.get(bystander, timeout=10) == "released"


def test_an_interrupt_that_arrives_after_the_function_returned_hits_nothing(loop_kind):
    """A function that returns before it runs any more Python code never sees the
    interrupt, and neither does the next call on its thread."""
    one_worker(loop_kind)
    probe = Probe()

    @ray.remote
    def returns_from_c(probe):
        probe.started.set()
        probe.release.wait(10)
        return "returned"

    ref = returns_from_c.remote(probe)
    assert probe.started.wait(10)
    assert ray.cancel(ref) is True
    probe.release.set()
    # It ran Python code after release() and was interrupted: either is right.
    with contextlib.suppress(TaskCancelledError):
        assert ray.get(ref, timeout=10) == "returned"
    # One worker thread (num_cpus=1): the next call runs on the same thread, uninterrupted.
    assert ray.get([value.remote(i) for i in range(100)], timeout=10) == list(range(100))


def test_a_queued_function_never_runs(loop_kind):
    one_worker(loop_kind)
    probe, running = start_spinning()
    ran = []

    @ray.remote
    def record(x):
        ran.append(x)

    ref = record.remote("queued")
    assert ray.cancel(ref, force=True) is True
    with pytest.raises(TaskCancelledError, match="before it started"):
        ray.get(ref, timeout=0)
    probe.release.set()
    assert ray.get(running, timeout=10) == "released"
    ray.get(record.remote("after"), timeout=10)
    assert ran == ["after"]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_cancel_while_the_function_starts_threads_interrupts_only_the_function(loop_kind):
    """While a thread starts another, the new thread briefly carries its parent's ident: an
    interrupt aimed by ident would land in the child (which died of it, and the function then
    waited forever for it to start)."""
    children = []

    @ray.remote
    def spawner(started):
        started.set()
        # starts threads until the interrupt comes (200 of them could all have run before a
        # loaded machine let cancel() through; a lost interrupt still ends this, after 10 s)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            thread = threading.Thread(target=children.append, args=(1,))
            thread.start()
            thread.join()
        return "done"

    for _ in range(20):
        started = threading.Event()
        ref = spawner.remote(started)
        assert started.wait(10)
        ray.cancel(ref)
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=10)  # pending forever if the interrupt is lost
    # No child thread ever got the interrupt: each one that started ran to its end.
    assert ray.get([value.remote(i) for i in range(4)], timeout=10) == list(range(4))


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_cancel_of_a_function_blocked_in_get_takes_effect_at_once(loop_kind):
    release = threading.Event()
    seen = []

    @ray.remote
    def inner():
        release.wait(30)
        return "inner"

    @ray.remote
    def outer(started):
        started.set()
        try:
            return ray.get(inner.remote())
        except KeyboardInterrupt:
            seen.append("interrupted in get()")
            raise

    started = threading.Event()
    ref = outer.remote(started)
    assert started.wait(10)
    assert ray.cancel(ref) is True
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=5)  # at once: not when inner() ends
    assert seen == ["interrupted in get()"]
    release.set()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_a_function_that_swallows_the_interrupt_still_ends_as_cancelled(loop_kind):
    probe = Probe()

    @ray.remote
    def swallows(probe):
        probe.started.set()
        try:
            while not probe.release.wait(0.001):
                pass
        except KeyboardInterrupt:
            probe.interrupted.set()
            return "swallowed"

    ref = swallows.remote(probe)
    assert probe.started.wait(10)
    assert ray.cancel(ref) is True
    assert probe.interrupted.wait(10)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=10)


@ray.remote
class OneSlot:
    def hold(self, running, release):
        running.set()
        release.wait(30)

    def work(self, tag):
        return tag


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.parametrize("recursive", [True, False])
def test_recursive_cancel_reaches_the_calls_a_function_submitted(loop_kind, recursive):
    """Ray's default: cancelling a call cancels the calls its body submitted, and theirs."""
    busy = OneSlot.remote()
    running, release = threading.Event(), threading.Event()
    busy.hold.remote(running, release)
    assert running.wait(10)  # busy's only slot is taken: work() calls queue
    calls, submitted = {}, Countdown(2)

    @ray.remote
    def middle(busy):
        calls["grandchild"] = busy.work.remote("grandchild")
        submitted.count()
        return ray.get(calls["grandchild"])

    @ray.remote
    def parent(busy):
        calls["child"] = busy.work.remote("child")
        calls["middle"] = middle.remote(busy)
        submitted.count()
        return ray.get([calls["child"], calls["middle"]])

    ref = parent.remote(busy)
    submitted.wait()  # the whole tree has been submitted
    assert ray.cancel(ref, recursive=recursive) is True
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=10)
    release.set()
    if recursive:
        for call in calls.values():
            with pytest.raises(TaskCancelledError):
                ray.get(call, timeout=10)
    else:
        assert ray.get([calls[k] for k in ("child", "middle", "grandchild")], timeout=10) == [
            "child",
            "grandchild",
            "grandchild",
        ]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_recursive_cancel_reaches_the_calls_a_coroutine_submitted(loop_kind):
    busy = OneSlot.remote()
    running, release = threading.Event(), threading.Event()
    busy.hold.remote(running, release)
    assert running.wait(10)
    calls, submitted = {}, threading.Event()

    @ray.remote
    class Parent:
        async def spread(self, busy):
            calls["child"] = busy.work.remote("child")
            await asyncio.sleep(0)  # still the same call's task after an await
            calls["later"] = busy.work.remote("later")
            submitted.set()
            return await calls["child"]

    ref = Parent.remote().spread.remote(busy)
    assert submitted.wait(10)
    assert ray.cancel(ref) is True
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=10)
    release.set()
    for call in calls.values():
        with pytest.raises(TaskCancelledError):
            ray.get(call, timeout=10)
