"""The runtime of ``init(backend="ray")``: Ray runs every actor and remote function.

pyactors' checks run first (at decoration, ``.options()`` and ``.remote()``, as on the
in-process runtime); then the call is Ray's: the handles and refs users get are Ray's own, so
``await ref``, passing them to other actors and tasks, and Ray's own API all work on them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from typing import Any, ClassVar, Literal

import ray
import ray.util

from .. import exceptions
from .._actor import _GROUP_ATTR, _NUM_RETURNS_ATTR, ActorClass
from .._control import no_actor_named
from .._runtime import BACKEND_ENV
from .._warn import warn
from . import errors

# pyactors-only options, meaningless on Ray: every actor and task is in a process of its own.
_NOT_FOR_RAY = frozenset({"process"})


def _for_ray(options: dict) -> dict:
    return {key: value for key, value in options.items() if key not in _NOT_FOR_RAY}


class RayRuntime:
    """State of one ``init(backend="ray")`` ... ``shutdown()`` span."""

    backend: ClassVar[Literal["ray"]] = "ray"

    def __init__(self, address: str | None, num_cpus: int | None, ray_options: dict):
        errors.adopt(ray.exceptions)
        self._lock = threading.Lock()
        self._actor_classes: dict[tuple, Any] = {}  # Ray actor classes
        self._functions: dict[tuple, tuple] = {}
        # Connected to a Ray already running in this process (a worker, or a driver that
        # called ray.init() itself): not ours to shut down.
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            options = dict(ray_options)
            if num_cpus is not None:
                options["num_cpus"] = num_cpus
            job_config = options.get("job_config")
            if job_config is not None and "runtime_env" not in options:
                job_config.set_runtime_env(_with_backend(job_config.runtime_env))
            else:
                options["runtime_env"] = _with_backend(options.get("runtime_env"))
            ray.init(address=address, **options)
        else:
            _warn_if_joined_unprepared(address, num_cpus, ray_options)

    # --- actors -----------------------------------------------------------------------------

    def create_actor(self, actor_class: ActorClass, options: dict, args: tuple, kwargs: dict):
        options = _for_ray(options)
        # Ray takes concurrency groups only where the class becomes an actor class (ours also
        # in .options()): one Ray actor class per set of groups.
        groups = options.pop("concurrency_groups", None) or {}
        key = (actor_class, tuple(sorted(groups.items())))
        ray_class = self._actor_classes.get(key)
        if ray_class is None:
            with self._lock:
                ray_class = self._actor_classes.get(key)
                if ray_class is None:
                    cls = _declare_methods(actor_class)
                    ray_class = (
                        ray.remote(concurrency_groups=groups)(cls) if groups else ray.remote(cls)
                    )
                    self._actor_classes[key] = ray_class
        try:
            return ray_class.options(**options).remote(*args, **kwargs)
        except ValueError as exc:  # Ray's ActorAlreadyExistsError: said as pyactors says it
            if not isinstance(exc, exceptions.ActorNameTakenError):
                raise
            raise exceptions.ActorNameTakenError(
                f"an actor named {options.get('name')!r} already exists; choose another name, "
                f"or use .options(name=..., get_if_exists=True) to get it"
            ) from exc

    def get_actor(self, name: str, namespace: str | None):
        try:
            return ray.get_actor(name, namespace=namespace)
        except ValueError:
            if namespace is None:
                names = ray.util.list_named_actors()
            else:
                names = [
                    actor["name"]
                    for actor in ray.util.list_named_actors(all_namespaces=True)
                    if actor["namespace"] == namespace
                ]
            raise no_actor_named(name, sorted(names)) from None

    # --- remote functions -------------------------------------------------------------------

    def function_target(self, pool, call_options: dict | None):
        """What submits one call of a remote function (pool: its _Pool; call_options: what
        its .options() gave): Ray's ``.remote``."""
        # One Ray function per @remote: two of the same function may declare other options
        # (the key's dict is the decoration's own, kept alive by the value)
        key = (pool.function, id(pool.declared))
        found = self._functions.get(key)
        if found is None:
            with self._lock:
                found = self._functions.get(key)
                if found is None:
                    declared = _for_ray(pool.declared)
                    function = _runnable_by_ray(pool.function)
                    found = (
                        (ray.remote(**declared)(function) if declared else ray.remote(function)),
                        pool.declared,
                    )
                    self._functions[key] = found
        ray_function = found[0]
        if call_options:
            return ray_function.options(**_for_ray(call_options)).remote
        return ray_function.remote

    # --- the rest of the API ----------------------------------------------------------------

    def put(self, value: object) -> Any:
        if isinstance(value, ray.ObjectRef):  # as the local backend says it
            raise TypeError("put() of an ObjectRef is not allowed: pass the ref itself")
        return ray.put(value)

    def runtime_context(self) -> Any:
        return ray.get_runtime_context()

    def stop(self) -> None:
        self._actor_classes.clear()
        self._functions.clear()
        if self.owns_ray:
            ray.shutdown()


def _with_backend(runtime_env) -> dict:
    # Set in every worker Ray starts for us, so that an actor or task that creates actors or
    # calls remote functions does it on Ray too (else the worker's pyactors would run them
    # in-process).
    runtime_env = dict(runtime_env or {})
    runtime_env["env_vars"] = {**(runtime_env.get("env_vars") or {}), BACKEND_ENV: "ray"}
    return runtime_env


def _warn_if_joined_unprepared(address, num_cpus, ray_options: dict) -> None:
    # Ray was up before init(): started by ray.init(), or by Ray's own auto-start (a call on
    # a handle kept from before a shutdown()). Its options stand; say what that means.
    ignored = sorted(
        {
            *ray_options,
            *(["address"] if address is not None else []),
            *(["num_cpus"] if num_cpus is not None else []),
        }
    )
    env_vars = (ray.get_runtime_context().runtime_env or {}).get("env_vars") or {}
    unprepared = env_vars.get(BACKEND_ENV) != "ray"
    if ignored or unprepared:
        warn(
            "init(backend='ray'): Ray was already running in this process, so pyactors "
            "joined it as it is"
            + (f"; ignored: {ignored}" if ignored else "")
            + (
                f"; its workers will run pyactors locally (its job's runtime_env lacks "
                f"env_vars {{{BACKEND_ENV!r}: 'ray'}}): let pyactors.init() start Ray, or "
                f"add that to ray.init()"
                if unprepared
                else ""
            )
        )


def _runnable_by_ray(function):
    """`function`, or for an ``async def`` or an async generator (which Ray refuses as tasks)
    a plain function or generator that runs it on an event loop of its own."""
    if inspect.iscoroutinefunction(function):

        def run(*args, **kwargs):
            return asyncio.run(function(*args, **kwargs))
    elif inspect.isasyncgenfunction(function):

        def run(*args, **kwargs):
            loop = asyncio.new_event_loop()  # (asyncio.Runner is 3.11+)
            values = function(*args, **kwargs)
            try:
                while True:
                    try:
                        yield loop.run_until_complete(values.__anext__())
                    except StopAsyncIteration:
                        return
            finally:
                loop.run_until_complete(values.aclose())
                loop.close()
    else:
        return function
    wrapper: Any = functools.update_wrapper(run, function)
    del wrapper.__wrapped__  # else Ray would see through it to the async function
    return wrapper


def _declare_methods(actor_class: ActorClass) -> type:
    """The class, its methods carrying what ``@pyactors.method`` declared in the attributes
    Ray's ``@ray.method`` sets (which Ray reads when the class becomes a Ray actor class)."""
    cls = actor_class._cls
    for name in actor_class._methods:
        attr = inspect.getattr_static(cls, name)
        func: Any = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        group = getattr(func, _GROUP_ATTR, None)
        if group is not None:
            func.__ray_concurrency_group__ = group
        num_returns = getattr(func, _NUM_RETURNS_ATTR, None)
        if num_returns is not None:
            func.__ray_num_returns__ = num_returns
    return cls
