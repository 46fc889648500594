# ObjectRefGenerator: the refs of a generator call, streamed. The call's body (a wrapper made
# per method in pyactors._generators) runs on the actor's group like any call and push()es
# each yielded value; the consumer iterates refs as they come, from a plain thread (`for`,
# next()) or an event loop (`async for`). Either side that must wait for the other waits on a
# "signal": a pending ObjectRef the other side completes, so every kind of waiter (threads,
# loops, wait()) works as it does for results.
#
# Thread-safety as in the rest of the core: every update below is a C-only sequence.


cdef class Stream:
    """What a generator call's body and its ObjectRefGenerator share (the body holds this,
    not the generator: dropping the generator can then stop the body)."""

    def __init__(self):
        raise TypeError("Streams are made by .remote() of a generator")

    # -- the producer (the call's body) ---------------------------------------------------

    def push(self, value):
        """A yielded value becomes the next ref. Returns a signal to wait for before the next
        push (the consumer is `backpressure` refs behind), or None."""
        cdef ObjectRef ref = ObjectRef.__new__(ObjectRef)
        # Made before the decision, which must not be interrupted: allocating may run the
        # collector, and other threads with it.
        cdef ObjectRef room = new_signal() if self.backpressure >= 0 else None
        ref.state = FINISHED
        ref.value = value
        self.items.append(ref)
        if room is not None and len(self.items) - self.consumed >= self.backpressure:
            self.room = room
        else:
            room = None
        self._wake_consumer()
        return room

    @property
    def cancel_requested(self):
        """cancel() asked the call to stop (a plain body stops between two values)."""
        return self.call.cancel_requested

    @property
    def abandoned(self):
        """The generator was dropped: nothing can read what the body would still yield."""
        return self.dropped

    @property
    def consumed(self):
        """How many refs the consumer took (a worker process is told, to produce more)."""
        return self.consumed

    @property
    def backpressure(self):
        """The most unconsumed refs before the body waits for the consumer, or -1."""
        return self.backpressure

    cdef _abandon(self):
        cdef ObjectRef room = self.room
        self.dropped = True
        if room is not None:  # a body waiting for room goes on, and sees it was dropped
            self.room = None
            room._set(FINISHED, None)

    cdef _end(self, ObjectRef call):
        # The call ended; if it failed (an exception in the body, cancel, kill) its ref is the
        # last item: it raises what ended the iteration.
        if call.state != FINISHED:
            self.items.append(call)
        self.finished = True
        self._wake_consumer()

    cdef _wake_consumer(self):
        cdef ObjectRef signal = self.ready
        if signal is not None:
            self.ready = None
            signal._set(FINISHED, None)

    # -- the consumer ---------------------------------------------------------------------

    cdef ObjectRef _take(self):
        """The next ref, or None (none yet, or the end: see finished)."""
        cdef ObjectRef item
        cdef ObjectRef room
        if self.consumed >= len(self.items):
            return None
        item = <ObjectRef>self.items[self.consumed]
        self.items[self.consumed] = None  # consumed refs are the consumer's to keep
        self.consumed += 1
        room = self.room
        if room is not None and len(self.items) - self.consumed < self.backpressure:
            self.room = None
            room._set(FINISHED, None)
        return item

    cdef ObjectRef _signal(self):
        """A ref that completes once the next item exists, or the iteration has ended (then
        already complete)."""
        cdef ObjectRef signal
        if self.consumed < len(self.items) or self.finished:
            return _DONE_SIGNAL
        signal = self.ready
        if signal is None:
            signal = new_signal()
            # The allocation may have let another thread run: an item may have come, or
            # another consumer may have made the signal (that one is then everyone's).
            if self.consumed < len(self.items) or self.finished:
                return _DONE_SIGNAL
            if self.ready is not None:
                return self.ready
            self.ready = signal
        return signal


cdef class ObjectRefGenerator:
    """The refs of a generator method or remote function (``def ... yield`` or ``async def ...
    yield``), in order, each ready as soon as the body yields it.

    ``for ref in gen`` / ``next(gen)`` from a plain thread, ``async for ref in gen`` from an
    event loop; ``ray.wait([gen])`` is ready when the next ref is (or the body has ended). An
    exception in the body is raised by the ref of the item where it happened; after it the
    iteration ends. ``ray.cancel(gen)`` stops the body, and so does dropping the generator.
    """

    def __init__(self):
        raise TypeError("ObjectRefGenerators are made by .remote() of a generator")

    def __iter__(self):
        return self

    def __next__(self):
        cdef ObjectRef item
        while True:
            item = self.stream._take()
            if item is not None:
                return item
            if self.stream.finished:
                raise StopIteration
            get(self.stream._signal())

    def __aiter__(self):
        return self

    async def __anext__(self):
        cdef ObjectRef item
        while True:
            item = self.stream._take()
            if item is not None:
                return item
            if self.stream.finished:
                raise StopAsyncIteration
            await self.stream._signal()

    def next_ready(self):
        """Whether next() would return without waiting."""
        return self.stream.consumed < len(self.stream.items) or self.stream.finished

    def is_finished(self):
        """Whether the body has ended and every ref was returned."""
        return self.stream.finished and self.stream.consumed >= len(self.stream.items)

    def completed(self):
        """A ref that completes when the body ends (it fails if the body failed)."""
        return self.stream.call

    def __del__(self):
        self.stream._abandon()

    def __reduce__(self):
        raise TypeError(f"{self!r} cannot be pickled: it streams results in this process")

    def __repr__(self):
        return f"ObjectRefGenerator({self.stream.call.hex()})"


cdef class StreamWaiter(Waiter):
    # Ends the stream when its call completes.
    cdef notify(self, ObjectRef call):
        self.stream._end(call)


# Completed once, shared: what _signal() returns when nothing is left to wait for.
cdef ObjectRef _DONE_SIGNAL = ObjectRef.__new__(ObjectRef)
_DONE_SIGNAL.state = FINISHED


cdef ObjectRef new_signal():
    cdef ObjectRef signal = ObjectRef.__new__(ObjectRef)
    signal.name = "the next item of a generator"
    return signal


cdef ObjectRefGenerator start_stream(object func, tuple args, dict kwargs, str name,
                                     int flags, Py_ssize_t backpressure, Group group):
    """Submit a generator call to `group`: its body is `func(stream, *args, **kwargs)`."""
    cdef ObjectRefGenerator generator = ObjectRefGenerator.__new__(ObjectRefGenerator)
    cdef Stream stream = Stream.__new__(Stream)
    cdef StreamWaiter waiter = StreamWaiter.__new__(StreamWaiter)
    stream.items = []
    stream.backpressure = backpressure
    stream.call = new_call(func, (stream, *args), kwargs, name, flags)
    waiter.stream = stream
    stream.call._add_waiter(waiter)  # before it can complete: pending until submitted
    generator.stream = stream
    group.submit(stream.call)
    return generator
