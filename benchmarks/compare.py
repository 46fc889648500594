"""pyactors against the floor (benchmarks/floor.py), each implementation in its own process.

    python -m benchmarks.compare [--repeats 5] [--pin CPU] [--json PATH]

W1: sync round trip, µs per call. W2: 10,000 pipelined calls, calls/s. Also measures
the true limit of W1: two threads handing two locks back and forth, with no event loop at all.
Every figure is the median over the repeats; each repeat of each implementation is a fresh
process, so no implementation inherits another's threads, caches or heap.
"""

from __future__ import annotations

import _thread
import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.workloads import IMPLEMENTATIONS, LOOP_KINDS, PIPELINE_CALLS

REPO_ROOT = Path(__file__).resolve().parent.parent
ROUNDTRIPS = 5_000
WARMUP_ROUNDTRIPS = 500
PIPELINE_BATCHES = 5
PINGPONG_ROUNDTRIPS = 20_000
PINGPONG = "lock-pingpong"
COLUMNS = [(impl, loop) for loop in LOOP_KINDS for impl in IMPLEMENTATIONS]
WORKERS = [*COLUMNS, (PINGPONG, None)]  # the ping-pong has no event loop


# -- worker side: runs in the measured process ---------------------------------------------

def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure_implementation(impl_name: str, loop_kind: str) -> dict:
    impl = IMPLEMENTATIONS[impl_name]
    with impl.start(loop_kind) as target:
        impl.roundtrips(target, WARMUP_ROUNDTRIPS)
        impl.pipelined(target, PIPELINE_CALLS)
        w1_seconds = timed(impl.roundtrips, target, ROUNDTRIPS)
        # One W2 batch spans only a few GIL switch intervals (5 ms), so a single batch is
        # noisy: take the median of several.
        w2_seconds = statistics.median(timed(impl.pipelined, target, PIPELINE_CALLS)
                                       for _ in range(PIPELINE_BATCHES))
    return {"w1_us": w1_seconds / ROUNDTRIPS * 1e6, "w2_calls_per_s": PIPELINE_CALLS / w2_seconds}


def measure_lock_pingpong(roundtrips: int = PINGPONG_ROUNDTRIPS) -> dict:
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
    return {"w1_us": elapsed / roundtrips * 1e6}


def run_worker(worker: str, loop_kind: str | None) -> None:
    if worker == PINGPONG:
        result = measure_lock_pingpong()
    else:
        result = measure_implementation(worker, loop_kind)
    print(json.dumps(result))


# -- driver side ------------------------------------------------------------------------------

def spawn_worker(worker: str, loop_kind: str | None, pin: str | None) -> dict:
    command = [sys.executable, "-m", "benchmarks.compare", "--worker", worker]
    if loop_kind is not None:
        command += ["--loop", loop_kind]
    if pin is not None:
        command = ["taskset", "-c", pin, *command]
    out = subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def collect_samples(repeats: int, pin: str | None) -> dict[str, list[dict]]:
    # Repeats go round-robin over the implementations, so a slow spell of the VM spreads over
    # all of them instead of skewing one.
    samples: dict[str, list[dict]] = {column_name(*w): [] for w in WORKERS}
    for _ in range(repeats):
        for worker in WORKERS:
            samples[column_name(*worker)].append(spawn_worker(*worker, pin))
    return samples


def column_name(worker: str, loop_kind: str | None) -> str:
    return worker if loop_kind is None else f"{worker}[{loop_kind}]"


def medians(samples: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    return {name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            for name, runs in samples.items()}


def format_table(result: dict[str, dict[str, float]], pin: str | None) -> str:
    header = ["workload"]
    w1 = ["W1 sync round trip (µs/call)"]
    w2 = [f"W2 pipelined {PIPELINE_CALLS:,} (calls/s)"]
    for loop in LOOP_KINDS:
        ours, floor = result[f"pyactors[{loop}]"], result[f"floor[{loop}]"]
        header += [f"pyactors[{loop}]", f"floor[{loop}]", "ratio"]
        w1 += [f"{ours['w1_us']:.1f}", f"{floor['w1_us']:.1f}",
               f"{floor['w1_us'] / ours['w1_us']:.2f}"]
        w2 += [f"{ours['w2_calls_per_s']:,.0f}", f"{floor['w2_calls_per_s']:,.0f}",
               f"{ours['w2_calls_per_s'] / floor['w2_calls_per_s']:.2f}"]
    limit = ["W1 true limit (µs/round trip)", f"{result[PINGPONG]['w1_us']:.1f}",
             "two threads handing two _thread locks back and forth, no event loop"]
    widths = [max(len(row[i]) for row in (header, w1, w2)) for i in range(len(header))]
    lines = [
        f"pinned to CPU {pin}" if pin is not None else "unpinned",
        "ratio > 1 means pyactors is better: W1 floor µs / pyactors µs, "
        "W2 pyactors calls/s / floor calls/s",
    ]
    for row in (header, w1, w2, limit):
        lines.append("  ".join(cell.rjust(w) if i else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="processes per implementation")
    parser.add_argument("--pin", metavar="CPU", help="run every worker under taskset -c CPU")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results here")
    parser.add_argument("--worker", choices=[*IMPLEMENTATIONS, PINGPONG], help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOP_KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker in IMPLEMENTATIONS and args.loop is None:
        parser.error(f"--worker {args.worker} needs --loop")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        run_worker(args.worker, args.loop)
        return
    samples = collect_samples(args.repeats, args.pin)
    result = medians(samples)
    print(format_table(result, args.pin))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "python": sys.version.split()[0],
            "pin": args.pin,
            "repeats": args.repeats,
            "roundtrips_per_w1_sample": ROUNDTRIPS,
            "calls_per_w2_batch": PIPELINE_CALLS,
            "w2_batches_per_sample": PIPELINE_BATCHES,
            "medians": result,
            "samples": samples,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
