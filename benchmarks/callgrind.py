"""Callgrind driver: N calls of W1, W2 or W3, after the same setup whatever N is.

    valgrind --tool=callgrind --callgrind-out-file=/tmp/w1.N.out \\
        python -m benchmarks.callgrind N [--workload W1|W2|W3|W3gather]
                                         [--impl pyactors|floor|rct] [--loop uvloop|asyncio]

Instructions per call = (Ir with N=2000 - Ir with N=0) / 2000: the N=0 run pays for the
interpreter, the imports, the actor's start and shutdown, so the difference is the calls alone.
W1 makes N round trips; W2 submits N calls, then gets them all; W3 awaits N calls one after
the other in a caller's event loop, W3gather gathers N calls there.
"""

import argparse

from benchmarks.workloads import LOOP_KINDS, load_adapter

WORKLOADS = {
    "W1": "roundtrips",
    "W2": "pipelined",
    "W3": "async_roundtrips",
    "W3gather": "async_gather",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind")
    parser.add_argument("calls", type=int)
    parser.add_argument("--workload", choices=WORKLOADS, default="W1")
    parser.add_argument("--impl", choices=("pyactors", "floor", "rct"), default="pyactors")
    parser.add_argument("--loop", choices=LOOP_KINDS, default=LOOP_KINDS[0])
    args = parser.parse_args()
    impl = load_adapter(args.impl)
    run = getattr(impl, WORKLOADS[args.workload])
    with impl.session(args.loop) as session:
        actor = impl.noop_actor(session)
        if args.workload.startswith("W3"):
            loop = impl.new_caller_loop(session)
            loop.run_until_complete(run(actor, 1))  # the caller loop's own first-use costs
            loop.run_until_complete(run(actor, args.calls))
            loop.close()
        else:
            run(actor, args.calls)


if __name__ == "__main__":
    main()
