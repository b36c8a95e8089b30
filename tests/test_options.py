"""The plain command-line reader agrees with argparse wherever it answers, and leaves the rest
to argparse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag import cli, registry
from memdiag.argparsing import preparse
from memdiag.errors import UsageError
from memdiag.options import COMMON, PLAIN_COMMANDS, PLUGIN_OPTIONS, read_plain

REG = registry.load(autoload=False)


def parsed_by_argparse(argv: list[str]) -> dict | None:
    """What ``memdiag ARGV`` stores, as argparse reads it (None: a usage error)."""
    if not argv or argv[0].startswith("-"):
        argv = ["run", *argv]
    parser = cli.build_parser(REG, only=[argv[0]], listed=False)
    try:
        ns = parser.parse_args(argv)
    except UsageError:
        return None
    values = vars(ns)
    values.pop("handler")
    return values


def check(argv: list[str]) -> None:
    plain = read_plain(argv)
    if plain is None:
        return
    command, args, _values = plain
    assert parsed_by_argparse(argv) == {**vars(args), "command": command}, argv
    pre = vars(preparse(argv))
    assert {k: getattr(args, k) for k in PLUGIN_OPTIONS} == pre


@pytest.mark.parametrize("argv", [
    [], ["run"], ["--no-sinks"], ["run", "--no-sinks", "--format", "json"], ["run", "--format=json", "-f", "text"],
    ["analyze", "a"], ["analyze", "a", "b", "--no-sinks"], ["analyze", "--timeout", "3.5", "a", "b"],
    ["analyze", "a", "--rules", "r1", "--rules=r2", "--param", "x.y=1", "-p", "no:gpu", "--plugins-dir", "d"],
    ["run", "--color", "never", "--debug", "--dry-run", "--sink", "s", "--config", "c", "--overrides", ""],
    ["run", "--timeout=-1"], ["run", "--format="], ["analyze", "-"], ["run", "--strict-plugins", "--strict-plugins"],
])
def test_plain_command_lines_read_as_argparse_reads_them(argv):
    assert read_plain(argv) is not None
    check(argv)


@pytest.mark.parametrize("argv", [
    ["-h"], ["run", "--help"], ["--version"], ["facts"], ["explain", "x"], ["fleet"], ["no-such-command"],
    ["run", "--no-s"], ["run", "-fjson"], ["run", "--timeout", "-1"], ["run", "--timeout", "soon"],
    ["run", "--color", "blue"], ["run", "x"], ["analyze"], ["analyze", "a", "--no-sinks", "b"], ["run", "--"],
    ["run", "--no-sinks=yes"], ["run", "-p=no:x"], ["run", "--format"], ["--format", "json", "analyze", "a"],
])
def test_anything_else_is_left_to_argparse(argv):
    assert read_plain(argv) is None


def test_option_values_and_paths_are_returned_for_the_command_name_check():
    assert read_plain(["run", "--sink", "fleet", "--format=json"])[2] == ["fleet", "json"]
    assert read_plain(["analyze", "report", "--rules", "r"])[2] == ["r", "report"]


_TOKENS = st.sampled_from(sorted({f for o in COMMON for f in o.flags} | set(PLAIN_COMMANDS) | {
    "a", "b", "json", "never", "auto", "1.5", "-2", "no:x", "--", "-", "--no-s", "-fjson", "--format=", "x=y",
    "--timeout=3", "--color=always", "--help", "facts"}))


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=8))
def test_any_command_line_the_reader_answers_reads_as_argparse_reads_it(argv):
    check(argv)


def test_main_reads_a_plain_command_line_without_argparse(tmp_path):
    import subprocess
    import sys

    from testkit import SEED

    code = ("import sys; from memdiag.cli import main; main(sys.argv[1:]); "
            "print(sorted(m for m in ('argparse', 'gettext', 'memdiag.argparsing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, "analyze", str(SEED), "--no-sinks", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("[]")
    out = subprocess.run([sys.executable, "-c", code, "analyze", str(SEED), "--no-s", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("['argparse', 'gettext', 'memdiag.argparsing']")
