"""Fleet commands: ``memdiag report`` (many hosts' JSON -> one table), ``memdiag check`` (a live
diagnosis as a Nagios-style check) and ``memdiag render`` (a saved JSON result in any format).

``report`` reads findings documents gathered from many hosts (by Ansible, a shell loop, a
monitoring system) and answers the incident question "which hosts, and is it the same thing
everywhere?": one row per host sorted by severity, then hosts grouped by shared finding.

``check`` is what a monitoring system runs every few minutes: read-only (no sinks, no state,
no spool), bounded by a short deadline, and always answers in plugin format with exit 0-3.
"""

from __future__ import annotations

import os
import sys

from memdiag.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING, InputError, MemdiagError, UsageError
from memdiag.hookspecs import hookimpl
from memdiag.units import format_bytes, format_ratio

from .formats._document import active_findings, severity_rank, unaccounted, verdict_severity

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any

#: Formats of the fleet report (its own: the rows are hosts, not findings).
REPORT_FORMATS = ("text", "json", "markdown")
#: Seconds a check may take when the CLI gives no --timeout; monitoring systems kill checks at 30-60 s.
CHECK_TIMEOUT = 20.0


# --------------------------------------------------------------------------- reading results


# Plain classes rather than dataclasses: this plugin loads on every memdiag start, and each
# dataclass costs about a millisecond to create.
class HostResult:
    """One host's findings document and the file it came from."""

    __slots__ = ("host", "path", "document")

    def __init__(self, host: str, path: str, document: dict) -> None:
        self.host, self.path, self.document = host, path, document

    @property
    def severity(self) -> str:
        return verdict_severity(self.document)

    @property
    def findings(self) -> list[dict]:
        return active_findings(self.document)


class Failed:
    """A host whose result is missing or unusable: the run failed there, or the file is bad."""

    __slots__ = ("host", "path", "error")

    def __init__(self, host: str, path: str, error: str) -> None:
        self.host, self.path, self.error = host, path, error


class Fleet:
    """Every host's newest result, the hosts without one, and older results set aside."""

    __slots__ = ("hosts", "failed", "superseded")

    def __init__(self) -> None:
        self.hosts: list[HostResult] = []
        self.failed: list[Failed] = []
        self.superseded: list[HostResult] = []


def _result_files(paths: list[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".json")]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UsageError("no such file or folder", path=path)
    if not files:
        raise UsageError("no *.json results found in " + ", ".join(paths))
    return files


def _validator():
    import json

    import jsonschema  # only here: report is never on the diagnosis path

    import memdiag.schemas

    schema_path = os.path.join(os.path.dirname(memdiag.schemas.__file__), "findings.schema.json")
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


#: Host names that do not tell machines apart (unset, or cloned images that never got a name).
GENERIC_HOSTS = frozenset({"", "unknown", "localhost", "localhost.localdomain", "localhost6.localdomain6"})


def _stem(path: str) -> str:
    name = os.path.basename(path)
    return name[: -len(".json")] if name.endswith(".json") else name


class FailureRecord(Exception):
    """A ``{"host": NAME, "error": MESSAGE}`` record: memdiag could not run on that host."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host, self.message = host, message


def read_result(path: str, validator=None) -> dict:
    """One saved findings document, validated; InputError (naming the file) when it is not one,
    FailureRecord when it records that memdiag could not run."""
    import json

    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split("\n")[0]
        raise InputError(f"not readable as JSON: {reason}", path=path) from None
    if isinstance(data, dict) and "error" in data and "schema_version" not in data:
        raise FailureRecord(str(data.get("host") or _stem(path)), str(data["error"]))
    error = next(iter((validator or _validator()).iter_errors(data)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "document"
        raise InputError(f"not a findings document: {where}: {error.message}", path=path)
    return data


def load_fleet(paths: list[str]) -> Fleet:
    """Read every result; a bad file becomes a failed row naming the problem, never a traceback.

    A *failure record* ``{"host": NAME, "error": MESSAGE}`` (what the example playbook writes for
    a host where memdiag could not run) is shown as that host's failure. A host whose ``host`` is
    ``unknown`` (a capture that did not record it) or generic (``localhost``) is named after its
    file, so cloned machines gathered by inventory name stay apart. Of several results of one
    host, the newest is shown and the others are listed as superseded.
    """
    validator = _validator()
    fleet = Fleet()
    newest: dict[str, HostResult] = {}
    for path in _result_files(paths):
        try:
            data = read_result(path, validator)
        except FailureRecord as rec:
            fleet.failed.append(Failed(rec.host, path, rec.message))
            continue
        except InputError as exc:
            fleet.failed.append(Failed(_stem(path), path, exc.message))
            continue
        host = _stem(path) if data["host"].strip().lower() in GENERIC_HOSTS else data["host"]
        result = HostResult(host, path, data)
        older = newest.get(host)
        if older is not None:
            if older.document["time"] > data["time"]:
                fleet.superseded.append(result)
                continue
            fleet.superseded.append(older)
        newest[host] = result
    fleet.hosts = sorted(newest.values(), key=lambda r: (severity_rank(r.severity), r.host))
    fleet.failed.sort(key=lambda f: f.host)
    return fleet


# --------------------------------------------------------------------------- summarising


class Group:
    """Hosts sharing one finding (same rule), e.g. "12 hosts: VMware balloon ... (suspected)"."""

    __slots__ = ("rule_id", "title", "severity", "hosts", "confidence")

    def __init__(self, rule_id: str, title: str, severity: str) -> None:
        self.rule_id, self.title = rule_id, title
        self.severity = severity  # the worst it has on any of the hosts
        self.hosts: list[str] = []
        self.confidence: dict[str, int] = {}


def groups(fleet: Fleet) -> list[Group]:
    by_rule: dict[str, Group] = {}
    for r in fleet.hosts:
        for f in {f["rule_id"]: f for f in reversed(r.findings)}.values():
            g = by_rule.setdefault(f["rule_id"], Group(f["rule_id"], f["title"], f["severity"]))
            g.hosts.append(r.host)
            g.confidence[f["confidence"]] = g.confidence.get(f["confidence"], 0) + 1
            if severity_rank(f["severity"]) < severity_rank(g.severity):
                g.severity = f["severity"]
    return sorted(by_rule.values(), key=lambda g: (severity_rank(g.severity), -len(g.hosts), g.rule_id))


def counts(fleet: Fleet) -> dict[str, int]:
    out = {"critical": 0, "warning": 0, "unknown": 0, "info": 0, "ok": 0}
    for r in fleet.hosts:
        out[r.severity] = out.get(r.severity, 0) + 1
    out["failed"] = len(fleet.failed)
    return out


def exit_code(fleet: Fleet) -> int:
    """The worst state across hosts, by Nagios precedence: critical, warning, unknown (a host
    without a result or without memory evidence), ok. A failed host must not hide a critical
    one, nor pass for ok."""
    c = counts(fleet)
    if c["critical"]:
        return EXIT_CRITICAL
    if c["warning"]:
        return EXIT_WARNING
    if c["failed"] or c["unknown"]:
        return EXIT_UNKNOWN
    return EXIT_OK


def ordered(fleet: Fleet) -> list[HostResult | Failed]:
    """Table order: critical, warning, hosts whose evidence held no memory data (unknown) and
    hosts without a result (failed), then info and ok; by host name within each."""
    urgent = [r for r in fleet.hosts if severity_rank(r.severity) <= severity_rank("unknown")]
    calm = [r for r in fleet.hosts if severity_rank(r.severity) > severity_rank("unknown")]
    return [*urgent, *fleet.failed, *calm]


def _confidence_word(g: Group) -> str:
    if len(g.confidence) == 1:
        return next(iter(g.confidence))
    return ", ".join(f"{n} {c}" for c, n in sorted(g.confidence.items()))


def _top(r: HostResult) -> str:
    findings = r.findings
    if not findings:
        return "-"
    f = findings[0]
    more = f" +{len(findings) - 1}" if len(findings) > 1 else ""
    return f"{f['rule_id']} ({f['confidence']}){more}"


def _unaccounted(r: HostResult) -> str:
    nbytes, ratio = unaccounted(r.document)
    if nbytes is None:
        return "-"
    return format_bytes(nbytes) + (f" ({format_ratio(ratio)})" if ratio is not None else "")


def _counts_line(fleet: Fleet) -> str:
    c = counts(fleet)
    n = len(fleet.hosts) + c["failed"]
    parts = [f"{c[k]} {k}" for k in ("critical", "warning", "unknown", "failed", "info", "ok") if c[k]]
    return f"{n} host{'s' if n != 1 else ''}: " + (", ".join(parts) or "none")


# --------------------------------------------------------------------------- rendering


def render_text(fleet: Fleet, width: int | None = None) -> str:
    """The table; with a ``width`` (a terminal's), the finding column is cut to fit it."""
    import textwrap

    header = ("HOST", "VERDICT", "TOP FINDING", "UNACCOUNTED")
    rows = [(r.host, r.severity.upper(), _top(r), _unaccounted(r)) if isinstance(r, HostResult)
            else (r.host, "FAILED", r.error, "-") for r in ordered(fleet)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    # The finding column gives way first so the table fits the terminal.
    if width is not None:
        room = width - (widths[0] + widths[1] + widths[3] + 6)
        widths[2] = max(12, min(widths[2], room))

    def line(cells: tuple[str, ...]) -> str:
        top = cells[2] if len(cells[2]) <= widths[2] else cells[2][: widths[2] - 1] + "…"
        return "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), top.ljust(widths[2]), cells[3]]).rstrip()

    out = [_counts_line(fleet), "", line(header), *(line(r) for r in rows)]
    gs = groups(fleet)
    if gs:
        out += ["", "Hosts by finding:"]
        for g in gs:
            n = len(g.hosts)
            out.append(f"  {n} host{'s' if n != 1 else ''}: {g.title} ({g.rule_id}, {g.severity}, {_confidence_word(g)})")
            out += textwrap.wrap(", ".join(g.hosts), width=max(40, (width or 100) - 4), initial_indent="    ",
                                 subsequent_indent="    ", break_on_hyphens=False)
    if fleet.superseded:
        out += ["", "Older results not shown (a newer one of the same host is):"]
        out += [f"  {r.host}: {r.path} ({r.document['time']})" for r in fleet.superseded]
    return "\n".join(out) + "\n"


def _md(text: object) -> str:
    from .formats.markdown import text as md_text

    return md_text(text)


def render_markdown(fleet: Fleet) -> str:
    from .formats.markdown import code, table

    out = [f"## memdiag fleet report: {_md(_counts_line(fleet))}", ""]
    gs = groups(fleet)
    if gs:
        out += ["### Hosts by finding", ""]
        for g in gs:
            n = len(g.hosts)
            out.append(
                f"- **{n} host{'s' if n != 1 else ''}: {_md(g.title)}** ({code(g.rule_id)}, {g.severity}, "
                f"{_md(_confidence_word(g))}): {', '.join(_md(h) for h in g.hosts)}"
            )
        out.append("")
    rows = [[_md(r.host), r.severity.upper(), _md(_top(r)), _md(_unaccounted(r))] if isinstance(r, HostResult)
            else [_md(r.host), "FAILED", _md(r.error), "-"] for r in ordered(fleet)]
    out += ["### Hosts", "", *table(["Host", "Verdict", "Top finding", "Unaccounted"], rows, "lllr"), ""]
    if fleet.superseded:
        out += ["Older results not shown (a newer one of the same host is): "
                + ", ".join(f"{_md(r.host)} {code(r.path)}" for r in fleet.superseded), ""]
    return "\n".join(out)


def as_json(fleet: Fleet) -> dict[str, Any]:
    def host_entry(r: HostResult) -> dict[str, Any]:
        nbytes, ratio = unaccounted(r.document)
        top = r.findings[0] if r.findings else None
        return {
            "host": r.host,
            "severity": r.severity,
            "summary": r.document["verdict"]["summary"],
            "top_finding": None if top is None else {k: top[k] for k in ("rule_id", "title", "severity", "confidence")},
            "findings": [f["rule_id"] for f in r.findings],
            "unaccounted_bytes": nbytes,
            "unaccounted_ratio": ratio,
            "time": r.document["time"],
            "file": r.path,
        }

    return {
        "report": "memdiag-fleet",
        "version": 1,
        "counts": counts(fleet),
        "hosts": [host_entry(r) for r in fleet.hosts],
        "groups": [
            {"rule_id": g.rule_id, "title": g.title, "severity": g.severity, "count": len(g.hosts),
             "confidence": g.confidence, "hosts": g.hosts}
            for g in groups(fleet)
        ],
        "failed": [{"host": f.host, "file": f.path, "error": f.error} for f in fleet.failed],
        "superseded": [{"host": r.host, "file": r.path, "time": r.document["time"]} for r in fleet.superseded],
    }


def render(fleet: Fleet, fmt: str, width: int | None = None) -> str:
    if fmt == "json":
        import json

        return json.dumps(as_json(fleet), indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(fleet)
    return render_text(fleet, width)


# --------------------------------------------------------------------------- commands


def _add_format_option(parser) -> None:
    """``--format`` for commands with their own formats, unless the CLI already gives every
    subcommand its global ``--format`` (then that one is read)."""
    import argparse

    try:
        parser.add_argument("--format", dest="format", default=None, metavar="NAME")
    except argparse.ArgumentError:
        pass


def configure_report(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE|DIR",
                        help="findings JSON files (memdiag --format json) or folders of them")
    _add_format_option(parser)


def run_report(args) -> int:
    fmt = getattr(args, "format", None) or "text"
    if fmt not in REPORT_FORMATS:
        raise UsageError(f"report formats are {', '.join(REPORT_FORMATS)}; got --format {fmt}")
    fleet = load_fleet(list(args.paths))
    # Cut long cells only for a person at a terminal; a file or a pipe gets every word.
    width = max(60, os.get_terminal_size().columns) if sys.stdout.isatty() else None
    sys.stdout.write(render(fleet, fmt, width))
    return exit_code(fleet)


def configure_render(parser) -> None:
    parser.add_argument("file", metavar="FILE", help="a findings document saved with --format json")


def run_render(args) -> int:
    """Render a saved findings document in any report format: diagnose once (``--format json``),
    then make the ticket's Markdown and the HTML attachment from that same diagnosis."""
    from memdiag.cli import load_registry
    from memdiag.document import exit_code as document_exit_code

    try:
        document = read_result(args.file)
    except FailureRecord as rec:
        raise InputError(f"memdiag could not run on {rec.host}: {rec.message}", path=args.file) from None
    registry = load_registry(args)
    fmt = getattr(args, "format", None) or "text"
    render_format = registry.formats.get(fmt)
    if render_format is None:
        raise UsageError(f"unknown format '{fmt}' (known: {', '.join(sorted(registry.formats))})")
    tty = sys.stdout.isatty()
    color = getattr(args, "color", "auto") == "always" or (
        getattr(args, "color", "auto") == "auto" and tty and not os.environ.get("NO_COLOR"))
    width = min(os.get_terminal_size().columns, 100) if tty else 80
    text = render_format(document, {"color": color, "width": width})
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return document_exit_code(document)


def configure_check(parser) -> None:
    parser.add_argument("path", nargs="?", default=None, metavar="PATH",
                        help="check a capture instead of the live host")


def run_check(args) -> int:
    """Diagnose, print plugin output, exit 0-3. Never delivers to sinks, never writes state.

    Whatever goes wrong, the monitoring system still gets a plugin answer: UNKNOWN and exit 3.
    """
    from .formats.nagios import render as render_nagios
    from .formats.nagios import render_unknown, state

    try:
        document = _diagnose_for_check(args)
    except MemdiagError as exc:
        print(render_unknown(str(exc)))
        return EXIT_UNKNOWN
    except Exception as exc:  # a check must answer in plugin format, whatever broke
        if getattr(args, "debug", False):
            raise
        print(render_unknown(f"internal error: {type(exc).__name__}: {exc}"))
        return EXIT_UNKNOWN
    print(render_nagios(document, {}))
    return state(document)[1]


def _diagnose_for_check(args) -> dict:
    from memdiag import pipeline
    from memdiag.bounded import Deadline
    from memdiag.cli import load_registry
    from memdiag.ruleset import parse_param_args

    timeout = float(getattr(args, "timeout", None) or CHECK_TIMEOUT)
    registry = load_registry(args)  # the run's own registry, handed over as args.registry
    rules = pipeline.load_rules(registry, list(getattr(args, "rules", None) or ()),
                                parse_param_args(list(getattr(args, "param", None) or ())),
                                site_file=getattr(args, "overrides", None))
    if args.path is None:
        root = os.environ.get("MEMDIAG_ROOT", "/")
        return pipeline.diagnose_live(registry, rules, root=root, timeout=timeout).document
    import tempfile

    with tempfile.TemporaryDirectory(prefix="memdiag-check-") as workdir:
        ev = pipeline.open_input(args.path, registry, workdir)
        return pipeline.diagnose(ev, registry=registry, rules=rules, deadline=Deadline(timeout)).document


@hookimpl
def memdiag_commands(register):
    register("report", "summarise many hosts' JSON results in one table", configure_report, run_report)
    register("check", "live diagnosis as a monitoring check (Nagios plugin output, exit 0-3, no sinks)",
             configure_check, run_check)
    register("render", "render a saved findings document (JSON) in any report format",
             configure_render, run_render)
