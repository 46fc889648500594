"""os.fork() after init(): the child gets a fresh runtime, never a hang."""

import multiprocessing
import os

import pytest
from test_objectref import Echo, Gate

import pyactors as ray
from pyactors.exceptions import ActorDiedError

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # 3.12+ warns that forking a process with threads may deadlock the child: that is the
    # situation under test.
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]


def in_child(body):
    """Run `body()` in a forked child; its return value (an int) is the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_the_child_sees_parent_actors_dead_and_can_make_its_own():
    a, g = Echo.remote(), Gate.remote()
    assert ray.get(a.echo.remote(1)) == 1
    pending = g.wait.remote("parent")  # in flight when the process forks

    def child():
        for ref in (pending, a.echo.remote(2)):
            try:
                ray.get(ref, timeout=10)
                return 1
            except ActorDiedError as exc:
                if "parent process" not in str(exc):
                    return 2
        if ray.get(Echo.remote().echo.remote(7), timeout=10) != 7:
            return 3
        ray.shutdown()
        return 0

    assert in_child(child) == 0
    # the parent is untouched
    assert ray.get(a.echo.remote(3)) == 3
    g.open.remote()
    assert ray.get(pending) == "parent"


@ray.remote
def triple(x):
    return 3 * x


def use_pyactors_in_child(x):
    return ray.get(triple.remote(x), timeout=10)


def test_multiprocessing_with_the_fork_start_method():
    assert ray.get(triple.remote(1)) == 3
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(use_pyactors_in_child, (5,)) == 15
        pool.close()
        pool.join()


def test_fork_from_inside_an_actor_method():
    @ray.remote
    class Forker:
        async def fork_and_use(self):
            def child():
                # This thread ran the actor's loop in the parent; in the child it is a plain
                # thread again, so blocking get() is allowed.
                value = ray.get(triple.remote(2), timeout=10)
                ray.shutdown()
                return 0 if value == 6 else 1

            return in_child(child)

    assert ray.get(Forker.remote().fork_and_use.remote()) == 0
