"""A blocking get()/wait() inside an actor that would wait forever raises DeadlockError at once,
naming the cycle, where Ray hangs; waits that can end are left alone."""

import threading

import pytest

import pyactors as ray
from pyactors.exceptions import DeadlockError, GetTimeoutError


def me():
    return ray.get_runtime_context().current_actor


@ray.remote
class Single:
    """A threaded actor: one slot, so a call that waits for another of its own calls
    deadlocks."""

    def __init__(self, peer=None):
        self.peer = peer

    def call_self(self):
        return ray.get(me().echo.remote("inner"))

    def wait_self(self):
        return ray.wait([me().echo.remote("inner")])

    def call_peer(self, depth):
        if depth == 0:
            return "bottom"
        return ray.get(self.peer.call_peer.remote(depth - 1))

    def set_peer(self, peer):
        self.peer = peer

    def call_self_with_timeout(self):
        return ray.get(me().echo.remote("inner"), timeout=0.05)

    def call_self_through_an_argument(self):
        inner = me().echo.remote("inner")
        return ray.get(ray_echo.remote(inner))

    def echo(self, value):
        return value


@ray.remote
def ray_echo(value):
    return value


def test_a_threaded_actor_calling_itself_raises_at_once(loop_kind):
    actor = Single.remote()
    with pytest.raises(DeadlockError) as caught:
        ray.get(actor.call_self.remote(), timeout=30)
    message = str(caught.value)
    assert "get() would wait forever" in message
    assert "Single.call_self()" in message and "Single.echo(), queued" in message
    assert "a free slot of concurrency group 'default'" in message
    assert "all 1 are taken" in message
    assert caught.value.cycle[0].startswith("1. Single.call_self()")
    assert isinstance(caught.value, RuntimeError)
    # The actor is not stuck: the inner call ran once the outer one had failed.
    assert ray.get(actor.echo.remote("after"), timeout=30) == "after"
    with pytest.raises(DeadlockError, match=r"wait\(\) would wait forever"):
        ray.get(actor.wait_self.remote(), timeout=30)


def test_two_actors_calling_each_other_raise_instead_of_hanging(loop_kind):
    a, b = Single.remote(), Single.remote()
    ray.get([a.set_peer.remote(b), b.set_peer.remote(a)])
    assert ray.get(a.call_peer.remote(1), timeout=30) == "bottom"  # a -> b: no cycle
    with pytest.raises(DeadlockError) as caught:
        ray.get(a.call_peer.remote(3), timeout=30)  # a -> b -> a: a's only slot is taken
    message = str(caught.value)
    for actor in (a, b):
        assert actor._pyactors_core.actor_id in message
    assert ray.get(a.call_peer.remote(0), timeout=30) == "bottom"


def test_a_chain_of_three_without_a_cycle_is_no_deadlock(loop_kind):
    c = Single.remote()
    b = Single.remote(c)
    a = Single.remote(b)
    assert ray.get(a.call_peer.remote(2), timeout=30) == "bottom"


def test_a_deadlock_through_a_ref_argument(loop_kind):
    """The outer call waits for a remote function that waits for its argument: a call queued
    behind the outer call's own slot."""
    with pytest.raises(DeadlockError, match="waiting for its ref arguments"):
        ray.get(Single.remote().call_self_through_an_argument.remote(), timeout=30)


@ray.remote
def slow_value(value, release):
    release.wait(30)
    return value


@ray.remote
class NeedsArgument:
    def outer(self, release):
        # The inner call waits for its argument first, and then for the slot this call holds.
        return ray.get(me().inner.remote(slow_value.remote(1, release)))

    def inner(self, value):
        return value


def test_a_deadlock_behind_an_argument_still_to_come(loop_kind):
    release = threading.Event()
    with pytest.raises(DeadlockError, match="waiting for its ref arguments and then for"):
        ray.get(NeedsArgument.remote().outer.remote(release), timeout=30)
    release.set()


def _outcomes(refs):
    """Each call's result, or "deadlock" for one that closed a cycle."""
    outcomes = []
    for ref in refs:
        try:
            outcomes.append(ray.get(ref, timeout=30))
        except DeadlockError:
            outcomes.append("deadlock")
    return outcomes


def test_two_calls_behind_arguments_holding_both_slots(loop_kind):
    release = threading.Event()
    actor = NeedsArgument.options(max_concurrency=2).remote()
    refs = [actor.outer.remote(release) for _ in range(2)]
    # The second to block closes the cycle and fails at once; its slot then lets the other's
    # inner call run once its argument is ready.
    assert len(ray.wait(refs, num_returns=1, timeout=30)[0]) == 1
    release.set()
    outcomes = _outcomes(refs)
    assert sorted(outcomes, key=str) == [1, "deadlock"], outcomes


def test_a_wait_with_a_timeout_times_out_as_asked(loop_kind):
    with pytest.raises(GetTimeoutError):
        ray.get(Single.remote().call_self_with_timeout.remote(), timeout=30)


@ray.remote(max_concurrency=2)
class Roomy:
    def call_self(self):
        return ray.get(me().echo.remote("inner"))

    def echo(self, value):
        return value


def test_a_free_slot_is_no_deadlock(loop_kind):
    assert ray.get(Roomy.remote().call_self.remote(), timeout=30) == "inner"


@ray.remote(concurrency_groups={"a": 1, "b": 1})
class TwoGroups:
    @ray.method(concurrency_group="a")
    def in_a(self, depth):
        return ray.get(me().in_b.remote(depth - 1)) if depth else "a"

    @ray.method(concurrency_group="b")
    def in_b(self, depth):
        return ray.get(me().in_a.remote(depth - 1)) if depth else "b"


def test_a_cycle_across_concurrency_groups(loop_kind):
    actor = TwoGroups.remote()
    assert ray.get(actor.in_a.remote(1), timeout=30) == "b"  # a -> b ends
    with pytest.raises(DeadlockError) as caught:
        ray.get(actor.in_a.remote(2), timeout=30)  # a -> b -> a: group a's slot is taken
    assert "concurrency group 'a'" in str(caught.value)
    assert "concurrency group 'b'" in str(caught.value)


@ray.remote(concurrency_groups={"io": 1})
class AsyncWithBlocking:
    @ray.method(concurrency_group="io", blocking=True)
    def blocking_self_call(self):
        return ray.get(me().io_echo.remote("inner"))

    @ray.method(concurrency_group="io")
    async def io_echo(self, value):
        return value

    async def ping(self):
        return "pong"


def test_a_blocking_method_waiting_for_its_own_full_group(loop_kind):
    actor = AsyncWithBlocking.remote()
    with pytest.raises(DeadlockError, match=r"AsyncWithBlocking\.io_echo"):
        ray.get(actor.blocking_self_call.remote(), timeout=30)
    assert ray.get(actor.ping.remote(), timeout=30) == "pong"


@ray.remote
class InitCallsItself:
    def __init__(self):
        self.value = ray.get(me().echo.remote("from __init__"))

    def echo(self, value):
        return value


def test_init_waiting_for_its_own_actor(loop_kind):
    actor = InitCallsItself.remote()
    with pytest.raises(ray.exceptions.ActorDiedError, match="until __init__ ends"):
        ray.get(actor.echo.remote("x"), timeout=30)


def test_wait_for_one_of_several_is_no_deadlock_while_one_can_end(loop_kind):
    @ray.remote
    class Mixed:
        def wait_any(self):
            stuck = me().echo.remote("queued behind this call")
            free = ray_echo.remote("free")
            ready, _ = ray.wait([stuck, free], num_returns=1)
            return ray.get(ready[0], timeout=0)

        def echo(self, value):
            return value

    assert ray.get(Mixed.remote().wait_any.remote(), timeout=30) == "free"


def test_two_threads_closing_a_cycle_at_once(loop_kind):
    """Each actor calls the other at the same moment: exactly one of the two waits closes the
    cycle and raises; the other then completes. Never a hang."""
    for _ in range(30):
        a, b = Single.remote(), Single.remote()
        ray.get([a.set_peer.remote(b), b.set_peer.remote(a)])
        outcomes = _outcomes([a.call_peer.remote(1), b.call_peer.remote(1)])
        assert sorted(outcomes) == ["bottom", "deadlock"], outcomes


def test_the_main_thread_is_never_part_of_a_cycle(loop_kind):
    """get() outside any actor blocks as before: nothing can wait for the main thread."""
    actor = Single.remote()
    started, release = threading.Event(), threading.Event()

    @ray.remote
    def held():
        started.set()
        release.wait(30)
        return "held"

    ref = held.remote()
    assert started.wait(30)
    threading.Timer(0.05, release.set).start()
    assert ray.get(ref) == "held"
    assert ray.get(actor.echo.remote("still fine"), timeout=30) == "still fine"
