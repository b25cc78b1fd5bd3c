"""`python -m bench [SUITE ...] [--runs N] [--quick]`: run the benchmarks, print and save them.

Runs against the local PostgreSQL and RabbitMQ (after `scripts/setup`), each run in a
schema and virtual host of its own that it drops afterwards. Results go to
`bench/results/results.json` and `bench/results/results.png` (`--quick` writes to
`var/bench/` instead, so a smoke run never overwrites the recorded figures).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from pathlib import Path

from bench.core import Scale, Suite, Summary, run_suite
from bench.report import RESULTS, print_table, save

# In the order they run: the cheap ones first, the million-event store last.
SUITES = (
    "throughput",
    "latency",
    "mass_invite",
    "fairness",
    "expiry",
    "deadlines",
    "scale",
    "read_side",
)


def load(name: str) -> Suite:
    module = importlib.import_module(f"bench.{name}")
    suite: Suite = module.SUITE
    return suite


async def main(names: list[str], runs: int, quick: bool) -> int:
    scale = Scale(quick=quick)
    results: list[tuple[str, list[Summary]]] = []
    for name in names:
        suite = load(name)
        print(f"running {name} ({runs} run(s){', quick' if quick else ''})", flush=True)
        results.append((name, await run_suite(suite, scale, runs)))
    print_table(results, runs)
    path = save(results, runs, quick, Path("var/bench") if quick else RESULTS)
    print(f"saved {path} and its chart")
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"default: all of {SUITES}")
    parser.add_argument("--runs", type=int, default=3, help="runs per suite (median of them)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it works")
    args = parser.parse_args(argv)
    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(main(args.suites or list(SUITES), args.runs, args.quick))


if __name__ == "__main__":
    raise SystemExit(cli())
