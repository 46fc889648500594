"""Process actors and process tasks: what crossing into a worker process changes (copies,
faults, processes that end) and what it must not (limits, order, cancel, kill, stats). Each
actor reports what it saw from inside its own process."""

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import pyactors as ray
from pyactors.exceptions import (
    ActorDiedError,
    PendingCallsLimitExceededError,
    TaskCancelledError,
    TaskError,
    WorkerCrashedError,
)


@ray.remote(process=True, concurrency_groups={"io": 2})
class Service:
    """An async process actor that records, in its own process, what ran and how."""

    def __init__(self, tag="service"):
        self.tag = tag
        self.gate = None
        self.log = []
        self.in_flight = 0
        self.peak = 0
        self.changed = threading.Condition()

    def _gate(self):
        if self.gate is None:  # made on the default group's loop, where hold() waits
            self.gate = asyncio.Event()
            self.gate_loop = asyncio.get_running_loop()
        return self.gate

    async def hold(self, i):
        with self.changed:
            self.log.append(("start", i))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.changed.notify_all()
        try:
            await self._gate().wait()
        except asyncio.CancelledError:
            self.log.append(("cancelled", i))
            raise
        finally:
            self.in_flight -= 1
        return i

    @ray.method(concurrency_group="io")
    def open(self):
        self.gate_loop.call_soon_threadsafe(self.gate.set)

    @ray.method(concurrency_group="io")
    def until_in_flight(self, n):
        """Blocks io's loop thread (nothing else runs there) until n calls hold."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.in_flight >= n, timeout=10)
        return self.report()

    @ray.method(concurrency_group="io")
    def report(self):
        return {
            "pid": os.getpid(),
            "log": list(self.log),
            "peak": self.peak,
            "in_flight": self.in_flight,
            "tag": self.tag,
        }

    async def where(self):
        context = ray.get_runtime_context()
        return (
            os.getpid(),
            threading.get_ident(),
            id(asyncio.get_running_loop()),
            context.get_actor_id(),
            context.get_task_id(),
        )

    def mutate(self, items):
        items.append("inside")
        return items

    def echo(self, value):
        return value

    def make_lock(self):
        return threading.Lock()

    def raise_unpicklable(self):
        raise Unpicklable("holds a lock", threading.Lock())

    def die(self, how):
        if how == "exit":
            os._exit(3)
        if how == "segfault":
            import ctypes

            ctypes.string_at(0)
        os.kill(os.getpid(), signal.SIGKILL)


@ray.remote
class Order:
    """A threaded actor (no async def), one call at a time."""

    def __init__(self):
        self.seen = []

    def record(self, i):
        self.seen.append((i, threading.get_ident()))
        return os.getpid()

    def seen_order(self):
        return self.seen


def test_a_process_actor_runs_in_its_own_process_with_the_callers_ids():
    s = Service.remote()
    ref = s.where.remote()
    pid, thread, loop, actor_id, task_id = ray.get(ref)
    assert pid != os.getpid()
    assert actor_id == s._pyactors_core.actor_id and task_id == ref.hex()
    assert ray.get(s.where.remote())[:3] == (pid, thread, loop), "one loop, one thread"


def test_arguments_and_results_are_copies():
    s = Service.remote()
    mine = ["outside"]
    theirs = ray.get(s.mutate.remote(mine))
    assert mine == ["outside"] and theirs == ["outside", "inside"]


def test_arguments_are_what_they_were_at_remote_even_when_sent_later():
    """Pipelined calls wait here to go in one frame, written later: each carries its
    arguments as they were when .remote() returned - a list changed afterwards arrives as it
    was (it is pickled at once), and immutable values (which cross inside the frame, pickled
    with it) arrive equal, and of the same types."""
    s = Service.remote()
    ray.get(s.echo.remote(None))
    items, lists, values, expected = [], [], [], []
    for i in range(300):
        items.append(i)
        value = (i, str(i), float(i), b"%d" % i, (None, True, 2j), "x" * (i * 100))
        lists.append(s.echo.remote(items))
        values.append(s.echo.remote(value))
        expected.append(value)
    assert ray.get(lists) == [list(range(i + 1)) for i in range(300)]
    received = ray.get(values)
    assert received == expected
    assert [tuple(map(type, v)) for v in received] == [tuple(map(type, v)) for v in expected]


def _put_one(queue):
    queue.put(1)


@ray.remote(process=True, max_concurrency=4)
class Forker:
    def fork(self):
        """A method's multiprocessing with the fork start method: the child is a copy of
        the worker, calls in flight included, which must not answer for them."""
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_put_one, args=(queue,))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() with threads
            child.start()
        value = queue.get(timeout=30)
        child.join(30)
        return value, child.exitcode

    def echo(self, value):
        return value


def test_a_method_that_forks_leaves_its_actor_and_the_calls_in_flight_alone():
    forker = Forker.remote()
    before = [forker.echo.remote(i) for i in range(500)]
    forked = forker.fork.remote()
    after = [forker.echo.remote(i) for i in range(500)]
    assert ray.get(forked, timeout=60) == (1, 0)
    assert ray.get(before + after, timeout=60) == [*range(500), *range(500)]
    assert ray.get(forker.echo.remote("alive"), timeout=60) == "alive"


def test_limits_fifo_and_stats_hold_across_the_boundary():
    s = Service.options(max_concurrency=2).remote()
    ray.get(s.report.remote())  # __init__ has run
    refs = [s.hold.remote(i) for i in range(5)]
    stats = ray.stats(s)["default"]
    assert stats["running"] + stats["queued"] == 5 and stats["limit"] == 2
    assert ray.get(s.until_in_flight.remote(2))["in_flight"] == 2
    ray.set_concurrency(s, "default", 3)  # a third queued call starts in the worker
    report = ray.get(s.until_in_flight.remote(3))
    assert report["log"] == [("start", 0), ("start", 1), ("start", 2)], "FIFO"
    ray.set_concurrency(s, "default", 1)  # the running calls run on: the worker says so
    stats = ray.stats(s)["default"]
    assert (stats["limit"], stats["running"], stats["queued"]) == (1, 3, 2)
    ray.get(s.open.remote())
    assert ray.get(refs) == list(range(5))
    assert ray.get(s.report.remote())["peak"] == 3
    stats = ray.stats(s)["default"]
    assert (stats["running"], stats["queued"], stats["completed"]) == (0, 0, 5)


def test_a_threaded_process_actor_keeps_submission_order_on_one_thread():
    o = Order.options(process=True).remote()
    pids = ray.get([o.record.remote(i) for i in range(200)])
    seen = ray.get(o.seen_order.remote())
    assert [i for i, _ in seen] == list(range(200))
    assert len({thread for _, thread in seen}) == 1 and set(pids) != {os.getpid()}


def test_cancel_reaches_the_worker_running_and_queued():
    s = Service.options(max_concurrency=1).remote()
    running, queued = s.hold.remote("running"), s.hold.remote("queued")
    ray.get(s.until_in_flight.remote(1))
    ray.cancel(queued)  # first: cancelling the running one frees the slot it waits for
    ray.cancel(running)
    for ref in (running, queued):
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=10)
    log = ray.get(s.report.remote())["log"]
    assert ("cancelled", "running") in log, "CancelledError inside the worker's coroutine"
    assert ("start", "queued") not in log, "a queued call never starts"
    assert ray.stats(s)["default"]["cancelled"] == 2


def test_kill_fails_every_call_at_once_and_ends_the_worker():
    s = Service.remote()
    pid = ray.get(s.report.remote())["pid"]
    refs = [s.hold.remote(i) for i in range(3)]
    pidfd = os.pidfd_open(pid)
    try:
        ray.kill(s)
        for ref in refs:
            with pytest.raises(ActorDiedError, match="killed"):
                ray.get(ref, timeout=0)
        assert select.select([pidfd], [], [], 0)[0], "kill() returned with the worker gone"
    finally:
        os.close(pidfd)
    with pytest.raises(ActorDiedError):
        ray.get(s.echo.remote(1), timeout=0)


@pytest.mark.parametrize(
    "how, named",
    [
        ("exit", "exited with code 3"),
        ("sigkill", "killed by SIGKILL"),
        ("segfault", "killed by SIGSEGV"),
    ],
)
def test_a_worker_that_dies_fails_every_pending_call_naming_why(how, named):
    s = Service.remote()
    held = [s.hold.remote(i) for i in range(3)]
    dying = s.die.options(concurrency_group="io").remote(how)
    for ref in [dying, *held]:
        with pytest.raises(ActorDiedError, match=named):
            ray.get(ref, timeout=10)
    with pytest.raises(ActorDiedError, match=named):
        ray.get(s.echo.remote(1), timeout=0)


def test_an_argument_that_cannot_be_pickled_fails_remote_and_submits_nothing():
    s = Service.options(max_pending_calls=1).remote()
    with pytest.raises(TypeError, match=r"Service\.echo\.remote\(\): argument 'value' cannot"):
        s.echo.remote(threading.Lock())
    with pytest.raises(TypeError, match=r"Service\.remote\(\): argument 'tag' cannot"):
        Service.remote(threading.Lock())
    assert ray.stats(s)["default"]["completed"] == 0
    assert ray.get(s.echo.remote("next")) == "next", "nothing took the pending slot"


def test_an_unpicklable_result_or_exception_fails_that_call_only():
    s = Service.remote()
    with pytest.raises(TaskError, match="result could not be pickled"):
        ray.get(s.make_lock.remote())
    with pytest.raises(TaskError) as info:
        ray.get(s.raise_unpicklable.remote())
    error = info.value
    assert type(error) is TaskError and error.cause is None, "a plain TaskError"
    assert "Unpicklable('holds a lock'" in str(error) and "raise Unpicklable(" in str(error)
    assert ray.get(s.echo.remote(1)) == 1


class Unpicklable(Exception):
    pass


def test_max_pending_calls_counts_calls_in_the_worker():
    s = Service.options(max_pending_calls=2).remote()
    refs = [s.hold.remote(i) for i in range(2)]
    with pytest.raises(PendingCallsLimitExceededError):
        s.hold.remote(2)
    ray.kill(s)
    for ref in refs:
        with pytest.raises(ActorDiedError):
            ray.get(ref, timeout=0)


def test_large_buffers_round_trip_through_shared_memory():
    s = Service.remote()
    array = np.arange(2_000_000, dtype=np.int64)  # 16 MB
    back = ray.get(s.echo.remote(array))
    same, writeable = np.array_equal(back, array), back.flags.writeable
    del back  # its mapping (and the descriptor that holds it) goes with it
    assert same and writeable
    blob = os.urandom(3 << 20)
    assert ray.get(s.echo.remote(blob)) == blob


def test_handles_and_nested_refs_cross_into_workers():
    local = Order.remote()  # in this process
    other = Service.remote()

    @ray.remote(process=True)
    def relay(handles, refs):
        return [ray.get(h.echo.remote("hi")) for h in handles] + ray.get(refs)

    assert ray.get(relay.remote([other], [local.record.remote(1), ray.put(2)])) == [
        "hi",
        os.getpid(),
        2,
    ]


def test_process_tasks_run_on_a_pool_of_reused_workers():
    @ray.remote(process=True)
    def where(i):
        return os.getpid(), i * i

    @ray.remote
    async def coroutine(x):
        await asyncio.sleep(0)
        return os.getpid(), x

    results = ray.get([where.remote(i) for i in range(50)])
    assert [square for _, square in results] == [i * i for i in range(50)]
    pids = {pid for pid, _ in results}
    assert os.getpid() not in pids and len(pids) <= os.cpu_count()
    assert ray.get(coroutine.options(process=True).remote(5))[0] != os.getpid()
    assert ray.get(coroutine.remote(5)) == (os.getpid(), 5), "process=False stays here"


def test_a_crashed_task_worker_fails_only_its_task():
    @ray.remote(process=True)
    def crash():
        os._exit(7)

    @ray.remote(process=True)
    def fine():
        return "fine"

    with pytest.raises(WorkerCrashedError, match="exited with code 7"):
        ray.get(crash.remote(), timeout=10)
    assert ray.get(fine.remote()) == "fine"


@ray.remote(process=True, concurrency_groups={"control": 1})
class Streams:
    """Generator methods of a process actor, with what their bodies did kept in the worker."""

    def __init__(self):
        self.released = threading.Event()
        self.stopped = threading.Event()

    @ray.method(concurrency_group="control")
    def release(self):
        self.released.set()

    @ray.method(concurrency_group="control")
    def pid(self):
        return os.getpid()

    @ray.method(concurrency_group="control")
    def has_stopped(self):
        return self.stopped.wait(30)

    def first_then_held(self):
        try:
            yield "first"
            self.released.wait(30)
            yield "second"
        finally:
            self.stopped.set()

    def echo(self, value):
        return value

    def counting(self):
        try:
            yield from itertools.count()
        finally:
            self.stopped.set()

    def with_a_lock(self):
        try:
            yield "fine"
            yield threading.Lock()
            yield from itertools.count()  # ends: the stream was dropped at the lock
        finally:
            self.stopped.set()

    def unloadable_here(self):
        yield "fine"
        yield Unloadable()
        yield "never delivered"


# The test's process: workers inherit the variable, and see another pid.
_CALLER = os.environ.setdefault("PYACTORS_TEST_CALLER_PID", str(os.getpid()))


def _refuse_to_load():
    if os.getpid() == int(_CALLER):
        raise RuntimeError("this value does not load in the caller's process")


class Unloadable:
    """Pickles in the worker; its unpickling raises in the caller's process."""

    def __reduce__(self):
        return _refuse_to_load, ()


def test_a_process_actor_streams_each_item_as_its_body_yields_it():
    s = Streams.remote()
    gen = s.first_then_held.remote()
    assert ray.get(next(gen), timeout=30) == "first"  # the body is still held in the worker
    assert not gen.next_ready()
    s.release.remote()
    assert [ray.get(ref) for ref in gen] == ["second"]
    assert ray.get(gen.completed()) is None
    assert ray.get(s.has_stopped.remote())


def test_a_worker_that_dies_mid_stream_fails_the_next_unread_item():
    s = Streams.remote()
    gen = s.first_then_held.remote()
    assert ray.get(next(gen), timeout=30) == "first"
    os.kill(ray.get(s.pid.remote()), signal.SIGKILL)
    with pytest.raises(ActorDiedError, match="killed by SIGKILL"):
        ray.get(next(gen), timeout=30)
    with pytest.raises(StopIteration):
        next(gen)
    with pytest.raises(ActorDiedError, match="killed by SIGKILL"):
        ray.get(gen.completed(), timeout=0)


def test_kill_ends_a_stream_at_once_with_nothing_after_the_error():
    s = Streams.remote()
    gen = s.counting.remote()  # without backpressure: values keep arriving until the kill
    assert ray.get(next(gen), timeout=30) == 0
    ray.kill(s)
    refs = list(gen)
    with pytest.raises(ActorDiedError):
        ray.get(refs[-1], timeout=30)
    assert ray.get(refs[:-1]) == list(range(1, len(refs)))


def test_an_item_that_cannot_cross_fails_the_stream_from_there_and_stops_the_body():
    s = Streams.remote()
    refs = list(s.with_a_lock.remote())
    assert len(refs) == 2 and ray.get(refs[0]) == "fine"
    with pytest.raises(TaskError, match=r"item 1 could not be pickled.*_thread\.lock"):
        ray.get(refs[1])
    assert ray.get(s.has_stopped.remote())
    refs = list(s.unloadable_here.remote())
    assert len(refs) == 2 and ray.get(refs[0]) == "fine"
    with pytest.raises(TaskError, match="item 1 could not be unpickled in this process"):
        ray.get(refs[1])


def test_a_stream_is_not_run_twice_when_its_worker_restarts():
    s = Streams.options(max_restarts=1, max_task_retries=1).remote()
    gen = s.first_then_held.remote()
    assert ray.get(next(gen), timeout=30) == "first"
    os.kill(ray.get(s.pid.remote()), signal.SIGKILL)
    with pytest.raises(ActorDiedError, match="it restarts"):
        ray.get(next(gen), timeout=30)
    assert ray.get(s.pid.remote(), timeout=30) != os.getpid(), "restarted"


@ray.remote(process=True)
def call_through(handle, method):
    return ray.get(getattr(handle, method).remote())


def test_a_generator_method_through_a_handle_in_a_worker_fails_clearly():
    s = Streams.remote()
    with pytest.raises(TypeError, match="only methods with one result can be called"):
        ray.get(call_through.remote(s, "counting"), timeout=30)
    # Cancelled (before or after its body started): the default group's one slot is free.
    assert ray.get(s.echo.remote("free"), timeout=30) == "free"
    assert ray.get(call_through.remote(s, "pid"), timeout=30) != os.getpid()


@ray.remote(process=True)
def numbers(n):
    yield from range(n)


def test_process_tasks_stream_and_split_their_values():
    gen = numbers.remote(3)
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert [ray.get(ref) for ref in gen] == [0, 1, 2]
    assert ray.get(numbers.options(num_returns=2).remote(2)) == [0, 1]
    assert ray.get(numbers.options(num_returns=1).remote(1)) == 0
    with pytest.raises(ValueError, match="yielded 2 values, but num_returns=1"):
        ray.get(numbers.options(num_returns=1).remote(2))
    dynamic = ray.get(numbers.options(num_returns="dynamic").remote(3))
    assert ray.get(list(dynamic)) == [0, 1, 2]


@ray.remote(process=True)
async def ticks():
    for i in itertools.count():
        yield i
        await asyncio.sleep(0)


def test_cancel_stops_a_streaming_process_task_in_its_worker():
    gen = ticks.options(_generator_backpressure_num_objects=4).remote()
    assert ray.get(next(gen), timeout=30) == 0
    assert ray.cancel(gen) is True
    refs = list(gen)  # ends: bounded by the backpressure, then the reason
    assert len(refs) <= 4 + 1 + 1
    with pytest.raises(TaskCancelledError):
        ray.get(refs[-1], timeout=30)
    assert ray.get(numbers.options(num_returns=1).remote(1), timeout=30) == 0, "the pool goes on"


def _run(code, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,  # the callers judge the exit status and show the output
    )


def test_a_script_without_a_main_guard_runs_its_classes_in_workers(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent("""
        import os
        import pyactors as ray

        @ray.remote
        class Here:
            def pid(self):
                return os.getpid()

        pids = ray.get([Here.remote().pid.remote() for _ in range(2)])
        print("OK", os.getpid() not in pids, len(set(pids)))
    """)
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYACTORS_PROCESS": "1"},
        cwd=tmp_path,
        check=False,  # the assert below shows stderr
    )
    assert done.stdout.strip() == "OK True 2", done.stderr


def test_workers_exit_when_the_parent_is_killed():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import os, sys
        import pyactors as ray

        @ray.remote(process=True)
        class Idle:
            def pid(self):
                return os.getpid()

        actors = [Idle.remote() for _ in range(2)]
        print(*ray.get([a.pid.remote() for a in actors]), flush=True)
        sys.stdin.read()  # until killed
    """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        pidfds = [os.pidfd_open(pid) for pid in pids]
    finally:
        parent.kill()
        parent.wait()
        parent.stdin.close()
        parent.stdout.close()
    try:
        ended = set()
        while len(ended) < len(pidfds):
            ready = select.select(pidfds, [], [], 2.0)[0]
            assert ready, f"workers {pids} outlived their parent by 2 s"
            ended.update(ready)
    finally:
        for pidfd in pidfds:
            os.close(pidfd)


def test_init_process_true_runs_every_actor_in_a_worker_unless_it_says_no():
    ray.shutdown()
    ray.init(process=True)
    here = Order.options(process=False).remote()
    there = Order.remote()
    assert ray.get(here.record.remote(0)) == os.getpid()
    assert ray.get(there.record.remote(0)) != os.getpid()


@ray.remote(process=True, max_restarts=1, max_task_retries=1)
class Phoenix:
    def __init__(self, start):
        self.count = start

    def bump(self):
        self.count += 1
        return self.count, os.getpid(), ray.get_runtime_context().was_current_actor_reconstructed

    def crash_once(self, marker, how):
        """Dies the first time (marker not yet there), returns the second."""
        if not os.path.exists(marker):
            open(marker, "w").close()
            if how == "sys.exit":
                sys.exit(1)
            os.kill(os.getpid(), signal.SIGKILL)
        return self.bump()


@pytest.mark.parametrize("how", ["sigkill", "sys.exit"])
def test_a_dead_worker_restarts_with_its_first_arguments_and_retries_its_call(how, tmp_path):
    p = Phoenix.remote(10)
    assert ray.get(p.bump.remote())[0] == 11
    _, first_pid, _ = ray.get(p.bump.remote())
    count, pid, reconstructed = ray.get(p.crash_once.remote(str(tmp_path / "m"), how), timeout=30)
    assert (count, reconstructed) == (11, True), "a fresh __init__(10)"
    # sys.exit() restarts the actor in its worker, as in one process; a dead worker is
    # replaced by a new one.
    assert (pid != first_pid) is (how == "sigkill")
    marker = tmp_path / "again"
    with pytest.raises(ActorDiedError):  # max_restarts=1 is spent: now it stays dead
        ray.get(p.crash_once.remote(str(marker), how), timeout=30)
    with pytest.raises(ActorDiedError):
        ray.get(p.bump.remote(), timeout=0)


def test_the_next_process_actor_starts_from_a_warm_spare_worker():
    a = Service.remote()
    ray.get(a.report.remote())
    hub = ray._runtime.current().process_hub()
    spare = hub._spare
    while spare is None:  # prepared on the hub's thread after the first actor took its own
        spare = hub._spare
    b = Service.remote("b")
    report = ray.get(b.report.remote())
    assert report["pid"] == spare.pid and report["tag"] == "b", "the spare runs b"


# -- num_cpus and cancel(force=True) of process tasks ------------------------------------------


@ray.remote
class Tally:
    """In this process: which process tasks run at once, as they report it from their
    workers."""

    def __init__(self):
        self.running = set()
        self.overlaps = {}  # task -> the tasks that ran beside it
        self.pids = {}
        self.changed = asyncio.Condition()

    async def enter(self, tag, pid):
        async with self.changed:
            self.overlaps[tag] = set(self.running)
            for other in self.running:
                self.overlaps[other].add(tag)
            self.running.add(tag)
            self.pids[tag] = pid
            self.changed.notify_all()

    async def leave(self, tag):
        self.running.discard(tag)

    async def until_entered(self, *tags):
        """The pids of the tasks that entered, once `tags` have."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.pids.keys() >= set(tags)), 30)
        return dict(self.pids)

    async def report(self):
        return self.overlaps


@ray.remote(process=True)
def report_in(tally, gates, tag):
    """Runs until the test opens its gate. Without ray.get(): a task blocked in it lends its
    CPU to the next task of its worker (as Ray's does)."""
    tally.enter.remote(tag, os.getpid())
    with open(os.path.join(gates, tag)) as gate:  # a FIFO: until the test opens it too
        gate.read()
    tally.leave.remote(tag)  # before it returns: the next task of its worker enters after
    return tag


class Gates:
    """A FIFO per task, which the task waits to read from and the test opens to let it end."""

    def __init__(self, path, tags):
        self.path = str(path)
        for tag in tags:
            os.mkfifo(path / tag)

    def open(self, *tags):
        for tag in tags:
            with open(os.path.join(self.path, tag), "w"):
                pass


@pytest.fixture
def two_cpus(loop_kind):
    """A runtime whose process pool has two CPUs, and a Tally in this process."""
    ray.shutdown()
    ray.init(loop=loop_kind, num_cpus=2)
    return Tally.remote()


def test_num_cpus_of_a_process_task_takes_that_many_cpus_of_the_pool(two_cpus, tmp_path):
    tally = two_cpus
    gates = Gates(tmp_path, ["a1", "a2", "both", "after"])
    first = [report_in.remote(tally, gates.path, tag) for tag in ("a1", "a2")]
    ray.get(tally.until_entered.remote("a1", "a2"))
    both = report_in.options(num_cpus=2).remote(tally, gates.path, "both")
    after = report_in.remote(tally, gates.path, "after")  # behind it, not beside it
    dropped = square.remote(3)  # waits behind them too, in this process: cancel ends it here
    assert ray.cancel(dropped) is True
    with pytest.raises(TaskCancelledError, match="before it started"):
        ray.get(dropped, timeout=30)
    gates.open("a1", "a2")
    ray.get(tally.until_entered.remote("both"))
    gates.open("both")
    ray.get(tally.until_entered.remote("after"))
    gates.open("after")
    assert ray.get([*first, both, after], timeout=30) == ["a1", "a2", "both", "after"]
    overlaps = ray.get(tally.report.remote())
    assert overlaps["a1"] == {"a2"}, "two tasks of one CPU run at once"
    assert overlaps["both"] == set(), "a task of both CPUs runs alone"
    assert overlaps["after"] == set()


def test_fractions_and_zero_cpus_let_more_tasks_run_than_the_pool_has_cpus(two_cpus, tmp_path):
    tally = two_cpus
    tags = ["half0", "half1", "one", "waits", "free"]
    gates = Gates(tmp_path, tags)
    refs = [report_in.options(num_cpus=0.5).remote(tally, gates.path, tag) for tag in tags[:2]]
    refs.append(report_in.remote(tally, gates.path, "one"))  # 0.5 + 0.5 + 1: the two CPUs
    pids = ray.get(tally.until_entered.remote(*tags[:3]))
    assert len(set(pids.values())) == 3, "one worker process each"
    refs.append(report_in.remote(tally, gates.path, "waits"))  # no CPU is left for it
    refs.append(report_in.options(num_cpus=0).remote(tally, gates.path, "free"))  # needs none
    ray.get(tally.until_entered.remote("free"))
    gates.open("one")
    ray.get(tally.until_entered.remote("waits"))
    overlaps = ray.get(tally.report.remote())
    assert overlaps["free"] >= {"half0", "half1", "one"}, "it ran though both CPUs were taken"
    assert overlaps["waits"] == {"half0", "half1", "free"}, "it took the CPU 'one' left"
    gates.open("half0", "half1", "free", "waits")
    assert ray.get(refs, timeout=30) == tags


def test_num_cpus_a_process_task_can_never_have_fails_at_remote(two_cpus):
    @ray.remote(process=True, num_cpus=3)
    def greedy():
        return "never"

    for call, error, words in [
        (greedy.remote, ValueError, r"num_cpus=3 is more than the process pool's 2 CPUs"),
        (square.options(num_cpus=1.5).remote, ValueError, "must be whole"),
        (square.options(num_cpus=-1).remote, ValueError, "must be 0 or more"),
        (square.options(num_cpus="2").remote, TypeError, "must be a number of CPUs"),
    ]:
        with pytest.raises(error, match=words):
            call(2)
    assert ray.get(greedy.options(num_cpus=2).remote()) == "never"  # .options() overrides
    assert ray.get(greedy.options(process=False).remote()) == "never"  # ignored here


@ray.remote(process=True)
def stubborn(tally):
    """Runs until its process ends: KeyboardInterrupt (cancel without force) does not stop it."""
    tally.enter.remote("stubborn", os.getpid())
    while True:
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@ray.remote(process=True)
def square(x):
    return x * x


@ray.remote(process=True)
def count_up(n):
    yield from range(n)


@pytest.mark.parametrize("end", ["force-cancel", "SIGKILL"])
def test_a_process_task_whose_worker_ends_takes_only_itself_down(two_cpus, tmp_path, end):
    """cancel(force=True) ends the worker of a running task, as Ray's does; so does a crash.
    The tasks and streams sent ahead to that worker, never started, run on the others."""
    tally = two_cpus
    gates = Gates(tmp_path, ["other"])
    other = report_in.remote(tally, gates.path, "other")
    ref = stubborn.remote(tally)
    pids = ray.get(tally.until_entered.remote("other", "stubborn"))
    ahead = [square.remote(i) for i in range(4)]  # some are sent ahead to its worker
    streams = [count_up.remote(3) for _ in range(2)]  # and maybe a stream
    pidfd = os.pidfd_open(pids["stubborn"])
    try:
        if end == "SIGKILL":
            os.kill(pids["stubborn"], signal.SIGKILL)
            with pytest.raises(WorkerCrashedError, match="SIGKILL"):
                ray.get(ref, timeout=30)
        else:
            assert ray.cancel(ref, force=True) is True
            with pytest.raises(TaskCancelledError, match="force=True"):
                ray.get(ref, timeout=30)
        assert select.select([pidfd], [], [], 30)[0], "its worker process ended"
    finally:
        os.close(pidfd)
    gates.open("other")
    assert ray.get(other, timeout=30) == "other", "the task on the other worker ran on"
    assert ray.get(ahead, timeout=30) == [0, 1, 4, 9], "those sent ahead ran elsewhere"
    assert [[ray.get(r, timeout=30) for r in s] for s in streams] == [[0, 1, 2]] * 2


@ray.remote(process=True)
class Stuck:
    """Its __ray_shutdown__ never returns."""

    def __init__(self, path):
        self.path = path

    def ping(self):
        return "pong"

    def __ray_shutdown__(self):
        with open(self.path, "w") as log:
            log.write("started")
        threading.Event().wait()


def test_hanging_ray_shutdown_hooks_hold_shutdown_one_grace_period_in_all(tmp_path):
    from pyactors._process.hub import TERMINATE_GRACE

    actors = [Stuck.remote(str(tmp_path / str(i))) for i in range(3)]
    assert ray.get([actor.ping.remote() for actor in actors]) == ["pong"] * 3
    start = time.monotonic()
    ray.shutdown()
    took = time.monotonic() - start
    assert [(tmp_path / str(i)).read_text() for i in range(3)] == ["started"] * 3
    # The hooks run at once, in their workers: one grace period, not one each
    assert TERMINATE_GRACE <= took < 2 * TERMINATE_GRACE, took
