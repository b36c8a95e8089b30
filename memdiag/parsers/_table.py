"""Splitting the rows of a column table (``top``, ``ps``) by its header.

Columns are found by their header names, so extra or reordered columns are harmless. A row is
split on blanks; when it has more fields than the header (a command with spaces in it), the
free-text column takes the surplus; when the fields cannot be matched that way (a value with a
blank in the middle of the row), each wanted column is taken by its position under the header.
"""

from __future__ import annotations

from memdiag.facts import _Frozen


def fields(line: str) -> list[tuple[int, int, str]]:
    r"""(start, end, text) of each run of non-blanks, as ``re.finditer(r"\S+", line)`` finds them.

    str.split splits on the same blanks (str.isspace is \s); each field is then found from the
    end of the one before: only blanks lie in between, so the first hit is the field itself.
    """
    out, at = [], 0
    for word in line.split():
        at = line.find(word, at)
        out.append((at, at + len(word), word))
        at += len(word)
    return out


class Header(_Frozen):
    """A table's column header (immutable; written out rather than a dataclass, whose import
    costs ~5 ms of start-up)."""

    __slots__ = ("names", "spans", "wide")
    names: list[str]  # upper-cased
    spans: list[tuple[int, int]]
    wide: int | None  # index of the free-text column (COMMAND, CMD, ARGS), if any

    def __init__(self, names: list[str], spans: list[tuple[int, int]], wide: int | None) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "spans", spans)
        object.__setattr__(self, "wide", wide)

    def index(self, *names: str) -> int | None:
        for name in names:
            if name in self.names:
                return self.names.index(name)
        return None


def header(line: str, wide_names: tuple[str, ...]) -> Header:
    spans, names = [], []
    for start, end, word in fields(line):
        spans.append((start, end))
        names.append(word.upper())
    wide = next((i for i, n in enumerate(names) if n in wide_names), None)
    return Header(names, spans, wide)


def split_row(h: Header, line: str) -> list[str] | None:
    """The row's values, one per header column; ``None`` when they cannot be told apart."""
    n = len(h.names)
    words = line.split()
    if len(words) == n:
        return words
    if len(words) > n and h.wide is not None:
        found = fields(line)
        right = n - h.wide - 1
        head = words[: h.wide]
        tail = words[len(words) - right :] if right else []
        middle = found[h.wide : len(found) - right]
        return head + [line[middle[0][0] : middle[-1][1]]] + tail
    return None


def by_position(h: Header, line: str, col: int) -> str | None:
    """The field of ``line`` lying under header column ``col``: the one overlapping it most."""
    start, end = h.spans[col]
    best, best_overlap = None, 0
    for f_start, f_end, word in fields(line):
        overlap = min(end, f_end) - max(start, f_start)
        if overlap > best_overlap:
            best, best_overlap = word, overlap
    return best


def pick(h: Header, line: str, cols: list[int]) -> list[str] | None:
    """Values of ``cols`` in ``line``, by splitting when possible, else by position."""
    row = split_row(h, line)
    if row is not None:
        return [row[c] for c in cols]
    values = [by_position(h, line, c) for c in cols]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def command_name(text: str, args: bool = False) -> str:
    """The program name in a COMMAND value, whether it shows the name or the full command line.

    ``[kworker/0:1]`` -> ``kworker/0:1``; ``/usr/bin/vmtoolsd -n vmusr`` -> ``vmtoolsd``;
    ``sshd: root@pts/0`` -> ``sshd``; ``java`` -> ``java``. With ``args`` (``ps``, whose COMMAND
    is usually the full command line) the first word always names the program (``-bash`` ->
    ``bash``); otherwise (``top``, which shows the bare name unless ``-c``) a name with blanks
    (``Web Content``) is kept whole.
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    first = text.split(None, 1)[0] if text else text
    if first.startswith(("/", "./")):
        return first.rsplit("/", 1)[-1]
    if args:
        return first.lstrip("-").rstrip(":") or first
    if " " in text and first.endswith(":"):
        return first[:-1]
    return text
