"""The memdiag capture format: what ``memdiag collect`` writes and ``memdiag analyze`` reads.

A capture is a ``.tar.gz`` holding one folder, ``memdiag-capture-HOST-YYYYMMDDTHHMMSSZ/``, with
the raw files every source read, at the paths they have on the host (``proc/meminfo``,
``proc/1234/status``, ``sys/kernel/mm/...``), exactly as read, plus ``memdiag-capture.json``
(the first member; the archive's members are its files, the folders implied by their paths)::

    {
      "format": "memdiag-capture", "version": 2,
      "memdiag_version": "0.1.0", "host": "db02", "kernel": "6.1.0-18-amd64",
      "captured_at": 1732550400.0, "captured_at_utc": "2024-11-25T16:00:00Z", "duration_seconds": 1.2,
      "with_cmdlines": false,
      "files": [{"path": "proc/meminfo", "size": 1503}, ...],  # stored as files of their own
      "packed": {"sys/devices/system/memory/memory0/state": "online\n", ...},  # version 2
      "listings": {"proc": ["1", "433", ...]},      # folders the sources listed
      "present": ["sys/module/vmw_balloon"],          # paths whose existence was all that was asked
      "unreadable": [{"path": "proc/slabinfo", "reason": "permission denied", "kind": "permission"}],
      "omitted": [{"path": "proc/1/cmdline", "reason": "process command lines are left out unless --with-cmdlines"}],
      "partial": ["proc/slabinfo"],                   # a source stopped reading early; kept as read
      "redacted": ["proc/1/environ"],                 # only its container= variable kept
      "problems": [{"source": "...", "message": "...", "path": "...", "kind": "..."}],
      "limits": {"max_bytes": 67108864, "timeout_seconds": 60.0}
    }

Reading a capture replays the listings, existence checks and read failures, so sources see what
they saw live. Newer memdiag versions read older captures (that is the point: new rules over old
evidence); a capture whose format ``version`` is newer than this code knows is refused.

Version 2 adds ``packed``: small one-line files kept in the metadata instead of as files of their
own, by their path (:func:`packable` says which texts qualify). A host lists one folder per
hot-pluggable memory block, each with its one-word ``state`` - ~200 folders and files on a 24 GiB
host, thousands on a large one - and those made up half of a capture's archive members and of
the time to analyse one. A packed file reads exactly as the file would (bytes, text, lines,
existence, the listing of its folder), and its origin is the path it would have. A capture
with nothing packed is still written as version 1, which older memdiag reads.
"""

from __future__ import annotations

import os

from memdiag.errors import InputError
from memdiag.evidence import Captured
from memdiag.plugins.inputs import CAPTURE_META, is_capture  # noqa: F401 - capture.is_capture as before
from memdiag.plugins.inputs._evidence import ArchiveEvidence, OfflineEvidence

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from memdiag.archive import Tree

META = CAPTURE_META
FORMAT = "memdiag-capture"
#: The newest format version this code reads (and writes when anything is packed).
VERSION = 2
#: The version of a capture without packed files (readable by memdiag before version 2).
UNPACKED_VERSION = 1
#: Largest metadata file accepted (a capture of a host with 100k processes lists them all).
META_LIMIT = 64 * 1024 * 1024
#: Largest file kept packed in the metadata.
PACK_LIMIT = 256
#: Bytes a packed file may hold: printable ASCII, tab and newline. Then str.splitlines() (how
#: Evidence hands out lines of text held in memory) splits exactly as a streamed file does.
_PACK_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n"


def packable(data: bytes) -> bool:
    """Whether a file's bytes may be packed into the metadata (and read back identically)."""
    return len(data) <= PACK_LIMIT and not data.translate(None, _PACK_BYTES)


def load_meta(folder: str) -> dict:
    """The capture's metadata, checked enough that reading it cannot fail later."""
    path = os.path.join(folder, META)
    try:
        if os.path.getsize(path) > META_LIMIT:
            raise InputError(f"larger than {META_LIMIT // 1048576} MiB; not a memdiag capture's metadata", path=path)
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read capture metadata: {exc}", path=path) from None
    return parse_meta(data, path)


def parse_meta(data: bytes, path: str) -> dict:
    """Metadata bytes -> the checked dict; errors name ``path``."""
    import json  # only a capture needs it: every folder analysed asks whether it is one

    try:
        meta = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read capture metadata: {exc}", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"capture metadata is not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"not memdiag capture metadata (no \"format\": \"{FORMAT}\")", path=path)
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"capture format version {version!r} is not valid", path=path)
    if version > VERSION:
        raise InputError(
            f"capture format version {version} is newer than this memdiag reads ({VERSION}); upgrade memdiag",
            path=path,
        )
    return meta


def _strings(value) -> list[str]:
    if not isinstance(value, list):
        return []
    if set(map(type, value)) <= {str}:  # as memdiag writes them: no need to look at each
        return value
    return [v for v in value if isinstance(v, str)]


def open_capture(folder: str, *, label: str, shown_as: str | None = None) -> OfflineEvidence:
    # a packed file's origin is the path it would have; OfflineEvidence shows it as shown_as + rel
    base = os.path.join(os.path.abspath(folder), "")
    return OfflineEvidence(folder, kind="capture", label=label, shown_as=shown_as, **_replay(load_meta(folder), base))


def open_capture_in(tree: Tree, top: str, *, label: str, shown_as: str) -> ArchiveEvidence | None:
    """The capture under folder ``top`` of an indexed archive, read in place; None when that
    folder holds no capture metadata."""
    hit = tree.lookup(META, top)
    if hit is None or hit[1][0] != "f":
        return None
    path = shown_as + META
    if hit[1][2] > META_LIMIT:
        raise InputError(f"larger than {META_LIMIT // 1048576} MiB; not a memdiag capture's metadata", path=path)
    meta = parse_meta(tree.read(hit[1]), path)
    return ArchiveEvidence(tree, top, kind="capture", label=label, shown_as=shown_as, **_replay(meta, shown_as))


def _replay(meta: dict, origin_base: str) -> dict:
    """The evidence's keyword arguments a capture's metadata gives; packed files' origins are
    ``origin_base`` + their path."""
    listings = {
        k: _strings(v) for k, v in (meta.get("listings") or {}).items() if isinstance(k, str)
    } if isinstance(meta.get("listings"), dict) else {}
    present = set(_strings(meta.get("present")))
    unreadable: dict[str, tuple[str, str]] = {}
    for item in meta.get("unreadable") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            unreadable[item["path"]] = (str(item.get("reason", "could not be read")), str(item.get("kind", "unreadable")))
    overlay = _unpack(meta.get("packed"), origin_base, listings, present, unreadable)
    captured_at = meta.get("captured_at")
    return dict(
        host=meta.get("host") if isinstance(meta.get("host"), str) else None,
        captured_at=float(captured_at) if isinstance(captured_at, (int, float)) else None,
        listings=listings,
        present=present,
        unreadable=unreadable,
        overlay=overlay,
        metadata={"capture": {k: meta.get(k) for k in ("memdiag_version", "kernel", "captured_at_utc",
                                                          "with_cmdlines", "version")}},
    )


#: What reading a folder as a file answers (the refusal of the folder on disk, or in an archive).
_FOLDER = ("not a regular file (FIFO, device or socket); refused", "malformed")


def _unpack(packed: object, origin_base: str, listings: dict[str, list[str]], present: set[str],
            unreadable: dict[str, tuple[str, str]]) -> dict[str, Captured]:
    """Packed files as overlay texts; the folders that held them exist, list them and refuse to
    be read as files, as the unpacked capture's folders do. Entries memdiag would not have
    packed (a path that is not plain, text that is not small printable ASCII) are ignored, as
    malformed listings are."""
    if not isinstance(packed, dict) or not packed:
        return {}
    if not _texts_valid(packed):  # not as memdiag writes them: keep the entries that are
        packed = {rel: text for rel, text in packed.items() if _texts_valid({rel: text})}
    folders: dict[str, set[str]] = {}  # folder -> the names it holds
    for rel in packed:
        folder, _, leaf = rel.rpartition("/")
        if leaf in _NOT_NAMES or rel[0] == "/":
            break
        names = folders.get(folder)
        if names is not None:
            names.add(leaf)
            continue
        folders[folder] = {leaf}
        while folder:  # a folder first met: it and the ones above exist, each in its parent
            parent, _, name = folder.rpartition("/")
            if name in _NOT_NAMES:
                break
            names = folders.get(parent)
            if names is not None:
                names.add(name)
                break
            folders[parent] = {name}
            folder = parent
        if folder and name in _NOT_NAMES:
            break
    else:
        folders.pop("", None)  # the capture's top holds memdiag-capture.json; it is no listing
        present.update(folders)
        for folder, names in folders.items():
            unreadable.setdefault(folder, _FOLDER)
            recorded = listings.get(folder)
            listings[folder] = list(names.union(recorded) if recorded else names)  # listdir sorts what it hands out
        return {rel: Captured(text, origin_base + rel) for rel, text in packed.items()}
    # a path with an empty, "." or ".." part (or a leading or trailing "/"): not memdiag's
    plain = {rel: text for rel, text in packed.items() if _NOT_NAMES.isdisjoint(rel.split("/"))}
    return _unpack(plain, origin_base, listings, present, unreadable)


#: Path parts no file or folder memdiag packs is named.
_NOT_NAMES = frozenset(("", ".", ".."))


def _texts_valid(packed: dict) -> bool:
    """Whether every entry is text :func:`packable` accepts under a path of text; checked over
    all of them at once (hundreds of entries: a loop over each costs more than reading)."""
    texts = list(packed.values())
    if set(map(type, texts)) != {str} or set(map(type, packed)) != {str}:
        return False
    joined = "".join(texts)
    return joined.isascii() and not joined.encode("ascii").translate(None, _PACK_BYTES) \
        and max(map(len, texts)) <= PACK_LIMIT
