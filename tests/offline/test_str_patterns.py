"""Patterns of the analyze path replaced by str code give the answers the patterns gave.

Each original pattern is kept here as the reference; generated and mutated realistic lines, with
the characters that make regular expressions and str methods part ways (non-ASCII digits and
blanks, case folds like the Kelvin sign, a trailing newline before ``$``), must be answered the
same by both.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings

from memdiag.parsers import PROMPT_RE, prompt
from patternkit import ALL, lines


def test_the_character_classes_are_the_str_methods():
    """What the replacements build on, for every code point."""
    assert re.findall(r"\s", ALL) == [c for c in ALL if c.isspace()]
    assert re.findall(r"\d", ALL) == [c for c in ALL if c.isdecimal()]
    assert re.findall(r"\w", ALL) == [c for c in ALL if c.isalnum() or c == "_"]
    assert re.findall(r"\S+", ALL) == ALL.split()


def test_the_case_folds_of_the_unit_letters_are_the_ones_free_lists():
    from memdiag.parsers.free import _I_LETTERS, _UNIT_LETTERS

    assert "".join(re.findall("[BKMGTP]", ALL, re.IGNORECASE)) == "".join(sorted(_UNIT_LETTERS))
    assert "".join(re.findall("i", ALL, re.IGNORECASE)) == "".join(sorted(_I_LETTERS))


# -- memdiag.parsers.prompt: PROMPT_RE.match ---------------------------------------------------

_PROMPTS = (
    "[root@host ~]# free -m", "[root@host ~] # ps aux", "[root@h ~]$", "[me@h tmp]% top -bn1", "$ top -bn1",
    "user@host:~$ ps aux", "host# lsmod", "> cat /proc/meminfo", "  # cat /proc/meminfo  ", "%Cpu(s):  1.0 us",
    "a%  b", "root      1  0.0  0.1 171628 13216 ?  Ss  Nov25   0:03 /usr/lib/systemd/systemd --switched-root",
    "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND", "vmtoolsd 100% idle", "x" * 80 + "# cmd",
    "x" * 81 + "# cmd", "[" + "y" * 80 + "]# cmd", "[" + "y" * 81 + "]# cmd", "[]# cmd", "sh-4.2# uname -a",
    "bash-5.1$ echo a > b", "[root@h ~]#\tcat x", "ubuntu@ip-10-0-0-1:/var/log$ dmesg | tail",
)


def _prompt_by_pattern(line: str) -> str | None:
    m = PROMPT_RE.match(line)
    return None if m is None else m.group("cmd") or ""


@settings(max_examples=2000, deadline=None)
@given(lines(*_PROMPTS, max_size=100))
@example("[a]\n#")
@example("$ ls\n")
@example("x\u212a$ y")
@example("\u0661\u0662# y")
@example("\u2028$\u2028cmd\u2028")
def test_prompt_answers_as_the_pattern(line):
    assert prompt(line) == _prompt_by_pattern(line)


# -- memdiag.parsers._table.fields: re.finditer(r"\S+") -----------------------------------------

_ROWS = (
    "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND",
    "root           1  0.0  0.1 171628 13216 ?        Ss   Nov25   0:03 /usr/lib/systemd/systemd --switched-root",
    "  PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND",
    " 1234 mysql     20   0 2563484 1.734g  21436 S   0.3  22.1 125:11.11 mysqld",
    "vmw_balloon            20480  0", "\t a \u3000b\u2028c  ", "",
)


@settings(max_examples=2000, deadline=None)
@given(lines(*_ROWS, max_size=80))
def test_fields_are_the_runs_of_non_blanks_the_pattern_finds(line):
    from memdiag.parsers._table import Header, by_position, fields, header

    assert fields(line) == [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", line)]
    h = header(line, ("COMMAND",))
    assert h.spans == [m.span() for m in re.finditer(r"\S+", line)]
    ref = Header(["A", "B"], [(0, 4), (10, 14)], None)
    for col, (start, end) in enumerate(ref.spans):
        best, most = None, 0
        for m in re.finditer(r"\S+", line):
            if min(end, m.end()) - max(start, m.start()) > most:
                best, most = m.group(), min(end, m.end()) - max(start, m.start())
        assert by_position(ref, line, col) == best


# -- memdiag.parsers.free.split_value: _VALUE -----------------------------------------------------

_VALUE = re.compile(r"^(\d+(?:[.,]\d+)?)([BKMGTP]i?)?$", re.IGNORECASE)
_FREE_VALUES = ("7.6G", "7.6Gi", "1,5Mi", "233064", "0B", "12k", "3Ti", "1.2.3", "5,", "Ki", "5KKi", "\u212ai",
                "1\u0130", "\u0665\u0666M", "7.6g\n", "2pi", "10 M", "-5")


@settings(max_examples=2000, deadline=None)
@given(lines(*_FREE_VALUES, max_size=12))
@example("5\n\n")
@example("5Ki\n")
def test_a_free_value_splits_as_by_the_pattern(token):
    from memdiag.parsers.free import split_value

    m = _VALUE.match(token)
    assert split_value(token) == (None if m is None else (m.group(1), m.group(2) or ""))


# -- memdiag.parsers.modules.module_name: _LINE ---------------------------------------------------

_MODULE_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s+(\d+)\s+(-?\d+|-)(?:\s|$)")
_MODULE_LINES = ("Module                  Size  Used by", "vmw_balloon            20480  0",
                 "nf_conntrack          172032  3 xt_conntrack,nf_nat,nf_conntrack_netlink",
                 "vmw_balloon 20480 0 - Live 0xffffffffc0a3c000", "dm_mod 155648 -1 - Live 0x0", "a-b_c 1 - x",
                 "xfs 1949696 2", "xfs 19496", "$ lsmod", "n\u0131 12 0")


@settings(max_examples=2000, deadline=None)
@given(lines(*_MODULE_LINES))
@example("a 1 2\n")
@example("__ 1 --5")
def test_a_module_line_is_named_as_by_the_pattern(line):
    from memdiag.parsers.modules import module_name

    m = _MODULE_LINE.match(line)
    assert module_name(line) == (None if m is None else m.group(1))


# -- memdiag.parsers.uname.is_release: _RELEASE ---------------------------------------------------

_RELEASE = re.compile(r"^\d+\.\d+[\w.+~-]*$")
_RELEASES = ("5.14.0-362.8.1.el9_3.x86_64", "3.10.0-1160.el7.x86_64", "6.1.0-13-amd64", "4.4.0~rc1+", "6", "6.",
             ".6", "6.x", "2.6.32-754.el6.x86_64\n", "5.4.0-1\u00e9", "\u0665.\u0661", "1.2\u2167")


@settings(max_examples=2000, deadline=None)
@given(lines(*_RELEASES, max_size=30))
@example("1.2\n\n")
@example("1.2 ")
def test_a_release_is_told_as_by_the_pattern(word):
    from memdiag.parsers.uname import is_release

    assert is_release(word) == bool(_RELEASE.match(word))
