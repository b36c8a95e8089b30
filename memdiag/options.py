"""The options every memdiag command takes, as data, and a reader for plain command lines.

The argument parser (:mod:`memdiag.argparsing`) is built from :data:`COMMON`. A plain diagnosis
- ``memdiag``, ``memdiag run ...``, ``memdiag analyze PATH... ...`` with options spelled out in
full - is read by :func:`read_plain` from the same table without importing argparse, which
with gettext and locale, building the parser and looking up its messages' translations costs
~4 ms of a 50 ms run. Anything else it is not sure of (help, abbreviations, ``-fjson``, a value
that starts with ``-``, a bad number or choice, ``--``) it leaves to argparse, which then reads
the whole command line, or says what is wrong with it, as before.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable


class Option:
    """One option: its flags, where argparse stores it (``dest``) and how (``action``:
    ``store``, ``append`` or ``store_true``), with its default, help and argparse extras."""

    __slots__ = ("flags", "dest", "action", "default", "help", "metavar", "type", "choices")

    def __init__(self, flags: tuple[str, ...], dest: str, action: str = "store", default: Any = None,
                 help: str | None = None, metavar: str | None = None, type: Callable | None = None,
                 choices: tuple[str, ...] | None = None) -> None:
        self.flags, self.dest, self.action, self.default = flags, dest, action, default
        self.help, self.metavar, self.type, self.choices = help, metavar, type, choices

    def fresh_default(self) -> Any:
        """The default as argparse sets it: a new list for ``append`` options."""
        return list(self.default) if isinstance(self.default, list) else self.default


#: Every command's options, in ``--help`` order.
COMMON: tuple[Option, ...] = (
    Option(("--format", "-f"), "format", default="text", help="report format: text, json, or one a plugin adds"),
    Option(("--rules",), "rules", "append", [], "add rule files or folders", "PATH"),
    Option(("--param",), "param", "append", [], "override a rule param", "RULE.NAME=VALUE"),
    Option(("--overrides",), "overrides", metavar="FILE",
           help="site overrides file (default: $MEMDIAG_OVERRIDES, /etc/memdiag/overrides.yaml; '' for none)"),
    Option(("--timeout",), "timeout", default=20.0, type=float, metavar="SECONDS",
           help="overall deadline for reading evidence"),
    Option(("--plugins-dir",), "plugins_dir", "append", [], "load loose *.py plugins from DIR", "DIR"),
    Option(("-p",), "plugin_flags", "append", [], "block plugin NAME", "no:NAME"),
    Option(("--strict-plugins",), "strict_plugins", "store_true", False, "a plugin that fails to load is an error"),
    Option(("--config",), "config", metavar="FILE", help="configuration file (sinks)"),
    Option(("--sink",), "sink", "append", [], "deliver to this configured sink only", "NAME"),
    Option(("--no-sinks",), "no_sinks", "store_true", False, "deliver to no sink"),
    Option(("--dry-run",), "dry_run", "store_true", False, "print what each sink would send; send nothing"),
    Option(("--color",), "color", default="auto", choices=("auto", "always", "never")),
    Option(("--debug",), "debug", "store_true", False, "show tracebacks"),
)

#: The options that must be known before plugins load (they decide which plugins load).
PLUGIN_OPTIONS = ("plugins_dir", "plugin_flags", "strict_plugins", "debug")

#: Commands a plain command line may name, and whether they take paths.
PLAIN_COMMANDS = {"run": False, "analyze": True}

_BY_FLAG = {flag: opt for opt in COMMON for flag in opt.flags}


class Args:
    """What argparse's Namespace would hold for a plain command line (commands read the same
    attributes from either)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Args({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"


def read_plain(argv: list[str]) -> tuple[str, Args, list[str]] | None:
    """``(command, args, words)`` for a plain diagnosis, ``None`` for anything else.

    ``command`` is ``run`` when ``argv`` names none; ``words`` are the option values and paths
    given, which the caller checks against plugin command names (argparse would take such a
    word for the command). ``args`` has no ``command`` or ``handler`` yet."""
    args = Args(**{opt.dest: opt.fresh_default() for opt in COMMON})
    command, rest = "run", argv
    if argv and not argv[0].startswith("-"):
        command, rest = argv[0], argv[1:]
        if command not in PLAIN_COMMANDS:
            return None
    paths: list[str] = []
    values: list[str] = []
    i, positional_run_over = 0, False
    while i < len(rest):
        token = rest[i]
        i += 1
        if not token.startswith("-") or token == "-":
            if positional_run_over or not PLAIN_COMMANDS[command]:
                return None  # argparse reads paths in one run only; run takes none
            paths.append(token)
            continue
        if paths:
            positional_run_over = True
        flag, eq, value = token.partition("=")
        opt = _BY_FLAG.get(flag)
        if opt is None or (eq and not flag.startswith("--")):
            return None
        if opt.action == "store_true":
            if eq:
                return None
            setattr(args, opt.dest, True)
            continue
        if not eq:
            if i >= len(rest):
                return None
            value = rest[i]
            i += 1
            if value.startswith("-"):
                return None  # a negative number, a missing value: argparse decides
        if opt.type is not None:
            try:
                converted = opt.type(value)
            except ValueError:
                return None
        else:
            converted = value
        if opt.choices is not None and converted not in opt.choices:
            return None
        values.append(value)
        if opt.action == "append":
            getattr(args, opt.dest).append(converted)
        else:
            setattr(args, opt.dest, converted)
    if PLAIN_COMMANDS[command]:
        if not paths:
            return None
        args.paths = paths
    return command, args, values + paths
