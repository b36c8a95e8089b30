"""psi and oom - is the host short of memory now, and has the OOM killer struck.

PSI (/proc/pressure/memory, 4.20+) is the share of wall time tasks spent stalled waiting for
memory. OOM kills come from /proc/vmstat ``oom_kill`` (4.13+, via the vmstat source) and from the
kernel log, but only from a log that is already written down: a captured ``dmesg`` or a readable
/var/log file. /dev/kmsg is never read - it blocks, and memdiag runs on hosts in trouble.
"""

from __future__ import annotations

import re

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import digits, note, quiet_text

PSI = "proc/pressure/memory"
LOGS = ("var/log/kern.log", "var/log/messages", "var/log/syslog")
LOG_LIMIT = 64 * 1024 * 1024
VICTIMS = 10


def _psi_specs():
    for kind, meaning in (("some", "at least one task"), ("full", "all non-idle tasks at once")):
        for window in ("10", "60", "300"):
            yield spec(f"psi.memory_{kind}_avg{window}", "ratio",
                       f"Share of the last {window} s in which {meaning} stalled waiting for memory "
                       f"(reclaim, refaults, swap-in): /proc/pressure/memory `{kind}` avg{window}, "
                       "as a fraction of 1.", since="4.20")
        yield spec(f"psi.memory_{kind}_total_seconds", "seconds",
                   f"Total time since boot {meaning} stalled on memory (`{kind}` total).", since="4.20")


PSI_FACTS = tuple(_psi_specs())

OOM_FACTS = (
    spec("oom.kills", "count", "Processes killed by the OOM killer since boot (/proc/vmstat oom_kill).",
         unit="processes", since="4.13"),
    spec("oom.log_kills", "count",
         "OOM kills found in the kernel log that was available (captured dmesg or /var/log); "
         "0 when the log was read and holds none.", unit="processes"),
    spec("oom.memcg_kills", "count",
         "Of oom.log_kills, those where a cgroup hit its own limit (CONSTRAINT_MEMCG / `Memory "
         "cgroup out of memory`), not the whole host.", unit="processes"),
    spec("oom.victims", "table",
         f"The last {VICTIMS} OOM kills in the log: pid, process, anon_rss_bytes, file_rss_bytes, "
         "shmem_rss_bytes, memcg (bool), uptime_seconds (kernel time stamp, when printed)."),
    spec("oom.last_victim", "str", "Process name of the most recent OOM kill in the log."),
    spec("oom.last_kill_age_seconds", "seconds",
         "How long before the capture the last logged OOM kill happened (dmesg time stamp vs "
         "/proc/uptime; only for a dmesg taken with the rest of the evidence)."),
    spec("oom.log_source", "str", "Which log the OOM facts were read from."),
)


class PsiSource(Source):
    name = "psi"
    facts = PSI_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        try:
            raw = ev.read_text(PSI)
        except Unreadable as exc:
            if "not supported" in exc.message.lower():
                out.problem(self.name, "pressure stall information is disabled in this kernel "
                            "(boot with psi=1 to enable it)", exc.path or "", "unreadable")
            else:
                note(out, self.name, exc, root_only=False)
            return
        if raw is None:
            return
        origin = ev.origin(PSI)
        parsed = parse_psi(raw)
        if not parsed:
            out.problem(self.name, "no some/full lines found", origin, "malformed")
        for kind, values in parsed.items():
            for key, value in values.items():
                if key == "total":
                    out.set(f"psi.memory_{kind}_total_seconds", value / 1e6, origin)
                else:
                    out.set(f"psi.memory_{kind}_{key}", value / 100.0, origin)


def parse_psi(raw: str) -> dict[str, dict[str, float]]:
    """``some avg10=0.12 avg60=... total=N`` lines -> {"some": {"avg10": 0.12, ..., "total": N}}."""
    result: dict[str, dict[str, float]] = {}
    for line in raw.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        values = {}
        for item in parts[1:]:
            key, _, value = item.partition("=")
            try:
                values[key] = float(value)
            except ValueError:
                continue
        result[parts[0]] = values
    return result


# "Killed process PID (comm) total-vm:..." (RHEL 6: "Killed process PID, UID N, (comm) ..."); the
# name may itself hold parentheses, e.g. "((resolved))"
_KILLED = re.compile(
    r"(?:^|\]|: )\s*(?P<memcg>Memory cgroup out of memory: )?(?:Out of memory: )?Killed process "
    r"(?P<pid>[0-9]{1,10})(?:, UID [0-9]+,)? \((?P<comm>.*?)\)(?= total-vm| score|,|\s*$)(?P<rest>.*)")
_RSS = re.compile(r"(anon|file|shmem)-rss:([0-9]+)kB")
_STAMP = re.compile(r"\[\s*([0-9]{1,12}\.[0-9]{1,9})\]")
_CONSTRAINT = re.compile(r"oom-kill:constraint=(\w+).*?,pid=([0-9]+)")


class OomSource(Source):
    name = "oom"
    after = ("vmstat",)
    facts = OOM_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        kills = out.get("vmstat.oom_kill")
        if isinstance(kills, int):
            out.set("oom.kills", kills, out.origin("vmstat.oom_kill") or "vmstat")
        captured = ev.command("dmesg")
        if captured is not None:
            self._scan(captured.text.splitlines(), captured.origin, "dmesg", ev, out)
            return
        for rel in LOGS:
            try:
                lines = ev.lines(rel, limit=LOG_LIMIT)
                if lines is None:
                    continue
                self._scan(lines, ev.origin(rel), rel, ev, out)
            except Unreadable as exc:
                note(out, self.name, exc, root_only=False)
                continue
            return

    def _scan(self, lines, origin: str, label: str, ev: Evidence, out: FactSet) -> None:
        victims: list[dict] = []
        memcg_pids: set[str] = set()
        total = memcg = 0
        for line in lines:
            if "oom-kill:constraint=" in line:
                c = _CONSTRAINT.search(line)
                if c and c.group(1) == "CONSTRAINT_MEMCG":
                    memcg_pids.add(c.group(2))
                continue
            if "Killed process" not in line or "reaped process" in line:
                continue
            m = _KILLED.search(line)
            if m is None:
                continue
            is_memcg = bool(m.group("memcg")) or m.group("pid") in memcg_pids
            row = {"pid": digits(m.group("pid")), "process": m.group("comm"), "memcg": is_memcg}
            for kind, kb in _RSS.findall(m.group("rest")):
                if digits(kb) is not None:
                    row[f"{kind}_rss_bytes"] = digits(kb) * 1024
            stamp = _STAMP.search(line[: m.start("pid")])
            if stamp:
                row["uptime_seconds"] = float(stamp.group(1))
            total += 1
            memcg += is_memcg
            victims.append(row)
            del victims[:-VICTIMS]
        out.set("oom.log_source", label, origin)
        out.set("oom.log_kills", total, origin)
        out.set("oom.memcg_kills", memcg, origin)
        if victims:
            out.set("oom.victims", victims, origin)
            out.set("oom.last_victim", victims[-1]["process"], origin)
            last = victims[-1].get("uptime_seconds")
            uptime = quiet_text(ev, "proc/uptime") if label == "dmesg" else None
            if last is not None and uptime and uptime.split():
                try:
                    age = float(uptime.split()[0]) - last
                except ValueError:
                    age = -1.0
                if age >= 0:
                    out.set("oom.last_kill_age_seconds", age, "derived: dmesg time stamp vs /proc/uptime")


@hookimpl
def memdiag_fact_sources(register):
    register(PsiSource())
    register(OomSource())
