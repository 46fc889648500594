# Raising KeyboardInterrupt in the thread that runs a plain remote function (Ray's cancel()).
# Python's only way in is PyThreadState_SetAsyncExc(thread ident): the exception is raised the
# next time that thread runs Python code. Two of its rough edges are handled here:
#  - a thread parked in pyactors' get()/wait() runs no Python code until the wait ends: it is
#    woken instead, and get() raises the KeyboardInterrupt itself;
#  - while a thread starts another thread, the new thread's state briefly carries the parent's
#    ident, and SetAsyncExc would interrupt the child: the interrupt waits until the ident is
#    unambiguous again.

cdef extern from "Python.h":
    ctypedef struct PyInterpreterState:
        pass
    ctypedef struct ThreadStateStruct "PyThreadState":
        unsigned long thread_id
    PyInterpreterState* PyInterpreterState_Get()
    ThreadStateStruct* PyInterpreterState_ThreadHead(PyInterpreterState* interp)
    ThreadStateStruct* PyThreadState_Next(ThreadStateStruct* tstate)

# How long cancel() waits, at most, for a starting thread to take its own ident.
cdef int INTERRUPT_ATTEMPTS = 200
cdef double INTERRUPT_RETRY_SECONDS = 0.0005

cdef dict parked_threads = {}  # ident -> ThreadState of remote functions parked in _block()


cdef int interrupt_call(ObjectRef call) except -1:
    cdef unsigned long ident
    for _ in range(INTERRUPT_ATTEMPTS):
        ident = call.thread
        if call.stage != S_RUNNING or ident == 0:
            return 0  # it has ended meanwhile
        if _wake_parked(ident):
            return 0
        if _states_with(ident) == 1:
            PyThreadState_SetAsyncExc(ident, <PyObject*>KeyboardInterrupt_)
            return 0
        sleep(INTERRUPT_RETRY_SECONDS)  # lets the starting thread take its own ident
    return 0  # the body only sees is_canceled(), and ends as cancelled all the same


cdef bint _wake_parked(unsigned long ident):
    cdef ThreadState ts = parked_threads.get(ident)
    cdef ThreadWaiter waiter
    if ts is None:
        return False
    waiter = ts.parked_waiter
    if waiter is None or waiter.abandoned or waiter.remaining <= 0:
        return False
    waiter.remaining = 0  # as the completing waiter does: the lock is released just once
    waiter.released = True
    ts.interrupted = True
    PyThread_release_lock(waiter.lock)
    return True


cdef int _states_with(unsigned long ident):
    # Thread states are added and removed only by threads holding the GIL, as this one does.
    cdef int found = 0
    cdef ThreadStateStruct* tstate = PyInterpreterState_ThreadHead(PyInterpreterState_Get())
    while tstate != NULL:
        if tstate.thread_id == ident:
            found += 1
        tstate = PyThreadState_Next(tstate)
    return found
