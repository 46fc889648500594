# C declarations and Python names the core uses on its hot paths, looked up once at import.

cimport cython

import asyncio
import concurrent.futures
import contextvars
import inspect
import os
import sys
import threading
import time
import traceback
import types

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.contextvars cimport get_value as PyContextVar_Get_value
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from posix.unistd cimport close as c_close, read as c_read, write as c_write
from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)

from pyactors import _executor
from pyactors import exceptions as _exceptions


cdef extern from "pythread.h":
    ctypedef enum PyLockStatus:
        PY_LOCK_FAILURE
        PY_LOCK_ACQUIRED
        PY_LOCK_INTR
    ctypedef long long PY_TIMEOUT_T
    const PY_TIMEOUT_T PY_TIMEOUT_MAX
    PyLockStatus PyThread_acquire_lock_timed(
        PyThread_type_lock lock, PY_TIMEOUT_T microseconds, int intr_flag) nogil
    unsigned long PyThread_get_thread_ident()

cdef extern from "Python.h":
    PyObject* PyThreadState_GetDict()
    PyObject* PyDict_GetItem(object d, object key)
    int PyErr_CheckSignals() except -1
    int PyThreadState_SetAsyncExc(unsigned long id, PyObject* exc)
    int PyGC_Disable()
    const Py_ssize_t PY_SSIZE_T_MAX
    int PyGC_Enable()
    # 3.10+: steps a coroutine; its return value comes back without a StopIteration.
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    PySendResult PyIter_Send(object iter, object arg, PyObject** presult) except? PYGEN_ERROR
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    object PyContext_Copy(object ctx)

cdef extern from "<time.h>" nogil:
    ctypedef int clockid_t
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    const clockid_t CLOCK_MONOTONIC
    int clock_gettime(clockid_t clock, timespec* tp)

cdef inline double monotonic_now() noexcept nogil:
    # time.monotonic() without a Python call: read on every admission for queue-wait stats.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9

cdef extern from *:
    """
    /* The call whose plain body this thread runs (borrowed: the call outlives its body), or
       NULL. Calls submitted meanwhile are its children, for cancel(recursive=True). */
    static __thread PyObject *pyactors_running_call = NULL;
    /* Set on a group's event-loop thread: there, the call of the running coroutine is in
       the task's context (current_async_call). */
    static __thread int pyactors_on_loop = 0;
    /* Set while this thread completes a call's ref (complete_call() in waiters.pyx): the
       threads it releases are released once it is done, without the GIL. */
    static __thread int pyactors_releasing_later = 0;
    """
    PyObject* pyactors_running_call
    int pyactors_on_loop
    int pyactors_releasing_later

cdef extern from "debug.h":
    const int PYACTORS_DEBUG


cdef object aio_get_running_loop = asyncio.get_running_loop
cdef object aio_running_loop_or_none = asyncio._get_running_loop
cdef object aio_current_task = asyncio.current_task
# The call whose coroutine runs in this asyncio task (each task has a context of its own).
cdef object current_async_call = contextvars.ContextVar("pyactors.current_call", default=None)
cdef object copy_context = contextvars.copy_context
cdef object Context = contextvars.Context
cdef object aio_Handle = asyncio.Handle
cdef object os_eventfd = getattr(os, "eventfd", None)  # Linux
# asyncio's own selector loop (a user's subclass may override what LoopWaker bypasses).
cdef object aio_SelectorEventLoop = asyncio.SelectorEventLoop
cdef object aio_CancelledError = asyncio.CancelledError
cdef object aio_Future = asyncio.Future
cdef object aio_future_loop = asyncio.futures._get_loop  # get_loop(), else _loop, as Task asks
cdef object aio_InvalidStateError = asyncio.InvalidStateError
cdef object cf_Future = concurrent.futures.Future
cdef object cf_InvalidStateError = concurrent.futures.InvalidStateError
cdef object monotonic = time.monotonic
cdef object sleep = time.sleep
cdef object Thread = threading.Thread
cdef object Lock = threading.Lock
cdef object RLock = threading.RLock
cdef object CoroutineType = types.CoroutineType
cdef object KeyboardInterrupt_ = KeyboardInterrupt

cdef object DaemonThreadPool = _executor.DaemonThreadPool
cdef object TaskCancelledError = _exceptions.TaskCancelledError
cdef object PendingCallsLimitExceededError = _exceptions.PendingCallsLimitExceededError
cdef object GetTimeoutError = _exceptions.GetTimeoutError
cdef object DeadlockError = _exceptions.DeadlockError
cdef object ActorExit = _exceptions.ActorExit
cdef object wrap_task_error = _exceptions._wrap_task_error
cdef object raisable = _exceptions._raisable
cdef object actor_died_error = _exceptions._actor_died_error
