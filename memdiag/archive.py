"""Safe extraction of evidence archives (memdiag captures, sosreports) into a private folder.

Archives come from customers and tickets, so every member is checked before anything is
written: names must stay inside the archive (no absolute paths, no ``..``), links must point
inside it, device files and FIFOs are refused, and sizes are capped three ways (each member,
the total, and the ratio of unpacked to packed bytes, which catches decompression bombs). Bytes
are counted as they are written, never taken from the headers on trust. Files land in a folder
made by ``mkdtemp`` (mode 0700) with mode 0600, nothing is written through a link, and the
folder is removed afterwards by :func:`extracted` or by whoever owns ``dest_parent``.

Every refusal is an :class:`~memdiag.errors.InputError` naming the archive and the member.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

from memdiag.errors import InputError
from memdiag.facts import _Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable, Iterator

_MAGIC = (
    (b"\x1f\x8b", "gz"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bz2"),
)


class Limits(_Frozen):
    """Caps on what one archive may unpack to (immutable; compared and hashed by its fields).

    ``ratio`` is unpacked / packed bytes, checked once more than ``ratio_floor`` bytes are
    unpacked, so a tiny archive of zeros (legitimately very compressible) is not refused."""

    __slots__ = ("total_bytes", "member_bytes", "members", "ratio", "ratio_floor")
    total_bytes: int
    member_bytes: int
    members: int
    ratio: float
    ratio_floor: int

    def __init__(self, total_bytes: int = 2 * 1024**3, member_bytes: int = 512 * 1024**2, members: int = 200_000,
                 ratio: float = 200.0, ratio_floor: int = 64 * 1024**2) -> None:
        _set = object.__setattr__
        _set(self, "total_bytes", total_bytes)
        _set(self, "member_bytes", member_bytes)
        _set(self, "members", members)
        _set(self, "ratio", ratio)
        _set(self, "ratio_floor", ratio_floor)


DEFAULT_LIMITS = Limits()


def compression(path: str) -> str | None:
    """``gz``, ``xz``, ``bz2`` or ``tar`` (uncompressed) when ``path`` is a tar archive, else None.

    Decided by content, not by name: tickets rename attachments freely.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def is_archive(path: str) -> bool:
    return os.path.isfile(path) and compression(path) is not None


@contextmanager
def extracted(path: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[str]:
    """Extract ``path`` into a private temporary folder, yield it, and remove it afterwards."""
    import tempfile

    parent = tempfile.mkdtemp(prefix="memdiag-")
    try:
        yield extract(path, parent, limits)
    finally:
        remove_tree(parent)


def extract(path: str, dest_parent: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """Extract ``path`` into a new private folder under ``dest_parent`` and return that folder.

    On any refusal the partial folder is removed before the error is raised.
    """
    import lzma  # not on the live diagnosis path
    import tarfile
    import tempfile
    import zlib

    kind = compression(path)
    if kind is None:
        raise InputError("not a tar archive (.tar, .tar.gz, .tar.xz, .tar.bz2)", path=path)
    dest = tempfile.mkdtemp(prefix="extract-", dir=dest_parent)
    try:
        packed = max(os.path.getsize(path), 1)
        mode = "r:" if kind == "tar" else f"r:{kind}"
        try:
            with tarfile.open(path, mode) as tar:
                _Extractor(path, dest, limits, packed).run(tar)
        except (tarfile.TarError, *_DAMAGE, lzma.LZMAError, zlib.error) as exc:
            raise InputError(f"damaged or truncated archive: {_describe(exc)}", path=path) from None
    except BaseException:
        remove_tree(dest)
        raise
    return dest


#: What tarfile raises on damaged input besides TarError: a header's size can ask for more than
#: can be read (OverflowError, MemoryError), a chain of long-name headers recurses without end.
_DAMAGE = (EOFError, OSError, ValueError, OverflowError, MemoryError, RecursionError)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def remove_tree(path: str) -> None:
    """Remove a folder memdiag made, even where extraction left read-only folders."""

    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700) if os.path.isdir(p) and not os.path.islink(p) else None
            func(p)
        except OSError:
            pass

    if os.path.lexists(path):
        import shutil

        shutil.rmtree(path, onerror=fix)


class _Extractor:
    def __init__(self, archive: str, dest: str, limits: Limits, packed: int) -> None:
        self.archive, self.dest, self.limits, self.packed = archive, dest, limits, packed
        self.total = 0
        #: the most bytes that unpack without a refusal from :meth:`account`: past it, either
        #: the total or (beyond the floor) the ratio is exceeded
        self.quiet = min(limits.total_bytes, max(limits.ratio_floor, packed * limits.ratio))
        self.count = 0
        self.files: set[str] = set()

    def refuse(self, member: str, why: str) -> InputError:
        return InputError(f"member {member!r}: {why}; archive refused", path=self.archive)

    def run(self, tar) -> None:
        for member in tar:  # streamed: a bomb with a million members is stopped at the cap
            self.count += 1
            if self.count > self.limits.members:
                raise self.refuse(member.name, f"more than {self.limits.members} members")
            name = self.safe_name(member.name)
            if name is None:
                continue  # the archive root itself ("./")
            if member.isreg():  # the usual member first (the kinds exclude each other)
                self.write_file(tar, member, name)
            elif member.isdir():
                self.make_dirs(name, member.name)
            elif member.issym():
                self.make_symlink(member, name)
            elif member.islnk():
                self.make_hardlink(member, name)
            elif member.ischr() or member.isblk():
                raise self.refuse(member.name, "device file")
            elif member.isfifo():
                raise self.refuse(member.name, "FIFO (named pipe)")
            else:
                raise self.refuse(member.name, f"unsupported member type {member.type!r}")

    def safe_name(self, raw: str) -> str | None:
        if not ("\x00" in raw or "\\" in raw or "//" in raw or "/." in raw or raw[:1] in ("/", ".", "")
                or raw[-1] == "/" or raw[1:2] == ":"):
            return raw  # the usual name: nothing _checked_name does would change or refuse it
        return self._checked_name(raw)

    def _checked_name(self, raw: str) -> str | None:
        if "\x00" in raw:
            raise self.refuse(raw, "NUL byte in name")
        if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
            raise self.refuse(raw, "absolute path")
        parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(raw, "path leads outside the archive (..)")
        return "/".join(parts) or None

    def target(self, name: str) -> str:
        return os.path.join(self.dest, *name.split("/"))

    def make_dirs(self, name: str, raw: str) -> str:
        """Create ``name`` and its parents as real folders (0700); refuse to pass through links."""
        path = self.dest
        for part in name.split("/"):
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o700)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise self.refuse(raw, "a member would be written through a link")
            if not stat.S_ISDIR(st.st_mode):
                raise self.refuse(raw, "a folder and a file share a name")
        return path

    def parent_of(self, name: str, raw: str) -> str:
        head = name.rpartition("/")[0]
        return self.make_dirs(head, raw) if head else self.dest

    def clear(self, path: str, raw: str) -> None:
        """Archives may repeat a name (appended updates): the later member replaces the earlier."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self.refuse(raw, "a file and a folder share a name")
        os.unlink(path)

    def account(self, raw: str, size: int) -> None:
        self.total += size
        if self.total <= self.quiet:
            return
        if self.total > self.limits.total_bytes:
            raise self.refuse(raw, f"unpacks to more than {self.limits.total_bytes // 1024**2} MiB in total")
        if self.total > self.limits.ratio_floor and self.total > self.packed * self.limits.ratio:
            raise self.refuse(
                raw, f"unpacks to more than {self.limits.ratio:.0f} times its packed size (decompression bomb)"
            )

    def write_file(self, tar, member, name: str) -> None:
        if member.size > self.limits.member_bytes:
            raise self.refuse(member.name, f"larger than {self.limits.member_bytes // 1024**2} MiB")
        parent = self.parent_of(name, member.name)
        path = os.path.join(parent, name.rpartition("/")[2])
        self.clear(path, member.name)
        src = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            written = 0
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                written += len(chunk)
                if written > self.limits.member_bytes:
                    raise self.refuse(member.name, f"larger than {self.limits.member_bytes // 1024**2} MiB")
                self.account(member.name, len(chunk))
                out.write(chunk)
        self.files.add(name)

    def link_target(self, member, name: str) -> str:
        """The in-archive name a link points at; refuse one leading outside."""
        link = member.linkname
        if not link or "\x00" in link:
            raise self.refuse(member.name, "link with an empty target")
        if link.startswith("/"):
            raise self.refuse(member.name, f"link to an absolute path ({link})")
        base = name.rpartition("/")[0].split("/") if "/" in name else []
        parts: list[str] = []
        for part in base + link.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise self.refuse(member.name, f"link points outside the archive ({link})")
                parts.pop()
            else:
                parts.append(part)
        return "/".join(parts)

    def make_symlink(self, member, name: str) -> None:
        self.link_target(member, name)
        parent = self.parent_of(name, member.name)
        path = os.path.join(parent, name.rpartition("/")[2])
        self.clear(path, member.name)
        self.files.discard(name)
        os.symlink(member.linkname, path)

    def make_hardlink(self, member, name: str) -> None:
        # a hard link names another member of the archive, relative to the archive root
        target = self.safe_name(member.linkname)
        if target is None or target not in self.files:
            raise self.refuse(member.name, f"hard link to a file not in the archive ({member.linkname})")
        parent = self.parent_of(name, member.name)
        path = os.path.join(parent, name.rpartition("/")[2])
        self.clear(path, member.name)
        size = os.path.getsize(self.target(target))
        self.account(member.name, size)
        import shutil

        shutil.copyfile(self.target(target), path, follow_symlinks=False)
        os.chmod(path, 0o600)
        self.files.add(name)


# -- reading an archive in place -------------------------------------------------------------

#: Member contents held in memory up to this many bytes; beyond it they go to an unlinked file
#: in the caller's work folder (a big sosreport), so memory stays bounded either way.
SPOOL_MEMORY = 8 * 1024**2
#: Links followed while resolving one name before it is called a loop (the kernel's limit).
_MAX_HOPS = 40

_DIR = ("d",)


class Outside(Exception):
    """A name resolves outside the folder it was asked under."""


class Loop(Exception):
    """Too many links while resolving a name."""


class _Store:
    """Member contents back to back: in memory, or spilled to an unlinked file when large."""

    def __init__(self, workdir: str | Callable[[], str] | None, memory: int) -> None:
        import io

        self._workdir, self._memory = workdir, memory
        self._buf: "io.BytesIO | None" = io.BytesIO()
        self._file = None
        self._view: memoryview | None = None
        self._fd = -1
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._file is None and self.size + len(data) > self._memory:
            import tempfile

            workdir = self._workdir() if callable(self._workdir) else self._workdir
            self._file = tempfile.TemporaryFile(dir=workdir)
            self._file.write(self._buf.getbuffer())
            self._buf = None
        (self._file or self._buf).write(data)
        self.size += len(data)

    def finish(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._fd = self._file.fileno()
        else:
            self._view = self._buf.getbuffer()

    def read(self, offset: int, size: int) -> bytes:
        if self._view is not None:
            return bytes(self._view[offset:offset + size])
        chunks = []
        while size > 0:  # pread is thread-safe: sources read concurrently
            chunk = os.pread(self._fd, size, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Tree:
    """An archive's members indexed by name, read without extracting them.

    Entries are ``("d",)`` for a folder, ``("f", offset, size)`` for a file's contents in the
    store, ``("l", target)`` for a symbolic link, its target already resolved to a name inside
    the archive. Built by :func:`index` with the same checks :func:`extract` applies.
    """

    def __init__(self, archive: str, entries: dict[str, tuple], store: _Store) -> None:
        self.archive = archive
        self.entries = entries
        self.store = store
        children: dict[str, list[str]] = {}
        for name in entries:
            parent, _, leaf = name.rpartition("/")
            children.setdefault(parent, []).append(leaf)
        self.children = children

    def lookup(self, rel: str, top: str = "", follow: bool = True) -> tuple[str, tuple] | None:
        """(name, entry) that ``rel`` under folder ``top`` resolves to, links followed (the last
        one only when ``follow``); None when absent. Raises :class:`Outside` when it leads out of
        ``top``, :class:`Loop` on too many links."""
        name = f"{top}/{rel}" if top else rel
        entry = self.entries.get(name)
        # no member lies under a link (the index refuses it), so a plain hit needs no walk
        if entry is not None and entry[0] != "l" and "/." not in name and "//" not in name \
                and rel[:1] not in ("", "/", "."):
            return name, entry
        if rel.startswith("/"):
            raise Outside(rel)
        base = top.split("/") if top else []
        cur = list(base)
        stack = rel.split("/")[::-1]
        hops = 0
        entry = _DIR
        while stack:
            part = stack.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not cur:  # above the archive's root
                    raise Outside(rel)
                cur.pop()
                entry = _DIR
                continue
            name = "/".join(cur + [part])
            entry = self.entries.get(name)
            if entry is None:
                return None
            if entry[0] == "l" and (stack or follow):
                hops += 1
                if hops > _MAX_HOPS:
                    raise Loop(rel)
                stack.extend(entry[1].split("/")[::-1] if entry[1] else [])
                cur = []
                entry = _DIR
                continue
            if stack and entry[0] != "d":
                return None  # a file used as a folder
            cur.append(part)
        if cur[:len(base)] != base:
            raise Outside(rel)
        return "/".join(cur), entry

    def read(self, entry: tuple, limit: int | None = None) -> bytes:
        size = entry[2] if limit is None else min(entry[2], limit)
        return self.store.read(entry[1], size)


def index(path: str, workdir: str | Callable[[], str] | None = None, limits: Limits = DEFAULT_LIMITS,
          memory: int = SPOOL_MEMORY) -> Tree:
    """Index archive ``path`` in place: every member checked as :func:`extract` checks it (same
    refusals, same messages), contents kept in memory or, past ``memory`` bytes, in an unlinked
    file under ``workdir`` (which may be the function that makes it: called only then, so a
    capture read in memory makes no folder at all); nothing is created on disk by name.

    Headers are read by :mod:`memdiag.tarheaders`; an archive it does not read exactly as
    tarfile does (damage, sparse files, unusual headers) is read again with tarfile."""
    kind = compression(path)
    if kind is None:
        raise InputError("not a tar archive (.tar, .tar.gz, .tar.xz, .tar.bz2)", path=path)
    packed = max(os.path.getsize(path), 1)
    from memdiag.tarheaders import Unsure

    try:
        return _index_lean(path, kind, limits, packed, workdir, memory)
    except (Unsure, OSError):
        return _index_tarfile(path, kind, limits, packed, workdir, memory)


def _index_lean(path: str, kind: str, limits: Limits, packed: int, workdir: str | None, memory: int) -> Tree:
    """:func:`index` with members read by :class:`memdiag.tarheaders.Reader`; raises
    :class:`~memdiag.tarheaders.Unsure` (or OSError) where tarfile must decide instead."""
    from memdiag.tarheaders import Reader

    store = _Store(workdir, memory)
    try:
        indexer = _Indexer(path, limits, packed, store)
        with open(path, "rb") as f:
            reader = Reader(f, kind)
            try:
                indexer.run(reader)
            except InputError:
                reader.settle()  # a refusal stands only where tarfile would not have met damage first
                raise
            reader.settle()
        store.finish()
    except BaseException:
        store.close()
        raise
    return Tree(path, indexer.entries, store)


def _index_tarfile(path: str, kind: str, limits: Limits, packed: int, workdir: str | None, memory: int) -> Tree:
    """:func:`index` with members read by tarfile (any archive tarfile reads)."""
    import lzma
    import tarfile
    import zlib

    store = _Store(workdir, memory)
    try:
        mode = "r:" if kind == "tar" else f"r:{kind}"
        indexer = _Indexer(path, limits, packed, store)
        try:
            with tarfile.open(path, mode) as tar:
                indexer.run(tar)
        except (tarfile.TarError, *_DAMAGE, lzma.LZMAError, zlib.error) as exc:
            raise InputError(f"damaged or truncated archive: {_describe(exc)}", path=path) from None
        store.finish()
    except BaseException:
        store.close()
        raise
    return Tree(path, indexer.entries, store)


class _Indexer(_Extractor):
    """The extractor's checks, with members recorded in an index instead of written out."""

    def __init__(self, archive: str, limits: Limits, packed: int, store: _Store) -> None:
        super().__init__(archive, "", limits, packed)
        self.store = store
        self.entries: dict[str, tuple] = {}

    def make_dirs(self, name: str, raw: str) -> str:
        entries, path = self.entries, ""
        for part in name.split("/"):
            path = f"{path}/{part}" if path else part
            entry = entries.get(path)
            if entry is None:
                entries[path] = _DIR
            elif entry[0] == "l":
                raise self.refuse(raw, "a member would be written through a link")
            elif entry[0] != "d":
                raise self.refuse(raw, "a folder and a file share a name")
        return path

    def parent_of(self, name: str, raw: str) -> str:
        head = name.rpartition("/")[0]
        entries = self.entries
        entry = entries.get(head)
        if entry is _DIR:
            return head  # a folder stays one (files and links never replace it), as do its parents
        if entry is None and entries.get(head.rpartition("/")[0]) is _DIR:
            entries[head] = _DIR  # the usual new folder (proc/PID), in one already known
            return head
        return self.make_dirs(head, raw) if head else ""

    def clear(self, name: str, raw: str) -> None:
        entry = self.entries.get(name)
        if entry is not None and entry[0] == "d":
            raise self.refuse(raw, "a file and a folder share a name")

    def write_file(self, tar, member, name: str) -> None:
        limit = self.limits.member_bytes
        if member.size > limit:
            raise self.refuse(member.name, f"larger than {limit // 1024**2} MiB")
        entries = self.entries
        if entries.get(name.rpartition("/")[0]) is not _DIR:  # parent_of's own first look, inline
            self.parent_of(name, member.name)
        if name in entries:
            self.clear(name, member.name)
        src, store = tar.extractfile(member), self.store
        offset, written = store.size, 0
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                raise self.refuse(member.name, f"larger than {limit // 1024**2} MiB")
            self.total += len(chunk)  # account()'s sum, inline; it words a refusal
            if self.total > self.quiet:
                self.total -= len(chunk)
                self.account(member.name, len(chunk))
            store.write(chunk)
            if len(chunk) < 1 << 20:  # short: the member's end (both readers fill a read until then)
                break
        entries[name] = ("f", offset, written)
        self.files.add(name)

    def make_symlink(self, member, name: str) -> None:
        target = self.link_target(member, name)
        self.parent_of(name, member.name)
        self.clear(name, member.name)
        self.files.discard(name)
        self.entries[name] = ("l", target)

    def make_hardlink(self, member, name: str) -> None:
        target = self.safe_name(member.linkname)
        if target is None or target not in self.files:
            raise self.refuse(member.name, f"hard link to a file not in the archive ({member.linkname})")
        self.parent_of(name, member.name)
        self.clear(name, member.name)
        entry = self.entries[target]
        self.account(member.name, entry[2])
        self.entries[name] = entry
        self.files.add(name)
