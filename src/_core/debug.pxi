# Resource counters of debug builds (PYACTORS_DEBUG=1). Every update sits under
# `if PYACTORS_DEBUG:`, a C constant, so release builds compile them away; the test suite checks
# them after every test (tests/conftest.py).

cdef Py_ssize_t dbg_refs_alive = 0          # ObjectRefs allocated and not freed
cdef Py_ssize_t dbg_waiters_alive = 0       # Waiters allocated and not freed
cdef Py_ssize_t dbg_waiters_registered = 0  # Waiters on a pending ref's list
cdef Py_ssize_t dbg_wakeups_pending = 0     # completions posted to a loop and not delivered
cdef Py_ssize_t dbg_calls_pending = 0       # calls submitted and not complete
cdef Py_ssize_t dbg_thread_states = 0       # per-thread states not freed
cdef list dbg_violations = []               # invariants found broken, where they broke


cdef int dbg_violation(str invariant) except -1:
    # Recorded, not raised: a check fails on a loop or worker thread, where an exception
    # would only end up in a log; the test fixture reports it. Callers test the invariant in
    # C and build the message only when it is broken: Python code (a property, formatting)
    # may switch threads, and the core's bookkeeping sequences must not be interrupted.
    dbg_violations.append(invariant)
    return 0


def debug_violations():
    """Invariants a PYACTORS_DEBUG=1 build found broken since the last call (then cleared)."""
    found = list(dbg_violations)
    dbg_violations.clear()
    return found


def debug_counters():
    """Resource counters of a PYACTORS_DEBUG=1 build (all zero in a release build)."""
    return {
        "debug_build": bool(PYACTORS_DEBUG),
        "refs_alive": dbg_refs_alive,
        "waiters_alive": dbg_waiters_alive,
        "waiters_registered": dbg_waiters_registered,
        "wakeups_pending": dbg_wakeups_pending,
        "calls_pending": dbg_calls_pending,
        "thread_states": dbg_thread_states,
    }
