"""Helpers for the stress tests: fake hosts laid out like /proc, reads that hang, hang guards."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parent.parent.parent
SEED = REPO.parent / "shared" / "seed-case"

#: The founding case's meminfo: 5 GiB that no meminfo field accounts for.
SEED_MEMINFO = (SEED / "meminfo").read_text() if (SEED / "meminfo").is_file() else ""

STATUS = """Name:\t{name}
Umask:\t0022
State:\tS (sleeping)
Tgid:\t{pid}
Pid:\t{pid}
PPid:\t1
Uid:\t0\t0\t0\t0
VmPeak:\t  {peak} kB
VmSize:\t  {peak} kB
VmHWM:\t  {rss} kB
VmRSS:\t  {rss} kB
RssAnon:\t  {anon} kB
RssFile:\t  {file} kB
RssShmem:\t  0 kB
VmData:\t  {anon} kB
VmSwap:\t  {swap} kB
Threads:\t1
voluntary_ctxt_switches:\t10
"""


def status_text(pid: int, name: str, rss_kb: int, swap_kb: int = 0) -> str:
    anon = rss_kb * 3 // 4
    return STATUS.format(pid=pid, name=name, rss=rss_kb, anon=anon, file=rss_kb - anon, swap=swap_kb,
                         peak=rss_kb * 2)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


#: A VMware guest like the founding case, as a host root: seed meminfo, a loaded balloon module
#: (so the balloon finding is "likely", one step above the lowest confidence), and processes.
PROCESSES = {1: ("systemd", 4000), 687: ("vmtoolsd", 1548), 3725: ("java", 1818000), 1087: ("mysqld", 233064)}


def vmware_guest(root: Path, processes: dict[int, tuple[str, int]] | None = None) -> Path:
    files: dict[str, str | bytes] = {
        "proc/meminfo": SEED_MEMINFO,
        "proc/modules": "vmw_balloon 24576 0 - Live 0xffffffffc0a1b000\n"
                        "vmw_vmci 86016 2 vmw_balloon, Live 0xffffffffc0a00000\n",
        "proc/sys/kernel/osrelease": "3.10.0-1160.el7.x86_64\n",
        "proc/sys/kernel/hostname": "guest\n",
    }
    for pid, (name, rss) in (PROCESSES if processes is None else processes).items():
        files[f"proc/{pid}/status"] = status_text(pid, name, rss)
    return write_tree(root, files)


class BlockingOpens:
    """Make ``os.open`` of chosen FIFOs block, as a read of a /proc file stuck in the kernel does.

    memdiag opens evidence with O_NONBLOCK, which a FIFO honours; the kernel's /proc and FUSE
    files that hang do not. Stripping the flag for these paths makes open() sleep until a writer
    appears, and Python cannot interrupt a thread sleeping there: the real situation.
    :meth:`release` lets the stuck threads go (call it in teardown).
    """

    def __init__(self, monkeypatch, paths: Iterable[str | Path]) -> None:
        self.paths = {os.fspath(p) for p in paths}
        for p in self.paths:
            os.mkfifo(p)
        real_open = os.open
        self._real_open = real_open

        def opener(path, flags, *args, **kwargs):
            if os.fspath(path) in self.paths:
                flags &= ~os.O_NONBLOCK
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", opener)

    def release(self) -> None:
        for p in self.paths:
            try:  # succeeds only while a reader waits in open(): wakes it with end-of-file
                os.close(self._real_open(p, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def must_return(fn: Callable[[], Any], *, guard: float = 120.0) -> Any:
    """Run ``fn`` and return its result; fail (instead of hanging the suite) if it never returns.

    Not a timing assertion: ``guard`` is far above any plausible run and only catches a hang.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(guard)
    assert not t.is_alive(), f"did not return at all (hung for {guard:.0f} s)"
    if "error" in box:
        raise box["error"]
    return box["value"]
