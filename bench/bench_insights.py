#!/usr/bin/env python3
"""memdiag against insights-core (and hotsos, where it installs) on the same sosreport.

    .venv/bin/python bench/bench_insights.py [--sosreport PATH] [--runs 10] [--keep DIR]

Input: a sosreport of this host (made with Debian's sosreport package, ``sos report --batch -o
memory,kernel,process,processor,host,hardware,system``, unless --sosreport names one), and a copy
of it turned into a ballooned VMware guest (the founding case's meminfo and free, vmtoolsd
running, vmw_balloon loaded, no balloon counters in vmstat) so that the rule has something to
find. Both tools must agree on each: same verdict, same unaccounted bytes.

insights-core runs bench/insights_balloon_rule.py, the same rule and arithmetic as memdiag's
vmware-balloon; hotsos has no such rule, so its row is its own kernel/memory analysis
(``hotsos --kernel``), for scale only. Each tool lives in its own venv under /tmp, created with
pip on first use.

Measured: whole commands as a user runs them (median wall, peak RSS over --runs runs after one
warm-up), and the analysis alone inside one process with everything loaded (memdiag: open +
diagnose; insights-core: insights.run of the rule). Target: memdiag's whole command >= 20x
faster than insights-run's, as a user runs them; the in-process ratio is shown for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _common import (SEED, bench_env, memdiag_command, print_machine, run_measured, summarize, table)

BENCH = Path(__file__).resolve().parent
SOS_PLUGINS = "memory,kernel,process,processor,host,hardware,system"
TARGET = 20.0

INSIGHTS_INPROCESS = r"""
import json, logging, sys, time
logging.disable(logging.CRITICAL)
from insights import load_default_plugins, run
load_default_plugins()
import insights_balloon_rule as rule
root, n = sys.argv[1], int(sys.argv[2])
run(rule.report, root=root)
times, cpu = [], []
for _ in range(n):
    t, c = time.perf_counter(), time.process_time()
    broker = run(rule.report, root=root)
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
res = broker.get(rule.report)
print(json.dumps({"times": times, "cpu": cpu, "type": res.get("type") if res else None,
                  "unaccounted": res.get("unaccounted_bytes") if res else None}))
"""


def venv_with(name: str, package: str, base: Path) -> Path | None:
    """A venv under ``base`` with ``package`` installed (pip, first use only); None if it fails."""
    venv = base / f"{name}-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ok = subprocess.run([str(py), "-m", "pip", "show", "-q", package], capture_output=True).returncode == 0
    if not ok:
        print(f"installing {package} into {venv} ...", file=sys.stderr)
        proc = subprocess.run([str(py), "-m", "pip", "install", "-q", package], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{package} did not install: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
    return venv


def make_sosreport(workdir: Path) -> Path:
    if shutil.which("sos") is None:
        sys.exit("bench: no 'sos' command (apt-get install sosreport) and no --sosreport given")
    print(f"making a sosreport ({SOS_PLUGINS}) ...", file=sys.stderr)
    subprocess.run(["sos", "report", "--batch", "--tmp-dir", str(workdir), "-o", SOS_PLUGINS, "--label", "bench"],
                   check=True, capture_output=True)
    return next(workdir.glob("sosreport-*.tar.xz"))


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="tar")
    return next(p for p in into.iterdir() if p.is_dir() and p.name.startswith("sosreport"))


def balloon_copy(sos: Path, dest: Path) -> Path:
    """The same sosreport, as a VMware guest whose balloon holds 5 GiB (the founding case)."""
    shutil.rmtree(dest, ignore_errors=True)  # a copy left in a --keep folder by an earlier run
    shutil.copytree(sos, dest, symlinks=True)
    meminfo = (SEED / "meminfo").read_text()
    (dest / "proc/meminfo").write_text(meminfo)
    vmstat = dest / "proc/vmstat"
    if vmstat.exists():  # the founding kernel (3.10) has no balloon counters
        keep = [l for l in vmstat.read_text().splitlines() if not l.startswith(("balloon_", "nr_balloon"))]
        vmstat.write_text("\n".join(keep) + "\n")
    (dest / "sos_commands/kernel").mkdir(parents=True, exist_ok=True)
    (dest / "sos_commands/kernel/lsmod").write_text(
        "Module                  Size  Used by\nvmw_balloon            24576  0\nvmw_vmci               86016  1 vmw_balloon\n")
    ps = dest / "sos_commands/process/ps_auxwww"
    if ps.exists():
        ps.write_text(ps.read_text().rstrip("\n") + "\n"
                      "root       687  0.0  0.0 305408  1548 ?        Ssl  Nov01  13:59 /usr/bin/vmtoolsd\n")
    m = {k.strip(): int(v.split()[0]) for k, v in (l.split(":", 1) for l in meminfo.splitlines() if ":" in l)}
    cache = m["Buffers"] + m["Cached"] + m["SReclaimable"]
    used = m["MemTotal"] - m["MemFree"] - cache
    for name, div in (("free", 1), ("free_-m", 1024)):
        path = dest / "sos_commands/memory" / name
        if path.parent.is_dir():
            path.write_text(
                "               total        used        free      shared  buff/cache   available\n"
                f"Mem:  {m['MemTotal'] // div:>14} {used // div:>11} {m['MemFree'] // div:>11} "
                f"{m['Shmem'] // div:>11} {cache // div:>11} {m['MemAvailable'] // div:>11}\n"
                f"Swap: {m['SwapTotal'] // div:>14} {(m['SwapTotal'] - m['SwapFree']) // div:>11} "
                f"{m['SwapFree'] // div:>11}\n")
    return dest


def memdiag_verdict(exe: str, path: Path, env: dict) -> tuple[str, int | None]:
    proc = subprocess.run([exe, "analyze", str(path), "--format", "json", "--no-sinks"], capture_output=True,
                          text=True, env=env)
    doc = json.loads(proc.stdout)
    hit = next((f for f in doc["findings"] if f["rule_id"] == "vmware-balloon"), None)
    verdict = f"FIRED ({hit['confidence']})" if hit else "passed"
    return verdict, doc["facts"].get("accounting.unaccounted_bytes")


def insights_verdict(venv: Path, path: Path, env: dict) -> tuple[str, int | None]:
    proc = subprocess.run([str(venv / "bin/insights-run"), "-p", "insights_balloon_rule", "-f", "json", str(path)],
                          capture_output=True, text=True, env=env)
    doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    for kind, label in (("reports", "FIRED"), ("pass", "passed")):
        for r in doc.get(kind, []):
            if r.get("component", "").endswith("insights_balloon_rule.report"):
                details = r.get("details", r)
                conf = f" ({details.get('confidence')})" if details.get("confidence") else ""
                return label + conf, details.get("unaccounted_bytes")
    return "no result", None


def memdiag_inprocess(path: Path, n: int) -> tuple[list[float], list[float]]:
    """Analysis alone: registry and rules loaded once, then open + diagnose, n times (wall, CPU)."""
    import time

    from memdiag import pipeline, registry
    from memdiag.bounded import Deadline

    reg = registry.load(autoload=False)
    rules = pipeline.load_rules(reg)
    times, cpu = [], []
    for i in range(n + 1):
        with tempfile.TemporaryDirectory() as wd:
            t, c = time.perf_counter(), time.process_time()
            ev = pipeline.open_input(str(path), reg, wd)
            pipeline.diagnose(ev, registry=reg, rules=rules, deadline=Deadline(60))
            if i:
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
    return times, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sosreport", help="a sosreport archive or folder (default: make one of this host)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--memdiag", help="memdiag executable (default: the repository venv's)")
    ap.add_argument("--venvs", default=os.path.join(tempfile.gettempdir(), "memdiag-bench-peers"),
                    help="where the insights-core and hotsos venvs live")
    ap.add_argument("--no-hotsos", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="keep the sosreports here")
    args = ap.parse_args()

    exe = memdiag_command(args.memdiag)
    base = Path(args.venvs)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="memdiag-bench-sos-"))
    work.mkdir(parents=True, exist_ok=True)
    insights = venv_with("insights", "insights-core", base)
    hotsos = None if args.no_hotsos else venv_with("hotsos", "hotsos", base)
    if insights is None:
        sys.exit("bench: insights-core could not be installed")

    src = Path(args.sosreport) if args.sosreport else make_sosreport(work)
    sos = unpack(src, work / "plain") if src.is_file() else src
    ballooned = balloon_copy(sos, work / "ballooned" / sos.name)
    inputs = [("this host", sos), ("ballooned", ballooned)]

    menv = bench_env(str(work / "cache"))
    ienv = {**os.environ, "PYTHONPATH": str(BENCH)}
    print_machine()
    versions = subprocess.run([str(insights / "bin/python"), "-c",
                               "import importlib.metadata as m; print(m.version('insights-core'))"],
                              capture_output=True, text=True).stdout.strip()
    print(f"sosreport: {src}; insights-core {versions}; {args.runs} runs per row (after one warm-up)\n")

    rows, ratios = [], []
    for label, path in inputs:
        mv, mbytes = memdiag_verdict(exe, path, menv)
        iv, ibytes = insights_verdict(insights, path, ienv)
        agree = "agree" if mv.split()[0] == iv.split()[0] and mbytes == ibytes else "DISAGREE"
        commands = [("memdiag analyze", [exe, "analyze", str(path), "--no-sinks"], menv, mv),
                    ("insights-run -p insights_balloon_rule",
                     [str(insights / "bin/insights-run"), "-p", "insights_balloon_rule", str(path)], ienv, iv)]
        if hotsos is not None:
            commands.append(("hotsos --kernel (no balloon rule)", [str(hotsos / "bin/hotsos"), "--kernel", str(path)],
                             dict(os.environ), "-"))
        medians = {}
        for name, argv, env, verdict in commands:
            run_measured(argv, env)
            s = summarize(name, [run_measured(argv, env) for _ in range(args.runs)])
            medians[name] = s.median_ms
            rows.append((label, name, "whole command", s.median_ms, s.cpu_ms, s.rss_mib, verdict))
        ratios.append((label, "whole command (wall)",
                       medians["insights-run -p insights_balloon_rule"] / medians["memdiag analyze"], True))
        mw, mc = (statistics.median(x) * 1000 for x in memdiag_inprocess(path, args.runs))
        out = subprocess.run([str(insights / "bin/python"), "-c", INSIGHTS_INPROCESS, str(path), str(args.runs)],
                             capture_output=True, text=True, env=ienv)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        iw, ic = statistics.median(got["times"]) * 1000, statistics.median(got["cpu"]) * 1000
        rows.append((label, "memdiag (every rule and source)", "analysis in-process", mw, mc, "", mv))
        rows.append((label, "insights-core (this one rule)", "analysis in-process", iw, ic, "", iv))
        ratios.append((label, "analysis in-process (CPU)", ic / mc, False))
        print(f"{label}: memdiag {mv}, unaccounted {mbytes}; insights-core {iv}, unaccounted {ibytes}: {agree}",
              file=sys.stderr)
    print(table(("input", "tool", "measured", "median ms", "CPU ms", "RSS MiB", "balloon rule"), rows))
    print()
    for label, what, r, target in ratios:
        verdict = (f"target {TARGET:.0f}x: {'met' if r >= TARGET else 'MISSED'}" if target else
                   "for scale, no target: memdiag runs every source and rule, insights-core one rule")
        print(f"{label}, {what}: insights-core takes {r:.1f}x memdiag's time ({verdict})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
