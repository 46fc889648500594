"""An awaiting `async def` method runs in the core's CallTask, not an asyncio.Task. Each body
here runs twice and must observe the same things both times: as an actor method (inside the
actor: its loop, its CallTask) and as the coroutine of an asyncio.Task on a loop of the same
kind. That covers what asyncio code reads of its task: current_task(), cancel(),
cancelling()/uncancel(), asyncio.timeout(), TaskGroup, wait_for(), contextvars, exception
chaining and tracebacks, and the errors of bad awaits."""

import asyncio
import contextvars
import sys
import threading
import traceback
import types
import weakref

import pytest

import pyactors as ray
from pyactors import _runtime

pytestmark = pytest.mark.usefixtures("place")

VAR = contextvars.ContextVar("test_call_task", default="unset")
SINCE_311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio 3.11+")


def _cancelling(task):
    # cancelling() is 3.11+ on a Task; the CallTask has it on every version
    return task.cancelling() if sys.version_info >= (3, 11) else None


async def _current():
    return asyncio.current_task()


async def _read_var():
    await asyncio.sleep(0)
    return VAR.get()


@types.coroutine
def _yield(value):
    yield value


async def same_task_across_suspensions():
    task = asyncio.current_task()
    seen = [task is not None, task.done()]
    await asyncio.sleep(0)  # a bare yield: stepped again by the loop
    seen.append(asyncio.current_task() is task)
    await asyncio.get_running_loop().run_in_executor(None, int)  # completed from a thread
    seen.append(asyncio.current_task() is task)
    seen.append(await asyncio.create_task(_current()) is not task)  # a child has its own
    seen.append(asyncio.current_task() is task)
    return seen


async def self_cancel_reaches_the_next_suspension():
    task = asyncio.current_task()
    seen = [task.cancel("stop here"), _cancelling(task)]
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError as exc:
        seen.append(exc.args)
    if sys.version_info >= (3, 11):
        seen.append(task.uncancel())
    await asyncio.sleep(0)  # delivered once: it runs on
    seen.append("ran on")
    return seen


async def cancel_while_awaiting_cancels_the_awaited_future():
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(task.cancel, "from a callback")
    try:
        await fut
    except asyncio.CancelledError as exc:
        return exc.args, fut.cancelled(), _cancelling(task)


async def cancel_during_the_last_step_ends_it_cancelled():
    asyncio.current_task().cancel("too late to deliver")
    return "a value nobody gets"


async def two_cancels_count_twice():
    task = asyncio.current_task()
    seen = [task.cancel(), task.cancel(), _cancelling(task)]
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        seen.append("cancelled once")
    await asyncio.sleep(0)  # must_cancel was cleared by the delivery
    seen.append("ran on")
    return seen


async def timeout_expires_and_uncancels():
    seen = []
    try:
        async with asyncio.timeout(0.001):
            await asyncio.sleep(10)
    except TimeoutError as exc:
        seen.append(type(exc.__cause__).__name__)
    seen.append(_cancelling(asyncio.current_task()))
    async with asyncio.timeout(10):  # one that does not expire changes nothing
        await asyncio.sleep(0)
    seen.append(_cancelling(asyncio.current_task()))
    try:  # the inner one expires inside the outer one
        async with asyncio.timeout(10):
            async with asyncio.timeout(0.001):
                await asyncio.sleep(10)
    except TimeoutError:
        seen.append("inner expired")
    seen.append(_cancelling(asyncio.current_task()))
    return seen


async def wait_for_times_out():
    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.001)
    except asyncio.TimeoutError:
        return "timed out", _cancelling(asyncio.current_task())


async def task_group_failure_cancels_the_body():
    async def fail():
        raise KeyError("k")

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(fail())
            await asyncio.sleep(10)
    except BaseException as exc:
        return (
            type(exc).__name__,
            [repr(e) for e in exc.exceptions],
            _cancelling(asyncio.current_task()),
        )


async def context_is_the_tasks_own():
    before = VAR.get()
    VAR.set("set in the body")
    await asyncio.sleep(0)
    after = VAR.get()
    child = asyncio.create_task(_read_var())  # copies the context as it is now
    VAR.set("set after the child was made")
    return before, after, await child, VAR.get()


async def exceptions_chain_across_suspensions():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_exception, KeyError("thrown in"))
    try:
        try:
            await fut
        except KeyError:
            await asyncio.sleep(0)
            raise ValueError("raised while handling")  # noqa: B904 - chained implicitly
    except ValueError as exc:
        context = exc.__context__
        frames = [frame.name for frame in traceback.extract_tb(context.__traceback__)]
        implicit = (type(context).__name__, context.args, frames)
    try:
        try:
            await fut
        except KeyError as exc:
            raise LookupError("explicit") from exc
    except LookupError as exc:
        explicit = (type(exc.__cause__).__name__, exc.__suppress_context__)
    return implicit, explicit


async def bad_awaits_fail_inside_the_body():
    seen = []
    for value in (42, "text"):
        try:
            await _yield(value)
        except RuntimeError as exc:
            seen.append(str(exc))
    other = asyncio.new_event_loop()
    try:
        try:
            await other.create_future()
        except RuntimeError as exc:
            seen.append("attached to a different loop" in str(exc))
    finally:
        other.close()
    return seen


class _LooseFuture:
    """A future as third-party libraries write them: the protocol's attributes, `_loop`
    instead of get_loop(), no cancelled() or exception(); a Task accepts it."""

    _asyncio_future_blocking = False

    def __init__(self, loop):
        self._loop = loop
        self._callbacks = []
        self._outcome = None

    def add_done_callback(self, fn, *, context=None):
        self._callbacks.append((fn, context))

    def cancel(self, msg=None):
        return False  # it cannot be cancelled: the task's cancel waits for its next step

    def done(self):
        return self._outcome is not None

    def result(self):
        value, error = self._outcome
        if error is not None:
            raise error
        return value

    def settle(self, value=None, error=None):
        self._outcome = (value, error)
        for fn, context in self._callbacks:
            self._loop.call_soon(fn, self, context=context)

    def __await__(self):
        if self._outcome is None:
            self._asyncio_future_blocking = True
            yield self
        return self.result()


async def futures_of_other_libraries_are_awaited_as_a_task_would():
    loop = asyncio.get_running_loop()
    seen = []
    for outcome in ({"value": 7}, {"error": KeyError("from the future")}):
        fut = _LooseFuture(loop)
        loop.call_soon(lambda fut=fut, outcome=outcome: fut.settle(**outcome))
        try:
            seen.append(await fut)
        except KeyError as exc:
            seen.append(exc.args)
    fut = _LooseFuture(loop)
    loop.call_soon(asyncio.current_task().cancel, "while awaiting what cannot be cancelled")
    loop.call_soon(fut.settle, "settled")
    try:
        seen.append(await fut)
        await asyncio.sleep(0)  # the cancel is delivered here
    except asyncio.CancelledError as exc:
        seen.append(exc.args)
    return seen


BODIES = {
    body.__name__: body
    for body in (
        same_task_across_suspensions,
        self_cancel_reaches_the_next_suspension,
        cancel_while_awaiting_cancels_the_awaited_future,
        two_cancels_count_twice,
        cancel_during_the_last_step_ends_it_cancelled,
        timeout_expires_and_uncancels,
        wait_for_times_out,
        task_group_failure_cancels_the_body,
        context_is_the_tasks_own,
        exceptions_chain_across_suspensions,
        bad_awaits_fail_inside_the_body,
        futures_of_other_libraries_are_awaited_as_a_task_would,
    )
}
NEEDS_311 = {
    "timeout_expires_and_uncancels",
    "task_group_failure_cancels_the_body",
}


@ray.remote
class Runs:
    def __init__(self):
        self.done = []
        self.called = None

    async def run(self, name):
        return await BODIES[name]()

    async def whose_task(self):
        task = asyncio.current_task()
        await asyncio.sleep(0)
        return (
            type(task).__name__,
            task.get_name(),
            task.get_coro().cr_code.co_name,
            task.get_loop() is asyncio.get_running_loop(),
            weakref.ref(task)() is task,  # libraries keep per-task state in weak mappings
            threading.get_ident(),
        )

    async def reenter(self):
        task = asyncio.current_task()
        seen = []
        for attempt in (task, type(task)):
            try:
                attempt()
            except (RuntimeError, TypeError) as exc:
                seen.append(type(exc).__name__)
        await asyncio.sleep(0)
        return seen, asyncio.current_task() is task

    async def cancelled_by_itself(self):
        self.called = asyncio.Event()
        asyncio.current_task().add_done_callback(self._record_cancel)
        asyncio.current_task().cancel("the reason")
        await asyncio.sleep(0)

    def _record_cancel(self, task):
        for read in (task.result, task.exception):
            try:
                read()
            except asyncio.CancelledError as exc:
                self.done.append(exc.args)
        self.called.set()

    async def fail(self):
        await asyncio.sleep(0)
        raise KeyError("from the body")

    async def failed_task(self):
        task = asyncio.current_task()
        try:
            await self.fail()  # the same task: its error, seen inside the actor
        except KeyError as exc:
            frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        return frames, task._loop is asyncio.get_running_loop(), task._coro is task.get_coro()

    async def add_done_callback(self):
        task = asyncio.current_task()
        self.called = asyncio.Event()
        task.add_done_callback(self._record)
        task.add_done_callback(print)
        removed = task.remove_done_callback(print)
        await asyncio.sleep(0)
        return removed

    def _record(self, task):
        self.done.append((task.done(), task.result(), task is not asyncio.current_task()))
        self.called.set()

    async def callbacks_seen(self):
        await self.called.wait()
        return self.done

    async def loop_thread(self):
        return threading.get_ident()


def under_a_task(body):
    loop = _runtime.current().loop_factory()  # the loop kind the runtime runs
    try:
        return loop.run_until_complete(body())
    except asyncio.CancelledError as exc:
        return exc
    finally:
        loop.close()


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=SINCE_311) if name in NEEDS_311 else name for name in BODIES],
)
def test_a_method_sees_what_an_asyncio_task_would(name):
    expected = under_a_task(BODIES[name])
    runs = Runs.remote()
    for _ in range(2):  # each call is a task of its own: nothing carries over to the next
        ref = runs.run.remote(name)
        if isinstance(expected, asyncio.CancelledError):
            # a cancelled task's outcome reaches the caller as a body's CancelledError would
            with pytest.raises(ray.exceptions.TaskError) as caught:
                ray.get(ref)
            assert type(caught.value.cause) is asyncio.CancelledError
            assert caught.value.cause.args == expected.args
        else:
            assert ray.get(ref) == expected


def test_its_task_is_the_call_and_runs_on_the_groups_loop():
    runs = Runs.remote()
    kind, name, coro, own_loop, weak, thread = ray.get(runs.whose_task.remote())
    assert (kind, name, coro, own_loop, weak) == (
        "CallTask",
        "Runs.whose_task",
        "whose_task",
        True,
        True,
    )
    assert thread == ray.get(runs.loop_thread.remote())


def test_done_callbacks_run_once_the_call_has_ended():
    runs = Runs.remote()
    assert ray.get(runs.add_done_callback.remote()) == 1
    # once, after the body returned, from the loop (not inside the task)
    assert ray.get(runs.callbacks_seen.remote()) == [(True, 1, True)]


def test_errors_show_the_bodys_frames_and_libraries_find_the_loop():
    runs = Runs.remote()
    frames, loop_found, coro_found = ray.get(runs.failed_task.remote())
    assert frames == ["failed_task", "fail"]
    assert loop_found and coro_found  # task._loop, task._coro: what anyio and asyncio read
    with pytest.raises(KeyError) as caught:
        ray.get(runs.fail.remote())
    remote = caught.value.traceback_str  # formatted where it ran: it crosses processes
    assert ", in fail\n" in remote
    assert "pyactors._core" not in remote  # the body's frames only, as a Task's exception


@ray.remote
class Reads:
    def __init__(self):
        VAR.set("set by __init__")  # on the thread that runs the calls later

    def plain(self):
        return VAR.get()

    async def no_await(self):
        return VAR.get()

    async def awaiting(self):
        await asyncio.sleep(0)
        return VAR.get()

    def sets(self):
        VAR.set("set by a plain call")


@pytest.mark.in_process_only("a worker process never sees the caller's context at all")
def test_a_callers_contextvars_never_reach_the_actor():
    reads = Reads.remote()
    seen = []

    def caller(value):
        VAR.set(value)
        refs = [
            m.remote() for _ in range(200) for m in (reads.plain, reads.no_await, reads.awaiting)
        ]
        seen.extend(ray.get(refs))

    threads = [threading.Thread(target=caller, args=(f"caller {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen) == {"unset"}  # as in Ray: a call starts from the actor's own context


def test_a_step_cannot_be_entered_from_inside_the_task_nor_a_task_made_by_hand():
    runs = Runs.remote()
    refused, same_task = ray.get(runs.reenter.remote())
    assert refused == ["RuntimeError", "TypeError"]  # as a Task's step run twice at once
    assert same_task  # and the call went on


def test_a_cancelled_tasks_result_says_why():
    runs = Runs.remote()
    with pytest.raises(ray.exceptions.TaskError):
        ray.get(runs.cancelled_by_itself.remote())
    assert ray.get(runs.callbacks_seen.remote()) == [("the reason",), ("the reason",)]


@ray.remote
class ReturnsCoroutineFromInit:
    def __init__(self):
        return self.later()  # noqa: PLE0101 - what a decorator making __init__ async does

    async def later(self):
        await asyncio.sleep(0)

    async def ping(self):
        return "pong"


def test_an_init_that_returns_a_coroutine_kills_the_actor_clearly():
    actor = ReturnsCoroutineFromInit.remote()
    with pytest.raises(ray.exceptions.ActorDiedError) as caught:
        ray.get(actor.ping.remote(), timeout=30)
    assert "__init__() should return None, not 'coroutine'" in str(caught.value)


def test_each_call_starts_from_an_empty_context_whatever_ran_before_it():
    reads = Reads.remote()
    methods = (reads.plain, reads.no_await, reads.awaiting)
    # pipelined: calls share drains with the plain calls that set the variable
    refs = [reads.sets.remote() if i % 2 else methods[i % 3].remote() for i in range(300)]
    assert set(ray.get(refs)) == {None, "unset"}  # as in Ray: no call sees another's
