"""sosreports: sos's own layout (``proc/``, ``sys/``, ``sos_commands/PLUGIN/COMMAND``).

Files sos copies keep their host paths, so sources read them as they read a capture. Command
outputs live under ``sos_commands/`` with the command line as the file name; the candidates
below were checked against sos's plugins (memory, kernel, process, host, date; sos 3.x to 4.x)
and a report made by sos 4.0 on Debian 12. Older sos versions (RHEL 6/7, sos 3.x) put hostname
and date under ``sos_commands/general/``.
"""

from __future__ import annotations

import calendar
import functools
import os
import time
from typing import TYPE_CHECKING, Callable

from memdiag.archive import Loop, Outside
from memdiag.plugins.inputs._evidence import ArchiveEvidence, OfflineEvidence

if TYPE_CHECKING:
    from memdiag.archive import Tree

#: command name -> candidate files, first present wins
COMMANDS: dict[str, list[str]] = {
    "free": ["sos_commands/memory/free", "free"],
    "ps": [
        "sos_commands/process/ps_auxwww",
        "sos_commands/process/ps_auxwwwm",
        "sos_commands/process/ps_alxwww",
        "ps",
    ],
    "lsmod": ["sos_commands/kernel/lsmod", "lsmod"],
    "uname": ["sos_commands/kernel/uname_-a", "uname"],
    "dmesg": ["sos_commands/kernel/dmesg", "var/log/dmesg"],
    "slabtop": ["sos_commands/memory/slabtop_-o"],
    "sysctl": ["sos_commands/kernel/sysctl_-a"],
    "df": ["sos_commands/filesys/df_-al_-x_autofs", "sos_commands/filesys/df_-al", "df"],
    # only the old kvm plugin's topOutput option ever ran top
    "top": ["sos_commands/kvm/top_-b_-d_1_-n_5"],
}

_HOSTNAME = ["sos_commands/host/hostname", "sos_commands/general/hostname", "hostname", "etc/hostname"]
_DATE_UTC = ["sos_commands/date/date_--utc", "sos_commands/general/date_--utc"]
_DATE = ["sos_commands/date/date", "sos_commands/general/date", "date"]
_MARKERS = ("sos_commands", "sos_reports", "sos_logs")


def is_sosreport(folder: str) -> bool:
    return any(os.path.isdir(os.path.join(folder, m)) for m in _MARKERS)


Head = Callable[[str], "bytes | None"]


def _disk_head(folder: str) -> Head:
    """First bytes of a regular file under ``folder`` (links only inside it), or None."""
    real = os.path.realpath(folder)

    def head(rel: str) -> bytes | None:
        path = os.path.realpath(os.path.join(folder, rel))
        if not path.startswith(real + os.sep) or not os.path.isfile(path):
            return None
        try:
            with open(path, "rb") as f:
                return f.read(4096)
        except OSError:
            return None

    return head


def _first_line(folder: "str | Head", candidates: list[str]) -> str | None:
    head = _disk_head(folder) if isinstance(folder, str) else folder
    for rel in candidates:
        data = head(rel)
        if data is None:
            continue
        line = data.decode("utf-8", "replace").strip().splitlines()
        if line and line[0].strip():
            return line[0].strip()
    return None


def capture_time(folder: "str | Head") -> float | None:
    """When sos ran, from its ``date`` outputs; only a UTC stamp is trusted (no zone database)."""
    for candidates in (_DATE_UTC, _DATE):
        line = _first_line(folder, candidates)
        if line and " UTC " in line:
            try:
                return float(calendar.timegm(time.strptime(line, "%a %b %d %H:%M:%S UTC %Y")))
            except ValueError:
                continue
    return None


def hostname(folder: "str | Head") -> str | None:
    line = _first_line(folder, _HOSTNAME)
    if line and " " not in line and "not found" not in line:
        return line
    uname = _first_line(folder, COMMANDS["uname"])
    if uname and uname.startswith("Linux "):
        return uname.split()[1]
    return None


def open_sosreport(folder: str, *, label: str, shown_as: str | None = None) -> OfflineEvidence:
    return OfflineEvidence(
        folder,
        kind="sosreport",
        label=label,
        shown_as=shown_as,
        host=hostname(folder),
        captured_at=capture_time(folder),
        commands=COMMANDS,
    )


def is_sosreport_in(tree: Tree, top: str) -> bool:
    """Whether folder ``top`` of an indexed archive is in sos's layout."""
    for marker in _MARKERS:
        try:
            hit = tree.lookup(marker, top)
        except (Outside, Loop):
            continue
        if hit is not None and hit[1][0] == "d":
            return True
    return False


def open_sosreport_in(tree: Tree, top: str, *, label: str, shown_as: str) -> ArchiveEvidence:
    """The sosreport under folder ``top`` of an indexed archive, read in place."""
    ev = ArchiveEvidence(tree, top, kind="sosreport", label=label, shown_as=shown_as, commands=COMMANDS)
    head = functools.partial(ev.head, size=4096)
    ev.host, ev.captured_at = hostname(head), capture_time(head)
    return ev
