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

runs valgrind itself, twice per cell (N and 0), and prints the instructions per call of every
workload and body on pyactors and the floor, both loop kinds, with the floor / pyactors ratio
and whether it meets the target (>= 2x fewer instructions than the floor, for awaiting bodies
and W9).
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


def _in_caller_loop(loop: asyncio.AbstractEventLoop, run, actor, calls: int, body: str) -> None:
    try:
        # The caller loop's own first-use costs:
        loop.run_until_complete(run(actor, 1, *body_args(body)))
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
                impl.new_caller_loop(session), impl.async_roundtrips, head, calls, "relay"
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


def instructions(python: str, cell: Cell, calls: int, out_dir: Path) -> int:
    """Ir of one valgrind run (user space, all threads); its output file stays in out_dir."""
    out = out_dir / f"{cell.row}.{cell.impl}.{cell.loop}.{calls}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        python,
        "-m",
        "benchmarks.callgrind",
        str(calls),
        *("--workload", cell.workload, "--body", cell.body),
        *("--impl", cell.impl, "--loop", cell.loop),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(command)}: exit status {done.returncode}: {tail}")
    match = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{out}: no summary line")
    return int(match.group(1))


def per_call(python: str, cell: Cell, calls: int, out_dir: Path) -> float:
    return (
        instructions(python, cell, calls, out_dir) - instructions(python, cell, 0, out_dir)
    ) / calls


def cells(workloads: list[str], bodies: list[str], impls: list[str], loops: list[str]):
    for workload in workloads:
        for body in bodies if KERNELS[workload].bodies else ["noop"]:
            for loop in loops:
                if workload == "W3asyncio" and loop == "asyncio":
                    continue  # the same as W3 there
                for impl in impls:
                    yield Cell(workload, body, impl, loop)


def has_target(row: str) -> bool:
    """Rows with a target: every awaiting body, and W9."""
    return row.startswith("W9") or row.rsplit(":", 1)[-1] in AWAITING_BODIES


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
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(per_call, args.python, c, args.table_calls, out_dir): c for c in todo
        }
        for i, (future, cell) in enumerate(futures.items(), 1):
            try:
                figures[cell] = future.result()
            except RuntimeError as exc:
                errors.append(str(exc))
                continue
            print(
                f"[{i}/{len(todo)}] {cell.row} {cell.column}: {figures[cell]:,.0f}",
                file=sys.stderr,
                flush=True,
            )
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
    args = parser.parse_args()
    if args.table:
        table(args)
    elif args.calls is None:
        parser.error("give N, or --table")
    else:
        run_kernel(args.calls, args.workload, args.body, args.impl, args.loop)


if __name__ == "__main__":
    main()
