# Group: one concurrency group of one actor. Admission (a slot counter and a FIFO of waiting
# calls) is shared; AsyncGroup and ThreadGroup differ only in where admitted calls run.
#
# Wakeup rule: whoever makes a queued call admissible (a submitter, a finishing call, __init__
# completing) calls _wake(); the subclass turns that into at most one pending wakeup of its
# thread(s). All list and counter updates are atomic sequences (see _core.pxd).

cdef enum:
    G_IDLE = 0      # no thread yet: started by the first call
    G_STARTED = 1
    G_CLOSED = 2    # every call fails with closed_error

# Admissions per drain before yielding to the loop's other callbacks.
cdef int DRAIN_BATCH = 256


cdef class Group:
    def __init__(self):
        raise TypeError("Groups are created by ActorCore.add_group()")

    cdef submit(self, ObjectRef call):
        if self.state == G_CLOSED:
            call._set(FAILED, self.closed_error)
            return
        call.group = self
        call.stage = S_QUEUED
        if self.tail is None:
            self.head = call
        else:
            call.prev = self.tail
            self.tail.next = call
        self.tail = call
        self.queued += 1
        if self._can_admit():
            self._wake()

    cdef bint _can_admit(self):
        cdef ObjectRef head = self.head
        return (head is not None and self.in_flight < self.limit and self.state != G_CLOSED
                and (self.actor.ready or head.flags & F_INIT))

    cdef ObjectRef _admit(self):
        """Move the first queued call into a slot, or None if none may start now."""
        if not self._can_admit():
            return None
        cdef ObjectRef call = self.head
        self._unlink(call)
        if self.running is not None:
            call.next = self.running
            self.running.prev = call
        self.running = call
        call.stage = S_RUNNING
        self.in_flight += 1
        return call

    cdef _unlink(self, ObjectRef call):
        """Take `call` out of the queue or the running list, whichever holds it."""
        cdef ObjectRef prev = call.prev
        cdef ObjectRef nxt = call.next
        cdef bint queued = call.stage == S_QUEUED
        if prev is not None:
            prev.next = nxt
        elif queued:
            self.head = nxt
        else:
            self.running = nxt
        if nxt is not None:
            nxt.prev = prev
        elif queued:
            self.tail = prev
        call.prev = None
        call.next = None
        call.stage = S_NEW
        if queued:
            self.queued -= 1
        else:
            self.in_flight -= 1

    cdef _wake(self):
        raise AssertionError("Group._wake is abstract")

    cdef _execute_sync(self, ObjectRef call):
        if call.state != PENDING:
            return  # failed by close() after it was admitted
        try:
            if call.kwargs is None:
                value = call.func(*call.args)
            else:
                value = call.func(*call.args, **call.kwargs)
        except BaseException as exc:
            self._finish_exception(call, exc)
        else:
            self._finish(call, FINISHED, value)

    cdef _finish(self, ObjectRef call, int state, object value):
        if call.stage == S_RUNNING:
            self._unlink(call)
        if call.flags & F_INIT:
            call._set(state, value)
            self.actor._init_finished(value if state == FAILED else None)
            return
        if call._set(state, value):
            if state == FINISHED:
                self.completed += 1
            elif isinstance(value, TaskCancelledError):
                self.cancelled += 1
            else:
                self.failed += 1
        if self._can_admit():
            self._wake()

    cdef _finish_exception(self, ObjectRef call, BaseException exc):
        if call.flags & F_INIT:
            error = exc  # the actor dies with it as the cause
        elif call.cancel_requested and isinstance(exc, aio_CancelledError):
            error = TaskCancelledError(f"{call.name}() was cancelled while running")
        else:
            error = wrap_task_error(exc, call.name, self)
        self._finish(call, FAILED, error)

    cdef bint _cancel(self, ObjectRef call) except -1:
        if call.state != PENDING or call.stage != S_QUEUED:
            return False
        self._unlink(call)
        call.cancel_requested = True
        self._finish(call, FAILED,
                     TaskCancelledError(f"{call.name}() was cancelled before it started"))
        return True

    cdef _stop(self):
        raise AssertionError("Group._stop is abstract")

    # -- lifecycle and introspection (Python-facing, not per call) ----------------------------

    def close(self, error):
        """Fail every queued and running call with `error`, refuse new ones, stop the threads.

        Returns at once; join() waits for the threads. Safe from any thread, including the
        group's own.
        """
        cdef ObjectRef node
        cdef list calls = []
        with self.lifecycle_lock:
            if self.state == G_CLOSED:
                return
            self.state = G_CLOSED
            self.closed_error = error
            for first in (self.head, self.running):
                node = first
                while node is not None:
                    calls.append(node)
                    node = node.next
            for node in calls:
                node.prev = None
                node.next = None
                node.stage = S_NEW
            self.head = self.tail = self.running = None
            self.queued = self.in_flight = 0
        for node in calls:
            node._set(FAILED, error)
        self._stop()

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
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
        }

    @property
    def threads_started(self):
        with self.lifecycle_lock:
            return len(self.threads)

    @property
    def location(self):
        if self.actor.label is not None:
            return self.actor.label
        return f"concurrency group {self.name!r} of {self.actor.describe()}"

    @property
    def closed(self):
        return self.state == G_CLOSED

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} of {self.actor.describe()}>"


cdef _setup_group(Group group, ActorCore actor, str name, Py_ssize_t limit):
    group.actor = actor
    group.name = name
    group.limit = limit
    group.lifecycle_lock = Lock()
    group.threads = []
    group.thread_name = f"pyactors:{actor.class_name}:{name}"
