"""memdiag's public Python API: diagnose a host or its evidence, get typed findings, deliver them.

    import memdiag

    report = memdiag.diagnose("/var/tmp/web1-capture.tar.gz")
    for finding in report.findings:
        print(finding.severity, finding.rule_id, finding.message)
    print(report.to_markdown())
    memdiag.deliver(report, sinks=["chat"], config="/etc/memdiag/config.yaml")

Everything here (the names in ``memdiag.__all__``) is public and kept stable within a major
version; every other module of memdiag is private and may change. The command line is built on
the same internal functions (:mod:`memdiag.pipeline`), so a report from here equals the one
``memdiag run`` / ``memdiag analyze`` prints.

Thread safety: :func:`diagnose` and :func:`deliver` may be called from many threads at once.
Plugins are loaded once per process for each distinct :class:`Plugins` selection (under a
lock); rules, evidence and facts are made afresh for every call, and a :class:`Report` is
immutable. Errors are :class:`memdiag.errors.MemdiagError` subclasses (see docs/api.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Collection, Iterator, Literal, Mapping, Sequence, Union

from memdiag.errors import DeliveryError, InputError, MemdiagError, RuleError, UsageError

if TYPE_CHECKING:
    from memdiag.registry import Registry

PathLike = Union[str, "os.PathLike[str]"]
Severity = Literal["info", "warning", "critical"]
VerdictSeverity = Literal["ok", "info", "warning", "critical", "unknown"]
Confidence = Literal["suspected", "likely", "confirmed"]
RuleState = Literal["fired", "passed", "skipped", "error", "disabled"]

#: memdiag.__all__ lists the same names (and __version__); the errors are memdiag.errors'.
__all__ = [
    "Confidence", "DeliveryError", "DeliveryResult", "Facts", "Finding", "FindingEvidence", "InputError",
    "InputInfo", "MemdiagError", "Plugins", "Problem", "Reference", "Remediation", "Report", "RuleError",
    "RuleOutcome", "RuleState", "Severity", "SinkOutcome", "Suppression", "UsageError", "Verdict",
    "VerdictSeverity", "deliver", "diagnose",
]


def _freeze(value: Any) -> Any:
    """A read-only twin of a JSON value: mappings become mapping proxies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


# -- what a report holds ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InputInfo:
    """What was diagnosed: ``kind`` is live, capture, sosreport, folder or text."""

    kind: str
    label: str
    captured_at: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The most severe active finding (``ok`` when none; ``unknown`` when the input held no
    memory evidence at all) and a one-line summary."""

    severity: VerdictSeverity
    summary: str
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class FindingEvidence:
    """One fact a finding rests on: its value, as people read it, and the file it came from."""

    fact: str
    display: str
    value: Any = None
    unit: str = ""
    origin: str | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Remediation:
    """What to do (``steps``) and the command that confirms the diagnosis (``confirm``)."""

    steps: str = ""
    confirm: str = ""


@dataclass(frozen=True, slots=True)
class Reference:
    url: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a site's overrides mark a finding as not counting (it is still reported)."""

    reason: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired, as in schemas/findings.schema.json (``$defs/finding``)."""

    rule_id: str
    title: str
    severity: Severity
    confidence: Confidence
    message: str
    #: stable across runs of the same condition on the same host (for deduplication)
    fingerprint: str
    host: str
    time: str
    tags: tuple[str, ...] = ()
    evidence: tuple[FindingEvidence, ...] = ()
    remediation: Remediation = field(default_factory=Remediation)
    references: tuple[Reference, ...] = ()
    #: some evidence timed out or was unreadable; the confidence was lowered
    partial: bool = False
    suppressed: Suppression | None = None

    @property
    def active(self) -> bool:
        """Counts towards the verdict (not suppressed by overrides)."""
        return self.suppressed is None


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """How one rule ended: fired, passed, skipped (``missing`` facts), error or disabled."""

    id: str
    state: RuleState
    reason: str = ""
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Problem:
    """Evidence that could not be used (unreadable, permission, timeout, malformed, failed)."""

    source: str
    message: str
    kind: str
    path: str = ""


class Facts(Mapping[str, Any]):
    """Every fact the diagnosis established: name -> value (read-only: lists come back as
    tuples, mappings as read-only mappings), and :meth:`origin`, the file each came from."""

    __slots__ = ("_values", "_origins", "_frozen")

    def __init__(self, values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
        self._values = values
        self._origins = origins
        self._frozen: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._frozen[name]
        except KeyError:
            value = self._frozen[name] = _freeze(self._values[name])  # same result if two threads race
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def origin(self, name: str) -> str | None:
        """Where fact ``name`` was read (``/proc/meminfo``, ``capture.tar.gz:proc/meminfo``)."""
        return self._origins.get(name)

    def __repr__(self) -> str:
        return f"<Facts: {len(self._values)} facts>"


def _finding(d: Mapping[str, Any]) -> Finding:
    rem = d.get("remediation") or {}
    sup = d.get("suppressed")
    return Finding(
        rule_id=d["rule_id"], title=d["title"], severity=d["severity"], confidence=d["confidence"],
        message=d["message"], fingerprint=d["fingerprint"], host=d["host"], time=d["time"],
        tags=tuple(d.get("tags") or ()),
        evidence=tuple(FindingEvidence(fact=e["fact"], display=e["display"], value=_freeze(e.get("value")),
                                       unit=e.get("unit", ""), origin=e.get("origin"), doc=e.get("doc", ""))
                       for e in d.get("evidence") or ()),
        remediation=Remediation(steps=rem.get("steps", ""), confirm=rem.get("confirm", "")),
        references=tuple(Reference(url=r["url"], title=r.get("title", "")) for r in d.get("references") or ()),
        partial=bool(d.get("partial", False)),
        suppressed=None if sup is None else Suppression(reason=sup.get("reason", ""), by=sup.get("by", "")),
    )


class Report:
    """The outcome of one diagnosis. Immutable; safe to share between threads.

    The typed view (``findings``, ``verdict``, ``facts`` ...) and the findings document
    (``document``, ``to_json()``: schemas/findings.schema.json) say the same thing; reports in
    any registered format come from :meth:`render`."""

    __slots__ = ("_doc", "_registry", "_notes", "_findings", "_verdict", "_facts", "_input", "_rules", "_problems")
    _doc: dict[str, Any]
    _registry: "Registry"
    _notes: tuple[str, ...]
    _findings: tuple[Finding, ...]
    _verdict: Verdict
    _facts: Facts
    _input: InputInfo
    _rules: tuple[RuleOutcome, ...]
    _problems: tuple[Problem, ...]

    def __init__(self, document: dict[str, Any], registry: "Registry", origins: Mapping[str, str],
                 notes: Sequence[str] = ()) -> None:
        """Private: reports come from :func:`diagnose` and :meth:`from_document`."""
        doc = document
        set_ = object.__setattr__
        set_(self, "_doc", doc)
        set_(self, "_registry", registry)
        set_(self, "_notes", tuple(notes))
        set_(self, "_findings", tuple(_finding(f) for f in doc["findings"]))
        v = doc["verdict"]
        set_(self, "_verdict", Verdict(severity=v["severity"], summary=v["summary"], rule_id=v.get("rule_id")))
        set_(self, "_facts", Facts(doc.get("facts") or {}, origins))
        i = doc["input"]
        set_(self, "_input", InputInfo(kind=i["kind"], label=i["label"], captured_at=i.get("captured_at")))
        set_(self, "_rules", tuple(RuleOutcome(id=r["id"], state=r["state"], reason=r.get("reason", ""),
                                               missing=tuple(r.get("missing") or ())) for r in doc["rules"]))
        set_(self, "_problems", tuple(Problem(source=p["source"], message=p["message"], kind=p["kind"],
                                              path=p.get("path") or "") for p in doc["problems"]))

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, plugins: Plugins | None = None) -> Report:
        """A report from a findings document: one ``memdiag run --format json`` printed on another
        host, or the ``document`` a sink is handed. It is checked against
        schemas/findings.schema.json (InputError when it does not fit); facts have no origins.
        ``plugins`` selects the report formats :meth:`render` can use."""
        import copy

        doc = copy.deepcopy(dict(document))
        _check_document(doc)
        return cls(doc, _registry(plugins), {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Report is read-only ({name!r})")

    def __repr__(self) -> str:
        return f"<Report {self.host}: {self.verdict.severity}, {len(self.findings)} finding(s)>"

    @property
    def host(self) -> str:
        return str(self._doc["host"])

    @property
    def time(self) -> str:
        """When the diagnosis ran (UTC, RFC 3339)."""
        return str(self._doc["time"])

    @property
    def input(self) -> InputInfo:
        return self._input

    @property
    def verdict(self) -> Verdict:
        return self._verdict

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Most severe first; suppressed findings (``not finding.active``) last."""
        return self._findings

    @property
    def rules(self) -> tuple[RuleOutcome, ...]:
        return self._rules

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self._problems

    @property
    def facts(self) -> Facts:
        return self._facts

    @property
    def accounting(self) -> Mapping[str, Any] | None:
        """Where the memory went (``total_bytes``, ``unaccounted_bytes``, ``segments`` ...), when known."""
        acc = self._doc.get("accounting")
        return None if acc is None else _freeze(acc)

    @property
    def notes(self) -> tuple[str, ...]:
        """One-line messages the command line prints on stderr: plugins that failed to load,
        problems in rule files."""
        return self._notes

    @property
    def exit_code(self) -> int:
        """What ``memdiag`` would exit with (Nagios-style): 0 ok/info, 1 warning, 2 critical,
        3 no memory evidence at all."""
        from memdiag.document import exit_code

        return exit_code(self._doc)

    @property
    def document(self) -> dict[str, Any]:
        """The findings document (schemas/findings.schema.json): a fresh copy, yours to change."""
        import copy

        return copy.deepcopy(self._doc)

    def render(self, format_name: str, *, color: bool = False, width: int = 80) -> str:
        """The report in a registered format: ``text``, ``json``, ``markdown``, ``html``,
        ``nagios`` or one a plugin adds. Raises UsageError for an unknown format."""
        from memdiag import pipeline

        return pipeline.render(self._registry, self._doc, format_name, color=color, width=width)

    def to_json(self) -> str:
        """The findings document as JSON text (what ``--format json`` prints)."""
        import json

        return json.dumps(self._doc, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        """Paste-ready Markdown for a ticket or a chat thread (``--format markdown``)."""
        return self.render("markdown")

    def to_text(self, *, width: int = 80, color: bool = False) -> str:
        """The terminal report (``--format text``); ``color`` adds ANSI colours."""
        return self.render("text", color=color, width=width)


def _check_document(doc: dict[str, Any]) -> None:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]

    from memdiag import schemas  # type: ignore[attr-defined,unused-ignore]  # mapped from schemas/ at install

    error = best_match(jsonschema.Draft202012Validator(schemas.load("findings")).iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"not a memdiag findings document: {where}: {error.message}")


# -- plugins ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plugins:
    """Which plugins a diagnosis uses. The default: memdiag's built-ins and the plugins of
    installed packages (the ``memdiag`` entry-point group). Unlike the command line, nothing is
    read from the environment ($MEMDIAG_PLUGINS) or /etc/memdiag/plugins.d unless named here.

    ``blocked``: plugin names left out (built-ins included), like ``-p no:NAME``;
    ``dirs``: folders of loose ``*.py`` plugin files; ``extra``: plugin objects (modules or
    instances with ``@memdiag.hookspecs.hookimpl`` functions) of the embedding program;
    ``allow``: when given, the only third-party plugins loaded; ``entry_points``: load installed
    packages' plugins; ``strict``: a plugin that fails to load raises UsageError instead of
    being reported in :attr:`Report.notes`.

    Each distinct selection is loaded once per process; plugin files are not re-read."""

    blocked: Collection[str] = ()
    dirs: Sequence[PathLike] = ()
    extra: Sequence[object] = ()
    allow: Collection[str] | None = None
    entry_points: bool = True
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("blocked", "dirs", "extra"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)):
                raise UsageError(f"Plugins({name}=...) takes a list, not the string {value!r}")
        object.__setattr__(self, "blocked", frozenset(self.blocked))
        object.__setattr__(self, "dirs", tuple(os.fspath(d) for d in self.dirs))
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.allow is not None:
            object.__setattr__(self, "allow", frozenset(self.allow))


def _plugin_name(obj: object) -> str:
    name = getattr(obj, "__name__", None) or type(obj).__name__
    return str(name).rsplit(".", 1)[-1]


def _registry(plugins: Plugins | None) -> "Registry":
    from memdiag import pipeline

    p = plugins or Plugins()
    return pipeline.load_registry(dirs=[os.fspath(d) for d in p.dirs], blocked=p.blocked, allow=p.allow,
                                  strict=p.strict, autoload=p.entry_points,
                                  extra=[(_plugin_name(o), o) for o in p.extra])


# -- diagnosing -------------------------------------------------------------------------------

def diagnose(
    source: PathLike = "/",
    *,
    text: str | None = None,
    live: bool | None = None,
    rules: Sequence[PathLike] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: PathLike | None = None,
    timeout: float = 20.0,
    plugins: Plugins | None = None,
) -> Report:
    """Diagnose a host, or evidence gathered from one.

    ``source``: ``"/"`` (the default) is this host, live. Any other path is evidence, opened as
    ``memdiag analyze`` opens it: a memdiag capture or sosreport (folder or tar archive), a folder
    of command outputs, or a file of pasted outputs. ``live=True`` diagnoses a live root other
    than ``/`` (a host's /proc and /sys mounted into a container, say).

    ``text``: pasted command output as a string (``free -m``, ``top -bn1``, /proc/meminfo ...),
    instead of ``source``.

    ``rules``: extra rule files or folders, after the bundled and plugin packs. ``params``:
    rule id -> {param: value} (``{"vmware-balloon": {"min_unaccounted": "2GiB"}}``), like
    ``--param``. ``overrides``: a site overrides file; unlike the command line, none is read
    (not $MEMDIAG_OVERRIDES, not /etc/memdiag/overrides.yaml) unless named here.

    ``timeout``: seconds for reading the evidence; sources still reading then are abandoned and
    reported in :attr:`Report.problems`, and the diagnosis goes on with what was read.

    Raises :class:`~memdiag.errors.InputError` when the evidence is missing or cannot be read
    at all, and :class:`~memdiag.errors.UsageError` for a bad argument (``params`` naming an
    unknown rule or param, an overrides file that does not exist, both ``source`` and ``text``).
    Problems inside rule files do not raise: those rules end in state ``error`` and the problem
    is in :attr:`Report.notes`.
    """
    from memdiag import pipeline

    if text is not None and os.fspath(source) != "/":
        raise UsageError("give either source or text, not both")
    if timeout is None or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    site: str | None = None
    if overrides is not None:
        site = os.fspath(overrides)
        if not os.path.isfile(site):
            raise UsageError("overrides file not found", path=site)
    path = os.fspath(source)
    is_live = text is None and (live if live is not None else os.path.realpath(path) == "/")
    if is_live and not os.path.isdir(path):
        raise UsageError("live root not found", path=path)
    reg = _registry(plugins)
    try:
        rule_set = pipeline.load_rules(reg, [os.fspath(r) for r in rules],
                                       {rid: dict(values) for rid, values in (params or {}).items()},
                                       site_file=site, use_site=site is not None)
    except UsageError as exc:  # say it in this API's words, not the command line's
        raise UsageError(exc.message.replace("--param", "params", 1), path=exc.path, line=exc.line) from None
    notes = pipeline.plugin_notes(reg) + [str(p) for p in rule_set.problems]
    diag = pipeline.diagnose_source(path, registry=reg, rules=rule_set, live_root=is_live, text=text,
                                    timeout=timeout)
    return Report(diag.document, reg, {name: f.origin for name, f in diag.facts.facts.items()}, notes)


# -- delivering -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SinkOutcome:
    """One sink's delivery: events ``sent``, ``failed`` (one line each, secrets masked), events
    still waiting in its outbox (``left``)."""

    name: str
    sent: int = 0
    failed: tuple[str, ...] = ()
    left: int = 0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.timed_out


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What :func:`deliver` achieved. ``exit_code`` is 0, or 5 when something could not be
    delivered (it waits in the outbox); ``messages`` are one line each, secrets masked;
    ``dry_run_output`` is what each sink would have sent (dry runs only)."""

    exit_code: int
    messages: tuple[str, ...] = ()
    sinks: Mapping[str, SinkOutcome] = field(default_factory=lambda: MappingProxyType({}))
    dry_run_output: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def deliver(report: Report, *, sinks: Sequence[str] | None = None, config: PathLike | None = None,
            dry_run: bool = False) -> DeliveryResult:
    """Deliver ``report``'s findings to sinks, with the lifecycle the command line uses (state
    store, outbox, resolving what is gone): ``sinks`` names configured sinks (default: every
    enabled one); ``config`` is the configuration file (default: $MEMDIAG_CONFIG, then
    ~/.config/memdiag/config.yaml, then /etc/memdiag/config.yaml). ``dry_run`` sends and
    changes nothing and returns what each sink would send.

    A sink that cannot deliver, and a configuration file with a mistake, come back in the result
    (``ok`` false, ``messages``), never as an exception. Raises UsageError when no configuration
    file is found and :class:`~memdiag.errors.DeliveryError` when the state store is unusable."""
    import copy

    from memdiag import delivery

    if not isinstance(report, Report):
        raise UsageError(f"deliver() takes a Report from memdiag.diagnose(), not {type(report).__name__}")
    if isinstance(sinks, str):
        raise UsageError(f"sinks takes a list of sink names, not the string {sinks!r}")
    found = delivery.find_config(None if config is None else os.fspath(config))
    if found is None:
        raise UsageError("no configuration file found (pass config=, or set $MEMDIAG_CONFIG)")
    stream = None
    if dry_run:
        import io

        stream = io.StringIO()
    # the sinks get a copy: a report stays unchanged, whatever a sink does
    outcome = delivery.deliver(copy.deepcopy(report._doc), registry=report._registry, config_path=found,
                               only=list(sinks) if sinks else None, dry_run=dry_run, stream=stream)
    per_sink = {name: SinkOutcome(name=name, sent=r.sent, failed=tuple(r.failed), left=r.left, timed_out=r.timed_out)
                for name, r in outcome.results.items()}
    return DeliveryResult(exit_code=outcome.exit_code, messages=tuple(outcome.lines),
                          sinks=MappingProxyType(per_sink), dry_run_output=stream.getvalue() if stream else "")
