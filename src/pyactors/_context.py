"""get_runtime_context(): what the calling code runs in."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, cast

from . import _core, _runtime
from .exceptions import _raisable

if TYPE_CHECKING:
    from ._ray.runtime import RayRuntime

# The node is the machine: a worker process has its parent's node id. Each process is one
# worker.
_NODE_ID = os.environ.get("PYACTORS_NODE_ID") or os.urandom(28).hex()
_WORKER_ID = os.urandom(28).hex()
# In a worker process: id(ref of a call here) -> hex of the ref its caller holds, the call's
# id as the caller sees it. Written under the lock while the call is submitted, which a body
# that asks before then waits for.
caller_task_ids: dict[int, str] = {}
caller_task_lock = threading.Lock()


class RuntimeContext:
    """Where the calling code runs, read when get_runtime_context() was called."""

    def __init__(self, group, call):
        self._group = group
        self._call = call
        self._core = group.actor if group is not None and group.actor.is_actor else None

    @property
    def in_actor(self) -> bool:
        return self._core is not None

    def get_actor_id(self) -> str | None:
        """The current actor's id, or None outside an actor (Ray's name)."""
        return None if self._core is None else self._core.actor_id

    @property
    def actor_id(self) -> str | None:
        return self.get_actor_id()

    def get_actor_name(self) -> str | None:
        """The name the current actor was created with (``.options(name=...)``), or None."""
        return None if self._core is None else _runtime.current_local().name_of(self._core)

    def get_task_id(self) -> str | None:
        """The id of the current call (a method's or remote function's), or None outside
        one: the hex of its ObjectRef."""
        if self._call is None:
            return None
        if caller_task_ids:  # in a worker process
            with caller_task_lock:
                return caller_task_ids.get(id(self._call)) or self._call.hex()
        return self._call.hex()

    def get_job_id(self) -> str:
        """This runtime's id: one per init() ... shutdown()."""
        return _runtime.current_local().job_id

    def get_node_id(self) -> str:
        """This process's id: pyactors runs on one node, this one."""
        return _NODE_ID

    def get_worker_id(self) -> str:
        """This process's id: every call runs in this one worker."""
        return _WORKER_ID

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether the current actor was restarted (max_restarts, after sys.exit())."""
        return self._core is not None and self._core.reconstructed

    def is_canceled(self) -> bool:
        """Whether cancel() asked the current call to stop: a running plain method is not
        interrupted, and checks this to stop by itself (Ray's cooperative cancellation)."""
        if self._call is None:
            raise RuntimeError(
                "get_runtime_context().is_canceled() is only meaningful inside "
                "a call (an actor method or a remote function)"
            )
        return _core.cancel_requested(self._call)

    @property
    def concurrency_group(self) -> str | None:
        """The concurrency group the current call runs in, or None outside an actor."""
        return None if self._core is None else self._group.name

    @property
    def current_actor(self):
        """A handle to the current actor, so a method can call its own methods remotely."""
        if self._core is None:
            raise RuntimeError(
                "get_runtime_context().current_actor is only available inside "
                "an actor's method; this code is not running in an actor"
            )
        factory = self._core.handle_factory
        if factory is None:  # it died while this call still runs
            raise _raisable(self._core.death_cause)
        return factory()

    def __repr__(self):
        if self._core is None:
            return "RuntimeContext(not in an actor)"
        group = self._group.name
        return f"RuntimeContext(actor={self._core.description}, concurrency_group={group!r})"


def get_runtime_context() -> RuntimeContext:
    """The context of the calling code: inside a method or remote function, its actor, call
    and concurrency group (on the Ray backend, Ray's own runtime context)."""
    group = _core.current_group()
    if group is None and _runtime.ray_running_here():  # of a Ray actor or task, or the driver
        return cast("RayRuntime", _runtime.current()).runtime_context()
    return RuntimeContext(group, _core.current_call())
