# cython: language_level=3
"""pyactors._core: everything a call touches after ``.remote(...)``.

One compiled module built from small topical files (uvloop's layout): the classes are declared
in _core.pxd, so calls between them are C calls.
"""

include "stdlib.pxi"
include "debug.pxi"
include "threadstate.pyx"
include "waiters.pyx"
include "outputs.pyx"
include "stream.pyx"
include "objectref.pyx"
include "group.pyx"
include "call_task.pyx"
include "async_group.pyx"
include "thread_group.pyx"
include "process_group.pyx"
include "actor.pyx"
include "deadlock.pyx"
include "interrupt.pyx"
include "api.pyx"
