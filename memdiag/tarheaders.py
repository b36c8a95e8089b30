"""A lean, forward-only reader of tar archives for :func:`memdiag.archive.index`.

It hands :class:`memdiag.archive._Indexer` the members and contents Python's ``tarfile`` would,
at a fraction of its cost (tarfile builds a TarInfo per header through several layers of file
objects; a capture's 200 small members spent ~80% of an in-place analysis there). It reads only
what it can interpret exactly as tarfile does: ustar and GNU headers of regular files, folders,
symbolic and hard links (devices, FIFOs and unknown types are handed on to be refused), ustar
name prefixes, GNU long names and long links ('L', 'K'), and pax headers ('x', and 'g' that
change nothing a member is read by) made of well-formed records. Anything else - a bad checksum,
an odd number field, sparse files, a truncated or corrupt stream, a pax record tarfile would
read loosely - raises :class:`Unsure`, and the caller reads the whole archive with tarfile
instead, which decides (and words) the outcome as it always has.

A decompressor fails where its input is damaged, and tarfile reads ahead of what it needs by up
to a buffer (8 KiB); so before an outcome is trusted, :meth:`Reader.settle` decompresses a
margin past it: clean there, tarfile would have reached the same outcome without an error.
Decompression streams in bounded steps (see ``_STEP``), so memory stays bounded.
"""

from __future__ import annotations

import re
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, BinaryIO, Iterator

BLOCK = 512
_ZERO = bytes(BLOCK)
#: How tarfile decodes names by default (its ENCODING, with errors="surrogateescape").
_ENCODING = sys.getfilesystemencoding()
#: Compressed bytes read at a time, and decompressed bytes produced at most per step (zlib is
#: ~25% slower on a capture with a 1 MiB cap than with 256 KiB).
_READ = 1 << 16
_STEP = 1 << 18
#: Decompressed past an outcome before it is trusted (tarfile reads ahead at most 8 KiB).
MARGIN = 1 << 20
#: GNU long names and pax headers longer than this are left to tarfile (a name is < 4 KiB).
_META_MAX = 1 << 16
#: Long-name and pax headers in a row before one member; tarfile recurses once per header.
_CHAIN_MAX = 16

_REGULAR = (b"0", b"\0", b"7")  # tarfile's REGULAR_TYPES, sparse ("S") aside: never read here
#: tarfile's SUPPORTED_TYPES: members of other types have their data skipped like a file's.
_SUPPORTED = (b"0", b"\0", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S")
_HIGH = bytes(range(128, 256))
#: Bytes 100-156 of a header as tarfile, GNU tar and libarchive write them: mode, uid, gid (8
#: bytes), size, mtime (12) in octal digits ending in a NUL or space, the checksum as 6 digits,
#: NUL, space. Each field then holds no NUL before its end, so tarfile.nti reads int(digits, 8).
_USUAL = re.compile(rb"(?:[0-7]{6}[0-7 ][\0 ]){3}([0-7]{10}[0-7 ])[\0 ][0-7]{10}[0-7 ][\0 ]([0-7]{6})\0 ")


class Unsure(Exception):
    """This archive holds something not read here exactly as tarfile reads it (or is damaged):
    read it with tarfile instead."""


class Member:
    """What :class:`memdiag.archive._Indexer` reads of a tarfile.TarInfo, same names and meaning."""

    __slots__ = ("name", "linkname", "size", "type")

    def __init__(self, name: str, linkname: str, size: int, type: bytes) -> None:
        self.name, self.linkname, self.size, self.type = name, linkname, size, type

    def isreg(self) -> bool:
        return self.type in _REGULAR

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def ischr(self) -> bool:
        return self.type == b"3"

    def isblk(self) -> bool:
        return self.type == b"4"

    def isfifo(self) -> bool:
        return self.type == b"6"


class _Inflow:
    """The archive's tar stream (decompressed), read forwards only."""

    def __init__(self, f: BinaryIO, kind: str) -> None:
        self._f = f
        self._gz = kind == "gz"
        self._buf = b""
        self._pos = 0
        self._pending = b""  # compressed bytes read with the gzip header
        self._d: Any = None  # a zlib, lzma or bz2 decompressor; None for a plain tar
        self._errors: tuple[type[BaseException], ...] = (zlib.error, OSError, EOFError, ValueError)
        if kind == "gz":
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)  # the header is read here, as gzip does
            head = f.read(_READ)
            self._pending = head[_gzip_body(head):]
        elif kind == "xz":
            import lzma

            self._d = lzma.LZMADecompressor()
            self._errors += (lzma.LZMAError,)
        elif kind == "bz2":
            import bz2

            self._d = bz2.BZ2Decompressor()

    def _more(self) -> bytes:
        """The next decompressed bytes (at most ``_STEP``); b"" at the stream's clean end.
        Damage, or the compressed file ending before its stream does, raises Unsure."""
        d = self._d
        if d is None:
            return self._f.read(_STEP)
        try:
            while not d.eof:
                if self._gz:
                    data = d.unconsumed_tail or self._pending or self._f.read(_READ)
                    self._pending = b""
                    if not data:
                        raise Unsure("compressed stream ends early")
                elif d.needs_input:
                    data = self._f.read(_READ)
                    if not data:
                        raise Unsure("compressed stream ends early")
                else:
                    data = b""
                out = d.decompress(data, _STEP)
                if out:
                    return out
        except self._errors as exc:
            raise Unsure(str(exc)) from None
        return b""

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer where the stream ends."""
        buf, pos = self._buf, self._pos
        end = pos + n
        if end <= len(buf):
            self._pos = end
            return buf[pos:end]
        chunks, have = [buf[pos:]], len(buf) - pos
        while have < n:
            more = self._more()
            if not more:
                break
            chunks.append(more)
            have += len(more)
        buf = b"".join(chunks)
        self._buf, self._pos = buf, min(n, len(buf))
        return buf[:n]

    def skip(self, n: int) -> None:
        """Pass ``n`` bytes; Unsure when the stream ends first."""
        while True:
            avail = len(self._buf) - self._pos
            if n <= avail:
                self._pos += n
                return
            n -= avail
            self._buf, self._pos = self._more(), 0
            if not self._buf:
                raise Unsure("unexpected end of data")

    def settle(self, margin: int) -> None:
        """Decompress ``margin`` bytes past the current point (or to the stream's end), so damage
        just ahead, which tarfile's read-ahead could meet, raises Unsure now."""
        if self._d is None:
            return  # a plain tar: reading further could fail no read of tarfile's
        have = len(self._buf) - self._pos
        while have < margin:
            more = self._more()
            if not more:
                return
            have += len(more)


def _gzip_body(head: bytes) -> int:
    """Where the deflate data starts after the gzip header at the start of ``head`` (read as
    Python's gzip module reads it: method 8, optional extra, name, comment and header CRC)."""
    if len(head) < 10 or head[:2] != b"\x1f\x8b" or head[2] != 8:
        raise Unsure("not a gzip header read here")
    flag, pos = head[3], 10
    if flag & 4:  # FEXTRA
        if len(head) < pos + 2:
            raise Unsure("gzip header")
        pos += 2 + (head[pos] | head[pos + 1] << 8)
    for bit in (8, 16):  # FNAME, FCOMMENT: NUL-terminated
        if flag & bit:
            end = head.find(b"\0", pos)
            if end < 0:
                raise Unsure("gzip header")
            pos = end + 1
    if flag & 2:  # FHCRC, read and not checked (as Python does)
        pos += 2
    if pos > len(head):
        raise Unsure("gzip header")
    return pos


def _octal(field: bytes) -> int | None:
    """tarfile.nti's value of a number field, None where tarfile finds it invalid."""
    try:
        # the usual field: digits, then NULs or spaces. Where int() takes what is left, it has
        # no NUL and is ASCII, so nti (cut at the first NUL, strip, int) reads the same number
        return int(field.rstrip(b"\0 "), 8)
    except ValueError:
        pass
    if field[0] in (0o200, 0o377):  # base-256 (GNU): any bytes are a number
        n = 0
        for byte in field[1:]:
            n = (n << 8) + byte
        return n - 256 ** (len(field) - 1) if field[0] == 0o377 else n
    cut = field.find(b"\0")
    if cut != -1:
        field = field[:cut]
    try:
        return int(field.decode("ascii").strip() or "0", 8)
    except ValueError:
        return None


def _text(field: bytes) -> str:
    """tarfile.nts: up to the first NUL, decoded as tarfile decodes names."""
    cut = field.find(b"\0")
    return (field if cut == -1 else field[:cut]).decode(_ENCODING, "surrogateescape")


def _pax(data: bytes, size: int) -> dict[str, str]:
    """The records of a pax header, read strictly: each "LEN KEY=VALUE\\n" exactly LEN bytes,
    back to back over ``size`` bytes, NUL padding after. What tarfile would read loosely (a
    record not ending where its length says, a charset given, sparse files) raises Unsure."""
    if b"hdrcharset" in data or data.count(0, size) != len(data) - size:
        raise Unsure("pax header")
    records: dict[str, str] = {}
    pos = 0
    while pos < size:
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space]
        if space <= pos or not digits.isdigit():
            raise Unsure("pax header")
        end = pos + int(digits)
        eq = data.find(b"=", space + 1, end - 1)
        if end > size or data[end - 1] != 10 or eq <= space + 1:
            raise Unsure("pax header")
        key = data[space + 1:eq].decode("utf-8", "surrogateescape")
        value = data[eq + 1:end - 1]
        if key in ("path", "linkpath"):
            try:
                records[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                records[key] = value.decode(_ENCODING, "surrogateescape")
        elif key == "size":
            if not value.isdigit():
                raise Unsure("pax size")
            records[key] = value.decode("ascii")
        elif key.startswith("GNU.sparse."):
            raise Unsure("sparse member")
        pos = end
    return records


class Reader:
    """The members of a tar stream, as ``for member in tarfile.open(...)`` yields them, and
    ``extractfile(member).read(n)`` for a regular member's contents (read once, in order)."""

    def __init__(self, f: BinaryIO, kind: str) -> None:
        self._in = _Inflow(f, kind)
        self._data = 0  # bytes of the last member's data not read yet
        self._pad = 0   # and the padding after them
        self._numbers: dict[bytes, bool] = {}

    def __iter__(self) -> Iterator[Member]:
        while True:
            if self._data or self._pad:
                self._in.skip(self._data + self._pad)
                self._data = self._pad = 0
            member = self._next()
            if member is None:
                return
            yield member

    def extractfile(self, member: Member) -> Reader:
        return self

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current member's contents; Unsure when the stream ends first."""
        n = min(n, self._data)
        if n <= 0:
            return b""
        inflow = self._in
        buf, pos = inflow._buf, inflow._pos
        end = pos + n
        if end <= len(buf):  # the usual small member, whole in the buffer: sliced here
            chunk = buf[pos:end]
            self._data -= n
            if not self._data and end + self._pad <= len(buf):  # its padding passed as well
                end += self._pad
                self._pad = 0
            inflow._pos = end
            return chunk
        chunk = inflow.read(n)
        if len(chunk) != n:
            raise Unsure("unexpected end of data")
        self._data -= n
        return chunk

    def settle(self) -> None:
        self._in.settle(MARGIN)

    def _valid(self, field: bytes, widths: tuple[int, ...]) -> None:
        """Raise Unsure unless every number field packed in ``field`` is one tarfile reads."""
        ok = self._numbers.get(field)
        if ok is None:
            ok, at = True, 0
            for width in widths:
                ok = ok and _octal(field[at:at + width]) is not None
                at += width
            self._numbers[field] = ok
        if not ok:
            raise Unsure("invalid header")

    def _header(self, buf: bytes) -> tuple[str, bytes, int]:
        """(name, type, size) of one header block as tarfile.TarInfo.frombuf reads it."""
        usual = _USUAL.match(buf, 100)
        chksum: int | None
        if usual is not None:  # mode, uid, gid, size, mtime as tarfile and GNU tar write them
            size, chksum = int(usual.group(1), 8), int(usual.group(2), 8)
        else:
            chksum = _octal(buf[148:156])
            self._valid(buf[100:124], (8, 8, 8))  # mode, uid, gid
            self._valid(buf[136:148], (12,))  # mtime
            field = buf[124:136]
            number = _octal(field)
            if number is None or number < 0 or field[0] >= 0o200:
                raise Unsure("size")
            size = number
        # the sum of the bytes, the checksum field counted as spaces; adler32's low half is
        # 1 + the byte sum, exact over 256 bytes (at most 65,280 < 65,521)
        total = (zlib.adler32(buf[:256]) & 0xFFFF) + (zlib.adler32(buf[256:]) & 0xFFFF) - 2
        unsigned = total - sum(buf[148:156]) + 256
        if chksum != unsigned:
            high = BLOCK - len(buf.translate(None, _HIGH)) - (8 - len(buf[148:156].translate(None, _HIGH)))
            if chksum != unsigned - 256 * high:  # the signed sum some old tars wrote
                raise Unsure("bad checksum")
        dev = buf[329:345]
        if self._numbers.get(dev) is not True:
            self._valid(dev, (8, 8))  # devmajor, devminor
        kind = buf[156:157]
        cut = buf.find(0, 0, 100)  # the name as _text reads it, inline: once per member
        name = buf[:100 if cut == -1 else cut].decode(_ENCODING, "surrogateescape")
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"  # a V7 folder
        if kind == b"5":
            name = name.rstrip("/")
        if buf[345] and kind not in (b"L", b"K", b"S"):
            name = _text(buf[345:500]) + "/" + name  # ustar prefix
        return name, kind, size

    def _next(self) -> Member | None:
        inflow = self._in
        # long names and pax records before the member, in the order read: (type, text, records)
        patches: list[tuple[bytes, str, dict[str, str]]] = []
        while True:
            buf = inflow.read(BLOCK)
            if len(buf) != BLOCK:
                raise Unsure("truncated header")  # tarfile may end quietly: let it decide
            if buf == _ZERO:
                if patches:
                    raise Unsure("no member after an extended header")
                return None  # the end of the archive
            name, kind, size = self._header(buf)
            if kind in (b"L", b"K", b"x", b"g"):
                if size > _META_MAX or len(patches) >= _CHAIN_MAX:
                    raise Unsure("extended header")
                data = inflow.read(-size % BLOCK + size)
                if len(data) != -size % BLOCK + size:
                    raise Unsure("unexpected end of data")
                if kind in (b"L", b"K"):
                    patches.append((kind, _text(data), {}))
                else:
                    records = _pax(data, size)
                    if kind == b"g" and records:  # would change every member after it
                        raise Unsure("global pax header")
                    patches.append((kind, "", records))
                continue
            if kind in (b"S", b"X"):
                raise Unsure("sparse or Solaris member")
            break
        linkname = _text(buf[157:257]) if kind in (b"1", b"2") else ""
        if kind == b"5":
            name = name.rstrip("/")  # again after the prefix (tarfile's _proc_builtin)
        for what, text, records in reversed(patches):  # tarfile applies the innermost first
            if what == b"L" or what == b"K":
                if what == b"L":
                    name = text
                else:
                    linkname = text
                if kind == b"5":
                    name = name.removesuffix("/")
            elif records:
                if "path" in records:
                    name = records["path"].rstrip("/")
                if "linkpath" in records:
                    linkname = records["linkpath"]
                if "size" in records:
                    size = int(records["size"])
        if kind in _REGULAR or kind not in _SUPPORTED:
            self._data, self._pad = size, -size % BLOCK
        return Member(name, linkname, size, kind)
