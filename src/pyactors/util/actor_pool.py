"""ActorPool: Ray's ``ray.util.ActorPool``, a fixed set of actors that share a stream of work."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .. import _core
from .._actor import ActorHandle
from .._ray.objects import is_ray_ref, ray_handle
from ..exceptions import ActorDiedError, GetTimeoutError

V = TypeVar("V")
# Returns the ObjectRef of the call: pyactors' or (on the Ray backend) Ray's, so Any; it is checked.
Submit = Callable[[ActorHandle, V], Any]


class ActorPool:
    """Hands each value to an idle actor of the pool; an actor is busy until the ref of the
    call made for it completes.

    ``fn(actor, value)`` must call the actor and return the call's ObjectRef, e.g.
    ``lambda a, v: a.double.remote(v)``. Results come back in submission order (``map``,
    ``get_next``) or as they complete (``map_unordered``, ``get_next_unordered``).

    Not thread-safe, as Ray's: use a pool from one thread (or one event loop) at a time.
    """

    def __init__(self, actors: Iterable[ActorHandle]):
        self._idle: list[ActorHandle] = []
        for actor in actors:
            self._check_actor(actor, "ActorPool()")
            self._idle.append(actor)
        self._busy: dict[_core.ObjectRef, tuple[int, ActorHandle]] = {}  # ref -> (index, actor)
        self._by_index: dict[int, _core.ObjectRef] = {}
        self._backlog: collections.deque[tuple[Submit[Any], Any]] = collections.deque()
        self._next_index = 0  # index of the next submission
        self._next_ordered = 0  # index get_next() returns next

    # -- submitting ------------------------------------------------------------------------

    def submit(self, fn: Submit[V], value: V) -> None:
        """Run ``fn(actor, value)`` on an idle actor, or once one is free."""
        if not callable(fn):
            raise TypeError(
                f"ActorPool.submit() takes a function (actor, value) -> ObjectRef, "
                f"got {type(fn).__name__} {fn!r}"
            )
        if not self._idle:
            self._backlog.append((fn, value))
            return
        actor = self._idle.pop()
        ref = fn(actor, value)
        if not isinstance(ref, _core.ObjectRef) and not is_ray_ref(ref):
            self._idle.append(actor)
            raise TypeError(
                f"ActorPool: fn(actor, value) must return the ObjectRef of a call "
                f"on that actor (e.g. actor.method.remote(value)), got "
                f"{type(ref).__name__} {ref!r}"
            )
        self._busy[ref] = (self._next_index, actor)
        self._by_index[self._next_index] = ref
        self._next_index += 1

    def map(self, fn: Submit[V], values: Iterable[V]) -> Iterator[Any]:
        """Submit ``fn`` over every value; iterate the results in the order of ``values``.

        Results of earlier submissions not yet fetched are dropped first, as in Ray.
        """
        self._drop_pending()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next)

    def map_unordered(self, fn: Submit[V], values: Iterable[V]) -> Iterator[Any]:
        """Like ``map``, but results come as they complete."""
        self._drop_pending()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next_unordered)

    def _results(self, get_one: Callable[[], Any]) -> Iterator[Any]:
        while self.has_next():
            yield get_one()

    def _drop_pending(self) -> None:
        # Their actors go back to the pool at once; the calls themselves are not cancelled.
        while self._busy:
            ref = next(iter(self._busy))
            self._take(ref)
        self._backlog.clear()
        self._next_ordered = self._next_index

    # -- results ---------------------------------------------------------------------------

    def has_next(self) -> bool:
        """Whether some submitted result has not been returned yet."""
        return bool(self._busy)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order; blocks up to ``timeout`` seconds.

        Raises StopIteration when nothing is pending, GetTimeoutError (a TimeoutError) when
        the timeout passes first — with ``ignore_if_timedout=True`` that result is skipped
        (its actor goes back to the pool) before raising.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_ordered not in self._by_index:
            raise ValueError(
                "get_next() cannot follow get_next_unordered(): the result it "
                "would return was already returned out of order"
            )
        ref = self._by_index[self._next_ordered]
        if timeout is not None and not _core.wait([ref], timeout=timeout)[0]:
            if ignore_if_timedout:
                self._take(ref)
                self._next_ordered += 1
            raise GetTimeoutError(f"ActorPool.get_next() timed out after {timeout}s")
        self._next_ordered += 1
        return self._result(ref)

    def get_next_unordered(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """Whichever pending result completes first; blocks up to ``timeout`` seconds.

        Raises StopIteration when nothing is pending, GetTimeoutError on timeout (with
        ``ignore_if_timedout=True``, after dropping one pending result).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready, _ = _core.wait(list(self._busy), num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                self._take(next(iter(self._busy)))
            raise GetTimeoutError(f"ActorPool.get_next_unordered() timed out after {timeout}s")
        index = self._busy[ready[0]][0]
        self._next_ordered = max(self._next_ordered, index + 1)
        return self._result(ready[0])

    def _result(self, ref: _core.ObjectRef) -> Any:
        alive = True
        try:
            return _core.get(ref)
        except ActorDiedError:
            alive = False  # a dead actor never comes back to the pool
            raise
        finally:
            self._take(ref, alive)

    def _take(self, ref: _core.ObjectRef, alive: bool = True) -> None:
        index, actor = self._busy.pop(ref)
        del self._by_index[index]
        if alive:
            self._idle.append(actor)
        self._feed_backlog()

    def _feed_backlog(self) -> None:
        while self._backlog and self._idle:
            self.submit(*self._backlog.popleft())

    # -- the actors ------------------------------------------------------------------------

    def has_free(self) -> bool:
        """Whether an actor is idle and no submission waits for one."""
        return bool(self._idle) and not self._backlog

    def pop_idle(self) -> ActorHandle | None:
        """Take an idle actor out of the pool; None if none is free."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: ActorHandle) -> None:
        """Add an actor to the pool (it takes waiting submissions at once)."""
        self._check_actor(actor, "ActorPool.push()")
        if actor in self._idle or any(actor == busy for _, busy in self._busy.values()):
            raise ValueError(f"{actor!r} already belongs to this ActorPool")
        self._idle.append(actor)
        self._feed_backlog()

    @staticmethod
    def _check_actor(actor: Any, where: str) -> None:
        if not isinstance(actor, ActorHandle) and ray_handle(actor) is None:
            raise TypeError(
                f"{where} takes actor handles (Cls.remote()), got {type(actor).__name__} {actor!r}"
            )
