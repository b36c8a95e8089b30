"""memdiag.tarheaders reads an archive exactly as tarfile does, or says it is unsure.

Differential: every archive here is indexed twice, once with headers read by the lean reader
(archive._index_lean) and once by tarfile (archive._index_tarfile). The lean reader must give
the same Tree (entries and bytes) or the same refusal, word for word, unless it declines
(Unsure), in which case index() reads the archive with tarfile. Archives: memdiag's own
captures, sosreport-shaped archives in every format and compression, archives GNU tar writes,
the hostile fixtures, and archives generated and damaged by hypothesis.
"""

from __future__ import annotations

import atexit
import io
import lzma
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from memdiag import archive, cli
from memdiag.archive import Limits, compression, index
from memdiag.errors import InputError
from memdiag.tarheaders import Unsure

from test_archive_in_place import HOSTILE, SMALL, links_archive
from testkit import make_tar

SOS = Path(__file__).parent.parent / "fixtures" / "offline" / "sos" / "sosreport-centos7-mini"
FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}
MODES = ["w:gz", "w:xz", "w:bz2", "w"]
SMALL_LIMITS = [Limits(), SMALL, Limits(total_bytes=3000, member_bytes=2000, ratio=2.0, ratio_floor=500)]


def outcome(how: str, path: str, limits: Limits = Limits(), memory: int = archive.SPOOL_MEMORY):
    """("tree", entries, {name: contents}), ("refused", message), or "unsure" (lean only)."""
    kind = compression(path)
    assert kind is not None
    packed = max(os.path.getsize(path), 1)
    read = archive._index_lean if how == "lean" else archive._index_tarfile
    try:
        tree = read(path, kind, limits, packed, None, memory)
    except Unsure:
        return "unsure"
    except InputError as exc:
        return ("refused", str(exc))
    try:
        contents = {name: tree.read(e) for name, e in tree.entries.items() if e[0] == "f"}
        return ("tree", tree.entries, contents)
    finally:
        tree.store.close()


def same(path, limits: Limits = Limits(), *, lean_must_read: bool = False):
    """Assert the lean reader agrees with tarfile on ``path`` (or declines); return tarfile's outcome."""
    ref = outcome("tarfile", path, limits)
    lean = outcome("lean", path, limits)
    if lean_must_read:
        assert lean != "unsure", path
    if lean != "unsure":
        assert lean == ref, path
    try:
        tree = index(path, limits=limits)
    except InputError as exc:
        assert ref == ("refused", str(exc))
    else:
        tree.store.close()
        assert ref[0] == "tree"
    return ref


# -- real archives -------------------------------------------------------------------------------


def test_a_capture_of_this_host(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cap.tar.gz"
    monkeypatch.setenv("MEMDIAG_NO_COLOR", "1")
    assert cli.main(["collect", "-o", str(out)]) == 0
    capsys.readouterr()
    ref = same(str(out), lean_must_read=True)
    assert ref[0] == "tree" and any(name.endswith("memdiag-capture.json") for name in ref[1])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("mode", MODES)
def test_a_sosreport_in_each_format_and_compression(tmp_path, fmt, mode):
    path = tmp_path / "sos.tar"
    with tarfile.open(path, mode, format=FORMATS[fmt]) as tar:
        tar.add(SOS, arcname="sosreport-centos7-mini")
    assert same(str(path), lean_must_read=True)[0] == "tree"


def gnu_tree(root: Path) -> Path:
    """A tree with what GNU tar has special headers for: long names (> 100 and > 255 bytes),
    long link targets, non-ASCII names, links of both kinds, empty folders and files."""
    deep = root / "top" / ("d" * 90) / ("e" * 90) / ("f" * 90)
    deep.mkdir(parents=True)
    (deep / ("g" * 120)).write_bytes(b"deep\n" * 300)
    (root / "top" / "empty-dir").mkdir()
    (root / "top" / "empty-file").write_bytes(b"")
    (root / "top" / "näme-ü.txt").write_text("unicode\n")
    (root / "top" / "big").write_bytes(os.urandom(70_000))
    os.symlink("big", root / "top" / "sym")
    os.symlink(os.path.relpath(deep / ("g" * 120), root / "top"), root / "top" / "long-sym")
    os.link(root / "top" / "big", root / "top" / "hard")
    os.link(deep / ("g" * 120), root / "top" / "hard-to-long")
    return root


@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "posix", "ustar", "v7"])
@pytest.mark.parametrize("compress", ["-z", "-J", "-j", ""])
def test_archives_written_by_gnu_tar(tmp_path, fmt, compress):
    src = gnu_tree(tmp_path / "src")
    path = tmp_path / "gnu.tar"
    argv = ["tar", f"--format={fmt}", "-C", str(src), "-cf", str(path), "top"]
    if compress:
        argv.insert(1, compress)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:  # ustar and v7 cannot hold every name here: GNU tar says so
        assert fmt in ("ustar", "v7"), proc.stderr
        return
    ref = same(str(path), lean_must_read=True)
    assert ref[0] == "tree" and ref[2]["top/hard"] == ref[2]["top/big"]


def test_sparse_members_are_left_to_tarfile(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(3 << 20)
        f.write(b"end\n")
    for fmt in ("gnu", "posix"):
        path = tmp_path / f"{fmt}.tar.gz"
        subprocess.run(["tar", "-S", f"--format={fmt}", "-C", str(src), "-czf", str(path), "sparse"], check=True)
        assert outcome("lean", str(path)) == "unsure"
        assert same(str(path))[0] == "tree"


# -- hostile archives ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("mode", MODES)
def test_hostile_archives_are_refused_word_for_word(tmp_path, case, mode):
    path = make_tar(tmp_path / "evil.tar", HOSTILE[case], mode)
    limits = SMALL if case in ("too many", "too big", "bomb") else Limits()
    ref = same(path, limits, lean_must_read=True)
    assert ref[0] == "refused", ref


def test_links_of_every_kind(tmp_path):
    assert same(links_archive(tmp_path), lean_must_read=True)[0] == "tree"


@pytest.mark.parametrize("mode", MODES)
def test_truncated_anywhere(tmp_path, mode):
    """Cut at every 1/40th of the file: whatever tarfile says (it often ends quietly), index says."""
    path = tmp_path / "sos.tar"
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        tar.add(SOS, arcname="sos")
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    for i in range(1, 40):
        cut.write_bytes(data[: len(data) * i // 40])
        if compression(str(cut)) is not None:
            same(str(cut))


def test_a_refusal_just_before_damage_is_tarfiles(tmp_path):
    """A member refused, the compressed stream damaged before or after it: where tarfile's
    read-ahead meets damage before the refusal, the lean reader must not answer alone."""
    rng = random.Random(5)
    text = b"".join(b"line %d: %d kB\n" % (i, rng.randrange(10**6)) for i in range(4000))
    members = [({"name": "ok", "mode": 0o644}, text[:3000]), ({"name": "../evil", "mode": 0o644}, b"x"),
               ({"name": "after", "mode": 0o644}, text)]
    path = make_tar(tmp_path / "a.tar.gz", members)
    data = bytearray(Path(path).read_bytes())
    outcomes = set()
    for at in range(20, min(len(data), 12_000), 37):
        bad = bytearray(data)
        bad[at] ^= 0xFF
        Path(path).write_bytes(bytes(bad))
        ref = same(path)
        outcomes.add(ref[0] if ref[0] == "tree" else ref[1].split(": ", 1)[1][:30])
    assert len(outcomes) > 2, outcomes  # the refusal, damage and more were met along the way


# -- generated and damaged archives ----------------------------------------------------------------

PARTS = ["a", "b", "proc", "meminfo", "..", ".", "", "é", "x" * 70, "y" * 101, "c:", "\\", "sos_commands", "1"]
TYPES = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
         tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"V", b"Z"]
names = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/etc/passwd", "a/", "a//b", "./a", "a/./b", "top/" + "z" * 250, "n\x00ul"])
member_specs = st.lists(st.tuples(names, st.sampled_from(TYPES), names,
                                  st.binary(max_size=700) | st.sampled_from([b"", b"\0" * 5000, b"x" * 1200])),
                        min_size=0, max_size=8)


def build(specs, fmt: int) -> bytes | None:
    """A tar (uncompressed) of ``specs`` as tarfile writes it in ``fmt``; None when it cannot."""
    buf = io.BytesIO()
    try:
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for name, kind, link, data in specs:
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode = kind, link, 0o644
                regular = kind in tarfile.REGULAR_TYPES or kind not in tarfile.SUPPORTED_TYPES
                info.size = len(data) if regular else 0
                tar.addfile(info, io.BytesIO(data) if regular else None)
    except (ValueError, UnicodeError):
        return None  # a name this format cannot hold
    return buf.getvalue()


def compress(raw: bytes, how: str) -> bytes:
    if how == "gz":
        return __import__("gzip").compress(raw, mtime=0)
    if how == "xz":
        return lzma.compress(raw)
    if how == "bz2":
        return __import__("bz2").compress(raw)
    return raw


WORK = Path(tempfile.mkdtemp(prefix="memdiag-tar-reader-"))
atexit.register(shutil.rmtree, WORK, True)  # hypothesis examples share one folder
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_bytes(data: bytes, limits: Limits) -> None:
    path = WORK / f"t{os.getpid()}.bin"
    path.write_bytes(data)
    if compression(str(path)) is not None:
        same(str(path), limits)


@SETTINGS
@given(specs=member_specs, fmt=st.sampled_from(sorted(FORMATS)), how=st.sampled_from(["gz", "xz", "bz2", "tar"]),
       limits=st.sampled_from(SMALL_LIMITS))
def test_generated_archives(specs, fmt, how, limits):
    raw = build(specs, FORMATS[fmt])
    assume(raw is not None)
    check_bytes(compress(raw, how), limits)


def fix_checksum(raw: bytearray, block: int) -> None:
    head = raw[block:block + 512]
    if len(head) == 512:
        head[148:156] = b"        "
        raw[block + 148:block + 156] = b"%06o\0 " % sum(head)


@SETTINGS
@given(specs=member_specs, fmt=st.sampled_from(sorted(FORMATS)), how=st.sampled_from(["gz", "xz", "bz2", "tar"]),
       seed=st.integers(0, 2**32), limits=st.sampled_from(SMALL_LIMITS))
def test_damaged_archives(specs, fmt, how, seed, limits):
    """Headers overwritten (checksums fixed up or not), blocks cut or repeated, compressed bytes
    flipped or cut: the same answer either way."""
    raw = build(specs, FORMATS[fmt])
    assume(raw is not None and len(raw) > 512)
    rng = random.Random(seed)
    tar = bytearray(raw)
    blocks = [i for i in range(0, len(tar), 512) if any(tar[i:i + 512])] or [0]
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        block = rng.choice(blocks)
        if op <= 2:  # a header field overwritten with something plausible or not
            at = block + rng.choice([0, 99, 100, 124, 130, 135, 136, 148, 156, 157, 257, 263, 329, 345, 500,
                                     rng.randrange(512)])
            tar[at:at + 4] = rng.choice([b"\x80\0\0\x01", b"\xff\xff\xff\xff", b"  7 ", b"0o17", b"-1\0\0",
                                         b"1_0\0", b"\0\0\0\0", b"L", b"K", b"x", b"g", b"S", b"5", b"2", b"../",
                                         rng.randbytes(4)])
            if op != 2:
                fix_checksum(tar, block)
        elif op == 3:
            del tar[rng.randrange(len(tar)):]
        elif op == 4:
            tar[block:block] = tar[block:block + 512 * rng.randint(1, 3)]
        else:
            tar[block:block + 512] = bytes(512)
    data = bytearray(compress(bytes(tar), how))
    if how != "tar" and rng.random() < 0.4:
        if rng.random() < 0.5:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            del data[rng.randrange(len(data)):]
    check_bytes(bytes(data), limits)


# -- bounded memory ---------------------------------------------------------------------------------


def test_a_big_member_is_read_in_64_mib(tmp_path):
    """A sosreport with a 40 MB log, read in place under a 64 MiB address-space limit."""
    prlimit = shutil.which("prlimit")
    assert prlimit
    path = tmp_path / "sosreport-big.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(SOS, arcname="sosreport-big")
        log = io.BytesIO()
        rng = random.Random(1)
        while log.tell() < 40_000_000:
            log.write(b"%d kernel: line %x of a big journal\n" % (log.tell(), rng.getrandbits(64)))
        info = tarfile.TarInfo("sosreport-big/sos_commands/logs/journalctl_--no-pager")
        info.size = log.tell()
        log.seek(0)
        tar.addfile(info, log)
    assert outcome("lean", str(path)) != "unsure"
    code = ("import sys; from memdiag import archive; t = archive.index(sys.argv[1], sys.argv[2]); "
            "print(len(t.entries), t.store.size)")
    proc = subprocess.run([prlimit, "--as=67108864", "--", os.sys.executable, "-c", code, str(path), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "MemoryError" not in proc.stderr, proc.stderr
    assert int(proc.stdout.split()[1]) > 40_000_000


# -- the pieces, one by one ----------------------------------------------------------------------


FIELD_BYTES = st.sampled_from(list(b"01234567 \0\t\x0b\x1c+-_o89x\x80\xff") + [0xE9])


@settings(max_examples=1000, deadline=None)
@given(field=st.lists(FIELD_BYTES, min_size=8, max_size=8).map(bytes) | st.binary(min_size=8, max_size=12))
def test_number_fields_read_as_tarfile_reads_them(field):
    from memdiag.tarheaders import _octal

    try:
        expected = tarfile.nti(field)
    except tarfile.InvalidHeaderError:
        expected = None
    assert _octal(field) == expected


NAME_PARTS = st.sampled_from(["a", "b", "..", ".", "", "c:", "\\", "x\x00", "é", ".hidden", "a.b", "/"])


@settings(max_examples=1000, deadline=None)
@given(raw=st.lists(NAME_PARTS, max_size=5).map("".join))
def test_the_usual_name_shortcut_changes_nothing(raw):
    checker = archive._Extractor("a.tar", "", Limits(), 1)

    def answer(fn):
        try:
            return fn(raw)
        except InputError as exc:
            return str(exc)

    assert answer(checker.safe_name) == answer(checker._checked_name)


@settings(max_examples=1000, deadline=None)
@given(size=st.integers(0, 8**11 - 1), changes=st.lists(st.tuples(st.integers(100, 155), FIELD_BYTES), max_size=4),
       fix=st.booleans())
def test_header_number_fields_read_as_tarfile_reads_them(size, changes, fix):
    """Bytes 100-156 (mode, uid, gid, size, mtime, checksum) of a header as tarfile writes it, a
    few bytes changed, the checksum fixed up or not: the lean reader takes the size tarfile
    takes, or declines where tarfile refuses (or reads a negative or base-256 size)."""
    from memdiag.tarheaders import Reader

    info = tarfile.TarInfo("proc/meminfo")
    info.size = size
    head = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    for at, byte in changes:
        head[at] = byte
    numbers = head[100:156]
    if fix:
        fix_checksum(head, 0)
    try:
        expected = tarfile.TarInfo.frombuf(bytes(head), "utf-8", "surrogateescape").size
    except tarfile.HeaderError:
        expected = None
    try:
        got = Reader(io.BytesIO(), "tar")._header(bytes(head))[2]
    except Unsure:
        got = None
    assert got == expected or (got is None and (expected < 0 or numbers[24] >= 0o200))


def long_name_header(size_field: bytes) -> bytes:
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = tarfile.GNUTYPE_LONGNAME, 10
    head = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    head[124:136] = size_field
    fix_checksum(head, 0)
    return bytes(head)


@pytest.mark.parametrize("case", ["huge long name", "endless long names"])
def test_headers_asking_for_the_impossible_are_damage(tmp_path, case):
    """A long-name header claiming 2**63 bytes, or thousands of them in a row, made tarfile raise
    what index and extract did not catch (a traceback); now a one-line refusal, from both."""
    member = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT) + bytes(1024)
    if case == "huge long name":
        raw = long_name_header(b"\x80\0\0\0" + (2**63).to_bytes(8, "big")) + member
    else:
        raw = (long_name_header(b"%011o\0" % 10) + b"n" * 10 + bytes(502)) * 3000 + member
    path = tmp_path / "odd.tar.gz"
    path.write_bytes(compress(raw, "gz"))
    messages = []
    for read in (index, archive.extract):
        with pytest.raises(InputError, match="damaged or truncated archive") as err:
            read(str(path), str(tmp_path))
        messages.append(str(err.value))
        assert "\n" not in messages[-1]
    assert messages[0] == messages[1]
    assert outcome("lean", str(path)) == "unsure"
