# AsyncGroup: one event loop on one thread of its own. The thread starts with the group's first
# call; the loop only when a call needs it: the default group's thread first runs the actor's
# __init__ without a loop (as Ray does) and parks, so an actor nobody calls costs one parked
# thread and no loop (a uvloop loop holds ~300 KB and 5 file descriptors).
# `async def` methods run on the loop, each driven by a CallTask (call_task.pyx); plain `def`
# methods, and `async def` bodies without await (they cannot suspend), run right on its thread.

# How long a stopping loop waits for its cancelled tasks to unwind (a task that swallows
# CancelledError would otherwise hold kill() and shutdown()).
cdef double LOOP_FINALIZE_TIMEOUT = 1.0


cdef class AsyncGroup(Group):
    cdef _wake(self):
        # Only the caller that finds no drain pending schedules one; later submitters ride it.
        if self.drain_pending:
            return
        self.drain_pending = True
        try:
            if self.state == G_UNSTARTED:
                self._start()
            elif self.loop is None:
                self._unpark()  # the thread makes the loop and drains
            elif PyThread_get_thread_ident() == self.thread_id:
                self.loop.call_soon(self.drain_cb)
            elif self.wake_fd >= 0:
                self._write_wake_fd()
            else:
                self.loop.call_soon_threadsafe(self.drain_cb)
        except RuntimeError:
            if self.state != G_CLOSED:  # closed meanwhile: its calls have already failed
                raise
        except BaseException:
            # Interrupted (Ctrl-C in call_soon_threadsafe, or while the thread started): the
            # wakeup may not have gone out, so the next submitter must send one. If it did go
            # out, a second drain finds nothing to do.
            self.drain_pending = False
            raise

    # Other threads wake the loop through an eventfd of the group's own, written without the
    # GIL, as asyncio's _write_to_self() writes its self-pipe. call_soon_threadsafe() on uvloop
    # writes uvloop's with the GIL held: on one CPU the loop's thread, switched to at once,
    # finds the GIL taken, waits and is woken again (W1 pinned, uvloop: 9 -> 5 us a call).
    # Where there is no eventfd, or the loop takes no readers, call_soon_threadsafe() it is.

    cdef _open_wake_fd(self, loop):
        if os_eventfd is None:
            return
        try:
            fd = os_eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except OSError:  # out of file descriptors: call_soon_threadsafe() needs none
            return
        try:
            loop.add_reader(fd, self._woken)
        except Exception:  # a loop that takes no readers (a proactor): call_soon_threadsafe()
            os.close(fd)
            return
        self.wake_fd = fd

    cdef _write_wake_fd(self):
        cdef int fd = self.wake_fd
        cdef uint64_t one = 1
        # Counted, so that the loop's thread does not close the fd under a write (another
        # file could get its number).
        self.wake_writers += 1
        with nogil:
            c_write(fd, &one, 8)  # EAGAIN only with the counter full: a wakeup is pending
        self.wake_writers -= 1
        if self.wake_writers == 0 and self.wake_fd_to_close >= 0:
            fd = self.wake_fd_to_close
            self.wake_fd_to_close = -1
            c_close(fd)

    def _woken(self):
        cdef uint64_t count
        c_read(self.wake_fd, &count, 8)  # resets the counter: one drain for every write so far
        self._drain()

    cdef _close_wake_fd(self):
        cdef int fd = self.wake_fd
        if fd < 0:
            return
        self.wake_fd = -1  # later submitters use call_soon_threadsafe(), which fails once closed
        try:
            self.loop.remove_reader(fd)
        finally:
            if self.wake_writers:
                self.wake_fd_to_close = fd
            else:
                c_close(fd)

    cdef _loop_stopped(self, object cause):
        """The loop returned from run_forever(): by close(), or by itself (`loop.stop()` in a
        method, SystemExit or KeyboardInterrupt raised in a callback). A group without its
        loop can run nothing: its actor dies of it, and calls fail at once instead of waiting
        forever. In the remote-function pool only this group closes (the runtime makes a new
        one for later calls)."""
        if self.state == G_CLOSED:
            return
        reason = (f"the event loop of concurrency group {self.name!r} stopped: "
                  + ("loop.stop() was called on it" if cause is None else
                     f"{type(cause).__name__} was raised in one of its callbacks"))
        if self.actor.is_pool:
            self.close(actor_died_error(self.actor, reason, cause))
        else:
            self.actor.die(actor_died_error(self.actor, reason, cause))

    cdef _unpark(self):
        cdef ThreadState parked = self.parked
        if parked is not None:
            self.parked = None
            PyThread_release_lock(parked.lock)

    cdef _start(self):
        start_thread(self, Thread(target=self._run, name=self.thread_name, daemon=True), True)

    def _run(self):
        global pyactors_on_loop
        cdef ThreadState ts = this_thread()
        self.thread_id = PyThread_get_thread_ident()
        ts.group = self
        try:
            if not self.init_on_loop and not self._run_before_loop(ts):
                return
            try:
                loop = self.loop_factory()
            except BaseException as exc:  # e.g. "Too many open files"
                # asyncio's constructor leaves a half-made loop holding its selector's fd in the
                # frames of this traceback; the error outlives the actor (every ref keeps it),
                # so free that loop now, not whenever the error is collected
                traceback.clear_frames(exc.__traceback__)
                self.actor.die(actor_died_error(
                    self.actor, f"concurrency group {self.name!r} could not make its event "
                                f"loop", exc))
                return
            asyncio.set_event_loop(loop)
            pyactors_on_loop = 1
            executor = DaemonThreadPool(f"{self.thread_name}:executor")
            loop.set_default_executor(executor)
            ts.on_loop = True
            # Each call runs in a context of its own, copied from an empty one: not the
            # drain's (a copy of whichever caller's thread scheduled it) nor this thread's
            # (where __init__ may have set variables). As in Ray, a call sees no contextvars
            # but its own.
            self.base_context = Context()
            self.loop = loop
            self._open_wake_fd(loop)
            if self.state == G_CLOSED:  # closed while the loop was being made: close() saw none
                self.loop_stopping = True
                loop.stop()
            loop.call_soon(self.drain_cb)
            try:
                try:
                    loop.run_forever()
                except BaseException as exc:  # SystemExit, KeyboardInterrupt from a callback
                    self._loop_stopped(exc)
                else:
                    self._loop_stopped(None)
            finally:
                try:
                    _finalize_loop(self, loop, executor)
                finally:
                    asyncio.set_event_loop(None)
        finally:
            pyactors_on_loop = 0
            ts.on_loop = False
            ts.group = None

    cdef bint _run_before_loop(self, ThreadState ts) except -1:
        """Run __init__ if it is queued here, then park until a call needs the loop.

        False if the group closed first.
        """
        cdef ObjectRef head
        while self.state != G_CLOSED:
            head = self.head
            if head is not None and head.flags & F_INIT:
                self._execute_sync(self._admit())
            elif self._can_admit():
                return True
            else:
                # Atomic with _wake(): a submitter that comes after this sees no drain
                # pending and no loop, and unparks us.
                self.drain_pending = False
                self.parked = ts
                ts.park(-1)
        return False

    def _drain(self):
        cdef ObjectRef call
        cdef int started = 0
        while True:
            call = self._admit()
            if call is None:
                break
            if call.flags & F_NO_AWAIT or not call.flags & (F_ASYNC | F_BLOCKING):
                self._execute_in_own_context(call)
            elif call.flags & F_ASYNC:
                self._start_task(call)  # its CallTask has a context of its own
            else:
                self._start_blocking(call)
            call = None  # freed before the next _admit() decides: see ThreadGroup._work
            started += 1
            if started == DRAIN_BATCH and self._can_admit():
                self.loop.call_soon(self.drain_cb)  # drain_pending stays set
                return
        self.drain_pending = False

    cdef _execute_in_own_context(self, ObjectRef call):
        # A plain body, or one without await, run right here: in a context of its own, so
        # that what it sets is not seen by the calls after it in this drain (Ray gives each
        # call of an async actor a task, and so a context, of its own).
        context = PyContext_Copy(self.base_context)
        PyContext_Enter(context)
        try:
            if call.flags & F_NO_AWAIT:
                self._execute_to_end(call)
            else:
                self._execute_sync(call)
        finally:
            PyContext_Exit(context)

    cdef _execute_to_end(self, ObjectRef call):
        # Without an await the coroutine's first step is its whole body: run it here, as a
        # plain def runs, and skip the Task (on 3.11, half of a no-op call's instructions).
        global pyactors_running_call
        cdef PyObject* result = NULL
        cdef PySendResult status
        if call.state != PENDING:
            self._end_unstarted(call)
            return
        call.thread = self.thread_id  # for reports of what the loop is busy with
        pyactors_running_call = <PyObject*>call
        try:
            coro = invoke(call)
            status = PyIter_Send(coro, None, &result)
        except BaseException as exc:
            body_ended(call)
            self._finish_exception(call, exc)
            return
        body_ended(call)
        value = <object>result
        Py_DECREF(value)  # PyIter_Send's reference; `value` holds its own
        if status == PYGEN_RETURN and call.cancel_requested:
            self._finish_cancelled(call)
        elif status == PYGEN_RETURN:
            self._finish(call, FINISHED, value)
        else:  # it awaited after all: its __code__ was replaced after decoration
            coro.close()
            self._finish_exception(call, RuntimeError(
                f"{call.name}() awaited, but its code had no await when it was decorated"))

    cdef _start_task(self, ObjectRef call):
        try:
            coro = invoke(call)
        except BaseException as exc:
            self._finish_exception(call, exc)
            return
        self._start_coroutine(call, coro)

    cdef _start_coroutine(self, ObjectRef call, coro):
        start_call_task(self, call, coro)

    cdef _run_returned_coroutine(self, ObjectRef call, coro):
        # A plain def that returned a coroutine (say, a decorator wrapped an async def):
        # the coroutine is the call's body, run as its task; the call keeps its slot.
        if PyThread_get_thread_ident() == self.thread_id:
            self._start_coroutine(call, coro)
        else:  # a blocking=True method, on a worker thread
            self.loop.call_soon_threadsafe(self._start_returned_coroutine, call, coro)

    def _start_returned_coroutine(self, ObjectRef call, coro):
        if call.state == PENDING:
            self._start_coroutine(call, coro)
        else:
            coro.close()

    cdef _start_blocking(self, ObjectRef call):
        # The call holds its slot in this group while it runs on one of the group's blocking
        # workers; the worker completes it (and admits the next call) itself. Workers are
        # daemon threads of the group (not a ThreadPoolExecutor, whose threads the interpreter
        # joins at exit before shutdown() could fail their calls): a call stuck in one never
        # keeps the process from exiting.
        cdef ThreadState worker
        self.blocking_calls.append(call)
        if self.blocking_idle:
            worker = <ThreadState>self.blocking_idle.pop()
            PyThread_release_lock(worker.lock)
        else:
            start_thread(self, Thread(target=self._blocking_worker, daemon=True,
                                      name=f"{self.thread_name}:blocking"), False)

    def _blocking_worker(self):
        cdef ThreadState ts = this_thread()
        ts.group = self
        try:
            while True:
                if self.blocking_calls:
                    self._execute_sync(<ObjectRef>self.blocking_calls.pop(0))
                elif self.state == G_CLOSED:
                    return
                else:
                    self.blocking_idle.append(ts)  # with the checks above: atomic
                    ts.park(-1)
        finally:
            ts.group = None

    def abandon_after_fork(self, error):
        Group.abandon_after_fork(self, error)
        self.blocking_calls = []
        self.blocking_idle = []
        # The parent's loop reads these: the child must not write to them.
        for fd in (self.wake_fd, self.wake_fd_to_close):
            if fd >= 0:
                os.close(fd)
        self.wake_fd = self.wake_fd_to_close = -1
        self.wake_writers = 0

    @property
    def loop_thread(self):
        """Ident of the thread running this group's event loop, or 0 while it has none."""
        loop = self.loop
        return self.thread_id if loop is not None and not self.loop_stopping else 0

    @property
    def event_loop(self):
        return self.loop

    cdef bint _stop_running(self, ObjectRef call) except -1:
        """Ask a running ``async def`` call to stop: CancelledError inside its coroutine. A
        plain body (and an ``async def`` without await, which runs like one) is only told:
        see Group._stop_running()."""
        if call.stage != S_RUNNING:
            return False
        if call.flags & (F_ASYNC | F_NO_AWAIT) != F_ASYNC:
            return Group._stop_running(self, call)
        if not call.cancel_requested:
            call.cancel_requested = True
            try:
                if PyThread_get_thread_ident() == self.thread_id:
                    self.loop.call_soon(self._cancel_task, call, call.attempts)
                else:
                    self.loop.call_soon_threadsafe(self._cancel_task, call, call.attempts)
            except RuntimeError:  # the loop closed: so did the group, failing the call
                pass
        return True

    def _cancel_task(self, ObjectRef call, int attempt):
        # A call whose task has not begun sees cancel_requested as it begins (CallTask._begin).
        # One that ended and was queued to run again (its actor restarted) meanwhile is not
        # this run: its next run is not cancelled.
        if call.stage == S_RUNNING and call.flags & F_STARTED and call.task is not None \
                and call.attempts == attempt:
            call.task.cancel()

    cdef _stop(self):
        cdef list idle = self.blocking_idle
        self.blocking_idle = []
        for worker in idle:
            PyThread_release_lock((<ThreadState>worker).lock)
        if self.loop is None:
            self._unpark()  # a thread before its loop sees the group closed and ends
        elif not self.loop_stopping:
            # Set before any Python call: a second stop() would cut short the loop's final
            # run (_finalize_loop).
            self.loop_stopping = True
            if PyThread_get_thread_ident() == self.thread_id and not self.loop.is_running():
                return  # it stopped by itself, and this thread is finishing it
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:
                pass  # already closed


cdef _finalize_loop(AsyncGroup group, loop, executor):
    # As asyncio.run() does on exit: cancel what is left, let it unwind, close. Jobs still in
    # the executor are left to their daemon threads: nothing waits for user code.
    cdef CallTask call_task
    group._close_wake_fd()
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    try:
        loop.run_until_complete(_unwind(tasks, _live_call_tasks(group), loop))
    finally:
        try:
            # calls whose bodies outlived the unwinding (they swallowed the CancelledError)
            for call_task in _live_call_tasks(group):
                try:
                    call_task._abandon()
                except BaseException as exc:  # a waiter of its call raised: the others go on
                    loop.call_exception_handler({
                        "message": "pyactors: error while ending an abandoned call",
                        "exception": exc,
                    })
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()


cdef list _live_call_tasks(AsyncGroup group):
    cdef list found = []
    cdef CallTask task = group.tasks
    while task is not None:
        found.append(task)
        task = task.next
    return found


async def _unwind(tasks, call_tasks, loop):
    # One run of the loop for all of it: each run_until_complete costs ~50 us.
    waits = list(tasks)
    for task in call_tasks:
        if task.cancel():
            ended = loop.create_future()
            task.add_done_callback(lambda _, ended=ended: ended.done() or ended.set_result(None))
            waits.append(ended)
    if waits:
        await asyncio.wait(waits, timeout=LOOP_FINALIZE_TIMEOUT)
    await loop.shutdown_asyncgens()


cdef AsyncGroup new_async_group(ActorCore actor, str name, Py_ssize_t limit, loop_factory):
    cdef AsyncGroup group = AsyncGroup.__new__(AsyncGroup)
    _setup_group(group, actor, name, limit)
    group.loop_factory = loop_factory
    group.drain_cb = group._drain
    group.wake_fd = group.wake_fd_to_close = -1
    group.blocking_calls = []
    group.blocking_idle = []
    return group
