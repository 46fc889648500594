"""Errors raised by pyactors. Names follow Ray's ``ray.exceptions`` (aliases included), so
``except ray.exceptions.RayTaskError`` keeps working with ``import pyactors as ray``."""

from __future__ import annotations

import contextlib
import functools
import traceback
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _core

_CORE_MODULE = "pyactors._core"
_SLOT_TYPES = (types.MemberDescriptorType, types.GetSetDescriptorType)

__all__ = [
    "ActorDiedError",
    "ActorExit",
    "ActorNameTakenError",
    "DeadlockError",
    "GetTimeoutError",
    "ObjectLostError",
    "OwnerDiedError",
    "PendingCallsLimitExceeded",
    "PendingCallsLimitExceededError",
    "PyActorsError",
    "RayActorError",
    "RayError",
    "RayTaskError",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
]


class PyActorsError(Exception):
    """Base class of every error pyactors raises itself (and, on the Ray backend, of Ray's)."""

    # No slots of its own, as Ray's RayError has none beyond Exception's: __bases__
    # assignment needs the same layout (see _ray/errors.py; so for GetTimeoutError and
    # ActorNameTakenError, whose Ray classes have a second base).
    __slots__ = ()


class TaskError(PyActorsError):
    """A remote call raised an exception.

    The instance raised by ``get``/``await`` is also an instance of the original exception's
    class (``except KeyError`` catches it), carries its ``args`` and attributes, and its
    message holds the remote traceback and where the call ran. Where that class cannot be
    combined with TaskError, a plain TaskError is raised instead.

    Attributes:
        cause: the original exception (with its traceback).
        task_name: ``"Class.method"`` or the remote function's qualified name.
        concurrency_group: the group the call ran in (None for remote functions).
        traceback_str: the formatted remote traceback.
    """

    cause: BaseException | None = None
    task_name: str = ""
    concurrency_group: str | None = None
    traceback_str: str = ""
    _message: str = ""

    def __str__(self) -> str:
        return self._message or super().__str__()


class GetTimeoutError(PyActorsError, TimeoutError):
    """``get()`` timed out before the result was ready."""

    __slots__ = ()


class ActorDiedError(PyActorsError):
    """The actor is dead: its ``__init__`` raised, or it was killed or shut down.

    ``__cause__`` is the exception that killed it, when there is one.
    """

    actor_id: str | None = None


class TaskCancelledError(PyActorsError):
    """The call was cancelled (``pyactors.cancel(ref)``) before it could finish."""


class DeadlockError(PyActorsError, RuntimeError):
    """A blocking ``get()``/``wait()`` inside an actor would wait forever: the call it waits for
    waits, through a chain of calls, for the very thread that would block.

    Raised at once instead of hanging. ``cycle`` lists the steps of the wait-for cycle, each
    naming the actor, the concurrency group and the method.
    """

    cycle: list[str]


class ActorExit(SystemExit):
    """Raised by ``pyactors.actor.exit_actor()``: the actor leaves gracefully. A SystemExit,
    so that ``except Exception`` in the method does not stop it."""


# Never raised by pyactors: in one process no object is lost, no worker process or owner dies
# by itself. They exist so that ``except ray.exceptions.X`` in code written for Ray works.
class ObjectLostError(PyActorsError):
    """An object was lost (never in one process)."""


class OwnerDiedError(ObjectLostError):
    """The owner of an object died (never in one process)."""


class WorkerCrashedError(PyActorsError):
    """A task's worker process died (never in one process)."""


class ActorNameTakenError(ValueError, PyActorsError):
    """``.options(name=...)`` named an actor that already exists."""

    __slots__ = ()  # and ValueError first, as in Ray's ActorAlreadyExistsError


class PendingCallsLimitExceededError(PyActorsError):
    """``.remote()`` on an actor that already has ``max_pending_calls`` calls pending."""


# Ray's names.
AsyncioActorExit = ActorExit
RayError = PyActorsError
RayTaskError = TaskError
RayActorError = ActorDiedError
PendingCallsLimitExceeded = PendingCallsLimitExceededError


@functools.lru_cache(maxsize=1024)
def _dual_class(cause_class: type) -> type:
    """TaskError subclass that is also a `cause_class`; raises TypeError if none can exist."""
    name = f"TaskError({cause_class.__name__})"
    return type(name, (TaskError, cause_class), {"__module__": __name__, "__qualname__": name})


def _dual_instance(cause: BaseException) -> TaskError | None:
    # Only ordinary exceptions: a remote CancelledError, KeyboardInterrupt or SystemExit must
    # not masquerade as one raised in the caller.
    if not isinstance(cause, Exception):
        return None
    try:
        cause_class: type = type(cause)  # as `type`: mypy takes type[Exception] for unhashable
        dual = cause_class if isinstance(cause, TaskError) else _dual_class(cause_class)
        # __new__ with the original args, never __init__: no user code runs again here, and
        # classes whose __new__ parses args (OSError's errno/filename) keep those fields.
        error: TaskError = dual.__new__(dual, *cause.args)
        _copy_fields(cause, error)
    except Exception:
        return None
    return error


# BaseException's own bookkeeping, which the dual error keeps for itself.
_NOT_COPIED = frozenset(
    {
        "args",
        "__traceback__",
        "__context__",
        "__cause__",
        "__suppress_context__",
        "__dict__",
        "__weakref__",
        "__notes__",
    }
)


def _copy_fields(cause: BaseException, error: BaseException) -> None:
    error.__dict__.update(cause.__dict__)
    _set_slots(error, _slot_fields(cause))


def _slot_fields(exc: BaseException) -> dict[str, object]:
    # Built-in exceptions keep fields in C slots, not in __dict__ (OSError.filename,
    # ImportError.name, SystemExit.code, ...).
    fields: dict[str, object] = {}
    for klass in type(exc).__mro__[:-2]:  # not BaseException's bookkeeping, nor object's
        for name, attr in vars(klass).items():
            if name not in _NOT_COPIED and isinstance(attr, _SLOT_TYPES) and name not in fields:
                with contextlib.suppress(AttributeError):
                    fields[name] = getattr(exc, name)
    return fields


def _set_slots(error: BaseException, fields: dict[str, object]) -> None:
    for name, value in fields.items():
        with contextlib.suppress(AttributeError, TypeError):
            setattr(error, name, value)


def _portrait(
    exc: BaseException,
) -> tuple[type[BaseException], tuple[Any, ...], dict[str, Any], dict[str, object]]:
    """What an exception is made of - class, args, fields - to rebuild it elsewhere without
    calling its __init__ (which may take other arguments than its args: pickle's way fails
    for those)."""
    return type(exc), exc.args, dict(exc.__dict__), _slot_fields(exc)


def _from_portrait(
    portrait: tuple[type[BaseException], tuple[Any, ...], dict[str, Any], dict[str, object]],
) -> BaseException:
    cls, args, fields, slots = portrait
    try:
        exc = cls.__new__(cls, *args)
    except Exception:  # its own __new__ wants other arguments: its built-in base's then
        base = next(klass for klass in cls.__mro__ if klass.__module__ == "builtins")
        exc = base.__new__(cls, *args)
    BaseException.__setattr__(exc, "args", args)  # as in _task_error
    exc.__dict__.update(fields)
    _set_slots(exc, slots)
    return exc


def _wrap_task_error(cause: BaseException, task_name: str, group: _core.Group) -> TaskError:
    """The error a failed call completes with (called by the core, on the failure path)."""
    tb = _format_remote(cause)
    message = f"{task_name}() raised {type(cause).__name__} in {group.location}\n\n{tb.rstrip()}"
    return _task_error(cause, message, task_name, group.name if group.actor.is_actor else None, tb)


def _task_error(
    cause: BaseException | None,
    message: str,
    task_name: str,
    concurrency_group: str | None,
    tb: str,
) -> TaskError:
    """A TaskError that is also a `cause` where it can be; a plain one when there is no cause
    (it could not cross from a worker process)."""
    error = None if cause is None else _dual_instance(cause)
    if error is None:
        error = TaskError(message)
    # BaseException's own __setattr__: the dual error is also an instance of the user's
    # class, which may refuse attributes (a frozen dataclass or attrs exception).
    fields = {
        "_message": message,
        "cause": cause,
        "task_name": task_name,
        "concurrency_group": concurrency_group,
        "traceback_str": tb,
        "__suppress_context__": True,
    }
    for name, value in fields.items():
        BaseException.__setattr__(error, name, value)
    return error


def _raisable(error: BaseException) -> BaseException:
    """A copy of a stored error, for one raise (called by the core when a ref's error is
    raised or handed to a future).

    A ref's error reaches every caller of get() and every awaiter; raising one shared object
    would write each raiser's ``__context__`` and traceback into what the others see. The copy
    is made without calling ``__init__`` (no user code runs); an error that cannot be copied is
    raised itself.
    """
    cls = type(error)
    try:
        copy = cls.__new__(cls, *error.args)
        _copy_fields(error, copy)
    except Exception:
        return error.with_traceback(None)
    BaseException.__setattr__(copy, "__cause__", error.__cause__)  # as in _task_error
    BaseException.__setattr__(copy, "__suppress_context__", error.__suppress_context__)
    return copy


def _format_remote(cause: BaseException) -> str:
    # Leave out the core's own frame (where the call was made): the traceback starts in the
    # user's method.
    tb = cause.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__") == _CORE_MODULE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(cause), cause, tb))


def _actor_died_error(
    actor: _core.ActorCore, reason: str, cause: BaseException | None
) -> ActorDiedError:
    """The error every call of a dead actor fails with."""
    message = f"{actor.description} died: {reason}"
    if cause is not None:
        message = f"{message}:\n\n{_format_remote(cause).rstrip()}"
    error = ActorDiedError(message)
    error.actor_id = actor.actor_id
    error.__cause__ = cause
    return error
