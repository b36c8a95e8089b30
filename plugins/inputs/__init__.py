"""Built-in input openers: memdiag captures, sosreports, loose folders and pasted text.

``memdiag analyze PATH`` hands each path to the openers registered here, in this order:

1. ``archive``: a tar archive (by content: gzip, xz, bzip2 or plain tar), safely unpacked into
   the caller's work folder, then read as whichever of the folders below it holds;
2. ``memdiag-capture``: a folder with ``memdiag-capture.json``;
3. ``sosreport``: a folder in sos's layout;
4. ``loose-folder``: any other folder, its files recognised by content;
5. ``pasted-text``: any other file, split into the outputs pasted into it.

A folder holding exactly one folder (an unpacked archive's top level) is read as that folder;
:func:`expand` turns a folder of several captures or sosreports into one input each.
"""

from __future__ import annotations

import os

from memdiag.evidence import Evidence
from memdiag.hookspecs import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable

    Workdir = str | Callable[[], str]

#: Folders that hold a host's tree rather than loose outputs (sources read them by path).
TREES = frozenset({"proc", "sys", "etc", "run"})
#: The file that makes a folder a memdiag capture (its metadata).
CAPTURE_META = "memdiag-capture.json"


def is_capture(folder: str) -> bool:
    """Whether ``folder`` is a memdiag capture: told here, so that a sosreport or loose folder
    never imports the capture reader."""
    return os.path.isfile(os.path.join(folder, CAPTURE_META))


def _workdir(workdir: Workdir) -> str:
    """The work folder; ``workdir`` may be the function that makes it, called only now that it is
    needed (:func:`memdiag.pipeline.open_input` passes one to openers marked ``lazy_workdir``)."""
    return workdir if isinstance(workdir, str) else workdir()


def _lazy(opener):
    """Mark a built-in opener that takes the function making its work folder instead of the folder
    and makes it only when it writes something: a folder is read in place, so analysing one
    makes no temporary folder."""
    opener.lazy_workdir = True
    return opener


def _inner(folder: str) -> str:
    """The folder itself, or its single sub-folder when that is all it holds (an unpacked
    archive's top level) - unless that sub-folder is part of a host's tree, like ``proc/``."""
    try:
        entries = [e for e in os.listdir(folder) if not e.startswith(".")]
    except OSError:
        return folder
    if len(entries) == 1 and entries[0] not in TREES:
        only = os.path.join(folder, entries[0])
        if os.path.isdir(only) and not os.path.islink(only):
            return only
    return folder


def _open_tree(folder: str, *, label: str, shown_as: str | None) -> Evidence:
    if is_capture(folder):
        from memdiag.plugins.inputs import capture

        return capture.open_capture(folder, label=label, shown_as=shown_as)
    from memdiag.plugins.inputs import sosreport

    if sosreport.is_sosreport(folder):
        return sosreport.open_sosreport(folder, label=label, shown_as=shown_as)
    from memdiag.plugins.inputs import loose  # the recogniser: only loose outputs need it

    return loose.open_folder(folder, label=label, shown_as=shown_as)


def _inner_of(tree) -> str:
    """:func:`_inner` for an indexed archive: its single top folder, or "" (the root)."""
    entries = [e for e in tree.children.get("", ()) if not e.startswith(".")]
    if len(entries) == 1 and entries[0] not in TREES and tree.entries[entries[0]][0] == "d":
        return entries[0]
    return ""


@_lazy
def open_archive(path: str, workdir: Workdir) -> Evidence | None:
    """A capture or sosreport archive is read in place, from an in-memory index of its members
    (extracting ~400 small files to disk and removing them was most of the cost of one), with no
    work folder unless its contents are too large to hold in memory; any other archive (loose
    files, recognised by content) is extracted into ``workdir``."""
    if not os.path.isfile(path):  # a folder: read in place, memdiag.archive is not even imported
        return None
    from memdiag import archive
    from memdiag.plugins.inputs import capture, sosreport

    if not archive.is_archive(path):
        return None
    tree = archive.index(path, workdir)  # a work folder only if the contents spill out of memory
    top = _inner_of(tree)
    shown_as = f"{path}:" + (top + "/" if top else "")
    try:
        ev = capture.open_capture_in(tree, top, label=path, shown_as=shown_as)
    except (archive.Outside, archive.Loop):
        ev = None
    if ev is None and sosreport.is_sosreport_in(tree, top):
        ev = sosreport.open_sosreport_in(tree, top, label=path, shown_as=shown_as)
    if ev is not None:
        return ev
    tree.store.close()
    dest = archive.extract(path, _workdir(workdir))
    root = _inner(dest)
    top = os.path.relpath(root, dest)
    shown_as = f"{path}:" + ("" if top == "." else top + "/")
    return _open_tree(root, label=path, shown_as=shown_as)


def _folder_opener(kind: str):
    @_lazy
    def opener(path: str, workdir: Workdir) -> Evidence | None:
        if not os.path.isdir(path):
            return None
        root = _inner(path)
        if kind == "capture" and not is_capture(root):
            return None
        if kind == "sosreport":
            from memdiag.plugins.inputs import sosreport

            if not sosreport.is_sosreport(root):
                return None
        shown_as = root.rstrip(os.sep) + os.sep
        return _open_tree(root, label=path, shown_as=shown_as)

    opener.__name__ = f"open_{kind}_folder"
    return opener


@_lazy
def open_pasted(path: str, workdir: Workdir) -> Evidence | None:
    from memdiag.plugins.inputs import loose

    if not os.path.isfile(path):
        return None
    return loose.open_text_file(path, _workdir(workdir), label=path)


def expand(path: str) -> list[str]:
    """The inputs ``path`` stands for: itself, or, for a folder of several captures or sosreports
    (archived or unpacked) and nothing else to read, each of them in name order."""
    from memdiag.plugins.inputs import sosreport

    if not os.path.isdir(path):
        return [path]
    root = _inner(path)
    if is_capture(root) or sosreport.is_sosreport(root) or os.path.isdir(os.path.join(root, "proc")):
        return [path]
    try:
        names = sorted(n for n in os.listdir(root) if not n.startswith("."))
    except OSError:
        return [path]
    found = []
    for name in names:
        child = os.path.join(root, name)
        if os.path.islink(child):
            return [path]
        if os.path.isdir(child):
            inner = _inner(child)
            if not (is_capture(inner) or sosreport.is_sosreport(inner)):
                return [path]
        else:
            from memdiag import archive

            if not archive.is_archive(child):
                return [path]
        found.append(child)
    return found if len(found) >= 2 else [path]


@hookimpl
def memdiag_inputs(register):
    register("archive", open_archive)
    register("memdiag-capture", _folder_opener("capture"))
    register("sosreport", _folder_opener("sosreport"))
    register("loose-folder", _folder_opener("loose"))
    register("pasted-text", open_pasted)
