import contextlib
import gc
import importlib.util
import os
import time

import pytest
from leaks import Snapshot, open_process_wide_resources

import pyactors

# The event loops every test runs on. CI's runs on the other CPython versions keep asyncio
# only (PYACTORS_TEST_LOOPS=asyncio): the stdlib loop is what changes with the version, and
# uvloop's pairing with each version is still exercised by the debug-build runs there.
ALL_LOOPS = ["uvloop", "asyncio"]
LOOPS = os.environ.get("PYACTORS_TEST_LOOPS", ",".join(ALL_LOOPS)).split(",")
# Where the semantic suites run: in this process, in worker processes, and on Ray when the
# ray extra is installed (one local Ray for the whole session, like a cluster a program joins).
PLACES = ["in-process", "process"] + (["ray"] if importlib.util.find_spec("ray") else [])
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(autouse=True, scope="session")
def process_wide_resources():
    open_process_wide_resources(ALL_LOOPS)  # a test may use the default loop, whichever it runs on


@pytest.fixture(autouse=True, params=LOOPS)
def loop_kind(request):
    """Every test runs once on uvloop and once on asyncio, in a fresh runtime, and must leave
    no thread, child process, file descriptor or shared memory segment behind - nor, in a
    PYACTORS_DEBUG=1 build, any core resource."""
    place = request.getfixturevalue("place") if "place" in request.fixturenames else None
    if place == "ray":
        request.getfixturevalue("ray_session")
    gc.collect()
    before = Snapshot()
    if place == "ray":
        before_actors = set(ray_actors_alive(wait=False))  # a failed test's, held by its report
        pyactors.init(backend="ray")  # joins the session's Ray
    else:
        pyactors.init(loop=request.param, process=place == "process")
    yield request.param
    pyactors.shutdown()
    gc.collect()  # what only garbage holds is not left behind: its finalizers free it
    if place == "ray":
        # Ray's driver keeps threads and connections of its own for the session; what this
        # test left is its actors, which must all have ended
        left_alive = set(ray_actors_alive(ignore=before_actors)) - before_actors
        assert not left_alive, f"Ray actors left alive: {left_alive}"
    before.check(threads_and_fds=place != "ray")


DEFAULT_PLACES = ("in-process", "process")


def pytest_collection_modifyitems(config, items):
    """A module using the place fixture runs in this process and in worker processes, unless
    it says where with ``pytest.mark.places(...)`` ("ray" among them: on the Ray backend too).
    Tests marked in_process_only share memory with their actors (a threading.Event, a
    closure's list): they run in this process only; those marked not_on_ray rely on a
    guarantee pyactors gives and Ray does not. Elsewhere than in this process the semantic
    suites run on the first loop (uvloop) only: the loop is the worker's concern, and
    test_process.py covers both."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = {} if callspec is None else callspec.params
        place = params.get("place")
        marker = item.get_closest_marker("places")
        places = marker.args if marker is not None else DEFAULT_PLACES
        if place is not None and (
            place not in places
            or (place == "ray" and item.get_closest_marker("not_on_ray"))
            or (
                place != "in-process"
                and (
                    item.get_closest_marker("in_process_only")
                    or params.get("loop_kind", LOOPS[0]) != LOOPS[0]
                )
            )
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=PLACES)
def place(request):
    """Where actors and remote functions run: a module with
    ``pytestmark = pytest.mark.usefixtures("place")`` runs each test in this process, again
    with every actor and remote function in worker processes (init(process=True)), and on
    Ray (init(backend="ray")) when Ray is installed."""
    return request.param


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test on the Ray backend: its workers run pyactors on Ray too,
    and import test modules (which hold the actor classes) from this directory."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYACTORS_BACKEND": "ray", "PYTHONPATH": TESTS_DIR}},
    )
    yield
    ray.shutdown()


def ray_actors_alive(wait: bool = True, ignore: frozenset = frozenset()) -> list[str]:
    """Actors that Ray still runs, but those in `ignore`; with `wait`, given up to 10 s to end
    (Ray ends an actor shortly after its last handle goes)."""
    from ray._private.state import actors  # the GCS's table (the state API needs a dashboard)

    deadline = time.monotonic() + 10
    while True:
        alive = [
            f"{a['ActorClassName']}({actor_id})"
            for actor_id, a in actors().items()
            if a["State"] != "DEAD" and f"{a['ActorClassName']}({actor_id})" not in ignore
        ]
        if not alive or not wait or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.fixture
def benchmark_clock():
    """Wall-clock span of a block, for lower bounds that follow from semantics (five waves of
    0.2 s cannot take less than 1 s); never for speed."""

    @contextlib.contextmanager
    def clock():
        start = time.monotonic()
        end = []
        yield lambda: end[0] - start
        end.append(time.monotonic())

    return clock
