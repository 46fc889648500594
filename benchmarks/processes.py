"""Process actors and process tasks (P1 to P7) against the raw mechanisms they are built on.

    python -m benchmarks.processes [--pin CPU] [--repeats N] [--json PATH] [--only P1,P3,...]
                                   [--alt-python PATH]

Every (measurement, repeat) runs in a process of its own, and the repeats go round-robin over
the measurements, as in `benchmarks.compare`; the table shows the median over the repeats,
each pyactors figure beside its baseline, measured in the same run, and the ratio (> 1 means
pyactors is better: for times, baseline / pyactors; for rates, pyactors / baseline). The last
column is an in-process pyactors actor doing the same, for reference.

pyactors runs with init(num_cpus=2); the process actor is benchmarks.process_actors.Probe, a
threaded actor (plain `def` methods). P4 (CPU scaling) is not run under --pin: two processes
pinned to one CPU cannot run at once. P7's Ray figure comes from the first interpreter (this
one, then --alt-python, default $PYACTORS_BENCH_ALT_PYTHON) that can import ray.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.compare import (
    add_worker_options,
    chosen,
    finite,
    format_targets,
    has_package,
    medians,
    pyactors_build,
    run_json,
    snapshot_pyactors,
)
from benchmarks.workloads import _proc_field, process_tree, timed

WORKERS = 2  # pyactors' num_cpus, and the process pools' workers (2 cores)
WARMUP = 200  # calls (tasks) before any timing starts
ROUNDTRIPS = 2_000  # P1
BATCH = 20_000  # P2 calls, P3 tasks
P2_BATCHES = 3  # P2: median of this many batches per process
P4_ROUNDS = 3  # P4: median of this many rounds per process, after one untimed
BUFFER = 64 << 20  # P5: 64 MiB
ECHOES = 5  # P5: median of this many round trips per process
CREATIONS = 5  # P6 warm: median of this many creations per process
AT_REST = 0.5  # P6 warm: seconds of quiet before each creation
IDLE_ACTORS = 10  # P7
SETTLE = 5.0  # seconds a worker waits for its children to end before reporting them
WORKER_TIMEOUT = 120.0  # seconds a measurement may take (a few, normally)
# P1's message: about what a call carries (operation, call id, method, arguments).
MESSAGE = ("call", "0123456789abcdef", "noop", ((), None))
FORK = multiprocessing.get_context("fork")  # the baselines' children inherit their pipes


# -- shared with test_processes.py ----------------------------------------------------------
# pyactors is imported where it is used: the driver and Ray's interpreter do without it.


@contextmanager
def pyactors_runtime():
    """pyactors as the benchmarks run it; every worker process has ended when this exits."""
    import pyactors

    pyactors.init(num_cpus=WORKERS)
    try:
        yield pyactors
    finally:
        pyactors.shutdown()


def probe(process: bool):
    """A Probe actor, up (called once): in a worker process of its own, or in this one."""
    import pyactors
    from benchmarks.process_actors import Probe

    actor = Probe.options(process=process).remote()
    pyactors.get(actor.noop.remote())
    return actor


def _echo_messages(conn) -> None:
    while (message := conn.recv()) is not None:
        conn.send(message)


def _echo_handed_over(conn) -> None:
    # The main thread reads, another thread answers: a worker's reader and its actor's thread
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def answer() -> None:
        while (message := inbox.get()) is not None:
            conn.send(message)

    answering = threading.Thread(target=answer)
    answering.start()
    while True:
        message = conn.recv()
        inbox.put(message)
        if message is None:
            break
    answering.join()


class PipeEcho:
    """P1's baseline: a child process echoing what a multiprocessing.Pipe brings (pickled by
    Connection.send), with nothing around it."""

    child_main = staticmethod(_echo_messages)

    def __init__(self):
        self.conn, child = FORK.Pipe()
        self.process = FORK.Process(target=self.child_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.receive = self.conn.recv

    def roundtrips(self, count: int) -> None:
        send, receive = self.conn.send, self.receive
        for _ in range(count):
            send(MESSAGE)
            receive()

    def close(self) -> None:
        self.conn.send(None)
        self.process.join()
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the measurements: each runs in a process of its own and returns {"value": ..., ...} -------


def p1_actor(process: bool) -> dict:
    from benchmarks.impl_pyactors import roundtrips  # W1's, as the noop is the same

    with pyactors_runtime():
        actor = probe(process)
        roundtrips(actor, WARMUP)
        return {"value": timed(roundtrips, actor, ROUNDTRIPS) / ROUNDTRIPS * 1e6}


class ReaderThreadEcho(PipeEcho):
    """PipeEcho, its answers read by a thread of this process that wakes the caller: the
    hand-off the design requires of every call to a process actor (one I/O thread reads every
    worker's pipe)."""

    def __init__(self):
        super().__init__()
        answers: queue.SimpleQueue = queue.SimpleQueue()
        self.receive = answers.get
        self.reader = threading.Thread(target=self._read, args=(answers,), daemon=True)
        self.reader.start()

    def _read(self, answers: queue.SimpleQueue) -> None:
        with contextlib.suppress(EOFError):  # the child ended (close())
            while True:
                answers.put(self.conn.recv())

    def close(self) -> None:
        self.conn.send(None)
        self.process.join()
        self.reader.join()
        self.conn.close()


class HandedOverEcho(ReaderThreadEcho):
    """ReaderThreadEcho whose child hands each message to another thread, which answers: a
    worker's reading thread and its actor's thread - the two hand-offs of a call to a
    process actor here."""

    child_main = staticmethod(_echo_handed_over)


def p1_pipe(echo_class: type[PipeEcho] = PipeEcho) -> dict:
    with echo_class() as echo:
        echo.roundtrips(WARMUP)
        return {"value": timed(echo.roundtrips, ROUNDTRIPS) / ROUNDTRIPS * 1e6}


def p1_ray() -> dict:
    """P1 on a Ray actor with the same plain `def noop`: what the issue's "20x faster than
    Ray" is measured against."""
    import ray

    from benchmarks.impl_ray import INIT_OPTIONS

    ray.init(**INIT_OPTIONS)
    try:

        @ray.remote
        class Noop:
            def noop(self):
                return None

        actor = Noop.remote()

        def roundtrips(count: int) -> None:
            for _ in range(count):
                ray.get(actor.noop.remote())

        roundtrips(WARMUP)
        return {"value": timed(roundtrips, ROUNDTRIPS) / ROUNDTRIPS * 1e6}
    finally:
        ray.shutdown()


def p2_pipelined(process: bool) -> dict:
    from benchmarks.impl_pyactors import pipelined  # W2's

    with pyactors_runtime():
        actor = probe(process)
        pipelined(actor, WARMUP)
        seconds = statistics.median(timed(pipelined, actor, BATCH) for _ in range(P2_BATCHES))
        return {"value": BATCH / seconds}


def p3_pyactors() -> dict:
    with pyactors_runtime() as pyactors:
        from benchmarks.process_actors import remote_identity

        def batch(n):
            return pyactors.get([remote_identity.remote(i) for i in range(n)])

        batch(WARMUP)  # both worker processes up
        start = time.perf_counter()
        results = batch(BATCH)
        seconds = time.perf_counter() - start
    assert results == list(range(BATCH))
    return {"value": BATCH / seconds}


def p3_executor() -> dict:
    from concurrent.futures import ProcessPoolExecutor, wait

    from benchmarks.process_actors import identity

    def batch(executor, n):
        done, _ = wait([executor.submit(identity, i) for i in range(n)])
        return done

    with ProcessPoolExecutor(WORKERS) as executor:  # joins its workers on exit
        batch(executor, WARMUP)
        start = time.perf_counter()
        done = batch(executor, BATCH)
        seconds = time.perf_counter() - start
    assert len(done) == BATCH
    return {"value": BATCH / seconds}


def p3_pool_map() -> dict:
    from benchmarks.process_actors import identity

    pool = multiprocessing.Pool(WORKERS)
    try:
        pool.map(identity, range(WARMUP), chunksize=1)
        start = time.perf_counter()
        results = pool.map(identity, range(BATCH), chunksize=1)
        seconds = time.perf_counter() - start
    finally:
        pool.close()
        pool.join()
    assert results == list(range(BATCH))
    return {"value": BATCH / seconds}


def p4_scaling(process: bool) -> dict:
    """One actor running 4 calls of the CPU loop, against two actors running 2 each; a round
    of both first, untimed: the worker kept spare boots meanwhile (0.1-0.2 s of a CPU), then
    the median of P4_ROUNDS."""
    import pyactors
    from benchmarks.process_actors import SPIN

    with pyactors_runtime():
        first, second = probe(process), probe(process)

        def one() -> None:
            pyactors.get([first.spin.remote(SPIN) for _ in range(4)])

        def two() -> None:
            pyactors.get([a.spin.remote(SPIN) for a in (first, second) for _ in range(2)])

        rounds = [(timed(one), timed(two)) for _ in range(1 + P4_ROUNDS)][1:]
    one_s = statistics.median(one_s for one_s, _ in rounds)
    two_s = statistics.median(two_s for _, two_s in rounds)
    return {"value": one_s / two_s, "one_actor_s": one_s, "two_actors_s": two_s}


def p5_actor() -> dict:
    import numpy

    import pyactors

    array = numpy.full(BUFFER, 7, numpy.uint8)
    with pyactors_runtime():
        actor = probe(True)
        assert numpy.array_equal(pyactors.get(actor.echo.remote(array)), array)
        pids = [os.getpid(), pyactors.get(actor.pid.remote())]
        before = minor_faults(pids)
        seconds = statistics.median(
            timed(lambda: pyactors.get(actor.echo.remote(array))) for _ in range(ECHOES)
        )
        faults = (minor_faults(pids) - before) / ECHOES
    return {"value": 2 * BUFFER / seconds / 1e9, "faults_per_echo": faults}


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(reader, size: int) -> bytearray:
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = reader.readinto(view[got:])
        if not n:
            raise EOFError(f"the pipe ended after {got} of {size} bytes")
        got += n
    return data


def _echo_bytes(fd_in: int, fd_out: int, rounds: int) -> None:
    with open(fd_in, "rb", buffering=0) as reader:
        for _ in range(rounds):
            _write_all(fd_out, _read_exactly(reader, BUFFER))


def p5_pipe() -> dict:
    """64 MiB of bytes down an os.pipe to a child that reads them all and sends them back."""
    down_in, down_out = os.pipe()
    up_in, up_out = os.pipe()
    child = FORK.Process(target=_echo_bytes, args=(down_in, up_out, ECHOES + 1), daemon=True)
    child.start()
    os.close(down_in)
    os.close(up_out)
    data = b"\x07" * BUFFER
    with open(up_in, "rb", buffering=0) as reader:

        def roundtrip():
            _write_all(down_out, data)
            return _read_exactly(reader, BUFFER)

        assert roundtrip() == data
        pids = [os.getpid(), child.pid]
        before = minor_faults(pids)
        seconds = statistics.median(timed(roundtrip) for _ in range(ECHOES))
        faults = (minor_faults(pids) - before) / ECHOES
    os.close(down_out)
    child.join()
    return {"value": 2 * BUFFER / seconds / 1e9, "faults_per_echo": faults}


def minor_faults(pids) -> int:
    """Page faults so far of these processes (minflt, /proc/PID/stat): P5's counter that load
    does not change."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            total += int(f.read().rsplit(")", 1)[1].split()[7])
    return total


# P6 cold: a fresh interpreter; the class is the script's own (__main__), as a user's would be.
COLD = """\
import time
start = time.perf_counter()
import pyactors

@pyactors.remote(process={process})
class Cold:
    def noop(self):
        return None

pyactors.get(Cold.remote().noop.remote())
seconds = time.perf_counter() - start
pyactors.shutdown()
import json, os
children = [pid for task in os.listdir("/proc/self/task")
            for pid in open(f"/proc/self/task/{{task}}/children").read().split()]
print(json.dumps({{"value": seconds, "leftover_processes": len(children)}}))
"""


def p6_warm(process: bool) -> dict:
    """Create an actor and get its first result, in a runtime that runs one already and is at
    rest (what it starts ahead of need, such as a spare worker, has had time to start); ms."""
    import pyactors

    with pyactors_runtime():
        probe(process)
        samples = []
        for _ in range(CREATIONS):
            time.sleep(AT_REST)
            processes = len(process_tree())
            start = time.perf_counter()
            actor = probe(process)
            samples.append(time.perf_counter() - start)
            pyactors.kill(actor)
            wait_for_processes(processes)  # this one's worker has ended
    return {"value": statistics.median(samples) * 1e3}


def p6_bare_interpreter() -> dict:
    """The least a fresh worker process costs: spawn..exit of `python -c pass`; ms."""
    command = [sys.executable, "-c", "pass"]
    return {
        "value": statistics.median(timed(subprocess.run, command) for _ in range(CREATIONS)) * 1e3
    }


def p7_pyactors() -> dict:
    import pyactors

    with pyactors_runtime():
        actors = [probe(True) for _ in range(IDLE_ACTORS)]
        pids = pyactors.get([actor.pid.remote() for actor in actors])
        time.sleep(0.2)
        return {"value": pss_mb(pids) / IDLE_ACTORS}


def p7_ray() -> dict:
    import ray

    from benchmarks.impl_ray import INIT_OPTIONS

    ray.init(**INIT_OPTIONS)
    try:

        @ray.remote
        class Idle:
            def pid(self):
                return os.getpid()

        actors = [Idle.remote() for _ in range(IDLE_ACTORS)]
        pids = ray.get([actor.pid.remote() for actor in actors])
        time.sleep(0.2)
        return {"value": pss_mb(pids) / IDLE_ACTORS}
    finally:
        ray.shutdown()


def pss_mb(pids) -> float:
    return sum(_proc_field(pid, "smaps_rollup", "Pss:") for pid in pids) / 1024


def wait_for_processes(at_most: int, timeout: float = SETTLE) -> int:
    """Wait until this process tree has at most ``at_most`` processes; how many it has."""
    deadline = time.monotonic() + timeout
    while len(process_tree()) > at_most and time.monotonic() < deadline:
        time.sleep(0.005)
    return len(process_tree())


@dataclass(frozen=True)
class Measurement:
    run: Callable[[], dict] | None  # None: `code` runs in a fresh interpreter instead
    code: str = ""
    requires: str = "pyactors"  # the package its interpreter must have
    pinnable: bool = True  # False: never pinned (P4)


MEASUREMENTS = {
    "p1_process": Measurement(lambda: p1_actor(True)),
    "p1_pipe": Measurement(p1_pipe, requires=""),
    "p1_reader_thread": Measurement(lambda: p1_pipe(ReaderThreadEcho), requires=""),
    "p1_handed_over": Measurement(lambda: p1_pipe(HandedOverEcho), requires=""),
    "p1_inprocess": Measurement(lambda: p1_actor(False)),
    "p1_ray": Measurement(p1_ray, requires="ray"),
    "p2_process": Measurement(lambda: p2_pipelined(True)),
    "p2_inprocess": Measurement(lambda: p2_pipelined(False)),
    "p3_pyactors": Measurement(p3_pyactors),
    "p3_executor": Measurement(p3_executor),
    "p3_pool_map": Measurement(p3_pool_map),
    "p4_process": Measurement(lambda: p4_scaling(True), pinnable=False),
    "p4_inprocess": Measurement(lambda: p4_scaling(False), pinnable=False),
    "p5_process": Measurement(p5_actor),
    "p5_pipe": Measurement(p5_pipe, requires=""),
    "p6_cold_process": Measurement(None, COLD.format(process=True)),
    "p6_cold_inprocess": Measurement(None, COLD.format(process=False)),
    "p6_warm_process": Measurement(lambda: p6_warm(True)),
    "p6_warm_inprocess": Measurement(lambda: p6_warm(False)),
    "p6_bare_interpreter": Measurement(p6_bare_interpreter, requires=""),
    "p7_process": Measurement(p7_pyactors),
    "p7_ray": Measurement(p7_ray, requires="ray"),
}


def run_worker(name: str) -> None:
    result = MEASUREMENTS[name].run()
    result["leftover_processes"] = wait_for_processes(1) - 1  # every child must have ended
    print(json.dumps(result), flush=True)


# -- driver side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    text: str
    need: float
    of_baseline: bool  # True: pyactors / baseline against need; False: the figure itself


@dataclass(frozen=True)
class Row:
    part: str
    label: str
    ours: str  # measurements, by name
    baseline: str | None
    baseline_name: str
    reference: str | None  # an in-process pyactors actor doing the same
    lower_is_better: bool
    fmt: str
    target: Target | None = None


def _p1_row(
    baseline: str, name: str, reference: str | None = None, target: Target | None = None
) -> Row:
    """A P1 row: the process actor's round trip against `baseline`."""
    return Row(
        "P1",
        "P1 sync round trip (µs/call)",
        "p1_process",
        baseline,
        name,
        reference,
        True,
        "{:,.1f}",
        target,
    )


ROWS = [
    _p1_row(
        "p1_pipe",
        "multiprocessing.Pipe + pickle",
        "p1_inprocess",
        Target("P1 round trip <= 1.5x the raw pipe's", 1.5, True),
    ),
    _p1_row("p1_reader_thread", "the pipe + the I/O thread's hand-off"),
    _p1_row("p1_handed_over", "the pipe + 2 thread hand-offs"),
    _p1_row(
        "p1_ray",
        "Ray actor",
        target=Target("P1 round trip >= 20x faster than Ray's (<= 0.05x)", 1 / 20, True),
    ),
    Row(
        "P2",
        f"P2 pipelined {BATCH:,} (calls/s)",
        "p2_process",
        None,
        "",
        "p2_inprocess",
        False,
        "{:,.0f}",
        Target("P2 pipelined >= 100,000 calls/s", 100_000, False),
    ),
    Row(
        "P3",
        f"P3 tiny tasks {BATCH:,} (tasks/s)",
        "p3_pyactors",
        "p3_executor",
        "ProcessPoolExecutor",
        None,
        False,
        "{:,.0f}",
        Target("P3 tiny tasks >= 3x ProcessPoolExecutor", 3, True),
    ),
    Row(
        "P3",
        f"P3 tiny tasks {BATCH:,} (tasks/s)",
        "p3_pyactors",
        "p3_pool_map",
        "Pool.map, chunksize=1",
        None,
        False,
        "{:,.0f}",
        Target("P3 tiny tasks >= 1x Pool.map(chunksize=1)", 1, True),
    ),
    Row(
        "P4",
        "P4 CPU scaling: 2 actors vs 1 (speedup)",
        "p4_process",
        None,
        "",
        "p4_inprocess",
        False,
        "{:.2f}",
        Target("P4 speedup >= 1.8 on 2 cores", 1.8, False),
    ),
    Row(
        "P5",
        "P5 64 MiB echo (GB/s)",
        "p5_process",
        "p5_pipe",
        "os.pipe, raw bytes",
        None,
        False,
        "{:.2f}",
        Target("P5 64 MiB echo >= 5x the raw pipe", 5, True),
    ),
    Row(
        "P6",
        "P6 cold: import..first result (s)",
        "p6_cold_process",
        None,
        "",
        "p6_cold_inprocess",
        True,
        "{:.3f}",
    ),
    Row(
        "P6",
        "P6 warm: create..first result (ms)",
        "p6_warm_process",
        "p6_bare_interpreter",
        "python -c pass, spawn..exit",
        "p6_warm_inprocess",
        True,
        "{:,.2f}",
    ),
    Row(
        "P7",
        f"P7 PSS per idle process actor (MB, {IDLE_ACTORS} actors)",
        "p7_process",
        "p7_ray",
        "Ray actor",
        None,
        True,
        "{:.1f}",
    ),
]
PARTS = sorted({row.part for row in ROWS})


def ratio(row: Row, ours: float | None, baseline: float | None) -> float | None:
    """> 1 means pyactors is better (as in benchmarks.compare)."""
    if not ours or not baseline:  # not measured (None), or 0
        return None
    return baseline / ours if row.lower_is_better else ours / baseline


def format_table(result: dict, rows: list[Row], unavailable: dict[str, str]) -> str:
    def cell(name: str | None, row: Row) -> str:
        if name is None:
            return ""
        if name in unavailable:
            return "n/a"
        value = result.get(name, {}).get("value")
        return "-" if value is None else row.fmt.format(value)

    lines = [["measurement", "pyactors", "baseline", "", "ratio", "in-process pyactors"]]
    for row in rows:
        r = ratio(row, *(result.get(n or "", {}).get("value") for n in (row.ours, row.baseline)))
        lines.append(
            [
                row.label,
                cell(row.ours, row),
                row.baseline_name,
                cell(row.baseline, row),
                "" if r is None else f"{r:,.2f}",
                cell(row.reference, row),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def targets(result: dict, rows: list[Row], unavailable: dict[str, str]) -> list[tuple]:
    """(target, measured, met) as benchmarks.compare.format_targets prints them."""
    out = []
    for row in rows:
        if row.target is None:
            continue
        target = row.target
        ours = result.get(row.ours, {}).get("value")
        baseline = result.get(row.baseline or "", {}).get("value")
        if ours is None or (target.of_baseline and baseline is None):
            why = unavailable.get(row.ours) or unavailable.get(row.baseline or "")
            out.append((target.text, why or "not measured", None))
        elif target.of_baseline:
            times = ours / baseline
            met = times <= target.need if row.lower_is_better else times >= target.need
            out.append(
                (
                    target.text,
                    f"{row.fmt.format(ours)} vs {row.fmt.format(baseline)}: {times:.2f}x",
                    met,
                )
            )
        else:
            out.append((target.text, row.fmt.format(ours), ours >= target.need))
    return out


def progress(result: dict, rows: list[Row]) -> list[tuple[str, float]]:
    """(target, how far it is reached: 1 = met exactly, 2 = twice better than needed) of each
    target that was measured: what the chart draws."""
    out = []
    for row in rows:
        target = row.target
        ours = result.get(row.ours, {}).get("value")
        baseline = result.get(row.baseline or "", {}).get("value")
        if target is None or not ours or (target.of_baseline and not baseline):
            continue
        if not target.of_baseline:
            out.append((target.text, ours / target.need))
        elif row.lower_is_better:
            out.append((target.text, target.need / (ours / baseline)))
        else:
            out.append((target.text, ours / baseline / target.need))
    return out


def job_command(name: str, python: str) -> list[str]:
    measurement = MEASUREMENTS[name]
    if measurement.run is None:
        return [python, "-c", measurement.code]
    return [python, "-m", "benchmarks.processes", "--worker", name]


def collect(
    names: list[str], pythons: dict[str, str], repeats: int, pin: str | None, snapshot: Path | None
) -> tuple[dict[str, list[dict]], list[str]]:
    samples: dict[str, list[dict]] = {}
    errors = []
    total, done = repeats * len(names), 0
    for _ in range(repeats):
        for name in names:
            done += 1
            pinned = pin if MEASUREMENTS[name].pinnable else None
            result, wall, error = run_json(
                job_command(name, pythons[name]), pinned, timeout=WORKER_TIMEOUT, snapshot=snapshot
            )
            print(
                f"[{done}/{total}] {name}: {'failed: ' + error if error else f'{wall:.1f} s'}",
                file=sys.stderr,
                flush=True,
            )
            if result is None:
                errors.append(f"{name}: {error}")
                continue
            if result.get("leftover_processes"):
                errors.append(
                    f"{name}: {result['leftover_processes']} child processes were "
                    f"still running after it ended"
                )
            samples.setdefault(name, []).append(result)
    return samples, errors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.processes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="processes per measurement (default 3)"
    )
    parser.add_argument(
        "--pin", metavar="CPU", help="run every measurement but P4 under taskset -c CPU"
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results here")
    parser.add_argument(
        "--chart", metavar="PNG", type=Path, help="draw how far each target is reached (matplotlib)"
    )
    parser.add_argument("--only", metavar="P1,P2,...", default=",".join(PARTS), help="rows to run")
    add_worker_options(parser, "another interpreter, for Ray (P7)")
    parser.add_argument("--worker", choices=list(MEASUREMENTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = chosen(parser, "--only", "row", args.only.upper(), PARTS)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        run_worker(args.worker)
        return
    rows = [row for row in ROWS if row.part in args.only]
    names = list(
        dict.fromkeys(
            name for row in rows for name in (row.ours, row.baseline, row.reference) if name
        )
    )
    candidates = [sys.executable, *args.alt_python]
    pythons, unavailable = {}, {}
    for name in names:
        measurement = MEASUREMENTS[name]
        if args.pin is not None and not measurement.pinnable:
            unavailable[name] = "not run pinned: two processes on one CPU cannot run at once"
            continue
        requires = measurement.requires
        python = next((p for p in candidates if not requires or has_package(p, requires)), None)
        if python is None:
            unavailable[name] = (
                f"{requires} is not importable by this interpreter or any --alt-python"
            )
        else:
            pythons[name] = python
    started, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pyactors-bench-") as tmp:
        snapshot = None if args.no_snapshot else snapshot_pyactors(Path(tmp))
        build = pyactors_build(snapshot / "pyactors" if snapshot else None)
        samples, errors = collect(
            [n for n in names if n in pythons], pythons, args.repeats, args.pin, snapshot
        )
    result = medians(samples)
    load_after = os.getloadavg()
    header = [
        f"{'pinned to CPU ' + args.pin if args.pin is not None else 'unpinned'}; median of "
        f"{args.repeats} repeats; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load "
        f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"{(time.time() - started) / 60:.1f} min",
        f"pyactors: {build}{', copied at the start' if snapshot else ''}; init(num_cpus="
        f"{WORKERS}); process pools: {WORKERS} workers, start method "
        f"{multiprocessing.get_start_method()}",
    ]
    notes = [
        "ratio > 1 means pyactors is better: for times, baseline / pyactors; for rates, "
        "pyactors / baseline. '-' = not run (see errors)."
    ]
    notes += [f"{name}: n/a, {why}" for name, why in unavailable.items()]
    notes += [
        f"{name}: {statistics.median(s['faults_per_echo'] for s in samples[name]):,.0f} page "
        f"faults per echo (parent and child)"
        for name in ("p5_process", "p5_pipe")
        if name in samples
    ]
    notes += [f"error: {error}" for error in errors]
    target_rows = targets(result, rows, unavailable)
    print("\n".join(header))
    print(format_table(result, rows, unavailable))
    print("\n".join(notes))
    print("\ntargets:")
    print(format_targets(target_rows))
    if args.chart is not None:
        from benchmarks.chart import draw_progress

        draw_progress(progress(result, rows), args.chart, f"{header[0]}\n{header[1]}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                finite(
                    {
                        "title": header[0],
                        "build": header[1],
                        "pin": args.pin,
                        "repeats": args.repeats,
                        "interpreters": pythons,
                        "unavailable": unavailable,
                        "errors": errors,
                        "medians": result,
                        "samples": samples,
                        "targets": [
                            {"target": t, "measured": m, "met": met} for t, m, met in target_rows
                        ],
                    }
                ),
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
