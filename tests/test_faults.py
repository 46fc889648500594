"""Faults inside user code: the call fails with a clear error, the actor's threads and loops
keep working, and kill() still works on an actor stuck in user code."""

import asyncio
import contextlib
import functools
import os
import resource
import threading

import pytest
from gates import Countdown

import pyactors as ray
from pyactors.exceptions import ActorDiedError, TaskCancelledError, TaskError


class Custom(BaseException):
    pass


def as_plain_def(coroutine_function):
    # A decorator that hides an async def behind a plain def, as many wrappers do.
    @functools.wraps(coroutine_function)
    def wrapper(*args, **kwargs):
        return coroutine_function(*args, **kwargs)

    return wrapper


@ray.remote(concurrency_groups={"io": 1})
class Faulty:
    def __init__(self):
        self.where = None

    async def raise_async(self, exc_type):  # no await: runs without a Task
        raise exc_type("async")

    async def raise_after_await(self, exc_type):  # runs as a Task
        await asyncio.sleep(0)
        raise exc_type("async")

    @ray.method(concurrency_group="io")
    def raise_sync(self, exc_type):
        raise exc_type("sync")

    async def recurse(self, n=0):
        return self._deep(n)

    def _deep(self, n):
        return self._deep(n + 1)

    @as_plain_def
    async def wrapped(self, value):
        await asyncio.sleep(0)
        self.where = threading.get_ident()
        return value

    async def ping(self):
        return threading.get_ident(), id(asyncio.get_running_loop())

    @ray.method(concurrency_group="io")
    async def io_ping(self):
        return threading.get_ident(), id(asyncio.get_running_loop())


# SystemExit ends the actor, as in Ray (tests/test_exit.py).
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, Custom, GeneratorExit])
@pytest.mark.parametrize("method", ["raise_async", "raise_after_await", "raise_sync"])
def test_base_exceptions_fail_the_call_and_the_group_keeps_working(exc_type, method):
    f = Faulty.remote()
    before = ray.get([f.ping.remote(), f.io_ping.remote()])
    with pytest.raises(TaskError) as info:
        ray.get(getattr(f, method).remote(exc_type))
    assert not isinstance(info.value, exc_type)  # never mistaken for the caller's own
    assert isinstance(info.value.cause, exc_type)
    assert exc_type.__name__ in str(info.value)
    # both groups: same thread, same loop, still serving
    assert ray.get([f.ping.remote(), f.io_ping.remote()]) == before


def test_recursion_error_fails_only_the_call():
    f = Faulty.remote()
    with pytest.raises(RecursionError):
        ray.get(f.recurse.remote())
    assert ray.get(f.ping.remote())


def test_a_plain_def_returning_a_coroutine_runs_it_in_an_async_actor():
    f = Faulty.remote()
    assert ray.get(f.wrapped.remote(5)) == 5


@ray.remote
class ThreadedWrapped:
    @as_plain_def
    async def wrapped(self):
        return 1

    def ping(self):
        return "pong"


def test_a_plain_def_returning_a_coroutine_fails_clearly_in_a_threaded_actor():
    t = ThreadedWrapped.remote()
    with pytest.raises(TypeError, match=r"returned a coroutine.*declare it `async def`"):
        ray.get(t.wrapped.remote())
    assert ray.get(t.ping.remote()) == "pong"


@ray.remote
class Stubborn:
    def __init__(self, started):
        self.started = started

    async def swallow(self):
        self.started.count()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "swallowed"  # ignores the cancellation, returns normally

    async def swallow_forever(self):
        self.started.count()
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()


def test_a_coroutine_that_swallows_cancellation_still_ends_as_cancelled():
    """As in Ray: the caller asked for the call to stop; what the body returns after that is
    not its result. The error is a TaskError and a TaskCancelledError (RayTaskError(...))."""
    started = Countdown(1)
    s = Stubborn.remote(started)
    ref = s.swallow.remote()
    started.wait()
    assert ray.cancel(ref) is True
    with pytest.raises(TaskCancelledError) as caught:
        ray.get(ref)
    assert isinstance(caught.value, TaskError)
    assert ray.stats(s)["default"]["cancelled"] == 1


def test_kill_still_works_on_a_coroutine_that_never_stops():
    started = Countdown(1)
    s = Stubborn.remote(started)
    ref = s.swallow_forever.remote()
    started.wait()
    ray.kill(s)
    with pytest.raises(ActorDiedError):
        ray.get(ref, timeout=0)


@ray.remote
class Hangs:
    def __init__(self, entered, release):
        entered.set()
        release.wait(timeout=30)  # an __init__ that does not return on its own

    def ping(self):
        return "never"


def test_kill_works_on_an_actor_whose_init_never_returns():
    entered, release = threading.Event(), threading.Event()
    h = Hangs.remote(entered, release)
    queued = h.ping.remote()
    assert entered.wait(10)
    ray.kill(h)  # the stuck thread cannot be stopped; kill() waits a bounded time for it
    with pytest.raises(ActorDiedError, match="killed"):
        ray.get(queued, timeout=0)
    with pytest.raises(ActorDiedError):
        ray.get(h.ping.remote(), timeout=0)
    release.set()  # once __init__ returns, its thread ends (the conftest checks)


@ray.remote
class NeedsLoop:
    async def f(self):
        return 1


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="counts fds in /proc")
# asyncio's own loop __del__ complains about a loop whose constructor failed
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_group_that_cannot_make_its_loop_kills_its_actor_instead_of_hanging():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    actors = [NeedsLoop.remote() for _ in range(8)]
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
    try:
        refs = [a.f.remote() for a in actors]  # each call needs a loop: 3 to 5 fds apiece
        outcomes = []
        for ref in refs:
            try:
                outcomes.append(ray.get(ref, timeout=30))
            except ActorDiedError as exc:
                assert "could not make its event loop" in str(exc)
                assert isinstance(exc.__cause__, OSError)
                outcomes.append("died")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "died" in outcomes and set(outcomes) <= {1, "died"}
