"""The memdiag command line.

    memdiag [run]            diagnose this host
    memdiag analyze PATH...  diagnose captures, sosreports, folders of command output
    memdiag facts            the fact catalog          memdiag explain NAME   one fact or rule
    memdiag rules list|show|validate|test

Exit codes (Nagios-compatible): 0 nothing above info, 1 warning, 2 critical, 3 memdiag could not
run, 4 invalid rules; 5, 6, 7: ok, warning, critical, but findings could not be delivered (they
wait in the outbox). Errors print as one line naming the file and the problem; --debug adds the
traceback.
"""

from __future__ import annotations

import gc
import os
import sys

from memdiag import __version__
from memdiag.errors import EXIT_DELIVERY, EXIT_OK, EXIT_UNKNOWN, MemdiagError, UsageError
from memdiag.options import read_plain

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    import argparse
    from typing import Callable, Iterable, Sequence

BUILTIN_COMMANDS = ("run", "analyze", "facts", "explain", "rules")


def _blocked(flags: list[str]) -> set[str]:
    blocked = set()
    for flag in flags:
        if not flag.startswith("no:") or len(flag) <= 3:
            raise UsageError(f"-p {flag}: expected no:NAME")
        blocked.add(flag[3:])
    return blocked


def load_registry(args: argparse.Namespace):
    """The plugins of this run: loaded once, and handed to commands as ``args.registry``."""
    loaded = getattr(args, "registry", None)
    if loaded is not None:
        return loaded
    from memdiag import pipeline, registry

    allow_env = os.environ.get("MEMDIAG_PLUGINS")
    allow = None if allow_env is None else {n.strip() for n in allow_env.split(",") if n.strip()}
    dirs = list(getattr(args, "plugins_dir", []) or [])
    if os.path.isdir(registry.PLUGINS_DIR):
        dirs.append(registry.PLUGINS_DIR)
    reg = pipeline.load_registry(dirs=dirs, blocked=_blocked(getattr(args, "plugin_flags", []) or []),
                                 allow=allow, strict=getattr(args, "strict_plugins", False), cached=False)
    for note in pipeline.plugin_notes(reg):
        print(f"memdiag: {note}", file=sys.stderr)
    if any(p.origin != "builtin" and not p.skipped for p in reg.plugins):
        _console.own_code_only = False
    return reg


def rules_for(args: argparse.Namespace, reg, *, quiet: bool = False):
    from memdiag import pipeline
    from memdiag.ruleset import parse_param_args

    rs = pipeline.load_rules(reg, args.rules, parse_param_args(args.param), site_file=args.overrides)
    if not quiet:
        for problem in rs.problems:
            print(f"memdiag: {problem}", file=sys.stderr)
    return rs


def render_document(doc: dict, args: argparse.Namespace, reg) -> str:
    from memdiag import pipeline

    if args.format not in reg.formats:  # before asking the terminal anything
        return pipeline.render(reg, doc, args.format)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    width = min(os.get_terminal_size().columns if sys.stdout.isatty() else 80, 100)
    return pipeline.render(reg, doc, args.format, color=color, width=width)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _deliver(doc: dict, args: argparse.Namespace, reg, *, default_on: bool) -> int:
    """Hand findings to the configured sinks; never changes or hides the diagnosis."""
    if args.no_sinks or args.format == "nagios":
        return EXIT_OK
    if not args.sink and not default_on and not args.dry_run:
        return EXIT_OK
    from memdiag import delivery

    config = delivery.find_config(args.config)
    if config is None:
        if args.sink:
            raise UsageError("--sink given but no configuration file found (use --config or $MEMDIAG_CONFIG)")
        return EXIT_OK
    report = delivery.deliver(doc, registry=reg, config_path=config, only=args.sink or None,
                              dry_run=args.dry_run, stream=sys.stdout)
    for line in report.lines:
        print(f"memdiag: {line}", file=sys.stderr)
    return report.exit_code


# -- commands ---------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace, reg) -> int:
    from memdiag import pipeline

    rs = rules_for(args, reg)
    diag = pipeline.diagnose_source(os.environ.get("MEMDIAG_ROOT", "/"), registry=reg, rules=rs, live_root=True,
                                    timeout=args.timeout)
    _emit(render_document(diag.document, args, reg))
    return _with_delivery(diag.exit_code, _deliver(diag.document, args, reg, default_on=True))


def _with_delivery(diagnosis: int, delivery: int) -> int:
    """A failed delivery adds 5, so the exit status keeps the verdict: 5 ok, 6 warning, 7 critical."""
    return diagnosis + EXIT_DELIVERY if delivery else diagnosis


def cmd_analyze(args: argparse.Namespace, reg) -> int:
    from memdiag import pipeline

    rs = rules_for(args, reg)
    paths = _expand_inputs(args.paths)
    if len(paths) > 1 and _console.command:  # the rules serve every input: frozen, never scanned again
        gc.freeze()
    docs, failed = [], 0
    progress = len(paths) > 1 and sys.stderr.isatty()
    for n, path in enumerate(paths, 1):
        if progress:
            print(f"memdiag: analyzing {n}/{len(paths)}: {path}", file=sys.stderr)
        try:
            diag = pipeline.diagnose_source(path, registry=reg, rules=rs, timeout=args.timeout)
        except MemdiagError as exc:
            if len(paths) == 1:
                raise
            print(f"memdiag: {exc}", file=sys.stderr)  # one bad input never stops the others
            failed += 1
            continue
        docs.append(diag.document)
        if not (args.format == "json" and len(paths) > 1):
            _emit(render_document(diag.document, args, reg))
    if not docs:
        return EXIT_UNKNOWN
    if args.format == "json" and len(paths) > 1:
        import json

        _emit(json.dumps(docs, indent=2, ensure_ascii=False))  # one valid JSON value: an array
    if len(docs) > 1 and args.format == "text":
        _emit(summary_table(docs))
    codes = [_deliver(d, args, reg, default_on=False) for d in docs]
    from memdiag.document import exit_code

    code = max(exit_code(d) for d in docs)
    code = code if not failed or code == 2 else EXIT_UNKNOWN  # a critical result stays visible
    return _with_delivery(code, max(codes))


def _expand_inputs(paths: list[str]) -> list[str]:
    """A folder of several captures or sosreports stands for each of them."""
    try:
        from memdiag.plugins.inputs import expand
    except ImportError:
        return list(paths)
    return [p for path in paths for p in expand(path)]


def summary_table(docs: list[dict]) -> str:
    """One line per host: host, verdict, top finding, unaccounted."""
    from memdiag.document import severity_rank
    from memdiag.units import format_bytes, format_ratio

    rows = [("HOST", "VERDICT", "TOP FINDING", "UNACCOUNTED")]
    for d in sorted(docs, key=lambda d: -severity_rank(d["verdict"]["severity"])):
        acc = d.get("accounting", {})
        un = acc.get("unaccounted_bytes")
        rows.append((d["host"], d["verdict"]["severity"].upper(),
                     d["findings"][0]["title"] if d["findings"] else "-",
                     "-" if un is None else f"{format_bytes(un)} ({format_ratio(acc.get('unaccounted_ratio'))})"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(" ".join(c.ljust(widths[i]) if i < 3 else c for i, c in enumerate(r)) for r in rows)


def cmd_facts(args: argparse.Namespace, reg) -> int:
    from memdiag import pipeline

    cat = pipeline.catalog(reg)
    specs = [s for s in cat if not args.pattern or args.pattern.lower() in s.name.lower()]
    if args.format == "json":
        import json

        _emit(json.dumps([{"name": s.name, "type": s.type, "unit": s.unit, "source": s.source, "since": s.since,
                           "doc": s.doc} for s in specs], indent=2))
        return EXIT_OK
    width = max((len(s.name) for s in specs), default=10)
    for s in specs:
        first = s.doc.split(". ")[0].rstrip(".")
        kind = s.type if s.type != "count" else f"count of {s.unit}" if s.unit else "count"
        _emit(f"{s.name.ljust(width)}  {kind:<10} {first}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, reg) -> int:
    from memdiag import pipeline
    from memdiag.engine import display
    from memdiag.facts import UNKNOWN

    cat = pipeline.catalog(reg)
    rs = rules_for(args, reg, quiet=True)
    rule = rs.get(args.name)
    spec = cat.get(args.name)
    hint = None if cat.is_exact(args.name) else cat.suggest(args.name)
    if rule is None and (spec is None or hint):
        raise UsageError(f"no fact or rule named '{args.name}'" + (f"; did you mean '{hint}'?" if hint else ""))
    diag = pipeline.diagnose_source(args.input or os.environ.get("MEMDIAG_ROOT", "/"), registry=reg, rules=rs,
                                    live_root=not args.input, timeout=args.timeout)
    ev = diag.evidence
    where = "this host" if ev.live else ev.label
    if rule is not None:
        from memdiag.explain import explain_rule

        _emit(explain_rule(rule, diag, where))
        return EXIT_OK
    value = diag.facts.get(args.name)
    _emit(f"{spec.name} ({spec.type}{', ' + spec.unit if spec.unit and spec.unit != spec.type else ''}; "
          f"from the {spec.source} source{'; kernel ' + spec.since if spec.since else ''})")
    _emit("")
    _emit(spec.doc)
    _emit("")
    if value is UNKNOWN:
        _emit(f"On {where}: unknown (no source could establish it).")
    else:
        _emit(f"On {where}: {display(value, spec.type)}" + (f"  [{value} bytes]" if spec.type == "bytes" else ""))
        _emit(f"From: {diag.facts.origin(args.name)}")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace, reg) -> int:
    from memdiag import rulecmds

    return rulecmds.run(args, reg)


# -- entry point ------------------------------------------------------------------------------

def command_names(reg) -> list[str]:
    """Every subcommand: the built-ins, then those plugins add."""
    return [*BUILTIN_COMMANDS, *(n for n in sorted(reg.commands) if n not in BUILTIN_COMMANDS)]


def build_parser(reg, only: Iterable[str] | None = None, *, listed: bool = True) -> argparse.ArgumentParser:
    """The whole command line. With ``only``, the other subcommands are listed (name and help,
    as ``--help`` shows them; not even that unless ``listed``) but not built: building every
    one costs ~3 ms of each run, listing them ~1 ms."""
    from memdiag.argparsing import Parser, RawFormatter, common as common_options

    wanted = None if only is None else set(only)
    common = common_options()
    parser = Parser(prog="memdiag", description="Find where a Linux host's memory went.",
                    parents=[common], formatter_class=RawFormatter,
                    epilog="Exit codes: 0 ok/info, 1 warning, 2 critical, 3 memdiag could not run, "
                           "4 invalid rules; 5/6/7 ok/warning/critical but findings not delivered "
                           "(kept in the outbox).")
    parser.add_argument("--version", action="version", version=f"memdiag {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    def add(name: str, help: str, run: Callable, configure: Callable | None = None) -> None:
        if wanted is not None and name not in wanted:
            if listed:
                sub.add_parser(name, help=help)  # listed, never parsed with
            return
        p = sub.add_parser(name, help=help, parents=[common], description=help)
        if configure:
            configure(p)
        p.set_defaults(handler=run)

    add("run", "diagnose this host (the default)", cmd_run)
    add("analyze", "diagnose captured evidence: memdiag captures, sosreports, folders or files of command output",
        cmd_analyze, lambda p: p.add_argument("paths", nargs="+", metavar="PATH"))
    add("facts", "list the fact catalog", cmd_facts, lambda p: p.add_argument("pattern", nargs="?"))

    def explain_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", metavar="NAME", help="a fact name (meminfo.Slab) or a rule id")
        p.add_argument("--input", metavar="PATH", help="explain against a capture instead of this host")

    add("explain", "explain a fact (with its current value) or a rule (and why it fired or not)", cmd_explain,
        explain_args)

    def rules_args(p: argparse.ArgumentParser) -> None:
        from memdiag import rulecmds

        rulecmds.configure(p)

    add("rules", "list, show, validate and test rules", cmd_rules, rules_args)
    for name in sorted(reg.commands):
        if name in BUILTIN_COMMANDS or (wanted is not None and name not in wanted and not listed):
            continue  # a deferred built-in's command is imported only when built or listed
        help_text, configure, run = reg.commands[name]
        add(name, help_text, lambda args, reg_, _run=run: _run(args), configure)
    return parser


_PLAIN_HANDLERS = {"run": cmd_run, "analyze": cmd_analyze}


class _Console:
    """What :func:`console` needs to know of the run (see there)."""

    #: the process is the memdiag command, not a program calling main(): what lives until exit
    #: (plugins, rules) may be frozen, never to be scanned by the collector again
    command = False
    #: start-up's objects are still to be frozen (the console turned collection off)
    freeze_at_start = False
    #: main's exit status once it returned; None: the interpreter shuts down as usual
    exit_code: int | None = None
    #: False once code other than memdiag's own was loaded
    own_code_only = True


_console = _Console()


def console() -> int:
    """The installed ``memdiag`` script: :func:`main`, with the interpreter's own housekeeping
    kept off what start-up builds.

    Start-up makes tens of thousands of objects that live until exit (modules, plugins, the
    fact catalog, compiled rules). Collecting garbage while they are made, and again as the
    interpreter shuts down, finds nothing to free (~3 + ~4 ms of a 60 ms run), so collection
    is off until the command itself starts; then they are frozen (never scanned again) and
    collection goes on as usual. And once every exit handler has run and the output is out,
    the process ends without freeing them one by one (~3 ms; see :func:`_end_now`)."""
    import atexit

    gc.disable()
    _console.command = _console.freeze_at_start = True
    atexit.register(_end_now)  # registered first, so it runs after every other exit handler
    try:
        code = main()
    finally:
        gc.freeze()
        gc.enable()
        _console.command = _console.freeze_at_start = False  # a later main() in this process is a program's
    _console.exit_code = code
    return code


def _started() -> None:
    """Start-up is over: freeze what it made and collect as usual from here (see console)."""
    if _console.freeze_at_start:
        _console.freeze_at_start = False
        gc.freeze()
        gc.enable()


def _end_now() -> None:
    """The last exit handler: flush the output and end the process with main's status.

    Only when all code that ran is memdiag's own, which closes what it opens: a third-party
    plugin may leave a file open for the interpreter to flush as it frees it. Any problem
    flushing, and the interpreter shuts down as usual (and reports it as usual)."""
    if _console.exit_code is None or not _console.own_code_only:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(_console.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # answered without loading a single plugin
        print(f"memdiag {__version__}")
        return EXIT_OK
    debug = "--debug" in argv
    try:
        plain = read_plain(argv)
        if plain is None:
            from memdiag.argparsing import preparse

            reg = load_registry(preparse(argv))
        else:
            command, args, words = plain
            reg = load_registry(args)
        commands = command_names(reg)
        if plain is not None and not any(w in commands for w in words):
            # (argparse takes a word naming a plugin's command for that command: it reads those)
            args.command, args.handler, args.registry = command, _PLAIN_HANDLERS[command], reg
            _started()
            return args.handler(args, reg)
        if argv and not argv[0].startswith("-") and argv[0] not in commands:
            raise UsageError(f"unknown command '{argv[0]}' (commands: {', '.join(sorted(commands))})")
        if not any(a in commands for a in argv if not a.startswith("-")) \
                and not any(a in ("-h", "--help", "--version") for a in argv):
            argv.insert(0, "run")
        # Only the subcommands argv names are built: argparse can pick no other. The rest are
        # listed only for --help (unknown commands were refused above).
        parser = build_parser(reg, only=[a for a in argv if a in commands],
                              listed=any(a in ("-h", "--help") for a in argv))
        args = parser.parse_args(argv)
        args.registry = reg
        _started()
        return args.handler(args, reg)
    except MemdiagError as exc:
        print(f"memdiag: {exc}", file=sys.stderr)
        if debug:
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        print("memdiag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # never a traceback to a user
        if debug:
            raise
        print(f"memdiag: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_UNKNOWN

