"""Folders of loose command outputs, and single files with outputs pasted into them.

Each file is recognised by content (:mod:`memdiag.recognize`), whatever its name; the outputs
found become the evidence's overlay, keyed like the files and commands sources ask for. A folder
may also hold a ``proc/``/``sys/`` tree copied from a host; what its loose files provide is then
only used where the tree has nothing. Files that hold nothing known, binary files, duplicates and
links are listed in ``metadata["unrecognised"]`` as (origin, reason), which the diagnosis turns
into problems naming each file, and never stop the others from being read.
"""

from __future__ import annotations

import os

from memdiag.errors import InputError
from memdiag.evidence import Captured, Unreadable
from memdiag.plugins.inputs import TREES
from memdiag.plugins.inputs._evidence import OfflineEvidence
from memdiag.recognize import LABELS, TEXT_LIMIT, Recognition, read_text_data, split

#: A folder walk stops after this many files (a loose folder is a ticket's attachments, not a disk).
MAX_FILES = 500
MAX_DEPTH = 3


def _walk(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Regular files under ``folder`` (sorted, bounded) and notes on what was passed over."""
    files: list[str] = []
    notes: list[tuple[str, str]] = []
    for top, dirs, names in os.walk(folder):
        rel_top = os.path.relpath(top, folder)
        depth = 0 if rel_top == "." else rel_top.count(os.sep) + 1
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and not (depth == 0 and d in TREES) and depth < MAX_DEPTH
            and not os.path.islink(os.path.join(top, d))
        )
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = os.path.join(top, name)
            if os.path.islink(path):
                notes.append((path, "a link; links in loose folders are not followed"))
            elif os.path.isfile(path):
                if len(files) >= MAX_FILES:
                    notes.append((folder, f"more than {MAX_FILES} files; the rest were not read"))
                    return files, notes
                files.append(path)
    return files, notes


def recognise(paths: list[str], shown: dict[str, str] | None = None) -> tuple[dict[str, Captured], list[tuple[str, str]], str | None]:
    """Overlay, notes and host name from loose files. ``shown`` maps paths to their display names."""
    overlay: dict[str, Captured] = {}
    notes: list[tuple[str, str]] = []
    host = None
    for path in paths:
        origin = (shown or {}).get(path, path)
        try:
            data = read_text_data(path)  # bytes: a big file is split over line offsets, not copied
        except Unreadable as exc:
            notes.append((origin, f"{exc.message}; skipped"))
            continue
        found: Recognition = split(data, origin)
        del data
        notes.extend(found.unrecognised)
        for chunk in found.chunks:
            if chunk.key in overlay:
                notes.append((chunk.origin, f"another {LABELS[chunk.key]} output; "
                                            f"the one in {overlay[chunk.key].origin} is used"))
                continue
            overlay[chunk.key] = chunk.captured
            if chunk.key == "cmd:uname" and host is None:
                host = _uname_host(chunk.text, chunk.origin)
        host = host or found.prompt_host
    return overlay, notes, host


def _uname_host(text: str, origin: str) -> str | None:
    from memdiag.parsers import ParseError
    from memdiag.parsers.uname import parse_uname

    try:
        return parse_uname(text, origin)[0]
    except ParseError:
        return None


def open_folder(folder: str, *, label: str, shown_as: str | None = None) -> OfflineEvidence:
    """A folder of loose outputs, possibly next to a copied ``proc/``/``sys/`` tree."""
    paths, notes = _walk(folder)
    prefix = shown_as if shown_as is not None else folder.rstrip(os.sep) + os.sep
    shown = {p: prefix + os.path.relpath(p, folder) for p in paths}
    overlay, found_notes, host = recognise(paths, shown)
    notes = [(shown.get(p, p), why) for p, why in notes] + found_notes
    has_tree = any(os.path.isdir(os.path.join(folder, t)) for t in TREES)
    # the copied tree wins over loose outputs of the same file
    overlay = {k: v for k, v in overlay.items()
               if k.startswith("cmd:") or not os.path.lexists(os.path.join(folder, k))}
    if not overlay and not has_tree:
        why = found_notes[0][1].removesuffix("; skipped") if found_notes else "no files" if not paths \
            else "nothing recognised"
        raise InputError(f"no evidence found in {len(paths)} file(s): {why}", path=label)
    return OfflineEvidence(folder, kind="folder", label=label, shown_as=prefix, host=host, overlay=overlay,
                           metadata={"unrecognised": notes})


def open_text_file(path: str, workdir: str, *, label: str) -> OfflineEvidence:
    """A single file of pasted outputs. Its root is an empty private folder, so nothing beside
    the file is ever read by accident."""
    overlay, notes, host = recognise([path], {path: label})
    if not overlay:
        why = notes[0][1].removesuffix("; skipped") if notes else "empty file"
        raise InputError(f"no recognised command output or /proc file: {why}", path=label)
    import tempfile

    root = tempfile.mkdtemp(prefix="pasted-", dir=workdir)
    return OfflineEvidence(root, kind="text", label=label, host=host, overlay=overlay,
                           metadata={"unrecognised": notes})


__all__ = ["open_folder", "open_text_file", "recognise", "TEXT_LIMIT"]
