# ProcessGroup: a concurrency group whose calls run in a worker process, where the same group
# of an in-process actor enforces the limit and the FIFO. Here every call is admitted as soon
# as it may be sent - its ref arguments resolved, the actor's __init__ done, submission order
# kept for a threaded actor's single slot - and handed to the group's link, which writes it to
# the worker's pipe on the admitting thread (no thread of its own, no loop hop): calls
# pipeline instead of waiting here for a slot a round trip away. The pool of process tasks
# sends a few calls ahead per worker (its window, set_window), and each worker runs one at a time.
# Kill, max_pending_calls and cancel of a call not sent yet answer here at once; the link's I/O
# thread completes calls through complete(), the path every group finishes by.


cdef class ProcessGroup(Group):
    cdef _wake(self):
        # Under the dispatch lock, so that calls reach the worker in admission (FIFO) order and
        # a cancel never overtakes the call it cancels. Reentrant: ending an unstarted call
        # below may admit and send the next one from inside this loop.
        cdef ObjectRef call
        cdef object func, args, kwargs
        cdef list batch = []
        cdef list unstarted = None
        with self.dispatch_lock:
            while True:
                call = self._admit()
                if call is None:
                    break
                # Taken before anything allocates: completing the call (a kill, asyncio's
                # ref.cancel()) drops them, and the tuple below may let another thread run.
                func, args, kwargs = call.func, call.args, call.kwargs
                if call.state != PENDING:  # completed between admission and now (killed)
                    if unstarted is None:
                        unstarted = []
                    unstarted.append(call)
                    continue
                batch.append((call, func, args, kwargs, bool(call.flags & F_INIT)))
            if batch:
                self.link.send_calls(self, batch)
            if unstarted is not None:
                for call in unstarted:
                    self._end_unstarted(call)

    cdef bint _ordered(self):
        return self.serial and self.declared == 1

    cdef bint _stop_running(self, ObjectRef call) except -1:
        """Ask a call running in the worker to stop: the worker's own core decides what that
        means for its body (CancelledError in an ``async def``, the flag for a plain one,
        KeyboardInterrupt in a remote function), as in one process."""
        if call.stage != S_RUNNING:
            return False
        if not call.cancel_requested:
            call.cancel_requested = True
            with self.dispatch_lock:
                self.link.send_cancel(call)
        return True

    cdef _stop(self):
        self.link.stop()

    def complete(self, ObjectRef call, bint ok, value):
        """The worker's answer to `call` (the link's I/O thread): its value, or its error."""
        if call.stage != S_RUNNING:
            return  # failed meanwhile by close() (a kill, the worker's death)
        self._finish(call, FINISHED if ok else FAILED, value)

    def fail_unsendable(self, ObjectRef call, error):
        """A call the link could not send (its resolved arguments do not pickle): it fails
        alone, and its slot goes to the next."""
        if call.stage == S_RUNNING:
            self._finish(call, FAILED, error)

    def set_limit(self, Py_ssize_t limit):
        if limit < 1:
            raise ValueError(f"a concurrency limit must be at least 1, got {limit}")
        with self.dispatch_lock:  # behind the calls sent before it, as in one process
            self.declared = limit
            self.link.send_limit(self.name, limit)

    def set_window(self, Py_ssize_t window):
        """The most calls sent and not yet answered at once (the pool of process tasks sets it
        as its tasks' length asks); the calls it lets in go at once."""
        if window < 1:
            raise ValueError(f"a window must be at least 1 call, got {window}")
        self.limit = window
        if self._can_admit():
            self._wake()

    def stats(self):
        """As an in-process group's. `running`: as the actor's worker says (one round trip);
        the process pool's are not asked: of its calls sent and not yet answered, up to the
        limit. The other calls sent are `queued`, with those that wait here. max_queue_wait
        counts the wait for ref arguments and __init__ here, not in the worker's queue."""
        stats = Group.stats(self)
        stats["limit"] = self.declared
        running = self.link.running_in_worker(self.name)
        # At most the calls sent: one answered there may not have arrived yet
        running = min(self.in_flight, self.declared if running is None else running)
        stats["running"] = running
        stats["queued"] = self.queued + self.in_flight - running
        return stats

    def join(self, double timeout):
        return self.link.join(timeout)


cdef ProcessGroup new_process_group(ActorCore actor, str name, Py_ssize_t limit, link,
                                    bint serial, Py_ssize_t window):
    cdef ProcessGroup group = ProcessGroup.__new__(ProcessGroup)
    # The worker's group enforces `limit`; this one only bounds how many calls are sent.
    _setup_group(group, actor, name, window if window > 0 else PY_SSIZE_T_MAX)
    group.declared = limit
    group.link = link
    group.serial = serial
    group.dispatch_lock = RLock()
    return group


def copy_into(object destination, object source):
    """Copy the bytes of `source` to the start of the writable buffer `destination`, without
    the GIL: a big argument on its way into shared memory (tens of milliseconds for tens of
    megabytes) does not stop the process's other threads."""
    cdef Py_buffer dst, src
    PyObject_GetBuffer(destination, &dst, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(source, &src, PyBUF_SIMPLE)
        try:
            if src.len > dst.len:
                raise ValueError(f"copy_into: {src.len} bytes do not fit in {dst.len}")
            with nogil:
                memcpy(dst.buf, src.buf, src.len)
        finally:
            PyBuffer_Release(&src)
    finally:
        PyBuffer_Release(&dst)


# What the wire (pyactors._process.wire) asks of every call's arguments and result: whether
# they are plain enough for the C pickler - or immutable enough to cross inside the frame,
# unpickled until then - and whether any is a ref to resolve first.

cdef Py_ssize_t PLAIN_MOST = 32  # items looked at before the general path is cheaper


cdef bint _plain(object value, int depth, bint containers) except -1:
    cdef type kind = type(value)
    # (bytes of any size: the C pickler never lets them go out of band anyway)
    if (value is None or kind is bool or kind is int or kind is float or kind is str
            or kind is complex or kind is bytes):
        return True
    if depth == 0:
        return False
    if kind is tuple or (containers and kind is list):
        if len(value) > PLAIN_MOST:
            return False
        for item in value:
            if not _plain(item, depth - 1, containers):
                return False
        return True
    if containers and kind is dict:
        if len(<dict>value) > PLAIN_MOST:
            return False
        for key, item in (<dict>value).items():
            if type(key) is not str or not _plain(item, depth - 1, containers):
                return False
        return True
    return False


def plain(object value, int depth):
    """Whether `value` is built-in scalars and bytes, and tuples, lists and dicts (str keys)
    of them, at most 32 items each and `depth` levels deep: what the C pickler pickles as
    cloudpickle would, 8x faster."""
    return _plain(value, depth, True)


def frozen(object value, int depth):
    """Whether `value` is plain (see plain()) without lists or dicts: nothing in it can change
    after it is given, so it may be pickled later, with the frame that carries it."""
    return _plain(value, depth, False)


def has_refs(tuple args, dict kwargs):
    """Whether any of a call's arguments (not nested ones) is an ObjectRef."""
    for arg in args:
        if type(arg) is ObjectRef:
            return True
    if kwargs is not None:
        for arg in kwargs.values():
            if type(arg) is ObjectRef:
                return True
    return False
