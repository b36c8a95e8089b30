"""Evidence read from something other than the live host, shown by the names people know.

Archives are unpacked into a temporary folder, so the paths memdiag reads are not the paths a
report should print: ``/tmp/memdiag-x1/extract-y2/sosreport-db02/proc/meminfo`` is shown as
``sosreport-db02.tar.xz:proc/meminfo``. A memdiag capture also replays what its collection saw
but could not store: directory listings, files that only had to exist, and files that could not
be read (with the original reason), so a capture is diagnosed exactly like the live run was.
"""

from __future__ import annotations

import os
from time import monotonic

from memdiag.bounded import Abandoned
from memdiag.evidence import READ_LIMIT, Captured, Evidence, Unreadable, stream_lines

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Iterable, Iterator

    from memdiag.archive import Tree


class OfflineEvidence(Evidence):
    """An :class:`Evidence` whose origins are shown under ``shown_as`` (an archive or folder name)."""

    def __init__(
        self,
        root: str,
        *,
        shown_as: str | None = None,
        listings: dict[str, list[str]] | None = None,
        present: set[str] | None = None,
        unreadable: dict[str, tuple[str, str]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root, **kwargs)
        #: what origins start with instead of the (temporary) root: ``a.tar.xz:sosreport-x/``
        self.shown_as = shown_as
        self._listings = listings or {}
        self._present = present or set()
        self._unreadable = unreadable or {}

    # -- names -------------------------------------------------------------------------------

    def shown(self, path: str) -> str:
        """``path`` under the root, as a person would find it in the original input."""
        if self.shown_as is None:
            return path
        if path == self.root:
            return self.shown_as.rstrip("/")
        root = self.root.rstrip(os.sep) + os.sep
        return self.shown_as + path[len(root):] if path.startswith(root) else path

    def origin(self, rel: str) -> str:
        origin = super().origin(rel)
        return self.shown(origin) if not rel.startswith("cmd:") else origin

    def reading(self, thread_id: int) -> str | None:
        path = super().reading(thread_id)
        return None if path is None else self.shown(path)

    def _renamed(self, exc: Unreadable) -> Unreadable:
        return Unreadable(self.shown(exc.path or ""), exc.message, exc.kind)

    # -- replay of what a capture could not store -------------------------------------------

    def _replayed(self, rel: str) -> None:
        hit = self._unreadable.get(rel)
        if hit is not None:
            message, kind = hit
            raise Unreadable(self.origin(rel), message, kind)

    def exists(self, rel: str) -> bool:
        return rel in self._present or rel in self._unreadable or super().exists(rel)

    def listdir(self, rel: str) -> list[str]:
        try:
            names = super().listdir(rel)
        except Unreadable as exc:
            raise self._renamed(exc) from None
        recorded = self._listings.get(rel.rstrip("/"))
        if recorded is None:
            return names
        return sorted(set(names) | set(recorded))

    def read_bytes(self, rel: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
        if rel in self._unreadable:
            self._replayed(rel)
        try:
            return super().read_bytes(rel, limit)
        except Unreadable as exc:
            raise self._renamed(exc) from None

    def read_each(self, rels: Iterable[str], limit: int = READ_LIMIT) -> Iterator[tuple[str, bytes | Unreadable | None]]:
        # a capture's packed files (hundreds of memory-block states) are answered here, as
        # read_bytes answers them: a replayed failure first, then the stood-in text
        if type(self).read_bytes is not OfflineEvidence.read_bytes:  # a subclass sees each read
            yield from super().read_each(rels, limit)
            return
        overlay, unreadable = self._overlay, self._unreadable
        for rel in rels:
            hit = overlay.get(rel)
            if hit is not None and rel not in unreadable:
                yield rel, hit.text.encode()
                continue
            try:
                yield rel, self.read_bytes(rel, limit)
            except Unreadable as exc:
                yield rel, exc

    def lines(self, rel: str, limit: int = 1 << 30) -> Iterator[str] | None:
        self._replayed(rel)
        try:
            return super().lines(rel, limit)  # errors while streaming name origin(rel) already
        except Unreadable as exc:
            raise self._renamed(exc) from None

    def command(self, name: str) -> Captured | None:
        try:
            return super().command(name)
        except Unreadable as exc:
            raise self._renamed(exc) from None

    def command_lines(self, name: str) -> tuple[Iterator[str], str] | None:
        try:
            return super().command_lines(name)
        except Unreadable as exc:
            raise self._renamed(exc) from None


class _TreeReads(Evidence):
    """Reads served from an archive's in-memory index (:class:`memdiag.archive.Tree`) under
    folder ``top``, instead of from an extracted copy; answers as the folder would."""

    tree: "Tree"
    top: str
    shown_as: str | None

    def origin(self, rel: str) -> str:
        hit = self._overlay.get(rel)
        if hit is not None:
            return hit.origin
        if rel.startswith("/"):  # named as the folder would: an absolute path is itself
            return rel
        return (self.shown_as or "") + rel

    def _lookup(self, rel: str, follow: bool = True):
        """(name, entry) or None; Unreadable when ``rel`` leads out or loops; Abandoned when the
        source reading is past its time (every read of the tree comes through here)."""
        due = self.due
        if due is not None and monotonic() > due:
            raise Abandoned(self.origin(rel))
        try:
            return self.tree.lookup(rel, self.top, follow)
        except Exception as exc:
            # imported only here: an import statement on every read cost ~1 us of each
            from memdiag.archive import Loop, Outside

            if isinstance(exc, Outside):
                raise Unreadable(self.origin(rel), "link leads outside the snapshot", "malformed") from None
            if isinstance(exc, Loop):
                raise Unreadable(self.origin(rel), "Too many levels of symbolic links") from None
            raise

    def exists(self, rel: str) -> bool:
        if rel in self._overlay:
            return True
        try:
            hit = self._lookup(rel, follow=False)
        except Unreadable:
            return False
        if hit is None:
            return False
        entry = hit[1]
        if entry[0] != "l":
            return True
        top = self.top  # a link counts when it points inside the snapshot, even dangling
        return not top or entry[1] == top or entry[1].startswith(top + "/")

    def listdir(self, rel: str) -> list[str]:
        try:
            hit = self._lookup(rel)
        except Unreadable:
            return []
        if hit is None or hit[1][0] != "d":
            return []
        return list(self.tree.children.get(hit[0], ()))

    def _file(self, rel: str) -> tuple | None:
        hit = self._lookup(rel)
        if hit is None:
            return None
        entry = hit[1]
        if entry[0] != "f":
            raise Unreadable(self.origin(rel), "not a regular file (FIFO, device or socket); refused", "malformed")
        return entry

    def read_bytes(self, rel: str, limit: int = READ_LIMIT) -> bytes | None:
        hit = self._overlay.get(rel)
        if hit is not None:
            return hit.text.encode()
        entry = self._file(rel)
        if entry is None:
            return None
        if entry[2] > limit:
            raise Unreadable(self.origin(rel), f"larger than the {limit // 1048576} MiB read limit", "malformed")
        return self.tree.read(entry)

    def lines(self, rel: str, limit: int = 1 << 30) -> Iterator[str] | None:
        hit = self._overlay.get(rel)
        if hit is not None:
            return iter(hit.text.splitlines())
        entry = self._file(rel)
        if entry is None:
            return None
        store, start, end = self.tree.store, entry[1], entry[1] + entry[2]
        pos = [start]

        def read() -> bytes:
            n = min(1 << 16, end - pos[0])
            if n <= 0:
                return b""
            due = self.due
            if due is not None and monotonic() > due:
                raise Abandoned(shown)
            data = store.read(pos[0], n)
            pos[0] += len(data)
            return data

        shown = self.origin(rel)
        return stream_lines(read, lambda: None, shown, limit, self._reading, shown)


class ArchiveEvidence(OfflineEvidence, _TreeReads):
    """A capture or sosreport read straight out of its archive (see :func:`memdiag.archive.index`):
    origins read ``archive.tar.gz:folder/proc/meminfo``; a capture's replay applies as usual."""

    in_memory = True  # the index holds every member, or spilled it to a private file of its own

    def __init__(self, tree: "Tree", top: str, *, shown_as: str, **kwargs) -> None:
        super().__init__(tree.archive, shown_as=shown_as, **kwargs)
        self.tree = tree
        self.top = top

    def shown(self, path: str) -> str:
        return path  # origins are already shown as the archive names them

    def head(self, rel: str, size: int) -> bytes | None:
        """The first ``size`` bytes of regular file ``rel``, or None (absent, a folder, out)."""
        try:
            hit = self._lookup(rel)
        except Unreadable:
            return None
        if hit is None or hit[1][0] != "f":
            return None
        return self.tree.read(hit[1], size)
