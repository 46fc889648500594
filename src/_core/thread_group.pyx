# ThreadGroup: up to `limit` worker threads of its own, started as calls need them. Idle workers
# park on their own lock; a submitter releases one. A worker that admits a call and sees more
# admissible work wakes one more, so wakeups cascade instead of being broadcast.


cdef class ThreadGroup(Group):
    cdef _wake(self):
        self._wake_one()

    cdef bint _ordered(self):
        return self.limit == 1

    cdef _wake_one(self):
        cdef ThreadState worker
        if self.idle:
            worker = <ThreadState>self.idle.pop()
            PyThread_release_lock(worker.lock)
        elif self.spawned < self._capacity() and self.state != G_CLOSED:
            self.spawned += 1
            self._spawn()

    cdef _spawn(self):
        thread = None
        try:
            thread = Thread(target=self._work, daemon=True,
                            name=f"{self.thread_name}:{self.spawned - 1}")
            start_thread(self, thread, False)
        except BaseException:
            if thread is None or thread not in self.threads:  # interrupted before it started
                self.spawned -= 1
            raise

    def _work(self):
        cdef ThreadState ts = this_thread()
        cdef ObjectRef call
        ts.group = self
        try:
            while True:
                call = self._admit()
                if call is None:
                    if self.state == G_CLOSED:
                        return
                    self.idle.append(ts)  # with the check above: atomic against close()
                    ts.park(-1)
                    continue
                if self._can_admit():
                    self._wake_one()
                self._execute_sync(call)
                # Dropped here, not when the next _admit()'s answer replaces it: freeing what
                # the call held may let another thread run (an mmap unmaps without the GIL),
                # and a submitter running between _admit() finding nothing and the append to
                # `idle` would find no idle worker to wake - a lost wakeup, the call stranded.
                call = None
        finally:
            ts.group = None

    cdef bint _stop_running(self, ObjectRef call) except -1:
        """Ask a running plain remote function to stop: as Ray does, a KeyboardInterrupt is
        raised in it (see interrupt_call()). An actor's plain method is only told (see
        Group._stop_running)."""
        if call.stage != S_RUNNING or not self.actor.is_pool or call.thread == 0:
            return Group._stop_running(self, call)
        if not call.cancel_requested:
            call.cancel_requested = True
            interrupt_call(call)
        return True

    def abandon_after_fork(self, error):
        Group.abandon_after_fork(self, error)
        self.idle = []

    cdef _stop(self):
        cdef list idle = self.idle
        self.idle = []
        for worker in idle:
            PyThread_release_lock((<ThreadState>worker).lock)


cdef ThreadGroup new_thread_group(ActorCore actor, str name, Py_ssize_t limit):
    cdef ThreadGroup group = ThreadGroup.__new__(ThreadGroup)
    _setup_group(group, actor, name, limit)
    group.idle = []
    return group
