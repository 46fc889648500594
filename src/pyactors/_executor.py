"""The default executor of every actor's event loop (``loop.run_in_executor(None, ...)``).

asyncio's own is a ThreadPoolExecutor: its threads are joined when the interpreter exits, and
the loop's shutdown waits for them, so one job stuck in user code held kill(), shutdown() and
exit for as long as it ran. This one runs jobs on daemon threads and is shut down without
waiting. (asyncio accepts only ThreadPoolExecutor instances as default executors: hence the
subclass, which uses none of its parent's machinery.)
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonThreadPool(concurrent.futures.ThreadPoolExecutor):
    def __init__(self, name: str):
        # The parent's state is never used: everything below replaces its machinery.
        self._max_workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's rule
        self._name = name
        # (future, fn, args, kwargs) of each job; None tells a thread to end.
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._daemons: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    "cannot schedule new futures after shutdown (the actor's "
                    "event loop has stopped)"
                )
            self._jobs.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._daemons) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, daemon=True, name=f"{self._name}:{len(self._daemons)}"
                )
                thread.start()
                self._daemons.append(thread)
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del job, future, fn, args, kwargs  # not kept while idle
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._daemons)
        if cancel_futures:
            try:
                while True:
                    job = self._jobs.get_nowait()
                    if job is not None:
                        job[0].cancel()
            except queue.Empty:
                pass
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()
