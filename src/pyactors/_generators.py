"""Generator methods and remote functions (``def ... yield``, ``async def ... yield``): the
bodies that run them as calls, made once per method. Streaming (the default, Ray's
``num_returns="streaming"``): ``.remote()`` returns an ObjectRefGenerator whose refs come as the
body yields. ``num_returns="dynamic"``: one ref, whose value is a DynamicObjectRefGenerator of
every yielded value's ref. ``num_returns=N``: the N yielded values, as N refs."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from . import _core
from .exceptions import TaskCancelledError

STREAMING = "streaming"
DYNAMIC = "dynamic"


class DynamicObjectRefGenerator:
    """The refs of every value a generator call yielded (``num_returns="dynamic"``), once
    the call has ended: ``ray.get(ref)`` gives this, and iterating it gives the refs."""

    def __init__(self, refs: list):
        self._refs = refs

    def __iter__(self) -> Iterator[_core.ObjectRef]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self):
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"


def is_generator(func) -> bool:
    return inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)


def generator_call(body) -> tuple[Any, str] | None:
    """For the body of a generator call (a bound method of Generator, as the RemoteMethod
    holds it): what it runs (the Generator's func) and how its values return - "streaming",
    "dynamic", "single" (num_returns=1) or "collected" (num_returns=N). None for other calls.
    A worker process runs the call as the same kind of generator call of its own."""
    generator = getattr(body, "__self__", None)
    if type(generator) is not Generator:
        return None
    return generator.func, body.__name__.strip("_").removesuffix("_async")


class Generator:
    """How one generator method or function runs as a call.

    `func` is the bound method or function. On an event loop (an async actor, or an async
    generator) the body is a coroutine: a plain generator's steps run on the loop thread, and
    waiting for the consumer awaits. Elsewhere (a threaded actor, a plain remote function) the
    body is plain and waits by blocking its worker thread.
    """

    def __init__(self, func: Callable, on_loop: bool):
        self.func = func
        self.is_async_gen = inspect.isasyncgenfunction(func)
        self.on_loop = on_loop or self.is_async_gen

    def method(
        self,
        name: str,
        group,
        pool=None,
        blocking: bool = False,
        num_returns: Any = STREAMING,
        backpressure: int = -1,
    ) -> _core.RemoteMethod:
        """The RemoteMethod of this generator, for `num_returns`."""
        body, returns = self._body(num_returns)
        return _core.RemoteMethod(
            body, name, group, self.on_loop, pool, blocking, True, returns, self, backpressure
        )

    def options(
        self, method: _core.RemoteMethod, num_returns: Any, backpressure: Any, name: str
    ) -> _core.RemoteMethod:
        """RemoteMethod.options() of a generator: another body for another kind of result."""
        if num_returns is None:
            num_returns = STREAMING
        if backpressure is None:
            backpressure = -1
        elif (
            isinstance(backpressure, bool) or not isinstance(backpressure, int) or backpressure < 1
        ):
            raise (TypeError if not isinstance(backpressure, int) else ValueError)(
                f"{name}.options(_generator_backpressure_num_objects=...) must be an int >= 1, "
                f"got {type(backpressure).__name__} {backpressure!r}"
            )
        body, returns = self._body(num_returns, name)
        return method.with_body(body, self.on_loop, returns, backpressure)

    def _body(self, num_returns: Any, name: str = "method") -> tuple[Callable, int]:
        if num_returns == STREAMING:
            return (self._streaming_async if self.on_loop else self._streaming), _core.STREAMING
        if num_returns == DYNAMIC:
            return (self._dynamic_async if self.on_loop else self._dynamic), 1
        if num_returns == 1:  # the one value it yields
            return (self._single_async if self.on_loop else self._single), 1
        if isinstance(num_returns, bool) or not isinstance(num_returns, int) or num_returns < 0:
            raise ValueError(
                f"{name}: num_returns of a generator must be 'streaming' (the "
                f"default), 'dynamic', or an int >= 0 (that many yields), got "
                f"{num_returns!r}"
            )
        return (self._collected_async if self.on_loop else self._collected), num_returns

    # -- streaming: each value as it is yielded -------------------------------------------

    def _streaming(self, stream, *args, **kwargs) -> None:
        values = self.func(*args, **kwargs)
        try:
            for value in values:
                room = stream.push(value)
                if room is not None:
                    _core.get(room)
                if stream.abandoned:
                    return
                _stop_if_cancelled(stream)
        finally:
            values.close()

    async def _streaming_async(self, stream, *args, **kwargs) -> None:
        values = self.func(*args, **kwargs)
        try:
            async for value in _async_values(values):
                room = stream.push(value)
                if room is not None:
                    await room
                if stream.abandoned:
                    return
        finally:
            await _close(values)

    # -- dynamic: every value, when the body has ended ------------------------------------
    # As Ray documents: values yielded before an exception keep their refs, and the exception
    # is one more ref at the end.

    def _dynamic(self, *args, **kwargs) -> DynamicObjectRefGenerator:
        return _dynamic_refs(self._collected(*args, **kwargs))

    async def _dynamic_async(self, *args, **kwargs) -> DynamicObjectRefGenerator:
        return _dynamic_refs(await self._collected_async(*args, **kwargs))

    # -- num_returns=N: the yielded values, split as a returned sequence would be ---------
    # An exception after some values: those values keep their refs, the remaining refs raise
    # it (as Ray documents for static num_returns too).

    def _collected(self, *args, **kwargs) -> _core.YieldedValues:
        values = []
        try:
            # One at a time, not list(): on an error, the values yielded before it are delivered.
            for value in self.func(*args, **kwargs):
                values.append(value)  # noqa: PERF402
        except Exception as exc:
            return _core.YieldedValues(values, exc)
        return _core.YieldedValues(values, None)

    def _single(self, *args, **kwargs) -> Any:
        return _the_value(self._collected(*args, **kwargs))

    async def _single_async(self, *args, **kwargs) -> Any:
        return _the_value(await self._collected_async(*args, **kwargs))

    async def _collected_async(self, *args, **kwargs) -> _core.YieldedValues:
        values = []
        try:
            # One at a time, not a comprehension: on an error, the values before it are delivered.
            async for value in _async_values(self.func(*args, **kwargs)):
                values.append(value)  # noqa: PERF401
        except Exception as exc:
            return _core.YieldedValues(values, exc)
        return _core.YieldedValues(values, None)


def _the_value(yielded: _core.YieldedValues) -> Any:
    if yielded.error is not None:
        raise yielded.error
    if len(yielded.values) != 1:
        raise ValueError(
            f"the generator yielded {len(yielded.values)} values, but "
            f"num_returns=1: yield exactly one"
        )
    return yielded.values[0]


def _dynamic_refs(yielded: _core.YieldedValues) -> DynamicObjectRefGenerator:
    refs = [_core.put(value) for value in yielded.values]
    if yielded.error is not None:
        refs.append(_core.failed_ref(yielded.error))
    return DynamicObjectRefGenerator(refs)


def _stop_if_cancelled(stream) -> None:
    # A plain body cannot be interrupted: it stops between two values once cancel() asked.
    if stream.cancel_requested:
        raise TaskCancelledError("cancelled between two values it yielded")


async def _async_values(values):
    # An async generator's values; a plain generator's too, each step run on the loop thread,
    # which other calls of the group (and a cancel) get between two steps.
    if inspect.isasyncgen(values):
        async for value in values:
            yield value
    else:
        for value in values:
            yield value
            await asyncio.sleep(0)


async def _close(values) -> None:
    if inspect.isasyncgen(values):
        await values.aclose()
    else:
        values.close()
