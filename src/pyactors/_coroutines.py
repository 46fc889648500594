"""Which ``async def`` bodies can suspend, read once per decoration from their bytecode."""

from __future__ import annotations

import dis
import inspect

# `await`, `async with` and `async for` each compile to one of these (YIELD_FROM up to 3.10,
# YIELD_VALUE from 3.11); code without them cannot suspend.
_SUSPENDING_OPS = frozenset({"YIELD_VALUE", "YIELD_FROM"})


def awaits(func) -> bool:
    """False for an ``async def`` whose body has no ``await``, ``async with`` or ``async for``.

    Such a coroutine runs to its end in its first step, so the core runs it like a plain def,
    without a Task. Anything else, or anything it cannot tell, counts as awaiting.
    """
    code = getattr(func, "__code__", None)
    if code is None or not code.co_flags & inspect.CO_COROUTINE:
        return True
    return any(ins.opname in _SUSPENDING_OPS for ins in dis.get_instructions(code))
