"""Actor classes and handles: the per-class and per-actor work of the public API.

Everything here runs when a class is decorated or an actor is created; a call goes from the
handle's attribute (a compiled RemoteMethod) straight into the core.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any, cast

from . import _core, _runtime
from ._coroutines import awaits, uses_event_loop
from ._generators import DYNAMIC, STREAMING, Generator, is_generator
from ._lifecycle import Lifecycle
from ._options import (
    ACTOR_CREATION_OPTIONS,
    ASYNC_DEFAULT_MAX_CONCURRENCY,
    DEFAULT_GROUP,
    IGNORED_TASK_OPTIONS,
    THREADED_DEFAULT_MAX_CONCURRENCY,
    actor_options,
    group_name,
    positive_int,
    require_bool,
)
from ._options import (
    num_returns as checked_num_returns,
)
from .exceptions import ActorNameTakenError, _actor_died_error

_GROUP_ATTR = "__pyactors_concurrency_group__"
_BLOCKING_ATTR = "__pyactors_blocking__"
_NUM_RETURNS_ATTR = "__pyactors_num_returns__"
_BACKPRESSURE_ATTR = "__pyactors_backpressure__"
_RESERVED_PREFIX = "_pyactors_"


def method(
    *args,
    concurrency_group: str | None = None,
    num_returns: int | str | None = None,
    blocking: bool = False,
    _generator_backpressure_num_objects: int | None = None,
    **options,
):
    """Declare options of one actor method: ``@method(concurrency_group="io")``.

    ``num_returns``: how many refs a call returns (an int), or for a generator method
    ``"streaming"`` (the default: an ObjectRefGenerator) or ``"dynamic"``.
    ``blocking=True`` (pyactors only) on a plain ``def`` method of an async actor runs it on a
    worker thread of its group instead of on the group's event loop, so that blocking code
    does not stall the loop. It still takes one of the group's slots while it runs.
    """
    unknown = set(options) - IGNORED_TASK_OPTIONS
    if unknown:
        raise TypeError(
            f"method() got unsupported option(s) {sorted(unknown)}; supported: "
            f"concurrency_group, num_returns, blocking, "
            f"_generator_backpressure_num_objects"
        )
    if num_returns not in (None, STREAMING, DYNAMIC):
        checked_num_returns(num_returns, "method")
    if _generator_backpressure_num_objects is not None:
        positive_int(
            _generator_backpressure_num_objects, "method(_generator_backpressure_num_objects=...)"
        )
    if concurrency_group is not None:
        group_name(concurrency_group, "method(concurrency_group=...)")

    require_bool(blocking, "method(blocking=...)")

    def decorate(func):
        target = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
        if not callable(target):
            raise TypeError(f"@method decorates a method, got {type(func).__name__} {func!r}")
        if blocking and inspect.iscoroutinefunction(target):
            raise ValueError(
                f"@method(blocking=True) on async def {target.__qualname__}: "
                f"blocking=True is for plain def methods; an async def method "
                f"already runs on the loop without blocking it"
            )
        if concurrency_group is not None:
            setattr(target, _GROUP_ATTR, concurrency_group)
        if blocking:
            setattr(target, _BLOCKING_ATTR, True)
        if num_returns is not None:
            if num_returns in (STREAMING, DYNAMIC) and not is_generator(target):
                raise ValueError(
                    f"@method(num_returns={num_returns!r}) on "
                    f"{target.__qualname__}: only a generator method (one that "
                    f"yields) returns a stream of refs"
                )
            setattr(target, _NUM_RETURNS_ATTR, num_returns)
        if _generator_backpressure_num_objects is not None:
            setattr(target, _BACKPRESSURE_ATTR, _generator_backpressure_num_objects)
        return func

    if args:
        if len(args) == 1 and callable(args[0]) and concurrency_group is None:
            return decorate(args[0])  # bare @method
        got = f"{type(args[0]).__name__} {args[0]!r}" if len(args) == 1 else repr(args)
        raise TypeError(
            f"method() takes only keyword options: @method(concurrency_group=...); got {got}"
        )
    return decorate


class _MethodSpec:
    __slots__ = (
        "awaits",
        "backpressure",
        "blocking",
        "generator",
        "group",
        "is_async",
        "name",
        "num_returns",
    )

    def __init__(self, func):
        self.name = func.__name__
        self.generator = is_generator(func)
        # An async generator makes its actor async, as an async def does.
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        self.awaits = awaits(func)
        self.group = getattr(func, _GROUP_ATTR, None)
        self.blocking = getattr(func, _BLOCKING_ATTR, False)
        self.num_returns = getattr(func, _NUM_RETURNS_ATTR, STREAMING if self.generator else 1)
        self.backpressure = getattr(func, _BACKPRESSURE_ATTR, -1)


def _method_specs(cls: type) -> dict[str, _MethodSpec]:
    specs = {}
    for name in dir(cls):
        if (name.startswith("__") and name.endswith("__")) or name.startswith(_RESERVED_PREFIX):
            continue
        attr = inspect.getattr_static(cls, name)
        func = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        if not inspect.isfunction(func):
            continue
        specs[name] = _MethodSpec(func)
    return specs


class ActorClass:
    """A class decorated with ``@remote``: ``Cls.remote(...)`` creates an actor."""

    __qualname__: str  # the class's, set by __init__ (as are __module__, __name__, __doc__)

    def __init__(self, cls: type, options: dict):
        self._cls = cls
        self._options = options
        self._methods = _method_specs(cls)
        self._is_async = any(spec.is_async for spec in self._methods.values())
        # Computed once: inspect.signature() costs ~0.3 ms for a class without __init__.
        self._signature: inspect.Signature | None
        try:
            self._signature = inspect.signature(cls)
        except (TypeError, ValueError):  # no retrievable signature: let __init__ check
            self._signature = None
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(self, attr, getattr(cls, attr, None))

    def __call__(self, *args, **kwargs):
        name = self._cls.__name__
        raise TypeError(
            f"actor class {name} cannot be instantiated directly: use "
            f"{name}.remote(...) to create an actor and get its handle"
        )

    def remote(self, *args, **kwargs) -> ActorHandle:
        """Create the actor; ``__init__(*args, **kwargs)`` runs on its default group."""
        return _create_actor(self, self._options, args, kwargs)

    def options(self, **options) -> _ActorClassWithOptions:
        """Creation options for the next ``.remote()``: ``max_concurrency``,
        ``concurrency_groups`` (replaces the decorator's), ``name``."""
        return _with_options(self, self._options, options)

    def __repr__(self):
        return f"<ActorClass {self._cls.__module__}.{self._cls.__qualname__}>"

    # How a class reaches a worker process (cloudpickle): by reference when its module has it
    # under its name, else by value (from __main__, a notebook, a function). State after the
    # object, so that methods whose globals name the class meet it in the pickle's memo.
    def __reduce__(self):
        if by_reference(self):
            return self.__qualname__
        return object.__new__, (ActorClass,), (self._cls, self._options)

    def __setstate__(self, state: tuple) -> None:
        ActorClass.__init__(self, *state)


def by_reference(obj) -> bool:
    """Whether pickle can name `obj` (an ActorClass or RemoteFunction) by module and name."""
    return named(obj) is obj


def named(obj):
    """What an importable module (not __main__) holds under `obj`'s module and qualified
    name, or None."""
    module_name = getattr(obj, "__module__", None)
    module = sys.modules.get(module_name or "")
    if module is None or module_name == "__main__":
        return None
    found: Any = module
    for part in getattr(obj, "__qualname__", "").split("."):
        found = getattr(found, part, None)
    return found


class _ActorClassWithOptions:
    __slots__ = ("_actor_class", "_options")

    def __init__(self, actor_class: ActorClass, options: dict):
        self._actor_class, self._options = actor_class, options

    def remote(self, *args, **kwargs) -> ActorHandle:
        return _create_actor(self._actor_class, self._options, args, kwargs)

    def options(self, **options) -> _ActorClassWithOptions:
        return _with_options(self._actor_class, self._options, options)

    def get_or_create(self, *args, **kwargs) -> ActorHandle:
        """The actor of this name if it exists (the arguments are then ignored), else a new
        one created with them: Ray's ``Cls.options(name=...).get_or_create(...)``."""
        if "name" not in self._options:
            raise ValueError(
                "get_or_create() needs a name: Cls.options(name=...).get_or_create(...)"
            )
        return _create_actor(
            self._actor_class, {**self._options, "get_if_exists": True}, args, kwargs
        )


def _with_options(actor_class: ActorClass, base: dict, options: dict) -> _ActorClassWithOptions:
    where = f"{actor_class._cls.__name__}.options()"
    merged = {**base, **actor_options(options, ACTOR_CREATION_OPTIONS, where)}
    _check_method_groups(actor_class, merged)
    return _ActorClassWithOptions(actor_class, merged)


def _check_method_groups(actor_class: ActorClass, options: dict) -> None:
    defined = {DEFAULT_GROUP, *options.get("concurrency_groups", {})}
    for spec in actor_class._methods.values():
        if spec.group is not None and spec.group not in defined:
            raise ValueError(
                f"{actor_class._cls.__name__}.{spec.name} is declared with "
                f"@method(concurrency_group={spec.group!r}), but the actor defines the groups "
                f"{sorted(defined)}; add {spec.group!r} to concurrency_groups="
            )


def _allocate(cls: type, args: tuple, kwargs: dict) -> Any:
    # The instance exists before __init__ runs (on the actor's default group), so that the
    # handle can hold bound methods from the start.
    new: object = cls.__new__  # as an object: mypy holds the two __new__ types apart
    if new is object.__new__:
        return object.__new__(cls)
    return cls.__new__(cls, *args, **kwargs)


def _create_actor(actor_class: ActorClass, options: dict, args: tuple, kwargs: dict):
    cls = actor_class._cls
    _check_method_groups(actor_class, options)
    runtime = _runtime.current()
    name = options.get("name")
    if options.get("get_if_exists") and runtime.backend == "local" and name is not None:
        existing = runtime.named(name)
        if existing is not None:
            return existing
    if actor_class._signature is not None:
        try:
            actor_class._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}.remote(): {exc}") from None
    if runtime.backend == "ray":
        return runtime.create_actor(actor_class, options, args, kwargs)
    if options.get("process", runtime.process):
        from ._process.actors import assemble  # cloudpickle only for those who use it
    else:
        assemble = _assemble
    core, start = assemble(actor_class, options, runtime, args, kwargs)
    handle = core.handle_factory()
    try:
        runtime.register(core, name, handle)
    except ActorNameTakenError:
        core.die(_actor_died_error(core, "its name was taken", None))
        # Lost a race with another creator of that name (the name is taken: it has one).
        if options.get("get_if_exists") and name is not None:
            return runtime.named(name)
        raise
    start()
    return handle


def group_limits(actor_class: ActorClass, options: dict) -> dict[str, int]:
    """Every concurrency group of the actor, the default one first, with its limit."""
    default = options.get("max_concurrency") or (
        ASYNC_DEFAULT_MAX_CONCURRENCY if actor_class._is_async else THREADED_DEFAULT_MAX_CONCURRENCY
    )
    return {DEFAULT_GROUP: default, **options.get("concurrency_groups", {})}


def _assemble(
    actor_class: ActorClass,
    options: dict,
    runtime,
    args: tuple,
    kwargs: dict,
    actor_id: str | None = None,
):
    """An in-process actor, not started: its core, and what starts it (runs __init__ and
    returns the ref of that)."""
    cls = actor_class._cls
    is_async = actor_class._is_async
    loop_factory = runtime.loop_factory if is_async else None
    instance = _allocate(cls, args, kwargs)
    core = _core.ActorCore(
        cls.__name__,
        actor_id or os.urandom(8).hex(),
        None,
        options.get("max_pending_calls", 0),
        lambda: ActorHandle(core, _bind_methods(core, bound)),
        runtime.reaper,
        options.get("max_restarts", 0),
        options.get("max_task_retries", 0),
    )
    core.lifecycle = Lifecycle(instance)
    for group, limit in group_limits(actor_class, options).items():
        core.add_group(group, limit, loop_factory)
    bound = [
        (name, getattr(instance, name), spec, is_async)
        for name, spec in actor_class._methods.items()
    ]

    def start():
        # The class's own __init__, read off the class on purpose (mypy: "unsound").
        if cls.__init__ is object.__init__:  # type: ignore[misc]
            core.mark_ready()  # nothing to run: no thread starts until the first call
            return None
        return core.start(
            instance.__init__,
            args,
            kwargs,
            is_async and uses_event_loop(cls.__init__),  # type: ignore[misc]  # as above
        )

    return core, start


def _bind_methods(core: _core.ActorCore, bound: list) -> dict[str, _core.RemoteMethod]:
    # Each handle gets method objects of its own: the actor counts them as users, so a
    # method kept after its handle was dropped (`Cls.remote().m.remote()`) keeps it alive.
    methods = {
        name: _remote_method(core, name, func, spec, is_async)
        for name, func, spec, is_async in bound
    }
    # Ray's graceful exit queued behind the calls submitted before it.
    methods["__ray_terminate__"] = _core.RemoteMethod(
        core.terminate, f"{core.class_name}.__ray_terminate__", core.default_group, False
    )
    return methods


def _remote_method(
    core: _core.ActorCore, name: str, func, spec: _MethodSpec, is_async: bool
) -> _core.RemoteMethod:
    qualified = f"{core.class_name}.{name}"
    group = core.group(spec.group or DEFAULT_GROUP)
    blocking = spec.blocking and is_async
    if spec.generator:
        return Generator(func, on_loop=is_async and not blocking).method(
            qualified, group, None, blocking, spec.num_returns, spec.backpressure
        )
    # An int: "streaming" and "dynamic" are for generators (above), as _MethodSpec checked.
    num_returns = cast(int, spec.num_returns)
    return _core.RemoteMethod(
        func, qualified, group, spec.is_async, None, blocking, spec.awaits, num_returns
    )


class ActorHandle:
    """A handle to an actor: ``handle.method.remote(...)`` submits a call.

    Handles can be passed to other actors and remote functions; handles to the same actor
    compare equal.
    """

    def __init__(self, core: _core.ActorCore, methods: dict[str, _core.RemoteMethod]):
        # Methods are plain instance attributes: `handle.method` costs one dict lookup.
        self.__dict__.update(methods)
        self._pyactors_core = core
        self._pyactors_methods = tuple(methods)
        # An actor exits once nothing references it and its calls are done.
        core.acquire()

    def __del__(self):
        # Not weakref.finalize: its registry would keep the actor alive, and with it any
        # garbage cycle through the actor (e.g. its death error's traceback -> a frame -> this
        # handle) could never be collected.
        core = self.__dict__.get("_pyactors_core")
        if core is not None:
            core.release()

    def __getattr__(self, name: str):
        # Only reached for names that are not methods.
        if name.startswith(_RESERVED_PREFIX):
            raise AttributeError(name)
        raise AttributeError(
            f"actor {self._pyactors_core.class_name} has no method {name!r}; its methods are "
            f"{sorted(self._pyactors_methods)}"
        )

    # A handle refers to a live actor of this process: a copy is the same reference (the
    # actor's use count stays right), and a pickle could only point at nothing.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError(
            f"{self!r} cannot be pickled: its actor lives in this process, and a handle is only "
            f"meaningful here. Pass the handle itself to actors, remote functions and threads "
            f"(it is shared, not copied)"
        )

    def __eq__(self, other):
        if not isinstance(other, ActorHandle):
            return NotImplemented
        return self._pyactors_core is other._pyactors_core

    def __hash__(self):
        return hash(self._pyactors_core.actor_id)

    def __repr__(self):
        core = self._pyactors_core
        return f"Actor({core.class_name}, {core.actor_id})"
