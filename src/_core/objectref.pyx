# ObjectRef: the result cell of one call, and the call itself until it finishes (one object per
# call). It is a future for every kind of waiter: plain threads (get/wait), any asyncio loop
# (await, and asyncio.isfuture() is true so gather/wait/shield/as_completed accept it), and
# concurrent.futures (ref.future()).

STREAMING = NUM_RETURNS_STREAMING

cdef unsigned long long _next_ident = 0


@cython.freelist(256)
cdef class ObjectRef:
    """The result of one remote call, or of ``put()``.

    ``get(ref)`` from a plain thread, ``await ref`` from any asyncio event loop (the
    awaiting loop is never blocked), ``ref.future()`` for a ``concurrent.futures.Future``.
    ``asyncio.isfuture(ref)`` is true, so ``asyncio.gather``, ``asyncio.wait``,
    ``asyncio.shield`` and ``asyncio.as_completed`` accept refs directly.
    """

    # asyncio.isfuture() checks for this class attribute. Instances never set it: awaiting a
    # ref yields a future of the awaiting loop, so one ref can be awaited from many loops.
    _asyncio_future_blocking = False

    def __cinit__(self):
        global _next_ident, dbg_refs_alive
        _next_ident += 1
        self.ident = _next_ident
        if PYACTORS_DEBUG:
            dbg_refs_alive += 1

    def __dealloc__(self):
        global dbg_refs_alive
        if PYACTORS_DEBUG:
            dbg_refs_alive -= 1

    def __init__(self):
        raise TypeError("ObjectRefs are made by .remote(...) and pyactors.put(...), "
                        "not instantiated directly")

    def __repr__(self):
        return f"ObjectRef({self.ident:024x})"

    # A ref is a reference to one result: copies are the same ref, and a pickle could only
    # point at nothing outside this process.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError(
            f"{self!r} cannot be pickled: it refers to a result in this process. Pass the ref "
            f"itself to actors, remote functions and threads (it is shared, not copied), or "
            f"pickle its value (pyactors.get(ref))")

    def hex(self):
        """The ref's id as a hex string (as Ray's ``ObjectRef.hex()``)."""
        return f"{self.ident:024x}"

    # -- completion (any thread) --------------------------------------------------------------

    cdef bint _set(self, int state, object value) except -1:
        """Complete the ref and notify its waiters; False if it was already complete."""
        global dbg_waiters_registered
        if self.state != PENDING:
            return False
        self.state = state
        self.value = value
        waiters = self.waiters
        self.waiters = None
        group = self.group
        self.group = None
        # Bookkeeping before any waiter wakes: a caller that sees the result may submit again
        # at once, and must find the call no longer pending.
        if group is not None:
            (<Group>group).actor._call_completed(self)
        error = None
        if waiters is not None:
            if type(waiters) is list:
                if PYACTORS_DEBUG:
                    dbg_waiters_registered -= len(<list>waiters)
                for waiter in <list>waiters:
                    # One waiter's failure (a KeyboardInterrupt in a future's callback) must
                    # not cost the others their wakeup: it is raised once all are notified.
                    try:
                        (<Waiter>waiter).notify(self)
                    except BaseException as exc:
                        if error is None:
                            error = exc
            else:
                if PYACTORS_DEBUG:
                    dbg_waiters_registered -= 1
                (<Waiter>waiters).notify(self)
        if pyactors_releasing_later and threads_to_release:
            release_threads(True)  # before the finalizers dropping the arguments may run
        # Drop the call's references now rather than when the user drops the ref (a running
        # task keeps its own until it ends).
        self.func = None
        self.args = None
        self.kwargs = None
        self.children = None
        if error is not None:
            raise error
        return True

    cdef bint _add_waiter(self, Waiter waiter) except -1:
        """Register `waiter`; False (nothing registered) if the ref is already complete."""
        global dbg_waiters_registered
        cdef list both
        if self.state != PENDING:
            return False
        if self.waiters is None:
            self.waiters = waiter
        elif type(self.waiters) is list:
            (<list>self.waiters).append(waiter)  # may realloc, never collects garbage
        else:
            # Allocating may run the garbage collector, and a finalizer could complete this
            # ref meanwhile: look again once the list exists.
            both = []
            if self.state != PENDING:
                return False
            both.append(self.waiters)
            both.append(waiter)
            self.waiters = both
        if PYACTORS_DEBUG:
            dbg_waiters_registered += 1
        return True

    cdef _remove_waiter(self, Waiter waiter):
        global dbg_waiters_registered
        cdef list waiters
        if self.waiters is waiter:
            self.waiters = None
        elif type(self.waiters) is list:
            waiters = <list>self.waiters
            for i in range(len(waiters)):
                if waiters[i] is waiter:
                    del waiters[i]
                    break
            else:
                return
        else:
            return
        if PYACTORS_DEBUG:
            dbg_waiters_registered -= 1

    cdef object _outcome(self):
        if self.state == FINISHED:
            return self.value
        # Each raise gets a copy of its own (see exceptions._raisable); the remote traceback is
        # in its message.
        raise raisable(self.value)

    cdef object _loop_future(self):
        loop = aio_get_running_loop()
        fut = loop.create_future()
        if not self._add_waiter(new_future_waiter(waker_for(loop), fut)):
            settle(fut, self)  # completed while the future was being made
        return fut

    # -- asyncio ------------------------------------------------------------------------------

    def __await__(self):
        # A generator: its return value reaches the awaiting coroutine without a StopIteration
        # (nor, from compiled code, its traceback).
        cdef _Await awaiting
        if self.state == PENDING:
            awaiting = _Await.__new__(_Await)
            awaiting.target = self
            awaiting.waker = waker_for(_running_loop("__await__"))
            if self._add_waiter(awaiting):
                awaiting.phase = A_WAITING
                awaiting._asyncio_future_blocking = True
                yield awaiting
                return awaiting.result()  # its task saw it done, or was told to cancel it
        if self.state == CANCELLED:
            raise aio_CancelledError()
        return self._outcome()

    def as_future(self):
        """An ``asyncio.Future`` of the running loop that completes with this ref."""
        _running_loop("as_future")  # outside a loop: the error that says what to use
        return self._loop_future()

    def done(self):
        return self.state != PENDING

    def cancelled(self):
        """True once asyncio cancelled it (ref.cancel()); a call cancelled with
        pyactors.cancel() completes with TaskCancelledError instead, as in Ray."""
        return self.state == CANCELLED

    def result(self):
        if self.state == PENDING:
            raise aio_InvalidStateError("Result is not ready.")
        if self.state == CANCELLED:
            raise aio_CancelledError()
        return self._outcome()

    def exception(self):
        if self.state == PENDING:
            raise aio_InvalidStateError("Exception is not set.")
        if self.state == CANCELLED:
            raise aio_CancelledError()
        return self.value if self.state == FAILED else None

    def _make_cancelled_error(self):
        # asyncio.gather() asks a cancelled child future for the error to raise.
        return aio_CancelledError()

    def add_done_callback(self, fn, *, context=None):
        """Call ``fn(ref)`` on the calling thread's running event loop once the ref completes."""
        cdef CallbackWaiter waiter = CallbackWaiter.__new__(CallbackWaiter)
        waiter.waker = waker_for(_running_loop("add_done_callback"))
        waiter.fn = fn
        waiter.context = copy_context() if context is None else context  # as asyncio's
        if not self._add_waiter(waiter):
            waiter.notify(self)

    def remove_done_callback(self, fn):
        waiters = self.waiters
        cdef list seen = list(waiters) if type(waiters) is list else [waiters]
        # `==` may run Python code, so match first, then unregister by identity.
        cdef list matches = [w for w in seen
                             if type(w) is CallbackWaiter and (<CallbackWaiter>w).fn == fn]
        for waiter in matches:
            self._remove_waiter(<Waiter>waiter)
        return len(matches)

    def get_loop(self):
        """The running loop: a ref belongs to no loop and can be awaited from any of them."""
        return _running_loop("get_loop")

    def cancel(self, msg=None):
        """asyncio's cancel(): the ref is cancelled at once (awaiting it raises
        asyncio.CancelledError, so asyncio timeouts around refs work) and the call is asked to
        stop: a queued call never runs, a running ``async def`` call gets CancelledError, a
        running plain method finishes unseen. ``pyactors.cancel(ref)`` is Ray's cancel."""
        cdef Group group = self.group
        if self.state != PENDING:
            return False
        if self.source is not None:  # one output of a call: cancel the call (all outputs)
            return self.source.cancel(msg)
        if group is not None and group._cancel(self, CANCELLED):
            return True  # it had not started
        # Running: give up on it first (so nothing completes it otherwise meanwhile), then ask
        # it to stop.
        self._set(CANCELLED, TaskCancelledError(
            f"{self.name}() was cancelled through asyncio while running"))
        if group is not None:
            group._stop_running(self)
        return True

    # -- concurrent.futures -------------------------------------------------------------------

    def future(self):
        """A ``concurrent.futures.Future`` that completes with this ref."""
        cdef ConcurrentWaiter waiter = ConcurrentWaiter.__new__(ConcurrentWaiter)
        waiter.fut = cf_Future()
        if not self._add_waiter(waiter):
            waiter.notify(self)
        return waiter.fut


# What one `await ref` yields to the awaiting task: an asyncio future of the awaiting loop (the
# protocol Task speaks: _asyncio_future_blocking, get_loop, add_done_callback, result, cancel)
# that is also the ref's waiter. Its completion runs the task's wakeup callback directly, from
# the loop's batch of completions; settling a loop future there instead would schedule that
# callback for the loop's next iteration (one more call_soon and one more select per await).
# Cancelling the awaiting task cancels this wait, never the call (as for a future of the ref).
cdef enum AwaitPhase:
    A_FRESH = 0      # not registered on the ref
    A_WAITING = 1    # registered on the ref, and yielded to the task
    A_DONE = 2       # the ref completed: its outcome is the result
    A_CANCELLED = 3  # cancelled by its task (Task.cancel while awaiting): CancelledError


@cython.freelist(64)
cdef class _Await(LoopWaiter):
    cdef public bint _asyncio_future_blocking  # Task reads it, then sets it False
    cdef ObjectRef target             # once
    cdef AwaitPhase phase             # loop thread
    cdef object callback              # loop thread: the task's wakeup (the one callback)
    cdef object context               # loop thread
    cdef list more_callbacks          # loop thread: (fn, context) pairs beyond the first
    cdef object cancel_message        # loop thread

    cdef fire(self):
        self.ref = None
        if self.phase != A_WAITING:
            return  # cancelled meanwhile
        self.phase = A_DONE
        fn = self.callback
        if fn is not None:
            self.callback = None
            self.context.run(fn, self)
        if self.more_callbacks is not None:
            self._schedule_more()

    cdef _schedule_more(self):
        cdef list more = self.more_callbacks
        self.more_callbacks = None
        for fn, context in more:
            self.waker.loop.call_soon(fn, self, context=context)

    def add_done_callback(self, fn, *, context=None):
        if context is None:
            context = copy_context()
        if self.phase == A_DONE or self.phase == A_CANCELLED:
            self.waker.loop.call_soon(fn, self, context=context)
        elif self.callback is None and self.more_callbacks is None:
            self.callback = fn
            self.context = context
        else:
            if self.more_callbacks is None:
                self.more_callbacks = []
            self.more_callbacks.append((fn, context))

    def remove_done_callback(self, fn):
        cdef Py_ssize_t removed = 0
        if self.callback is not None and self.callback == fn:
            self.callback = self.context = None
            removed = 1
        if self.more_callbacks is not None:
            kept = [pair for pair in self.more_callbacks if pair[0] != fn]
            removed += len(self.more_callbacks) - len(kept)
            self.more_callbacks = kept
        return removed

    def get_loop(self):
        return None if self.waker is None else self.waker.loop

    def cancel(self, msg=None):
        if self.phase == A_DONE or self.phase == A_CANCELLED:
            return False
        self.phase = A_CANCELLED
        self.cancel_message = msg
        self.target._remove_waiter(self)  # if it completed meanwhile, fire() finds it cancelled
        if self.callback is not None:  # as asyncio's cancel(): each callback in a handle
            self.waker.loop.call_soon(self.callback, self, context=self.context)
            self.callback = self.context = None
        if self.more_callbacks is not None:
            self._schedule_more()
        return True

    def done(self):
        return self.phase == A_DONE or self.phase == A_CANCELLED

    def cancelled(self):
        return self.phase == A_CANCELLED or (
            self.phase == A_DONE and self.target.state == CANCELLED)

    def result(self):
        self._raise_unless_settled("Result is not ready.")
        return self.target._outcome()

    def exception(self):
        self._raise_unless_settled("Exception is not set.")
        return raisable(self.target.value) if self.target.state == FAILED else None

    cdef int _raise_unless_settled(self, str not_ready) except -1:
        # What result() and exception() raise when the ref's outcome is not theirs to give.
        if self.phase == A_CANCELLED:
            raise self._make_cancelled_error()
        if self.phase != A_DONE:
            raise aio_InvalidStateError(not_ready)
        if self.target.state == CANCELLED:
            raise aio_CancelledError()
        return 0

    def _make_cancelled_error(self):
        if self.cancel_message is None:
            return aio_CancelledError()
        return aio_CancelledError(self.cancel_message)


cdef object _running_loop(str what):
    try:
        return aio_get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"ObjectRef.{what}() needs a running event loop: an ObjectRef belongs to no loop "
            f"and is used as an asyncio future from inside one (await it, or pass it to "
            f"asyncio.gather/wait); from plain threads use pyactors.get() or ref.future()"
        ) from None


cdef ObjectRef new_call(object func, tuple args, dict kwargs, str name, int flags):
    cdef ObjectRef ref = ObjectRef.__new__(ObjectRef)
    ref.func = func
    ref.args = args
    ref.kwargs = kwargs
    ref.name = name
    for arg in args:
        if type(arg) is ObjectRef:
            flags |= F_REF_ARGS
            break
    if kwargs is not None and not flags & F_REF_ARGS:
        for arg in kwargs.values():
            if type(arg) is ObjectRef:
                flags |= F_REF_ARGS
                break
    ref.flags = flags
    if flags & F_INIT:
        # An actor's (re)start is nobody's child: a restart submits __init__ from whichever
        # call ended last, and cancel(recursive=True) of that call must not kill the actor.
        return ref
    if pyactors_running_call != NULL:  # submitted by a plain body: its child
        adopt(<ObjectRef>pyactors_running_call, ref)
    elif pyactors_on_loop:  # maybe by a coroutine: its task's context says whose
        parent = PyContextVar_Get_value(current_async_call)
        if parent is not None:
            adopt(<ObjectRef>parent, ref)
    return ref


cdef adopt(ObjectRef parent, ObjectRef child):
    cdef list children
    if parent.state == PENDING and parent.children is None:
        children = [child]  # may let another thread run, and complete the parent
        if parent.state == PENDING and parent.children is None:
            parent.children = children
            return
    if parent.state == PENDING:
        parent.children.append(child)


cdef inline object invoke(ObjectRef call):
    """Call the method or function with the call's arguments.

    Through local references: another thread may complete the ref meanwhile (asyncio's
    ref.cancel(), a kill), and completing it drops `call.func` and `call.args`; the callee
    must not be left holding borrowed pointers to them (a use-after-free when the interpreter
    switches threads while it makes the frame: a GC pass at that allocation runs finalizers).
    """
    func = call.func
    args = call.args
    kwargs = call.kwargs
    if kwargs is None:
        return func(*args)
    return func(*args, **kwargs)


cdef object resolve_arguments(ObjectRef call):
    """Replace the call's top-level ObjectRef arguments by their values (all complete).

    Returns None, or the error of the first failed or cancelled argument (the call then fails
    with it).
    Refs nested in containers stay refs, as in Ray.
    """
    original = call.args  # local references: see invoke()
    if original is None:  # completed meanwhile (cancelled, killed): nothing to resolve
        return None
    cdef list args = list(original)
    for i, arg in enumerate(args):
        if type(arg) is ObjectRef:
            if (<ObjectRef>arg).state != FINISHED:  # failed, or cancelled
                return (<ObjectRef>arg).value
            args[i] = (<ObjectRef>arg).value
    kwargs = call.kwargs
    if kwargs is not None:
        kwargs = dict(kwargs)
        for key, arg in kwargs.items():
            if type(arg) is ObjectRef:
                if (<ObjectRef>arg).state != FINISHED:  # failed, or cancelled
                    return (<ObjectRef>arg).value
                kwargs[key] = (<ObjectRef>arg).value
    resolved = tuple(args)
    if call.state == PENDING:  # completed meanwhile: its arguments are dropped, keep it so
        call.args = resolved
        call.kwargs = kwargs
    return None
