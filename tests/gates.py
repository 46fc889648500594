"""Synchronisation helpers for tests: events that work across threads and event loops, so
tests wait for what they need instead of sleeping."""

import asyncio
import contextlib
import threading


class Gate:
    """A one-shot gate that any thread opens, and that threads and any number of event loops
    wait on: `wait_blocking()` from a thread, `await wait()` on a loop. It may be opened
    before or after anyone waits; it then stays open. `open(fail=True)` tells the waiters to
    fail (both waits return the flag)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._opened = threading.Event()
        self._wakers = []
        self.fail = False

    def open(self, fail=False):
        with self._lock:
            if self._opened.is_set():
                return
            self.fail = fail
            self._opened.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            with contextlib.suppress(RuntimeError):  # its loop closed: its actor was killed
                wake()

    @property
    def is_open(self):
        return self._opened.is_set()

    def wait_blocking(self, timeout=90.0):
        # Bounded so that a broken test cannot hang a worker thread forever.
        if not self._opened.wait(timeout):
            raise AssertionError("gate never opened")
        return self.fail

    async def wait(self):
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            closed = not self._opened.is_set()
            if closed:
                self._wakers.append(lambda: loop.call_soon_threadsafe(event.set))
        if closed:
            await event.wait()
        return self.fail


class Countdown:
    """A threading.Event that is set once `count()` has been called `n` times."""

    def __init__(self, n):
        self._lock = threading.Lock()
        self._left = n
        self.done = threading.Event()
        if n <= 0:
            self.done.set()

    def count(self):
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def wait(self, timeout=10.0):
        assert self.done.wait(timeout), "countdown did not reach zero in time"


class Gated:
    """Actor mixin (async actors): wait() calls finish once open() is called, from anywhere;
    the gate then stays open."""

    _gate = None

    def _the_gate(self):
        # Made by the actor's first call: an instance created in another process (a process
        # actor's, unpickled there) gets its own.
        if self._gate is None:
            self._gate = Gate()
        return self._gate

    async def wait(self, value=None):
        await self._the_gate().wait()
        return value

    def open(self):
        self._the_gate().open()
