"""Errors across the process boundary: a worker sends what a call's error is made of, and the
parent rebuilds it (the dual-type TaskError where the original exception crosses, a plain one
with its repr and traceback where it cannot); and the errors of values that cannot cross."""

from __future__ import annotations

import inspect

from ..exceptions import ActorDiedError, TaskError, _from_portrait, _portrait, _task_error
from . import wire


def encode_error(error: BaseException) -> tuple:
    """What the worker sends for a failed call (the error its own core gave it)."""
    if isinstance(error, TaskError):
        cause = error.cause
        try:
            crossing = None if cause is None else wire.dumps(_portrait(cause))
        except Exception:
            crossing = None
        message = str(error)
        if crossing is None and cause is not None:
            message = (
                f"{message}\n(the exception {cause!r} could not be pickled: it arrives "
                f"as a plain TaskError)"
            )
        return (
            "task",
            crossing,
            message,
            error.task_name,
            error.concurrency_group,
            error.traceback_str,
        )
    if isinstance(error, ActorDiedError):
        return ("died", str(error))
    try:
        return ("raw", wire.dumps(error))
    except Exception:
        return ("task", None, f"{error!r} (could not be pickled)", "", None, "")


def decode_error(info: tuple, core) -> BaseException:
    kind = info[0]
    if kind == "task":
        _, crossing, message, task_name, group, tb = info
        cause = None
        if crossing is not None:
            try:
                cause = _from_portrait(wire.loads(crossing))
            except Exception as exc:
                message = f"{message}\n(its exception could not be unpickled here: {exc!r})"
        return _task_error(cause, message, task_name, group, tb)
    if kind == "died":
        error = ActorDiedError(info[1])
        error.actor_id = None if core is None else core.actor_id
        return error
    try:
        return wire.loads(info[1])
    except Exception as exc:
        return TaskError(f"a worker's error could not be unpickled here: {exc!r}")


def unpicklable_result(call, group, exc: BaseException) -> TaskError:
    return TaskError(
        f"{call!r}: the result could not be unpickled in this process ({type(exc).__name__}: {exc})"
    )


def unpicklable_argument(
    callee: str, target, args: tuple, kwargs: dict | None, exc: BaseException
) -> TypeError:
    """The TypeError of .remote() with an argument that cannot cross: names the parameter."""
    which = "an argument"
    names = _parameter_names(target, len(args))
    for position, arg in enumerate(args):
        if not _pickles(arg):
            which = (
                f"argument {names[position]!r}"
                if position < len(names)
                else f"positional argument {position}"
            )
            break
    else:
        for key, arg in (kwargs or {}).items():
            if not _pickles(arg):
                which = f"argument {key!r}"
                break
    return TypeError(
        f"{callee}.remote(): {which} cannot be sent to a worker process: "
        f"{type(exc).__name__}: {str(exc).rstrip('.')}. Arguments of process actors and "
        f"process tasks are "
        f"pickled (cloudpickle); pass a value that pickles, or use an in-process actor "
        f"(process=False)"
    )


def _pickles(value) -> bool:
    try:
        wire.picklable(value)
    except Exception:
        return False
    return True


def _parameter_names(target, count: int) -> list[str]:
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return []
    names = []
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
        elif parameter.kind == parameter.VAR_POSITIONAL:
            names.extend(f"*{parameter.name}[{i}]" for i in range(count - len(names)))
    return names
