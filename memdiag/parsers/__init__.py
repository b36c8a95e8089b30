"""Parsers for captured command output: one module per format (``top``, ``free``, ``ps``, ...).

Each parser takes the text and its origin (the file, or ``file:LINE`` for a pasted chunk) and
returns plain records (written-out classes, compared by their fields) with sizes in bytes. Text that is not the expected output (an error
message, a truncated paste, binary junk) raises :class:`ParseError`, which names the origin, so
the source reading it reports a skipped source in one line instead of a traceback.
"""

from __future__ import annotations

from memdiag.evidence import Unreadable

class LazyPattern:
    """``re.compile(pattern, flags)``, made the first time it is used.

    A module with dozens of patterns, most needed only when their kind of line turns up (an OOM
    report in a kernel log, a prompt in a paste), then costs nothing to import: compiling them
    all was most of the import time. After the first call ``match``, ``search``, ``findall``,
    ... are the compiled pattern's own bound methods, kept on the instance.
    """

    _METHODS = ("match", "fullmatch", "search", "findall", "finditer", "split", "sub", "subn")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_args":  # not a pattern's attribute (copy, pickle, ...)
            raise AttributeError(name)
        import re  # here, not at the top: a plain diagnosis compiles no pattern and imports no re (~3 ms)

        compiled = re.compile(*self._args)  # two threads may both compile: the same pattern either way
        for method in self._METHODS:
            setattr(self, method, getattr(compiled, method))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self._args[0]!r})"


#: A shell prompt, possibly followed by a command: ``[root@h ~]# free -m``, ``$ top -bn1``,
#: ``user@host:~$ ps aux``, ``host# lsmod``, ``> cat /proc/meminfo``.
#: A bare ``%`` does not count: top's ``%Cpu(s):`` line starts with one.
PROMPT_RE = LazyPattern(
    r"^\s*(?:\[[^\]\n]{1,80}\]\s?[#$%]|[\w.@:~/+-]{0,80}[#$]|[\w.@:~/+-]{1,80}%|>)\s*(?P<cmd>\S.*)?$"
)


_WORD_MARKS = "_.@:~/+-"  # besides letters and digits (\w), what a prompt's user@host:path holds


def _is_word(s: str) -> bool:
    r"""Every character of ``s`` is one of PROMPT_RE's ``[\w.@:~/+-]`` (True for "")."""
    if s.isalnum():
        return True
    for mark in _WORD_MARKS:
        s = s.replace(mark, "")
    return not s or s.isalnum()  # str.isalnum is \w without "_", character for character


def prompt(line: str) -> str | None:
    """``PROMPT_RE.match(line)`` in str code: ``None`` when ``line`` is no prompt line, else the
    command after the prompt (``""`` for a bare prompt).

    Most lines read have none of ``#$%>``, which every prompt ends with, and are answered by
    four ``in`` tests; a parse needs no pattern compiled (~0.2 ms of a run). A line holding a
    newline, which ``.`` and ``$`` treat specially, goes to the pattern itself.
    """
    if "#" not in line and "$" not in line and "%" not in line and ">" not in line:
        return None
    if "\n" in line:
        m = PROMPT_RE.match(line)
        return None if m is None else m.group("cmd") or ""
    rest = line.lstrip()  # ^\s*
    if rest[:1] == "[":  # \[[^\]\n]{1,80}\]\s?[#$%]
        close = rest.find("]", 1)
        if not 2 <= close <= 81:
            return None
        end = close + 2 if rest[close + 1 : close + 2].isspace() else close + 1
        if rest[end : end + 1] not in ("#", "$", "%"):
            return None
        end += 1
    elif rest[:1] == ">":
        end = 1
    else:  # [\w.@:~/+-]{0,80}[#$] or [\w.@:~/+-]{1,80}%: the first of #$% ends the word
        head = rest[:81]
        end = min((i for i in (head.find("#"), head.find("$"), head.find("%")) if i >= 0), default=-1)
        if end < 0 or not _is_word(head[:end]) or end == 0 and head[0] == "%":
            return None
        end += 1
    return rest[end:].lstrip()  # \s*(?P<cmd>\S.*)?$, whatever follows (no newline in it)


class ParseError(Unreadable):
    """Text that is not the output it was taken for. ``kind`` is always ``malformed``."""

    def __init__(self, origin: str, message: str) -> None:
        super().__init__(origin, message, "malformed")


def content_lines(text: str) -> list[str]:
    """Lines of ``text`` without CR line ends, form feeds or trailing blanks."""
    return [line.rstrip("\r\x0c \t") for line in text.replace("\r\n", "\n").split("\n")]


def command_line(text: str) -> str | None:
    """The command typed on a shell prompt line leading ``text``, if there is one."""
    for line in content_lines(text):
        if not line.strip():
            continue
        return prompt(line) or None
    return None
