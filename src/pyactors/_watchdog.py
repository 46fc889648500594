"""The watchdog of blocked event loops: an event loop stuck in one call (``time.sleep`` or a CPU
loop in an ``async def``, blocking I/O) stalls every other call of its group, silently. A thread
of the runtime looks at each loop thread's stack a few times per threshold; a loop found in the
same user frame for longer than the threshold is named once on the ``pyactors`` logger (which
prints warnings to stderr unless logging is configured otherwise).

It reads stacks from outside: nothing runs per call.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

from . import _core
from ._busy import busy_with, describe, log, user_frame

DEFAULT_THRESHOLD = 1.0  # seconds: far above any healthy step of a loop, short enough to notice
CHECKS_PER_THRESHOLD = 4


class Watchdog:
    def __init__(self, threshold: float, groups: Callable[[], Iterable[_core.AsyncGroup]]) -> None:
        self.threshold = threshold
        self._groups = groups  # -> the groups that may have an event loop now
        # loop thread ident -> [user frame, first seen, reported]
        self._seen: dict[int, list[Any]] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyactors:watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopped.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        # A timed wait is the watchdog's clock, not synchronisation: stop() ends it at once.
        while not self._stopped.wait(self.threshold / CHECKS_PER_THRESHOLD):
            self.check()

    def check(self) -> None:
        frames = _core.current_frames()
        now = time.monotonic()
        seen = {}
        for group in self._groups():
            ident = group.loop_thread
            frame = user_frame(frames.get(ident)) if ident else None
            if frame is None:
                continue
            entry = self._seen.get(ident)
            if entry is None or entry[0] is not frame:
                entry = [frame, now, False]
            elif not entry[2] and now - entry[1] >= self.threshold:
                entry[2] = True
                self._report(group, ident, frame, now - entry[1])
            seen[ident] = entry
        self._seen = seen  # loops that moved on, or ended, are forgotten

    def _report(
        self, group: _core.AsyncGroup, ident: int, frame: types.FrameType, blocked: float
    ) -> None:
        what, _ = busy_with(group, ident, frame)
        log.warning(
            "pyactors: the event loop of %s has been blocked for %.1f s by %s; no other call "
            "of the group runs meanwhile. In an async def, await instead of blocking (or run "
            "blocking code in a plain def with @pyactors.method(blocking=True)). Threshold: "
            "init(blocked_loop_warning=%s).",
            describe(group),
            blocked,
            what,
            self.threshold,
        )
