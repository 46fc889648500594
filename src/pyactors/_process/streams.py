"""Generator calls across the process boundary. The worker runs the call as the same kind of
generator call of its own (see pyactors._generators) and sends back what it yields:

- streaming: one "item" message per value, as the body yields it (a thread of the worker
  iterates the worker's ObjectRefGenerator and forwards each ref's value), then the call's
  end as any call's. Here each item is pushed into the caller's Stream, so iteration,
  ``async for``, wait(), cancel and completed() are the in-process ones. With
  ``_generator_backpressure_num_objects=B`` the worker sends at most B items beyond what
  the consumer here has taken (it is told: "more"), and its own body waits as in one
  process; without it nothing waits, as in one process. A dropped generator is told too:
  the worker drops its own, so the body stops as it would here.
- num_returns="dynamic" and N: the values and the error that ended the body (Yielded),
  rebuilt here as what the in-process body returns.
"""

from __future__ import annotations

import threading

from .. import _core
from .._generators import DynamicObjectRefGenerator
from ..exceptions import TaskError
from . import wire
from .errors import decode_error

DROPPED = -1  # "more" with this count: the caller dropped the generator


class Incoming:
    """The caller's side of one streaming call: pushes what the worker sends into the
    Stream, and tells the worker what the consumer took."""

    __slots__ = (
        "acked",
        "call",
        "dropped",
        "failed",
        "group",
        "ident",
        "lock",
        "received",
        "stream",
        "worker",
    )

    def __init__(self, stream, group, call, ident: str, worker):
        self.stream = stream
        self.group = group
        self.call = call
        self.ident = ident
        self.worker = worker
        self.received = 0
        self.acked = 0  # the consumer's count the worker was last told
        self.dropped = False
        self.failed = False
        self.lock = threading.Lock()

    def receive(self, data: wire.Payload) -> None:
        """An item the worker sent (the hub's thread)."""
        if self.failed or self.dropped or self.call.done():
            # Nothing reads it: the stream failed here, was dropped, or its call ended here
            # first (a kill, a forced cancel) - its items end with that.
            self.worker.peer.discard(data)
            return
        stream = self.stream
        try:
            value = self.worker.peer.loads(data)
        except BaseException as exc:
            # The stream fails from this item on; the worker stops producing.
            self.failed = True
            self._tell(DROPPED)
            self.group.complete(
                self.call,
                False,
                TaskError(
                    f"{self.call!r}: item {self.received} could not be unpickled in this "
                    f"process ({type(exc).__name__}: {exc})"
                ),
            )
            return
        room = stream.push(value)
        self.received += 1
        if stream.abandoned:
            self._tell(DROPPED)
        elif room is not None:  # the consumer is `backpressure` behind: told once it takes
            _core.on_settled(room, self._room)
        elif stream.backpressure > 0 and self.received - self.acked >= stream.backpressure:
            # The worker may have run out of items to send: it learns what was taken since.
            self._tell(stream.consumed)

    def _room(self, _signal) -> None:
        if not self.stream.abandoned:  # the consumer took one (its thread)
            self._tell(self.stream.consumed)
            return
        # The generator's finalizer, which may run on a thread inside worker.send() (under
        # its lock): told from a thread of its own.
        threading.Thread(target=self._tell, args=(DROPPED,), name="pyactors:stream-drop").start()

    def _tell(self, consumed: int) -> None:
        with self.lock:
            if self.dropped or (consumed != DROPPED and consumed <= self.acked):
                return
            if consumed == DROPPED:
                self.dropped = True
            else:
                self.acked = consumed
        self.worker.send(("more", self.ident, consumed))


class Window:
    """The worker's side of one streaming call: how many items it may send."""

    __slots__ = ("allowed", "backpressure", "changed", "dropped")

    def __init__(self, backpressure: int):
        self.backpressure = backpressure
        self.allowed = backpressure if backpressure > 0 else None  # items it may send; None: all
        self.dropped = False
        self.changed = threading.Condition(threading.Lock())

    def more(self, consumed: int) -> None:
        with self.changed:
            if consumed == DROPPED:
                self.dropped = True
            elif self.allowed is not None:
                self.allowed = max(self.allowed, consumed + self.backpressure)
            self.changed.notify_all()

    def open_after(self, sent: int) -> bool:
        """Whether a backpressured stream may send more after `sent` items, as told so far."""
        allowed = self.allowed
        return allowed is not None and sent < allowed

    def wait_for_room(self, sent: int) -> bool:
        """Wait until item `sent` may go; False if the caller dropped the generator."""
        with self.changed:
            self.changed.wait_for(
                lambda: self.dropped or self.allowed is None or sent < self.allowed
            )
            return not self.dropped


class Yielded:
    """What a num_returns="dynamic" or N generator call of a worker yielded: its values and
    the error that ended it early (encoded, see errors.py), rebuilt here as the in-process
    body's result - a DynamicObjectRefGenerator, or the YieldedValues the call's outputs
    split."""

    __slots__ = ("dynamic", "error", "values")

    def __init__(self, values: list, error: tuple | None, dynamic: bool):
        self.values = values
        self.error = error
        self.dynamic = dynamic

    def __reduce__(self):
        return _rebuilt, (self.values, self.error, self.dynamic)


def _rebuilt(values: list, error_info: tuple | None, dynamic: bool):
    error = None if error_info is None else decode_error(error_info, None)
    if not dynamic:
        return _core.YieldedValues(values, error)
    refs = [_core.put(value) for value in values]
    if error is not None:
        refs.append(_core.failed_ref(error))
    return DynamicObjectRefGenerator(refs)
