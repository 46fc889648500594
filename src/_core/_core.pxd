# Declarations of every class in pyactors._core (the sources are the .pyx files that _core.pyx
# includes). Calls between core classes are C calls through these declarations.
#
# Thread-safety model: the core runs under the GIL (free-threaded builds are not supported) and
# relies on this rule: a sequence of C-level operations on cdef fields that makes no Python-level
# call and drops no last reference (which could run a __del__) cannot be interleaved with another
# thread. On 3.10 and 3.11 an allocation of an object can run the cyclic collector, whose
# finalizers are Python code: such a sequence allocates nothing, or re-checks after allocating.
# Each field says which thread may write it:
#   any        - any thread, only inside such an atomic sequence;
#   group      - only a thread that runs the group's calls (its loop thread, or a worker);
#   own thread - only the thread the ThreadState is of (owner: the thread that made it);
#   once       - set before the object is shared, read-only afterwards;
#   cleared    - set before the object is shared, then set to None once by any thread when
#                the call or actor ends: a reader takes a local reference first;
#   locked     - only while holding the named lock.

from cpython.pythread cimport PyThread_type_lock

cdef class ThreadState
cdef class ThreadWaiter
cdef class LoopWaker
cdef class LoopWaiter
cdef class CallTask
cdef class ObjectRef
cdef class Group
cdef class ActorCore
cdef class DependencyWaiter


cdef class ThreadState:
    # One per OS thread, stored in the thread-state dict so it is freed when the thread ends.
    cdef PyThread_type_lock lock      # own thread parks on it; acquired unless released for it
    cdef LoopWaker waker              # own thread: LoopWaker of the loop last running here
    cdef Group group                  # own thread: the group this thread runs calls for
    cdef bint on_loop                 # own thread: True on a group's event-loop thread
    cdef list settling                # own thread: calls whose ref arguments just completed,
                                      # and the failed one (or None), flattened; or None
    cdef unsigned long ident          # once
    # While the thread is blocked in get()/wait() inside a call (see deadlock.pyx):
    cdef list waits_for               # own thread: the refs it waits for, or None
    cdef Py_ssize_t waits_needed      # own thread: how many of them must complete
    # While a remote function's thread is parked in get()/wait():
    cdef ThreadWaiter parked_waiter   # own thread (any reads it): for cancel() to wake it
    cdef bint blocking                # own thread: inside get()/wait(); a nested one (from a
                                      # signal handler or a finalizer) parks on its own lock
    cdef bint interrupted             # any: woken by cancel(): get() raises KeyboardInterrupt

    cdef int park(self, double timeout) except -1


cdef class Waiter:
    cdef notify(self, ObjectRef ref)


cdef class ThreadWaiter(Waiter):
    # A plain thread blocked in get()/wait() until `remaining` of the refs it registered on finish.
    cdef ThreadState owner            # once
    cdef PyThread_type_lock lock      # once: what the owner parks on, released once
                                      # `remaining` reaches 0 (its ThreadState's, unless nested)
    cdef Py_ssize_t remaining         # any
    cdef bint abandoned               # owner: it stopped waiting; never release its lock again
    cdef bint released                # any: a completion (or cancel()) released the owner's
                                      # lock, which the owner must take back if it did not park


cdef class LoopWaker:
    # Delivers completions to one event loop: one call_soon(_threadsafe) per batch, not per result.
    cdef object loop                  # once
    cdef list pending                 # any (append) / loop thread (swap); any resets it
                                      # when post() finds the loop closed
    cdef bint scheduled               # any
    cdef bint running                 # loop thread: run() is delivering a batch
    cdef object run_cb                # once: bound self.run, allocated once
    cdef object ready                 # once: the ready queue of asyncio's own selector loop
    cdef object run_handle            # once: a Handle of run_cb, queued there from elsewhere

    cdef post(self, LoopWaiter waiter)
    cdef _wake_selector_loop(self)
    cdef _repost(self, list rest)


cdef class LoopWaiter(Waiter):
    cdef LoopWaker waker              # once
    cdef ObjectRef ref                # any: set by notify, cleared by fire

    cdef fire(self)


cdef class FutureWaiter(LoopWaiter):
    cdef object fut                   # once: an asyncio future of the waker's loop


cdef class CallbackWaiter(LoopWaiter):
    cdef object fn                    # once
    cdef object context               # once


cdef class ConcurrentWaiter(Waiter):
    cdef object fut                   # once: a concurrent.futures.Future


cdef class Stream:
    # Shared by a generator call's body (the producer) and its ObjectRefGenerator.
    cdef list items                   # any: refs of the values yielded (None once consumed)
    cdef Py_ssize_t consumed          # any: how many the consumer took
    cdef bint finished                # any: the call ended (if it failed, its ref is last)
    cdef bint dropped                 # any: the ObjectRefGenerator was freed
    cdef Py_ssize_t backpressure      # once: most unconsumed items before the body waits; -1
    cdef ObjectRef call               # once
    cdef ObjectRef ready              # any: signal for the consumer waiting for an item
    cdef ObjectRef room               # any: signal for the body waiting for room

    cdef _abandon(self)
    cdef _end(self, ObjectRef call)
    cdef _wake_consumer(self)
    cdef ObjectRef _take(self)
    cdef ObjectRef _signal(self)


cdef class ObjectRefGenerator:
    cdef Stream stream                # once


cdef class StreamWaiter(Waiter):
    cdef Stream stream                # once


cdef class YieldedValues:
    cdef readonly list values         # once
    cdef readonly object error        # once


cdef class OutputsWaiter(Waiter):
    # Splits the value of a call with num_returns=N into its N output refs.
    cdef list outputs                 # once
    cdef Group group                  # once: where the call ran, for the error of a wrong count


cdef class SettledWaiter(Waiter):
    # Calls fn(ref) on the thread that completes the ref (on_settled()).
    cdef object fn                    # once


cdef class DependencyWaiter(Waiter):
    # A call whose arguments hold refs that were not ready when it was submitted.
    cdef ObjectRef call               # once
    cdef Py_ssize_t remaining         # any


# ObjectRef.state, .stage and .flags; RemoteMethod.num_returns.
cdef enum:
    PENDING = 0
    FINISHED = 1
    FAILED = 2
    CANCELLED = 3   # asyncio gave up on it (ref.cancel()): awaiters get CancelledError

cdef enum:
    S_UNLISTED = 0  # in none of its group's lists: not yet submitted, or taken out of one
    S_QUEUED = 1    # in its group's FIFO, waiting for a slot
    S_RUNNING = 2   # holds a slot
    S_WAITING = 3   # waiting for ref arguments, before joining the FIFO

cdef enum:
    F_INIT = 1               # the actor's __init__: admitted before the actor is ready
    F_ASYNC = 2              # an `async def`: runs as a task on its group's loop
    F_REF_ARGS = 4           # some top-level argument is an ObjectRef
    F_QUEUED_UNRESOLVED = 8  # in an ordered group's FIFO before its ref arguments are ready:
                             # it keeps its place and holds back the calls behind it
    F_BLOCKING = 16          # a plain def of an async actor run on a worker thread of its group
    F_STARTED = 32           # an async call's task has started running its body (loop thread)
    F_NO_AWAIT = 64          # an `async def` without await: cannot suspend, runs without a Task
    F_OUTLIVED = 128         # running when its actor restarted: cancelled, and then it runs
                             # again or fails with ActorDiedError (_run_again_or_fail)

cdef enum:
    NUM_RETURNS_STREAMING = -1  # RemoteMethod.num_returns of a generator's streaming call

cdef class ObjectRef:
    # The result cell of one call, and the call itself until it finishes.
    cdef int state                    # any: PENDING -> FINISHED | FAILED | CANCELLED, once
    cdef object value                 # any, with state: the result, or the exception to raise
    cdef object waiters               # any: None, one Waiter, or a list of Waiters
    cdef unsigned long long ident     # once
    # the call; released when the ref completes
    cdef object func                  # cleared
    cdef tuple args                   # any: ref arguments replaced by their values while
                                      # pending (resolve_arguments); cleared
    cdef dict kwargs                  # as args (None when there are none)
    cdef str name                     # once: "Class.method", for messages
    cdef int flags                    # once: F_* bits; but F_QUEUED_UNRESOLVED is any, and
                                      # F_STARTED is its group's loop thread
    cdef int stage                    # any: S_*, which of its group's lists holds it
    cdef Group group                  # any: the group it was submitted to (counted as pending)
    cdef ObjectRef prev               # any: links in the group's waiting, queued or running list
    cdef ObjectRef next               # any
    cdef object task                  # group: the CallTask driving an awaiting async call
    cdef unsigned long thread         # group: the thread running its plain body, 0 otherwise
    cdef ObjectRef source             # once: the call this ref is one output of (num_returns)
    cdef bint cancel_requested        # any
    cdef int attempts                 # group: times it ran and its actor exited (task retries)
    cdef list children                # any: calls its plain body submitted, until it ends
    cdef double since                 # any: monotonic seconds when it joined the queue, and
                                      # then when it started

    cdef bint _set(self, int state, object value) except -1
    cdef bint _add_waiter(self, Waiter waiter) except -1
    cdef _remove_waiter(self, Waiter waiter)
    cdef object _outcome(self)
    cdef object _loop_future(self)


# Group.state
cdef enum:
    G_UNSTARTED = 0  # no thread yet: the first call starts one
    G_STARTED = 1
    G_CLOSED = 2     # every call fails with closed_error

cdef class Group:
    cdef readonly str name            # once
    cdef readonly ActorCore actor     # once
    cdef Py_ssize_t limit             # any: most calls in flight (max_concurrency; set_limit;
                                      # a ProcessGroup: its window, see `declared`)
    cdef Py_ssize_t borrowed          # any: slots lent by its calls blocked in get()/wait()
                                      # (lends_slots): more calls may run meanwhile
    cdef bint lends_slots             # once: the remote-function pool's thread group, whose
                                      # plain calls lend their slot while they block, as Ray
                                      # releases a blocked task's CPU
    cdef Py_ssize_t in_flight         # any
    cdef ObjectRef head               # any: FIFO of calls waiting for a slot
    cdef ObjectRef tail               # any
    cdef Py_ssize_t queued            # any
    cdef ObjectRef running            # any: calls in flight, so close() can fail them at once
    cdef ObjectRef waiting            # any: calls waiting for ref arguments, holding no slot
    cdef Py_ssize_t waiting_count     # any
    cdef int state                    # any: G_UNSTARTED -> G_STARTED -> G_CLOSED, the first
                                      # step (and its undoing by an interrupted start) and the
                                      # last under lifecycle_lock
    cdef object closed_error          # once closed
    cdef object lifecycle_lock        # once: threading.Lock, start against close (slow path)
    cdef list threads                 # under lifecycle_lock
    cdef object thread_name           # once
    cdef unsigned long long completed  # any
    cdef unsigned long long failed    # any
    cdef unsigned long long cancelled  # any
    cdef double max_queue_wait        # any: longest time a call waited for a slot

    cdef submit(self, ObjectRef call, bint front=*)
    cdef _enqueue(self, ObjectRef call, bint front=*)
    cdef list _refuse_new(self, error)
    cdef _await_arguments(self, ObjectRef call, DependencyWaiter waiter)
    cdef _arguments_ready(self, ObjectRef call, ObjectRef failed)
    cdef bint _can_admit(self)
    cdef Py_ssize_t _capacity(self)
    cdef bint _has_free_slot(self)
    cdef _lend_slot(self)
    cdef _reclaim_slot(self)
    cdef ObjectRef _admit(self)
    cdef _unlink(self, ObjectRef call)
    cdef _wake(self)
    cdef _execute_sync(self, ObjectRef call)
    cdef _end_unstarted(self, ObjectRef call)
    cdef _run_returned_coroutine(self, ObjectRef call, coro)
    cdef _finish(self, ObjectRef call, int state, object value)
    cdef _next_after(self, ObjectRef call)
    cdef _finish_exception(self, ObjectRef call, BaseException exc)
    cdef _finish_cancelled(self, ObjectRef call)
    cdef bint _cancel(self, ObjectRef call, int state) except -1
    cdef bint _stop_running(self, ObjectRef call) except -1
    cdef _stop(self)
    cdef list _take_all(self, error, bint running=*)
    cdef bint _ordered(self)


cdef class AsyncGroup(Group):
    # Runs its calls on one event loop, on one thread of its own.
    cdef object loop_factory          # once
    cdef object loop                  # the group's thread, once: None until a call needs it
    cdef unsigned long thread_id      # the group's thread
    cdef ThreadState parked           # any: the group's thread, parked before its loop exists
    cdef bint drain_pending           # any: a drain is scheduled or running
    cdef bint loop_stopping           # any: the loop was told to stop (or stopped by itself)
    cdef bint init_on_loop            # once: run __init__ on the running loop, not before it
    cdef object drain_cb              # once: bound self._drain, allocated once
    cdef object base_context          # once, with loop: empty; each call runs in a copy
    cdef list blocking_calls          # any: admitted F_BLOCKING calls no worker has taken yet
    cdef list blocking_idle           # any: ThreadStates of parked blocking workers
    cdef CallTask tasks               # loop thread: the awaiting calls' live tasks, linked
    cdef int wake_fd                  # loop thread sets: the eventfd other threads wake the
                                      # loop through, -1 while there is none (async_group.pyx)
    cdef int wake_writers             # any: threads writing to wake_fd now, without the GIL
    cdef int wake_fd_to_close         # any: closed by the last of them, -1 if none

    cdef _start(self)
    cdef _unpark(self)
    cdef bint _run_before_loop(self, ThreadState ts) except -1
    cdef _execute_in_own_context(self, ObjectRef call)
    cdef _execute_to_end(self, ObjectRef call)
    cdef _start_task(self, ObjectRef call)
    cdef _start_coroutine(self, ObjectRef call, coro)
    cdef _start_blocking(self, ObjectRef call)
    cdef _loop_stopped(self, object cause)
    cdef _open_wake_fd(self, loop)
    cdef _write_wake_fd(self)
    cdef _close_wake_fd(self)


cdef class CallTask:
    # Drives an awaiting `async def` call's coroutine on its group's loop, as an asyncio.Task
    # would (call_task.pyx). Every field: the group's loop thread.
    cdef AsyncGroup group             # once
    cdef ObjectRef call               # once
    cdef object coro                  # once
    cdef object loop                  # once
    cdef object context               # once: a copy of the context it was made in
    cdef str name                     # set_name()
    cdef object fut_waiter            # the future its coroutine waits for, or None
    cdef bint must_cancel             # cancel() came while no future was awaited
    cdef object cancel_message
    cdef Py_ssize_t cancels_requested  # cancelling()
    cdef int outcome                  # T_RUNNING, then how the coroutine ended
    cdef object value                 # its return value or exception, once ended
    cdef list callbacks               # (fn, context) pairs of add_done_callback, or None
    cdef CallTask prev                # links in its group's list of live tasks
    cdef CallTask next
    cdef object __weakref__           # libraries key state by task (anyio's WeakKeyDictionary)

    cdef int _check_enterable(self) except -1
    cdef _broke(self, exc)
    cdef _begin(self)
    cdef _wakeup(self, fut)
    cdef _step(self, exc)
    cdef _suspended(self, result)
    cdef _ended(self, int outcome, value)
    cdef _settle(self, int outcome, value)
    cdef _abandon(self)
    cdef int _raise_unless_ended(self, str not_ready) except -1


cdef class ThreadGroup(Group):
    # Runs its calls on up to `limit` worker threads of its own. With limit 1 it is "ordered":
    # calls start in submission order even while an earlier one waits for its arguments.
    cdef list idle                    # any: ThreadStates of parked workers
    cdef Py_ssize_t spawned           # any

    cdef _wake_one(self)
    cdef _spawn(self)


cdef class ProcessGroup(Group):
    # Admits here, runs in a worker process: `link` (Python, pyactors._process) sends admitted
    # calls, cancels and stops to the worker, and completes calls from its I/O thread.
    cdef object link                  # once
    cdef object dispatch_lock         # once: threading.RLock, admission order = wire order
    cdef bint serial                  # once: a threaded actor's group (ordered at limit 1)
    cdef Py_ssize_t declared          # any: the group's limit (the worker enforces it;
                                      # `limit` bounds the calls sent: its window)


cdef class ActorCore:
    cdef readonly str class_name      # once
    cdef readonly str actor_id        # once
    cdef readonly bint is_pool        # once: the remote-function pool, not an actor
    cdef readonly str description     # once: how messages name it: "actor Class(id)", or
                                      # the pool's own name
    cdef bint ready                   # any: __init__ finished
    cdef bint dead                    # any
    cdef object death_error           # any: set once, by die()
    cdef Py_ssize_t pending           # any: calls submitted and not yet complete
    cdef bint init_pending            # any: __init__ is one of them (not a max_pending call)
    cdef Py_ssize_t max_pending       # once: 0 = unlimited
    cdef Py_ssize_t submitters        # any: live handles and RemoteMethods, what can still
                                      # submit calls; 0 = unreachable
    cdef object reaper                # once: reentrant callable told when submitters reaches 0
    cdef readonly object handle_factory  # cleared: makes a new ActorHandle (current_actor)
    cdef public object on_death       # cleared: None, or called (no arguments) when it dies
    cdef object __weakref__           # the runtime tracks actors weakly
    cdef dict groups                  # once (before the first call): name -> Group; the
                                      # pool's: renew_group() replaces a closed one
    cdef list retired                 # any: groups renew_group() replaced, joined on stop
    cdef readonly Group default_group  # once

    # Exits from inside
    cdef public object lifecycle      # cleared: None, or the Python object that runs
                                      # __ray_shutdown__ (once) and resets the instance
    cdef object exiting               # any: None, or the error of a graceful exit under way
    cdef bint restarting              # any: to restart once its running calls have ended
    cdef tuple restart_cause          # any, with restarting: (reason, SystemExit) for the
                                      # errors of the calls that do not outlive the instance
    cdef readonly bint reconstructed  # any: it was restarted
    cdef Py_ssize_t restarts_left     # any: max_restarts still allowed (-1: without end)
    cdef Py_ssize_t task_retries      # once: max_task_retries (-1: without end)
    cdef tuple init_args              # cleared: __init__'s arguments, for restarts
    cdef dict init_kwargs             # cleared

    cdef _init_finished(self, object exc)
    cdef Group _added(self, str name, Group group)
    cdef _call_completed(self, ObjectRef call)
    cdef _release(self)
    cdef list _all_groups(self)
    cdef _exit_from(self, Group group, ObjectRef call, BaseException exc)
    cdef _end_outlived_calls(self, ObjectRef exiting)
    cdef _run_again_or_fail(self, Group group, ObjectRef call, tuple cause)
    cdef _after_call(self)
    cdef _restart(self)


cdef class RemoteMethod:
    # `handle.method` / `remote_function`: everything .remote() needs, resolved once.
    cdef object func                  # once: bound method or plain function
    cdef readonly str name            # once: "Class.method"
    cdef Group group                  # once for actor methods; a remote function's: any
                                      # (it finds a new one after a shutdown, _adopt)
    cdef int flags                    # once
    cdef readonly bint is_function    # once: a remote function's (else an actor method's)
    cdef object pool                  # once: a remote function's pool (_function._Pool), None
                                      # for a method: pool(call_options) gives what runs its
                                      # calls, a live group of this runtime or another
                                      # backend's (Ray's) submit function
    cdef dict call_options            # once: what .options() gave a remote function, for a
                                      # backend that reads it (Ray); None if nothing
    cdef RemoteMethod origin          # once: the method an .options() variant came from,
                                      # which shares the group the variant finds
    cdef Py_ssize_t num_returns       # once: refs per call (1: the call's own ref), or
                                      # NUM_RETURNS_STREAMING: an ObjectRefGenerator
    cdef Py_ssize_t backpressure      # once: a generator's most unconsumed items, or -1
    cdef object generator             # once: None, or how a generator method runs as a call

    cdef RemoteMethod _variant(self, func, Group group, bint is_async, bint awaits,
                               Py_ssize_t num_returns, Py_ssize_t backpressure)
    cdef object _target(self)
    cdef _adopt(self, Group group)
    cdef object _options(self, concurrency_group, num_returns, backpressure, dict options)
    cdef object _carrying_options(self, concurrency_group, num_returns, backpressure,
                                  dict options)
