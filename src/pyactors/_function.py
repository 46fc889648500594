"""Remote functions: ``@remote`` on a function. Calls run on the runtime's pool (plain
functions on worker threads, ``async def`` ones on an event loop)."""

from __future__ import annotations

import functools
import inspect

from . import _core, _runtime
from ._actor import by_reference
from ._coroutines import awaits
from ._generators import STREAMING, Generator, is_generator
from ._options import function_options, num_returns, positive_int, require_bool
from ._retries import retry_options, retrying


class RemoteFunction:
    """A function decorated with ``@remote``: ``f.remote(...)`` runs it and returns a ref."""

    __qualname__: str  # the function's, set by functools.update_wrapper in __init__

    def __init__(self, function, options: dict):
        where = f"remote({function.__qualname__})"
        function_options(options, where)
        self._function = function
        self._options = options
        # An async generator runs on the pool's event loop, as an async def does.
        self._is_async = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(
            function
        )
        process = options.get("process")
        if process is not None:
            require_bool(process, f"{where}: process")
        # The compiled method finds the pool of the current runtime itself, on the first call
        # and again after a shutdown(): `f.remote` stays a C call.
        if is_generator(function):
            self._method = Generator(function, on_loop=False).method(
                function.__qualname__,
                None,
                _Pool(function, options, self._is_async, process),
                num_returns=options.get("num_returns", STREAMING),
                backpressure=_backpressure(options, where),
            )
        else:
            if options.get("_generator_backpressure_num_objects") is not None:
                raise ValueError(
                    f"{where}: _generator_backpressure_num_objects is for "
                    f"generators (functions that yield)"
                )
            retry = retry_options(options, where)
            self._method = _core.RemoteMethod(
                function if retry is None else retrying(function, *retry),
                function.__qualname__,
                None,
                self._is_async,
                _Pool(function, options, self._is_async, process),
                awaits=awaits(function),
                num_returns=num_returns(options.get("num_returns", 1), where),
            )
        # Both stay C calls; options() accepts Ray's scheduling options (no effect here).
        self.remote = self._method.remote
        self.options = self._method.options
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        name = self._function.__qualname__
        raise TypeError(
            f"remote function {name} cannot be called directly: use "
            f"{name}.remote(...) to run it, and pyactors.get(ref) or `await ref` "
            f"for its result"
        )

    def __repr__(self):
        return f"<RemoteFunction {self._function.__module__}.{self._function.__qualname__}>"

    # As ActorClass's: by reference when importable, else by value (see _actor.py).
    def __reduce__(self):
        if by_reference(self):
            return self.__qualname__
        return object.__new__, (RemoteFunction,), (self._function, self._options)

    def __setstate__(self, state: tuple) -> None:
        RemoteFunction.__init__(self, *state)


class _Pool:
    """What runs a remote function's calls: in-process threads and loop, worker processes
    (`process`: True, False, or None for the runtime's default), or another backend (Ray),
    which also needs the function and its options as declared."""

    __slots__ = ("declared", "function", "is_async", "process")

    def __init__(
        self,
        function,
        declared: dict,
        is_async: bool,
        process: bool | None,
    ):
        self.function = function
        self.declared = declared
        self.is_async = is_async
        self.process = process

    def __call__(self, call_options: dict | None):
        """A group of this runtime, or (another backend, given the options of .options())
        what submits one call."""
        return _runtime.current().function_target(self, call_options)

    def with_process(self, process: bool) -> _Pool:
        return _Pool(self.function, self.declared, self.is_async, process)


def _backpressure(options: dict, where: str) -> int:
    value = options.get("_generator_backpressure_num_objects")
    if value is None:
        return -1
    return positive_int(value, f"{where}: _generator_backpressure_num_objects")
