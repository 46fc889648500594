"""Which ``async def`` bodies can suspend, read once per decoration from their bytecode."""

from __future__ import annotations

import dis
import inspect

# `await`, `async with` and `async for` each compile to one of these (YIELD_FROM up to 3.10,
# YIELD_VALUE from 3.11); code without them cannot suspend.
_SUSPENDING_OPS = frozenset({"YIELD_VALUE", "YIELD_FROM"})


def awaits(func: object) -> bool:
    """False for an ``async def`` whose body has no ``await``, ``async with`` or ``async for``.

    Such a coroutine runs to its end in its first step, so the core runs it like a plain def,
    without a Task. Anything else, or anything it cannot tell, counts as awaiting.
    """
    code = getattr(func, "__code__", None)
    if code is None or not code.co_flags & inspect.CO_COROUTINE:
        return True
    return any(ins.opname in _SUSPENDING_OPS for ins in dis.get_instructions(code))


# Names an __init__ uses when it needs the event loop it will run beside.
_LOOP_NAMES = frozenset(
    {
        "get_event_loop",
        "get_running_loop",
        "create_task",
        "ensure_future",
        "call_soon",
        "call_soon_threadsafe",
        "call_later",
        "call_at",
        "run_in_executor",
    }
)


def uses_event_loop(func: object) -> bool:
    """Whether `func`'s own code reads one of asyncio's loop functions by name: an async
    actor's __init__ that does runs on its running event loop (as in Ray), others before it
    (an actor nobody calls then costs no event loop)."""
    code = getattr(func, "__code__", None)
    return code is not None and not _LOOP_NAMES.isdisjoint(code.co_names)
