"""The same benchmark lines under variants of the environment, interleaved, in one run.

    bench/ab.py ROWS REPS NAME=SERVER_ENV|CLIENT_ENV ...

Each variant starts its own `flightline serve --in-memory` (binaries of the cargo profile
$PROFILE, release by default) with SERVER_ENV, and runs run.py's lines named in $LINES (default
1,2,3,3b,5,F1,F2,F3,8x1,8x4; `ceiling` is the server-ceiling query) with
CLIENT_ENV; an environment is `-` or `KEY~VALUE,KEY~VALUE`. Prints the median rows/s, wall s,
client CPU-s (c) and server CPU-s (s) of each line under each variant. For example, glibc's
malloc against a preloaded allocator:

    bench/ab.py 10000000 5 'glibc=-|-' 'jemalloc=LD_PRELOAD~/usr/lib/x86_64-linux-gnu/libjemalloc.so.2|LD_PRELOAD~/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'

A SERVER_ENV key SERVER_BIN names another `flightline` binary to serve with (a copy of the
one built before a change, say): `before=SERVER_BIN~/tmp/flightline-before|-`. The CLIENT_ENV
keys BENCH_BIN and PLUGIN do the same for the client side: another `flightline-bench` binary and
another `top_targets` library for line 5.

Within a rep the lines run in a fresh random order, so that no line always follows another. With
PAIR=A,B (two of the lines) it also prints, per variant, the median over reps of B's rows/s over
A's measured in the same rep, with a bootstrap 95% interval: a paired figure for two lines whose
single runs vary more than they differ (line 5 against 3b, say). Line `10` is the loopback TCP
copy; a pair with it compares bytes/s (PAIR=10,F2: the full scan's share of the loopback).

Results of the runs behind the current settings: bench/results/2026-12-03-ab.md.
"""

import argparse
import contextlib
import os
import random
import statistics
import sys
from pathlib import Path

import run as bench

DEFAULT_LINES = "1,2,3,3b,5,F1,F2,F3,8x1,8x4"


def environment(text: str) -> dict:
    return {} if text == "-" else dict(pair.split("~", 1) for pair in text.split(","))


def main(argv) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows, reps = int(argv[0]), int(argv[1])
    lines = os.environ.get("LINES", DEFAULT_LINES).split(",")
    variants = []
    for spec in argv[2:]:
        name, envs = spec.split("=", 1)
        server_env, client_env = envs.split("|")
        variants.append((name, environment(server_env), environment(client_env)))
    # The lines are run.py's own; `ceiling` is its server-ceiling query.
    b = bench.Bench(argparse.Namespace(profile=os.environ.get("PROFILE", "release")))
    table = bench.parquet_of(b.flightline, rows, bench.ROOT / "bench/data")
    results = {}
    with contextlib.ExitStack() as servers:
        # Every variant's server is up for the whole run, and each rep runs every variant in
        # turn, so that a drift of the machine spreads over all of them.
        started = []
        for name, server_env, client_env in variants:
            binary = Path(server_env.pop("SERVER_BIN", b.flightline))
            # A Bench of its own: its job files (lines 4a/4b) name this variant's server.
            client = bench.Bench(b.args)
            client.bench = Path(client_env.pop("BENCH_BIN", b.bench))
            client.plugin = Path(client_env.pop("PLUGIN", b.plugin))
            env = dict(os.environ, **server_env)
            server = servers.enter_context(bench.flightline_server(binary, table, env=env))
            lines_and_ceilings = {**client.main_lines(server), **client.ceiling_lines(server)}
            runs = {key: cmd for key, (_, cmd) in lines_and_ceilings.items()}
            started.append((name, server, runs, dict(os.environ, **client_env)))
        for _ in range(reps):
            for name, server, runs, env in started:
                for key in random.sample(lines, len(lines)):
                    measured = bench.measure(runs[key], server.pid, env=env)
                    results.setdefault((name, key), []).append(measured)
    print(f"{'line':8}" + "".join(f"{name:>34}" for name, _, _ in variants))
    for key in lines:
        cells = []
        for name, _, _ in variants:
            runs = results[(name, key)]
            seconds = statistics.median(r.out.get("seconds", r.wall) for r in runs)
            rate = runs[0].out.get("rows", 0) / seconds / 1e6
            cpu = statistics.median(r.cpu for r in runs)
            server = statistics.median(r.server_cpu for r in runs)
            cells.append(f"{rate:6.2f}M/s {seconds:6.3f}s c{cpu:5.3f} s{server:5.2f}")
        print(f"{key:8}" + "".join(f"{cell:>34}" for cell in cells))
    if "PAIR" in os.environ:
        first, second = os.environ["PAIR"].split(",")
        for name, _, _ in variants:
            print(f"{name}: {paired(results[(name, first)], results[(name, second)], first, second)}")
    return 0


def paired(first: list, second: list, a: str, b: str) -> str:
    """The median over reps of b's rows/s over a's in the same rep, with a bootstrap 95% interval;
    bytes/s when either is line 10 (the loopback copy, which moves no rows)."""
    seconds = lambda r: r.out.get("seconds", r.wall)
    if "10" in (a, b):
        unit, rate = "bytes", lambda r: r.out["bytes"] / seconds(r)
    else:  # the same rows (line 4 prints no count), so the inverse ratio of the times
        unit, rate = "rows", lambda r: 1 / seconds(r)
    ratios = [rate(y) / rate(x) for x, y in zip(first, second)]
    boot = sorted(statistics.median(random.choices(ratios, k=len(ratios))) for _ in range(2000))
    return (f"{b} / {a} {unit}/s, median of {len(ratios)} paired reps {statistics.median(ratios):.3f} "
            f"(95% interval {boot[49]:.3f} to {boot[1950]:.3f})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
