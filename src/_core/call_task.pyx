# CallTask: what drives an awaiting `async def` call on its group's loop, in place of an
# asyncio.Task around a wrapper coroutine. A Task costs an awaiting call about as much as the
# rest of the call put together (its constructor and registration in asyncio's set of tasks,
# a wrapper coroutine, a loop iteration before its first step); this object speaks the same
# protocol to the loop and to futures (it is the callback of call_soon and of the future its
# coroutine waits for), and is what asyncio.current_task() returns while the body runs, with
# a Task's cancel(), cancelling() and uncancel(), so asyncio.timeout(), TaskGroup and
# cancellation behave as under a Task. Its first step runs at once (eagerly, as 3.12's eager
# tasks do): a body that never suspends (an uncontended `async with lock`) ends there.
#
# All of it runs on the group's loop thread.

# The loop -> running task map asyncio.current_task() reads (the C accelerator's dict, which
# asyncio.tasks exports on 3.10-3.13). A step enters and leaves it as a Task's step does.
cdef dict aio_current_tasks = asyncio.tasks._current_tasks
cdef object aio_task_get_stack = asyncio.base_tasks._task_get_stack
cdef object aio_task_print_stack = asyncio.base_tasks._task_print_stack
cdef object isgenerator = inspect.isgenerator
# 3.13's uncancel() also withdraws a cancellation not yet delivered once the count is 0.
cdef bint UNCANCEL_CLEARS = sys.version_info >= (3, 13)

cdef enum:
    T_RUNNING = 0
    T_RETURNED = 1
    T_RAISED = 2
    T_CANCELLED = 3


cdef class CallTask:
    def __init__(self, *args, **kwargs):
        raise TypeError("a CallTask is made by pyactors for a call of an awaiting method")

    def __call__(self, fut=None):
        # Called by the loop (a step, from call_soon) and by the awaited future (its done
        # callback, with the future): no bound method is made per suspension.
        self._check_enterable()
        try:
            if fut is None:
                self._step(None)
            else:
                self._wakeup(fut)
        except BaseException as exc:
            self._broke(exc)

    def _throw(self, exc):
        self._check_enterable()
        try:
            self._step(exc)
        except BaseException as error:
            self._broke(error)

    cdef int _check_enterable(self) except -1:
        # As a Task's step: refused while a task (this one included) runs on the loop, and
        # once it has ended; the error is the caller's, the running step goes on.
        if self.outcome != T_RUNNING:
            raise aio_InvalidStateError(f"_step(): already done: {self!r}")
        if PyDict_GetItem(aio_current_tasks, self.loop) != NULL:
            raise RuntimeError(
                f"Cannot enter into task {self!r} while another task "
                f"{aio_current_tasks[self.loop]!r} is being executed.")
        return 0

    cdef _broke(self, exc):
        # An error from outside the body escaped a step: from the awaited object's methods, or
        # from completing the call. A Task would stay pending for good, its call with it; the
        # call fails instead, and its group goes on.
        if self.outcome != T_RUNNING:
            self.loop.call_exception_handler({
                "message": f"pyactors: error after the call of {self.name}() ended",
                "exception": exc,
            })
            return
        try:
            self.coro.close()
        except BaseException:
            pass  # its own error from unwinding: the call fails with the first one
        try:
            self.group._finish_exception(self.call, exc)
        finally:
            self._settle(T_RAISED, exc)

    cdef _begin(self):
        cdef ObjectRef call = self.call
        if call.state != PENDING or call.cancel_requested:
            # killed, or cancelled between admission and now: never run the body
            self.coro.close()
            try:
                self.group._finish(call, FAILED, TaskCancelledError(
                    f"{call.name}() was cancelled before it started"))
            finally:
                self._settle(T_CANCELLED, None)
            return
        call.flags |= F_STARTED
        PyContext_Enter(self.context)
        try:
            current_async_call.set(call)  # calls the body submits are its children
            if self.loop in aio_current_tasks:
                # started from inside a running task (a loop re-entered): the first step
                # waits for the loop, as a Task's would
                self.loop.call_soon(self, context=self.context)
            else:
                self._step(None)
        except BaseException as exc:
            self._broke(exc)  # nothing escapes into the drain, which would stop for good
        finally:
            PyContext_Exit(self.context)

    cdef _wakeup(self, fut):
        # As a Task's: the outcome of the awaited future is thrown into the coroutine, which
        # reads a value itself when it resumes.
        if type(fut) is _Await and (<_Await>fut).phase == A_DONE and (
                (<_Await>fut).target.state == FINISHED):
            self._step(None)
            return
        if (type(fut) is aio_Future or type(fut) is _Await) and not fut.cancelled():
            self._step(fut.exception())  # None after a result: read, not raised
            return
        error = None
        try:
            fut.result()  # what a Task asks of any other future
        except BaseException as exc:
            error = exc
        if error is not None:
            _drop_catching_frame(error)
        self._step(error)

    cdef _step(self, exc):
        cdef PyObject* presult = NULL
        cdef PySendResult status = PYGEN_NEXT
        cdef object raised = None
        if self.must_cancel:
            if not isinstance(exc, aio_CancelledError):
                exc = self._make_cancelled_error()
            self.must_cancel = False
        self.fut_waiter = None
        aio_current_tasks[self.loop] = self  # its callers checked that no task runs there
        try:
            if exc is None:
                status = PyIter_Send(self.coro, None, &presult)
                result = <object>presult
                Py_DECREF(result)  # PyIter_Send's reference; `result` holds its own
            else:
                result = self.coro.throw(exc)
        except StopIteration as stop:  # throw() answered by a return
            status = PYGEN_RETURN
            result = stop.value
        except BaseException as error:
            _drop_catching_frame(error)
            raised = error
        finally:
            del aio_current_tasks[self.loop]
        if raised is not None:
            self._ended(T_RAISED, raised)
        elif status == PYGEN_RETURN:
            self._ended(T_RETURNED, result)
        else:
            self._suspended(result)

    cdef _suspended(self, result):
        cdef object loop
        if result is None:  # a bare yield (asyncio.sleep(0)): step again next iteration
            self.loop.call_soon(self, context=self.context)
            return
        if type(result) is _Await:
            blocking = (<_Await>result)._asyncio_future_blocking
            loop = (<_Await>result).waker.loop
        else:
            blocking = getattr(result, "_asyncio_future_blocking", None)
            loop = None if blocking is None else (
                result.get_loop() if type(result) is aio_Future else aio_future_loop(result))
        if blocking is None:
            if isgenerator(result):
                error = RuntimeError(f"yield was used instead of yield from for generator in "
                                     f"task {self!r} with {result!r}")
            else:
                error = RuntimeError(f"Task got bad yield: {result!r}")
        elif loop is not self.loop:
            error = RuntimeError(f"Task {self!r} got Future {result!r} attached to a "
                                 f"different loop")
        elif not blocking:
            error = RuntimeError(f"yield was used instead of yield from in task {self!r} "
                                 f"with {result!r}")
        else:
            result._asyncio_future_blocking = False
            result.add_done_callback(self, context=self.context)
            self.fut_waiter = result
            if self.must_cancel and result.cancel(msg=self.cancel_message):
                self.must_cancel = False
            return
        self.loop.call_soon(self._throw, error, context=self.context)

    cdef _ended(self, int outcome, value):
        cdef ObjectRef call = self.call
        cdef AsyncGroup group = self.group
        if outcome == T_RETURNED and self.must_cancel:
            # cancel() came during its last step: as a Task's, its outcome is CancelledError
            outcome, value = T_RAISED, self._make_cancelled_error()
        if outcome == T_RAISED and isinstance(value, aio_CancelledError):
            outcome = T_CANCELLED
            # later result() calls say why, as a Task's do
            self.cancel_message = value.args[0] if value.args else None
        try:
            if outcome == T_RETURNED:
                if call.cancel_requested:  # it swallowed the CancelledError: cancelled anyway
                    group._finish_cancelled(call)
                else:
                    group._finish(call, FINISHED, value)
            else:
                group._finish_exception(call, value)
        finally:  # even if a waiter of the call raised: the task has ended
            self._settle(outcome, value)

    cdef _settle(self, int outcome, value):
        cdef CallTask prev = self.prev
        cdef CallTask next = self.next
        self.outcome = outcome
        self.value = value
        self.must_cancel = False
        self.call.task = None
        # out of the group's list of live tasks
        if prev is None:
            self.group.tasks = next
        else:
            prev.next = next
        if next is not None:
            next.prev = prev
        self.prev = self.next = None
        # A task kept by user code (current_task() stored away) keeps its own outcome, not
        # the actor, as a Task keeps only its loop.
        self.call = None
        self.group = None
        if self.callbacks is not None:
            callbacks, self.callbacks = self.callbacks, None
            for fn, context in callbacks:
                self.loop.call_soon(fn, self, context=context)

    cdef _abandon(self):
        """The loop is closing with the body still suspended: close its coroutine (its
        finally blocks run) and end the call, as a Task's garbage-collected coroutine would."""
        if self.outcome != T_RUNNING:
            return
        error = GeneratorExit()
        PyContext_Enter(self.context)  # its finally blocks see the body's contextvars
        try:
            self.coro.close()
        except BaseException as exc:
            error = exc
        finally:
            PyContext_Exit(self.context)
        try:
            self.group._finish_exception(self.call, error)
        finally:
            self._settle(T_CANCELLED, None)

    def _make_cancelled_error(self):
        if self.cancel_message is None:
            return aio_CancelledError()
        return aio_CancelledError(self.cancel_message)

    # -- asyncio.Task's interface, for the code the body runs ------------------------------

    def cancel(self, msg=None):
        if self.outcome != T_RUNNING:
            return False
        self.cancels_requested += 1
        if self.fut_waiter is not None and self.fut_waiter.cancel(msg=msg):
            # the wakeup throws the future's CancelledError into the coroutine
            return True
        self.must_cancel = True
        self.cancel_message = msg
        return True

    def cancelling(self):
        return self.cancels_requested

    def uncancel(self):
        if self.cancels_requested > 0:
            self.cancels_requested -= 1
            if UNCANCEL_CLEARS and self.cancels_requested == 0:
                self.must_cancel = False
        return self.cancels_requested

    def done(self):
        return self.outcome != T_RUNNING

    def cancelled(self):
        return self.outcome == T_CANCELLED

    def result(self):
        self._raise_unless_ended("Result is not set.")
        if self.outcome == T_RAISED:
            raise self.value
        return self.value

    def exception(self):
        self._raise_unless_ended("Exception is not set.")
        return self.value if self.outcome == T_RAISED else None

    cdef int _raise_unless_ended(self, str not_ready) except -1:
        # What result() and exception() raise before there is an outcome to give, or for a
        # cancelled one.
        if self.outcome == T_RUNNING:
            raise aio_InvalidStateError(not_ready)
        if self.outcome == T_CANCELLED:
            raise self._make_cancelled_error()
        return 0

    def add_done_callback(self, fn, *, context=None):
        if context is None:
            context = copy_context()
        if self.outcome != T_RUNNING:
            self.loop.call_soon(fn, self, context=context)
        elif self.callbacks is None:
            self.callbacks = [(fn, context)]
        else:
            self.callbacks.append((fn, context))

    def remove_done_callback(self, fn):
        if self.callbacks is None:
            return 0
        kept = [pair for pair in self.callbacks if pair[0] != fn]
        removed = len(self.callbacks) - len(kept)
        self.callbacks = kept
        return removed

    def get_loop(self):
        return self.loop

    def get_coro(self):
        return self.coro

    def get_context(self):
        return self.context

    def get_name(self):
        return self.name

    def set_name(self, value):
        self.name = str(value)

    def get_stack(self, *, limit=None):
        return aio_task_get_stack(self, limit)

    def print_stack(self, *, limit=None, file=None):
        return aio_task_print_stack(self, limit, file)

    @property
    def _coro(self):  # read by asyncio's get_stack()/print_stack()
        return self.coro

    @property
    def _exception(self):
        return self.value if self.outcome == T_RAISED else None

    @property
    def _loop(self):  # read by anyio (its root task's loop)
        return self.loop

    @property
    def _fut_waiter(self):  # read by libraries that deliver cancellation (anyio)
        return self.fut_waiter

    @property
    def _must_cancel(self):
        return self.must_cancel

    def __repr__(self):
        state = ("pending", "finished", "finished", "cancelled")[self.outcome]
        return f"<pyactors CallTask {self.name!r} {state} coro={self.coro!r}>"


cdef inline _drop_catching_frame(BaseException error):
    # Catching an exception in compiled code adds that frame to its traceback; a Task's C
    # code adds none, and its errors show the body's frames only. with_traceback(), not
    # assignment: a frozen dataclass's __setattr__ refuses the attribute.
    error.with_traceback(error.__traceback__.tb_next)


cdef CallTask start_call_task(AsyncGroup group, ObjectRef call, coro):
    cdef CallTask task = CallTask.__new__(CallTask)
    task.group = group
    task.call = call
    task.coro = coro
    task.loop = group.loop
    task.name = call.name
    # the loop thread's own context, not the drain's: plain calls of the batch may have
    # set variables in that one
    task.context = PyContext_Copy(group.base_context)
    task.next = group.tasks
    if task.next is not None:
        task.next.prev = task
    group.tasks = task
    call.task = task
    task._begin()
    return task
