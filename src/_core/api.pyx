# get / wait / put / cancel: the module-level functions of the public API.

from pyactors._options import is_real as _is_real

cdef str _BLOCKING_ON_LOOP = (
    "{what}() would block an event loop: it was called on the loop thread of "
    "{location}. Inside an async actor use `await ref` "
    "(or `await asyncio.gather(*refs)` / `asyncio.wait(refs)`); "
    "{what}(..., timeout=0) polls without blocking.")


cdef double _timeout_seconds(object timeout) except? -2.0:
    if timeout is None:
        return -1.0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        timeout = _real_seconds(timeout)
    if not timeout >= 0:  # also refuses NaN, which would never time out
        raise ValueError(f"timeout must be >= 0 seconds (or None to wait forever), "
                         f"got {timeout!r}")
    return <double>timeout


cdef object _real_seconds(object timeout):
    if _is_real(timeout):
        return float(timeout)
    raise TypeError(f"timeout must be None or a number of seconds, got "
                    f"{type(timeout).__name__} {timeout!r}")


cdef int _refuse_blocking_on_loop(ThreadState ts, str what) except -1:
    if ts.on_loop:
        raise RuntimeError(_BLOCKING_ON_LOOP.format(
            what=what, location=ts.group.location))
    return 0


cdef bint _block(ThreadState ts, list pending, Py_ssize_t needed, double timeout,
                 str what) except -1:
    """Park the calling thread until `needed` of the `pending` refs complete, or `timeout`.

    True if they did. The waiter is abandoned before returning, so a completion that races
    with a timeout can never release this thread's lock later. A thread inside a call that
    would wait forever for what can never complete gets DeadlockError instead (deadlock.pyx).
    """
    cdef ThreadWaiter waiter = ThreadWaiter.__new__(ThreadWaiter)
    cdef bint parked = False
    cdef bint watched = False
    cdef int woken = 0
    # Nested: a signal handler or a finalizer that runs on this thread while it waits here,
    # and waits too. It parks on a lock of its own (a release meant for one of the two waits
    # must not wake the other) and leaves the thread's cancel, deadlock and slot bookkeeping
    # to the outer wait.
    cdef bint nested = ts.blocking
    # Nested remote calls cannot deadlock the remote-function pool: its calls lend their
    # slot while they block here.
    cdef Group lent = ts.group if ts.group is not None and ts.group.lends_slots \
        and not nested else None
    waiter.owner = ts
    waiter.remaining = needed
    if nested:
        waiter.lock = PyThread_allocate_lock()
        if waiter.lock == NULL:
            raise MemoryError("pyactors: cannot allocate a thread lock")
        PyThread_acquire_lock(waiter.lock, NOWAIT_LOCK)  # held: park() waits for a release
    else:
        waiter.lock = ts.lock
        ts.blocking = True
    try:
        # Completions may interleave with the registration (on 3.10/3.11 an allocation in
        # _add_waiter can run the collector, whose finalizers can switch threads): whoever
        # takes `remaining` to zero first releases the lock (or, here, finds no need to park).
        for ref in pending:
            if not (<ObjectRef>ref)._add_waiter(waiter):
                waiter.remaining -= 1
        if waiter.remaining > 0:
            parked = True
            if lent is not None:
                ts.parked_waiter = waiter  # cancel() of the function wakes it (interrupt_call)
                parked_threads[ts.ident] = ts
                lent._lend_slot()  # last: it can start a thread (Python code that may raise)
            if ts.group is not None and timeout < 0 and not nested:  # a timeout always ends
                ts.waits_for = pending
                ts.waits_needed = needed
                blocked_threads[ts.ident] = ts
                watched = True
                check_deadlock(ts, what)
            woken = park_on(waiter.lock, timeout)
    finally:
        if watched:
            del blocked_threads[ts.ident]
            ts.waits_for = None
        if parked and lent is not None:
            ts.parked_waiter = None
            lent._reclaim_slot()
            del parked_threads[ts.ident]
        waiter.abandoned = True
        if waiter.released and not woken:
            # A completion released our lock and no park() took it: during the registration,
            # or after the wait gave up (timeout or KeyboardInterrupt) and before we had the
            # GIL back. Take it now so that the lock stays acquired for the next park(): it is
            # free, or about to be (release_threads() releases it without the GIL).
            PyThread_acquire_lock(waiter.lock, WAIT_LOCK)
        elif PYACTORS_DEBUG and PyThread_acquire_lock(waiter.lock, NOWAIT_LOCK):
            dbg_violation("a thread left get()/wait() with its park lock released")
        for ref in pending:
            (<ObjectRef>ref)._remove_waiter(waiter)
        if nested:
            PyThread_release_lock(waiter.lock)
            PyThread_free_lock(waiter.lock)
            waiter.lock = NULL
        else:
            ts.blocking = False
    if ts.interrupted and not nested:
        ts.interrupted = False
        raise KeyboardInterrupt  # what cancel() raises in a remote function, here at once
    return waiter.remaining <= 0


# Another backend's refs (Ray's) handed to get/wait/cancel go to it: `_is_foreign_ref` knows
# them, `_foreign_op` runs the operation (NotImplemented for what it does not take). While a
# backend other than this process runs actors and functions, put() goes to `_put_backend`
# (NotImplemented: put here after all). All are consulted off the hot path only.
cdef object _is_foreign_ref = None
cdef object _foreign_op = None
cdef object _put_backend = None


def set_foreign_refs(is_foreign_ref, foreign_op):
    """Install what recognises another backend's refs, and runs get/wait/cancel on them
    (`foreign_op(what, refs, options)`)."""
    global _is_foreign_ref, _foreign_op
    _is_foreign_ref = is_foreign_ref
    _foreign_op = foreign_op


def set_put_backend(backend):
    """Install where put() puts (`backend.put(value)`), or None: in this process."""
    global _put_backend
    _put_backend = backend


cdef bint _foreign_ref(object value) except -1:
    return _is_foreign_ref is not None and _is_foreign_ref(value)


cdef object _foreign(str what, object refs, dict options):
    # Another backend's refs, or bad input: the TypeError names what was given.
    if _foreign_op is not None:
        result = _foreign_op(what, refs, options)
        if result is not NotImplemented:
            return result
    if type(refs) is list and <list>refs:
        for i, ref in enumerate(<list>refs):
            if type(ref) is not ObjectRef and not _foreign_ref(ref):
                raise TypeError(f"{what}() takes ObjectRefs, but item {i} of the list is "
                                f"{_type_name(ref)} {ref!r}")
        raise TypeError(f"{what}() got a list that mixes pyactors' refs and Ray's (of two "
                        f"backends): {what}() each kind in a call of its own")
    raise TypeError(_not_refs_message(what, refs))


cdef str _type_name(object value):
    cls = type(value)
    module = cls.__module__
    # Qualified when it is another library's: Ray's ObjectRef is not ours
    return cls.__qualname__ if module == "builtins" or module.startswith("pyactors") else \
        f"{module}.{cls.__qualname__}"


def get(object refs, *, timeout=None):
    """The value of a ref, or a list of values for a list of refs (in order).

    Blocks until they are ready. Raises the call's error (a TaskError that is also an
    instance of the original exception's class), GetTimeoutError when `timeout` seconds
    pass first. Not allowed on an async actor's loop thread: there, ``await`` the ref.
    """
    cdef double seconds = _timeout_seconds(timeout)
    cdef ThreadState ts = this_thread()
    cdef ObjectRef ref
    cdef list pending
    if seconds != 0:
        # Refused even when the result happens to be ready: whether code deadlocks must not
        # depend on timing.
        _refuse_blocking_on_loop(ts, "get")
    if type(refs) is ObjectRef:
        ref = <ObjectRef>refs
        if ref.state == PENDING and (seconds == 0 or not _block(ts, [ref], 1, seconds, "get")):
            raise GetTimeoutError(f"get() timed out after {timeout}s waiting for {ref!r}")
        return ref._outcome()
    if type(refs) is not list:
        return _foreign("get", refs, {"timeout": timeout})
    pending = _pending_refs(<list>refs)
    if pending is None:
        return _foreign("get", refs, {"timeout": timeout})
    if pending and (seconds == 0 or not _block(ts, pending, len(pending), seconds, "get")):
        still = sum([(<ObjectRef>r).state == PENDING for r in pending])
        raise GetTimeoutError(f"get() timed out after {timeout}s: {still} of "
                              f"{len(<list>refs)} results not ready")
    return [(<ObjectRef>ref)._outcome() for ref in <list>refs]


def wait(object refs, *, num_returns=1, timeout=None, fetch_local=True):
    """Wait until `num_returns` of `refs` are ready, or `timeout` seconds pass.

    Returns ``(ready, not_ready)``: two lists that partition `refs`, each in the input
    order, with at most `num_returns` refs in `ready`. ``timeout=0`` polls.
    """
    cdef double seconds = _timeout_seconds(timeout)
    cdef ThreadState ts = this_thread()
    if type(fetch_local) is not bool:
        _require_bool(fetch_local, "wait(fetch_local=...)")
    if seconds != 0:
        _refuse_blocking_on_loop(ts, "wait")
    if type(refs) is ObjectRef or (type(refs) is not list and _foreign_ref(refs)):
        raise TypeError("wait() takes a list of ObjectRefs, not a single ObjectRef: "
                        "use wait([ref])")
    if type(refs) is not list:
        raise TypeError(f"wait() takes a list of ObjectRefs, got {type(refs).__name__} "
                        f"{refs!r}")
    if isinstance(num_returns, bool) or not isinstance(num_returns, int):
        raise TypeError(f"num_returns must be an int, got {type(num_returns).__name__} "
                        f"{num_returns!r}")
    # An ObjectRefGenerator is ready when its next ref is (or its body has ended): it is
    # waited for through the signal that says so.
    cdef list waitables = <list>refs
    for item in <list>refs:
        if type(item) is ObjectRefGenerator:
            waitables = [(<ObjectRefGenerator>r).stream._signal()
                         if type(r) is ObjectRefGenerator else r for r in <list>refs]
            break
    cdef Py_ssize_t total = len(<list>refs)
    if total and not 1 <= num_returns <= total:
        raise ValueError(f"num_returns must be between 1 and len(refs) = {total}, "
                         f"got {num_returns}")
    if len({id(r) for r in <list>refs}) != total:
        seen = set()
        duplicate = next(r for r in <list>refs if id(r) in seen or seen.add(id(r)))
        raise ValueError(f"wait() needs distinct ObjectRefs; the list holds duplicates: "
                         f"{duplicate!r} more than once")
    cdef list pending = _pending_refs(waitables)
    if pending is None:
        return _foreign("wait", refs, {"num_returns": num_returns, "timeout": timeout,
                                       "fetch_local": fetch_local})
    if total == 0:
        return [], []
    cdef Py_ssize_t missing = num_returns - (total - len(pending))
    if missing > 0 and seconds != 0:
        _block(ts, pending, missing, seconds, "wait")
    cdef list ready = []
    cdef list not_ready = []
    for ref, waitable in zip(<list>refs, waitables):
        if (<ObjectRef>waitable).state != PENDING and len(ready) < num_returns:
            ready.append(ref)
        else:
            not_ready.append(ref)
    return ready, not_ready


def put(value):
    """A ready ObjectRef holding `value` (shared, not copied: everything is in one process)."""
    if _put_backend is not None:
        elsewhere = _put_backend.put(value)
        if elsewhere is not NotImplemented:
            return elsewhere
    if type(value) is ObjectRef:
        raise TypeError("put() of an ObjectRef is not allowed: pass the ref itself")
    cdef ObjectRef ref = ObjectRef.__new__(ObjectRef)
    ref.state = FINISHED
    ref.value = value
    return ref


def pending_ref():
    """A ref that settle_ref() completes: the result of a call another process runs."""
    return ObjectRef.__new__(ObjectRef)


def on_settled(ObjectRef ref, fn):
    """Call fn(ref) once `ref` is complete, on the thread that completes it (now, if it is):
    the cheapest way to be told (a worker process sends each result back so)."""
    cdef SettledWaiter waiter = SettledWaiter.__new__(SettledWaiter)
    waiter.fn = fn
    if not ref._add_waiter(waiter):
        fn(ref)


def settle_ref(ObjectRef ref, bint ok, value):
    """Complete a ref from pending_ref() with its value (`ok`) or error; False if it was
    complete already."""
    return ref._set(FINISHED if ok else FAILED, value)


def cancel(object ref, *, force=False, recursive=True):
    """Cancel the call behind `ref` (or an ObjectRefGenerator's); True if it was cancelled or
    asked to stop.

    A queued call is removed and fails with TaskCancelledError without running. A running
    ``async def`` call gets asyncio.CancelledError inside its coroutine; a running plain
    remote function gets KeyboardInterrupt raised in it (as in Ray); a running plain method
    is told (``get_runtime_context().is_canceled()``), not interrupted. A call cancelled while
    running ends as cancelled, whatever its body does. ``force=True``: for a running plain
    method, the actor is killed; for a remote function, its ref fails at once, and a plain
    process task's worker process ends. With ``recursive=True`` (the default, as in Ray), the
    calls the cancelled call's plain body submitted are cancelled too, and theirs. A finished
    ref keeps its result.
    """
    if type(ref) is ObjectRefGenerator:  # stop the generator's body
        ref = (<ObjectRefGenerator>ref).stream.call
    if type(force) is not bool or type(recursive) is not bool:  # Python only for bad input
        _require_bool(force, "cancel(force=...)")
        _require_bool(recursive, "cancel(recursive=...)")
    if type(ref) is not ObjectRef:
        if _foreign_op is not None:
            result = _foreign_op("cancel", ref, {"force": force, "recursive": recursive})
            if result is not NotImplemented:
                return result
        raise TypeError(f"cancel() takes an ObjectRef or an ObjectRefGenerator, got "
                        f"{_type_name(ref)} {ref!r}")
    cdef ObjectRef call = <ObjectRef>ref
    if call.source is not None:  # one output of a call: cancel the call (all outputs)
        call = call.source
    cdef list children = call.children  # taken before: cancelling may end the call
    cdef bint cancelled = _cancel_one(call, force)
    if recursive and children:
        _cancel_descendants(children)
    return cancelled


cdef bint _cancel_one(ObjectRef call, bint force) except -1:
    cdef Group group = call.group
    if call.state != PENDING or group is None:
        return False
    if group._cancel(call, FAILED):
        return True
    cdef bint plain = not call.flags & F_ASYNC or call.flags & F_NO_AWAIT
    if force and plain and not group.actor.is_pool and call.stage == S_RUNNING:
        # A running plain method cannot be interrupted: force=True ends its actor instead.
        return group.actor.die(actor_died_error(
            group.actor, f"cancel({call!r}, force=True) killed it", None))
    if call.flags & F_OUTLIVED:
        # Its actor's restart is cancelling it already: it now ends as cancelled, and does
        # not run again.
        call.flags &= ~F_OUTLIVED
        return True
    cdef bint stopping = group._stop_running(call)
    if stopping and force and group.actor.is_pool:
        # Ray's force=True ends the worker process running the task, and only that task
        # fails. A process task's plain function: its worker ends too, and the pool replaces
        # it. A thread cannot be ended, so its ref fails now and the thread is left to stop
        # (it holds its slot until it has); so does a coroutine, which gets CancelledError.
        call._set(FAILED, TaskCancelledError(
            f"{call.name}() was cancelled with force=True while running"))
        if type(group) is ProcessGroup and plain:
            (<ProcessGroup>group).link.end_worker_of(call)
    return stopping


cdef _cancel_descendants(list children):
    # Iterative: a tree of calls can be deep. Children are cancelled as Ray cancels them:
    # without force.
    cdef list todo = list(children)
    cdef ObjectRef child
    while todo:
        child = <ObjectRef>todo.pop()
        if child.children:
            todo.extend(child.children)
        _cancel_one(child, False)


cdef list _pending_refs(list refs):
    """The pending ones of `refs`; None if any is not an ObjectRef."""
    cdef list pending = []
    for ref in refs:
        if type(ref) is not ObjectRef:
            return None
        if (<ObjectRef>ref).state == PENDING:
            pending.append(ref)
    return pending


cdef str _not_refs_message(str what, object refs):
    if type(refs) is ObjectRefGenerator:
        return (f"{what}() takes an ObjectRef or a list of ObjectRefs, got an "
                f"ObjectRefGenerator: iterate it (for ref in gen / async for ref in gen) and "
                f"{what}() each ref")
    return (f"{what}() takes an ObjectRef or a list of ObjectRefs, got "
            f"{_type_name(refs)} {refs!r}")


def current_frames():
    """sys._current_frames() but for the calling thread's own, with the garbage collector
    paused.

    On 3.10 and 3.11 it makes frame objects while it holds the interpreter's lock of the
    thread list; a collection there runs finalizers, and one that lets another thread run
    (any Python __del__ may) deadlocks the process as soon as that thread starts or ends.
    Without the caller's frame: kept in the caller's local, the dict would make a cycle (that
    frame, the dict) holding every thread's stack - the locals and arguments of the calls they
    ran - until the cyclic collector runs, which a quiet process may not do for minutes.
    """
    cdef bint collecting = PyGC_Disable()
    try:
        frames = sys._current_frames()
    finally:
        if collecting:
            PyGC_Enable()
    frames.pop(PyThread_get_thread_ident(), None)
    return frames


def current_call():
    """The ObjectRef of the call the calling code runs in (a method's, a remote function's,
    __init__'s), or None outside any call."""
    cdef ThreadState ts = this_thread()
    cdef Group group = ts.group
    if group is None:
        return None
    # On a loop thread, a coroutine is found by its task, a plain body by its thread.
    task = None
    if ts.on_loop:
        try:
            task = aio_current_task()
        except RuntimeError:  # the loop is not running (it is being made, or finished)
            pass
    cdef ObjectRef node = group.running
    while node is not None:
        if (task is not None and node.task is task) or node.thread == ts.ident:
            return node
        node = node.next
    return None


def failed_ref(error):
    """A complete ref that raises `error`, as the error of the call the caller runs in."""
    cdef ThreadState ts = this_thread()
    cdef ObjectRef call = current_call()
    cdef ObjectRef ref = ObjectRef.__new__(ObjectRef)
    ref.state = FAILED
    ref.value = error if ts.group is None else wrap_task_error(
        error, call.name if call is not None else "a call", ts.group)
    return ref


def cancel_requested(ObjectRef ref):
    """Whether cancel() asked the call behind `ref` to stop (its context's is_canceled())."""
    return ref.cancel_requested


def current_group():
    """The group whose call the calling thread is running, or None (not inside a call)."""
    return this_thread().group


def forget_thread_role_after_fork():
    """In a forked child, the forking thread no longer runs a group's calls or loop."""
    cdef ThreadState ts = this_thread()
    ts.group = None
    ts.on_loop = False
    ts.waker = None
