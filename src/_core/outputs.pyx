# num_returns=N: a call whose value is a sequence of N values gives N refs, one per value. The
# call's own ref stays internal; an OutputsWaiter on it completes the outputs when it completes.
# Nothing here runs for calls with the usual num_returns=1.


cdef class OutputsWaiter(Waiter):
    cdef notify(self, ObjectRef call):
        cdef Py_ssize_t n = len(self.outputs)
        cdef tuple values = None
        error = None
        if call.state == FINISHED:
            try:
                values = tuple(call.value)
            except Exception as exc:
                error = TypeError(f"{call.name}() returned {type(call.value).__name__} "
                                  f"{call.value!r}, not a sequence of {n} values "
                                  f"(num_returns={n})")
            else:
                if len(values) != n:
                    error = ValueError(f"{call.name}() returned {len(values)} values, but "
                                       f"num_returns={n}: return exactly {n}")
            if error is not None:
                error = wrap_task_error(error, call.name, self.group)
        for i, output in enumerate(self.outputs):
            if error is not None:
                (<ObjectRef>output)._set(FAILED, error)
            elif values is not None:
                (<ObjectRef>output)._set(FINISHED, values[i])
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
