"""Hostile inputs for every parser memdiag has, and the table of what each may legitimately raise.

Used by bench/fuzz_all.py (100,000+ inputs) and tests/stress/test_fuzz_inputs.py (hypothesis).
Inputs are grown from real samples (the test fixtures, the founding case, and optionally this
host's own /proc files and command outputs), then damaged the ways captured evidence is damaged
in practice: truncated, lines dropped or repeated, CRLF or odd line separators, UTF-16 and binary
junk, numbers made absurd, negative or exotic (``²``, ``١٢``, ``1e999``), units swapped, outputs
pasted into each other behind shell prompts. A target passes an input when it returns, or raises
one of the exceptions its contract names (a ParseError for text that is not its format, ...);
anything else is a bug.

Every source also runs against :class:`ChaosEvidence`, a whole snapshot whose every file is such
an input, and the engine, the findings document and every report format then run over whatever
facts came out (absurd facts must not break a report either).
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from memdiag.evidence import Captured, Evidence, Unreadable, decode
from memdiag.units import UnitError

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed-case"

#: Numbers that have broken parsers somewhere: huge, negative, float-ish, and Unicode digits that
#: str.isdigit() accepts but int() does not (or does).
ABSURD = ["-1", "0", "-0", "18446744073709551615", "18446744073709551616", "9" * 40, "1e999", "-1e999",
          "nan", "inf", "0x10", "1_000", "1.5", "-2.5", ".", "²", "³⁴", "١٢٣", "１２３", "٣", "Ⅻ", "", " ",
          "12abc", "+7", "007"]
UNITS = ["kB", "KB", "kb", "k", "K", "MB", "M", "MiB", "GiB", "g", "G", "T", "pages", "%", "B", "", "kB kB",
         "bytes", "Ki", "EiB", "xB"]
SEPARATORS = ["\n", "\r\n", "\r", "\u2028", "\x85", "\x0b", "\x0c", "\x1e", "\n\n"]
JUNK = ["\x00", "\x1b[1;31m", "\x1b[0m", "\x1b(B", "\ufeff", "\ufffd", "é", "漢字", "\t", "\u200b", "\x7f",
        "\ud7ff", "🙂", "\\", "\"", "'", ":", "=", "#", "[root@h ~]# ", "$ ", "%", "-", "|", "\u202e"]
PROMPTS = ["[root@db01 ~]# free -m", "$ top -bn1", "$ cat /proc/meminfo", "host# lsmod", "> ps aux",
           "root@h:~# uname -a", "$ cat /proc/vmstat", "[user@x tmp]$ free", "$ ps -eo pid,rss,comm",
           "$ cat /proc/slabinfo", "$ vmware-toolbox-cmd stat balloon"]
_NUM = re.compile(r"\d+")
_UNIT = re.compile(r"\b(kB|KiB|MiB|GiB|[KMGT]i?B?)\b")


def load_corpus(live: bool = False) -> list[tuple[str, str]]:
    """(name, text) samples: fixtures and the founding case, plus this host's files if ``live``."""
    samples: list[tuple[str, str]] = []
    roots = [REPO / "tests" / "fixtures", SEED]
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.stat().st_size < 1 << 20:
                try:
                    samples.append((str(path.relative_to(REPO.parent)), path.read_text(errors="replace")))
                except OSError:
                    continue
    if live:
        samples += _live_samples()
    return samples


def _live_samples() -> list[tuple[str, str]]:
    import subprocess

    found = []
    for rel in ("proc/meminfo", "proc/vmstat", "proc/modules", "proc/slabinfo", "proc/swaps", "proc/cpuinfo",
                "proc/pressure/memory", "proc/self/status", "proc/self/smaps_rollup", "proc/self/mountinfo",
                "proc/self/cgroup", "proc/sys/fs/dentry-state", "proc/zoneinfo", "proc/buddyinfo",
                "proc/cmdline", "sys/fs/cgroup/memory.stat"):
        try:
            with open("/" + rel, errors="replace") as f:
                found.append(("live/" + rel, f.read(200_000)))
        except OSError:
            continue
    for argv in (["top", "-bn1"], ["free"], ["free", "-m"], ["free", "-h"], ["ps", "aux"],
                 ["ps", "-eo", "pid,rss,comm"], ["lsmod"], ["uname", "-a"], ["df", "-k"], ["sysctl", "-a"]):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if out:
            found.append(("live/cmd/" + "_".join(argv), out[:200_000]))
    return found


class Mutator:
    """Damages text (and bytes) the ways real evidence gets damaged."""

    def __init__(self, rng: random.Random, corpus: list[tuple[str, str]]) -> None:
        self.rng = rng
        self.corpus = corpus

    def sample(self, *hints: str) -> str:
        rng = self.rng
        if hints and rng.random() < 0.75:
            matching = [t for n, t in self.corpus if any(h in n for h in hints)]
            if matching:
                return rng.choice(matching)
        return rng.choice(self.corpus)[1] if self.corpus else ""

    def text(self, *hints: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return rng.choice(["", " ", "\n", "\n\n\n", "\r\n", "\x00", "0", ":", "-", "\ufeff"])
        if r < 0.12:
            return self.junk(rng.randint(1, 400))
        text = self.sample(*hints)
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
            text = self.mutate(text)
        return text

    def junk(self, n: int) -> str:
        rng = self.rng
        pieces = JUNK + ABSURD + UNITS + ["\n", " ", "MemTotal:", "VmRSS:", "PID", "top - ", "Mem:", "slabdata"]
        return "".join(rng.choice(pieces) if rng.random() < 0.5 else chr(rng.randint(1, 0x2FFF)) for _ in range(n))

    def mutate(self, text: str) -> str:
        rng = self.rng
        op = rng.randrange(14)
        lines = text.split("\n")
        if op == 0 and text:  # truncated capture
            return text[: rng.randrange(len(text))]
        if op == 1 and len(lines) > 1:  # lines lost
            for _ in range(rng.randint(1, max(1, len(lines) // 3))):
                lines.pop(rng.randrange(len(lines)))
            return "\n".join(lines)
        if op == 2 and lines:  # lines repeated
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.randint(1, 5)
            return "\n".join(lines)
        if op == 3:  # absurd numbers
            return _NUM.sub(lambda m: rng.choice(ABSURD) if rng.random() < 0.3 else m.group(), text)
        if op == 4:  # wrong units
            return _UNIT.sub(lambda m: rng.choice(UNITS) if rng.random() < 0.4 else m.group(), text)
        if op == 5:  # line ends
            return rng.choice(SEPARATORS).join(lines)
        if op == 6:  # junk spliced in
            at = rng.randrange(len(text) + 1)
            return text[:at] + rng.choice(JUNK) * rng.randint(1, 3) + text[at:]
        if op == 7:  # two outputs pasted together, perhaps behind a prompt
            joiner = "\n" + (rng.choice(PROMPTS) + "\n" if rng.random() < 0.6 else "")
            return text + joiner + self.sample()
        if op == 8 and lines:  # one absurdly long line
            i = rng.randrange(len(lines))
            lines[i] = lines[i] + rng.choice(["x", " 1", "9", "\t"]) * rng.choice((1000, 20000))
            return "\n".join(lines)
        if op == 9:  # indentation and whitespace games
            return "\n".join(rng.choice(["", " ", "\t", "  "]) + line.replace(" ", rng.choice([" ", "\t", "  ", ""]))
                             for line in lines)
        if op == 10 and len(lines) > 2:  # shuffled
            rng.shuffle(lines)
            return "\n".join(lines)
        if op == 11:  # negative everything
            return _NUM.sub(lambda m: "-" + m.group(), text)
        if op == 12 and lines:  # a column dropped from every line
            col = rng.randrange(6)
            return "\n".join(" ".join(p for j, p in enumerate(line.split()) if j != col) for line in lines)
        if op == 13:  # case and ANSI colour
            return "\x1b[1m" + (text.upper() if rng.random() < 0.5 else text.lower()) + "\x1b[0m"
        return text

    def raw(self, *hints: str) -> bytes:
        """File content as bytes: text in some encoding, or binary junk."""
        rng = self.rng
        text = self.text(*hints)
        r = rng.random()
        if r < 0.06:
            return rng.randbytes(rng.randint(0, 300))
        if r < 0.10:
            return text.encode("utf-16")  # with BOM
        if r < 0.12:
            return text.encode("utf-16-le")  # without: NULs, so binary
        if r < 0.15:
            return text.encode("latin-1", errors="replace")
        if r < 0.17:
            return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
        return text.encode("utf-8", "surrogatepass")


# -- a whole snapshot of damaged files -----------------------------------------------------------

#: Names that directory listings hand out (kept small: listings are walked recursively).
_DIR_NAMES = {
    "proc": ["1", "2", "687", "3725", "self", "meminfo", "12345678901234567890", "-1", "0"],
    "sys/block": ["zram0", "sda", "zram1"],
    "sys/devices/system/memory": ["memory0", "memory1", "block_size_bytes", "memoryX"],
    "sys/kernel/mm/hugepages": ["hugepages-2048kB", "hugepages-1048576kB", "hugepages-xkB"],
    "sys/bus/virtio/devices": ["virtio0", "virtio1"],
    "sys/fs/cgroup": ["memory.stat", "system.slice", "user.slice", "cgroup.controllers"],
    "sys/kernel/slab": ["dentry", "kmalloc-64"],
}


class ChaosEvidence(Evidence):
    """A snapshot where every file a source asks for exists and holds a damaged sample.

    Deterministic for a seed: asking twice for a path gives the same bytes. Directory listings
    are bounded, so sources that walk trees end.
    """

    def __init__(self, seed: int, corpus: list[tuple[str, str]], *, live: bool = False) -> None:
        root = tempfile.gettempdir() + "/memdiag-chaos-nonexistent"
        super().__init__(root, kind="live" if live else "capture", label="chaos")
        self.seed, self.corpus = seed, corpus
        self.served: list[str] = []

    def _mutator(self, rel: str) -> Mutator:
        return Mutator(random.Random(f"{self.seed}:{rel}"), self.corpus)

    def _hints(self, rel: str) -> tuple[str, ...]:
        base = rel.rsplit("/", 1)[-1]
        return (base,) if base else ()

    def exists(self, rel: str) -> bool:
        return self._mutator("exists:" + rel).rng.random() < 0.8

    def listdir(self, rel: str) -> list[str]:
        rng = self._mutator("ls:" + rel).rng
        if rel.count("/") > 3 or rng.random() < 0.25:  # shallow: tree walks must end quickly
            return []
        if rng.random() < 0.05:
            raise Unreadable(self.origin(rel), "permission denied", "permission")
        names = _DIR_NAMES.get(rel.rstrip("/"))
        if names is None:
            names = ["status", "comm", "statm", "smaps_rollup", "memory.stat", "fdinfo", "0", "1", "x"]
        return rng.sample(names, rng.randint(0, len(names)))

    def read_bytes(self, rel: str, limit: int = 16 << 20) -> bytes | None:
        m = self._mutator(rel)
        r = m.rng.random()
        if r < 0.08:
            return None  # absent
        if r < 0.12:
            raise Unreadable(self.origin(rel), "permission denied", "permission")
        self.served.append(rel)
        data = m.raw(*self._hints(rel))
        if len(data) > limit:
            raise Unreadable(self.origin(rel), "larger than the read limit", "malformed")
        return data

    def lines(self, rel: str, limit: int = 1 << 30):
        data = self.read_bytes(rel, limit)
        if data is None:
            return None
        text = decode(data, self.origin(rel))
        return iter(text.splitlines())

    def command(self, name: str) -> Captured | None:
        m = self._mutator("cmd:" + name)
        if m.rng.random() < 0.3:
            return None
        return Captured(m.text(name, "cmd"), f"chaos:{name}")

    def command_lines(self, name: str):
        captured = self.command(name)
        return None if captured is None else (iter(captured.text.splitlines()), captured.origin)


# -- targets ---------------------------------------------------------------------------------------

@dataclass
class Target:
    """One parser: ``run(mutator)`` makes an input and parses it; ``allowed`` are clean refusals."""

    name: str
    run: Callable[[Mutator], Any]
    allowed: tuple[type[BaseException], ...] = ()
    weight: float = 1.0  # relative share of the inputs (slow whole-pipeline targets get fewer)
    notes: str = ""


@dataclass
class Stats:
    ok: int = 0
    refused: int = 0  # an allowed exception: a clear, reported refusal
    crashed: int = 0
    slowest: float = 0.0
    slowest_seed: str = ""
    first_crash: dict[str, str] = field(default_factory=dict)  # exception type -> traceback + input


def text_parsers() -> list[tuple[str, Callable[[str], Any], tuple[str, ...], tuple[type[BaseException], ...]]]:
    """(name, parse(text), sample hints, allowed exceptions) for every parser of text."""
    from memdiag import recognize
    from memdiag.parsers import ParseError
    from memdiag.parsers.free import parse_free
    from memdiag.parsers.oomkill import parse_text as parse_oom
    from memdiag.parsers.modules import parse_modules
    from memdiag.parsers.ps import parse_ps
    from memdiag.parsers.top import parse_top
    from memdiag.parsers.uname import parse_uname
    from memdiag.plugins.sources import _readers, balloon, cgroups, gpu, meminfo, pressure, pss, slab, sysctl
    from memdiag.plugins.sources import tmpfs, zfs, zram
    from memdiag.units import parse_size

    o = "fuzz"
    return [
        ("parsers.free", lambda t: parse_free(t, o), ("free",), (ParseError,)),
        ("parsers.top", lambda t: parse_top(t, o), ("top",), (ParseError,)),
        ("parsers.ps", lambda t: parse_ps(t, o), ("/ps", "ps_"), (ParseError,)),
        ("parsers.modules", lambda t: parse_modules(t, o), ("modules", "lsmod"), (ParseError,)),
        ("parsers.uname", lambda t: parse_uname(t, o), ("uname", "osrelease"), (ParseError,)),
        ("recognize.split", lambda t: recognize.split(t, o), ("pasted", "seed", "top", "free"), ()),
        ("recognize.split.offsets", lambda t: _offsets_agree(t, o), ("pasted", "seed", "top", "free"), ()),
        ("meminfo.parse", meminfo.parse, ("meminfo",), ()),
        ("units.parse_size", lambda t: parse_size(t[:40]), ("meminfo",), (UnitError,)),
        ("balloon.parse_vmmemctl", balloon.parse_vmmemctl, ("vmmemctl",), ()),
        ("balloon.parse_toolbox", balloon.parse_toolbox, ("balloon",), ()),
        ("cgroups.parse_flat", cgroups.parse_flat, ("memory.stat", "vmstat"), ()),
        ("gpu.parse_fdinfo", gpu.parse_fdinfo, ("gpu", "fdinfo"), ()),
        ("pressure.parse_psi", pressure.parse_psi, ("pressure",), ()),
        ("pss.parse_rollup", pss.parse_rollup, ("smaps", "status"), ()),
        ("slab.parse_slabinfo_line", lambda t: [slab.parse_slabinfo_line(x) for x in t.splitlines()],
         ("slabinfo",), ()),
        ("slab.parse_slabtop", slab.parse_slabtop, ("slabtop",), ()),
        ("sysctl.parse_sysctl_a", sysctl.parse_sysctl_a, ("sysctl",), ()),
        ("tmpfs.parse_df", tmpfs.parse_df, ("df",), ()),
        ("zfs.parse_kstat", zfs.parse_kstat, ("arcstats", "zfs"), ()),
        ("zram.parse_swaps", zram.parse_swaps, ("swaps",), ()),
        ("readers.parse_mountinfo", _readers.parse_mountinfo, ("mountinfo",), ()),
        ("parsers.oomkill", parse_oom, ("oom", "dmesg", "kern.log"), ()),
    ]


def _offsets_agree(text: str, origin: str) -> None:
    """recognize.split over line offsets (big pasted files) must give what the list split gives."""
    from memdiag import recognize

    data = text.encode("utf-8", "surrogatepass")
    lazy = recognize.split(data, origin, lazy=True)
    listed = recognize.split(data.decode("utf-8", errors="replace"), origin)
    if (lazy.chunks, lazy.unrecognised, lazy.prompt_host) != (listed.chunks, listed.unrecognised, listed.prompt_host):
        raise AssertionError("split over line offsets differs from the list split")


def targets(registry=None, rules=None) -> list[Target]:
    """Every parser, each source over chaos snapshots, the rule loader, and the report pipeline."""
    from memdiag.plugins.sources import ram

    found = [Target(name, lambda m, f=fn, h=hints: f(m.text(*h)), allowed)
             for name, fn, hints, allowed in text_parsers()]
    found += [
        Target("evidence.decode", lambda m: decode(m.raw(), "fuzz"), (Unreadable,)),
        Target("ram.crashkernel_from_cmdline",
               lambda m: ram.crashkernel_from_cmdline(m.text("cmdline").replace("\n", " crashkernel="),
                                                      m.rng.choice([None, 0, -1, 8 << 30, 1 << 62]))),
        Target("rules.read_pack", lambda m: _read_pack(m), weight=0.5),
        Target("archive.index", _index_archive, _input_error(), weight=0.5,
               notes="headers read by memdiag.tarheaders must give what tarfile gives"),
    ]
    if registry is not None:
        from memdiag.sources import order

        for src in order(registry.sources):
            found.append(Target(f"source.{src.name}", lambda m, s=src: _run_source(s, m, registry),
                                (Unreadable,), weight=0.3))
        if rules is not None:
            found.append(Target("pipeline+reports", lambda m: _pipeline(m, registry, rules), weight=0.2))
    return found


def _facts_for(registry):
    from memdiag.facts import FactSet
    from memdiag.sources import build_catalog

    return FactSet(build_catalog(registry.sources))


def _run_source(src, m: Mutator, registry) -> None:
    ev = ChaosEvidence(m.rng.randrange(1 << 30), m.corpus, live=m.rng.random() < 0.2)
    src.collect(ev, _facts_for(registry))


def _pipeline(m: Mutator, registry, rules) -> None:
    """Every source over one chaos snapshot (as sources.collect runs them), then the engine, the
    document and every report format. A source's own crash is counted under source.NAME; here
    only what the rest of the pipeline does with strange facts counts."""
    from memdiag import document, engine
    from memdiag.sources import order

    ev = ChaosEvidence(m.rng.randrange(1 << 30), m.corpus, live=m.rng.random() < 0.2)
    facts = _facts_for(registry)
    for src in order(registry.sources):
        try:
            src.collect(ev, facts)
        except Exception:  # noqa: BLE001 - reported by the source.* targets
            facts.problem(src.name, "failed", kind="failed")
    host = document.host_of(facts, ev)
    results = engine.run(rules, facts, host=host, now="2026-01-01T00:00:00Z")
    doc = document.build(ev, facts, results, host=host, now="2026-01-01T00:00:00Z")
    for name, render in sorted(registry.formats.items()):
        render(doc, {"color": m.rng.random() < 0.5, "width": m.rng.choice((40, 80, 100))})


_RULE_TEXTS: list[str] = []


def _rule_texts() -> list[str]:
    if not _RULE_TEXTS:
        for path in sorted((REPO / "rules").glob("*.yaml")):
            _RULE_TEXTS.append(path.read_text())
        for path in sorted((REPO / "examples").rglob("*.yaml")) if (REPO / "examples").is_dir() else []:
            if "rules" in path.read_text()[:2000]:
                _RULE_TEXTS.append(path.read_text())
    return _RULE_TEXTS


#: YAML that has gone wrong in rule files, and YAML that attacks parsers. Aliases appear only
#: singly: a nested alias bomb is a known open problem of the loader (see docs/benchmarks.md).
YAML_BITS = ["", "~", "null", "[]", "{}", "- -", ": :", "!!python/object:os.system ls", "!!binary aGk=",
             "&a x", "*a", "*nope", "? complex key", "'unterminated", '"\\xZZ"', "\t", "%YAML 1.1",
             "---", "...", "!!set {a, b}", "1e999", "0o777", "2001-12-14t21:59:43.10-05:00", "<<: *a",
             "id: [1, 2]", "condition: 'a ** b'", "condition: '__import__(\"os\")'", "severity: fatal",
             "params: {x: 1 GiB}", "params: {x: 1 QiB}", "tests: [{}]", "message: '{unterminated'",
             "evidence: [meminfo.MemTotl]", "memdiag: '>=99'", "rules: 5", "rules: [[]]"]


def _rule_yaml(m: Mutator) -> str:
    rng = m.rng
    texts = _rule_texts()
    if not texts or rng.random() < 0.1:
        return m.junk(rng.randint(0, 300))
    text = rng.choice(texts)
    lines = text.split("\n")
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        op = rng.randrange(6)
        if not lines:
            break
        i = rng.randrange(len(lines))
        if op == 0:
            lines.pop(i)
        elif op == 1:
            key, sep, _ = lines[i].partition(":")
            lines[i] = key + sep + " " + rng.choice(YAML_BITS) if sep else rng.choice(YAML_BITS)
        elif op == 2:
            lines.insert(i, lines[i].strip() + ": " + rng.choice(YAML_BITS))
        elif op == 3:
            lines[i] = rng.choice(["", " ", "  ", "\t"]) + lines[i]
        elif op == 4:
            lines[i] = m.mutate(lines[i])
        else:
            lines.insert(i, lines[i])  # duplicate key
    return "\n".join(lines)


def _read_pack(m: Mutator):
    from memdiag import ruleset

    text = _rule_yaml(m)
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="memdiag-fuzz-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", "surrogatepass") if m.rng.random() < 0.95 else text.encode("utf-16"))
        data, problems = ruleset.read_pack(path, use_cache=False)
        if data is not None:
            from memdiag.facts import Catalog

            ruleset.load([(path, "fuzz")], _CATALOG or Catalog(), use_cache=False)
        return data, problems
    finally:
        os.unlink(path)


_CATALOG = None


# -- archives: the lean tar reader against tarfile -------------------------------------------------

#: Path parts archive members are named from: ordinary, hostile, long and non-ASCII.
_PARTS = ["sos", "proc", "meminfo", "1", "sos_commands", "memory", "free", "..", ".", "", "é", "漢字", "x" * 70,
          "y" * 101, "c:", "\\", "a b", "-"]


def _input_error() -> tuple[type[BaseException], ...]:
    from memdiag.errors import InputError

    return (InputError,)


def _member_name(m: Mutator) -> str:
    rng = m.rng
    if rng.random() < 0.05:
        return rng.choice(["/etc/passwd", "a/", "a//b", "./a", "top/" + "z" * 250, "n\x00ul", ""])
    return "/".join(rng.choice(_PARTS) for _ in range(rng.randint(1, 4)))


def _tar_bytes(m: Mutator) -> bytes:
    """An uncompressed tar as tarfile writes it (GNU, pax or ustar) of members grown from samples."""
    import io
    import tarfile

    rng = m.rng
    kinds = [tarfile.REGTYPE] * 6 + [tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                     tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"V"]
    fmt = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
    members = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.choice(kinds)
        regular = kind in tarfile.REGULAR_TYPES or kind not in tarfile.SUPPORTED_TYPES
        members.append((_member_name(m), kind, _member_name(m), m.raw("meminfo", "status", "top") if regular else b""))
    for attempt in (fmt, tarfile.GNU_FORMAT):
        buf = io.BytesIO()
        try:
            with tarfile.open(fileobj=buf, mode="w", format=attempt) as tar:
                for name, kind, link, data in members:
                    info = tarfile.TarInfo(name)
                    info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
            return buf.getvalue()
        except (ValueError, UnicodeError):
            continue  # a name this format cannot hold
    return bytes(10240)


def _damage_tar(m: Mutator, tar: bytearray) -> None:
    """Header fields overwritten (checksum fixed up or not), blocks cut, repeated or zeroed."""
    rng = m.rng
    blocks = [i for i in range(0, len(tar), 512) if any(tar[i:i + 512])] or [0]
    for _ in range(rng.choice((0, 0, 1, 1, 2, 4))):
        op, block = rng.randrange(6), rng.choice(blocks)
        if op <= 2:
            at = block + rng.choice([0, 99, 100, 124, 130, 135, 136, 148, 156, 157, 257, 329, 345, 500,
                                     rng.randrange(512)])
            tar[at:at + 4] = rng.choice([b"\x80\0\0\x01", b"\xff\xff\xff\xff", b"  7 ", b"0o17", b"-1\0\0",
                                         b"1_0\0", b"\0\0\0\0", b"L", b"K", b"x", b"g", b"S", b"5", b"2",
                                         b"../", rng.randbytes(4)])
            head = tar[block:block + 512]
            if op != 2 and len(head) == 512:
                head[148:156] = b" " * 8
                tar[block + 148:block + 156] = b"%06o\0 " % sum(head)
        elif op == 3:
            del tar[rng.randrange(len(tar) + 1):]
        elif op == 4:
            tar[block:block] = tar[block:block + 512 * rng.randint(1, 3)]
        else:
            tar[block:block + 512] = bytes(512)


def _index_archive(m: Mutator) -> None:
    """Index a generated, perhaps damaged, archive with the lean header reader and with tarfile:
    the same tree (entries and bytes) or the same refusal, unless the lean reader declines."""
    import bz2
    import gzip
    import lzma

    from memdiag import archive
    from memdiag.archive import Limits

    rng = m.rng
    tar = bytearray(_tar_bytes(m))
    _damage_tar(m, tar)
    how = rng.choice(["gz", "gz", "xz", "bz2", "tar"])
    data = bytearray({"gz": lambda b: gzip.compress(b, mtime=0), "xz": lzma.compress, "bz2": bz2.compress,
                      "tar": bytes}[how](bytes(tar)))
    if how != "tar" and rng.random() < 0.2:
        if rng.random() < 0.5:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            del data[rng.randrange(len(data)):]
    limits = rng.choice([Limits(), Limits(members=5, member_bytes=1024, ratio=10.0, ratio_floor=4000),
                         Limits(total_bytes=3000, member_bytes=2000, ratio=2.0, ratio_floor=500)])
    fd, path = tempfile.mkstemp(suffix=".tar", prefix="memdiag-fuzz-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        kind = archive.compression(path)
        if kind is None:
            return
        packed = max(len(data), 1)
        ref = _indexed(archive._index_tarfile, path, kind, limits, packed)
        lean = _indexed(archive._index_lean, path, kind, limits, packed)
        if lean != "unsure" and lean != ref:
            raise AssertionError(f"lean reader: {str(lean)[:300]}; tarfile: {str(ref)[:300]}")
        archive.index(path, limits=limits).store.close()
    finally:
        os.unlink(path)


def _indexed(read, path: str, kind: str, limits, packed: int):
    """("tree", entries, contents), ("refused", message) or "unsure"."""
    from memdiag import archive
    from memdiag.errors import InputError
    from memdiag.tarheaders import Unsure

    try:
        tree = read(path, kind, limits, packed, None, archive.SPOOL_MEMORY)
    except Unsure:
        return "unsure"
    except InputError as exc:
        return ("refused", str(exc))
    try:
        return ("tree", tree.entries, {n: tree.read(e) for n, e in tree.entries.items() if e[0] == "f"})
    finally:
        tree.store.close()


def set_catalog(catalog) -> None:
    """The fact catalog rule loading checks names against (the registry's, when there is one)."""
    global _CATALOG
    _CATALOG = catalog


def attempt(target: Target, seed: str, corpus: list[tuple[str, str]], stats: Stats) -> None:
    """Run the input made from ``seed`` through ``target`` and count the outcome. A crash is kept
    with its seed: ``Mutator(random.Random(seed), corpus)`` makes the same input again."""
    import time
    import traceback

    m = Mutator(random.Random(seed), corpus)
    start = time.perf_counter()
    try:
        target.run(m)
    except target.allowed:
        stats.refused += 1
    except Exception as exc:  # noqa: BLE001 - anything else is what we are looking for
        stats.crashed += 1
        key = type(exc).__name__ + ": " + str(exc)[:80]
        stats.first_crash.setdefault(key, f"input seed {seed!r}\n{traceback.format_exc()}")
    else:
        stats.ok += 1
    spent = time.perf_counter() - start
    if spent > stats.slowest:
        stats.slowest, stats.slowest_seed = spent, seed
