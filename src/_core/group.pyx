# Group: one concurrency group of one actor. Admission (a slot counter and a FIFO of waiting
# calls) is shared; AsyncGroup and ThreadGroup differ only in where admitted calls run.
#
# Wakeup rule: whoever makes a queued call admissible (a submitter, a finishing call, __init__
# completing) calls _wake(); the subclass turns that into at most one pending wakeup of its
# thread(s). All list and counter updates are atomic sequences (see _core.pxd).

# Admissions per drain before yielding to the loop's other callbacks.
cdef int DRAIN_BATCH = 256
# How long start_thread() waits, after an interrupt, to learn whether the thread started.
cdef double THREAD_START_GRACE = 1.0


cdef class Group:
    def __init__(self):
        raise TypeError("Groups are created by ActorCore.add_group()")

    cdef submit(self, ObjectRef call, bint front=False):
        cdef ActorCore actor = self.actor
        cdef DependencyWaiter waiter = None
        if call.flags & F_REF_ARGS:
            # Allocated before the checks below: an allocation may run the garbage collector,
            # whose finalizers may close this group.
            waiter = DependencyWaiter.__new__(DependencyWaiter)
            waiter.call = call
        if self.state == G_CLOSED:
            call._set(FAILED, self.closed_error)
            return
        if actor.max_pending and actor.pending - actor.init_pending >= actor.max_pending \
                and not call.flags & F_INIT:
            raise PendingCallsLimitExceededError(
                f"{actor.description} has {actor.pending - actor.init_pending} calls pending, "
                f"its limit (max_pending_calls={actor.max_pending}); wait for some to finish")
        actor.pending += 1
        call.group = self  # from here on the call counts as pending until _set()
        if PYACTORS_DEBUG:
            global dbg_calls_pending
            dbg_calls_pending += 1
        if waiter is not None:
            self._await_arguments(call, waiter)
        else:
            self._enqueue(call, front)

    cdef _enqueue(self, ObjectRef call, bint front=False):
        # `front`: ahead of everything queued - an actor's restarted __init__, or a call run
        # again after its actor exited under it.
        call.stage = S_QUEUED
        call.since = monotonic_now()
        if front and self.head is not None:
            call.next = self.head
            self.head.prev = call
            self.head = call
        elif front or self.tail is None:
            self.head = self.tail = call
        else:
            call.prev = self.tail
            self.tail.next = call
            self.tail = call
        self.queued += 1
        if self._can_admit():
            self._wake()

    cdef _await_arguments(self, ObjectRef call, DependencyWaiter waiter):
        # Registering may allocate, so other threads may run in between (see _cancel): one
        # count held for the registration itself keeps an argument that completes meanwhile
        # from releasing the call early, and the argument lists are held locally because a
        # failed argument completes the call, which drops them.
        cdef tuple args = call.args
        cdef dict kwargs = call.kwargs
        waiter.remaining = 1
        for arg in args:
            if type(arg) is ObjectRef and (<ObjectRef>arg)._add_waiter(waiter):
                waiter.remaining += 1
        if kwargs is not None:
            for arg in kwargs.values():
                if type(arg) is ObjectRef and (<ObjectRef>arg)._add_waiter(waiter):
                    waiter.remaining += 1
        waiter.remaining -= 1
        if call.state != PENDING:  # an argument failed meanwhile, and failed the call
            return
        if self.state == G_CLOSED:  # closed by a finalizer while registering
            self._finish(call, FAILED, self.closed_error)
        elif waiter.remaining == 0:
            self._arguments_ready(call, None)
        elif self._ordered():
            # Ordered group: later calls queue behind this one, as Ray orders a caller's calls.
            call.flags |= F_QUEUED_UNRESOLVED
            self._enqueue(call)
        else:
            # Holds no slot and blocks nobody until its arguments are ready.
            call.stage = S_WAITING
            call.next = self.waiting
            if self.waiting is not None:
                self.waiting.prev = call
            self.waiting = call
            self.waiting_count += 1

    cdef _arguments_ready(self, ObjectRef call, ObjectRef failed):
        """All of `call`'s ref arguments completed, or `failed` did: run it, or fail it."""
        error = failed.value if failed is not None else resolve_arguments(call)
        if error is not None:
            if call.stage != S_UNLISTED:
                self._unlink(call)
            self._finish(call, FAILED, error)
        elif call.stage == S_WAITING:
            self._unlink(call)
            self._enqueue(call)
        elif call.stage == S_QUEUED:
            call.flags &= ~F_QUEUED_UNRESOLVED
            if self._can_admit():
                self._wake()
        elif call.stage == S_UNLISTED and call.state == PENDING:  # all were ready at submission
            if self.state == G_CLOSED:
                self._finish(call, FAILED, self.closed_error)
            else:
                self._enqueue(call)

    cdef Py_ssize_t _capacity(self):
        return self.limit + self.borrowed

    cdef bint _has_free_slot(self):
        return self.in_flight < self._capacity()

    cdef _lend_slot(self):
        # One of the group's calls blocks without needing its slot meanwhile: nested calls
        # it waits for can then run even when every slot is taken by such waiters.
        self.borrowed += 1
        if self._can_admit():
            self._wake()

    cdef _reclaim_slot(self):
        # The call runs again: the group may run past its limit until enough calls end, as
        # Ray's CPU accounting does when a blocked task resumes.
        self.borrowed -= 1

    cdef bint _can_admit(self):
        cdef ObjectRef head = self.head
        return (head is not None and self._has_free_slot() and self.state != G_CLOSED
                and not head.flags & F_QUEUED_UNRESOLVED
                and (self.actor.ready or head.flags & F_INIT))

    cdef ObjectRef _admit(self):
        """Move the first queued call into a slot, or None if none may start now."""
        if not self._can_admit():
            return None
        cdef ObjectRef call = self.head
        cdef double now = monotonic_now()
        if now - call.since > self.max_queue_wait:
            self.max_queue_wait = now - call.since
        call.since = now
        self._unlink(call)
        if self.running is not None:
            call.next = self.running
            self.running.prev = call
        self.running = call
        call.stage = S_RUNNING
        self.in_flight += 1
        if PYACTORS_DEBUG and self.in_flight > self._capacity():
            dbg_violation(f"{self.location}: admitted a call past its limit "
                          f"({self.in_flight} running, limit {self.limit}, "
                          f"{self.borrowed} lent)")
        return call

    cdef _unlink(self, ObjectRef call):
        """Take `call` out of whichever of the group's lists holds it."""
        cdef ObjectRef prev = call.prev
        cdef ObjectRef nxt = call.next
        cdef int stage = call.stage
        if prev is not None:
            prev.next = nxt
        elif stage == S_QUEUED:
            self.head = nxt
        elif stage == S_RUNNING:
            self.running = nxt
        else:
            self.waiting = nxt
        if nxt is not None:
            nxt.prev = prev
        elif stage == S_QUEUED:
            self.tail = prev
        call.prev = None
        call.next = None
        call.stage = S_UNLISTED
        if stage == S_QUEUED:
            self.queued -= 1
        elif stage == S_RUNNING:
            self.in_flight -= 1
        else:
            self.waiting_count -= 1
        if PYACTORS_DEBUG and stage == S_UNLISTED:
            dbg_violation(f"{self.location}: unlinked {call.name}(), which was in no list")
        if PYACTORS_DEBUG and (self.queued < 0 or self.in_flight < 0 or self.waiting_count < 0):
            dbg_violation(f"{self.location}: a negative count (queued {self.queued}, running "
                          f"{self.in_flight}, waiting {self.waiting_count})")

    cdef _wake(self):
        raise AssertionError("Group._wake is abstract")

    cdef bint _ordered(self):
        # Calls start in submission order even while an earlier one waits for its arguments
        # (a threaded actor's group of one slot, as Ray orders a caller's calls).
        return False

    cdef _execute_sync(self, ObjectRef call):
        global pyactors_running_call
        if call.state != PENDING:
            self._end_unstarted(call)
            return
        call.thread = PyThread_get_thread_ident()  # where cancel() may interrupt it
        pyactors_running_call = <PyObject*>call
        try:
            value = invoke(call)
        except BaseException as exc:
            body_ended(call)
            self._finish_exception(call, exc)
        else:
            body_ended(call)
            if call.cancel_requested:
                if type(value) is CoroutineType:
                    value.close()  # never to run: no "never awaited" warning
                self._finish_cancelled(call)
            elif call.flags & F_INIT and value is not None:  # as type.__call__ would say
                if type(value) is CoroutineType:
                    value.close()  # never to run: no "never awaited" warning
                self._finish_exception(call, TypeError(
                    f"__init__() should return None, not {type(value).__name__!r}"))
            elif type(value) is CoroutineType:
                self._run_returned_coroutine(call, value)
            else:
                self._finish(call, FINISHED, value)

    cdef _end_unstarted(self, ObjectRef call):
        # The call completed between its admission and the start of its body: close() failed
        # it (and took it out of every list), or asyncio's ref.cancel() gave up on it, and then
        # it still holds its slot.
        if call.stage == S_RUNNING:
            self._finish(call, call.state, call.value)

    cdef _run_returned_coroutine(self, ObjectRef call, coro):
        coro.close()  # never awaited: no "coroutine was never awaited" warning later
        self._finish_exception(call, TypeError(
            f"{call.name}() is a plain def but returned a coroutine, and a threaded actor has "
            f"no event loop to run it: declare it `async def`"))

    cdef _finish(self, ObjectRef call, int state, object value):
        cdef bint ran = call.stage == S_RUNNING
        if ran:
            self._unlink(call)
        if call.flags & F_INIT:
            complete_call(call, state, value)
            self.actor._init_finished(value if state == FAILED else None)
            return
        # Counted before the ref completes: whoever sees the result sees the stats too.
        if call.state == PENDING:
            if state == FINISHED:
                self.completed += 1
            elif state == CANCELLED or isinstance(value, TaskCancelledError):
                self.cancelled += 1
            else:
                self.failed += 1
            if self.actor.exiting is not None or self.actor.restarting:
                # The last call of an exit or restart ends after __ray_shutdown__ (or the
                # restart) has run in _next_after(): as in Ray, whoever sees it end sees the
                # actor gone.
                try:
                    self._next_after(call)
                finally:
                    complete_call(call, state, value)
                return
            try:
                complete_call(call, state, value)
            finally:  # the next call starts even if a waiter raised
                self._next_after(call)
            return
        if ran:
            # Its ref completed while it ran (asyncio's ref.cancel(), cancel(force=True)): it
            # has ended now.
            self.cancelled += 1
        self._next_after(call)

    cdef _next_after(self, ObjectRef call):
        if self._can_admit():
            self._wake()
        if self.actor.exiting is not None or self.actor.restarting:
            self.actor._after_call()  # the last running call of an exit or restart

    cdef _finish_exception(self, ObjectRef call, BaseException exc):
        if call.flags & F_INIT:
            self._finish(call, FAILED, exc)  # the actor dies with it as the cause
        elif isinstance(exc, SystemExit) and not self.actor.is_pool:
            self.actor._exit_from(self, call, exc)  # sys.exit() or exit_actor() in a method
        elif call.cancel_requested:  # however it ended, it ends as cancelled
            self._finish_cancelled(call)
        else:
            self._finish(call, FAILED, wrap_task_error(exc, call.name, self))

    cdef _finish_cancelled(self, ObjectRef call):
        # A call that cancel() asked to stop while it ran, and that has ended: its error is a
        # TaskError and a TaskCancelledError, as Ray's RayTaskError(TaskCancelledError).
        if call.flags & F_OUTLIVED and call.state == PENDING:  # its actor restarted under it
            self.actor._run_again_or_fail(self, call, self.actor.restart_cause)
            return
        self._finish(call, FAILED, wrap_task_error(
            TaskCancelledError(f"{call.name}() was cancelled while running"), call.name, self))

    cdef bint _cancel(self, ObjectRef call, int state) except -1:
        """Cancel a call that has not started: it completes as `state` (FAILED with
        TaskCancelledError for pyactors.cancel(), CANCELLED for asyncio's ref.cancel())."""
        if call.state != PENDING or call.stage == S_RUNNING:
            return False
        # Made before the checks that count: making it allocates, and on 3.10/3.11 an
        # allocation may run the garbage collector, whose finalizers may switch threads.
        error = TaskCancelledError(f"{call.name}() was cancelled before it started")
        if call.state != PENDING or call.stage == S_RUNNING:
            return False
        if call.stage != S_UNLISTED:
            self._unlink(call)
        call.cancel_requested = True
        self._finish(call, state, error)
        return True

    cdef bint _stop_running(self, ObjectRef call) except -1:
        """Ask a running call to stop. A plain body (a method, or an async def without await)
        is not interrupted - its actor's state would be left half-changed - but it is told
        (get_runtime_context().is_canceled()), and its call ends as cancelled whatever it
        returns, as in Ray."""
        if call.stage != S_RUNNING:
            return False
        call.cancel_requested = True
        return True

    cdef _stop(self):
        raise AssertionError("Group._stop is abstract")

    # -- lifecycle and introspection (Python-facing, not per call) ----------------------------

    def close(self, error, bint stop=True):
        """Fail every queued and running call with `error`, refuse new ones, and (unless
        `stop` is false: see stop_threads()) tell the threads to end.

        Returns at once; join() waits for the threads. Safe from any thread, including the
        group's own.
        """
        cdef list calls = []
        with self.lifecycle_lock:
            if self.state != G_CLOSED:
                calls = self._take_all(error)
        for node in calls:
            (<ObjectRef>node)._set(FAILED, error)
        if stop:  # closed already (by a graceful exit, say): its threads still must end
            self._stop()

    def stop_threads(self):
        """Tell a closed group's threads to end (they also end when close() stops them)."""
        self._stop()

    def abandon_after_fork(self, error):
        """In a forked child: fail every call, forget the parent's threads (the child has none
        of them), and take no lock a parent thread may have held when it forked."""
        self.lifecycle_lock = Lock()
        cdef list calls = self._take_all(error) if self.state != G_CLOSED else []
        self.threads = []
        for node in calls:
            (<ObjectRef>node)._set(FAILED, error)

    cdef list _refuse_new(self, error):
        """Close the group to new calls and take out those that have not started; running
        calls go on (a graceful exit)."""
        with self.lifecycle_lock:
            if self.state == G_CLOSED:
                return []
            return self._take_all(error, False)

    cdef list _take_all(self, error, bint running=True):
        """Close the group and take every call out of its lists (an atomic sequence); with
        `running` false, the running calls stay where they are."""
        cdef ObjectRef node
        cdef list calls = []
        # From here on no object is allocated (list growth is not one): nothing can switch
        # threads and change the lists while they are walked.
        self.state = G_CLOSED
        self.closed_error = error
        _append_chain(calls, self.waiting)
        _append_chain(calls, self.head)
        if running:
            _append_chain(calls, self.running)
        for node in calls:
            node.prev = None
            node.next = None
            node.stage = S_UNLISTED
        self.head = self.tail = self.waiting = None
        self.queued = self.waiting_count = 0
        if running:
            self.running = None
            self.in_flight = 0
        return calls

    def join(self, double timeout):
        """Wait up to `timeout` seconds for the group's threads to end; True if they all did."""
        deadline = monotonic() + timeout
        current = threading.current_thread()
        with self.lifecycle_lock:
            threads = list(self.threads)
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - monotonic()))
        return not any(t.is_alive() for t in threads if t is not current)

    def live_threads(self):
        """The group's threads (started, not yet joined)."""
        with self.lifecycle_lock:
            return [t for t in self.threads if t.is_alive()]

    def running_calls(self):
        """(name, seconds it has run, thread ident of a plain body or 0, asyncio task or
        None) for each call in flight: what a stuck or blocked thread is busy with."""
        cdef list calls = []
        cdef ObjectRef node
        cdef double now = monotonic_now()
        _append_chain(calls, self.running)  # allocates no object: no other thread runs meanwhile
        cdef list found = []
        for node in calls:
            found.append((node.name, now - node.since, node.thread, node.task))
        return found

    def set_limit(self, Py_ssize_t limit):
        if limit < 1:
            raise ValueError(f"a concurrency limit must be at least 1, got {limit}")
        self.limit = limit
        if self._can_admit():
            self._wake()

    def stats(self):
        return {
            "limit": self.limit,
            "running": self.in_flight,
            "queued": self.queued,
            "waiting_for_arguments": self.waiting_count,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "max_queue_wait": self.max_queue_wait,
        }

    @property
    def threads_started(self):
        with self.lifecycle_lock:
            return len(self.threads)

    @property
    def location(self):
        if self.actor.is_pool:
            return self.actor.description
        return f"concurrency group {self.name!r} of {self.actor.description}"

    @property
    def closed(self):
        return self.state == G_CLOSED

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} of {self.actor.description}>"


cdef int _append_chain(list calls, ObjectRef node) except -1:
    while node is not None:
        calls.append(node)
        node = node.next
    return 0


cdef inline void body_ended(ObjectRef call) noexcept:
    # Called before any other Python code runs on this thread: a KeyboardInterrupt that
    # cancel() aimed at the body and that the body did not reach must not hit what follows.
    global pyactors_running_call
    pyactors_running_call = NULL
    if call.cancel_requested:
        PyThreadState_SetAsyncExc(call.thread, NULL)
    call.thread = 0


cdef bint start_thread(Group group, thread, bint only_first) except -1:
    """Start one of the group's threads unless the group closed (or, with `only_first`, has a
    thread already). If the system refuses, the actor dies of it: its calls could never run.

    Started under the lifecycle lock, so join() never meets a thread that is not started yet.
    The group is marked started first: the new thread may park at once, and a waker must then
    find it to unpark, not mistake the group for idle.
    """
    failure = None
    with group.lifecycle_lock:
        if group.state == G_CLOSED or (only_first and group.threads):
            return False
        group.threads.append(thread)
        group.state = G_STARTED
        try:
            thread.start()
        except BaseException as exc:
            if _refused(exc):
                group.threads.remove(thread)
                failure = exc
            else:
                # Raised into start() while it waited for the thread (a KeyboardInterrupt, or
                # any exception of a signal handler): it belongs to the caller, and the actor
                # stays usable. The thread may have started all the same (it then runs as
                # usual); if it did not, the group is left as if never asked.
                if not thread._started.wait(THREAD_START_GRACE):
                    group.threads.remove(thread)
                    if not group.threads:
                        group.state = G_UNSTARTED
                raise
    if failure is not None:
        group.actor.die(actor_died_error(
            group.actor, f"concurrency group {group.name!r} could not start a thread", failure))
        return False
    return True


cdef bint _refused(BaseException exc):
    # What Thread.start() raises when the system cannot make a thread (the same words on
    # 3.10 to 3.13), as opposed to what a signal handler raises while start() waits.
    return isinstance(exc, MemoryError) or (
        type(exc) is RuntimeError and "can't start new thread" in str(exc))


cdef _setup_group(Group group, ActorCore actor, str name, Py_ssize_t limit):
    group.actor = actor
    group.name = name
    group.limit = limit
    group.lends_slots = actor.is_pool and type(group) is ThreadGroup
    group.lifecycle_lock = Lock()
    group.threads = []
    group.thread_name = f"pyactors:{actor.class_name}({actor.actor_id[:8]}):{name}"
