"""The process-wide runtime: which event loop groups use, every live actor (so that
shutdown() can stop them all), the named-actor registry and the remote-function pool."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from . import _core
from ._busy import join_or_report, running_now
from ._options import IGNORED_INIT_OPTIONS, positive_int, positive_seconds, require_bool
from ._ray.objects import foreign_op, is_ray_ref
from ._warn import warn
from ._watchdog import DEFAULT_THRESHOLD as DEFAULT_BLOCKED_LOOP_WARNING
from ._watchdog import Watchdog
from .exceptions import ActorNameTakenError, _actor_died_error

if TYPE_CHECKING:
    from ._actor import ActorHandle
    from ._function import _Pool
    from ._process.hub import Hub
    from ._process.link import PoolLink
    from ._ray.runtime import RayRuntime

LOOP_CHOICES = ("auto", "uvloop", "asyncio")
# How long shutdown() waits for each group's threads (a call stuck in user code can outlast it;
# those threads are daemons and do not hold the interpreter open).
SHUTDOWN_JOIN_TIMEOUT = 10.0

_lock = threading.RLock()
_current: Runtime | RayRuntime | None = None
_stopping: list[
    Runtime | RayRuntime
] = []  # runtimes shutdown() is stopping (or was, if interrupted)
_forked_from_ray = False  # this process is a fork of one whose actors ran on Ray
_atexit_registered = False


def _loop_factory(loop: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    if not isinstance(loop, str):
        raise TypeError(
            f"init(loop=...) must be a str, one of "
            f"{', '.join(map(repr, LOOP_CHOICES))}; got {type(loop).__name__} {loop!r}"
        )
    if loop not in LOOP_CHOICES:
        raise ValueError(f"init(loop={loop!r}): choose one of {', '.join(map(repr, LOOP_CHOICES))}")
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise ImportError(
                    "init(loop='uvloop') needs uvloop: pip install uvloop, or use loop='asyncio'"
                ) from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


# Every async group's event loop holds file descriptors (uvloop 5, asyncio 3): 1,000 actors
# with three groups each outgrow the common default limit of 1,024, as Ray's workers do.
FD_SOFT_LIMIT_WANTED = 65536


def _raise_fd_limit() -> None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (
        FD_SOFT_LIMIT_WANTED if hard == resource.RLIM_INFINITY else min(hard, FD_SOFT_LIMIT_WANTED)
    )
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # Not allowed here: groups that cannot make a loop fail their actor clearly.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Runtime:
    """State of one init() ... shutdown() span (of the in-process backend)."""

    backend: ClassVar[Literal["local"]] = "local"

    def __init__(
        self,
        loop: str,
        num_cpus: int | None,
        blocked_loop_warning: float | None,
        process: bool = False,
    ) -> None:
        if blocked_loop_warning is not None:
            blocked_loop_warning = positive_seconds(
                blocked_loop_warning, "init(blocked_loop_warning=...)"
            )
        self.loop_name, self.loop_factory = _loop_factory(loop)
        self.process = process  # where actors and remote functions run unless they say
        self._hub: Hub | None = None  # the I/O thread of worker processes, started by the first one
        self._process_pool: _core.ActorCore | None = None
        self._pool_link: PoolLink | None = None  # the process pool's
        _raise_fd_limit()
        self.num_cpus = (
            positive_int(num_cpus, "num_cpus") if num_cpus is not None else os.cpu_count() or 1
        )
        # Weak: an actor stays here while anything can still reach it - a handle, a pending
        # ref, or one of its own threads (which shutdown() must stop and join).
        self._actors: weakref.WeakSet[_core.ActorCore] = weakref.WeakSet()
        self._names: dict[str, ActorHandle] = {}
        self.job_id = os.urandom(4).hex()
        self._registry_lock = threading.Lock()
        self._stopped = False
        self._cores_stopping: list[_core.ActorCore] = []  # the cores stop() stops
        # Actors that nothing references any more are handed over here by finalizers (which
        # may run anywhere, even inside the garbage collector): SimpleQueue.put is reentrant.
        self._unused: queue.SimpleQueue[_core.ActorCore | None] = queue.SimpleQueue()
        self.reaper = self._unused.put
        # Remote functions: plain ones on num_cpus worker threads (Ray runs as many tasks as
        # CPUs at once), async ones on one event loop.
        self.pool = _core.ActorCore("remote function", "pool", "the remote-function pool")
        self.pool.add_group("sync", self.num_cpus)
        # No limit for async ones: one waiting for another holds no thread, and a limit would
        # let parents that await their children starve them of slots.
        self.pool.add_group("async", sys.maxsize, self.loop_factory)
        self.pool.mark_ready()
        # Last: nothing after them can fail and leave their threads behind.
        self._reaper_thread = threading.Thread(
            target=self._reap, name="pyactors:reaper", daemon=True
        )
        self._reaper_thread.start()
        self._watchdog = (
            None
            if blocked_loop_warning is None
            else Watchdog(blocked_loop_warning, self._loop_groups)
        )

    def process_hub(self) -> Hub:
        with self._registry_lock:
            if self._stopped:
                raise RuntimeError("pyactors.shutdown() was called")
            if self._hub is None:
                from ._process.hub import Hub

                self._hub = Hub(self.loop_name)
            return self._hub

    def _reap(self) -> None:
        while True:
            core = self._unused.get()
            if core is None:
                return
            core.exit_if_unused()
            # Not kept until the next one arrives: a running frame's locals are invisible to
            # the garbage collector, so this would pin any cycle through the actor.
            del core

    def _loop_groups(self) -> list[_core.AsyncGroup]:
        with self._registry_lock:
            cores = [*self._actors, self.pool]
        return [
            group
            for core in cores
            for group in core.all_groups()
            if isinstance(group, _core.AsyncGroup)
        ]

    def function_target(self, pool: _Pool, call_options: dict[str, Any] | None) -> _core.Group:
        """The group that runs a remote function's calls (pool: its _function._Pool; the
        options its .options() gave are Ray's, none of this runtime's concern)."""
        if pool.process if pool.process is not None else self.process:
            num_cpus = (call_options or {}).get("num_cpus", pool.declared.get("num_cpus", 1))
            return self._process_pool_group(num_cpus, pool.function.__qualname__)
        return self.function_group(pool.is_async, False)

    def function_group(self, is_async: bool, process: bool | None = None) -> _core.Group:
        if process if process is not None else self.process:
            return self._process_pool_group()
        name = "async" if is_async else "sync"
        group = self.pool.group(name)
        if group.closed and not self.pool.is_dead:
            # Its event loop stopped under it (loop.stop() or SystemExit in a function): later
            # calls get a new one.
            with self._registry_lock:
                group = self.pool.renew_group(name)
        return group

    def _process_pool_group(self, num_cpus: Any = 1, function: str = "") -> _core.Group:
        # Started by the first process task: num_cpus worker processes at most, each running
        # one call at a time (of plain and async functions alike), with a few sent ahead.
        # Tasks of another num_cpus have a group of their own, on the same workers (PoolLink).
        pool = self._process_pool
        if pool is None:
            from ._process.link import PoolLink

            hub = self.process_hub()
            with self._registry_lock:
                pool = self._process_pool
                if pool is None:
                    pool = _core.ActorCore(
                        "remote function", "process-pool", "the process pool of remote functions"
                    )
                    self._pool_link = link = PoolLink(hub, self.num_cpus)
                    link.group = pool.add_process_group(
                        "tasks", self.num_cpus, link, False, link.window()
                    )
                    pool.mark_ready()
                    self._process_pool = pool
                    self._actors.add(pool)
        if type(num_cpus) is int and num_cpus == 1:
            return pool.group("tasks")
        link = cast("PoolLink", self._pool_link)
        units = link.cpu_units(num_cpus, f"{function}() with process=True")
        with self._registry_lock:
            name = link.group_name(units)
            if name not in pool.group_names:
                window = self.num_cpus * link.AHEAD
                # Its limit: as many as fit in the pool's CPUs at once
                fit = window if units == 0 else self.num_cpus * link.UNITS // units
                pool.add_process_group(name, min(fit, window), link, False, window)
        return pool.group(name)

    def register(self, core: _core.ActorCore, name: str | None, handle: ActorHandle) -> None:
        with self._registry_lock:
            if self._stopped:  # created while shutdown() runs: it goes down with the runtime
                core.die(_actor_died_error(core, "pyactors.shutdown() was called", None))
                return
            if name is not None:
                existing = self._names.get(name)
                if existing is not None and not existing._pyactors_core.is_dead:
                    raise ActorNameTakenError(
                        f"an actor named {name!r} already exists; choose another name, or "
                        f"use .options(name={name!r}, get_if_exists=True) to get it"
                    )
                self._names[name] = handle
                # Frees the name, and the registry's handle with it, as soon as it dies.
                core.on_death = functools.partial(self._forget_name, name, handle)
            self._actors.add(core)

    def _forget_name(self, name: str, handle: ActorHandle) -> None:
        with self._registry_lock:
            if self._names.get(name) is handle:
                del self._names[name]

    def named(self, name: str) -> ActorHandle | None:
        """The handle of the live actor called `name`, or None."""
        with self._registry_lock:
            handle = self._names.get(name)
            if handle is not None and handle._pyactors_core.is_dead:
                del self._names[name]
                handle = None
        return handle

    def name_of(self, core: _core.ActorCore) -> str | None:
        with self._registry_lock:
            for name, handle in self._names.items():
                if handle._pyactors_core is core:
                    return name
        return None

    def names(self) -> list[str]:
        with self._registry_lock:
            return sorted(
                name for name, handle in self._names.items() if not handle._pyactors_core.is_dead
            )

    def abandon_after_fork(self) -> None:
        """In a forked child: every actor of the parent is dead here (its threads did not
        survive the fork); fail their calls without taking locks a parent thread may hold."""
        for core in [*list(self._actors), self.pool]:
            core.abandon_after_fork(
                _actor_died_error(
                    core,
                    "it belongs to the parent process (os.fork() copies no thread); "
                    "create actors again in the child",
                    None,
                )
            )

    def stop(self) -> None:
        """Stop everything; safe to call again if a KeyboardInterrupt cut it short."""
        with self._registry_lock:
            if not self._stopped:
                self._stopped = True
                self._cores_stopping = [*self._actors, self.pool]
                self._actors.clear()
                self._names.clear()
            cores = self._cores_stopping
        # Graceful for live actors first: their __ray_shutdown__ runs. Then every outstanding
        # call fails at once, and the threads are stopped and joined.
        if self._hub is not None:  # process actors' hooks start together, in their workers
            from ._process.link import WorkerLifecycle

            for core in cores:
                lifecycle = core.lifecycle
                if isinstance(lifecycle, WorkerLifecycle):
                    lifecycle.request()
        for core in cores:
            core.run_shutdown_hook()
        running = running_now(cores)
        for core in cores:
            core.die(_actor_died_error(core, "pyactors.shutdown() was called", None), False)
        self._unused.put(None)
        join_or_report(cores, SHUTDOWN_JOIN_TIMEOUT, "pyactors.shutdown()", running)
        self._reaper_thread.join(SHUTDOWN_JOIN_TIMEOUT)
        if self._hub is not None:
            self._hub.stop(SHUTDOWN_JOIN_TIMEOUT)
        if self._watchdog is not None:
            self._watchdog.stop(SHUTDOWN_JOIN_TIMEOUT)


BACKENDS = ("local", "ray")
BACKEND_ENV = "PYACTORS_BACKEND"
RAY_ADDRESS_ENV = "PYACTORS_RAY_ADDRESS"


def init(
    address: str | None = None,
    *,
    backend: str | None = None,
    loop: str = "auto",
    num_cpus: int | None = None,
    ignore_reinit_error: bool = False,
    blocked_loop_warning: float | None = DEFAULT_BLOCKED_LOOP_WARNING,
    process: bool | None = None,
    **ray_options: Any,
) -> None:
    """Start the runtime. Optional: the first actor or remote call starts it with defaults.

    Args:
        address: with the default backend, only ``None`` or ``"local"``. With
            ``backend="ray"``, the Ray cluster to connect to (``"auto"``,
            ``"ray://head:10001"``; default: the ``PYACTORS_RAY_ADDRESS`` environment
            variable, else a new local Ray).
        backend: ``"local"`` (actors in this process, or in worker processes with
            ``process=True``) or ``"ray"`` (every actor and remote function on Ray; needs
            ``pip install 'pyactors[ray]'``). Default: the ``PYACTORS_BACKEND`` environment
            variable, else ``"local"``.
        loop: event loop of every async concurrency group: ``"uvloop"``, ``"asyncio"``, or
            ``"auto"`` (uvloop when it is installed). Checked, and left to Ray, on Ray.
        num_cpus: how many plain remote functions run at once (default: the CPU count);
            the CPUs of the pool of process tasks, which a task's own ``num_cpus`` takes a
            share of; on Ray, the CPUs of the local Ray it starts.
        ignore_reinit_error: return quietly if already initialised (otherwise RuntimeError).
        blocked_loop_warning: seconds an actor's event loop may stay inside one call (a
            ``time.sleep`` in an ``async def``, say) before a warning on the ``pyactors``
            logger names the actor, the method and how long; None turns the check off.
        process: run every actor and remote function in worker processes unless it says
            otherwise (``process=False``); default: the ``PYACTORS_PROCESS`` environment
            variable (``1`` for yes), else no. On Ray every actor has a process already.
        **ray_options: the rest of ``ray.init()``'s options (``namespace``, ``runtime_env``,
            ...): passed to Ray on Ray, accepted and ignored in one process, so that
            ``ray.init(...)`` calls run unchanged.
    """
    global _current, _atexit_registered  # noqa: PLW0603  the runtime is a process-wide singleton
    if address is not None and not isinstance(address, str):
        raise TypeError(
            f"init(address=...) must be None or a str, got {type(address).__name__} {address!r}"
        )
    backend = _backend_choice(backend)
    if backend == "local" and os.environ.get(RAY_ADDRESS_ENV):
        warn(
            f"{RAY_ADDRESS_ENV} is set but the backend is local: set "
            f"{BACKEND_ENV}=ray (or pass backend='ray') to run on that Ray"
        )
    if backend == "local" and address not in (None, "local"):
        raise ValueError(
            f"init(address={address!r}): the default backend runs actors on this "
            f"machine and connects to no cluster; to run on Ray, use "
            f"init(backend='ray', address={address!r}) (pip install "
            f"'pyactors[ray]'), or set {BACKEND_ENV}=ray in the environment"
        )
    unknown = set(ray_options) - IGNORED_INIT_OPTIONS
    if unknown:
        raise TypeError(
            f"init() got unsupported option(s) {sorted(unknown)}; supported: "
            f"backend, loop, num_cpus, ignore_reinit_error, blocked_loop_warning, "
            f"process, and Ray's options {sorted(IGNORED_INIT_OPTIONS)} (passed to "
            f"Ray with backend='ray', no effect in one process)"
        )
    if backend == "ray":  # the local backend's checks, so that bad input fails alike
        _loop_factory(loop)
        if blocked_loop_warning is not None:
            positive_seconds(blocked_loop_warning, "init(blocked_loop_warning=...)")
        if num_cpus is not None:
            positive_int(num_cpus, "num_cpus")
        _process_default(process)
    with _lock:
        if _current is not None:
            if ignore_reinit_error:
                if _current.backend != backend:
                    warn(
                        f"init(backend={backend!r}, ignore_reinit_error=True): the "
                        f"{_current.backend!r} backend is running and stays; call "
                        f"shutdown() first to change it"
                    )
                return
            raise RuntimeError(
                "pyactors.init() was already called; call shutdown() first, or "
                "pass ignore_reinit_error=True"
            )
        if backend == "ray":
            if _forked_from_ray:
                raise RuntimeError(
                    "this process is an os.fork() of one whose actors ran on "
                    "Ray, and Ray does not survive a fork: start processes with "
                    "multiprocessing's 'spawn', or init(backend='local') here"
                )
            _current = _ray_runtime(address, num_cpus, ray_options)
        else:
            _current = Runtime(loop, num_cpus, blocked_loop_warning, _process_default(process))
        _set_put_backend(_current)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True


def _backend_choice(backend: str | None) -> str:
    where = "init(backend=...)"
    if backend is None:
        backend = os.environ.get(BACKEND_ENV) or "local"
        where = f"{BACKEND_ENV}={backend!r} in the environment:"
    if backend not in BACKENDS:
        raise ValueError(f"{where} choose one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    return backend


def _ray_runtime(
    address: str | None, num_cpus: int | None, ray_options: dict[str, Any]
) -> RayRuntime:
    try:
        from ._ray.runtime import RayRuntime  # imports Ray: only for those who choose it
    except ImportError as exc:
        if exc.name != "ray":
            raise
        raise ImportError("init(backend='ray') needs Ray: pip install 'pyactors[ray]'") from exc
    if address is None:
        address = os.environ.get(RAY_ADDRESS_ENV) or None
    return RayRuntime(address, num_cpus, ray_options)


class _BackendOnFirstUse:
    """Where put() puts while no runtime runs: where the runtime that put() would start puts
    (Ray with PYACTORS_BACKEND=ray, read now), else here, without starting one."""

    @staticmethod
    def put(value: object) -> object:
        if os.environ.get(BACKEND_ENV) != "ray":
            return NotImplemented
        # The Ray runtime: PYACTORS_BACKEND=ray chooses it.
        return cast("RayRuntime", current()).put(value)


def _set_put_backend(runtime: Runtime | RayRuntime | None) -> None:
    if runtime is None:
        _core.set_put_backend(_BackendOnFirstUse)
    else:
        _core.set_put_backend(runtime if runtime.backend == "ray" else None)


def _process_default(process: bool | None) -> bool:
    if process is not None:
        return require_bool(process, "init(process=...)")
    value = os.environ.get("PYACTORS_PROCESS", "")
    if value not in ("", "0", "1"):
        raise ValueError(
            f"PYACTORS_PROCESS={value!r} in the environment: set it to 1 (run "
            f"actors and remote functions in worker processes) or 0"
        )
    return value == "1"


def shutdown() -> None:
    """Stop every actor and remote function: outstanding calls fail with ActorDiedError,
    every loop and thread ends. Idempotent. A later actor or remote call, or init(),
    starts a fresh runtime; handles from before stay dead."""
    global _current  # noqa: PLW0603  the runtime is a process-wide singleton
    with _lock:
        if _current is not None:
            _stopping.append(_current)
            _current = None
            _set_put_backend(None)  # at once: nothing may reach the runtime that stops
        runtimes = list(_stopping)
    # One a KeyboardInterrupt cut short is finished by the next shutdown().
    for runtime in runtimes:
        runtime.stop()
        with _lock:
            if runtime in _stopping:  # not done already by a concurrent shutdown()
                _stopping.remove(runtime)


def _after_fork_in_child() -> None:
    global _lock, _current, _stopping, _forked_from_ray  # noqa: PLW0603  the singleton, reset in a fork
    _stopping = []
    _lock = threading.RLock()  # a parent thread may have held it when forking
    _core.forget_thread_role_after_fork()
    runtime, _current = _current, None
    _set_put_backend(None)
    if runtime is not None and runtime.backend == "ray":
        _forked_from_ray = True
    elif runtime is not None:
        runtime.abandon_after_fork()


if hasattr(os, "register_at_fork"):
    # The child's next actor or remote call starts a fresh runtime of its own.
    os.register_at_fork(after_in_child=_after_fork_in_child)


def is_initialized() -> bool:
    """Whether a runtime is running (init() was called, or a first use started one)."""
    return _current is not None


def ray_running_here() -> bool:
    """Whether this process's actors and functions are Ray's and Ray is up: the runtime's
    backend is Ray, or (none started yet) PYACTORS_BACKEND=ray and Ray runs (a Ray worker)."""
    runtime = _current
    if runtime is not None:
        return runtime.backend == "ray"
    ray = sys.modules.get("ray")
    return os.environ.get(BACKEND_ENV) == "ray" and ray is not None and ray.is_initialized()


def current() -> Runtime | RayRuntime:
    """The runtime, started with defaults on first use."""
    runtime = _current
    if runtime is None:
        with _lock:
            if _current is None:
                init()
            runtime = _current
            assert runtime is not None  # init() started it
    return runtime


def current_local() -> Runtime:
    """current(), where only the in-process runtime can be the one running (in a worker
    process, in an in-process actor): typed as such, not checked."""
    return cast(Runtime, current())


_core.set_foreign_refs(is_ray_ref, foreign_op)
_set_put_backend(None)


def _adopt_rays_errors_if_ray_runs() -> None:
    # In a Ray worker (or a driver connected to Ray already), Ray's errors are pyactors' too
    ray = sys.modules.get("ray")
    if ray is not None and "ray.exceptions" in sys.modules and ray.is_initialized():
        from ._ray.errors import adopt

        adopt(ray.exceptions)


_adopt_rays_errors_if_ray_runs()
