"""pss - proportional and unique set sizes from /proc/PID/smaps_rollup, within a budget.

RSS counts a shared page in every process that maps it; PSS divides it among them, so summed PSS
is what processes really use. But reading smaps_rollup walks the target's page tables under its
mmap lock - on a host in trouble that is not free. So only the largest processes by RSS (as the
process scan ranked them, or from the cheap statm when it did not run) are read, up to a budget in processes and in seconds, and the facts say how much of
all RSS the read ones cover.

Reconciliation: summed over every process, Pss_Anon ~ AnonPages and Pss_File + Pss_Shmem ~ Mapped,
so sum(Pss) ~ AnonPages + Mapped (memory-accounting.md section 5).
"""

from __future__ import annotations

import time

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import PAGE, digits, is_pid, quiet_text
from memdiag.plugins.sources.processes import RANKING, Ranking

TOP = 10
FIELDS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file",
          "Pss_Shmem": "pss_shmem", "Private_Clean": "private_clean",
          "Private_Dirty": "private_dirty", "SwapPss": "swap_pss"}

FACTS = (
    spec("pss.total_bytes", "bytes", "Sum of Pss over the processes read: memory they map, shared pages split among sharers."),
    spec("pss.anon_bytes", "bytes", "Sum of Pss_Anon over the processes read."),
    spec("pss.file_bytes", "bytes", "Sum of Pss_File over the processes read."),
    spec("pss.shmem_bytes", "bytes", "Sum of Pss_Shmem over the processes read."),
    spec("pss.uss_bytes", "bytes",
         "Sum of USS (Private_Clean + Private_Dirty) over the processes read: memory freed if they all exited."),
    spec("pss.swap_pss_bytes", "bytes", "Sum of SwapPss over the processes read: their share of used swap."),
    spec("pss.processes_read", "count", "Processes whose smaps_rollup was read.", unit="processes"),
    spec("pss.processes_total", "count", "Processes with resident memory seen (statm).", unit="processes"),
    spec("pss.denied", "count", "Processes whose smaps_rollup was refused (permission: not root).", unit="processes"),
    spec("pss.rss_coverage_ratio", "ratio", "Share of all processes' RSS held by the processes read."),
    spec("pss.complete", "bool", "Every process with resident memory was read: the sums cover the whole host."),
    spec("pss.top", "table",
         f"The {TOP} processes with the largest PSS: pid, process, pss_bytes, uss_bytes, rss_bytes, swap_pss_bytes."),
    spec("pss.expected_bytes", "bytes",
         "What summed PSS should come to over every process: meminfo AnonPages + Mapped."),
    spec("pss.reconciliation_ratio", "ratio",
         "pss.total_bytes / pss.expected_bytes. Near 1 when pss.complete; lower when processes "
         "were skipped (see pss.rss_coverage_ratio). Only meaningful as a check when complete."),
    spec("pss.anon_reconciliation_ratio", "ratio", "Sum of Pss_Anon / meminfo AnonPages (same caveat)."),
)


class PssSource(Source):
    name = "pss"
    evidence_only = True
    after = ("meminfo", "processes")
    facts = FACTS
    timeout = 4.0
    #: the budget: at most this many processes, this many seconds
    max_processes = 32
    budget_seconds = 0.5
    max_statm = 100000

    def collect(self, ev: Evidence, out: FactSet) -> None:
        stop = time.monotonic() + self.budget_seconds
        ranking = ev.shared.get(RANKING)
        if isinstance(ranking, Ranking) and ranking.largest:
            # The process scan ranked every process already; its list runs out only when more
            # than half of the RANK_N largest fail to read (not root), and then statm is walked after all.
            rss, holding, all_rss, scanned_all = ranking.largest, ranking.holding, ranking.rss_total, ranking.complete
            more = holding > len(rss)
            counted_from = ev.origin("proc/*/status")
        else:
            rss, scanned_all = self._statm_ranking(ev, stop)
            holding, all_rss, more = len(rss), sum(r for r, _ in rss), False
            counted_from = ev.origin("proc/*/statm")
        if not rss:
            return
        totals = dict.fromkeys(FIELDS.values(), 0)
        rows, denied, covered = [], 0, 0
        tried: set[str] = set()
        i = 0
        while len(rows) < self.max_processes and time.monotonic() <= stop:
            if i == len(rss):
                if not more:
                    break
                walked, walked_all = self._statm_ranking(ev, stop)
                rss, more, i = [r for r in walked if r[1] not in tried], False, 0
                scanned_all = scanned_all and walked_all
                continue
            rss_bytes, pid = rss[i]
            i += 1
            tried.add(pid)
            try:
                raw = ev.read_text(f"proc/{pid}/smaps_rollup")
            except Unreadable as exc:
                denied += exc.kind == "permission"
                continue
            values = parse_rollup(raw) if raw else {}
            if "pss" not in values:
                continue  # exited, kernel without smaps_rollup (< 4.14), or a kernel thread
            for key in totals:
                totals[key] += values.get(key, 0)
            covered += rss_bytes
            rows.append({"pid": int(pid), "pss_bytes": values["pss"],
                         "uss_bytes": values.get("private_clean", 0) + values.get("private_dirty", 0),
                         "rss_bytes": values.get("rss", rss_bytes), "swap_pss_bytes": values.get("swap_pss", 0)})
        origin = ev.origin("proc/*/smaps_rollup")
        if denied:
            out.problem(self.name, f"smaps_rollup of {denied} processes not readable "
                        "(permission: needs root or the process's own user)", origin, "permission")
        out.set("pss.processes_total", holding, counted_from)
        out.set("pss.processes_read", len(rows), origin)
        out.set("pss.denied", denied, origin)
        if not rows:
            return
        out.set("pss.rss_coverage_ratio", covered / all_rss if all_rss else None, origin)
        out.set("pss.complete", scanned_all and len(rows) == holding, origin)
        for fact, key in (("pss.total_bytes", "pss"), ("pss.anon_bytes", "pss_anon"),
                          ("pss.file_bytes", "pss_file"), ("pss.shmem_bytes", "pss_shmem"),
                          ("pss.swap_pss_bytes", "swap_pss")):
            out.set(fact, totals[key], origin)
        out.set("pss.uss_bytes", totals["private_clean"] + totals["private_dirty"], origin)
        top = sorted(rows, key=lambda r: r["pss_bytes"], reverse=True)[:TOP]
        for r in top:
            comm = quiet_text(ev, f"proc/{r['pid']}/comm")
            if comm:
                r["process"] = comm.strip()
        out.set("pss.top", top, origin)
        self._reconcile(out, totals)

    def _statm_ranking(self, ev: Evidence, stop: float) -> tuple[list[tuple[int, str]], bool]:
        """(RSS bytes, pid) of every process holding memory, largest first, from statm; and
        whether every process was looked at. Only when the process scan left no ranking."""
        rss: list[tuple[int, str]] = []
        for n, pid in enumerate(p for p in ev.listdir("proc") if is_pid(p)):
            # The clock is asked every 64 processes: at 10,000 of them, every call shows.
            if len(rss) >= self.max_statm or (not n % 64 and time.monotonic() > stop):
                return sorted(rss, reverse=True), False
            try:  # bytes, not text: a number's digits need no decoding
                statm = ev.read_bytes(f"proc/{pid}/statm", limit=4096)
            except Unreadable:
                continue
            parts = statm.split(None, 2) if statm else ()
            resident = digits(parts[1]) if len(parts) >= 2 else None  # type: ignore[arg-type]
            if resident:
                rss.append((resident * PAGE, pid))
        return sorted(rss, reverse=True), True

    def _reconcile(self, out: FactSet, totals: dict[str, int]) -> None:
        anon, mapped = out.get("meminfo.AnonPages"), out.get("meminfo.Mapped")
        if not (isinstance(anon, int) and isinstance(mapped, int)):
            return
        where = "derived: smaps_rollup sums vs meminfo AnonPages + Mapped"
        out.set("pss.expected_bytes", anon + mapped, where)
        if anon + mapped:
            out.set("pss.reconciliation_ratio", totals["pss"] / (anon + mapped), where)
        if anon:
            out.set("pss.anon_reconciliation_ratio", totals["pss_anon"] / anon, where)


def parse_rollup(raw: str) -> dict[str, int]:
    """``Pss:   1234 kB`` lines -> {"pss": bytes, ...} for the fields memdiag uses."""
    values = {}
    for line in raw.splitlines():
        key, sep, rest = line.partition(":")
        name = FIELDS.get(key.strip())
        parts = rest.split()
        kb = digits(parts[0]) if sep and name and parts else None
        if kb is not None:
            values[name] = kb * 1024
    return values


@hookimpl
def memdiag_fact_sources(register):
    register(PssSource())
