"""Where raw evidence comes from: the live host, or a captured snapshot of it.

Every source reads through an :class:`Evidence`, by paths relative to a root laid out like the
host's own (``proc/meminfo``, ``sys/kernel/mm/...``), and asks for captured command output by
command name (``top``, ``free``, ``lsmod``). So one parser serves the live host, a memdiag
capture, a sosreport and a folder of pasted outputs alike.

Reads are bounded: a snapshot may only hand out regular files inside its root (no FIFOs, devices,
or links leading out), no file is read whole beyond a size limit, and text that is not text
(binary junk, UTF-16) is decoded or refused with a message naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from _thread import get_ident as _get_ident  # threading's own; importing threading costs ~1 ms
from itertools import chain

from memdiag.errors import InputError
from memdiag.facts import _Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable, Iterable, Iterator

#: Largest file read whole. Bigger ones (slabinfo on a huge host) must be streamed with lines().
READ_LIMIT = 16 * 1024 * 1024
#: Folders of a snapshot whose links are remembered (~250 bytes each).
_FOLDER_CACHE = 4096
#: A snapshot folder whose sub-folders are looked up one by one this often is listed instead:
#: one listing tells which of its entries are links (proc/: a folder per process, each checked)
_LIST_AFTER = 3
#: ... unless it holds more entries than this (most of them would never be asked about)
_LIST_LIMIT = 1024
#: A folder of a snapshot remembered as absent: nothing below it exists, so reads, listings and
#: existence checks under it are answered without asking the file system (no path holds a NUL).
_GONE = "\0"
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
#: A snapshot's leaf not yet checked: a link is not followed (ELOOP), then looked at
_OPEN_LEAF_FLAGS = _OPEN_FLAGS | os.O_NOFOLLOW


class Unreadable(InputError):
    """One piece of evidence could not be read. ``kind`` says why, for the report."""

    def __init__(self, path: str, message: str, kind: str = "unreadable") -> None:
        super().__init__(message, path=path)
        self.kind = kind


class Captured(_Frozen):
    """A captured command output (or a recognised chunk of pasted text) and where it was found."""

    __slots__ = ("text", "origin")
    text: str
    origin: str

    def __init__(self, text: str, origin: str) -> None:
        _set_text(self, text)  # the slots' own setters: a capture makes hundreds of these
        _set_origin(self, origin)


_set_text = Captured.text.__set__  # type: ignore[attr-defined]
_set_origin = Captured.origin.__set__  # type: ignore[attr-defined]


def decode(data: bytes, origin: str) -> str:
    """Bytes of a text file -> str. UTF-16 with a BOM is accepted; NUL bytes mean binary."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if b"\x00" in data[:65536]:
        raise Unreadable(origin, "binary data where text was expected", "malformed")
    return data.decode("utf-8", errors="replace")


class Evidence:
    """A tree of evidence under ``root`` plus captured command outputs.

    ``kind`` is ``live``, ``capture``, ``sosreport`` or ``folder``; ``label`` is what reports
    show; ``captured_at`` the capture time (epoch seconds) when known.
    """

    #: Every read is served from memory (an archive's index, or memdiag's own spill file beside
    #: it): none can block, so sources that read only through evidence run in the caller's
    #: thread, with no worker to watch them (see :func:`memdiag.sources.collect`).
    in_memory = False
    #: While such a source runs: the time.monotonic() its reads must stop by; a read after it
    #: raises :class:`memdiag.bounded.Abandoned` (a subclass with ``in_memory`` checks it).
    due: float | None = None

    def __init__(
        self,
        root: str,
        *,
        kind: str,
        label: str | None = None,
        captured_at: float | None = None,
        host: str | None = None,
        commands: dict[str, list[str]] | None = None,
        overlay: dict[str, Captured] | None = None,
        metadata: dict | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        #: what a plain relative path is appended to (os.path.join's answer, without its cost)
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.kind = kind
        self.live = kind == "live"
        self.label = label or ("live host" if self.live else root)
        self.captured_at = captured_at
        self.host = host
        self.metadata = metadata or {}
        # command name -> candidate paths (relative to root), first existing wins
        self._commands = commands or {}
        # relative path or "cmd:NAME" -> text recognised in loose or pasted input
        self._overlay = overlay or {}
        self._real_root = _realpath(self.root)
        # thread id -> the file it is reading now, so a source abandoned on a stuck read can be
        # reported as "timed out reading X"
        self._reading: dict[int, str] = {}
        # folder (relative) -> its real path, checked to be inside the snapshot, None when it
        # leads out, _GONE when it does not exist: a snapshot does not change while it is read,
        # and sources read many files of one folder (proc/PID/*) or probe absent ones
        # (proc/PID/fdinfo), so each folder is looked at once
        self._dirs: dict[str, str | None] = {}
        # folder (relative) -> sub-folders looked up one by one so far (-1: listed, or too big)
        self._looked_up: dict[str, int] = {}
        #: what one source works out for others over this evidence (the process scan's ranking for
        #: pss): one per evidence, so two diagnoses at once never share it
        self.shared: dict[str, object] = {}
        #: read everything a source can use, even detail it would skip as too small to matter
        #: (``memdiag collect``: a capture is analysed later, perhaps with other thresholds)
        self.thorough = False

    # -- paths -------------------------------------------------------------------------------

    @property
    def stands_in(self) -> bool:
        """Whether some files are stood in for (pasted text, a capture's packed files, a rule
        test's input): reads of those must go through :meth:`read_bytes`."""
        return bool(self._overlay)

    def origin(self, rel: str) -> str:
        """The path of ``rel`` as a person would look for it."""
        hit = self._overlay.get(rel)
        if hit is not None:
            return hit.origin
        return self._live_path(rel)

    def _live_path(self, rel: str) -> str:
        """``os.path.join(self.root, rel)``, cheaper for the usual relative path (the path read
        live, and any path's origin)."""
        return self._prefix + rel if rel[:1] != "/" else os.path.join(self.root, rel)

    def _resolve(self, rel: str) -> str:
        """The path to open for ``rel``; in a snapshot, refused when a link leads out of it."""
        path = os.path.join(self.root, rel)
        if not self.live and not self._inside(path):
            raise Unreadable(path, "link leads outside the snapshot", "malformed")
        return path

    def _inside(self, path: str) -> bool:
        real = _realpath(path)
        return real == self._real_root or real.startswith(self._real_root + os.sep)

    def _folder_real(self, rel_dir: str) -> str | None:
        """The real path of folder ``rel_dir``, None when a link takes it out of the snapshot,
        or _GONE when it does not exist. Cached, in a bounded cache: a snapshot of 100,000
        processes has as many folders."""
        if not rel_dir:
            return self._real_root
        dirs = self._dirs
        real = dirs.get(rel_dir, "")
        if real != "":
            return real
        parent, _, name = rel_dir.rpartition("/")
        here = self._folder_real(parent)
        if here is not None and here != _GONE:
            seen = self._looked_up.get(parent, 0)
            if seen >= 0:
                self._looked_up[parent] = -1 if seen + 1 >= _LIST_AFTER else seen + 1
                if seen + 1 >= _LIST_AFTER:
                    self._list(parent, here)
                    real = dirs.get(rel_dir, "")
                    if real != "":
                        return real
            here = here + name if here[-1] == "/" else here + "/" + name
            try:
                is_link = stat.S_ISLNK(os.lstat(here).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                is_link, here = False, _GONE
            except OSError:  # no permission, say: let the read itself tell
                is_link = False
            if is_link:
                here = os.path.realpath(here)
                if here != self._real_root and not here.startswith(self._real_root + os.sep):
                    here = None
        if len(dirs) >= _FOLDER_CACHE:
            dirs.clear()
            self._looked_up.clear()
        dirs[rel_dir] = here
        return here

    def _list(self, rel_dir: str, real: str) -> None:
        """Cache the sub-folders of ``rel_dir`` (real path ``real``) that are no links, from one
        listing: each is where it is. Only what a look at each would have found is cached; links
        and absent names are still looked at one by one, and a listing that fails or races with
        a cache clear just leaves the looking to _folder_real."""
        try:
            with os.scandir(real) as it:
                entries = [e for _, e in zip(range(_LIST_LIMIT + 1), it)]
        except OSError:
            return
        if len(entries) > _LIST_LIMIT:
            return
        dirs = self._dirs
        if len(dirs) + len(entries) >= _FOLDER_CACHE:
            dirs.clear()
            self._looked_up.clear()
        prefix = rel_dir + "/" if rel_dir else ""
        base = real if real[-1] == "/" else real + "/"
        for entry in entries:
            try:
                if entry.is_symlink():  # the listing's own file type; lstat only if it has none
                    continue
            except OSError:
                continue
            dirs[prefix + entry.name] = base + entry.name

    def _located(self, rel: str) -> tuple[str, bool] | None:
        """(path, leaf_checked) to read ``rel`` from: live, its path; in a snapshot, as
        :meth:`_snapshot_path` finds it (None: a folder on its way is absent)."""
        if self.live:
            return self._live_path(rel), True
        return self._snapshot_path(rel)

    def _snapshot_path(self, rel: str) -> tuple[str, bool] | None:
        """(path, leaf_checked) of ``rel`` in a snapshot, or None when a folder on its way is
        absent. Its folders are checked (cached); the leaf is checked here only when ``rel`` is
        not a plain relative path, else the caller opens it with O_NOFOLLOW and checks it only
        if it is a link (rare in snapshots)."""
        if not _plain(rel):
            path = os.path.join(self.root, rel)
            if not self._inside(path):
                raise Unreadable(path, "link leads outside the snapshot", "malformed")
            return path, True
        real = self._folder_real(rel.rpartition("/")[0])
        if real is None:
            raise Unreadable(self._prefix + rel, "link leads outside the snapshot", "malformed")
        if real == _GONE:
            return None
        return self._prefix + rel, False

    # -- reading -----------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        if rel in self._overlay:
            return True
        if self.live:
            return os.path.lexists(os.path.join(self.root, rel))
        try:
            located = self._snapshot_path(rel)
        except Unreadable:
            return False
        if located is None:
            return False
        path, checked = located
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:
            return os.path.lexists(path)
        return checked or not is_link or self._inside(path)

    def listdir(self, rel: str) -> list[str]:
        """Entries of a directory; empty when it is absent."""
        try:
            if self.live:
                path = os.path.join(self.root, rel)
            elif _plain(rel):
                real = self._folder_real(rel)
                if real is None or real == _GONE:
                    return []
                path = self._prefix + rel
            else:
                path = self._resolve(rel)
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError, Unreadable):
            return []
        except PermissionError:
            raise Unreadable(self.origin(rel), "permission denied", "permission") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link loop lists as nothing, like a dangling link
                return []
            raise Unreadable(self.origin(rel), exc.strerror or str(exc)) from None

    def reading(self, thread_id: int) -> str | None:
        """The file thread ``thread_id`` is reading right now, if any."""
        return self._reading.get(thread_id)

    def read_bytes(self, rel: str, limit: int = READ_LIMIT) -> bytes | None:
        """The file's bytes, or ``None`` when it does not exist."""
        hit = self._overlay.get(rel)
        if hit is not None:
            return hit.text.encode()
        if self.live:
            path, checked = self._live_path(rel), True
        elif rel and rel[0] != "/" and rel[-1] != "/" and "//" not in rel and "/." not in rel and rel[0] != ".":
            # _snapshot_path's usual case (a plain relative path, as _plain says), inline: a
            # capture reads hundreds of files
            real = self._dirs.get(rel.rpartition("/")[0], "")
            if real == "":
                real = self._folder_real(rel.rpartition("/")[0])
            if real is None:
                raise Unreadable(self._prefix + rel, "link leads outside the snapshot", "malformed")
            if real == _GONE:
                return None
            path, checked = self._prefix + rel, False
        else:
            located = self._snapshot_path(rel)
            if located is None:
                return None
            path, checked = located
        reading, ident = self._reading, _get_ident()
        before = reading.get(ident)
        reading[ident] = path
        try:
            return self._read_file(path, limit, checked)
        finally:
            if before is None:
                del reading[ident]
            else:
                reading[ident] = before

    def read_each(self, rels: Iterable[str], limit: int = READ_LIMIT) -> Iterator[tuple[str, bytes | Unreadable | None]]:
        """(rel, what :meth:`read_bytes` answers) for each of ``rels``, in order: its bytes,
        None when absent, or the Unreadable it raises (as a value: the others are still read).
        For a family of small files (a memory block's state each), where the call per file
        costs more than the read; a subclass that stands in for reads sees each one."""
        read = self.read_bytes
        for rel in rels:
            try:
                yield rel, read(rel, limit)
            except Unreadable as exc:
                yield rel, exc

    def _open(self, path: str, checked: bool = True) -> tuple[int, int] | None:
        """(fd, size) of a file to read, or None when it does not exist. Snapshots hand out
        regular files only; size is -1 where unknown (/proc and /sys report 0). ``checked``
        False: the leaf may be a link not yet checked to stay inside the snapshot."""
        flags = _OPEN_FLAGS
        try:
            try:
                fd = os.open(path, flags if checked else _OPEN_LEAF_FLAGS)
            except OSError as exc:
                if checked or exc.errno != errno.ELOOP:
                    raise
                if not self._inside(path):  # the leaf is a link: where does it lead?
                    raise Unreadable(path, "link leads outside the snapshot", "malformed") from None
                fd = os.open(path, flags)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError:
            raise Unreadable(path, "permission denied", "permission") from None
        except OSError as exc:
            raise Unreadable(path, exc.strerror or str(exc)) from None
        if self.live:
            return fd, -1
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise Unreadable(path, "not a regular file (FIFO, device or socket); refused", "malformed")
        return fd, st.st_size

    def _read_file(self, path: str, limit: int, checked: bool = True) -> bytes | None:
        try:  # the usual case inline (a capture reads hundreds of files); anything else by _open
            fd = os.open(path, _OPEN_FLAGS if checked else _OPEN_LEAF_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            fd = -1
        if fd < 0:
            opened = self._open(path, checked)
            if opened is None:
                return None
            fd, size = opened
        elif self.live:
            size = -1
        else:
            try:
                st = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise Unreadable(path, "not a regular file (FIFO, device or socket); refused", "malformed")
            size = st.st_size
        try:
            chunks, total = [], 0
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError as exc:
                    if exc.errno == errno.EAGAIN:
                        raise Unreadable(path, "read would block; refused", "malformed") from None
                    if exc.errno in (errno.EPERM, errno.EACCES):
                        raise Unreadable(path, "permission denied", "permission") from None
                    if exc.errno == errno.ESRCH:  # process exited while we read it
                        return None
                    raise Unreadable(path, exc.strerror or str(exc)) from None
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise Unreadable(path, f"larger than the {limit // 1048576} MiB read limit", "malformed")
                if total == size:  # a snapshot file read to its size: skip the read that finds the end
                    if not chunks:
                        return chunk
                    chunks.append(chunk)
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_text(self, rel: str, limit: int = READ_LIMIT) -> str | None:
        """The file decoded as text, or ``None`` when it does not exist."""
        data = self.read_bytes(rel, limit)
        if data is None:
            return None
        try:
            return decode(data, rel)
        except Unreadable as exc:  # named here: origin() costs more than most reads
            raise Unreadable(self.origin(rel), exc.message, exc.kind) from None

    def lines(self, rel: str, limit: int = 1 << 30) -> Iterator[str] | None:
        """Stream a possibly large file line by line (slabinfo, vmallocinfo)."""
        hit = self._overlay.get(rel)
        if hit is not None:
            return iter(hit.text.splitlines())
        located = self._located(rel)
        if located is None:
            return None
        path, checked = located
        ident = _get_ident()
        self._reading[ident] = path
        try:
            opened = self._open(path, checked)
        finally:
            self._reading.pop(ident, None)
        if opened is None:
            return None
        return _stream_lines(opened[0], path, limit, self._reading, self.origin(rel))

    def command(self, name: str) -> Captured | None:
        """Captured output of command ``name`` (``top``, ``free``, ``lsmod``, ...), if any."""
        hit = self._overlay.get("cmd:" + name)
        if hit is not None:
            return hit
        for rel in self._commands.get(name, ()):
            text = self.read_text(rel)
            if text is not None:
                return Captured(text, self.origin(rel))
        return None

    def command_lines(self, name: str) -> tuple[Iterator[str], str] | None:
        """Captured output of command ``name`` line by line, and its origin; for outputs that may
        be large (a sosreport's dmesg) and are only searched, so their text is never held whole."""
        hit = self._overlay.get("cmd:" + name)
        if hit is not None:
            return iter(hit.text.splitlines()), hit.origin
        for rel in self._commands.get(name, ()):
            lines = self.lines(rel)
            if lines is not None:
                return lines, self.origin(rel)
        return None


def _plain(rel: str) -> bool:
    """A relative path of plain names: no ``..``, ``.``, empty or hidden parts, not absolute."""
    return bool(rel) and rel[0] != "/" and rel[-1] != "/" and "//" not in rel and "/." not in rel \
        and rel[0] != "."


def _stream_lines(fd: int, path: str, limit: int, reading: dict[int, str], shown: str) -> Iterator[str]:
    """Lines of ``fd``, read and decoded 64 KiB at a time (per-line work in Python was most of
    the cost of a slabinfo). Errors name ``shown``; lines before a bad one are still handed out."""
    return stream_lines(lambda: os.read(fd, 1 << 16), lambda: os.close(fd), path, limit, reading, shown)


def stream_lines(read: Callable[[], bytes], close: Callable[[], None], path: str, limit: int,
                 reading: dict[int, str], shown: str) -> Iterator[str]:
    """Lines of what successive ``read()`` calls return (b"" at the end), decoded a block at a
    time; ``close()`` runs when the stream ends or is dropped. For any backing store.

    A block's lines are handed out by a C iterator: no generator is resumed for each line,
    which was most of the cost of streaming a vmallocinfo of a few thousand lines."""
    return chain.from_iterable(_line_blocks(read, close, path, limit, reading, shown))


def _line_blocks(read: Callable[[], bytes], close: Callable[[], None], path: str, limit: int,
                 reading: dict[int, str], shown: str) -> Iterator[list[str]]:
    """The lines of each block :func:`stream_lines` reads. A problem is raised when the next
    block is asked for, so the lines before it are handed out first."""
    ident = _get_ident()  # of the thread consuming the lines
    reading[ident] = path
    try:
        total = 0
        tail: list[bytes] = []  # the unfinished last line, in pieces (it may be long)
        while True:
            try:
                data = read()
            except BlockingIOError:
                raise Unreadable(shown, "read would block; refused", "malformed") from None
            if not data:
                break
            total += len(data)
            cut = data.rfind(b"\n")
            if cut < 0:
                tail.append(data)
                if total > limit:
                    raise Unreadable(shown, "file too large to stream", "malformed")
                continue
            block = b"".join(tail) + data[:cut] if tail else data[:cut]
            tail = [data[cut + 1:]] if cut + 1 < len(data) else []
            yield from _block_lines(block, shown)
            if total > limit:
                raise Unreadable(shown, "file too large to stream", "malformed")
        if tail:
            yield from _block_lines(b"".join(tail), shown)
    finally:
        reading.pop(ident, None)
        close()


def _block_lines(block: bytes, shown: str) -> Iterator[list[str]]:
    """The lines (without their ends) of a block of whole lines, as one list; at a NUL, the
    lines before it, then Unreadable."""
    nul = block.find(b"\x00")
    if nul >= 0:
        start = block.rfind(b"\n", 0, nul)
        if start >= 0:
            yield from _block_lines(block[:start], shown)
        raise Unreadable(shown, "binary data where text was expected", "malformed")
    text = block.decode("utf-8", errors="replace")
    lines = text.split("\n")
    yield [line.rstrip("\r") for line in lines] if "\r" in text else lines


def _realpath(path: str) -> str:
    """``os.path.realpath(path)``, asking the kernel where possible.

    realpath is pure Python and lstat()s every component of the path, ~18 µs a file; a capture
    holds hundreds of files, so checking where links lead was half of analysing one. Opening
    with O_PATH resolves the same links without opening the file itself (no FIFO wait, no device
    side effects), and /proc/self/fd names the result. Anything unusual takes the slow path.
    """
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:  # sources probe many absent files: resolve the folder instead
        head, name = os.path.split(path)
        if name in ("", ".", "..") or head == path or f"{os.sep}..{os.sep}" in path or os.path.islink(path):
            return os.path.realpath(path)  # ".." could climb out of the absent part into links
        return os.path.join(_realpath(head), name)
    except OSError:  # a loop, no permission, not a folder: let realpath say
        return os.path.realpath(path)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc
        return os.path.realpath(path)
    finally:
        os.close(fd)


def live(root: str = "/") -> Evidence:
    """The host memdiag runs on."""
    return Evidence(root, kind="live")
