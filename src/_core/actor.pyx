# ActorCore: one actor's groups and lifecycle. RemoteMethod: what `handle.method.remote()` and
# `remote_function.remote()` run, with everything resolved when the handle was made.

from pyactors._options import IGNORED_TASK_OPTIONS as _IGNORED_TASK_OPTIONS
from pyactors._options import num_returns as _num_returns
from pyactors._options import require_bool as _require_bool
from pyactors._retries import retry_options as _retry_options
from pyactors._retries import retrying as _retrying


cdef class ActorCore:
    def __cinit__(self, str class_name, str actor_id, str pool_name=None,
                  Py_ssize_t max_pending_calls=0, handle_factory=None, reaper=None,
                  Py_ssize_t max_restarts=0, Py_ssize_t max_task_retries=0):
        self.class_name = class_name
        self.actor_id = actor_id
        self.restarts_left = max_restarts
        self.task_retries = max_task_retries
        # The remote-function pool is an ActorCore too (its groups admit the same way); its
        # name stands where messages about an actor say "actor Class(id)".
        self.is_pool = pool_name is not None
        self.description = pool_name if self.is_pool else f"actor {class_name}({actor_id})"
        self.max_pending = max_pending_calls
        self.handle_factory = handle_factory
        self.reaper = reaper
        self.groups = {}
        self.retired = []

    def add_group(self, str name, Py_ssize_t limit, loop_factory=None):
        """Add a concurrency group: on an event loop from `loop_factory`, or on worker threads."""
        if self.default_group is not None and self.default_group.state != G_UNSTARTED:
            raise RuntimeError("groups must be added before the actor's first call")
        cdef Group group
        if loop_factory is None:
            group = new_thread_group(self, name, limit)
        else:
            group = new_async_group(self, name, limit, loop_factory)
        return self._added(name, group)

    def add_process_group(self, str name, Py_ssize_t limit, link, bint serial,
                          Py_ssize_t window=0):
        """Add a concurrency group whose calls `link` runs in worker processes, which enforce
        `limit`; `serial`: a threaded actor's group (its calls keep submission order at limit
        1); `window`: the most calls sent at once (0: no bound)."""
        if self.default_group is not None and self.default_group.state != G_UNSTARTED:
            raise RuntimeError("groups must be added before the actor's first call")
        return self._added(name, new_process_group(self, name, limit, link, serial, window))

    cdef Group _added(self, str name, Group group):
        self.groups[name] = group
        if name == "default":
            self.default_group = group
        return group

    def renew_group(self, str name):
        """Replace the closed group `name` by a new one of the same kind and limit (the
        remote-function pool, after a loop stopped under it); the live group otherwise."""
        cdef Group old = self.groups[name]
        cdef Group group
        if old.state != G_CLOSED:
            return old
        if type(old) is AsyncGroup:
            group = new_async_group(self, name, old.limit, (<AsyncGroup>old).loop_factory)
        else:
            group = new_thread_group(self, name, old.limit)
        self.groups[name] = group
        self.retired.append(old)
        return group

    cdef list _all_groups(self):
        return [*self.groups.values(), *self.retired]

    def all_groups(self):
        """Every group, the ones renew_group() replaced included."""
        return self._all_groups()

    def group(self, str name):
        """The group called `name`; ValueError naming the defined groups otherwise."""
        group = self.groups.get(name)
        if group is None:
            raise ValueError(
                f"{self.class_name} has no concurrency group {name!r}; its groups are "
                f"{sorted(self.groups)}. Declare it in @remote(concurrency_groups={{...}}) "
                f"or .options(concurrency_groups=...)")
        return group

    def start(self, init, tuple args, dict kwargs, bint on_loop=False):
        """Run `init(*args, **kwargs)` as the default group's first call; calls wait for it.

        `on_loop` (async actors): run it on the default group's event loop, running - for an
        __init__ that uses the loop, as Ray runs it - rather than before the loop exists.
        """
        if on_loop and type(self.default_group) is AsyncGroup:
            (<AsyncGroup>self.default_group).init_on_loop = True
        if self.restarts_left != 0:  # kept only where a restart may need them again
            self.init_args = args
            self.init_kwargs = kwargs or None
        self.init_pending = True
        cdef ObjectRef call = new_call(init, args, kwargs or None,
                                       f"{self.class_name}.__init__", F_INIT)
        self.default_group.submit(call)
        return call  # its outcome: None, or the exception __init__ raised

    def mark_ready(self):
        """For cores with nothing to initialise (the remote-function pool)."""
        self._init_finished(None)

    cdef _init_finished(self, object exc):
        if exc is not None:
            self.die(actor_died_error(self, "its __init__ raised", exc))
            return
        self.ready = True
        for group in self.groups.values():
            if (<Group>group)._can_admit():
                (<Group>group)._wake()

    # Lifetime (Ray's rule): an actor nobody can call any more - no handle and no method
    # object left - exits once its pending calls are done. Releases come from finalizers,
    # which may run inside the garbage collector at any allocation, so they only count and
    # hand the actor to the reaper (a reentrant queue); dying happens in exit_if_unused() on
    # the reaper's thread, or in _call_completed(), both safe points.

    cdef _call_completed(self, ObjectRef call):
        global dbg_calls_pending
        self.pending -= 1
        if call.flags & F_INIT:
            self.init_pending = False
        if PYACTORS_DEBUG and self.pending < 0:
            dbg_violation(f"{self.description}: pending calls went negative")
        if PYACTORS_DEBUG:
            dbg_calls_pending -= 1
        if self.pending == 0 and self.submitters == 0 and self.reaper is not None and not self.dead:
            # It exits: on the reaper's thread, where __ray_shutdown__ may run (not here, in
            # the middle of completing a ref).
            self.reaper(self)

    cdef _release(self):
        self.submitters -= 1
        # A dead actor needs no reaping; handing it over would also resurrect a garbage cycle
        # through it until the reaper has run.
        if self.submitters == 0 and self.reaper is not None and not self.dead:
            self.reaper(self)

    def acquire(self):
        self.submitters += 1

    def release(self):
        self._release()

    def exit_if_unused(self):
        if self.submitters == 0 and self.pending == 0 and not self.dead:
            self.run_shutdown_hook()
            self.die(actor_died_error(self, "nothing references it any more", None))

    # -- leaving from inside -----------------------------------------------------------------
    # exit_actor() (an ActorExit) is a graceful exit: calls that have not started fail,
    # running ones end, __ray_shutdown__ runs, the actor dies; it is never restarted.
    # sys.exit() in a method (any other SystemExit) is the actor's process exiting, as in Ray:
    # with max_restarts left it restarts once its running calls have ended - its state reset,
    # __init__ run again with the first arguments ahead of every queued call - and the call
    # that exited runs again if max_task_retries allows.

    cdef _exit_from(self, Group group, ObjectRef call, BaseException exc):
        cdef str reason
        if isinstance(exc, ActorExit):
            error = actor_died_error(
                self, f"it exited intentionally: exit_actor() in {call.name}()", None)
            self.begin_exit(error)
            group._finish(call, FAILED, error)
            return
        reason = f"it exited: {call.name}() raised SystemExit({exc.code!r})"
        if self.restarts_left == 0 or self.lifecycle is None or self.dead:
            self.die(actor_died_error(self, reason, exc))
            return
        if not self.restarting:
            self.restarting = True
            self.restart_cause = (reason, exc)
            self.ready = False  # nothing starts until __init__ has run again
            self._end_outlived_calls(call)
        self._run_again_or_fail(group, call, (reason, exc))

    cdef _end_outlived_calls(self, ObjectRef exiting):
        # In Ray the process is gone, and with it every call running in it. Here a thread
        # cannot be stopped, but an awaiting call can: cancelled, it ends as its process
        # would have it end (_run_again_or_fail). Left to run, it could await a call that is
        # queued behind the restart, which waits for it to end: a hang.
        cdef list calls = []
        cdef ObjectRef node
        for group in self._all_groups():
            # allocates no object: no other thread changes the list meanwhile
            _append_chain(calls, (<Group>group).running)
        for node in calls:
            if node is not exiting and not node.cancel_requested \
                    and node.flags & (F_ASYNC | F_NO_AWAIT | F_INIT) == F_ASYNC:
                node.flags |= F_OUTLIVED
                # False if it no longer runs: _stop_running() runs Python code, and other
                # threads with it, so a call of the snapshot may have ended meanwhile.
                if not node.group._stop_running(node):
                    node.flags &= ~F_OUTLIVED

    cdef _run_again_or_fail(self, Group group, ObjectRef call, tuple cause):
        # As Ray's max_task_retries: a call whose actor restarted under it runs again on the
        # restarted actor, or fails with ActorDiedError. Not a stream (its items were
        # delivered), and not into a group a graceful exit has closed meanwhile.
        if call.flags & F_OUTLIVED:  # the restart cancelled it, not its caller
            call.flags &= ~F_OUTLIVED
            call.cancel_requested = False
        if group.state == G_CLOSED:
            group._finish(call, FAILED, group.closed_error)
        elif (self.task_retries < 0 or call.attempts < self.task_retries) \
                and not (call.args and type(call.args[0]) is Stream):  # a streaming call's
            call.attempts += 1
            group._unlink(call)
            group._enqueue(call, True)  # runs again, on the restarted actor
            self._after_call()
        else:
            reason, exc = cause
            group._finish(call, FAILED, actor_died_error(
                self, f"{reason}; it restarts (max_restarts)", exc))

    def begin_exit(self, error):
        """A graceful exit: calls that have not started fail with `error`, and so will later
        ones; once the running calls have ended, __ray_shutdown__ runs and the actor dies."""
        if self.dead or self.exiting is not None:
            return
        self.exiting = error
        for group in self._all_groups():
            for node in (<Group>group)._refuse_new(error):
                (<ObjectRef>node)._set(FAILED, error)
        self._after_call()

    cdef _after_call(self):
        for group in self._all_groups():
            if (<Group>group).in_flight:
                return
        if self.exiting is not None:
            error, self.exiting = self.exiting, None
            self.run_shutdown_hook()
            self.die(error)
        elif self.restarting:
            self._restart()

    cdef _restart(self):
        cdef ObjectRef call
        self.restarting = False
        self.restart_cause = None
        if self.restarts_left > 0:
            self.restarts_left -= 1
        self.reconstructed = True
        try:
            init = self.lifecycle.reset()  # the same object, its state cleared: its __init__
        except BaseException as exc:
            self.die(actor_died_error(self, "it could not be restarted", exc))
            return
        call = new_call(init, self.init_args if self.init_args is not None else (),
                        self.init_kwargs, f"{self.class_name}.__init__", F_INIT)
        # Set only now, next to submit()'s count of it: another thread's submit() in between
        # would count one pending call too few against max_pending_calls.
        self.init_pending = True
        self.default_group.submit(call, True)

    def mark_reconstructed(self):
        """A process actor's new worker: was_current_actor_reconstructed is true there."""
        self.reconstructed = True

    def run_shutdown_hook(self):
        """Run the instance's __ray_shutdown__ (once; never after kill())."""
        if self.lifecycle is not None and not self.dead:
            self.lifecycle.shutdown()

    def terminate(self):
        """__ray_terminate__: a graceful exit, run as a call behind those submitted before."""
        self.begin_exit(actor_died_error(
            self, "it was terminated gracefully (__ray_terminate__)", None))

    def die(self, error, bint stop=True):
        """Fail every outstanding and future call with `error` and (unless `stop` is false)
        tell the threads to end; no wait."""
        if self.dead:
            return False
        self.dead = True
        self.death_error = error
        for group in list(self.groups.values()):
            group.close(error, stop)
        # After the groups closed: these may hold the last reference to objects whose
        # __del__ could let other threads run and submit meanwhile. The factory's closure
        # holds the instance and this core, and so does the lifecycle: dropped, the instance
        # and its state are freed by reference counting alone, without the collector.
        self.handle_factory = None
        self.lifecycle = None
        self.init_args = self.init_kwargs = None
        on_death, self.on_death = self.on_death, None
        if on_death is not None:
            on_death()
        return True

    def abandon_after_fork(self, error):
        """In a forked child: the actor's threads stayed in the parent; it is dead here."""
        self.dead = True
        self.death_error = error
        self.handle_factory = None
        for group in list(self.groups.values()):
            group.abandon_after_fork(error)

    def join(self, double timeout):
        deadline = monotonic() + timeout
        return all([group.join(max(0.0, deadline - monotonic()))
                    for group in self._all_groups()])

    @property
    def is_dead(self):
        return self.dead

    @property
    def death_cause(self):
        return self.death_error

    @property
    def pending_calls(self):
        return self.pending

    @property
    def group_names(self):
        return list(self.groups)

    @property
    def is_actor(self):
        return not self.is_pool

    def __repr__(self):
        return f"<ActorCore {self.description}>"


cdef bint _declared_cpus(dict call_options, pool) except -1:
    """Whether a remote function's .options() ask for the CPUs it declared: a process task's
    num_cpus chooses its group (see PoolLink), which is its origin's only then."""
    return call_options is None or "num_cpus" not in call_options or (
        call_options["num_cpus"] == pool.declared.get("num_cpus", 1))


cdef class RemoteMethod:
    def __cinit__(self, func, str name, Group group, bint is_async, pool=None,
                  bint blocking=False, bint awaits=True, Py_ssize_t num_returns=1,
                  generator=None, Py_ssize_t backpressure=-1):
        self.func = func
        self.name = name
        self.group = group
        self.num_returns = num_returns
        self.generator = generator
        self.backpressure = backpressure
        self.flags = ((F_ASYNC | (0 if awaits else F_NO_AWAIT) if is_async else 0)
                      | (F_BLOCKING if blocking else 0))
        self.pool = pool
        self.is_function = pool is not None
        if group is not None:
            group.actor.submitters += 1

    def __del__(self):
        # tp_finalize, not __dealloc__: finalizers run before the cyclic collector clears
        # anything, and an object they resurrect (the actor, handed to the reaper) is not
        # cleared. From __dealloc__ the reaper could receive an actor the collector is about
        # to clear.
        if self.group is not None:
            self.group.actor._release()

    def remote(self, *args, **kwargs):
        """Submit the call; returns its ObjectRef at once."""
        cdef Group group = self.group
        if self.is_function and (group is None or group.state == G_CLOSED):
            target = self._target()
            if not isinstance(target, Group):  # another backend (Ray) runs it: its ref
                return target(*args, **kwargs)
            group = <Group>target
        cdef ObjectRef ref
        cdef dict kw = kwargs or None
        if type(group) is ProcessGroup:
            # Pickled here, so that an argument that cannot cross fails this .remote() and
            # nothing is submitted.
            args, kw = (<ProcessGroup>group).link.encode(self.func, args, kw)
        if self.num_returns == 1:
            ref = new_call(self.func, args, kw, self.name, self.flags)
            group.submit(ref)
            return ref
        if self.num_returns == NUM_RETURNS_STREAMING:
            return start_stream(self.func, args, kw, self.name, self.flags,
                                self.backpressure, group)
        ref = new_call(self.func, args, kw, self.name, self.flags)
        group.submit(ref)
        return split_outputs(ref, self.num_returns, group)

    cdef object _target(self):
        # What runs a remote function's calls: a group of this runtime (kept, and by its
        # origin too when that one goes to the same pool), or another backend's submit
        # function (asked again each call).
        target = self.pool(self.call_options)
        if isinstance(target, Group):
            self._adopt(<Group>target)
            if self.origin is not None and self.origin.pool is self.pool and (
                    self.origin.group is None or self.origin.group.state == G_CLOSED) and (
                    _declared_cpus(self.call_options, self.pool)):
                self.origin._adopt(<Group>target)
        return target

    cdef _adopt(self, Group group):
        group.actor.submitters += 1
        if self.group is not None:
            self.group.actor._release()
        self.group = group

    def options(self, *, concurrency_group=None, num_returns=None,
                _generator_backpressure_num_objects=None, **options):
        """Options for one call: ``concurrency_group`` overrides the declared group,
        ``num_returns`` the number of refs the call returns."""
        if not self.is_function or (not options and num_returns is None
                                    and _generator_backpressure_num_objects is None):
            return self._options(concurrency_group, num_returns,
                                 _generator_backpressure_num_objects, options)
        return self._carrying_options(concurrency_group, num_returns,
                                      _generator_backpressure_num_objects, options)

    cdef object _carrying_options(self, concurrency_group, num_returns, backpressure,
                                  dict options):
        # A remote function: checked and shaped for this process, and every option given,
        # Ray's scheduling ones included, kept for the backend that runs its calls (Ray, even
        # when chosen after this .options()).
        cdef dict given = dict(self.call_options) if self.call_options else {}
        given.update(options)
        if num_returns is not None:
            given["num_returns"] = num_returns
        if backpressure is not None:
            given["_generator_backpressure_num_objects"] = backpressure
        cdef RemoteMethod method = self._options(concurrency_group, num_returns, backpressure,
                                                 options)
        # Its group is found at its first call (_target()) if it asks for other CPUs
        cdef RemoteMethod carrying = RemoteMethod(
            method.func, method.name,
            method.group if _declared_cpus(given, self.pool) else None,
            method.flags & F_ASYNC, method.pool,
            method.flags & F_BLOCKING, not method.flags & F_NO_AWAIT, method.num_returns,
            method.generator, method.backpressure)
        carrying.call_options = given
        carrying.origin = self.origin if self.origin is not None else self
        return carrying

    cdef object _options(self, concurrency_group, num_returns,
                         _generator_backpressure_num_objects, dict options):
        if self.generator is not None and (
                num_returns is not None or _generator_backpressure_num_objects is not None):
            # Python for generators: the body depends on the kind of result.
            return self._generator_options(concurrency_group, num_returns,
                                           _generator_backpressure_num_objects, options)
        if _generator_backpressure_num_objects is not None:
            raise ValueError(f"{self.name}.options(_generator_backpressure_num_objects=...): "
                             f"{self.name} is not a generator")
        if options and "process" in options:
            return self._in_process_or_not(options).options(
                concurrency_group=concurrency_group, num_returns=num_returns, **options)
        if options and not _IGNORED_TASK_OPTIONS.issuperset(options):
            unknown = set(options) - _IGNORED_TASK_OPTIONS
            supported = "num_returns, process" if self.is_function else \
                "concurrency_group, num_returns"
            raise TypeError(
                f"{self.name}.options() got unsupported option(s) {sorted(unknown)}; "
                f"supported: {supported}, and Ray's scheduling options "
                f"{sorted(_IGNORED_TASK_OPTIONS)} (accepted, no effect in one process)")
        if self.is_function and ("retry_exceptions" in options or "max_retries" in options):
            return self._with_retries(options).options(
                concurrency_group=concurrency_group, num_returns=num_returns)
        cdef Py_ssize_t returns = self.num_returns
        if type(num_returns) is int and num_returns >= 0:
            returns = num_returns
        elif num_returns is not None:  # Python only for bad input
            returns = _num_returns(num_returns, f"{self.name}.options")
        if concurrency_group is None and returns == self.num_returns:
            return self
        cdef Group group = self.group
        if concurrency_group is not None:
            if self.is_function:
                raise ValueError(f"{self.name}.options(concurrency_group="
                                 f"{concurrency_group!r}): {self.name} is a remote function; "
                                 f"concurrency groups belong to actors")
            if not isinstance(concurrency_group, str):
                raise TypeError(f"concurrency_group must be a str, got "
                                f"{type(concurrency_group).__name__} {concurrency_group!r}")
            group = self.group.actor.group(concurrency_group)
        return self._variant(self.func, group, self.flags & F_ASYNC,
                             not self.flags & F_NO_AWAIT, returns, self.backpressure)

    cdef RemoteMethod _variant(self, func, Group group, bint is_async, bint awaits,
                               Py_ssize_t num_returns, Py_ssize_t backpressure):
        # This method with some of its settings replaced (.options()).
        return RemoteMethod(func, self.name, group, is_async, self.pool,
                            self.flags & F_BLOCKING, awaits, num_returns, self.generator,
                            backpressure)

    def _generator_options(self, concurrency_group, num_returns, backpressure, dict options):
        method = self.options(concurrency_group=concurrency_group, **options) if (
            concurrency_group is not None or options) else self
        return (<RemoteMethod>method).generator.options(
            method, num_returns, backpressure, self.name)

    def _with_retries(self, dict options):
        # A remote function with retry options: its body runs again on those exceptions.
        retry = _retry_options(options, f"{self.name}.options", self.func)
        func = _retrying(self.func, *retry) if retry is not None else \
            getattr(self.func, "__pyactors_retried__", self.func)
        return self._variant(func, self.group, self.flags & F_ASYNC,
                             not self.flags & F_NO_AWAIT, self.num_returns, self.backpressure)

    def _in_process_or_not(self, dict options):
        # A remote function's .options(process=...): the same function on the other pool.
        process = options.pop("process")
        if not self.is_function:
            raise ValueError(f"{self.name}.options(process=...): an actor's methods run where "
                             f"the actor lives; choose it when creating the actor: "
                             f"Cls.options(process=True).remote()")
        _require_bool(process, f"{self.name}.options(process=...)")
        pool = self.pool.with_process(process)
        return RemoteMethod(self.func, self.name, None, self.flags & F_ASYNC, pool,
                            self.flags & F_BLOCKING, not self.flags & F_NO_AWAIT,
                            self.num_returns, self.generator, self.backpressure)

    def with_body(self, func, bint is_async, Py_ssize_t num_returns, Py_ssize_t backpressure):
        """This method, with another body and kind of result (generators' options)."""
        return self._variant(func, self.group, is_async, True, num_returns, backpressure)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"{self.name}() cannot be called directly: use {self.name}.remote(...) to submit "
            f"the call, and pyactors.get(ref) or `await ref` for its result")

    @property
    def concurrency_group(self):
        return None if self.group is None else self.group.name

    def __copy__(self):
        return self  # the same bound method: the actor's use count stays right

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError(
            f"{self.name} cannot be pickled: it calls an actor or function of this process; "
            f"pass it (or its handle) itself")

    def __repr__(self):
        return f"<RemoteMethod {self.name} group={self.concurrency_group!r}>"
