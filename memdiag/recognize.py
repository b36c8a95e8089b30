"""Recognising evidence by content, and splitting pasted text into the outputs it holds.

Tickets carry command outputs under any file name, often several pasted one after another with
or without the shell prompts between them. :func:`split` walks the text line by line: at each
line every known format is asked whether its output starts there, and a started block runs as
long as its lines keep the format's shape. Prompt lines (``[root@h ~]# free -m``, ``$ top
-bn1``) end a block and tell what the next one was meant to be, which names the error when a
command printed one instead of its output. Each block becomes a :class:`Chunk` keyed by where
:class:`~memdiag.evidence.Evidence` serves it: ``proc/meminfo``-style paths for file contents,
``cmd:NAME`` for command outputs. Lines that are none of these are reported, never guessed at.
"""

from __future__ import annotations

import re
from array import array

from memdiag.evidence import Captured, Unreadable, decode
from memdiag.facts import _Frozen, _Record
from memdiag.parsers import PROMPT_RE, LazyPattern

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable, Iterable, Sequence

#: Largest text file examined; bigger ones are not pasted outputs.
TEXT_LIMIT = 16 * 1024 * 1024

# Each pattern is compiled when first used: most are needed only when their kind of output turns up.
_ANSI = LazyPattern(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\([AB0]|\x1b[=>]|\x1b\][^\x07\n]*(?:\x07|\x1b\\)")
_MEMINFO = LazyPattern(r"^[A-Za-z_][\w()]*:\s+\d+(?:\s+kB)?$")
_PAIR = LazyPattern(r"^[a-z][a-z0-9_]*\s+-?\d+$")
_KSTAT_HEAD = LazyPattern(r"^\d+ \d+ 0x[0-9a-f]+ \d+ \d+ \d+ \d+$")
_KSTAT_ROW = LazyPattern(r"^\w+\s+\d+\s+-?\d+$")
_BUDDY = LazyPattern(r"^Node \d+, zone\s+\S+(?:\s+\d+)+$")
_SLABINFO_ROW = LazyPattern(r"^\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s*:\s*tunables")
_SLABTOP_SUMMARY = LazyPattern(r"^(?:Active / Total \w+|Minimum / Average / Maximum Object)")
_SLABTOP_HEAD = LazyPattern(r"^OBJS\s+ACTIVE\s+USE\s+OBJ SIZE")
_SLABTOP_ROW = LazyPattern(r"^\d+\s+\d+\s+\d+%\s+[\d.]+K\s+\d+\s+\d+\s+\d+K\s+\S")
_TOP_FIRST = LazyPattern(r"^top - \d{1,2}:\d\d:\d\d\b")
_TOP_SUMMARY = LazyPattern(r"^(?:Tasks:|Threads:|%?Cpu|(?:[KMGTPE]iB )?(?:Mem|Swap)\s*:|(?:[KMGTPE]iB )?Swap)")
_FREE_HEAD = LazyPattern(r"^total\s+used\s+free\b")
_FREE_ROW = LazyPattern(r"^(?:Mem:|-/\+ buffers/cache:|Swap:|Low:|High:|Total:|Comm:)")
_LSMOD_HEAD = LazyPattern(r"^Module\s+Size\s+Used by$")
_LSMOD_ROW = LazyPattern(r"^[\w-]+\s+\d+\s+-?\d+(?:\s+\S+)?$")
_PROC_MODULES = LazyPattern(r"^[\w-]+ \d+ -?\d+ \S+ (?:Live|Loading|Unloading) 0x[0-9a-f]+")
_UNAME_A = LazyPattern(r"^Linux \S+ \d+\.\d+\S* #")
_RELEASE = LazyPattern(r"^\d+\.\d+\.\d+[\w.+~-]*$")
_BALLOON = LazyPattern(r"^\d+\s*MB$")
_LOG = LazyPattern(
    r"^(?:<\d+>)?\[\s*\d+\.\d+\]"  # dmesg, dmesg -r
    r"|^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d [\d:]{8} \d{4}\]"  # dmesg -T
    r"|^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ \S+"  # syslog, journalctl short
    r"|^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* \S+ \S+"  # journalctl -o short-iso
    r"|^-- (?:Logs begin|Journal begins|Boot |No entries|Reboot --)"  # journalctl markers
)
_ERROR = LazyPattern(
    r"command not found|No such file or directory|Permission denied|invalid option|unrecognized option"
    r"|[Uu]sage:|not permitted|cannot open|Operation not permitted|error", re.IGNORECASE
)

#: What a typed command says its output is, for naming it when the output is an error.
_COMMAND_KEYS = (
    (LazyPattern(r"/proc/meminfo\b"), "proc/meminfo"),
    (LazyPattern(r"/proc/vmstat\b"), "proc/vmstat"),
    (LazyPattern(r"/proc/slabinfo\b"), "proc/slabinfo"),
    (LazyPattern(r"/proc/modules\b"), "proc/modules"),
    (LazyPattern(r"/proc/buddyinfo\b"), "proc/buddyinfo"),
    (LazyPattern(r"arcstats\b"), "proc/spl/kstat/zfs/arcstats"),
    (LazyPattern(r"\bvmware-toolbox-cmd\s+stat\s+balloon\b"), "cmd:vmware-toolbox-cmd-stat-balloon"),
    (LazyPattern(r"^(?:sudo\s+)?top\b"), "cmd:top"),
    (LazyPattern(r"^(?:sudo\s+)?free\b"), "cmd:free"),
    (LazyPattern(r"^(?:sudo\s+)?ps\b"), "cmd:ps"),
    (LazyPattern(r"^(?:sudo\s+)?lsmod\b"), "cmd:lsmod"),
    (LazyPattern(r"^(?:sudo\s+)?slabtop\b"), "cmd:slabtop"),
    (LazyPattern(r"^(?:sudo\s+)?(?:dmesg|journalctl)\b"), "cmd:dmesg"),
    (LazyPattern(r"^(?:sudo\s+)?uname\b"), "cmd:uname"),
)

#: Human names of the keys, for notes.
LABELS = {
    "proc/meminfo": "/proc/meminfo", "proc/vmstat": "/proc/vmstat", "proc/slabinfo": "/proc/slabinfo",
    "proc/modules": "/proc/modules", "proc/buddyinfo": "/proc/buddyinfo",
    "proc/spl/kstat/zfs/arcstats": "ZFS arcstats", "cmd:top": "top", "cmd:free": "free", "cmd:ps": "ps",
    "cmd:lsmod": "lsmod", "cmd:slabtop": "slabtop", "cmd:dmesg": "dmesg", "cmd:uname": "uname",
    "cmd:vmware-toolbox-cmd-stat-balloon": "vmware-toolbox-cmd stat balloon",
}


class Chunk(_Frozen):
    """One recognised output: its Evidence key, its text, and where it was found (immutable).
    ``line``: its first line in the file (1-based); ``command``: the command typed before it,
    when a prompt was pasted."""

    __slots__ = ("key", "text", "origin", "line", "command")
    key: str
    text: str
    origin: str
    line: int
    command: str | None

    def __init__(self, key: str, text: str, origin: str, line: int, command: str | None = None) -> None:
        _set = object.__setattr__
        _set(self, "key", key)
        _set(self, "text", text)
        _set(self, "origin", origin)
        _set(self, "line", line)
        _set(self, "command", command)

    @property
    def captured(self) -> Captured:
        return Captured(self.text, self.origin)


class Recognition(_Record):
    """``chunks``: the outputs found; ``unrecognised``: (origin, reason) for text that is none of
    the known outputs, or a duplicate; ``prompt_host``: user@host from a pasted prompt, when one
    shows it."""

    __slots__ = _FIELDS = ("chunks", "unrecognised", "prompt_host")

    def __init__(self, chunks: list[Chunk] | None = None, unrecognised: list[tuple[str, str]] | None = None,
                 prompt_host: str | None = None) -> None:
        self.chunks: list[Chunk] = [] if chunks is None else chunks
        self.unrecognised: list[tuple[str, str]] = [] if unrecognised is None else unrecognised
        self.prompt_host = prompt_host


# -- block detectors -------------------------------------------------------------------------
# Each takes the stripped lines and a start index and returns the end index (exclusive) of the
# block starting there, or None. They never look past a line that does not fit.


def _run(lines: list[str], i: int, fits: Callable[[str], bool], blanks: bool = False) -> int:
    j = i
    while j < len(lines):
        s = lines[j]
        if fits(s) or (blanks and not s and _more(lines, j, fits)):
            j += 1
        else:
            break
    return j


def _more(lines: list[str], j: int, fits: Callable[[str], bool]) -> bool:
    """Whether the block goes on after the blank lines at ``j``."""
    k = j
    while k < len(lines) and not lines[k]:
        k += 1
    return k < len(lines) and fits(lines[k])


def _meminfo(lines, i):
    if not lines[i].startswith("MemTotal:") or not _MEMINFO.match(lines[i]):
        return None
    return _run(lines, i, _MEMINFO.match)


def _vmstat(lines, i):
    # a block starts where a run of "name number" lines starts: checking every line of a long
    # run that is not vmstat would make splitting quadratic
    if not _PAIR.match(lines[i]) or (i > 0 and _PAIR.match(lines[i - 1])):
        return None
    end = _run(lines, i, _PAIR.match)
    names = {lines[k].split()[0] for k in range(i, end)}
    if end - i >= 5 and names & {"nr_free_pages", "pgfault", "pgpgin", "pswpin"}:
        return end
    return None


def _arcstats(lines, i):
    j = i + 1 if _KSTAT_HEAD.match(lines[i]) else i
    if j >= len(lines) or not re.match(r"^name\s+type\s+data$", lines[j]):
        return None
    end = _run(lines, j + 1, _KSTAT_ROW.match)
    names = {lines[k].split()[0] for k in range(j + 1, end)}
    return end if {"c_max", "size"} <= names else None


def _buddyinfo(lines, i):
    return _run(lines, i, _BUDDY.match) if _BUDDY.match(lines[i]) else None


def _slabinfo(lines, i):
    if not lines[i].startswith("slabinfo - version:"):
        return None
    return _run(lines, i + 1, lambda s: s.startswith("# name") or bool(_SLABINFO_ROW.match(s)))


def _slabtop(lines, i):
    if not (_SLABTOP_SUMMARY.match(lines[i]) or _SLABTOP_HEAD.match(lines[i])):
        return None
    end = _run(lines, i, lambda s: bool(_SLABTOP_SUMMARY.match(s) or _SLABTOP_HEAD.match(s)), blanks=True)
    if end < len(lines) and not lines[end]:
        end = _run(lines, end, lambda s: not s)
    if end < len(lines) and _SLABTOP_HEAD.match(lines[end]):
        end += 1
    rows = _run(lines, end, _SLABTOP_ROW.match)
    return rows if rows > end else None


def _top_fits(s: str) -> bool:
    if _TOP_FIRST.match(s) or _TOP_SUMMARY.match(s):
        return True
    parts = s.split()
    if "PID" in parts:
        return "RES" in parts  # a repeated top header; a ps header starts another block
    return bool(parts) and parts[0].isdigit() and len(parts) >= 4


def _top(lines, i):
    s = lines[i]
    parts = s.split()
    if not (_TOP_FIRST.match(s) or ("PID" in parts and "RES" in parts)):
        return None
    return _run(lines, i, _top_fits, blanks=True)


def _free(lines, i):
    if not _FREE_HEAD.match(lines[i]):
        return None
    end = _run(lines, i + 1, _FREE_ROW.match)
    return end if any(lines[k].startswith("Mem:") for k in range(i + 1, end)) else None


def _ps(lines, i):
    from memdiag.parsers._table import header, pick

    parts = lines[i].split()
    if "PID" not in parts or not ({"RSS", "RSZ"} & set(parts)) or "RES" in parts:
        return None
    hdr = header(lines[i], ("COMMAND", "CMD", "COMM", "ARGS"))
    pid_col = hdr.index("PID")

    def fits(s: str) -> bool:
        got = pick(hdr, s, [pid_col]) if s else None
        return bool(got) and (got[0].isdigit() or got[0] == "-")

    end = _run(lines, i + 1, fits)
    return end if end > i + 1 else None


def _lsmod(lines, i):
    if not _LSMOD_HEAD.match(lines[i]):
        return None
    return _run(lines, i + 1, _LSMOD_ROW.match)


def _proc_modules(lines, i):
    return _run(lines, i, _PROC_MODULES.match) if _PROC_MODULES.match(lines[i]) else None


def _uname(lines, i):
    return i + 1 if _UNAME_A.match(lines[i]) else None


def _top_rows(lines, i):
    """Process rows of top's default layout pasted without any header."""
    from memdiag.parsers.top import looks_like_default_row

    end = _run(lines, i, looks_like_default_row)
    return end if end - i >= 2 else None


def _release(lines, i):
    """``uname -r`` (or /proc/sys/kernel/osrelease): a kernel release alone on its line."""
    return i + 1 if _RELEASE.match(lines[i]) and (i + 1 == len(lines) or not lines[i + 1]) else None


def _dmesg(lines, i):
    """A kernel log: prefixed lines, or an OOM-killer report pasted bare. Unprefixed lines inside
    it (a multi-line printk, a line a mail client wrapped, a note between two pastes) are kept
    while the log resumes soon after them and no prompt or other output starts first."""
    quote = _QUOTE.match(lines[i])  # a log quoted in a mail reply: "> Mar 19 ... kernel: ..."
    if quote:
        body = lines[i][quote.end():]
        if not (_LOG.match(body) or _OOM_HEAD.search(body)):
            return None
        return _quoted_log(lines, i, quote.group().rstrip())
    if not (_LOG.match(lines[i]) or _OOM_HEAD.search(lines[i])):
        return None
    j, n = i + 1, len(lines)
    while j < n:
        s = lines[j]
        if s and (_LOG.match(s) or _KBODY.match(s)):
            j += 1
        elif _other_output(lines, j):
            break
        elif s and lines[j - 1]:
            j += 1  # a continuation of the line before
        else:  # blank lines or a note: part of the log only if it resumes within a few lines
            k = next((k for k in range(j, min(j + 8, n)) if lines[k] and (_LOG.match(lines[k]) or _KBODY.match(lines[k]))
                      or _other_output(lines, k)), None)
            if k is None or _other_output(lines, k):
                break
            j = k
    while j > i + 1 and not lines[j - 1]:
        j -= 1
    return j


def _quoted_log(lines, i: int, mark: str) -> int:
    """A quoted kernel log runs while its lines keep the quote mark (the parser removes it)."""
    j, n = i + 1, len(lines)
    while j < n and lines[j].startswith(mark):
        j += 1
    return j


_QUOTE = LazyPattern(r"^(?:> ?)+(?=\S)")

#: Lines of an OOM-killer report, for pasted reports without log prefixes.
_OOM_HEAD = LazyPattern(r"invoked oom-killer: |^oom-killer: gfp_mask=|Manual OOM execution|^Out of [Mm]emory: ")
_KBODY = LazyPattern(r"^(?:[a-z_]+:\d+ |Free pages|Free swap|Total swap|(?:Node \d+ )?[A-Z]\w*(?: free:|: \d+\*)|\[\s*\d+\]"
                    r"|\[<|Out of [Mm]emory|Killed process|Mem-[Ii]nfo|Call Trace|oom-kill:|Tasks state|\d+ pages )")


def _other_output(lines, k: int) -> bool:
    """A prompt, or another output than a kernel log, starts at line ``k``."""
    s = lines[k]
    if not s:
        return False
    if PROMPT_RE.match(s) and not _LOG.match(s) and not _KBODY.match(s):
        return True
    return any(detect(lines, k) for key, detect in _DETECTORS if key != "cmd:dmesg")


def _balloon(lines, i):
    return i + 1 if _BALLOON.match(lines[i]) else None


_DETECTORS: tuple[tuple[str, Callable], ...] = (
    ("proc/meminfo", _meminfo),
    ("proc/slabinfo", _slabinfo),
    ("cmd:slabtop", _slabtop),
    ("proc/spl/kstat/zfs/arcstats", _arcstats),
    ("proc/buddyinfo", _buddyinfo),
    ("proc/vmstat", _vmstat),
    ("cmd:top", _top),
    ("cmd:free", _free),
    ("cmd:ps", _ps),
    ("cmd:lsmod", _lsmod),
    ("proc/modules", _proc_modules),
    ("cmd:uname", _uname),
    ("cmd:uname", _release),
    ("cmd:top", _top_rows),
    ("cmd:dmesg", _dmesg),
    ("cmd:vmware-toolbox-cmd-stat-balloon", _balloon),
)


def _hinted_key(command: str | None) -> str | None:
    if not command:
        return None
    for pattern, key in _COMMAND_KEYS:
        if pattern.search(command):
            return key
    return None


def _hinted_block(lines: list[str], i: int, key: str | None) -> tuple[str, int] | None:
    """Header-less output that only the typed command identifies: ``uname -r``, ``lsmod | grep``."""
    if key == "cmd:uname" and _RELEASE.match(lines[i]):
        return key, i + 1
    if key == "cmd:lsmod" and _LSMOD_ROW.match(lines[i]):
        return key, _run(lines, i, _LSMOD_ROW.match)
    return None


def _where(origin: str, line: int) -> str:
    return f"{origin}:{line}"


def split(text: str | bytes, origin: str, *, lazy: bool | None = None) -> Recognition:
    """Every recognised output in ``text`` (a str, or UTF-8 bytes as :func:`read_text_data`
    gives), plus what could not be recognised and why. Bytes longer than :data:`LAZY_BYTES`
    (or any bytes, with ``lazy``) are split over line offsets rather than a list of lines."""
    raw: Sequence[str]
    lines: Sequence[str]
    if isinstance(text, bytes) and (lazy if lazy is not None else len(text) > LAZY_BYTES):
        raw, lines = _LazyLines.pair(text)
    else:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        raw = [_clean(line) for line in text.split("\n")]  # rstrip also takes a CRLF's CR
        lines = [line.strip() for line in raw]
    result = Recognition()
    found: list[tuple[str, int, int, str | None, int | None]] = []  # key, start, end, command, prompt line
    unknown: list[tuple[int, int, str | None]] = []  # start, end, command
    command: str | None = None
    prompt_at: int | None = None
    used_prompt = False
    i = 0
    pending_unknown: int | None = None

    def flush_unknown(end: int) -> None:
        nonlocal pending_unknown
        if pending_unknown is not None:
            unknown.append((pending_unknown, end, None if used_prompt else command))
            pending_unknown = None

    while i < len(lines):
        s = lines[i]
        if not s:
            i += 1
            continue
        m = PROMPT_RE.match(raw[i])
        block = None
        for key, detect in _DETECTORS:
            end = detect(lines, i)
            if end is not None and end > i:
                block = (key, end)
                break
        if block is None and m is not None:
            flush_unknown(i)
            command, prompt_at, used_prompt = m.group("cmd"), i, False
            host = re.match(r"^\s*\[?([\w.-]+)@([\w.-]+)", raw[i])
            if host and result.prompt_host is None:
                result.prompt_host = host.group(2)
            i += 1
            continue
        if block is None and not used_prompt:
            block = _hinted_block(lines, i, _hinted_key(command))
        if block is None:
            if pending_unknown is None:
                pending_unknown = i
            i += 1
            continue
        flush_unknown(i)
        key, end = block
        found.append((key, i, end, None if used_prompt else command, None if used_prompt else prompt_at))
        used_prompt = True
        i = end

    flush_unknown(len(lines))
    seen: dict[str, int] = {}
    whole = len(found) == 1 and not unknown and found[0][4] is None
    for key, start, end, cmd, prompt_line in found:
        if key in seen:
            result.unrecognised.append(
                (_where(origin, start + 1), f"another {LABELS[key]} output; the one at line {seen[key]} is used")
            )
            continue
        seen[key] = start + 1
        if isinstance(raw, _LazyLines) and end - start > 1000:
            chunk_text = raw.dedented(start, end)  # a long log: no list of its lines
        else:
            body = raw[start:end]
            if key == "cmd:free" and prompt_line is not None:
                body = [raw[prompt_line].strip()] + body  # its flags give the unit
            elif key == "cmd:free" and (flags := _free_flags_in_name(origin)):
                body = [f"$ free {flags}"] + body  # sos names the file after the command: free_-m
            cut = len(_margin(body))
            chunk_text = "\n".join(line[cut:] if line.strip(" \t") else "" for line in body).strip("\n") + "\n"
        where = origin if whole else _where(origin, start + 1)
        result.chunks.append(Chunk(key, chunk_text, where, start + 1, cmd))
    if not found and len(unknown) > 1 and not any(_hinted_key(cmd) for _, _, cmd in unknown):
        # Prose (a README, a ticket's notes): one line for the file, not one per paragraph.
        first = _first_text(lines, 0, len(lines))
        result.unrecognised.append((origin, f"no command output recognised in it (it begins {first[:50]!r}); "
                                            "skipped"))
        return result
    for start, end, cmd in unknown:
        result.unrecognised.append((_where(origin, start + 1), _why(_first_text(lines, start, end), cmd)))
    return result


def _clean(line: str) -> str:
    """A line as the detectors see it: no colour codes, no trailing blanks or CR."""
    return (_ANSI.sub("", line) if "\x1b" in line else line).rstrip("\r\x0c \t")


#: Texts longer than this (bytes) are split over line offsets instead of a list of line strings.
LAZY_BYTES = 1 << 20


class _LazyLines:
    """The lines of a big text, made when asked for from the text's UTF-8 bytes and an array of
    line offsets, a few thousand kept at a time.

    A list of a 15 MB file's lines costs ~30 MB in str objects besides the text; with offsets the
    text is held once, as bytes, and ~8 bytes a line beside it. Detectors only look at the line
    in hand and a few after it, so a small cache serves nearly every read.
    """

    __slots__ = ("_data", "_starts", "_strip", "_cache", "_n")
    CACHE = 8192

    def __init__(self, data: bytes, starts: array, strip: bool) -> None:
        self._data, self._starts, self._strip = data, starts, strip
        self._n = len(starts) - 1
        self._cache: dict[int, str] = {}

    @classmethod
    def pair(cls, data: bytes) -> tuple["_LazyLines", "_LazyLines"]:
        """(raw, stripped) views of ``data``'s lines."""
        starts = array("q", [0])
        find, at = data.find, 0
        while True:
            nl = find(b"\n", at)
            if nl < 0:
                break
            at = nl + 1
            starts.append(at)
        starts.append(len(data) + 1)  # the last line ends at the text's end
        return cls(data, starts, False), cls(data, starts, True)

    def __len__(self) -> int:
        return self._n

    def line(self, i: int) -> str:
        starts = self._starts
        text = _clean(self._data[starts[i]:starts[i + 1] - 1].decode("utf-8", errors="replace"))
        return text.strip() if self._strip else text

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        cache = self._cache
        if len(cache) >= self.CACHE:
            cache.clear()
        hit = cache[i] = self.line(i)
        return hit

    def __iter__(self):
        return (self.line(i) for i in range(self._n))

    def dedented(self, start: int, end: int) -> str:
        """Lines ``start:end`` joined as textwrap.dedent would, built once as bytes."""
        cut = len(_margin(self.line(i) for i in range(start, end)))
        out = bytearray()
        for i in range(start, end):
            text = self.line(i)
            out += (text[cut:] if text.strip(" \t") else "").encode("utf-8", "surrogatepass")
            out += b"\n"
        return out.decode("utf-8", errors="replace").strip("\n") + "\n"


def _margin(lines: Iterable[str]) -> str:
    """The whitespace (spaces and tabs) every line that is not blank starts with: what
    textwrap.dedent removes, without importing textwrap (~0.8 ms of every analysis)."""
    margin: str | None = None
    for text in lines:
        rest = text.lstrip(" \t")
        if not rest:
            continue
        indent = text[: len(text) - len(rest)]
        margin = indent if margin is None else _common_prefix(margin, indent)
        if not margin:
            return ""
    return margin or ""


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


def _free_flags_in_name(origin: str) -> str | None:
    """``free -m`` flags from a file name such as sos's ``free_-m`` or ``free -h.txt``."""
    m = re.search(r"(?:^|/)free[_ ]+((?:-{1,2}[a-z]+[_ ]*)+)(?:\.\w+)?$", origin)
    return " ".join(m.group(1).replace("_", " ").split()) if m else None


def _first_text(lines: Sequence[str], start: int, end: int) -> str:
    """The first non-blank line of ``lines[start:end]`` (without making that slice)."""
    return next((lines[k].strip() for k in range(start, end) if lines[k].strip()), "")


def _why(first: str, command: str | None) -> str:
    key = _hinted_key(command)
    if command and key:
        if _ERROR.search(first):
            return f"`{command}` printed an error instead of its output: {first[:100]!r}; skipped"
        return f"`{command}` output not recognised as {LABELS[key]} (truncated or altered?); skipped"
    if first.startswith(("Buffers:", "Cached:", "MemFree:", "Active:")) and ":" in first:
        return "looks like part of /proc/meminfo but its MemTotal line is missing; skipped"
    return f"not a recognised output: {first[:60]!r}; skipped"


def recognize(text: str, origin: str) -> list[Chunk]:
    """The recognised outputs in ``text`` (see :func:`split` for what is left over)."""
    return split(text, origin).chunks


def read_text_data(path: str, limit: int = TEXT_LIMIT) -> bytes:
    """A text file people pasted into, as UTF-8 bytes for :func:`split`: UTF-8 (a BOM dropped),
    or UTF-16 with or without a BOM (Windows editors), converted.

    Raises :class:`~memdiag.evidence.Unreadable` for binary data and oversized files.
    """
    import os

    try:
        size = os.path.getsize(path)
        if size > limit:
            raise Unreadable(path, f"larger than {limit // 1048576} MiB; not a pasted output", "malformed")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except PermissionError:
        raise Unreadable(path, "permission denied", "permission") from None
    except OSError as exc:
        raise Unreadable(path, exc.strerror or str(exc)) from None
    sample = data[:4096]
    if len(sample) >= 4 and sample[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        odd_nul = sample[1::2].count(0) > len(sample) // 4
        even_nul = sample[0::2].count(0) > len(sample) // 4
        if odd_nul and not sample[0::2].count(0):
            return data.decode("utf-16-le", errors="replace").encode("utf-8", "surrogatepass")
        if even_nul and not sample[1::2].count(0):
            return data.decode("utf-16-be", errors="replace").encode("utf-8", "surrogatepass")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return decode(data, path).encode("utf-8", "surrogatepass")
    if b"\x00" in data[:65536]:
        raise Unreadable(path, "binary data where text was expected", "malformed")
    return data[3:] if data[:3] == b"\xef\xbb\xbf" else data


def read_text_file(path: str, limit: int = TEXT_LIMIT) -> str:
    """:func:`read_text_data` decoded."""
    return read_text_data(path, limit).decode("utf-8", errors="replace")
