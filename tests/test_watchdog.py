"""An event loop blocked inside one call is reported once on the pyactors logger, with the
actor, group, method and how long; busy loops and loops that move on are not. kill() and
shutdown() do not wait for threads stuck in user code: they name them once instead."""

import asyncio
import gc
import logging
import re
import threading
import time
import weakref

import pytest
from hostile import assert_clean_exit, run_python

import pyactors as ray

THRESHOLD = 0.2


class Captured(logging.Handler):
    """The pyactors logger's records, with an event set by the first one matching `text`."""

    def __init__(self, text):
        super().__init__(logging.WARNING)
        self.text = text
        self.records = []
        self.seen = threading.Event()

    def emit(self, record):
        self.records.append(record.getMessage())
        if self.text in record.getMessage():
            self.seen.set()


@pytest.fixture
def warnings_about():
    logger = logging.getLogger("pyactors")
    handlers = []

    def capture(text):
        handler = Captured(text)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield capture
    for handler in handlers:
        logger.removeHandler(handler)


def watched(loop_kind, threshold=THRESHOLD):
    ray.shutdown()
    ray.init(loop=loop_kind, blocked_loop_warning=threshold)


@ray.remote(concurrency_groups={"io": 2})
class Blocker:
    async def blocks(self, reported):
        # Blocks its loop (no await) until the watchdog has said so.
        await asyncio.sleep(0)
        assert reported.wait(30), "the blocked loop was never reported"
        return "unblocked"

    async def holds(self, argument, reported):
        return await self.blocks(reported)

    def plain_blocks(self, reported):
        assert reported.wait(30)
        return "unblocked"

    @ray.method(concurrency_group="io")
    async def short(self):
        await asyncio.sleep(0.002)


@pytest.mark.parametrize("method", ["blocks", "plain_blocks"])
def test_a_blocked_loop_is_reported_once_with_actor_method_and_duration(
    loop_kind, warnings_about, method
):
    watched(loop_kind)
    actor = Blocker.remote()
    captured = warnings_about("has been blocked for")
    assert ray.get(getattr(actor, method).remote(captured.seen), timeout=30) == "unblocked"
    [message] = [m for m in captured.records if "has been blocked" in m]
    assert f"Blocker.{method}()" in message
    assert "concurrency group 'default' of actor Blocker(" in message
    seconds = float(message.split("blocked for ")[1].split(" s")[0])
    assert seconds >= THRESHOLD


class Argument:
    pass


def test_what_a_call_held_is_freed_when_it_returns_though_the_watchdog_read_its_stack(
    loop_kind, warnings_about
):
    # With the cyclic collector off, only reference counts free the argument: the watchdog's
    # reading of the loop thread's stack (while the call blocked it) must not keep that
    # stack, and the argument in it, beyond the loop's moving on.
    watched(loop_kind)
    actor = Blocker.remote()
    captured = warnings_about("has been blocked for")
    argument = Argument()
    freed = threading.Event()
    weakref.finalize(argument, freed.set)
    gc.disable()
    try:
        ref = actor.holds.remote(argument, captured.seen)
        del argument
        assert ray.get(ref, timeout=30) == "unblocked"
        del ref
        assert freed.wait(10), "the call's argument outlived the call"
    finally:
        gc.enable()


def test_busy_loops_that_keep_moving_are_not_reported(loop_kind, warnings_about):
    watched(loop_kind)
    actor = Blocker.remote()
    captured = warnings_about("has been blocked")
    # Many short calls, for several thresholds: the loop is never inside one for long.
    deadline = time.monotonic() + 4 * THRESHOLD
    while time.monotonic() < deadline:
        ray.get([actor.short.remote() for _ in range(20)], timeout=30)
    assert not captured.records


def test_the_watchdog_can_be_turned_off(loop_kind):
    watched(loop_kind, threshold=None)
    assert not [t for t in threading.enumerate() if t.name == "pyactors:watchdog"]
    watched(loop_kind)
    assert [t for t in threading.enumerate() if t.name == "pyactors:watchdog"]


@ray.remote
class Stuck:
    def stuck(self, started, release):
        started.set()
        release.wait(60)


def test_kill_names_a_stuck_actor_and_does_not_wait_for_it(loop_kind, warnings_about):
    captured = warnings_about("did not wait for")
    release = threading.Event()
    actors = [Stuck.remote() for _ in range(3)]
    for actor in actors:
        started = threading.Event()
        actor.stuck.remote(started, release)
        assert started.wait(30)
    start = time.monotonic()
    for actor in actors:
        ray.kill(actor)
    # Before: kill() waited 2 s for each stuck actor (6 s here) and said nothing.
    assert time.monotonic() - start < 2.0
    reports = [m for m in captured.records if "did not wait for" in m]
    assert len(reports) == 3
    for actor, report in zip(actors, reports, strict=True):
        assert actor._pyactors_core.actor_id in report
        assert "Stuck.stuck()" in report and re.search(r"for \d+\.\d s", report), report
    ray.shutdown()  # names nothing again: each stuck thread is named once
    assert len([m for m in captured.records if "did not wait for" in m]) == 3
    release.set()
    for actor in actors:
        assert actor._pyactors_core.join(30)


def test_exit_with_a_threaded_actor_stuck_in_user_code(loop_kind):
    """Exit does not wait for a thread stuck in a method (a silent wait would look like a
    hang): the stuck call is named on stderr, and the process exits."""
    result = run_python(
        """
        import sys, threading
        import pyactors as ray

        @ray.remote
        class Stuck:
            def stuck(self, started):
                started.set()
                threading.Event().wait()

        ray.init(loop=sys.argv[1])
        started = threading.Event()
        Stuck.remote().stuck.remote(started)
        assert started.wait(10)
    """,
        loop_kind,
        timeout=30,
    )
    assert_clean_exit(result)
    assert (
        "pyactors.shutdown() did not wait for concurrency group 'default' of actor Stuck("
        in result.stderr
    )
    assert "Stuck.stuck()" in result.stderr
