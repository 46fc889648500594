"""Synchronisation helpers for tests: events that work across threads and event loops, so
tests wait for what they need instead of sleeping."""

import asyncio
import threading


class LoopGate:
    """An asyncio.Event of one loop that any thread can open.

    Create it on the loop thread (in a method of an async actor: __init__ runs before the
    loop starts); await `wait()` there; call `open()` from anywhere.
    """

    def __init__(self):
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    async def wait(self):
        await self._event.wait()

    def open(self):
        self._loop.call_soon_threadsafe(self._event.set)


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
    the gate then stays open. Both run on the default group's loop."""

    _gate = None

    def _loop_gate(self):
        if self._gate is None:
            self._gate = LoopGate()
        return self._gate

    async def wait(self, value=None):
        await self._loop_gate().wait()
        return value

    def open(self):
        self._loop_gate().open()
