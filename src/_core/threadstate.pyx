# Per-thread state: the lock a thread parks on, and what the core knows about the thread.

cdef str _THREAD_STATE_KEY = "pyactors._core.ThreadState"

# The thread that runs Python's signal handlers, and how long it parks between checks for one.
cdef unsigned long main_thread_ident = threading.main_thread().ident
cdef PY_TIMEOUT_T SIGNAL_CHECK_MICROS = 100_000


cdef class ThreadState:
    def __cinit__(self):
        global dbg_thread_states
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError("pyactors: cannot allocate a thread lock")
        # Acquired from the start: park() blocks until another thread releases it for us.
        PyThread_acquire_lock(self.lock, NOWAIT_LOCK)
        self.ident = PyThread_get_thread_ident()
        if PYACTORS_DEBUG:
            dbg_thread_states += 1

    def __dealloc__(self):
        global dbg_thread_states
        if self.lock != NULL:
            PyThread_free_lock(self.lock)
        if PYACTORS_DEBUG:
            dbg_thread_states -= 1

    cdef int park(self, double timeout) except -1:
        return park_on(self.lock, timeout)


cdef int park_on(PyThread_type_lock lock, double timeout) except -1:
    """Block (without the GIL) until another thread releases `lock`: 1, or 0 on timeout.

    timeout < 0 waits forever. Signals interrupt the wait so that the main thread's
    KeyboardInterrupt is raised here rather than after the result arrives.
    """
    cdef PyLockStatus status
    cdef PY_TIMEOUT_T micros = -1
    cdef PY_TIMEOUT_T wait
    cdef double deadline = 0.0
    cdef bint handles_signals = PyThread_get_thread_ident() == main_thread_ident
    if timeout >= 0:
        deadline = monotonic() + timeout
        micros = _micros(timeout)
    # A signal that arrived since the last bytecode that ran handlers cannot interrupt the
    # wait: run its handler now, or it would wait for whatever releases the lock.
    PyErr_CheckSignals()
    while True:
        wait = micros
        if handles_signals and (micros < 0 or micros > SIGNAL_CHECK_MICROS):
            # One that arrives after the check above and before the wait begins (another
            # thread, given the GIL we drop, may send it then) would not interrupt it either.
            wait = SIGNAL_CHECK_MICROS
        with nogil:
            status = PyThread_acquire_lock_timed(lock, wait, 1)
        if status == PY_LOCK_ACQUIRED:
            return 1
        if status == PY_LOCK_FAILURE and wait == micros:
            return 0
        PyErr_CheckSignals()
        if timeout >= 0:
            micros = _micros(deadline - monotonic())


cdef inline PY_TIMEOUT_T _micros(double seconds):
    if seconds <= 0:
        return 0
    if seconds * 1e6 >= <double>PY_TIMEOUT_MAX:
        return PY_TIMEOUT_MAX
    return <PY_TIMEOUT_T>(seconds * 1e6)


cdef ThreadState this_thread():
    cdef object tdict = <object>PyThreadState_GetDict()
    cdef PyObject* found = PyDict_GetItem(tdict, _THREAD_STATE_KEY)
    if found != NULL:
        return <ThreadState>found
    state = ThreadState()
    tdict[_THREAD_STATE_KEY] = state
    return state


cdef LoopWaker waker_for(object loop):
    """The LoopWaker of `loop`, which must be running on this thread."""
    cdef ThreadState ts = this_thread()
    cdef LoopWaker waker = ts.waker
    if waker is None or waker.loop is not loop:
        waker = LoopWaker.__new__(LoopWaker, loop)
        ts.waker = waker
    return waker
