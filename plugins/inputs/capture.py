"""The memdiag capture format: what ``memdiag collect`` writes and ``memdiag analyze`` reads.

A capture is a ``.tar.gz`` holding one folder, ``memdiag-capture-HOST-YYYYMMDDTHHMMSSZ/``, with
the raw files every source read, at the paths they have on the host (``proc/meminfo``,
``proc/1234/status``, ``sys/kernel/mm/...``), exactly as read, plus ``memdiag-capture.json``::

    {
      "format": "memdiag-capture", "version": 1,
      "memdiag_version": "0.1.0", "host": "db02", "kernel": "6.1.0-18-amd64",
      "captured_at": 1732550400.0, "captured_at_utc": "2024-11-25T16:00:00Z", "duration_seconds": 1.2,
      "with_cmdlines": false,
      "files": [{"path": "proc/meminfo", "size": 1503}, ...],
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
"""

from __future__ import annotations

import json
import os

from memdiag.errors import InputError
from memdiag.plugins.inputs._evidence import ArchiveEvidence, OfflineEvidence

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from memdiag.archive import Tree

META = "memdiag-capture.json"
FORMAT = "memdiag-capture"
VERSION = 1
#: Largest metadata file accepted (a capture of a host with 100k processes lists them all).
META_LIMIT = 64 * 1024 * 1024


def is_capture(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, META))


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
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def open_capture(folder: str, *, label: str, shown_as: str | None = None) -> OfflineEvidence:
    return OfflineEvidence(folder, kind="capture", label=label, shown_as=shown_as, **_replay(load_meta(folder)))


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
    return ArchiveEvidence(tree, top, kind="capture", label=label, shown_as=shown_as, **_replay(meta))


def _replay(meta: dict) -> dict:
    """The evidence's keyword arguments a capture's metadata gives."""
    listings = {
        k: _strings(v) for k, v in (meta.get("listings") or {}).items() if isinstance(k, str)
    } if isinstance(meta.get("listings"), dict) else {}
    unreadable: dict[str, tuple[str, str]] = {}
    for item in meta.get("unreadable") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            unreadable[item["path"]] = (str(item.get("reason", "could not be read")), str(item.get("kind", "unreadable")))
    captured_at = meta.get("captured_at")
    return dict(
        host=meta.get("host") if isinstance(meta.get("host"), str) else None,
        captured_at=float(captured_at) if isinstance(captured_at, (int, float)) else None,
        listings=listings,
        present=set(_strings(meta.get("present"))),
        unreadable=unreadable,
        metadata={"capture": {k: meta.get(k) for k in ("memdiag_version", "kernel", "captured_at_utc",
                                                          "with_cmdlines", "version")}},
    )
