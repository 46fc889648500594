"""W1 to W10 on pyactors, the floor, run_coroutine_threadsafe, Ray and pykka.

    python -m benchmarks.compare [--pin CPU] [--repeats N] [--json PATH] [--png PATH]
                                 [--only W1,W2,...] [--impls pyactors,floor,...]
                                 [--bodies noop,sleep0,...] [--alt-python PATH]

Every (implementation, workload, repeat) runs in a process of its own; the repeats go
round-robin over the implementations, so that a slow spell of the machine hits them all alike.
Ray, which takes seconds to start, instead runs all its workloads in one process per repeat,
after one ray.init() (at most --ray-repeats of them). The table shows the median of each
figure over the repeats.

Implementations: pyactors[uvloop], pyactors[asyncio], floor[uvloop], floor[asyncio]
(benchmarks/floor.py), rct[uvloop] (asyncio.run_coroutine_threadsafe onto one loop thread),
ray and pykka. An implementation whose package this interpreter lacks runs under the first
--alt-python interpreter that has it (default: $PYACTORS_BENCH_ALT_PYTHON, os.pathsep-separated),
and is skipped with a note when none has it.
"""

from __future__ import annotations

import _thread
import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.workloads import (
    AWAITING_BODIES,
    BODIES,
    GROUP_LIMITS,
    IMPLEMENTATIONS,
    WORKLOADS,
    Sizes,
    bodies_of,
    load_adapter,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PINGPONG = "lock-pingpong"
PINGPONG_ROUNDTRIPS = 20_000
FRESH = "W7fresh"  # the fresh-process half of W7: benchmarks.fresh, a process of its own
PARTS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", FRESH, "W8", "W9", "W10"]
TEARDOWN_BUDGET = 5.0  # seconds a worker waits for its runtime to stop before giving up
WORKER_TIMEOUT = 600.0
OURS, FLOOR, RAY, OURS_ASYNCIO, FLOOR_ASYNCIO = (
    "pyactors[uvloop]",
    "floor[uvloop]",
    "ray",
    "pyactors[asyncio]",
    "floor[asyncio]",
)
DEFAULT_SIZES = Sizes()


# -- worker side: runs in the measured process ----------------------------------------------


def _bounded(fn, budget: float) -> float | None:
    """Seconds ``fn()`` takes, or None if it is still running after ``budget`` seconds."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run():
        try:
            fn()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            done.set()

    start = time.perf_counter()
    threading.Thread(target=run, name="teardown", daemon=True).start()
    if not done.wait(budget):
        return None
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def run_workloads(
    impl_name: str, loop: str | None, keys: list[str], bodies: tuple[str, ...] = BODIES
) -> dict:
    """Run workloads ``keys`` of one implementation in this process, in one session; those
    with a body parameter once per body of ``bodies`` the implementation has.

    Adds ``teardown_s``: how long stopping the session took (None: over TEARDOWN_BUDGET; the
    process must then end with os._exit, as the workers do).
    """
    impl = load_adapter(impl_name)
    results: dict = {}
    manager = impl.session(loop)
    session = manager.__enter__()
    try:
        for key in keys:
            workload = WORKLOADS[key]
            if key in impl.NOT_APPLICABLE:
                continue
            if not workload.bodies:
                results.update(workload.run(impl, session, impl.SIZES))
                continue
            for body in bodies:
                if body in bodies_of(impl):
                    results.update(workload.run(impl, session, impl.SIZES, body))
    except BaseException:
        manager.__exit__(*sys.exc_info())
        raise
    results["teardown_s"] = _bounded(lambda: manager.__exit__(None, None, None), TEARDOWN_BUDGET)
    return results


def measure_lock_pingpong(roundtrips: int = PINGPONG_ROUNDTRIPS) -> dict:
    """The true limit of W1: two threads handing two locks back and forth, no event loop."""
    ping = _thread.allocate_lock()
    pong = _thread.allocate_lock()
    ping.acquire()
    pong.acquire()

    def responder():
        for _ in range(roundtrips):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=responder)
    thread.start()
    start = time.perf_counter()
    for _ in range(roundtrips):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    thread.join()
    return {"w1_limit_us": elapsed / roundtrips * 1e6}


def describe(impl_name: str) -> dict:
    impl = load_adapter(impl_name)
    return {
        "not_applicable": impl.NOT_APPLICABLE,
        "notes": impl.NOTES,
        "sizes": impl.SIZES.__dict__,
    }


def run_worker(args: argparse.Namespace) -> None:
    if args.worker == PINGPONG:
        result = measure_lock_pingpong()
    elif args.describe:
        result = describe(args.worker)
    else:
        result = run_workloads(args.worker, args.loop, [args.workload], tuple(args.bodies))
    print(json.dumps(result), flush=True)
    os._exit(0)  # threads of a runtime that outlived TEARDOWN_BUDGET must not hold us


# -- driver side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    impl: str
    loop: str | None

    @property
    def name(self) -> str:
        return self.impl if self.loop is None else f"{self.impl}[{self.loop}]"


@dataclass(frozen=True)
class Job:
    column: Column
    part: str  # a workload key, FRESH, or "all" (one-process implementations)


@dataclass(frozen=True)
class Row:
    metric: str
    label: str
    lower_is_better: bool | None  # None: no ratio
    fmt: str

    @property
    def part(self) -> str:
        """The workload the row belongs to: W1 for w1_us, W10 for w10_calls_per_s."""
        return "W" + re.match(r"[wW](\d+)", self.metric).group(1)  # type: ignore[union-attr]

    @property
    def body(self) -> str:
        return self.metric.partition(":")[2] or "noop"


BODY_TAGS = {"sleep0": "sleep(0)", "future": "future", "lock": "lock"}


def with_bodies(row: Row) -> list[Row]:
    """``row`` (the noop body) and a row per awaiting body, its tag in the label."""
    head, _, unit = row.label.rpartition(" (")
    return [row] + [
        Row(
            f"{row.metric}:{body}",
            f"{head} [{BODY_TAGS[body]}] ({unit}",
            row.lower_is_better,
            row.fmt,
        )
        for body in AWAITING_BODIES
    ]


ROWS = [
    *with_bodies(Row("w1_us", "W1 sync round trip (µs/call)", True, "{:,.1f}")),
    *with_bodies(
        Row(
            "w2_calls_per_s", f"W2 pipelined {DEFAULT_SIZES.w2_calls:,} (calls/s)", False, "{:,.0f}"
        )
    ),
    *with_bodies(Row("w3_seq_us", "W3 async sequential await (µs/call)", True, "{:,.1f}")),
    *with_bodies(
        Row("w3_seq_from_asyncio_us", "W3 seq. await, asyncio caller (µs/call)", True, "{:,.1f}")
    ),
    *with_bodies(
        Row(
            "w3_gather_calls_per_s",
            f"W3 async gather {DEFAULT_SIZES.w3_gather:,} (calls/s)",
            False,
            "{:,.0f}",
        )
    ),
    Row("w4_calls_per_s", f"W4 groups, {DEFAULT_SIZES.w4_calls} calls (calls/s)", False, "{:,.0f}"),
    Row("w4_max_in_flight", "W4 max in flight io/compute/default", None, ""),
    Row("w5_overhead_ms", "W5 limit wall, over ideal 1.0 s (ms)", True, "{:,.1f}"),
    *with_bodies(
        Row(
            "w6_calls_per_s",
            f"W6 fan-in {DEFAULT_SIZES.w6_threads} threads (calls/s)",
            False,
            "{:,.0f}",
        )
    ),
    Row("w7_us_per_actor", "W7 create+call+kill (µs/actor)", True, "{:,.0f}"),
    Row("w7_fresh_s", "W7 fresh: import..first result (s)", True, "{:.3f}"),
    Row("w7_fresh_wall_s", "W7 fresh: spawn..exit (s)", True, "{:.3f}"),
    Row("w7_fresh_rss_mb", "W7 fresh: RSS (MB)", True, "{:,.1f}"),
    Row("w8_idle_mb_per_actor", "W8 MB/actor, never called", True, "{:.3f}"),
    Row("w8_idle_threads_per_actor", "W8 threads/actor, never called", True, "{:.2f}"),
    Row("w8_used_mb_per_actor", "W8 MB/actor, 3 groups called once", True, "{:.3f}"),
    Row("w8_used_threads_per_actor", "W8 threads/actor, 3 groups used", True, "{:.2f}"),
    Row("W8_teardown_s", "W8 teardown: stop everything (s)", True, "{:.2f}"),
    Row("w9_sync_us", "W9 actor->actor, thread caller (µs/call)", True, "{:,.1f}"),
    Row("w9_async_us", "W9 actor->actor, async caller (µs/call)", True, "{:,.1f}"),
    Row("w9_chain3_sync_us", "W9 chain of 3, thread caller (µs/call)", True, "{:,.1f}"),
    Row("w9_chain3_async_us", "W9 chain of 3, async caller (µs/call)", True, "{:,.1f}"),
    Row(
        "w10_calls_per_s",
        f"W10 mixed {DEFAULT_SIZES.w10_threads} threads + {DEFAULT_SIZES.w10_async_callers} "
        "async (calls/s)",
        False,
        "{:,.0f}",
    ),
]
RATIOS = [
    (OURS, FLOOR, "vs floor[uv]"),
    (OURS, RAY, "vs ray"),
    (OURS_ASYNCIO, FLOOR_ASYNCIO, "aio vs floor[aio]"),
]


def worker_env(snapshot: Path | None = None) -> dict:
    env = dict(os.environ)
    # Ray's worker processes import the adapter module: they need the repository on the path.
    # A snapshot of pyactors goes first: it shadows the (editable) installed one.
    path = [str(snapshot) if snapshot else None, str(REPO_ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def snapshot_pyactors(into: Path) -> Path | None:
    """Copy the pyactors package this interpreter imports (compiled core included) into
    ``into``, so that every worker of the run imports the same build even if someone rebuilds
    the core meanwhile. None when this interpreter has no pyactors."""
    from importlib.util import find_spec

    spec = find_spec("pyactors")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(package, into / "pyactors", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def has_package(python: str, package: str) -> bool:
    check = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is None)"
    return (
        subprocess.run(
            [python, "-c", check],
            cwd=REPO_ROOT,
            env=worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,  # the exit status is the answer
        ).returncode
        == 0
    )


def choose_interpreters(impls: list[str], alt_pythons: list[str]) -> dict[str, str | None]:
    candidates = [sys.executable, *alt_pythons]
    return {
        impl: next(
            (
                python
                for python in candidates
                if has_package(python, IMPLEMENTATIONS[impl].requires)
            ),
            None,
        )
        for impl in impls
    }


def run_json(
    command: list[str],
    pin: str | None,
    timeout: float = WORKER_TIMEOUT,
    snapshot: Path | None = None,
) -> tuple[dict | None, float, str]:
    """Run a worker; (its JSON result or None, wall seconds, error text)."""
    if pin is not None:
        command = ["taskset", "-c", pin, *command]
    start = time.perf_counter()
    try:
        out = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=worker_env(snapshot),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # a failed worker is reported with its stderr below
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = " | ".join(out.stderr.strip().splitlines()[-3:])
        return None, wall, f"exit status {out.returncode}: {tail}"
    return json.loads(lines[-1]), wall, ""


def job_command(job: Job, python: str, parts: list[str], bodies: list[str]) -> list[str]:
    column = job.column
    loop = [] if column.loop is None else ["--loop", column.loop]
    if job.part == "all":
        rest = [p for p in parts if p != FRESH]
        return [python, "-m", "benchmarks.fresh", column.impl, *loop, "--then", ",".join(rest)]
    if job.part == FRESH:
        return [python, "-m", "benchmarks.fresh", column.impl, *loop]
    if column.impl == PINGPONG:
        return [python, "-m", "benchmarks.compare", "--worker", PINGPONG]
    return [
        python,
        "-m",
        "benchmarks.compare",
        "--worker",
        column.impl,
        *loop,
        "--workload",
        job.part,
        "--bodies",
        ",".join(bodies),
    ]


def plan(
    columns: list[Column], parts: list[str], meta: dict, repeats: int, one_process_repeats: int
) -> list[list[Job]]:
    """Rounds of jobs: each round holds one repeat of everything, workload by workload."""
    rounds = []
    for repeat in range(repeats):
        jobs = []
        for part in parts:
            for column in columns:
                if IMPLEMENTATIONS.get(column.impl) and IMPLEMENTATIONS[column.impl].one_process:
                    continue
                if column.impl == PINGPONG:
                    if part == "W1":
                        jobs.append(Job(column, part))
                elif part not in meta[column.impl]["not_applicable"]:
                    jobs.append(Job(column, part))
        if repeat < one_process_repeats:
            jobs += [
                Job(c, "all")
                for c in columns
                if c.impl in IMPLEMENTATIONS and IMPLEMENTATIONS[c.impl].one_process
            ]
        rounds.append(jobs)
    return rounds


def collect(
    rounds: list[list[Job]],
    interpreters: dict,
    parts: list[str],
    pin: str | None,
    snapshot: Path | None,
    bodies: list[str],
) -> tuple[dict[str, list[dict]], list[str]]:
    samples: dict[str, list[dict]] = {}
    errors = []
    total = sum(map(len, rounds))
    done = 0
    for jobs in rounds:
        for job in jobs:
            done += 1
            python = interpreters.get(job.column.impl, sys.executable)
            result, wall, error = run_json(
                job_command(job, python, parts, bodies), pin, snapshot=snapshot
            )
            print(
                f"[{done}/{total}] {job.column.name} {job.part}: "
                f"{'failed: ' + error if error else f'{wall:.1f} s'}",
                file=sys.stderr,
                flush=True,
            )
            if result is None:
                errors.append(f"{job.column.name} {job.part}: {error}")
                continue
            if job.part == FRESH:
                result["w7_fresh_wall_s"] = wall
            teardown = result.pop("teardown_s", "absent")
            if job.part in ("W8", "all") and teardown != "absent":
                result["W8_teardown_s"] = math.inf if teardown is None else teardown
            samples.setdefault(job.column.name, []).append(result)
    return samples, errors


def medians(samples: dict[str, list[dict]]) -> dict[str, dict]:
    result = {}
    for name, runs in samples.items():
        merged: dict[str, list] = {}
        for run in runs:
            for key, value in run.items():
                merged.setdefault(key, []).append(value)
        out = {}
        for key, values in merged.items():
            if isinstance(values[0], dict):  # maxima per group: the most seen in any repeat
                out[key] = {g: max(v[g] for v in values) for g in values[0]}
            elif isinstance(values[0], bool):
                out[key] = all(values)
            else:
                out[key] = statistics.median(values)
        result[name] = out
    return result


def ratio(result: dict, ours: str, other: str, row: Row) -> float | None:
    a = result.get(ours, {}).get(row.metric)
    b = result.get(other, {}).get(row.metric)
    if row.lower_is_better is None or a is None or b is None or math.inf in (a, b):
        return None
    if row.lower_is_better:
        return b / a if a > 0 else None
    return a / b if b > 0 else None


def ratio_cell(result: dict, ours: str, other: str, row: Row) -> str:
    r = ratio(result, ours, other, row)
    if r is None:
        a = result.get(ours, {}).get(row.metric)
        b = result.get(other, {}).get(row.metric)
        if a == math.inf and b is not None and b < math.inf:  # ours ran over its budget
            return f"<{b / TEARDOWN_BUDGET:.2f}"
        if b == math.inf and a is not None and 0 < a < math.inf:
            return f">{TEARDOWN_BUDGET / a:.2f}"
        return ""
    return f"{r:,.2f}" if r < 100 else f"{r:,.0f}"


def cell(result: dict, column: str, row: Row, not_applicable: bool) -> str:
    if not_applicable:
        return "n/a"
    value = result.get(column, {}).get(row.metric)
    if value is None:
        return "-"
    if row.metric == "w4_max_in_flight":
        within, exact = result[column].get("w4_within_limits"), result[column].get("w4_exact")
        verdict = "OVER" if not within else "exact" if exact else "under"
        return "/".join(str(value[g]) for g in ("io", "compute", "default")) + " " + verdict
    if value == math.inf:
        return f">{TEARDOWN_BUDGET:.0f}"
    return row.fmt.format(value)


def format_table(
    result: dict, columns: list[Column], meta: dict, parts: list[str], bodies: list[str]
) -> str:
    names = [c.name for c in columns if c.impl != PINGPONG]
    ratios = [(a, b, label) for a, b, label in RATIOS if a in names and b in names]
    header = ["workload", *names, *(label for _, _, label in ratios)]
    rows = [header]
    for row in ROWS:
        part = row.part
        if row.body not in bodies:
            continue
        if part not in parts and not (part == "W7" and FRESH in parts):
            continue
        if row.metric.startswith("w7_fresh") and FRESH not in parts:
            continue
        cells = [row.label]
        for column in columns:
            if column.impl == PINGPONG:
                continue
            n_a = part in meta.get(column.impl, {}).get("not_applicable", {})
            cells.append(cell(result, column.name, row, n_a))
        for ours, other, _ in ratios:
            cells.append(ratio_cell(result, ours, other, row))
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    if PINGPONG in result:
        lines.append(
            f"W1 true limit: {result[PINGPONG]['w1_limit_us']:.1f} µs per round trip "
            f"(two threads handing two _thread locks back and forth, no event loop)"
        )
    return "\n".join(lines)


def format_notes(meta: dict, skipped: dict, errors: list[str], one_process: list[str]) -> str:
    lines = [
        "W4: exact = io and compute reached their limits (2 and 4) in every batch and no "
        "group ran more than its limit; under = within the limits but not saturated; "
        "OVER = a limit was exceeded.",
        "ratio > 1 means pyactors is better: for times, other / pyactors; for rates, "
        "pyactors / other. 'vs floor[uv]' and 'vs ray' are pyactors[uvloop]'s; "
        "'aio vs floor[aio]' is pyactors[asyncio] against floor[asyncio].",
        "rct = asyncio.run_coroutine_threadsafe onto one uvloop thread. '-' = not run.",
    ]
    for impl, why in skipped.items():
        lines.append(f"{impl}: skipped, {why}")
    for impl, info in meta.items():
        for workload, why in info["not_applicable"].items():
            lines.append(f"{impl} {workload}: n/a, {why}")
        lines.extend(info["notes"].values())
        scaled = {k: v for k, v in info["sizes"].items() if v != DEFAULT_SIZES.__dict__[k]}
        if scaled:
            lines.append(
                f"{impl}: scaled down (others use the defaults in brackets): "
                + ", ".join(f"{k}={v:,} [{DEFAULT_SIZES.__dict__[k]:,}]" for k, v in scaled.items())
            )
    lines.extend(
        f"{impl}: one process per repeat ran every workload after a single start; "
        f"its W7 fresh figures are that process's own import..first result, RSS "
        f"summed over all of its processes at that point; its W8 teardown is the "
        f"shutdown after all of its workloads"
        for impl in one_process
    )
    lines += [f"error: {e}" for e in errors]
    return "\n".join(lines)


# Issue 14's wall targets, beside the ones above: awaiting bodies, W9, W10, and sequential
# awaits from a stock asyncio caller (W3 from asyncio), on both loop kinds.
ISSUE14_LATENCY = [
    *(f"{m}:{b}" for m in ("w1_us", "w3_seq_us") for b in AWAITING_BODIES),
    *(r.metric for r in ROWS if r.metric.startswith("w3_seq_from_asyncio_us")),
    "w9_sync_us",
    "w9_async_us",
    "w9_chain3_sync_us",
    "w9_chain3_async_us",
]
LABELS = {row.metric: row.label for row in ROWS}
ISSUE14_THROUGHPUT = [
    *(
        f"{m}:{b}"
        for m in ("w2_calls_per_s", "w3_gather_calls_per_s", "w6_calls_per_s")
        for b in AWAITING_BODIES
    ),
    "w10_calls_per_s",
]


def asyncio_targets(result: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 14's wall targets for pyactors[asyncio] against floor[asyncio]."""
    ours, floor = result.get(OURS_ASYNCIO, {}), result.get(FLOOR_ASYNCIO, {})
    out: list[tuple[str, str, bool | None]] = []
    for metric, need, lower in [(m, 1.0, True) for m in ISSUE14_LATENCY] + [
        (m, 1.5, False) for m in ISSUE14_THROUGHPUT
    ]:
        if metric.startswith("w3_seq_from_asyncio_us"):
            continue  # the same as w3_seq_us on asyncio actor loops
        a, b = ours.get(metric), floor.get(metric)
        if a is None or b is None:
            continue
        r = (b / a) if lower else (a / b)
        out.append(
            (
                f"{LABELS[metric]} {'<=' if lower else '>='} {need}x floor[asyncio]",
                f"{r:.2f}x",
                r >= need,
            )
        )
    return out


def targets(result: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for pyactors[uvloop]; met is None when not measured."""
    ours = result.get(OURS, {})
    out = []

    def versus(metric, other, label, need, lower):
        a, b = ours.get(metric), result.get(other, {}).get(metric)
        if a is None or b is None:
            out.append((label, "not measured", None))
            return
        r = (b / a) if lower else (a / b)
        text = f"{a:,.1f} vs {b:,.1f}: {r:.2f}x" if lower else f"{a:,.0f} vs {b:,.0f}/s: {r:.2f}x"
        out.append((label, text, r >= need))

    versus("w1_us", FLOOR, "W1 latency <= 1.0x floor[uvloop]", 1.0, True)
    versus("w3_seq_us", FLOOR, "W3 sequential latency <= 1.0x floor[uvloop]", 1.0, True)
    versus("w2_calls_per_s", FLOOR, "W2 throughput >= 2x floor[uvloop]", 2.0, False)
    versus("w3_gather_calls_per_s", FLOOR, "W3 gather throughput >= 2x floor[uvloop]", 2.0, False)
    versus("w4_calls_per_s", FLOOR, "W4 throughput >= 1.5x floor[uvloop]", 1.5, False)
    versus("w6_calls_per_s", FLOOR, "W6 throughput >= 1.5x floor[uvloop]", 1.5, False)
    if "w1_us" in ours and PINGPONG in result:
        limit = result[PINGPONG]["w1_limit_us"]
        out.append(
            (
                "W1 <= 1.25x the two-thread lock ping-pong",
                f"{ours['w1_us']:,.1f} vs {limit:,.1f}: {ours['w1_us'] / limit:.2f}x",
                ours["w1_us"] <= 1.25 * limit,
            )
        )
    for metric in filter(ours.__contains__, ISSUE14_LATENCY):
        versus(metric, FLOOR, f"{LABELS[metric]} <= 1.0x floor[uvloop]", 1.0, True)
    for metric in filter(ours.__contains__, ISSUE14_THROUGHPUT):
        versus(metric, FLOOR, f"{LABELS[metric]} >= 1.5x floor[uvloop]", 1.5, False)
    if "w10_within_limits" in ours:
        out.append(("W10 groups within their limits", "", ours["w10_within_limits"]))
    if "w4_max_in_flight" in ours:
        m = ours["w4_max_in_flight"]
        out.append(
            (
                f"W4 maxima exact (io={GROUP_LIMITS['io']}, "
                f"compute={GROUP_LIMITS['compute']}, default <= its calls)",
                f"{m['io']}/{m['compute']}/{m['default']} of "
                f"{ours.get('w4_default_calls', 0):.0f} default calls",
                ours["w4_exact"] and ours["w4_within_limits"],
            )
        )
    if "w5_overhead_ms" in ours:
        out.append(
            (
                "W5 overhead <= 10 ms",
                f"{ours['w5_overhead_ms']:.1f} ms",
                ours["w5_overhead_ms"] <= 10,
            )
        )
    for row in ROWS:
        if row.lower_is_better is None or row.metric.startswith(("w7_fresh", "w8", "W8")):
            continue
        r = ratio(result, OURS, RAY, row)
        if r is None:
            continue
        if row.metric == "w5_overhead_ms":
            # W5's wall is bounded below by its waves of sleeps: 50x Ray's calls/s is
            # impossible by construction; the overhead ratio is what can be compared.
            walls = [
                1e3 * result[c]["w5_ideal_s"] + result[c]["w5_overhead_ms"] for c in (OURS, RAY)
            ]
            out.append(
                (
                    "W5 >= 50x Ray's throughput (bounded by the sleeps)",
                    f"{walls[1] / walls[0]:.2f}x calls/s; overhead {r:,.0f}x smaller",
                    False,
                )
            )
            continue
        out.append((f"{row.label} >= 50x Ray", f"{r:,.0f}x", r >= 50))
    if "w7_fresh_s" in ours:
        out.append(
            (
                "W7 fresh process <= 0.15 s",
                f"{ours['w7_fresh_s']:.3f} s",
                ours["w7_fresh_s"] <= 0.15,
            )
        )
        out.append(
            (
                "W7 fresh process <= 35 MB RSS",
                f"{ours['w7_fresh_rss_mb']:.1f} MB",
                ours["w7_fresh_rss_mb"] <= 35,
            )
        )
    if "w8_idle_mb_per_actor" in ours:
        out.append(
            (
                "W8 <= 0.1 MB per idle actor whose groups were never used",
                f"{ours['w8_idle_mb_per_actor']:.3f} MB",
                ours["w8_idle_mb_per_actor"] <= 0.1,
            )
        )
        out.append(
            (
                "W8 idle groups cost no thread (never-called actors)",
                f"{ours['w8_idle_threads_per_actor']:.2f} threads/actor",
                ours["w8_idle_threads_per_actor"] == 0,
            )
        )
    return out


def format_targets(rows: list[tuple[str, str, bool | None]]) -> str:
    width = max((len(t) for t, _, _ in rows), default=0)
    marks = {True: "met", False: "NOT MET", None: "-"}
    return "\n".join(f"{marks[met]:>7}  {t.ljust(width)}  {measured}" for t, measured, met in rows)


def pyactors_build(package: Path | None = None) -> str:
    """Which pyactors the workers import (``package``, or the installed one): git HEAD (and
    whether src/ has changes) and a hash of the compiled core."""
    from importlib.util import find_spec

    if package is None:
        spec = find_spec("pyactors")
        if spec is None or not spec.submodule_search_locations:
            return "pyactors not importable"
        package = Path(next(iter(spec.submodule_search_locations)))
    return f"commit {git_state()}, core {core_digest(package)}"


def core_digest(package: Path) -> str:
    import hashlib

    cores = sorted(package.glob("_core*.so")) + sorted(package.glob("_core*.pyd"))
    return hashlib.sha256(cores[0].read_bytes()).hexdigest()[:12] if cores else "no core"


def git_state() -> str:
    git = (
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%h"],
            capture_output=True,
            text=True,
            check=False,  # not a git checkout: "?"
        ).stdout.strip()
        or "?"
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,  # not a git checkout: nothing to call uncommitted
    ).stdout.strip()
    return f"{git}{' + uncommitted src changes' if dirty else ''}"


def finite(value):
    """``value`` with every infinity (a teardown over its budget) as None: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="processes per implementation and workload (default 3)",
    )
    parser.add_argument(
        "--ray-repeats",
        type=int,
        default=2,
        help="at most this many repeats of one-process implementations (Ray; default 2)",
    )
    parser.add_argument("--pin", metavar="CPU", help="run every worker under taskset -c CPU")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results here")
    parser.add_argument(
        "--png",
        metavar="PATH",
        type=Path,
        help="also draw a bar chart here (needs matplotlib: the bench extra)",
    )
    parser.add_argument(
        "--only",
        metavar="W1,W2,...",
        default=",".join(WORKLOADS),
        help="workloads to run (W7 includes the fresh-process figures)",
    )
    parser.add_argument(
        "--bodies",
        metavar="NAME,...",
        default=",".join(BODIES),
        help=f"method bodies of W1-W3 and W6, among {', '.join(BODIES)} (default: all)",
    )
    parser.add_argument(
        "--impls",
        metavar="NAME,...",
        default=",".join(IMPLEMENTATIONS),
        help=f"implementations among {', '.join(IMPLEMENTATIONS)}",
    )
    add_worker_options(parser, "another interpreter for implementations this one lacks")
    parser.add_argument("--worker", choices=[*IMPLEMENTATIONS, PINGPONG], help=argparse.SUPPRESS)
    parser.add_argument("--loop", help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--describe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = chosen(parser, "--only", "workload", args.only.upper(), WORKLOADS)
    args.impls = chosen(parser, "--impls", "", args.impls, IMPLEMENTATIONS)
    args.bodies = chosen(parser, "--bodies", "body", args.bodies, BODIES)
    return args


def add_worker_options(parser: argparse.ArgumentParser, alt_python_help: str) -> None:
    """The options of both comparison scripts about the processes that measure."""
    parser.add_argument(
        "--alt-python",
        metavar="PATH",
        action="append",
        default=[p for p in os.environ.get("PYACTORS_BENCH_ALT_PYTHON", "").split(os.pathsep) if p],
        help=alt_python_help,
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="let workers import the installed pyactors as it is when each "
        "starts, instead of a copy taken at the start of the run",
    )


def chosen(
    parser: argparse.ArgumentParser, option: str, kind: str, value: str, choices
) -> list[str]:
    """The comma-separated names of `value`, each one of `choices` (else a usage error)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    for name in names:
        if name not in choices:
            parser.error(
                f"{option}: unknown {kind + ' ' if kind else ''}{name!r}; choose "
                f"among {', '.join(choices)}"
            )
    return names


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        run_worker(args)
        return
    parts = [p for p in PARTS if p in args.only or (p == FRESH and "W7" in args.only)]
    interpreters = choose_interpreters(args.impls, args.alt_python)
    skipped = {
        impl: "its package is not importable by this interpreter or any --alt-python"
        for impl, python in interpreters.items()
        if python is None
    }
    meta = {}
    for impl, python in interpreters.items():
        if python is None:
            continue
        info, _, error = run_json(
            [python, "-m", "benchmarks.compare", "--worker", impl, "--describe"], None
        )
        if info is None:
            skipped[impl] = f"its adapter failed to load: {error}"
        else:
            meta[impl] = info
    columns = [
        Column(impl, loop)
        for impl in args.impls
        if impl in meta
        for loop in IMPLEMENTATIONS[impl].loops
    ]
    if "W1" in parts:
        columns.append(Column(PINGPONG, None))
    one_process = [
        c.impl for c in columns if c.impl in IMPLEMENTATIONS and IMPLEMENTATIONS[c.impl].one_process
    ]
    rounds = plan(columns, parts, meta, args.repeats, min(args.ray_repeats, args.repeats))
    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pyactors-bench-") as tmp:
        snapshot = None if args.no_snapshot else snapshot_pyactors(Path(tmp))
        build_before = pyactors_build(snapshot / "pyactors" if snapshot else None)
        samples, errors = collect(rounds, interpreters, parts, args.pin, snapshot, args.bodies)
        # The git state may move on meanwhile (a commit); only the core the workers load counts.
        build_after = build_before if snapshot else pyactors_build()
    result = medians(samples)
    load_after = os.getloadavg()
    header = [
        f"{'pinned to CPU ' + args.pin if args.pin is not None else 'unpinned'}; "
        f"median of {args.repeats} repeats ({min(args.ray_repeats, args.repeats)} for "
        f"{', '.join(one_process) or 'one-process implementations'}); "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"{(time.time() - started) / 60:.1f} min",
        (f"pyactors: {build_before}" + (", copied at the start" if snapshot else ""))
        if build_before.split("core ")[-1] == build_after.split("core ")[-1]
        else f"WARNING: pyactors was rebuilt during the run ({build_before} -> {build_after}): "
        f"the figures mix builds",
    ]
    table = format_table(result, columns, meta, parts, args.bodies)
    notes = format_notes(meta, skipped, errors, one_process)
    target_rows = targets(result)
    print("\n".join(header))
    print(table)
    print(notes)
    print("\ntargets (pyactors[uvloop]):")
    print(format_targets(target_rows))
    asyncio_rows = asyncio_targets(result)
    if asyncio_rows:
        print("\ntargets (pyactors[asyncio]):")
        print(format_targets(asyncio_rows))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                finite(
                    {
                        "title": header[0],
                        "python": sys.version.split()[0],
                        "pyactors_build": [build_before, build_after],
                        "pin": args.pin,
                        "repeats": args.repeats,
                        "ray_repeats": min(args.ray_repeats, args.repeats),
                        "interpreters": interpreters,
                        "default_sizes": DEFAULT_SIZES.__dict__,
                        "implementations": meta,
                        "skipped": skipped,
                        "errors": errors,
                        "medians": result,
                        "targets": [
                            {"target": t, "measured": m, "met": met}
                            for t, m, met in target_rows + asyncio_rows
                        ],
                        "samples": samples,
                    }
                ),
                indent=2,
            )
            + "\n"
        )
    if args.png is not None:
        from benchmarks.chart import draw

        draw(
            result, [c.name for c in columns if c.impl != PINGPONG], ROWS, args.png, title=header[0]
        )


if __name__ == "__main__":
    main()
