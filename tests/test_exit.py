"""Leaving an actor from inside - exit_actor(), sys.exit(), __ray_terminate__ - restarts
(max_restarts, max_task_retries) and __ray_shutdown__, starting with Ray's documented
examples (doc_code/actor_checkpointing.py)."""

import asyncio
import json
import os
import sys
import threading

import pytest

import pyactors as ray
from pyactors.actor import exit_actor
from pyactors.exceptions import ActorDiedError, RayActorError, TaskCancelledError

pytestmark = pytest.mark.usefixtures("place")


@ray.remote(num_cpus=1)
class Worker:
    def __init__(self):
        self.state = {"num_tasks_executed": 0}

    def execute_task(self, crash=False):
        if crash:
            sys.exit(1)
        self.state["num_tasks_executed"] = self.state["num_tasks_executed"] + 1

    def checkpoint(self):
        return self.state

    def restore(self, state):
        self.state = state


def test_rays_manual_checkpoint_restart_example(loop_kind):
    class Controller:
        def __init__(self):
            self.worker = Worker.remote()
            self.worker_state = ray.get(self.worker.checkpoint.remote())
            self.restarts = 0

        def execute_task_with_fault_tolerance(self):
            i = 0
            while True:
                i = i + 1
                try:
                    ray.get(self.worker.execute_task.remote(crash=(i % 2 == 1)))
                    self.worker_state = ray.get(self.worker.checkpoint.remote())
                    return
                except ray.exceptions.RayActorError:
                    self.restarts += 1
                    self.worker = Worker.remote()
                    ray.get(self.worker.restore.remote(self.worker_state))

    controller = Controller()
    controller.execute_task_with_fault_tolerance()
    controller.execute_task_with_fault_tolerance()
    assert ray.get(controller.worker.checkpoint.remote())["num_tasks_executed"] == 2
    assert controller.restarts == 2


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_rays_auto_restart_example(loop_kind, tmp_path):
    checkpoint = tmp_path / "checkpoint.json"
    exits = []

    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class ImmortalActor:
        def __init__(self):
            if os.path.exists(checkpoint):
                with open(checkpoint) as f:
                    self.state = json.load(f)
            else:
                self.state = {}

        def update(self, key, value):
            if len(exits) < 6 and len(exits) % 2 == 0:  # Ray's: random.randrange(10) < 5
                exits.append(key)
                sys.exit(1)
            exits.append(None)
            self.state[key] = value
            with open(checkpoint, "w") as f:
                json.dump(self.state, f)

        def get(self, key):
            return self.state[key]

    actor = ImmortalActor.remote()
    actor.update.remote("1", 1)
    actor.update.remote("2", 2)
    assert ray.get(actor.get.remote("1")) == 1
    assert ray.get(actor.get.remote("2")) == 2
    assert exits.count("1") >= 1  # it did exit, restart and retry


@ray.remote(max_restarts=2)
class Counter:
    def __init__(self, start):
        self.count = start
        self.inits = getattr(self, "inits", 0) + 1  # reset by a restart: always 1

    def add(self):
        self.count += 1
        return self.count

    def crash(self):
        sys.exit(3)

    def report(self):
        context = ray.get_runtime_context()
        return self.count, self.inits, context.was_current_actor_reconstructed


def test_sys_exit_restarts_with_the_first_arguments_until_max_restarts(loop_kind):
    counter = Counter.remote(10)
    assert ray.get(counter.add.remote()) == 11
    assert ray.get(counter.report.remote()) == (11, 1, False)
    for _ in range(2):
        with pytest.raises(ActorDiedError, match=r"SystemExit\(3\).*it restarts"):
            ray.get(counter.crash.remote())
        # Calls made meanwhile run on the restarted actor: its state is new.
        assert ray.get(counter.report.remote()) == (10, 1, True)
    with pytest.raises(RayActorError, match=r"raised SystemExit\(3\)"):
        ray.get(counter.crash.remote())  # no restart left: it is dead
    with pytest.raises(ActorDiedError):
        ray.get(counter.add.remote())


def test_calls_queued_during_a_restart_run_on_the_restarted_actor(loop_kind):
    counter = Counter.remote(0)
    crash = counter.crash.remote()
    queued = [counter.add.remote() for _ in range(5)]
    with pytest.raises(ActorDiedError):
        ray.get(crash)
    assert ray.get(queued) == [1, 2, 3, 4, 5]


@ray.remote(max_restarts=1, max_concurrency=3)
class SelfAwaiting:
    """outer() awaits inner(), which waits for an event nothing sets; crash() exits."""

    def __init__(self, log):
        self.log = log
        self.never = asyncio.Event()

    async def outer(self, running):
        me = ray.get_runtime_context().current_actor
        try:
            return await me.inner.remote(running)
        except asyncio.CancelledError:
            self.log.append("outer cancelled")
            raise

    async def inner(self, running):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            return "ran again"
        running.set()
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.log.append("inner cancelled")
            raise

    def crash(self):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            return "ran again"
        sys.exit(1)

    def reconstructed(self):
        return ray.get_runtime_context().was_current_actor_reconstructed


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, lists)"
)
def test_a_restart_cancels_the_awaiting_calls_of_the_old_instance(loop_kind):
    # As in Ray, where the exiting process takes its running calls with it. Before, the
    # restart waited for them to end, and outer() waited for inner(), which waited for ever.
    log, running = [], threading.Event()
    actor = SelfAwaiting.remote(log)
    outer = actor.outer.remote(running)
    assert running.wait(30)
    crash = actor.crash.remote()
    for ref in (crash, outer):
        with pytest.raises(ActorDiedError, match=r"SystemExit\(1\).*it restarts"):
            ray.get(ref, timeout=30)
    assert ray.get(actor.reconstructed.remote(), timeout=30) is True
    assert sorted(log) == ["inner cancelled", "outer cancelled"]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, lists)"
)
def test_an_awaiting_call_cancelled_by_a_restart_runs_again_if_max_task_retries_allows(
    loop_kind,
):
    log, running = [], threading.Event()
    actor = SelfAwaiting.options(max_task_retries=1).remote(log)
    inner = actor.inner.remote(running)
    assert running.wait(30)
    crash = actor.crash.remote()
    assert ray.get([inner, crash], timeout=30) == ["ran again", "ran again"]
    assert log == ["inner cancelled"]


@ray.remote(max_restarts=1, max_task_retries=1)
class RunsAgain:
    """Each method exits or waits on its first run, and returns on its run after the restart."""

    def __init__(self):
        self.go = asyncio.Event()

    async def other(self):
        return "other"

    async def crash(self):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            await asyncio.sleep(0.05)  # a stale cancel of the first run would land here
            return "crash ran again"
        await asyncio.sleep(0)
        self.go.set()  # the waiter wakes in this loop iteration...
        ray.get_runtime_context().current_actor.other.remote()  # ...with a drain queued
        sys.exit(1)

    async def waiter(self, running):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            await asyncio.sleep(0.05)
            return "waiter ran again"
        running.set()
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # a slow cleanup: the restart waits for it
            raise
        return "waiter's first run"

    async def sleeper(self, running, cleaning):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            return "sleeper ran again"
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cleaning.set()
            await asyncio.sleep(0.2)
            raise

    async def stream(self, running):
        for i in range(3):
            yield i
            running.set()
            await asyncio.sleep(30)

    async def leaver(self, running):
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            exit_actor()  # cancelled by the restart: a graceful exit instead


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives)"
)
def test_a_call_that_runs_again_is_not_hit_by_the_cancel_of_its_first_run(loop_kind):
    # The restart cancels the first run on the loop's next turn; a drain already queued could
    # start the second run before that, and the cancel hit it (a hostile run: 20 of 20).
    actor, running = RunsAgain.remote(), threading.Event()
    waiter = actor.waiter.remote(running)
    assert running.wait(30)
    crash = actor.crash.remote()
    assert ray.get([waiter, crash], timeout=30) == ["waiter ran again", "crash ran again"]


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives)"
)
def test_cancel_during_a_restart_wins_over_running_again(loop_kind):
    actor, running, cleaning = RunsAgain.remote(), threading.Event(), threading.Event()
    sleeper = actor.sleeper.remote(running, cleaning)
    assert running.wait(30)
    crash = actor.crash.remote()
    assert cleaning.wait(30)  # cancelled by the restart, which would run it again
    assert ray.cancel(sleeper) is True
    with pytest.raises(TaskCancelledError):
        ray.get(sleeper, timeout=30)
    assert ray.get(crash, timeout=30) == "crash ran again"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives)"
)
def test_a_graceful_exit_during_a_restart_fails_the_calls_that_would_run_again(loop_kind):
    # They were queued into groups the exit had closed, and hung, even after shutdown().
    actor = RunsAgain.remote()
    running, cleaning, leaving = threading.Event(), threading.Event(), threading.Event()
    sleeper = actor.sleeper.remote(running, cleaning)
    leaver = actor.leaver.remote(leaving)
    assert running.wait(30) and leaving.wait(30)
    crash = actor.crash.remote()
    for ref in (sleeper, crash, leaver):
        with pytest.raises(ActorDiedError, match="exited intentionally"):
            ray.get(ref, timeout=30)


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives)"
)
def test_a_stream_running_at_a_restart_ends_and_does_not_run_again(loop_kind):
    # Run again, its consumer would get its items twice.
    actor, running = RunsAgain.remote(), threading.Event()
    stream = actor.stream.options(num_returns="streaming").remote(running)
    assert ray.get(next(stream), timeout=30) == 0
    assert running.wait(30)
    crash = actor.crash.remote()
    with pytest.raises(ActorDiedError, match=r"A?.*crash\(\) raised SystemExit"):
        ray.get(next(stream), timeout=30)
    assert ray.get(crash, timeout=30) == "crash ran again"


@ray.remote(max_restarts=1, max_task_retries=1)
class SlowToRestart:
    def __init__(self, restarting, gate):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            restarting.set()
            gate.wait(30)

    async def sleeper(self, running):
        running.set()
        await asyncio.sleep(30)

    def crash(self):
        if ray.get_runtime_context().was_current_actor_reconstructed:
            return "crash ran again"
        sys.exit(1)

    def ping(self):
        return "pong"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives)"
)
def test_cancelling_a_call_queued_to_run_again_leaves_the_restart_alone(loop_kind):
    # The restart's __init__ was submitted from inside the last call to end, as its child:
    # cancel(), recursive by default, cancelled it too, and the actor died.
    running, restarting, gate = threading.Event(), threading.Event(), threading.Event()
    actor = SlowToRestart.remote(restarting, gate)
    sleeper = actor.sleeper.remote(running)
    assert running.wait(30)
    crash = actor.crash.remote()
    assert restarting.wait(30)  # the sleeper ended, cancelled, and waits to run again
    assert ray.cancel(sleeper) is True
    gate.set()
    with pytest.raises(TaskCancelledError):
        ray.get(sleeper, timeout=30)
    assert ray.get([crash, actor.ping.remote()], timeout=30) == ["crash ran again", "pong"]


@ray.remote
class Quitter:
    def __init__(self, log):
        self.log = log

    def quit(self):
        exit_actor()

    def ping(self):
        return "pong"

    def hold(self, running, release):
        running.set()
        release.wait(30)
        return "held to its end"

    def __ray_shutdown__(self):
        self.log.append("shutdown")


@ray.remote
class AsyncQuitter:
    def __init__(self, log):
        self.log = log

    async def quit(self):
        await asyncio.sleep(0)
        exit_actor()

    async def ping(self):
        return "pong"

    def __ray_shutdown__(self):
        self.log.append("shutdown")


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.parametrize("actor_class", [Quitter, AsyncQuitter])
def test_exit_actor_is_a_graceful_exit(loop_kind, actor_class):
    log = []
    actor = actor_class.remote(log)
    assert ray.get(actor.ping.remote()) == "pong"
    with pytest.raises(ActorDiedError, match="exited intentionally: exit_actor"):
        ray.get(actor.quit.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="exited intentionally"):
        ray.get(actor.ping.remote(), timeout=30)
    assert log == ["shutdown"]
    ray.shutdown()
    assert log == ["shutdown"]  # once


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_calls_running_at_exit_end_and_queued_ones_fail(loop_kind):
    log = []
    actor = Quitter.options(max_concurrency=2).remote(log)
    running, release = threading.Event(), threading.Event()
    held = actor.hold.remote(running, release)
    assert running.wait(30)
    quit = actor.quit.remote()
    with pytest.raises(ActorDiedError):
        ray.get(quit, timeout=30)
    later = actor.ping.remote()
    with pytest.raises(ActorDiedError):
        ray.get(later, timeout=30)
    assert log == []  # not yet: a call still runs
    release.set()
    assert ray.get(held, timeout=30) == "held to its end"
    actor._pyactors_core.join(30)
    assert log == ["shutdown"]


def test_exit_actor_is_never_restarted(loop_kind):
    log = []
    actor = Quitter.options(max_restarts=5).remote(log)
    with pytest.raises(ActorDiedError):
        ray.get(actor.quit.remote())
    with pytest.raises(ActorDiedError, match="exited intentionally"):
        ray.get(actor.ping.remote())


def test_exit_actor_outside_an_actor_says_so(loop_kind):
    with pytest.raises(TypeError, match="only meaningful inside an actor"):
        exit_actor()


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_ray_terminate_exits_after_the_calls_submitted_before(loop_kind):
    log = []
    actor = Quitter.remote(log)  # threaded, one slot: calls run in order
    before = [actor.ping.remote() for _ in range(3)]
    done = actor.__ray_terminate__.remote()
    after = actor.ping.remote()
    assert ray.get(before) == ["pong"] * 3
    assert ray.wait([done], timeout=30)[0] == [done]
    with pytest.raises(ActorDiedError, match="terminated gracefully"):
        ray.get(after, timeout=30)
    actor._pyactors_core.join(30)
    assert log == ["shutdown"]


@ray.remote
class Recorder:
    """Writes that its __ray_shutdown__ ran to a file: seen wherever the actor runs."""

    def __init__(self, path):
        self.path = path

    def ping(self):
        return "pong"

    def __ray_shutdown__(self):
        with open(self.path, "a") as log:
            log.write("shutdown\n")


@pytest.mark.parametrize("end", ["drop", "shutdown", "kill"])
def test_ray_shutdown_runs_on_graceful_ends_only(loop_kind, end, tmp_path):
    log = tmp_path / "log"
    log.touch()
    actor = Recorder.remote(str(log))
    assert ray.get(actor.ping.remote()) == "pong"
    core = actor._pyactors_core
    if end == "drop":
        del actor
        core.join(30)
    elif end == "shutdown":
        ray.shutdown()
    else:
        ray.kill(actor)
        ray.shutdown()
    assert log.read_text().split() == ([] if end == "kill" else ["shutdown"])


# -- __init__ of an async actor beside its loop ------------------------------------------------


@ray.remote(concurrency_groups={"io": 2})
class LoopAware:
    def __init__(self):
        # Ray's test_concurrency_group.py::test_basic keeps the loop __init__ sees.
        self.loop = asyncio.get_event_loop()
        self.thread = threading.current_thread().name

    async def on_that_loop(self):
        return asyncio.get_running_loop() is self.loop

    def on_that_thread(self):
        return threading.current_thread().name == self.thread

    @ray.method(concurrency_group="io")
    async def io_loop_is_another(self):
        return asyncio.get_running_loop() is not self.loop


def test_an_async_actors_init_sees_the_default_groups_loop(loop_kind):
    actor = LoopAware.remote()
    assert ray.get(
        [
            actor.on_that_loop.remote(),
            actor.on_that_thread.remote(),
            actor.io_loop_is_another.remote(),
        ]
    ) == [True, True, True]


@ray.remote
class LoopUnaware:
    def __init__(self, ran):
        ran.set()

    async def ping(self):
        return "pong"


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
def test_an_init_that_needs_no_loop_runs_before_it_exists(loop_kind):
    """Then an actor nobody calls costs no event loop (a uvloop loop is ~300 KB)."""
    ran = threading.Event()
    unused = LoopUnaware.remote(ran)
    assert ran.wait(30)
    assert unused._pyactors_core.group("default").event_loop is None
    assert ray.get(unused.ping.remote()) == "pong"  # the first call makes it
    assert unused._pyactors_core.group("default").event_loop is not None
