"""Callgrind driver: N calls of one workload, after the same setup whatever N is.

    valgrind --tool=callgrind --callgrind-out-file=/tmp/w1.N.out \\
        python -m benchmarks.callgrind N [--workload W1|W2|W3|...] [--body noop|sleep0|...]
                                         [--impl pyactors|floor|rct] [--loop uvloop|asyncio]

Instructions per call = (Ir with N=2000 - Ir with N=0) / 2000: the N=0 run pays for the
interpreter, the imports, the actors' start and shutdown, so the difference is the calls alone.
W1 makes N round trips; W2 submits N calls, then gets them all; W3 awaits N calls one after
the other in a caller's event loop (W3asyncio: a stock asyncio caller loop whatever the actors'
loops), W3gather gathers N calls there; W6 is 4 threads making N/4 round trips each. W9 is N
calls of an actor method that awaits a call on a second actor (W9chain3: a chain of three),
from a plain thread (W9async: awaited in a caller's loop); W10 is N calls split over W10's
4 threads and 2 async callers. ``--body`` chooses the method body of W1 to W6 (workloads.Bodies).

    python -m benchmarks.callgrind --table [--calls 2400] [--jobs 2] [--python PATH] ...

runs valgrind itself and prints the instructions per call of every workload and body on
pyactors and the floor, both loop kinds, with the floor / pyactors ratio and whether it meets
the target (>= 2x fewer instructions than the floor, for awaiting bodies and W9). It starts
the interpreter once per implementation and loop: under ``--dump-before=getppid`` each cell
runs after a warm-up with 0 calls and then with N calls, between calls of ``os.getppid()``
that make callgrind dump its counts, so each cell is still N calls minus none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from benchmarks.workloads import (
    AWAITING_BODIES,
    BODIES,
    LOOP_KINDS,
    Sizes,
    actor_for,
    body_args,
    fan_in,
    load_adapter,
    mixed,
    mixed_actors,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
W6_THREADS = Sizes().w6_threads
W10_CALLERS = Sizes().w10_threads + Sizes().w10_async_callers
TARGET = 2.0  # the floor's instructions per call over pyactors'


def _in_caller_loop(
    loop: asyncio.AbstractEventLoop, run, actor, calls: int, body: str, warm: str = "noop"
) -> None:
    try:
        # The caller loop's own first-use costs, with a body that does not depend on --body,
        # so that N=0 is the same run for every awaiting body:
        loop.run_until_complete(run(actor, 1, *body_args(warm)))
        loop.run_until_complete(run(actor, calls, *body_args(body)))
    finally:
        loop.close()


def w1(impl, session, calls, body):
    impl.roundtrips(actor_for(impl, session, body), calls, *body_args(body))


def w2(impl, session, calls, body):
    impl.pipelined(actor_for(impl, session, body), calls, *body_args(body))


def w3(impl, session, calls, body):
    loop = impl.new_caller_loop(session)
    _in_caller_loop(loop, impl.async_roundtrips, actor_for(impl, session, body), calls, body)


def w3_asyncio(impl, session, calls, body):
    loop = asyncio.new_event_loop()
    _in_caller_loop(loop, impl.async_roundtrips, actor_for(impl, session, body), calls, body)


def w3_gather(impl, session, calls, body):
    loop = impl.new_caller_loop(session)
    _in_caller_loop(loop, impl.async_gather, actor_for(impl, session, body), calls, body)


def w6(impl, session, calls, body):
    fan_in(impl, actor_for(impl, session, body), W6_THREADS, calls // W6_THREADS, body)


def relay(depth: int, awaited: bool) -> Callable:
    def run(impl, session, calls, body):
        head = impl.relay_chain(session, depth)
        if awaited:
            _in_caller_loop(
                impl.new_caller_loop(session), impl.async_roundtrips, head, calls, "relay", "relay"
            )
        else:
            impl.roundtrips(head, calls, "relay")

    return run


def w10(impl, session, calls, body):
    sizes = Sizes()
    mixed(impl, session, mixed_actors(impl, session, sizes), sizes, calls // W10_CALLERS)


@dataclass(frozen=True)
class Kernel:
    run: Callable[[ModuleType, object, int, str], None]
    bodies: bool  # --body chooses its method body
    divisor: int = 1  # N is split over this many callers
    title: str = ""


KERNELS = {
    "W1": Kernel(w1, True, title="W1 sync round trip"),
    "W2": Kernel(w2, True, title="W2 pipelined"),
    "W3": Kernel(w3, True, title="W3 sequential await"),
    "W3asyncio": Kernel(w3_asyncio, True, title="W3 sequential await, asyncio caller"),
    "W3gather": Kernel(w3_gather, True, title="W3 gather"),
    "W6": Kernel(w6, True, W6_THREADS, title="W6 fan-in, 4 threads"),
    "W9": Kernel(relay(2, False), False, title="W9 actor to actor, thread caller"),
    "W9async": Kernel(relay(2, True), False, title="W9 actor to actor, async caller"),
    "W9chain3": Kernel(relay(3, False), False, title="W9 chain of 3, thread caller"),
    "W9chain3async": Kernel(relay(3, True), False, title="W9 chain of 3, async caller"),
    "W10": Kernel(w10, False, W10_CALLERS, title="W10 mixed, 4 threads + 2 async callers"),
}


def run_kernel(calls: int, workload: str, body: str, impl_name: str, loop: str) -> None:
    kernel = KERNELS[workload]
    if calls % kernel.divisor:
        raise SystemExit(f"{workload}: N must be a multiple of {kernel.divisor}, got {calls}")
    if body != "noop" and not kernel.bodies:
        raise SystemExit(f"{workload} has no --body: its bodies are its own")
    impl = load_adapter(impl_name)
    with impl.session(loop) as session:
        kernel.run(impl, session, calls, body)


# -- the table: valgrind run by this script -------------------------------------------------


@dataclass(frozen=True)
class Cell:
    workload: str
    body: str
    impl: str
    loop: str

    @property
    def row(self) -> str:
        return self.workload if self.body == "noop" else f"{self.workload}:{self.body}"

    @property
    def column(self) -> str:
        return f"{self.impl}[{self.loop}]"


MARK = "getppid"  # --dump-before=getppid: nothing else in the measured process calls it
WARM_CALLS = 24  # a warm-up of each cell: lazy imports and first-use costs, not counted


def measure_cells(todo: list[Cell], calls: int) -> None:
    """In this process, under valgrind --dump-before=getppid: for each cell, a warm-up, then
    the cell with 0 calls and with ``calls`` calls, each between two marks, so that
    callgrind dumps the counts of each run on its own. The interpreter starts once."""
    for cell in todo:
        run_kernel(WARM_CALLS, cell.workload, cell.body, cell.impl, cell.loop)
        for n in (0, calls):
            os.getppid()
            run_kernel(n, cell.workload, cell.body, cell.impl, cell.loop)
        os.getppid()


def column_run(python: str, todo: list[Cell], calls: int, out: Path) -> dict[Cell, float]:
    """One valgrind run of ``todo`` (one interpreter start): instructions per call of each
    cell, (Ir of its N-call run - Ir of its 0-call run) / N, from callgrind's dumps."""
    for stale in out.parent.iterdir():
        if stale.name.startswith(out.name):  # a previous table's dumps in --keep DIR
            stale.unlink()
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--dump-before={MARK}",
        f"--callgrind-out-file={out}",
        python,
        "-m",
        "benchmarks.callgrind",
        "--measure",
        json.dumps([c.__dict__ for c in todo]),
        "--calls",
        str(calls),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(command[:5])} ...: exit status {done.returncode}: {tail}")
    return read_dumps(out, todo, calls)


def read_dumps(out: Path, todo: list[Cell], calls: int) -> dict[Cell, float]:
    """The figures of the cells whose dumps are there (all, once the run has ended)."""
    parts = {}
    for dump in out.parent.iterdir():
        if not dump.name.startswith(out.name + "."):
            continue
        text = dump.read_text()
        part = re.search(r"^part:\s*(\d+)", text, re.MULTILINE)
        total = re.search(r"^summary:\s*(\d+)", text, re.MULTILINE)
        if part and total:
            parts[int(part.group(1))] = int(total.group(1))
    # Dump k holds the counts since dump k-1; cell i's 0-call run is dump 3i+2, its N-call
    # run dump 3i+3 (dump 3i+1: its warm-up and what came before).
    return {
        cell: (parts[3 * i + 3] - parts[3 * i + 2]) / calls
        for i, cell in enumerate(todo)
        if 3 * i + 3 in parts
    }


def cells(workloads: list[str], bodies: list[str], impls: list[str], loops: list[str]):
    for workload in workloads:
        for body in bodies if KERNELS[workload].bodies else ["noop"]:
            for loop in loops:
                if workload == "W3asyncio" and loop == "asyncio":
                    continue  # the same as W3 there
                for impl in impls:
                    yield Cell(workload, body, impl, loop)


def has_target(row: str) -> bool:
    """Rows with a target: every awaiting body (W10's included), and W9."""
    return row.startswith(("W9", "W10")) or row.rsplit(":", 1)[-1] in AWAITING_BODIES


def format_table(figures: dict[Cell, float], loops: list[str]) -> str:
    """Markdown: a row per workload and body, pyactors, the floor and their ratio per loop."""
    rows = list(dict.fromkeys(c.row for c in figures))
    header = ["workload"]
    for loop in loops:
        header += [f"pyactors[{loop}]", f"floor[{loop}]", "floor / pyactors"]
    header.append(f"target >= {TARGET:g}x")
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for row in rows:
        found = {(c.impl, c.loop): v for c, v in figures.items() if c.row == row}
        cells_ = [row]
        verdicts = []
        for loop in loops:
            ours, floor = found.get(("pyactors", loop)), found.get(("floor", loop))
            cells_ += [f"{v:,.0f}" if v is not None else "-" for v in (ours, floor)]
            if ours and floor:
                cells_.append(f"{floor / ours:.2f}")
                verdicts.append(floor / ours >= TARGET)
            else:
                cells_.append("-")
        if not has_target(row) or not verdicts:
            cells_.append("")
        else:
            cells_.append("met" if all(verdicts) else "**not met**")
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def table(args: argparse.Namespace) -> None:
    todo = list(cells(args.workloads, args.bodies, args.impls, args.loops))
    for cell in todo:
        if args.table_calls % KERNELS[cell.workload].divisor:
            raise SystemExit(f"--calls must be a multiple of {KERNELS[cell.workload].divisor}")
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="pyactors-callgrind-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    figures: dict[Cell, float] = {}
    errors = []
    columns = {c.column: [d for d in todo if d.column == c.column] for c in todo}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(
                column_run, args.python, cells_, args.table_calls, out_dir / f"{column}.out"
            ): column
            for column, cells_ in columns.items()
        }
        for future, column in futures.items():
            try:
                figures.update(future.result())
            except RuntimeError as exc:
                errors.append(str(exc))
                continue
            print(f"{column}: done", file=sys.stderr, flush=True)
    errors += [f"{c.row} {c.column}: no figure" for c in todo if c not in figures]
    print(f"Python {version}; instructions per call, (Ir[N={args.table_calls}] - Ir[N=0]) / N")
    print(format_table(figures, args.loops))
    for error in errors:
        print(f"error: {error}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": version,
                    "calls": args.table_calls,
                    "figures": [{**c.__dict__, "per_call": v} for c, v in figures.items()],
                    "errors": errors,
                },
                indent=2,
            )
            + "\n"
        )


def names(value: str, choices) -> list[str]:
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in choices]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(unknown)}; choose among {', '.join(choices)}"
        )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.callgrind",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("calls", type=int, nargs="?", help="N (not with --table)")
    parser.add_argument("--workload", choices=KERNELS, default="W1")
    parser.add_argument("--body", choices=BODIES, default="noop")
    parser.add_argument("--impl", choices=("pyactors", "floor", "rct"), default="pyactors")
    parser.add_argument("--loop", choices=LOOP_KINDS, default=LOOP_KINDS[0])
    table_options = parser.add_argument_group("--table")
    table_options.add_argument("--table", action="store_true", help="run valgrind, print a table")
    table_options.add_argument(
        "--calls", dest="table_calls", type=int, default=2400, help="N of every cell"
    )
    table_options.add_argument(
        "--workloads", type=lambda v: names(v, KERNELS), default=list(KERNELS)
    )
    table_options.add_argument("--bodies", type=lambda v: names(v, BODIES), default=list(BODIES))
    table_options.add_argument(
        "--impls", type=lambda v: names(v, ("pyactors", "floor")), default=["pyactors", "floor"]
    )
    table_options.add_argument(
        "--loops", type=lambda v: names(v, LOOP_KINDS), default=list(LOOP_KINDS)
    )
    table_options.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    table_options.add_argument(
        "--python", default=sys.executable, help="the interpreter to count (default: this one)"
    )
    table_options.add_argument("--json", type=Path, help="also write the figures here")
    table_options.add_argument("--keep", type=Path, help="keep the callgrind outputs here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # cells, as JSON: under valgrind
    args = parser.parse_args()
    if args.measure:
        measure_cells([Cell(**c) for c in json.loads(args.measure)], args.table_calls)
    elif args.table:
        table(args)
    elif args.calls is None:
        parser.error("give N, or --table")
    else:
        run_kernel(args.calls, args.workload, args.body, args.impl, args.loop)


if __name__ == "__main__":
    main()
