"""The floor: what a competent engineer would hand-write instead of pyactors.

One event loop on a thread of its own, fed by ``call_soon_threadsafe``; every call runs
``noop()`` as a task and hands its result back through a ``concurrent.futures.Future`` set from
the task's done callback. It admits at most ``limit`` calls at once and queues the rest, which is
as much semantics as pyactors' default concurrency group of an async actor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
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


class FloorActor:
    """An async "actor" with one method, ``noop``, callable from any thread."""

    def __init__(self, loop_kind: str = "uvloop", limit: int = DEFAULT_LIMIT):
        self._loop = new_event_loop(loop_kind)
        self._limit = limit
        # Admission state is touched only on the loop thread, so it needs no lock.
        self._in_flight = 0
        self._waiting: deque[concurrent.futures.Future] = deque()
        self._thread = threading.Thread(target=self._run, name=f"floor:{loop_kind}")
        self._thread.start()

    def call_noop(self) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._submit, fut)
        return fut

    def close(self) -> None:
        """Stop the loop and join its thread. Calls still in flight are abandoned."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _submit(self, fut: concurrent.futures.Future) -> None:
        self._waiting.append(fut)
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self._in_flight < self._limit:
            fut = self._waiting.popleft()
            self._in_flight += 1
            task = self._loop.create_task(noop())
            task.add_done_callback(partial(self._finish, fut))

    def _finish(self, fut: concurrent.futures.Future, task: asyncio.Task) -> None:
        self._in_flight -= 1
        exc = task.exception()
        if exc is None:
            fut.set_result(task.result())
        else:
            fut.set_exception(exc)
        self._admit()
