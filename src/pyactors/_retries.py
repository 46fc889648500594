"""Ray's ``retry_exceptions`` and ``max_retries`` on remote functions: a function that raises
one of those exceptions runs again, up to ``max_retries`` more times (-1: without end), before
its ref fails. (Ray also retries after worker crashes, which one process does not have.)"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ._options import count_or_forever

# Ray's default number of retries, once retry_exceptions asks for them.
DEFAULT_MAX_RETRIES = 3
_ORIGINAL = "__pyactors_retried__"
_DECLARED = "__pyactors_retries__"


def retry_options(
    options: dict[str, Any], where: str, func: Callable[..., Any] | None = None
) -> tuple[int, tuple[type, ...]] | None:
    """(max_retries, exception classes) when `options` ask for retries, else None. What they
    leave out is what `func` (a function made by retrying()) was declared with."""
    declared_retries, declared_kinds = getattr(func, _DECLARED, (None, False))
    kinds = options.get("retry_exceptions", declared_kinds)
    if kinds is False or kinds is None:
        return None
    if kinds is True:
        kinds = (Exception,)
    elif (
        isinstance(kinds, (list, tuple))
        and kinds
        and all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds)
    ):
        kinds = tuple(kinds)
    else:
        raise TypeError(
            f"{where}: retry_exceptions must be a bool or a non-empty list of "
            f"exception classes, got {type(kinds).__name__} {kinds!r}"
        )
    retries = options.get("max_retries", declared_retries)
    retries = (
        DEFAULT_MAX_RETRIES
        if retries is None
        else count_or_forever(retries, f"{where}: max_retries")
    )
    return retries, kinds


def retrying(
    func: Callable[..., Any], retries: int, kinds: tuple[type[BaseException], ...]
) -> Callable[..., Any]:
    """`func`, run again when it raises one of `kinds` (the original function, if `func`
    already is such a wrapper)."""
    original = getattr(func, _ORIGINAL, func)

    def give_up(attempt: int) -> bool:
        return 0 <= retries <= attempt

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def run(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                try:
                    return await original(*args, **kwargs)
                except kinds:
                    if give_up(attempt):
                        raise
                    attempt += 1
    else:

        @functools.wraps(original)
        def run(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                try:
                    return original(*args, **kwargs)
                except kinds:
                    if give_up(attempt):
                        raise
                    attempt += 1

    setattr(run, _ORIGINAL, original)
    setattr(run, _DECLARED, (retries, kinds))
    return run
