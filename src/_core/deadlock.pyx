# Deadlock detection: a thread that runs a call (a threaded actor's method, a blocking=True
# method, __init__, a plain remote function) and is about to block in get()/wait() first asks
# whether what it waits for can ever complete. The core knows the whole wait-for graph:
#
#   a blocked thread  needs  k of the refs it waits for;
#   a running call    needs  its thread, if that thread is blocked here (else it progresses);
#   a queued call     needs  one of its group's running calls to end (all slots taken), or
#                            its actor's __init__;
#   a call waiting for ref arguments needs all of them.
#
# Whatever can progress is found by a fixpoint from the nodes that plainly can; if the thread
# about to block is not among them, no other thread of this runtime can ever release it, and
# get() raises DeadlockError naming the cycle instead of hanging. (Only events from outside the
# cycle - kill(), cancel(), set_concurrency() from another thread - could have broken it.)
#
# The analysis runs with the garbage collector paused and calls no Python code, so no other
# thread runs meanwhile: the graph it reads is one consistent state. Two threads that close a
# cycle between them are analysed one after the other; the second one sees the first blocked
# and raises. Nothing here runs unless a thread inside a call is about to block.

cdef dict blocked_threads = {}   # thread ident -> ThreadState blocked in _block() inside a call


cdef int check_deadlock(ThreadState ts, str what) except -1:
    """Raise DeadlockError if `ts`, registered in blocked_threads, would wait forever."""
    # The usual case first, without allocating: enough of the refs can plainly complete.
    cdef Py_ssize_t free = 0
    for ref in ts.waits_for:
        if _progresses(<ObjectRef>ref):
            free += 1
            if free >= ts.waits_needed:
                return 0
    cdef bint collecting = PyGC_Disable()
    try:
        cycle = _stuck_cycle(ts)
    finally:
        if collecting:
            PyGC_Enable()
    if cycle is not None:
        # The last node waits for an earlier one: the first, unless `ts` waits on a cycle
        # among others (then the path into it ends with a node repeated).
        back = cycle.index(cycle[-1]) if cycle[-1] in cycle[:-1] else 0
        if back:
            del cycle[-1]
        steps = [f"{i + 1}. {_describe(node)}" for i, node in enumerate(cycle)]
        error = DeadlockError(
            f"{what}() would wait forever: a deadlock.\n  "
            + "\n  ".join(steps)
            + f"\n  ... {back + 1}. again: a cycle"
            + "\nNo thread can end this wait. Await instead of blocking (an async method, or "
              "get() outside the actor), give the group more slots (max_concurrency= or "
              "concurrency_groups=), or send the inner call to another group "
              "(.options(concurrency_group=...)).")
        error.cycle = steps
        raise error
    return 0


cdef list _stuck_cycle(ThreadState start):
    """The wait-for cycle that keeps `start` blocked forever, as a list of nodes starting with
    `start`; None if its wait can end."""
    cdef dict deps = {}      # node -> the nodes it waits for
    cdef dict need = {}      # node -> how many of them must progress before it can
    cdef dict waiters = {}   # node -> the nodes that wait for it
    cdef list todo = [start]
    cdef list ready = []
    cdef Py_ssize_t k
    while todo:
        node = todo.pop()
        if node in deps:
            continue
        k, found = _needs(node)
        deps[node] = found
        need[node] = k
        if k <= 0:
            ready.append(node)
            continue
        for dep in found:
            if dep in waiters:
                (<list>waiters[dep]).append(node)
            else:
                waiters[dep] = [node]
            todo.append(dep)
    while ready:  # everything that can progress, and whatever that lets progress in turn
        node = ready.pop()
        for waiter in waiters.get(node, ()):
            if need[waiter] > 0:
                need[waiter] -= 1
                if need[waiter] == 0:
                    ready.append(waiter)
    if need[start] <= 0:
        return None
    return _cycle_from(start, deps, need)


cdef inline bint _progresses(ObjectRef call):
    """Whether `call` can plainly complete: done, running on a thread that is not blocked here
    (or as a coroutine), or queued with a slot free. False means "look closer" (_needs)."""
    cdef Group group = call.group
    if call.state != PENDING or group is None or group.state == G_CLOSED:
        return True
    if call.stage == S_RUNNING:
        return not call.thread or call.thread not in blocked_threads
    return (call.stage == S_QUEUED and not call.flags & F_QUEUED_UNRESOLVED
            and (group.actor.ready or call.flags & F_INIT) and group._has_free_slot())


cdef tuple _needs(node):
    """(k, deps): `node` progresses once k of deps do (k <= 0: it progresses now).

    Nodes are blocked threads (ThreadState), calls (ObjectRef), and groups (Group): a group
    stands for "one of its slots frees".
    """
    cdef ThreadState ts
    cdef ObjectRef call
    cdef Group group
    cdef list found = []
    cdef Py_ssize_t done = 0
    if type(node) is ThreadState:
        ts = <ThreadState>node
        if ts.waits_for is None:
            return 0, found
        for ref in ts.waits_for:
            if (<ObjectRef>ref).state == PENDING:
                found.append(ref)
            else:
                done += 1
        return ts.waits_needed - done, found
    if isinstance(node, Group):
        group = <Group>node
        if group._has_free_slot() or group.state == G_CLOSED:
            return 0, found
        call = group.running
        while call is not None:  # all slots taken: one of their calls must end
            if not call.thread or call.thread not in blocked_threads:
                return 0, []
            found.append(call)
            call = call.next
        return 1, found
    call = <ObjectRef>node
    group = call.group
    if call.state != PENDING or group is None or group.state == G_CLOSED:
        return 0, found
    if call.stage == S_RUNNING:
        waiter = blocked_threads.get(call.thread) if call.thread else None
        if waiter is None:
            return 0, found  # running freely (or a coroutine): it can end
        found.append(waiter)
        return 1, found
    if call.stage == S_WAITING or (call.stage == S_QUEUED and call.flags & F_QUEUED_UNRESOLVED):
        # Its arguments first, and then a slot: both are needed.
        for arg in _ref_arguments(call):
            if (<ObjectRef>arg).state == PENDING:
                found.append(arg)
        found.append(group)
        return len(found), found
    if call.stage != S_QUEUED:
        return 0, found
    if not group.actor.ready and not call.flags & F_INIT:
        init = _running_init(group.actor)
        if init is None:
            return 0, found
        found.append(init)
        return 1, found
    found.append(group)
    return 1, found


cdef list _ref_arguments(ObjectRef call):
    cdef list refs = []
    args = call.args
    kwargs = call.kwargs
    if args is not None:
        for arg in args:
            if type(arg) is ObjectRef:
                refs.append(arg)
    if kwargs is not None:
        for arg in (<dict>kwargs).values():
            if type(arg) is ObjectRef:
                refs.append(arg)
    return refs


cdef ObjectRef _running_init(ActorCore actor):
    cdef ObjectRef node = actor.default_group.running if actor.default_group is not None \
        else None
    while node is not None:
        if node.flags & F_INIT:
            return node
        node = node.next
    return None


cdef list _cycle_from(start, dict deps, dict need):
    # Depth-first through nodes that cannot progress, for a way back to `start`. If there is
    # none (start waits on a deadlock among others), the path into the first cycle met.
    cdef list path = [start]
    cdef set on_path = {start}
    cdef set explored = set()
    cdef list pending = [[d for d in deps[start] if need[d] > 0]]
    fallback = None
    while path:
        if not pending[-1]:
            node = path.pop()
            on_path.discard(node)
            explored.add(node)
            pending.pop()
            continue
        node = (<list>pending[-1]).pop()
        if node is start:
            return path
        if node in on_path:
            if fallback is None:
                fallback = path + [node]
            continue
        if node in explored:
            continue
        on_path.add(node)
        path.append(node)
        pending.append([d for d in deps[node] if need[d] > 0])
    return fallback if fallback is not None else [start]


cdef str _describe(node):
    cdef ThreadState ts
    cdef ObjectRef call
    cdef Group group
    if isinstance(node, Group):
        group = <Group>node
        return (f"a free slot of {group.location}: all {group._capacity()} are "
                f"taken, by")
    if type(node) is ThreadState:
        ts = <ThreadState>node
        call = _call_on_thread(ts)
        where = ts.group.location if ts.group is not None else "a thread"
        name = f"{call.name}()" if call is not None else "a call"
        return f"{name} in {where} blocks in get()/wait(), waiting for"
    call = <ObjectRef>node
    group = call.group
    if group is None:
        return f"{call.name}()"
    if call.stage == S_RUNNING:
        return f"{call.name}(), running in {group.location}, whose thread"
    if call.stage == S_WAITING or call.flags & F_QUEUED_UNRESOLVED:
        return (f"{call.name}() in {group.location}, waiting for its ref arguments and then "
                f"for")
    if not group.actor.ready:
        return f"{call.name}(), queued in {group.location} until __init__ ends:"
    return f"{call.name}(), queued in {group.location}, waiting for"


cdef ObjectRef _call_on_thread(ThreadState ts):
    if ts.group is None:
        return None
    cdef ObjectRef node = ts.group.running
    while node is not None:
        if node.thread == ts.ident:
            return node
        node = node.next
    return None
