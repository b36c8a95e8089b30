"""``memdiag collect``: capture the raw evidence of this host into one archive.

The capture holds exactly what the registered sources read, nothing derived: the sources run
over a :class:`RecordingEvidence`, a live evidence that keeps every file's bytes as they were
read, every folder listing and existence check, and every read that failed and why. Those are
written as a memdiag capture (format in :mod:`memdiag.plugins.inputs.capture`), so any later
memdiag, with newer rules or sources that read the same files, can re-analyze the moment.

Process command lines can hold passwords and tokens: ``/proc/PID/cmdline`` is only kept with
``--with-cmdlines``; of ``/proc/PID/environ`` only a ``container=`` variable is ever kept (the
container source's evidence), nothing else. The capture is bounded in size (what
would exceed ``--max-size`` is left out and listed as such) and in time (the global
``--timeout``), and its size is printed.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from memdiag.errors import EXIT_OK, UsageError
from memdiag.evidence import Evidence, Unreadable
from memdiag.hookspecs import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Iterator

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _process_file(rel: str) -> str | None:
    """``cmdline`` for ``proc/PID/cmdline`` (or self, thread-self, task/TID): which per-process
    file ``rel`` is, if it is one. Plain string checks: this module loads on every run."""
    parts = rel.split("/")
    if len(parts) not in (3, 5) or parts[0] != "proc":
        return None
    if not (parts[1].isdigit() or parts[1] in ("self", "thread-self")):
        return None
    if len(parts) == 5 and (parts[2] != "task" or not parts[3].isdigit()):
        return None
    return parts[-1]


class RecordingEvidence(Evidence):
    """The live host, remembering everything sources read from it.

    Sources run in worker threads and a stuck one may be abandoned and finish late, so all
    records go through one lock and stop once :meth:`close` is called.
    """

    def __init__(self, root: str = "/", *, with_cmdlines: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(root, kind="live")
        self.thorough = True  # a capture keeps slabinfo, vmallocinfo ... however small they are
        self.with_cmdlines = with_cmdlines
        self.max_bytes = max_bytes
        self.files: dict[str, bytes] = {}
        self.listings: dict[str, list[str]] = {}
        self.present: set[str] = set()
        self.unreadable: dict[str, tuple[str, str]] = {}
        self.omitted: dict[str, str] = {}
        self.partial: set[str] = set()
        self.redacted: set[str] = set()
        self.size = 0
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- recording ---------------------------------------------------------------------------

    def _excluded(self, rel: str) -> str | None:
        if not self.with_cmdlines and _process_file(rel) == "cmdline":
            return "process command lines are left out unless --with-cmdlines"
        return None

    def _store(self, rel: str, data: bytes, partial: bool = False) -> None:
        if _process_file(rel) == "environ":
            # only the container= variable is evidence (container detection); the rest may be secret
            data = b"".join(v + b"\0" for v in data.split(b"\0") if v.startswith(b"container="))
            with self._lock:
                self.redacted.add(rel)
        with self._lock:
            if self._closed or rel in self.files or rel in self.omitted:
                return
            why = self._excluded(rel)
            if why is None and self.size + len(data) > self.max_bytes:
                why = f"not captured: the capture size limit ({self.max_bytes // 1048576} MiB) was reached"
            if why is not None:
                self.omitted[rel] = why
                return
            self.files[rel] = data
            self.size += len(data)
            if partial:
                self.partial.add(rel)

    def _failed(self, rel: str, exc: Unreadable) -> None:
        with self._lock:
            if not self._closed and rel not in self.files:
                self.unreadable[rel] = (exc.message, exc.kind)

    # -- Evidence ----------------------------------------------------------------------------

    def read_bytes(self, rel: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
        try:
            data = super().read_bytes(rel, limit)
        except Unreadable as exc:
            self._failed(rel, exc)
            raise
        if data is not None:
            self._store(rel, data)
        return data

    def lines(self, rel: str, limit: int = 1 << 30) -> Iterator[str] | None:
        try:
            it = super().lines(rel, limit)
        except Unreadable as exc:
            self._failed(rel, exc)
            raise
        return None if it is None else self._recorded_lines(rel, it)

    def _recorded_lines(self, rel: str, it: Iterator[str]) -> Iterator[str]:
        kept: list[str] = []
        size = 0
        try:
            for line in it:
                if size <= self.max_bytes:
                    kept.append(line)
                    size += len(line) + 1
                yield line
        except GeneratorExit:  # the source stopped reading early: what it read is what it used
            self._store_lines(rel, kept, size, partial=True)
            raise
        except Unreadable as exc:
            self._failed(rel, exc)
            raise
        except OSError as exc:
            self._failed(rel, Unreadable(rel, exc.strerror or str(exc)))
            raise
        self._store_lines(rel, kept, size, partial=False)

    def _store_lines(self, rel: str, kept: list[str], size: int, partial: bool) -> None:
        if size > self.max_bytes:
            with self._lock:
                self.omitted.setdefault(rel, "not captured: larger than the capture size limit")
            return
        self._store(rel, ("\n".join(kept) + "\n").encode() if kept else b"", partial)

    def listdir(self, rel: str) -> list[str]:
        names = super().listdir(rel)
        with self._lock:
            key = rel.rstrip("/")
            if not self._closed and key not in self.listings:
                self.listings[key] = sorted(names)
        return names

    def exists(self, rel: str) -> bool:
        found = super().exists(rel)
        if found:
            with self._lock:
                if not self._closed:
                    self.present.add(rel)
        return found


# -- the capture file ------------------------------------------------------------------------

def _identity(ev: RecordingEvidence) -> tuple[str, str]:
    """(host name, kernel release) of the captured host."""
    if ev.root == "/":
        u = os.uname()
        return u.nodename, u.release
    values = []
    for rel, fallback in (("proc/sys/kernel/hostname", "unknown"), ("proc/sys/kernel/osrelease", "")):
        try:
            with open(os.path.join(ev.root, rel), encoding="utf-8", errors="replace") as f:
                values.append(f.read().strip() or fallback)
        except OSError:
            values.append(fallback)
    return values[0], values[1]


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "host"


def write_capture(ev: RecordingEvidence, out_path: str | None, *, started: float, duration: float,
                  problems: list[dict], timeout: float) -> tuple[str, int, int]:
    """Write the capture; return (path, files, packed bytes). Written atomically, mode 0600."""
    import json
    import tarfile

    from memdiag import __version__
    from memdiag.plugins.inputs import capture

    host, kernel = _identity(ev)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    top = f"memdiag-capture-{_safe(host)}-{stamp}"
    out_path = out_path or f"{top}.tar.gz"
    ev.close()
    files = {rel: data for rel, data in sorted(ev.files.items()) if _member_ok(rel)}
    packed = {rel: data.decode("ascii") for rel, data in files.items() if _packed(rel) and capture.packable(data)}
    meta = {
        "format": capture.FORMAT,
        "version": capture.VERSION if packed else capture.UNPACKED_VERSION,
        "memdiag_version": __version__,
        "host": host,
        "kernel": kernel,
        "captured_at": started,
        "captured_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_seconds": round(duration, 3),
        "with_cmdlines": ev.with_cmdlines,
        "files": [{"path": rel, "size": len(data)} for rel, data in files.items() if rel not in packed],
        "partial": sorted(ev.partial),
        "redacted": sorted(ev.redacted),
        "listings": dict(sorted(ev.listings.items())),
        "present": sorted(ev.present - set(files)),
        "unreadable": [{"path": p, "reason": r, "kind": k} for p, (r, k) in sorted(ev.unreadable.items())],
        "omitted": [{"path": p, "reason": r} for p, r in sorted(ev.omitted.items())],
        "problems": problems,
        "limits": {"max_bytes": ev.max_bytes, "timeout_seconds": timeout},
    }
    if packed:
        meta["packed"] = packed
    folder = os.path.dirname(os.path.abspath(out_path))
    tmp = os.path.join(folder, f".{os.path.basename(out_path)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write the capture: {exc.strerror}", path=out_path) from None
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            members = [(f"{top}/{capture.META}", json.dumps(meta, indent=1).encode())]
            members += [(f"{top}/{rel}", data) for rel, data in files.items() if rel not in packed]
            add_members(tar, members, int(started))
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out_path, len(files), os.path.getsize(out_path)


#: Where a host keeps one folder per hot-pluggable memory block (memory0/state, memory1/state, ...).
_MEMORY_BLOCKS = "sys/devices/system/memory/memory"


def _packed(rel: str) -> bool:
    """Whether ``rel`` is kept in the metadata (format version 2) rather than as a file: the
    files of the memory-block folders, one-word files by the hundred or thousand."""
    if not rel.startswith(_MEMORY_BLOCKS):
        return False
    block, sep, name = rel[len(_MEMORY_BLOCKS):].partition("/")
    return block.isdigit() and block.isascii() and bool(sep) and bool(name) and "/" not in name


def add_members(tar, members: list[tuple[str, bytes]], mtime: int) -> None:
    """Add files to a capture's archive: regular files only, their folders implied by their
    paths (every tar reader makes them; a member per folder was a third of an archive's members,
    each one more header for a reader to parse); a plain ustar header where the name fits one,
    pax (an extra header) only for a long or non-ASCII name."""
    import io
    import tarfile

    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, mtime
        tar.format = tarfile.USTAR_FORMAT if _fits_ustar(info) else tarfile.PAX_FORMAT
        tar.addfile(info, io.BytesIO(data))


def _fits_ustar(info) -> bool:
    """Whether a ustar header holds ``info`` as it is (a name of up to 100 bytes, or 255 split
    at a slash into prefix and name; ASCII, so no reader guesses an encoding)."""
    import tarfile

    if not info.name.isascii():
        return False
    try:
        info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")
    except ValueError:
        return False
    return True


def _member_ok(rel: str) -> bool:
    """Relative paths only: a source asking for ``../x`` is a bug, never archived."""
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts


# -- the command -----------------------------------------------------------------------------

def configure(parser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="where to write the capture (default: memdiag-capture-HOST-TIME.tar.gz here)")
    parser.add_argument("--with-cmdlines", action="store_true",
                        help="also keep process command lines (/proc/PID/cmdline; they may hold secrets)")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_BYTES // 1048576, metavar="MiB",
                        help="largest amount of raw evidence kept (default %(default)s MiB)")


def run(args) -> int:
    from memdiag.bounded import Deadline
    from memdiag.cli import load_registry
    from memdiag.sources import collect
    from memdiag.units import format_bytes

    if args.max_size <= 0:
        raise UsageError("--max-size must be a positive number of MiB")
    reg = load_registry(args)
    root = os.environ.get("MEMDIAG_ROOT", "/")
    ev = RecordingEvidence(root, with_cmdlines=args.with_cmdlines, max_bytes=args.max_size * 1048576)
    started, t0 = time.time(), time.monotonic()
    facts = collect(reg.sources, ev, deadline=Deadline(args.timeout))
    duration = time.monotonic() - t0
    problems = [{"source": p.source, "message": p.message, "path": p.path, "kind": p.kind} for p in facts.problems]
    path, count, packed = write_capture(ev, args.output, started=started, duration=duration,
                                        problems=problems, timeout=args.timeout)
    print(f"memdiag: capture written to {path}: {count} files, {format_bytes(ev.size)} read, "
          f"{format_bytes(packed)} packed, in {duration:.2f}s")
    if ev.omitted:
        print(f"memdiag: {len(ev.omitted)} file(s) left out (command lines, size limit); "
              f"listed in the capture's metadata", file=sys.stderr)
    return EXIT_OK


@hookimpl
def memdiag_commands(register):
    register("collect", "capture this host's raw evidence into one archive that `memdiag analyze` reads",
             configure, run)
