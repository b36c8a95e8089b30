#!/usr/bin/env python3
"""Time ``memdiag run`` (this host) and ``memdiag analyze SEED`` as whole processes.

    .venv/bin/python bench/bench_run.py [--runs 10] [--memdiag PATH] [--imports 15] [--phases 10]

Each command runs once untimed first (it fills the bytecode and rule caches, as any second run
on a host would find them), then ``--runs`` times; the table gives median/min/max wall time and
the median and largest peak RSS (the child's ru_maxrss from wait4). The cold first run is shown
on its own line. Then where a live run's time goes, phase by phase (``--phases`` runs, in a
child of the same interpreter, CPU time of the main thread except for the diagnosis, whose
sources run in a worker thread: wall time there), ``python -X importtime`` for the costliest
imports, and the modules a plain ``memdiag run`` must not import (yaml, jsonschema, ... once
rules are cached) are checked.

Targets (issue 2): a live run under 150 ms wall and 40 MB peak RSS on a 2-core machine.
Exit status: 0 when the targets and the import check hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile

from _common import (SEED, bench_env, interpreter_of, memdiag_command, print_machine, process_count,
                     run_measured, summarize, table)

TARGET_MS = 150.0
TARGET_MIB = 40.0
#: Must not be imported by a plain diagnosis once the rule packs are cached (pluggy: unless a
#: third-party plugin is installed; _hashlib: OpenSSL, ~3 ms; typing ~3 ms, dataclasses with
#: inspect ~5 ms, textwrap ~0.7 ms, tempfile with shutil ~3 ms, argparse with gettext and locale
#: ~4 ms: none is needed to diagnose).
FORBIDDEN = ("yaml", "jsonschema", "importlib.metadata", "http", "ssl", "sqlite3", "email",
             "urllib.request", "socket", "asyncio", "pkg_resources", "pluggy", "_hashlib", "typing",
             "dataclasses", "inspect", "textwrap", "tempfile", "shutil", "argparse", "gettext", "locale")
#: ... and, on a live run, none of the standard library the interpreter does not load itself (re
#: with enum ~3 ms, threading ~1 ms, ...); loose command outputs (the seed case) need re.
FORBIDDEN_LIVE = FORBIDDEN + ("re", "enum", "threading", "functools", "collections", "heapq", "importlib",
                              "warnings")
#: What the installed launcher (bin/memdiag) runs.
CONSOLE_SCRIPT = "import sys; from memdiag.cli import console; sys.argv[0] = 'memdiag'; sys.exit(console())"


def importtime(python: str, args: list[str], env: dict[str, str],
               code: str = CONSOLE_SCRIPT) -> tuple[list[tuple[int, int, str]], set[str]]:
    """(self µs, cumulative µs, module) for every import of ``memdiag ARGS``, and the module set."""
    # As the installed `memdiag` script starts (python -m would add runpy and importlib.util).
    proc = subprocess.run([python, "-X", "importtime", "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=tempfile.gettempdir())
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cum_us, name = (p.strip() for p in line.replace("import time:", "|").split("|"))
        rows.append((int(self_us), int(cum_us), name))
    return rows, {name.strip() for _, _, name in rows}


#: A live run step by step, as memdiag.cli.main does it; prints one JSON line of milliseconds.
PHASES = r"""
import gc, json, sys, time
clock = time.thread_time
gc.disable()  # as cli.console does until the command starts
t0 = clock()
from memdiag import cli, pipeline
t1 = clock()
command, args, _ = cli.read_plain(["run", "--no-sinks"])
reg = cli.load_registry(args)
t2 = clock()
gc.freeze(); gc.enable()
rules = cli.rules_for(args, reg)
t4 = clock()
w = time.perf_counter()
diag = pipeline.diagnose_live(reg, rules)
w = time.perf_counter() - w
t5 = clock()
cli.render_document(diag.document, args, reg)
t6 = clock()
print(json.dumps({"import memdiag.cli, memdiag.pipeline": t1 - t0, "read the command line, load plugins": t2 - t1,
                  "load rules": t4 - t2, "diagnose: sources (worker thread, wall), engine, document": w,
                  "render": t6 - t5}))
"""


def phases(python: str, env: dict[str, str], runs: int) -> list[tuple[str, float]]:
    """Median ms of each phase of a live run, plus the bare interpreter's start-up and exit."""
    import json
    import statistics

    samples: list[dict[str, float]] = []
    bare = [run_measured([python, "-c", "pass"], env).cpu * 1000 for _ in range(runs)]
    for _ in range(runs + 1):
        proc = subprocess.run([python, "-c", PHASES], capture_output=True, text=True, env=env,
                              cwd=tempfile.gettempdir())
        if proc.returncode != 0 or not proc.stdout.strip():
            return [("phases unavailable: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:80], 0.0)]
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    samples = samples[1:]  # the first filled the caches
    rows = [("interpreter start and exit (python -c pass, CPU)", statistics.median(bare))]
    rows += [(name, statistics.median(s[name] for s in samples) * 1000) for name in samples[0]]
    return rows


def forbidden_in(modules: set[str], forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--memdiag", help="memdiag executable (default: the repository venv's)")
    ap.add_argument("--seed", default=str(SEED), help="captured folder for the analyze row")
    ap.add_argument("--imports", type=int, default=15, metavar="N", help="show the N costliest imports")
    ap.add_argument("--phases", type=int, default=10, metavar="N", help="runs for the phase breakdown (0: none)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="measure without cached bytecode (every module compiled on every run)")
    args = ap.parse_args()

    exe = memdiag_command(args.memdiag)
    cache = tempfile.mkdtemp(prefix="memdiag-bench-")
    env = bench_env(cache, bytecode=not args.no_bytecode)
    print_machine()
    print(f"memdiag: {exe}; {process_count()} processes on this host; {args.runs} runs each; "
          f"bytecode {'not ' if args.no_bytecode else ''}cached\n")

    commands = [("memdiag run (live)", [exe, "run", "--no-sinks"]),
                ("memdiag analyze seed-case", [exe, "analyze", args.seed, "--no-sinks"])]
    rows, ok = [], True
    try:
        for label, argv in commands:
            cold = run_measured(argv, env)
            samples = [run_measured(argv, env) for _ in range(args.runs)]
            s = summarize(label, samples)
            rows.append((label + " [cold, 1st]", 1, cold.wall * 1000, cold.wall * 1000, cold.wall * 1000,
                         cold.cpu * 1000, cold.maxrss / 1024, cold.maxrss / 1024, str(cold.code)))
            rows.append((label, s.runs, s.median_ms, s.min_ms, s.max_ms, s.cpu_ms, s.rss_mib, s.rss_max_mib,
                         ",".join(map(str, sorted(s.codes)))))
            if label.startswith("memdiag run"):
                live = s
        print(table(("command", "runs", "median ms", "min ms", "max ms", "CPU ms", "RSS MiB", "max RSS MiB", "exit"),
                    rows))
        met_time, met_rss = live.median_ms < TARGET_MS, live.rss_mib < TARGET_MIB
        print(f"\ntarget live run < {TARGET_MS:.0f} ms: {'met' if met_time else 'MISSED'} "
              f"({live.median_ms:.1f} ms); < {TARGET_MIB:.0f} MB peak RSS: {'met' if met_rss else 'MISSED'} "
              f"({live.rss_mib:.1f} MiB)")
        ok = met_time and met_rss

        python = interpreter_of(exe)
        if args.phases:
            rows = phases(python, env, args.phases)
            print(f"\nwhere a live run goes (median of {args.phases}; ms):")
            print(table(("phase", "ms"), rows))
        imports, modules = importtime(python, ["run", "--no-sinks"], env)
        imports, modules = importtime(python, ["run", "--no-sinks"], env)  # second: bytecode cached
        total = sum(s for s, _, _ in imports) / 1000
        print(f"\nimports of a plain 'memdiag run': {len(imports)} modules, {total:.1f} ms in all")
        top = sorted(imports, reverse=True)[: args.imports]
        print(table(("module", "self ms", "incl. ms"), [(n, s / 1000, c / 1000) for s, c, n in top]))
        # what the interpreter's own start-up imports (site, an editable install's finder) is not memdiag's
        _, at_start = importtime(python, [], env, code="pass")
        bad = forbidden_in(modules - at_start, FORBIDDEN_LIVE)
        print(f"\nmust not be imported on a plain run ({', '.join(FORBIDDEN_LIVE)}): "
              + ("none imported - ok" if not bad else "IMPORTED: " + ", ".join(bad)))
        ok = ok and not bad
        for label, more in (("memdiag run (sinks on, none configured)", ["run"]),
                            ("memdiag analyze seed-case (a folder)", ["analyze", args.seed, "--no-sinks"])):
            more_imports, more_modules = importtime(python, more, env)
            more_bad = forbidden_in(more_modules - at_start, FORBIDDEN_LIVE if more == ["run"] else FORBIDDEN)
            print(f"{label}: {len(more_imports)} modules, {sum(s for s, _, _ in more_imports) / 1000:.1f} ms; "
                  + ("none of them imported - ok" if not more_bad else "IMPORTED: " + ", ".join(more_bad)))
            ok = ok and not more_bad
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
