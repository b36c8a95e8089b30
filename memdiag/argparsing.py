"""argparse for memdiag: the whole command line, built from the option table in
:mod:`memdiag.options`. Imported only when a command line is not a plain diagnosis
(see :func:`memdiag.options.read_plain`), or for ``--help``."""

from __future__ import annotations

import argparse
import os
import sys

from memdiag.errors import UsageError
from memdiag.options import COMMON, PLUGIN_OPTIONS


def _columns() -> int:
    """What ``shutil.get_terminal_size().columns`` says, without importing shutil (and with it
    bz2 and lzma): argparse asks on every ``add_argument``, not only for help."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class RawFormatter(Formatter, argparse.RawDescriptionHelpFormatter):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get memdiag's exit code 3."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def common() -> argparse.ArgumentParser:
    """The options every command takes (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False, formatter_class=Formatter)
    g = p.add_argument_group("common options")
    for opt in COMMON:
        extra = {k: getattr(opt, k) for k in ("help", "metavar", "type", "choices") if getattr(opt, k) is not None}
        g.add_argument(*opt.flags, dest=opt.dest, action=opt.action, default=opt.default, **extra)
    return p


def preparse(argv: list[str]) -> argparse.Namespace:
    """Plugin options must be known before plugins load (which defines the subcommands)."""
    pre = argparse.ArgumentParser(add_help=False, formatter_class=Formatter)
    for opt in COMMON:
        if opt.dest in PLUGIN_OPTIONS:
            pre.add_argument(*opt.flags, dest=opt.dest, action=opt.action, default=opt.fresh_default())
    known, _ = pre.parse_known_args(argv)
    return known
