"""ObjectRefs as asyncio futures (seed 002), and as concurrent.futures via ref.future()."""

import asyncio
import concurrent.futures
import sys
import threading

import pytest
from gates import Gated
from measure import in_threads

import pyactors as ray
from pyactors.exceptions import TaskError

pytestmark = pytest.mark.usefixtures("place")


@ray.remote
class Gate(Gated):
    """A call that finishes only when open() is called: await-able synchronisation."""


@ray.remote(concurrency_groups={"io": 2})
class Echo:
    async def echo(self, value):
        return value

    def where(self):
        return threading.get_ident(), id(asyncio.get_running_loop())

    async def fail(self):
        raise KeyError("missing")

    @ray.method(concurrency_group="io")
    async def await_ref(self, refs):
        # awaiting a ref inside an actor method, on io's loop (nested in a list, the ref is
        # passed as a ref; a top-level ref argument would arrive as its value)
        return await refs[0], id(asyncio.get_running_loop())

    async def gather_refs(self, refs):
        return await asyncio.gather(*refs)


@ray.remote
def double(x):
    return 2 * x


@ray.remote
async def async_double(x):
    await asyncio.sleep(0)
    return 2 * x


def test_await_a_ref_in_the_callers_own_loop_without_blocking_it():
    g = Gate.remote()

    async def main():
        ref = g.wait.remote("done")
        # If `await ref` blocked this loop, the opener task could never run and the call
        # would never finish: the test would hang (bounded by pytest-timeout).
        asyncio.get_running_loop().call_soon(g.open.remote)
        return await ref, id(asyncio.get_running_loop())

    value, caller_loop = asyncio.run(main())
    assert value == "done"
    actor_loop = ray.get(Echo.remote().where.remote())[1]
    assert caller_loop != actor_loop


def test_as_future_is_a_future_of_the_calling_loop_completing_with_the_call():
    g = Gate.remote()

    async def main():
        loop = asyncio.get_running_loop()
        pending = g.wait.remote("late")
        fut = pending.as_future()  # made while the call waits at the gate
        done_early = fut.done()
        g.open.remote()
        ready = Echo.remote().echo.remote(7)
        await ready
        return (
            done_early,
            fut.get_loop() is loop,
            await fut,
            ready.as_future().get_loop() is loop,
            await ready.as_future(),  # completed before the future was made
        )

    assert asyncio.run(main()) == (False, True, "late", True, 7)


def test_as_future_carries_the_calls_error():
    async def main():
        fut = Echo.remote().fail.remote().as_future()
        with pytest.raises(TaskError, match="missing"):
            await fut
        return isinstance(fut.exception(), KeyError)

    assert asyncio.run(main())


def test_get_loop_is_the_awaiting_loop_and_needs_one():
    ref = Echo.remote().echo.remote(1)

    async def main():
        return ref.get_loop() is asyncio.get_running_loop()

    assert asyncio.run(main())
    assert asyncio.run(main())  # another loop: a ref belongs to none
    for use in (ref.get_loop, ref.as_future):
        with pytest.raises(RuntimeError, match=r"needs a running event loop.*pyactors\.get\(\)"):
            use()


def test_await_completes_in_the_awaiting_loop_thread():
    e = Echo.remote()

    async def main():
        await e.echo.remote(1)
        return threading.get_ident()

    assert asyncio.run(main()) == threading.get_ident()


def test_gather_refs_and_coroutines_together():
    e = Echo.remote()

    async def also():
        return "coro"

    async def main():
        return await asyncio.gather(
            e.echo.remote(1), double.remote(2), also(), async_double.remote(3)
        )

    assert asyncio.run(main()) == [1, 4, "coro", 6]


def test_asyncio_wait_takes_bare_refs_and_returns_them():
    e, g = Echo.remote(), Gate.remote()

    async def main():
        fast, slow = e.echo.remote("fast"), g.wait.remote("slow")
        done, pending = await asyncio.wait([fast, slow], return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        g.open.remote()
        done, pending = await asyncio.wait([fast, slow])
        assert done == {fast, slow} and not pending
        return fast.result(), slow.result()

    assert asyncio.run(main()) == ("fast", "slow")


def test_asyncio_wait_for_shield_and_as_completed_accept_refs():
    e, g = Echo.remote(), Gate.remote()

    async def main():
        assert await asyncio.wait_for(e.echo.remote(1), timeout=10) == 1
        assert await asyncio.shield(e.echo.remote(2)) == 2
        results = [await f for f in asyncio.as_completed([e.echo.remote(3), double.remote(2)])]
        assert sorted(results) == [3, 4]
        held = g.wait.remote()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(held), timeout=0.01)
        g.open.remote()
        return await held

    assert asyncio.run(main()) is None
    assert asyncio.isfuture(e.echo.remote(0))


def test_a_ref_can_be_awaited_from_several_loops_at_once():
    g = Gate.remote()
    ref = g.wait.remote("shared")

    async def main():
        return await ref

    assert in_threads(4, lambda: asyncio.run(main()), g.open.remote) == ["shared"] * 4


def test_awaiting_a_failed_ref_raises_the_task_error():
    e = Echo.remote()

    async def main():
        with pytest.raises(KeyError) as info:
            await e.fail.remote()
        assert isinstance(info.value, TaskError)
        # a failed ref in gather, as asyncio futures do
        results = await asyncio.gather(e.fail.remote(), e.echo.remote(1), return_exceptions=True)
        assert isinstance(results[0], KeyError) and results[1] == 1

    asyncio.run(main())


def test_refs_are_awaited_inside_actor_methods_of_any_group():
    e, other = Echo.remote(), Echo.remote()
    value, io_loop = ray.get(e.await_ref.remote([other.echo.remote("x")]))
    assert value == "x"
    assert io_loop != ray.get(e.where.remote())[1]
    assert ray.get(e.await_ref.remote([double.remote(21)]))[0] == 42
    assert ray.get(e.await_ref.remote([async_double.remote(4)]))[0] == 8
    # and refs from the actor's own groups
    assert ray.get(e.gather_refs.remote([e.echo.remote(1), other.echo.remote(2)])) == [1, 2]


def test_ref_future_is_a_concurrent_future():
    e, g = Echo.remote(), Gate.remote()
    fut = e.echo.remote(5).future()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(timeout=10) == 5
    held = g.wait.remote(6).future()
    assert not held.done()
    g.open.remote()
    assert held.result(timeout=10) == 6
    failed = e.fail.remote().future()
    assert isinstance(failed.exception(timeout=10), KeyError)


def test_remote_functions_return_the_same_kind_of_ref():
    assert ray.get(double.remote(4)) == 8
    assert ray.get(async_double.remote(4)) == 8
    assert type(double.remote(1)) is type(async_double.remote(1)) is ray.ObjectRef

    async def main():
        return await double.remote(5), await async_double.remote(5)

    assert asyncio.run(main()) == (10, 10)


def test_done_callbacks_run_on_the_registering_loop():
    e = Echo.remote()

    async def main():
        seen = asyncio.get_running_loop().create_future()
        ref = e.echo.remote(7)
        ref.add_done_callback(lambda r: seen.set_result((r, threading.get_ident())))
        got, thread = await seen
        assert got is ref and thread == threading.get_ident()
        # registered after completion: still called, soon, never synchronously
        late = asyncio.get_running_loop().create_future()
        ref.add_done_callback(late.set_result)
        assert not late.done()
        assert await late is ref
        removed = e.echo.remote(8)
        assert removed.remove_done_callback(late.set_result) == 0
        return await ref

    assert asyncio.run(main()) == 7


# asyncio cancels a ref when it holds the ref itself as a future: wait_for() at its timeout on
# Python 3.10/3.11, gather() when it is cancelled. That cancels the call for every holder (a
# documented difference from Ray, whose refs are awaitables, not futures). Awaiting the ref
# under a timeout - asyncio.timeout(), and wait_for() from 3.12 - only stops that awaiter; so
# does asyncio.shield(ref), on every version.
WAIT_FOR_CANCELS_THE_REF = sys.version_info < (3, 12)


def test_wait_for_at_its_timeout_cancels_the_call_only_where_asyncio_cancels_the_ref():
    g = Gate.remote()
    ref = g.wait.remote("late")

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ref, timeout=0.01)

    asyncio.run(main())
    assert ref.cancelled() is WAIT_FOR_CANCELS_THE_REF
    g.open.remote()
    if WAIT_FOR_CANCELS_THE_REF:
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(ref, timeout=30)
    else:
        assert ray.get(ref, timeout=30) == "late"


def test_shield_and_asyncio_timeout_leave_the_call_running_for_other_holders():
    g = Gate.remote()
    shielded, timed = g.wait.remote("shielded"), g.wait.remote("timed")

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(shielded), timeout=0.01)
        if hasattr(asyncio, "timeout"):  # 3.11+
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await timed
        else:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(timed), timeout=0.01)

    asyncio.run(main())
    g.open.remote()
    assert ray.get([shielded, timed], timeout=30) == ["shielded", "timed"]


def test_a_cancelled_gather_cancels_the_refs_it_holds():
    g = Gate.remote()
    ref = g.wait.remote("never")

    async def main():
        gathering = asyncio.gather(ref)
        await asyncio.sleep(0)
        gathering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gathering

    asyncio.run(main())
    assert ref.cancelled()
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)


# `await ref` hands the awaiting task a future of its own loop (asyncio's protocol, spoken by
# the core) and wakes the task from the loop's batch of completions: the Task semantics below
# must hold exactly as with a loop future.


def test_cancelling_a_task_awaiting_a_ref_stops_the_wait_only():
    g = Gate.remote()
    ref = g.wait.remote("still running")

    async def main():
        awaiting = asyncio.ensure_future(awaiter())
        await asyncio.sleep(0)  # it awaits the ref now
        awaiting.cancel("stop waiting")
        return await awaiting

    async def awaiter():
        try:
            await ref
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            cancelling = task.cancelling() if sys.version_info >= (3, 11) else 1
            return exc.args, cancelling
        raise AssertionError("the await was not cancelled")

    assert asyncio.run(main()) == (("stop waiting",), 1)
    assert not ref.done()
    g.open.remote()
    assert ray.get(ref, timeout=30) == "still running"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout() is 3.11+")
def test_asyncio_timeout_around_await_ref_raises_timeout_and_uncancels_the_task():
    g = Gate.remote()

    async def main():
        ref = g.wait.remote("late")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await ref
        cancelling = asyncio.current_task().cancelling()
        g.open.remote()
        return cancelling, await ref  # the same ref, awaited again after the timeout

    assert asyncio.run(main()) == (0, "late")


def test_context_and_current_task_survive_await_ref():
    import contextvars

    var = contextvars.ContextVar("var")
    echo = Echo.remote()

    async def one(n):
        var.set(n)
        task = asyncio.current_task()
        value = await echo.echo.remote(n)
        return value, var.get(), asyncio.current_task() is task

    async def main():
        return await asyncio.gather(*(one(n) for n in range(20)))

    assert asyncio.run(main()) == [(n, n, True) for n in range(20)]


def test_an_error_from_await_ref_chains_like_any_raise():
    echo = Echo.remote()

    async def main():
        try:
            await echo.fail.remote()
        except KeyError as exc:
            raise RuntimeError("wrapped") from exc

    with pytest.raises(RuntimeError) as info:
        asyncio.run(main())
    cause = info.value.__cause__
    assert isinstance(cause, KeyError) and isinstance(cause, TaskError)
    assert "missing" in str(cause)


def test_tasks_of_the_pure_python_task_class_await_refs_and_cancel_their_waits():
    g = Gate.remote()
    gated = g.wait.remote("opened")
    echo = Echo.remote()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw))
        echoed = await loop.create_task(_await(echo.echo.remote(5)))
        cancelled = loop.create_task(_await(gated))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        g.open.remote()
        is_python_task = type(cancelled) is asyncio.tasks._PyTask
        return echoed, is_python_task, await loop.create_task(_await(gated))

    assert asyncio.run(main()) == (5, True, "opened")


async def _await(ref):
    return await ref


@pytest.mark.not_on_ray("how pyactors delivers a batch of completions to one loop")
def test_keyboard_interrupt_in_a_woken_task_ends_the_loop_and_other_waits_complete():
    g = Gate.remote()
    first, second = g.wait.remote(1), g.wait.remote(2)
    tasks = []

    async def interrupted():
        await first
        raise KeyboardInterrupt

    async def patient():
        return await second

    async def main():
        tasks.extend([asyncio.ensure_future(interrupted()), asyncio.ensure_future(patient())])
        await asyncio.sleep(0)  # both await now (their refs may complete in one batch)
        g.open.remote()
        await asyncio.wait(tasks)

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(main())
        # the other task's wakeup arrives, when the loop runs again if it came in the same batch
        assert loop.run_until_complete(asyncio.wait_for(tasks[1], 30)) == 2
        assert isinstance(tasks[0].exception(), KeyboardInterrupt)
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def test_a_done_callback_runs_in_the_context_it_was_added_in():
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    echo = Echo.remote()

    async def main():
        seen = asyncio.get_running_loop().create_future()
        var.set("added here")
        echo.echo.remote(1).add_done_callback(lambda ref: seen.set_result(var.get()))
        var.set("changed later")
        return await seen

    assert asyncio.run(main()) == "added here"
