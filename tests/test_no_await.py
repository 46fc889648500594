"""`async def` bodies with no `await`, `async with` or `async for` cannot suspend, so the core
runs them to their end like a plain def, without an asyncio Task. Observed inside the actor:
they run where any async method of their group runs, fail and keep order the same way; the one
visible difference is that `asyncio.current_task()` is None in them, as in a plain def."""

import asyncio
import sys
import threading

import pytest

import pyactors as ray

pytestmark = pytest.mark.usefixtures("place")


async def _numbers():
    yield 1


@ray.remote(concurrency_groups={"one": 1})
class Bodies:
    def __init__(self):
        self.lock = asyncio.Lock()  # no loop yet: asyncio.Lock binds on first use (3.10+)
        self.order = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def no_await(self):
        return asyncio.current_task()

    async def with_await(self):
        await asyncio.sleep(0)
        return asyncio.current_task()

    async def with_async_with(self):
        async with self.lock:
            return asyncio.current_task()

    async def with_async_for(self):
        async for _ in _numbers():
            pass
        return asyncio.current_task()

    async def with_async_comprehension(self):
        [n async for n in _numbers()]
        return asyncio.current_task()

    async def defines_an_awaiting_coroutine(self):
        async def inner():
            await asyncio.sleep(0)

        inner().close()
        return asyncio.current_task()

    async def where(self):
        return threading.get_ident(), id(asyncio.get_running_loop())

    async def where_after_await(self):
        await asyncio.sleep(0)
        return threading.get_ident(), id(asyncio.get_running_loop())

    async def fail(self, exc):
        raise exc

    async def fail_after_await(self, exc):
        await asyncio.sleep(0)
        raise exc

    @ray.method(concurrency_group="one")
    async def record(self, i):
        self._enter()
        self.order.append(i)
        self.in_flight -= 1

    @ray.method(concurrency_group="one")
    async def record_after_await(self, i):
        self._enter()
        await asyncio.sleep(0)
        self.order.append(i)
        self.in_flight -= 1

    async def hold(self, started, release):
        started.set()
        release.wait(10)  # blocks the loop thread, as a CPU-bound body would
        return "done"

    def _enter(self):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def seen(self):
        return self.order, self.most_in_flight


@pytest.mark.parametrize(
    "method, runs_in_a_task",
    [
        ("no_await", False),
        ("defines_an_awaiting_coroutine", False),
        ("with_await", True),
        ("with_async_with", True),
        ("with_async_for", True),
        ("with_async_comprehension", True),
    ],
)
@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_only_bodies_that_can_suspend_get_a_task(method, runs_in_a_task):
    a = Bodies.remote()
    task = ray.get(getattr(a, method).remote())
    assert (task is not None) == runs_in_a_task


def test_runs_on_its_groups_loop_thread():
    a = Bodies.remote()
    direct, after_await = ray.get([a.where.remote(), a.where_after_await.remote()])
    assert direct == after_await
    assert direct[0] != threading.get_ident()


@pytest.mark.parametrize("exc", [KeyError("k"), KeyboardInterrupt(), RecursionError()], ids=type)
def test_fails_as_an_awaiting_method_does(exc):
    a = Bodies.remote()
    refs = [a.fail.remote(exc), a.fail_after_await.remote(exc)]
    errors = []
    for ref in refs:
        with pytest.raises(ray.exceptions.TaskError) as info:
            ray.get(ref)
        errors.append(info.value)
    direct, after_await = errors
    assert type(direct) is type(after_await)
    assert type(direct.cause) is type(after_await.cause) is type(exc)
    assert direct.concurrency_group == after_await.concurrency_group == "default"
    assert "Bodies.fail()" in str(direct)
    assert ray.get(a.where.remote()), "the actor keeps serving"


def test_keeps_fifo_order_and_the_limit_among_awaiting_calls():
    a = Bodies.remote()
    refs = [(a.record if i % 3 else a.record_after_await).remote(i) for i in range(300)]
    ray.get(refs)
    order, most_in_flight = ray.get(a.seen.remote())
    assert order == list(range(300))
    assert most_in_flight == 1


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_once_running_it_is_cancelled_like_a_plain_method():
    """It cannot be interrupted; it ends, and then as cancelled (Ray's cooperative cancel)."""
    a = Bodies.remote()
    started, release = threading.Event(), threading.Event()
    ref = a.hold.remote(started, release)
    assert started.wait(10)
    assert ray.cancel(ref) is True
    release.set()
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref)

    started.clear()
    ref = a.hold.remote(started, release := threading.Event())
    assert started.wait(10)
    assert ray.cancel(ref, force=True) is True
    with pytest.raises(ray.exceptions.ActorDiedError, match="force=True"):
        ray.get(ref)
    release.set()


@ray.remote
async def task_of_function():
    return asyncio.current_task()


@ray.remote
async def task_of_function_after_await():
    await asyncio.sleep(0)
    return asyncio.current_task()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_remote_functions_take_the_same_path():
    no_task, task = ray.get([task_of_function.remote(), task_of_function_after_await.remote()])
    assert no_task is None
    assert task is not None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="inspect.markcoroutinefunction: 3.12+")
@pytest.mark.in_process_only(
    "returns its asyncio.Task, and markcoroutinefunction's marker is "
    "an identity that a class pickled by value does not keep"
)
def test_a_plain_def_marked_as_coroutine_function_runs_in_a_task():
    import inspect

    async def body():
        await asyncio.sleep(0)
        return asyncio.current_task()

    @ray.remote
    class Marked:
        @inspect.markcoroutinefunction
        def delegates(self):
            return body()

    assert ray.get(Marked.remote().delegates.remote()) is not None


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_code_replaced_after_decoration_fails_the_call_clearly():
    @ray.remote
    class Swapped:
        async def m(self):
            return 1

        async def other(self):
            return 3

    async def awaiting(self):
        await asyncio.sleep(0)
        return 2

    Swapped._cls.m.__code__ = awaiting.__code__
    a = Swapped.remote()
    with pytest.raises(ray.exceptions.TaskError, match="had no await when it was decorated"):
        ray.get(a.m.remote())
    assert ray.get(a.other.remote()) == 3, "the actor keeps serving"
