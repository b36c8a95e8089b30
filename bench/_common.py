"""Shared helpers for memdiag's benchmarks: timing whole processes, sleeping process fleets,
describing the machine, printing tables.

Benchmarks measure what a user gets: memdiag as an installed command, with its bytecode cached
(an installed package has .pyc files). This sandbox sets PYTHONDONTWRITEBYTECODE, which would add
~80 ms of compiling to every run, so :func:`bench_env` re-enables bytecode into a private cache
(PYTHONPYCACHEPREFIX) instead of writing __pycache__ into the source tree.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed-case"

#: Never spawn more sleeping processes than this (a typo must not fork-bomb the host).
MAX_SLEEPERS = 20000


def memdiag_command(explicit: str | None = None) -> str:
    """The memdiag executable: ``--memdiag``, else the repository venv's, else the PATH's."""
    for candidate in (explicit, str(REPO / ".venv" / "bin" / "memdiag"), shutil.which("memdiag")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("bench: no memdiag command found; set up the venv or pass --memdiag PATH")


def interpreter_of(script: str) -> str:
    """The Python a console script runs with (from its #! line)."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and os.access(parts[0], os.X_OK):
            return parts[0]
    return sys.executable


def bench_env(cache_root: str | None = None, *, bytecode: bool = True) -> dict[str, str]:
    """Environment for measured children: private rule cache and bytecode cache, no colour."""
    root = cache_root or os.path.join(tempfile.gettempdir(), "memdiag-bench-cache")
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = os.path.join(root, "xdg")
    env["XDG_STATE_HOME"] = os.path.join(root, "state")
    env["NO_COLOR"] = "1"
    env.pop("MEMDIAG_CONFIG", None)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Sample:
    wall: float  # seconds
    maxrss: int  # KiB, the child's own peak resident set
    code: int
    cpu: float = 0.0  # seconds of user + system time: unlike wall time, not inflated by a busy host


#: The spawner: a small interpreter that starts each measured command and reports its rusage.
#: A child's peak RSS (ru_maxrss) counts the memory of the process it was forked from - Linux
#: keeps the larger of the pre-exec and post-exec figures - so children forked straight from a
#: bench that has grown (sleeper fleets, memdiag loaded in-process) reported that bench's size.
#: Forked from this ~8 MiB process instead, a child's figure is its own whenever it is larger.
_SPAWNER = r"""
import json, os, sys, threading, time
for line in sys.stdin:
    job = json.loads(line)
    null = os.open(os.devnull, os.O_RDWR)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            if job["cwd"]:
                os.chdir(job["cwd"])
            os.execve(job["argv"][0], job["argv"], job["env"])
        finally:
            os._exit(127)
    os.close(null)
    killer = threading.Timer(job["timeout"], os.kill, (pid, 9))  # a hung child is killed
    killer.start()
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    killer.cancel()
    print(json.dumps([wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime]),
          flush=True)
"""
_spawner: subprocess.Popen | None = None
_spawner_lock = threading.Lock()


def run_measured(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None,
                 timeout: float = 120.0) -> Sample:
    """Run ``argv`` to completion; wall time, CPU time and the child's own peak RSS, from the
    spawner's wait4 (see _SPAWNER)."""
    global _spawner
    import json

    with _spawner_lock:
        if _spawner is None or _spawner.poll() is not None:
            _spawner = subprocess.Popen([sys.executable, "-S", "-c", _SPAWNER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={})
        exe = argv[0] if os.sep in argv[0] else (shutil.which(argv[0]) or argv[0])
        job = {"argv": [exe, *argv[1:]], "env": dict(os.environ if env is None else env), "cwd": cwd,
               "timeout": timeout}
        _spawner.stdin.write(json.dumps(job) + "\n")
        _spawner.stdin.flush()
        wall, maxrss, code, cpu = json.loads(_spawner.stdout.readline())
    return Sample(wall, maxrss, code, cpu)


@dataclass
class Summary:
    label: str
    runs: int
    median_ms: float
    min_ms: float
    max_ms: float
    rss_mib: float  # median peak RSS
    rss_max_mib: float
    codes: set[int]
    cpu_ms: float = 0.0  # median


def summarize(label: str, samples: list[Sample]) -> Summary:
    walls = [s.wall * 1000 for s in samples]
    rss = [s.maxrss / 1024 for s in samples]
    return Summary(label, len(samples), statistics.median(walls), min(walls), max(walls),
                   statistics.median(rss), max(rss), {s.code for s in samples},
                   statistics.median(s.cpu * 1000 for s in samples))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_num(r[i]) for r in rows) if rows else False for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(widths[i]) if numeric[i] and n else c.ljust(widths[i])
                               for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(c: object) -> str:
    if isinstance(c, float):
        return f"{c:.1f}" if abs(c) >= 10 else f"{c:.2f}"
    return str(c)


def _is_num(c: object) -> bool:
    return isinstance(c, (int, float))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    virt = "?"
    if shutil.which("systemd-detect-virt"):
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip() or "none"
    distro = "?"
    try:
        distro = platform.freedesktop_os_release().get("PRETTY_NAME", "?")
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": f"{os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable",
        "memory": mem,
        "kernel": platform.release(),
        "os": distro,
        "virtualization": virt,
        "python": platform.python_version(),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other work on this host skews wall times)",
    }


def print_machine() -> None:
    for k, v in machine().items():
        print(f"{k:>15}: {v}")
    print()


class Sleepers:
    """``n`` sleeping processes (``/bin/sleep``) for the lifetime of a ``with`` block.

    Spawned with posix_spawn (cheap, no Python copy per child), killed and reaped on exit even
    when the block raises. Only the processes started here are signalled, by pid.
    """

    def __init__(self, n: int, seconds: int = 3600) -> None:
        if not 0 <= n <= MAX_SLEEPERS:
            raise ValueError(f"{n} sleepers: between 0 and {MAX_SLEEPERS}")
        soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and n > soft - 200 and os.geteuid() != 0:
            raise ValueError(f"{n} sleepers would exceed RLIMIT_NPROC ({soft})")
        self.n, self.seconds = n, seconds
        self.pids: list[int] = []

    def __enter__(self) -> "Sleepers":
        sleep = shutil.which("sleep") or "/bin/sleep"
        env = {"PATH": "/usr/bin:/bin"}
        try:
            for _ in range(self.n):
                self.pids.append(os.posix_spawn(sleep, ["sleep", str(self.seconds)], env))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids.clear()


def process_count() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())
