# num_returns=N: a call whose value is a sequence of N values gives N refs, one per value. The
# call's own ref stays internal; an OutputsWaiter on it completes the outputs when it completes.
# Nothing here runs for calls with the usual num_returns=1.


cdef class YieldedValues:
    """What a generator's body gives num_returns=N: the values it yielded, and the exception
    that ended it early (or None). Those values keep their refs, the other refs raise it."""

    def __init__(self, list values, error):
        self.values = values
        self.error = error


cdef class OutputsWaiter(Waiter):
    cdef notify(self, ObjectRef call):
        cdef Py_ssize_t n = len(self.outputs)
        cdef tuple values = None
        cdef Py_ssize_t given = n
        error = None
        if call.state == FINISHED and type(call.value) is YieldedValues \
                and (<YieldedValues>call.value).error is not None:
            values = tuple((<YieldedValues>call.value).values)
            given = min(len(values), n)
            error = wrap_task_error((<YieldedValues>call.value).error, call.name, self.group)
        elif call.state == FINISHED:
            try:
                values = tuple((<YieldedValues>call.value).values
                               if type(call.value) is YieldedValues else call.value)
            except Exception as exc:
                error = TypeError(f"{call.name}() returned {type(call.value).__name__} "
                                  f"{call.value!r}, not a sequence of {n} values "
                                  f"(num_returns={n})")
            else:
                if len(values) != n:
                    error = ValueError(f"{call.name}() returned {len(values)} values, but "
                                       f"num_returns={n}: return exactly {n}")
            if error is not None:
                given = 0
                error = wrap_task_error(error, call.name, self.group)
        for i, output in enumerate(self.outputs):
            if values is not None and i < given:
                (<ObjectRef>output)._set(FINISHED, values[i])
            elif error is not None:
                (<ObjectRef>output)._set(FAILED, error)
            else:  # the call failed or was cancelled: so is every output
                (<ObjectRef>output)._set(call.state, call.value)


cdef object split_outputs(ObjectRef call, Py_ssize_t n, Group group):
    """The refs that .remote() returns for num_returns=n (None for 0)."""
    cdef OutputsWaiter waiter = OutputsWaiter.__new__(OutputsWaiter)
    cdef ObjectRef output
    waiter.outputs = []
    waiter.group = group
    for _ in range(n):
        output = ObjectRef.__new__(ObjectRef)
        output.source = call
        output.name = call.name
        waiter.outputs.append(output)
    if not call._add_waiter(waiter):  # already complete (failed at submission)
        waiter.notify(call)
    return waiter.outputs if n else None
