"""Small reading helpers shared by the knowledge-base fact sources.

They wrap :class:`memdiag.evidence.Evidence` so that a source can say "read this, or tell me why
not" in one call: an absent file is ``None`` (the fact stays unknown, nothing to report), an
unreadable one is ``None`` plus a problem recorded on the fact set, never an exception.
"""

from __future__ import annotations

import os
import time

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Iterator

#: The base page size of every architecture memdiag meets in practice (x86, most arm64 distros).
#: /proc counters in pages are converted with it; the facts that use it say so.
PAGE = 4096

ROOT_ONLY = "permission denied (root only)"


class Largest:
    """The ``n`` largest of the items added (tuples that never compare equal), without heapq
    (a shared library to load: ~0.3 ms of start-up). Items gather until twice ``n`` wait, then
    are cut back to the ``n`` largest; from then on ``floor``, the smallest kept, turns away
    what could never rank, so a long scan mostly costs one comparison an item."""

    __slots__ = ("n", "items", "floor")

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list = []
        self.floor = None  # the n-th largest at the last cut; None until the first

    def add(self, item) -> None:
        floor = self.floor
        if floor is not None and item < floor:
            return
        items = self.items
        items.append(item)
        if len(items) >= 2 * self.n:
            items.sort(reverse=True)
            del items[self.n:]
            self.floor = items[-1]

    def largest(self) -> list:
        """The kept items, largest first."""
        return sorted(self.items, reverse=True)[: self.n]


def note(out: FactSet, source: str, exc: Unreadable, root_only: bool = True) -> None:
    """Record an unreadable piece of evidence; permission problems get the root-only wording."""
    if exc.kind == "permission":
        out.problem(source, ROOT_ONLY if root_only else "permission denied", exc.path or "", "permission")
    else:
        out.problem(source, exc.message, exc.path or "", exc.kind)


def text(ev: Evidence, out: FactSet, source: str, rel: str, root_only: bool = True) -> str | None:
    """The file's text, or ``None`` when absent or unreadable (the latter recorded as a problem)."""
    try:
        return ev.read_text(rel)
    except Unreadable as exc:
        note(out, source, exc, root_only)
        return None


def quiet_text(ev: Evidence, rel: str) -> str | None:
    """The file's text, or ``None`` for any reason: for per-process files that vanish or are
    private by design, where one problem per file would drown the report."""
    try:
        return ev.read_text(rel)
    except Unreadable:
        return None


def stream(ev: Evidence, out: FactSet, source: str, rel: str) -> Iterator[str]:
    """Lines of a possibly huge file; yields nothing when absent; a read error mid-way ends the
    stream and is recorded (what was read so far stays usable)."""
    try:
        lines = ev.lines(rel)
        if lines is None:
            return
        yield from lines
    except Unreadable as exc:
        note(out, source, exc)


def compact(row: dict) -> dict:
    """A table row or map fact without its unknown (None) entries: rules then see them as
    unknown rather than as a None they cannot compare."""
    return {k: v for k, v in row.items() if v is not None}


#: Longer digit strings are not counters but junk (and int() of 4,300+ digits raises).
MAX_DIGITS = 40


def digits(text: str) -> int | None:
    """A plain ASCII decimal number, or ``None``: not ``isdigit()``, which also admits
    superscripts and other scripts' digits that int() refuses."""
    if not text or len(text) > MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def is_pid(name: str) -> bool:
    """A /proc entry that names a process."""
    return len(name) <= 10 and name.isascii() and name.isdigit()


def to_int(value: str) -> int | None:
    """An integer (decimal, or hex with 0x), or ``None`` when it is not one."""
    value = value.strip()
    if len(value) > MAX_DIGITS or not value.isascii():
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def number(ev: Evidence, out: FactSet, source: str, rel: str, root_only: bool = False) -> int | None:
    """A sysfs/procfs file holding one integer; malformed content is a problem, not a crash."""
    raw = text(ev, out, source, rel, root_only)
    if raw is None:
        return None
    value = to_int(raw.split()[0]) if raw.split() else None
    if value is None:
        out.problem(source, f"not a number: {raw.strip()[:40]!r}", ev.origin(rel), "malformed")
    return value


def colon_pairs(raw: str) -> dict[str, str]:
    """``key: value`` lines -> {key: value}; the first occurrence of a key wins."""
    pairs: dict[str, str] = {}
    for line in raw.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in pairs:
            pairs[key] = value.strip()
    return pairs


def selected(raw: str) -> str | None:
    """The bracketed choice of a sysfs selector such as ``always [madvise] never``."""
    start, end = raw.find("["), raw.find("]")
    if 0 <= start < end:
        return raw[start + 1 : end].strip()
    word = raw.strip()
    return word or None


def live_path(ev: Evidence, rel: str) -> str | None:
    """The host path of ``rel`` when ``ev`` is the live host, else ``None``.

    For the few probes Evidence has no verb for (statvfs, readlink, stat of an open file); they
    only make sense on the running host anyway.
    """
    return os.path.join(ev.root, rel) if ev.live else None


#: Key of the mount table in ``Evidence.shared``: one per evidence, dropped with it.
MOUNTS = "readers.mounts"
MOUNTINFO = ("proc/self/mountinfo", "proc/1/mountinfo")


def mounts(ev: Evidence) -> tuple[list[dict], str | None]:
    """The mount table (:func:`parse_mountinfo`) of the first of MOUNTINFO with any text, and
    its origin (None: neither has one). Read and parsed once per evidence: the cgroups,
    container and tmpfs sources all need it. Shared: never change it."""
    found = ev.shared.get(MOUNTS)
    if found is None:
        found = ([], None)
        for rel in MOUNTINFO:
            raw = quiet_text(ev, rel)
            if raw:
                found = (parse_mountinfo(raw), ev.origin(rel))
                break
        ev.shared[MOUNTS] = found
    return found  # type: ignore[return-value]


def parse_mountinfo(raw: str) -> list[dict]:
    """/proc/PID/mountinfo -> [{"mountpoint", "root", "fstype", "source", "dev"}]."""
    mounts = []
    for line in raw.splitlines():
        left, sep, right = line.partition(" - ")
        a, b = left.split(), right.split()
        if not sep or len(a) < 5 or len(b) < 2:
            continue
        mounts.append({"dev": a[2], "root": unescape(a[3]), "mountpoint": unescape(a[4]),
                       "fstype": b[0], "source": unescape(b[1]),
                       "options": b[2] if len(b) > 2 else ""})
    return mounts


def unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and all(c in "01234567" for c in field[i + 1:i + 4]):
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class FdTable:
    """Every process's open descriptors and where they point, read once per evidence.

    Both the deleted-files and the GPU sources need it; one walk of /proc/*/fd with readlink
    serves both. Live only (readlink has no captured form). Bounded in descriptors and seconds.
    """

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str]] = []  # (pid, fd, target)
        self.denied = 0
        self.complete = True


#: Key of the table in ``Evidence.shared``: one per evidence, dropped with it.
FD_TABLE = "readers.fd_table"


def fd_table(ev: Evidence, *, max_fds: int = 200000, seconds: float = 1.0) -> FdTable:
    cached = ev.shared.get(FD_TABLE)
    if isinstance(cached, FdTable):
        return cached
    table = FdTable()
    stop = time.monotonic() + seconds
    for pid in (p for p in ev.listdir("proc") if is_pid(p)):
        if time.monotonic() > stop or len(table.links) > max_fds:
            table.complete = False
            break
        try:
            fds = ev.listdir(f"proc/{pid}/fd")
        except Unreadable:
            table.denied += 1
            continue
        base = live_path(ev, f"proc/{pid}/fd")
        for fd in fds:
            try:
                table.links.append((pid, fd, os.readlink(f"{base}/{fd}")))
            except OSError:
                continue  # closed meanwhile
    if table.denied:
        table.complete = False
    ev.shared[FD_TABLE] = table
    return table

