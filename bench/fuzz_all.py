#!/usr/bin/env python3
"""Fuzz every parser, every source, the rule loader, the report pipeline and the archive reader
(memdiag.tarheaders against tarfile: target archive.index) with 100,000+ inputs.

    .venv/bin/python bench/fuzz_all.py [--n 100000] [--seed 1] [--live] [--only NAME]

Inputs are real samples damaged the ways captured evidence is damaged (see bench/fuzzkit.py).
An input passes when its target returns or refuses it with the exception its contract names
(ParseError, Unreadable, UnitError); anything else is an unhandled exception. Prints a table of
counts per target and, for each distinct unhandled exception, the first traceback with the seed
that reproduces its input. Exit status 1 when anything was unhandled.

The expression language has its own fuzzer, bench/fuzz_expr.py.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import fuzzkit
from _common import print_machine, table

#: One input taking longer than this (seconds) is reported: parsers have no reason to be slow.
SLOW = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="total inputs across all targets")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--live", action="store_true", help="also grow inputs from this host's /proc and commands")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="fuzz only targets containing NAME")
    ap.add_argument("--show", type=int, default=3, metavar="N", help="tracebacks to print per target")
    args = ap.parse_args()

    from memdiag import pipeline, registry
    from memdiag.sources import build_catalog

    reg = registry.load(autoload=False)
    rules = pipeline.load_rules(reg, use_cache=False)
    fuzzkit.set_catalog(build_catalog(reg.sources))
    corpus = fuzzkit.load_corpus(live=args.live)
    chosen = [t for t in fuzzkit.targets(reg, rules) if not args.only or any(o in t.name for o in args.only)]
    if not chosen:
        sys.exit(f"no target matches {args.only}")
    weights = sum(t.weight for t in chosen)
    plan = [(t, max(1, math.ceil(args.n * t.weight / weights))) for t in chosen]  # at least --n in all
    print_machine()
    print(f"{sum(n for _, n in plan):,} inputs over {len(chosen)} targets; seed {args.seed}; "
          f"{len(corpus)} samples{' (with this host)' if args.live else ''}\n")

    rows, crashed, started = [], 0, time.perf_counter()
    slow: list[tuple[str, float, str]] = []
    report: list[tuple[str, dict[str, str]]] = []
    for target, n in plan:
        stats = fuzzkit.Stats()
        t0 = time.perf_counter()
        for i in range(n):
            fuzzkit.attempt(target, f"{args.seed}:{target.name}:{i}", corpus, stats)
        spent = time.perf_counter() - t0
        rows.append((target.name, n, stats.ok, stats.refused, stats.crashed, stats.slowest * 1000,
                     n / spent if spent else 0.0))
        if stats.slowest > SLOW:
            slow.append((target.name, stats.slowest, stats.slowest_seed))
        crashed += stats.crashed
        if stats.first_crash:
            report.append((target.name, stats.first_crash))
        print(f"  {target.name}: {n} inputs, {stats.crashed} unhandled", file=sys.stderr)
    total = sum(r[1] for r in rows)
    rows.append(("TOTAL", total, sum(r[2] for r in rows), sum(r[3] for r in rows), crashed,
                 max(r[5] for r in rows), total / (time.perf_counter() - started)))
    print(table(("target", "inputs", "ok", "refused", "unhandled", "slowest ms", "inputs/s"), rows))
    for name, crashes in report:
        print(f"\n== {name}: {len(crashes)} distinct unhandled exception(s)")
        for key, tb in list(crashes.items())[: args.show]:
            print(f"-- {key}\n{tb}")
    for name, spent, seed in slow:
        print(f"\nSLOW: {name} took {spent:.1f} s on input seed {seed!r} (nothing here should take {SLOW:.0f} s)")
    print(f"\n{'no unhandled exceptions' if not crashed else f'{crashed} UNHANDLED EXCEPTIONS'} "
          f"in {total:,} inputs ({time.perf_counter() - started:.0f} s)")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
