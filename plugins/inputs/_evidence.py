"""Evidence read from something other than the live host, shown by the names people know.

Archives are unpacked into a temporary folder, so the paths memdiag reads are not the paths a
report should print: ``/tmp/memdiag-x1/extract-y2/sosreport-db02/proc/meminfo`` is shown as
``sosreport-db02.tar.xz:proc/meminfo``. A memdiag capture also replays what its collection saw
but could not store: directory listings, files that only had to exist, and files that could not
be read (with the original reason), so a capture is diagnosed exactly like the live run was.
"""

from __future__ import annotations

import os
from typing import Iterator

from memdiag.evidence import Captured, Evidence, Unreadable


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
        self._replayed(rel)
        try:
            return super().read_bytes(rel, limit)
        except Unreadable as exc:
            raise self._renamed(exc) from None

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
