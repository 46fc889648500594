"""Hostile use, each found by a review of the installed package: event loops that die under
their actor, interrupts while a group starts, nested async remote functions, copies and pickles
of handles, errors raised to many callers, state kept alive by cycles, and exits with calls
stuck in user code."""

import asyncio
import copy
import dataclasses
import gc
import pickle
import re
import sys
import threading
import weakref

import pytest
from gates import Gated
from hostile import assert_clean_exit, run_python

import pyactors as ray
from pyactors.exceptions import ActorDiedError, TaskError

# -- an event loop that stops under its actor -------------------------------------------------


def stop_the_loop():
    asyncio.get_running_loop().stop()


def raise_system_exit():
    sys.exit(3)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


@ray.remote(concurrency_groups={"io": 1})
class LoopKiller(Gated):
    async def stop_loop(self, how):
        asyncio.get_running_loop().call_soon(how)
        await asyncio.sleep(3600)  # the loop stops before this ends

    async def echo(self, value):
        return value


@pytest.mark.parametrize(
    "how, named",
    [
        (stop_the_loop, "loop.stop() was called on it"),
        (raise_system_exit, "SystemExit was raised in one of its callbacks"),
        (raise_keyboard_interrupt, "KeyboardInterrupt was raised in one of its callbacks"),
    ],
)
def test_an_actor_whose_loop_stops_dies_with_the_cause(loop_kind, how, named):
    actor = LoopKiller.remote()
    queued = [actor.wait.remote(i) for i in range(5)]  # waiting on the default loop
    stopping = actor.stop_loop.remote(how)
    for ref in [stopping, *queued]:
        with pytest.raises(ActorDiedError, match=re.escape(named)):
            ray.get(ref, timeout=30)
    # Later calls fail at once, in every group, instead of waiting forever.
    for method in (actor.echo, actor.echo.options(concurrency_group="io")):
        with pytest.raises(ActorDiedError, match=re.escape(named)):
            ray.get(method.remote(1), timeout=30)


@ray.remote
async def stop_the_pool_loop(how):
    asyncio.get_running_loop().call_soon(how)
    await asyncio.sleep(3600)


@ray.remote
async def async_echo(value):
    await asyncio.sleep(0)
    return value


@pytest.mark.parametrize("how", [stop_the_loop, raise_system_exit])
def test_the_remote_function_loop_comes_back_after_it_stopped(loop_kind, how):
    with pytest.raises(ActorDiedError, match="event loop of concurrency group 'async' stopped"):
        ray.get(stop_the_pool_loop.remote(how), timeout=30)
    # Later async remote functions run on a new loop; plain ones were never affected.
    assert ray.get([async_echo.remote(i) for i in range(10)], timeout=30) == list(range(10))


# -- async remote functions waiting for each other ---------------------------------------------


@ray.remote
async def tree(depth, fan_out):
    if depth == 0:
        return 1
    return sum(await asyncio.gather(*[tree.remote(depth - 1, fan_out) for _ in range(fan_out)]))


def test_async_remote_functions_awaiting_others_never_starve(loop_kind):
    """1,000 parents, each awaiting a child, need 2,000 calls in flight at once; a tree
    4,681 calls big needs all of them. A limited pool (1,000 slots, parents keeping theirs)
    deadlocked."""
    parents = [tree.remote(1, 1) for _ in range(1000)]
    assert ray.get(parents, timeout=60) == [1] * 1000
    assert ray.get(tree.remote(4, 8), timeout=60) == 8**4


# -- an interrupt while .remote() starts a group's thread --------------------------------------


@ray.remote
class AsyncEcho:
    async def echo(self, value):
        return value


@ray.remote(max_concurrency=2)
class ThreadedEcho:
    def echo(self, value):
        return value


@pytest.mark.parametrize("actor_class", [AsyncEcho, ThreadedEcho])
@pytest.mark.parametrize("started", [False, True], ids=["before-start", "after-start"])
def test_keyboard_interrupt_while_a_group_starts_reaches_the_caller(
    loop_kind, monkeypatch, actor_class, started
):
    """Ctrl-C while .remote() starts the group's thread is the caller's KeyboardInterrupt;
    the actor stays usable whether or not the thread had started."""
    actor = actor_class.remote()
    real_start = threading.Thread.start

    def interrupted_start(thread):
        if started:
            real_start(thread)
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        actor.echo.remote("lost")
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert ray.get(actor.echo.remote("after"), timeout=30) == "after"
    assert not actor._pyactors_core.is_dead


# -- handles copied, deep-copied, pickled -----------------------------------------------------


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def add(self):
        self.n += 1
        return self.n


@dataclasses.dataclass
class Holder:
    handle: object
    method: object
    ref: object


def test_copies_of_a_handle_are_the_same_handle(loop_kind):
    actor = Counter.remote()
    core = actor._pyactors_core
    copied = copy.copy(actor)
    assert copied is actor
    holder = copy.deepcopy(Holder(actor, actor.add, actor.add.remote()))
    assert holder.handle is actor and holder.method is actor.add
    assert ray.get(holder.ref) == 1
    del actor, holder
    assert ray.get(copied.add.remote()) == 2  # the actor lives while a copy does
    del copied
    core.join(30)  # nothing references it: it exits, and its thread ends
    assert core.is_dead


@pytest.mark.parametrize("what", ["handle", "method", "ref"])
def test_pickling_a_handle_method_or_ref_says_why_it_cannot(loop_kind, what):
    actor = Counter.remote()
    target = {"handle": actor, "method": actor.add, "ref": ray.put(1)}[what]
    with pytest.raises(TypeError, match=r"cannot be pickled: .*(lives|calls|refers)"):
        pickle.dumps(target)


# -- an error raised to many callers -----------------------------------------------------------


@ray.remote
def fails():
    raise KeyError("remote")


def test_each_raise_of_a_failed_ref_has_its_own_context_and_traceback(loop_kind):
    ref = fails.remote()
    ray.wait([ref], timeout=30)
    try:
        raise ValueError("the caller's own")
    except ValueError:
        with pytest.raises(KeyError) as inside:
            ray.get(ref)
    with pytest.raises(KeyError) as outside:
        ray.get(ref)
    first, second = inside.value, outside.value
    assert first is not second
    assert isinstance(first.__context__, ValueError)
    assert second.__context__ is None, "one caller's exception leaked into another's"
    assert isinstance(first, TaskError) and isinstance(second, TaskError)
    assert first.cause is second.cause and str(first) == str(second)
    assert first.__traceback__ is not second.__traceback__

    async def awaited():
        try:
            raise RuntimeError("the awaiter's own")
        except RuntimeError:
            try:
                await ref
            except KeyError as exc:
                return exc

    third = asyncio.run(awaited())
    assert isinstance(third.__context__, RuntimeError)
    assert third is not first and second.__context__ is None


# -- state freed by reference counting alone ---------------------------------------------------


class State:
    pass


@ray.remote
class Stateful:
    def __init__(self, state):
        self.state = state

    def ping(self):
        return "pong"


@pytest.mark.parametrize("end", ["kill", "drop"])
def test_an_ended_actor_frees_its_state_without_the_cyclic_collector(loop_kind, end):
    gc.collect()
    gc.disable()
    try:
        state = State()
        alive = weakref.ref(state)
        actor = Stateful.remote(state)
        del state
        assert ray.get(actor.ping.remote()) == "pong"
        core = actor._pyactors_core
        if end == "kill":
            ray.kill(actor)
        del actor  # the last handle: "drop" ends the actor this way
        core.join(30)
        assert core.is_dead
        assert alive() is None, "the actor's state outlived it until a garbage collection"
    finally:
        gc.enable()


# -- interpreter exit with calls stuck in user code ---------------------------------------------


def test_exit_with_a_blocking_method_still_running(loop_kind):
    """A @method(blocking=True) call that never returns must not keep the process alive: its
    worker threads are daemons, not a ThreadPoolExecutor the interpreter joins at exit."""
    result = run_python(
        """
        import sys, threading
        import pyactors as ray

        @ray.remote
        class Stuck:
            @ray.method(blocking=True)
            def block(self, started):
                started.set()
                threading.Event().wait()

            async def ping(self):
                return "pong"

        ray.init(loop=sys.argv[1])
        actor = Stuck.remote()
        started = threading.Event()
        actor.block.remote(started)
        assert started.wait(10)
        assert ray.get(actor.ping.remote()) == "pong"
        print("exiting", flush=True)
    """,
        loop_kind,
        timeout=30,
    )
    assert_clean_exit(result)


# -- interrupts where they hurt most -------------------------------------------------------------


def test_ctrl_c_during_remote_never_strands_an_async_group(loop_kind):
    """A KeyboardInterrupt inside call_soon_threadsafe (asyncio's is Python code) must not
    leave the group believing a wakeup is on its way: every later call would queue forever."""
    result = run_python(
        """
        import os, signal, sys, threading, time
        import pyactors as ray

        ray.init(loop=sys.argv[1])

        @ray.remote
        class A:
            async def ping(self):
                return "pong"

        @ray.remote
        async def ping():
            return "pong"

        inside = False

        def on_sigint(sig, frame):  # Ctrl-C, only while .remote() runs
            if inside:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        a = A.remote()
        assert ray.get(a.ping.remote(), timeout=10) == "pong"
        stop = threading.Event()

        def ctrl_c():
            while not stop.is_set():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.001)

        threading.Thread(target=ctrl_c, daemon=True).start()
        interrupted = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for method in (a.ping, ping):
                try:
                    inside = True
                    method.remote()
                except KeyboardInterrupt:
                    interrupted += 1
                finally:
                    inside = False
        stop.set()
        assert ray.get([a.ping.remote(), ping.remote()], timeout=10) == ["pong", "pong"]
        print("interrupted", interrupted)
    """,
        loop_kind,
        timeout=40,
    )
    assert_clean_exit(result)


def test_a_shutdown_cut_short_by_ctrl_c_is_finished_by_the_next(loop_kind):
    @ray.remote
    class Threaded:
        def ping(self):
            return 1

    @ray.remote
    class Async:
        async def ping(self):
            return 1

    actors = [cls.remote() for cls in (Threaded, Async) for _ in range(20)]
    ray.get([a.ping.remote() for a in actors])
    real_join = threading.Thread.join
    calls = []

    def interrupted_join(thread, timeout=None):
        calls.append(thread)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while shutdown() waits for threads
        return real_join(thread, timeout)

    threading.Thread.join = interrupted_join
    try:
        with pytest.raises(KeyboardInterrupt):
            ray.shutdown()
    finally:
        threading.Thread.join = real_join
    ray.shutdown()  # finishes the interrupted one: the fixture finds no thread left


def test_a_job_in_the_loops_executor_holds_nothing_up(loop_kind):
    """loop.run_in_executor(None, ...) runs on daemon threads, and an actor's loop stops
    without waiting for its jobs: kill() and shutdown() return at once, and exit too."""
    result = run_python(
        """
        import asyncio, sys, threading, time
        import pyactors as ray

        @ray.remote
        class Offloads:
            async def offload(self, started):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, lambda: (started.set(),
                                                                 threading.Event().wait()))

        ray.init(loop=sys.argv[1])
        started = threading.Event()
        actor = Offloads.remote()
        ref = actor.offload.remote(started)
        assert started.wait(10)
        start = time.monotonic()
        ray.kill(actor)
        ray.shutdown()
        print(f"{time.monotonic() - start:.2f}")
    """,
        loop_kind,
        timeout=30,
    )
    assert_clean_exit(result)
    assert float(result.stdout.strip()) < 1.0  # before: 2 s, then 10 s, and exit never


# -- event loops that re-enter or change threads ------------------------------------------------


def test_a_loop_run_again_inside_a_task_woken_by_await_ref_keeps_delivering():
    """nest_asyncio (Jupyter): a task that `await ref` woke runs the loop again, and awaits
    refs there. In a fresh interpreter: nest_asyncio patches asyncio for the whole process."""
    pytest.importorskip("nest_asyncio")
    result = run_python(
        """
        import asyncio
        import nest_asyncio
        import pyactors as ray

        @ray.remote
        class Echo:
            async def echo(self, value):
                return value

        echo = Echo.remote()

        async def inner(x):
            return await echo.echo.remote(x)

        async def outer(i):
            value = await echo.echo.remote(i)  # woken from the core's batch of completions
            return asyncio.get_event_loop().run_until_complete(inner(value + 10))

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        nest_asyncio.apply(loop)
        print(loop.run_until_complete(asyncio.gather(outer(0), outer(1))))
        print(loop.run_until_complete(inner(2)))  # and the loop goes on delivering
        loop.close()
        ray.shutdown()
        """,
        timeout=30,
    )
    assert_clean_exit(result)
    assert result.stdout.split() == ["[10,", "11]", "2"]
    assert "Exception in callback" not in result.stderr


def test_a_loop_later_run_by_another_thread_is_woken_by_completions_from_the_first():
    g = Gate.options(max_concurrency=1).remote()
    g.wait.remote()  # holds the actor's one slot
    queued = g.wait.remote()
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(_awaiting(queued))
        loop.run_until_complete(asyncio.sleep(0))  # this thread: the task awaits the ref
        running = threading.Event()
        loop.call_soon(running.set)
        outcome = []
        other = threading.Thread(target=lambda: outcome.append(loop.run_until_complete(task)))
        other.start()
        assert running.wait(30)
        ray.cancel(queued)  # not started: completed here, on this thread
        other.join(30)
        alive = other.is_alive()
        if alive:  # do not leave it stuck in the loop
            loop.call_soon_threadsafe(loop.stop)
            other.join(30)
        assert not alive, "the other thread's loop was never woken"
        assert outcome == ["TaskCancelledError"]
    finally:
        ray.kill(g)
        loop.close()


@ray.remote
class Gate(Gated):
    pass


async def _awaiting(ref):
    try:
        return await ref
    except ray.exceptions.TaskCancelledError as exc:
        return type(exc).__name__
