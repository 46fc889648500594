"""The floor: what a competent engineer would hand-write instead of pyactors.

Per concurrency group, one event loop on a thread of its own (started by the group's first
call), fed by ``call_soon_threadsafe``; every call runs its coroutine as a task on that loop.
Each group admits at most ``limit`` calls at once and queues the rest in a deque: an in-flight
counter and the deque are touched only on the group's own loop thread, so they need no lock.
That is as much semantics as pyactors' concurrency groups of an async actor.

Results go back through a ``concurrent.futures.Future`` for plain (non-loop) callers, set from
the task's done callback, or through a future of the caller's own event loop for async callers,
set on that loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial

DEFAULT_LIMIT = 1000  # pyactors' default max_concurrency for async actors


def new_event_loop(loop_kind: str) -> asyncio.AbstractEventLoop:
    if loop_kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if loop_kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"loop_kind must be 'uvloop' or 'asyncio', got {loop_kind!r}")


async def noop() -> None:
    return None


def _settle(fut, task: asyncio.Task) -> None:
    """Hand the task's outcome to an asyncio or concurrent.futures future."""
    if task.cancelled():
        fut.cancel()
    elif (exc := task.exception()) is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(task.result())


def _copy_to_caller_loop(task: asyncio.Task, fut: asyncio.Future) -> None:
    """On the caller's loop: hand the task's outcome to the caller's future."""
    if not fut.done():  # done: the caller cancelled its await
        _settle(fut, task)


class FloorGroup:
    """One concurrency group: a loop thread of its own, at most ``limit`` calls running."""

    def __init__(self, loop_kind: str, limit: int, name: str):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._loop_kind = loop_kind
        self._limit = limit
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Loop-thread only:
        self._in_flight = 0
        self._waiting: deque[tuple] = deque()

    @property
    def started(self) -> bool:
        return self._loop is not None

    def submit(self, fn: Callable[..., Awaitable], args: tuple, fut) -> None:
        """Run ``fn(*args)`` on this group's loop; its outcome goes to ``fut`` (any thread)."""
        loop = self._loop
        if loop is None:
            loop = self._start()
        loop.call_soon_threadsafe(self._enqueue, fn, args, fut)

    def close(self) -> None:
        """Stop the loop and join its thread. Calls still in flight are abandoned."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = new_event_loop(self._loop_kind)
                self._thread = threading.Thread(
                    target=self._run,
                    args=(loop,),
                    daemon=True,
                    name=f"floor:{self._loop_kind}:{self._name}",
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _enqueue(self, fn: Callable[..., Awaitable], args: tuple, fut) -> None:
        self._waiting.append((fn, args, fut))
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self._in_flight < self._limit:
            fn, args, fut = self._waiting.popleft()
            self._in_flight += 1
            task = self._loop.create_task(fn(*args))
            task.add_done_callback(partial(self._finish, fut))

    def _finish(self, fut, task: asyncio.Task) -> None:
        self._in_flight -= 1
        if type(fut) is concurrent.futures.Future:
            _settle(fut, task)
        else:  # a future of the caller's event loop: only that loop may complete it
            fut.get_loop().call_soon_threadsafe(_copy_to_caller_loop, task, fut)
        if self._waiting:
            self._admit()


class FloorActor:
    """An async "actor": coroutine functions run in named groups, callable from any thread.

    ``concurrency_groups`` maps group names to limits; ``"default"`` gets ``max_concurrency``.
    """

    def __init__(
        self,
        loop_kind: str = "uvloop",
        max_concurrency: int = DEFAULT_LIMIT,
        concurrency_groups: dict[str, int] | None = None,
    ):
        self._groups = {"default": FloorGroup(loop_kind, max_concurrency, "default")}
        for name, limit in (concurrency_groups or {}).items():
            if name == "default":
                raise ValueError("'default' is the group of max_concurrency")
            self._groups[name] = FloorGroup(loop_kind, limit, name)
        self._default = self._groups["default"]

    def call(
        self, fn: Callable[..., Awaitable], *args, group: str = "default"
    ) -> concurrent.futures.Future:
        """From a plain thread: run ``fn(*args)`` in ``group``; a future of its result."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._groups[group].submit(fn, args, fut)
        return fut

    def call_async(
        self, fn: Callable[..., Awaitable], *args, group: str = "default"
    ) -> asyncio.Future:
        """From a coroutine: the same, with a future of the caller's running loop."""
        fut = asyncio.get_running_loop().create_future()
        self._groups[group].submit(fn, args, fut)
        return fut

    def call_noop(self) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._default.submit(noop, (), fut)
        return fut

    def close(self) -> None:
        """Stop every started group and join its thread."""
        for group in self._groups.values():
            group.close()

    @property
    def threads_started(self) -> int:
        return sum(group.started for group in self._groups.values())
