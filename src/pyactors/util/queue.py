"""Queue: Ray's ``ray.util.queue.Queue``, a FIFO queue held by an actor, so that any thread,
event loop, actor or remote function holding it can put and get."""

from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable
from typing import Any

from .. import _core
from .._actor import ActorHandle
from .._control import kill
from .._options import is_real
from .._remote import remote


class Empty(_stdlib_queue.Empty):
    """get(block=False) on an empty queue, or get() that timed out. Also a ``queue.Empty``."""


class Full(_stdlib_queue.Full):
    """put(block=False) on a full queue, or put() that timed out. Also a ``queue.Full``."""


class _QueueActor:
    # Results are (ok, value) pairs: the caller raises Empty or Full itself, so that nothing
    # travels wrapped in a TaskError.
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] | None = None

    def _q(self) -> asyncio.Queue[Any]:
        if self.queue is None:  # made on the actor's loop, by its first call
            self.queue = asyncio.Queue(self.maxsize)
        return self.queue

    async def qsize(self) -> int:
        return self._q().qsize()

    async def put(self, item: Any, timeout: float | None) -> bool:
        q = self._q()
        try:
            if timeout == 0:  # wait_for(..., 0) would give up before even trying
                q.put_nowait(item)
            else:
                await asyncio.wait_for(q.put(item), timeout)
        except (asyncio.QueueFull, asyncio.TimeoutError):
            return False
        return True

    async def get(self, timeout: float | None) -> tuple[bool, Any]:
        q = self._q()
        try:
            if timeout == 0:
                return True, q.get_nowait()
            return True, await asyncio.wait_for(q.get(), timeout)
        except (asyncio.QueueEmpty, asyncio.TimeoutError):
            return False, None

    async def put_nowait_batch(self, items: list[Any]) -> bool:
        q = self._q()
        if self.maxsize and q.qsize() + len(items) > self.maxsize:
            return False
        for item in items:
            q.put_nowait(item)
        return True

    async def get_nowait_batch(self, count: int) -> tuple[bool, list[Any]]:
        q = self._q()
        if count > q.qsize():
            return False, []
        return True, [q.get_nowait() for _ in range(count)]


_QueueActorClass = remote(_QueueActor)


class Queue:
    """A first-in, first-out queue that lives in an actor: ``put``/``get`` from plain threads,
    ``put_async``/``get_async`` from event loops, with ``block`` and ``timeout`` as
    ``queue.Queue`` has them.

    Args:
        maxsize: most items it holds; 0 (the default) means no limit.
        actor_options: options of the actor that holds it (``Cls.options(...)``).
    """

    def __init__(self, maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise (
                TypeError
                if not isinstance(maxsize, int) or isinstance(maxsize, bool)
                else ValueError
            )(
                f"Queue(maxsize=...) must be an int >= 0 (0: unbounded), "
                f"got {type(maxsize).__name__} {maxsize!r}"
            )
        if actor_options is not None and not isinstance(actor_options, dict):
            raise TypeError(
                f"Queue(actor_options=...) must be a dict of actor options, got "
                f"{type(actor_options).__name__} {actor_options!r}"
            )
        self.maxsize = maxsize
        self.actor = _QueueActorClass.options(**(actor_options or {})).remote(maxsize)
        self._pending: set[_core.ObjectRef] = set()  # operations shutdown() lets finish
        # Its refs are the backend's that holds the actor: ours, or Ray's
        self._done = _core.ObjectRef.done if isinstance(self.actor, ActorHandle) else _ray_done

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """How many items it holds."""
        size: int = _core.get(self._call("qsize"))
        return size

    qsize = size

    def empty(self) -> bool:
        return self.size() == 0

    def full(self) -> bool:
        return 0 < self.maxsize <= self.size()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add `item`; if the queue is full, wait for room (``block``) up to ``timeout``
        seconds. Raises Full when there is no room in time (at once without ``block``)."""
        if not _core.get(self._call("put", item, _wait_for(block, timeout, "put"))):
            raise Full(_no_room(self.maxsize))

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """``put``, awaited."""
        if not await self._call("put", item, _wait_for(block, timeout, "put_async")):
            raise Full(_no_room(self.maxsize))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the first item; if there is none, wait for one (``block``) up
        to ``timeout`` seconds. Raises Empty when none comes in time (at once without
        ``block``)."""
        ok, item = _core.get(self._call("get", _wait_for(block, timeout, "get")))
        if not ok:
            raise Empty("the queue is empty")
        return item

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """``get``, awaited."""
        ok, item = await self._call("get", _wait_for(block, timeout, "get_async"))
        if not ok:
            raise Empty("the queue is empty")
        return item

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all of `items` in order, or none of them: Full if they do not all fit."""
        if not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
            raise TypeError(
                f"put_nowait_batch() takes an iterable of items, got "
                f"{type(items).__name__} {items!r}"
            )
        items = list(items)
        if not _core.get(self._call("put_nowait_batch", items)):
            raise Full(f"cannot add {len(items)} items: {_no_room(self.maxsize)}")

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Remove and return the first `num_items` items, or none: Empty if it holds fewer."""
        if isinstance(num_items, bool) or not isinstance(num_items, int):
            raise TypeError(
                f"get_nowait_batch() takes an int number of items, got "
                f"{type(num_items).__name__} {num_items!r}"
            )
        if num_items < 0:
            raise ValueError(f"get_nowait_batch(): num_items must be >= 0, got {num_items}")
        ok: bool
        items: list[Any]
        ok, items = _core.get(self._call("get_nowait_batch", num_items))
        if not ok:
            raise Empty(f"cannot get {num_items} items: the queue holds fewer")
        return items

    def shutdown(self, force: bool = False, grace_period_s: float = 5) -> None:
        """End the queue's actor. Unless ``force``, operations already submitted get up to
        ``grace_period_s`` seconds to finish first; whatever is left fails with
        ActorDiedError."""
        if self.actor is None:
            return
        pending = [ref for ref in self._pending if not self._done(ref)]
        if not force and pending:
            _core.wait(pending, num_returns=len(pending), timeout=grace_period_s)
        kill(self.actor)
        self.actor = None
        self._pending.clear()

    def _call(self, method: str, *args: Any) -> _core.ObjectRef:
        if self.actor is None:
            raise RuntimeError("this Queue was shut down: make a new one")
        ref: _core.ObjectRef = getattr(self.actor, method).remote(*args)
        self._pending = {r for r in self._pending if not self._done(r)}
        self._pending.add(ref)
        return ref


def _ray_done(ref: Any) -> bool:
    return bool(_core.wait([ref], timeout=0)[0])


def _wait_for(block: Any, timeout: Any, what: str) -> float | None:
    """The timeout the actor waits for room or an item: 0 without ``block``."""
    if not block:
        return 0
    if timeout is not None:
        if not is_real(timeout):
            raise TypeError(
                f"{what}(timeout=...) must be None or a number of seconds, got "
                f"{type(timeout).__name__} {timeout!r}"
            )
        if not timeout >= 0:
            raise ValueError(f"{what}(timeout=...) must be a non-negative number, got {timeout!r}")
        return float(timeout)
    return None


def _no_room(maxsize: int) -> str:
    return f"the queue is full (maxsize={maxsize})"
