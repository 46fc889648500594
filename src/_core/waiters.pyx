# Whoever waits for a result registers a Waiter on its ObjectRef; the thread that completes the
# ref notifies each one. Plain threads are released directly; event loops get one wakeup per
# batch of completions through their LoopWaker.


cdef class Waiter:
    def __cinit__(self):
        global dbg_waiters_alive
        if PYACTORS_DEBUG:
            dbg_waiters_alive += 1

    def __dealloc__(self):
        global dbg_waiters_alive
        if PYACTORS_DEBUG:
            dbg_waiters_alive -= 1

    cdef notify(self, ObjectRef ref):
        raise AssertionError("Waiter.notify is abstract")


cdef class ThreadWaiter(Waiter):
    cdef notify(self, ObjectRef ref):
        # C only: runs inside the completing thread's atomic sequence (a list append cannot
        # run the collector).
        self.remaining -= 1
        if self.remaining == 0 and not self.abandoned:
            if pyactors_releasing_later:
                threads_to_release.append(self)
                return
            self.released = True
            PyThread_release_lock(self.lock)


# ThreadWaiters whose refs completed inside complete_call(), released when it ends. Shared by
# every thread (all under the GIL): whoever releases takes them all, and one released or
# abandoned meanwhile is skipped.
cdef list threads_to_release = []
# Locks released in one go without the GIL; more are released with it.
DEF RELEASE_BATCH = 16


cdef complete_call(ObjectRef call, int state, object value):
    """Complete a call's ref; the plain threads waiting for it are released afterwards, with
    the GIL dropped, and before its arguments are dropped (their finalizers are user code,
    which may wait for one of those threads).

    Released inside _set(), with the GIL held, a waiting thread wakes only to wait for the GIL:
    on one CPU the kernel switches to it at once and back, four switches a round trip where
    two will do, and with the GIL dropped it runs at once (W1 pinned: 17 -> 5 us a call).
    """
    global pyactors_releasing_later
    pyactors_releasing_later += 1
    try:
        call._set(state, value)
    finally:
        pyactors_releasing_later -= 1
        if pyactors_releasing_later == 0 and threads_to_release:
            release_threads(True)


cdef int release_threads(bint drop_gil) except -1:
    """Release the threads complete_call() left to release."""
    cdef list waiters = threads_to_release
    cdef ThreadWaiter waiter
    cdef PyThread_type_lock locks[RELEASE_BATCH]
    cdef int count = 0
    cdef int i
    # C only until the GIL is dropped: nothing can append meanwhile, and the list is emptied,
    # not replaced (a new list may run the collector, and a finalizer switch threads).
    for item in waiters:
        waiter = <ThreadWaiter>item
        if waiter.abandoned or waiter.released:
            continue
        # `released` is set with the GIL, before the lock is: an owner that stops waiting
        # meanwhile (timeout, Ctrl-C) sees it and takes the lock back, waiting the moment it
        # takes us to release it. One it abandoned before is never touched again (a nested
        # wait frees its lock then).
        waiter.released = True
        if drop_gil and count < RELEASE_BATCH:
            locks[count] = waiter.lock
            count += 1
        else:
            PyThread_release_lock(waiter.lock)
    del waiters[:]
    if count:
        with nogil:
            for i in range(count):
                PyThread_release_lock(locks[i])
    return 0


cdef int leave_release_window() except -1:
    """Before user code runs inside complete_call() (a future's done callbacks): the threads
    left to release go now, and what the code completes releases its own at once - code that
    waits for one of those threads must not wait for ever. Returns what to restore after."""
    global pyactors_releasing_later
    cdef int depth = pyactors_releasing_later
    if depth:
        pyactors_releasing_later = 0
        release_threads(False)
    return depth


cdef class LoopWaker:
    def __cinit__(self, loop):
        self.loop = loop
        self.pending = []
        self.run_cb = self.run
        if type(loop) is aio_SelectorEventLoop:
            self.ready = loop._ready
            # An empty context: each waiter runs in its own (a task's, a done-callback's).
            self.run_handle = aio_Handle(self.run_cb, (), loop, Context())

    cdef post(self, LoopWaiter waiter):
        global dbg_wakeups_pending
        self.pending.append(waiter)
        if PYACTORS_DEBUG:
            dbg_wakeups_pending += 1
        if self.scheduled:
            return
        self.scheduled = True
        try:
            # Asked of the thread, not remembered: a loop may be run by another thread later.
            if aio_running_loop_or_none() is self.loop:
                self.loop.call_soon(self.run_cb)
            elif self.ready is not None and not self.running:
                self._wake_selector_loop()
            else:
                self.loop.call_soon_threadsafe(self.run_cb)
        except RuntimeError:
            # The loop is closed: nobody can receive these results any more. `scheduled` stays
            # set so later completions do not try again.
            if PYACTORS_DEBUG:
                dbg_wakeups_pending -= len(self.pending)
            self.pending = []

    cdef _wake_selector_loop(self):
        # What call_soon_threadsafe() does on asyncio's selector loop, without its Python
        # frames (a third of a cross-loop wakeup's instructions): one Handle, made once, on
        # the loop's ready queue (`scheduled` keeps it there at most once, and post() does
        # not queue it while it runs: a loop run again inside it, as nest_asyncio does,
        # would enter its context twice), and a byte to its self-pipe, sent as asyncio's
        # _write_to_self() sends it: socket.send() drops the GIL for the system call, so the
        # loop's thread, woken by it, finds the GIL free. Sent with the GIL held, the woken
        # thread had to wait for it and be woken once more: two more context switches a call
        # on one CPU (W3 from a stock-asyncio caller, pinned: 29.7 against the floor's 22.9 us).
        csock = self.loop._csock
        if csock is None:
            raise RuntimeError("Event loop is closed")
        self.ready.append(self.run_handle)
        try:
            csock.send(b"\0")
        except OSError:
            # full (a wakeup is pending already) or closed (its loop is closing, which
            # drops its ready queue)
            pass

    def run(self):
        global dbg_wakeups_pending
        cdef list batch = self.pending
        cdef Py_ssize_t i
        cdef bint outer = not self.running
        self.pending = []
        self.scheduled = False
        self.running = True
        if PYACTORS_DEBUG:
            dbg_wakeups_pending -= len(batch)
        try:
            for i in range(len(batch)):
                try:
                    (<LoopWaiter>batch[i]).fire()
                except (KeyboardInterrupt, SystemExit):
                    # As from a loop callback of its own: it ends run_forever(). The rest of
                    # the batch is delivered when the loop runs again.
                    self._repost(batch[i + 1:])
                    raise
                except BaseException as exc:
                    # A failing done-callback must not starve the rest of the batch.
                    self.loop.call_exception_handler({
                        "message": "pyactors: exception in an ObjectRef done-callback",
                        "exception": exc,
                    })
        finally:
            if outer:
                self.running = False

    cdef _repost(self, list rest):
        global dbg_wakeups_pending
        if not rest:
            return
        if PYACTORS_DEBUG:
            dbg_wakeups_pending += len(rest)
        self.pending = rest + self.pending
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run_cb)


cdef class LoopWaiter(Waiter):
    cdef notify(self, ObjectRef ref):
        self.ref = ref
        self.waker.post(self)

    cdef fire(self):
        raise AssertionError("LoopWaiter.fire is abstract")


cdef class FutureWaiter(LoopWaiter):
    cdef fire(self):
        cdef ObjectRef ref = self.ref
        self.ref = None
        if not self.fut.done():  # done: its awaiter was cancelled
            settle(self.fut, ref)


cdef class CallbackWaiter(LoopWaiter):
    cdef fire(self):
        cdef ObjectRef ref = self.ref
        self.ref = None
        self.context.run(self.fn, ref)


cdef class ConcurrentWaiter(Waiter):
    cdef notify(self, ObjectRef ref):
        global pyactors_releasing_later
        cdef int depth = leave_release_window()
        fut = self.fut
        try:
            if ref.state == CANCELLED:
                fut.cancel()
            elif fut.set_running_or_notify_cancel():  # False: cancelled by its owner
                settle(fut, ref)
        except (RuntimeError, cf_InvalidStateError):
            pass  # its owner completed the future itself: that outcome stands
        finally:
            pyactors_releasing_later = depth


cdef class SettledWaiter(Waiter):
    cdef notify(self, ObjectRef ref):
        global pyactors_releasing_later
        cdef int depth = leave_release_window()
        try:
            self.fn(ref)
        finally:
            pyactors_releasing_later = depth


cdef class DependencyWaiter(Waiter):
    cdef notify(self, ObjectRef ref):
        if self.call.state != PENDING:
            return  # cancelled or failed already
        if ref.state == FINISHED:
            self.remaining -= 1
            if self.remaining != 0:
                return
            ref = None
        arguments_settled(self.call, ref)


cdef arguments_settled(ObjectRef call, ObjectRef failed):
    """Run or fail `call`, whose ref arguments are all ready or one of which (`failed`) failed.

    Iterative, never recursive: failing a call completes its ref, which may fail the next
    call of a chain, and so on for as long as the chain is (100,000 links is a real
    pipeline). The thread that starts settling runs a work list that later links append to.
    """
    cdef ThreadState ts = this_thread()
    cdef list work = ts.settling
    cdef Py_ssize_t i = 0
    cdef Group group
    if work is not None:  # already settling, further up this thread's stack
        work.append(call)
        work.append(failed)
        return
    work = ts.settling = [call, failed]
    first_error = None
    try:
        while i < len(work):
            call = <ObjectRef>work[i]
            failed = <ObjectRef>work[i + 1]
            work[i] = work[i + 1] = None  # what is settled need not stay alive until the end
            i += 2
            group = call.group
            if call.state != PENDING or group is None:
                continue
            try:
                group._arguments_ready(call, failed)
            except BaseException as exc:  # settle the rest first: none may be left pending
                if first_error is None:
                    first_error = exc
    finally:
        ts.settling = None
    if first_error is not None:
        raise first_error


cdef settle(fut, ObjectRef ref):
    """Give a complete ref's outcome to an asyncio or concurrent.futures future."""
    if ref.state == FINISHED:
        fut.set_result(ref.value)
    elif ref.state == CANCELLED:
        fut.cancel()
    else:
        fut.set_exception(raisable(ref.value))


cdef LoopWaiter new_future_waiter(LoopWaker waker, object fut):
    cdef FutureWaiter waiter = FutureWaiter.__new__(FutureWaiter)
    waiter.waker = waker
    waiter.fut = fut
    return waiter
