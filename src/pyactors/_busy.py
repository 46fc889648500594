"""What a group's thread is busy with, read from outside it: whether it is inside user code, and
which call that is. Used when threads are stopped (a thread in user code cannot be) and by the
watchdog of blocked event loops. Reads stacks (_core.current_frames()); nothing here runs per
call."""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import threading
import time
import types
import weakref
from collections.abc import Sequence
from typing import Any

from . import _core

# What a group runs, as running_calls() says: (name, seconds, thread ident, task or None).
Running = list[tuple[str, float, int, "asyncio.Task[Any] | None"]]

log = logging.getLogger("pyactors")

# Frames of these files are the machinery a group's thread runs in, not user code: the thread's
# bootstrap, asyncio's and uvloop's loops (uvloop is compiled, so it shows no frames), pyactors.
_MACHINERY_FILES = (
    os.path.dirname(asyncio.__file__),
    os.path.dirname(__file__),
    threading.__file__,
    selectors.__file__,
)


def _is_machinery(frame: types.FrameType) -> bool:
    return frame.f_code.co_filename.startswith(_MACHINERY_FILES)


def user_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """The outermost frame of user code on a stack (the method or coroutine the loop or
    worker called), or None when the thread runs only machinery (idle, or stopping)."""
    outermost = None
    while frame is not None:
        if not _is_machinery(frame):
            outermost = frame
        frame = frame.f_back
    return outermost


def where(frame: types.FrameType) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name}() at {code.co_filename}:{frame.f_lineno}"


def busy_with(
    group: _core.Group, ident: int | None, frame: types.FrameType, running: Running | None = None
) -> tuple[str, float | None]:
    """(what, seconds) the thread `ident` of `group` runs: the call in flight on it, found by
    its plain body's thread or, on an event loop, by the loop's current task; else the frame
    (seconds unknown). `running`: the group's running_calls(), if read earlier."""
    if running is None:
        running = group.running_calls()
    loop = getattr(group, "event_loop", None)
    task = asyncio.current_task(loop) if loop is not None else None
    for name, seconds, thread, call_task in running:
        if thread == ident or (task is not None and call_task is task):
            return f"{name}() ({where(frame)})", seconds
    return where(frame), None


def describe(group: _core.Group) -> str:
    core = group.actor
    if core.is_pool:
        return f"the remote-function pool ({group.name!r})"
    return f"concurrency group {group.name!r} of {core.description}"


# -- stopping threads -----------------------------------------------------------------------

# How long a thread found in user code is given to return before it counts as stuck.
USER_CODE_GRACE = 0.1


def running_now(cores: Sequence[_core.ActorCore]) -> dict[_core.Group, Running]:
    """What each group of `cores` runs, read before they die (dying empties the lists)."""
    return {group: group.running_calls() for core in cores for group in core.all_groups()}


# Threads already named as stuck: kill() and then shutdown() name each one once.
_reported: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def join_or_report(
    cores: Sequence[_core.ActorCore],
    timeout: float,
    who: str,
    running: dict[_core.Group, Running],
) -> None:
    """Stop the threads of `cores` (dead already) and wait for them, group by group, at most
    `timeout` seconds in all; a thread stuck in user code (which nothing can interrupt) is not
    waited for beyond a short grace but named once, with what it runs (from `running`, see
    running_now()) and for how long.

    Group by group: waking thousands of loop threads at once starves this one.
    """
    deadline = time.monotonic() + timeout
    current = threading.current_thread()
    processes = [
        group
        for core in cores
        for group in core.all_groups()
        if isinstance(group, _core.ProcessGroup)
    ]
    for process_group in processes:  # every worker terminated at once, then waited for
        process_group.stop_threads()
    for process_group in processes:
        process_group.join(max(0.0, deadline - time.monotonic()))
    for core in cores:
        for group in core.all_groups():
            if isinstance(group, _core.ProcessGroup):
                continue
            group.stop_threads()
            for thread in group.live_threads():
                if thread is current:
                    continue
                thread.join(max(0.0, min(USER_CODE_GRACE, deadline - time.monotonic())))
                while thread.is_alive():
                    ident = thread.ident  # None only before it started
                    frame = None if ident is None else _core.current_frames().get(ident)
                    user = user_frame(frame)
                    if user is not None or time.monotonic() >= deadline:
                        if thread not in _reported:
                            _reported.add(thread)
                            _report_stuck(who, group, thread, user, running.get(group, []))
                        break
                    thread.join(max(0.0, min(USER_CODE_GRACE, deadline - time.monotonic())))


def _report_stuck(
    who: str,
    group: _core.Group,
    thread: threading.Thread,
    frame: types.FrameType | None,
    running: Running,
) -> None:
    if frame is None:
        what, seconds = "its shutdown", None
    else:
        what, seconds = busy_with(group, thread.ident, frame, running)
    ran = "" if seconds is None else f" for {seconds:.1f} s"
    log.warning(
        "pyactors: %s did not wait for %s: thread %s is still running %s%s, and a running "
        "call cannot be interrupted. It goes on until it returns (a daemon thread: it does not "
        "keep the process from exiting).",
        who,
        describe(group),
        thread.name,
        what,
        ran,
    )
