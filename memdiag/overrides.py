"""Tuning rules without forking them: overrides keyed by rule id, in layers of known precedence.

Lowest first, each layer replacing what the ones below it set:

1. the rule as its own file defines it (bundled or plugin rule pack);
2. ``overrides:`` sections of rule packs, in load order (bundled, then plugins, then ``--rules``);
3. the site overrides file: ``--overrides FILE``, else ``$MEMDIAG_OVERRIDES``, else
   ``/etc/memdiag/overrides.yaml`` (one file: the first of those that is given or exists);
4. the command line (``--param RULE.NAME=VALUE``).

``enabled``, ``severity`` and each param are replaced by the highest layer that sets them;
``exceptions`` add up across layers. Every value in force remembers where it came from, for
``memdiag rules show``. A finding an exception applies to is still reported, marked
``suppressed`` with the exception's reason and location, and counts toward neither the verdict
nor the exit code.

The site file is YAML validated by schemas/overrides.schema.json; like rule packs it is parsed
and validated only when it changed (the validated form is cached), so a plain diagnosis imports
neither yaml nor jsonschema.
"""

from __future__ import annotations

import os

from memdiag import __version__
from memdiag.errors import UsageError
from memdiag.expr import EvalError, Expr, ExprError
from memdiag.facts import Catalog, _Frozen, _Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any

    from memdiag.ruleset import _RuleCache

SITE_LAYER = "site overrides"
FILE_LIMIT = 1 << 20


class RuleException(_Frozen):
    """Conditions under which a rule's finding is suppressed: hosts, a condition, or both."""

    __slots__ = ("name", "reason", "where", "layer", "hosts", "when")
    name: str
    reason: str
    where: str  # PATH:LINE
    layer: str  # "site overrides", "overrides in rule pack NAME"
    hosts: tuple[str, ...]
    when: Expr | None

    def __init__(self, name: str, reason: str, where: str, layer: str, hosts: tuple[str, ...] = (),
                 when: Expr | None = None) -> None:
        for key, value in (("name", name), ("reason", reason), ("where", where), ("layer", layer),
                           ("hosts", hosts), ("when", when)):
            object.__setattr__(self, key, value)

    @property
    def origin(self) -> str:
        return f"{self.where} ({self.layer})"

    @property
    def by(self) -> str:
        """What a suppressed finding's ``suppressed.by`` says."""
        return f"exception '{self.name}' at {self.origin}"

    def applies(self, env: Any, host: str) -> bool:
        """True only when every given part holds: a missing fact never hides a finding."""
        if self.hosts and not host_matches(host, self.hosts):
            return False
        if self.when is not None:
            try:
                return self.when.evaluate(env) is True
            except EvalError:
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.hosts:
            parts.append("on hosts " + ", ".join(self.hosts))
        if self.when is not None:
            parts.append("when " + " ".join(self.when.text.split()))
        return " and ".join(parts)


def host_matches(host: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Case-insensitive shell patterns; ``web01`` also matches ``web01.example.com``."""
    import fnmatch  # only a rule with a hosts exception that fires comes here

    host = host.lower()
    short = host.split(".", 1)[0]
    return any(fnmatch.fnmatchcase(host, p.lower()) or fnmatch.fnmatchcase(short, p.lower()) for p in patterns)


class Tuning(_Record):
    """What one layer says about one rule."""

    __slots__ = _FIELDS = ("rule_id", "path", "line", "layer", "enabled", "reason", "params", "severity",
                           "exceptions", "lines")

    def __init__(self, rule_id: str, path: str, line: int | None, layer: str, enabled: bool | None = None,
                 reason: str = "", params: dict[str, Any] | None = None, severity: Any = None,
                 exceptions: list[RuleException] | None = None, lines: dict[str, int] | None = None) -> None:
        self.rule_id = rule_id
        self.path = path
        self.line = line
        self.layer = layer
        self.enabled = enabled
        self.reason = reason
        self.params: dict[str, Any] = {} if params is None else params
        self.severity = severity  # a memdiag.ruleset.Ladder
        self.exceptions: list[RuleException] = [] if exceptions is None else exceptions
        #: the line of each key ("severity", "params.min_bytes") when known
        self.lines: dict[str, int] = {} if lines is None else lines

    @property
    def where(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def origin(self, key: str = "") -> str:
        line = self.lines.get(key) or self.line
        return f"{self.path if line is None else f'{self.path}:{line}'} ({self.layer})"


# -- the site file ----------------------------------------------------------------------------

def validate(data: Any, path: str) -> list[tuple[int | None, str]]:
    """Schema problems of parsed YAML as (line, message), in document order."""
    from memdiag.rulepacks import schema_problems

    return [(line, message) for _, line, message in schema_problems(data, "overrides")]


def _with_lines(rules: dict) -> dict:
    """Plain JSON-able entries carrying their lines: ``__line__`` (the rule id's), ``__lines__``
    (each key's, and each param's as ``params.NAME``), and each exception's ``__line__``."""
    out = {}
    for rid, entry in rules.items():
        lines = {k: v for k, v in getattr(entry, "key_lines", {}).items()}
        params = entry.get("params")
        lines.update({f"params.{k}": v for k, v in getattr(params, "key_lines", {}).items()})
        plain = {**entry, "__line__": getattr(rules, "key_lines", {}).get(rid, getattr(entry, "line", None)),
                 "__lines__": lines}
        if "exceptions" in entry:
            plain["exceptions"] = [{**e, "__line__": getattr(e, "line", None)} for e in entry["exceptions"]]
        out[rid] = plain
    return out


def read_site_file(path: str, *, use_cache: bool = True) -> dict:
    """The validated ``rules:`` mapping of a site file (entries carry ``__line__``).

    Any problem is a one-line :class:`UsageError` naming the file and line: a site that meant
    to silence a rule must not get paged because its file has a typo."""
    from memdiag.rulepacks import _parse_yaml, _plain, _write_marshal
    from memdiag.ruleset import _cache_dir, _read_at_most, _read_marshal, satisfies, sha256_hex

    try:
        raw = _read_at_most(path, FILE_LIMIT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read overrides: {exc.strerror or exc}", path=path) from None
    if len(raw) > FILE_LIMIT:
        raise UsageError("larger than 1 MiB; not an overrides file?", path=path)
    key = sha256_hex(b"overrides v2\0" + raw + b"\0" + __version__.encode())[:32]
    cached = os.path.join(_cache_dir(), "ov-" + key + ".marshal")
    if use_cache:
        data = _read_marshal(cached)  # only a file of ours that nobody else can write
        if type(data) is dict:
            return data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("not UTF-8 text", path=path) from None
    data = _parse_yaml(text, path)
    problems = validate(data, path)
    if problems:
        line, message = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UsageError(f"invalid overrides: {message}{more}", path=path, line=line)
    data = data or {}
    need = data.get("memdiag")
    if need and not satisfies(need):
        raise UsageError(f"these overrides need memdiag {need}; this is memdiag {__version__}", path=path)
    plain = _plain(_with_lines(data.get("rules") or {}))
    if use_cache:
        _write_marshal(cached, plain)
    return plain


# -- compiling --------------------------------------------------------------------------------

def compile_tunings(rules: dict, path: str, layer: str, memo: _RuleCache | None = None,
                    ) -> tuple[list[Tuning], list[tuple[int | None, str, str]]]:
    """Tunings from a validated ``rules:`` mapping, and (line, rule id, problem) for parts that
    do not compile (a ``when`` with a syntax error): those parts are left out. ``memo``: the
    rule set's cache, whose recipes build texts that compiled before when first used."""
    from memdiag.ruleset import _compile, _ladder, param_value

    out, problems = [], []
    for rid, entry in rules.items():
        line = entry.get("__line__")
        t = Tuning(rid, path, line, layer, entry.get("enabled"), entry.get("reason", ""),
                   {k: param_value(v) for k, v in (entry.get("params") or {}).items()},
                   lines=dict(entry.get("__lines__") or {}))
        if "severity" in entry:
            try:
                t.severity = _ladder(entry["severity"], "severity", memo)
            except ExprError as exc:
                problems.append((t.lines.get("severity", line), rid, f"overrides for rule {rid}: {exc.message}"))
        for i, exc_raw in enumerate(entry.get("exceptions") or ()):
            eline = exc_raw.get("__line__") or line
            name = exc_raw.get("name") or f"exception {i + 1}"
            where = path if eline is None else f"{path}:{eline}"
            try:
                when = _compile(exc_raw["when"], memo) if exc_raw.get("when") else None
            except ExprError as exc:
                problems.append((eline, rid, f"overrides for rule {rid}: exceptions[{i}].when: {exc.message}"))
                continue
            t.exceptions.append(RuleException(name, " ".join(exc_raw["reason"].split()), where, layer,
                                              tuple(exc_raw.get("hosts") or ()), when))
        out.append(t)
    return out, problems


def site_tunings(path: str, *, use_cache: bool = True, memo: _RuleCache | None = None) -> list[Tuning]:
    """The site file's tunings; anything that does not compile is an error naming file:line."""
    tunings, problems = compile_tunings(read_site_file(path, use_cache=use_cache), path, SITE_LAYER, memo)
    if problems:
        line, _rid, message = problems[0]
        raise UsageError(message, path=path, line=line)
    return tunings


# -- applying ---------------------------------------------------------------------------------

def apply(rs: Any, tunings: list[Tuning], catalog: Catalog) -> None:
    """Apply tunings to the rule set in order (later ones win), recording where values came
    from. Problems (an unknown rule in the site file, an undeclared param, an unknown fact in
    an exception) go to ``rs.problems`` as warnings: the rest of the tuning still applies."""
    from memdiag.ruleset import RuleProblem

    def warn(t: Tuning, message: str, line: int | None = None) -> None:
        rs.problems.append(RuleProblem(t.path, line or t.line, message, t.rule_id, "warning"))

    for t in tunings:
        rule = rs.get(t.rule_id)
        if rule is None:
            # A plugin pack may tune rules of packs that are not installed; a site file
            # naming an unknown rule is more likely a typo or a rule of another version.
            if t.layer == SITE_LAYER:
                hint = _close(t.rule_id, [r.id for r in rs.rules])
                state = "is broken (see its problem)" if t.rule_id in rs.broken else "is not loaded"
                warn(t, f"overrides rule {t.rule_id}, which {state}; ignored{hint}")
            continue
        if t.enabled is not None:
            rule.enabled = t.enabled
            rule.origin["enabled"] = t.origin("enabled")
            rule.notes["enabled"] = t.reason
        if t.severity is not None:
            rule.severity = t.severity
            rule.origin["severity"] = t.origin("severity")
            rule.notes["severity"] = t.reason
        for name, value in t.params.items():
            if name not in rule.params:
                known = ", ".join(sorted(rule.params)) or "none"
                warn(t, f"overrides for rule {rule.id}: no param '{name}' (its params: {known}); ignored",
                     t.lines.get(f"params.{name}"))
                continue
            rule.params[name] = value
            rule.param_origin[name] = t.origin(f"params.{name}")
        for exc in t.exceptions:
            for problem in _check_exception(exc, rule, catalog):
                warn(t, problem, _line(exc.where))
            rule.exceptions.append(exc)
        if t.reason and t.enabled is None and t.severity is None:
            rule.notes.setdefault("tuning", t.reason)


def _check_exception(exc: RuleException, rule: Any, catalog: Catalog) -> list[str]:
    from memdiag.ruleset import _known

    if exc.when is None:
        return []
    problems = []
    for name in sorted(exc.when.names):
        if name.startswith("params."):
            if name[7:] not in rule.params:
                problems.append(f"exception '{exc.name}' of rule {rule.id}: uses {name}, which the rule does not declare")
            continue
        if not _known(name, catalog, exact=False):
            hint = catalog.suggest(name)
            problems.append(f"exception '{exc.name}' of rule {rule.id}: unknown fact '{name}'"
                            + (f"; did you mean '{hint}'?" if hint else ""))
    return problems


def _line(where: str) -> int | None:
    tail = where.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _close(name: str, known: list[str]) -> str:
    import difflib

    hit = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{hit[0]}'?" if hit else ""


def in_force(rule: Any) -> dict:
    """What is in force for ``rule`` and where each value came from (``rules show -f json``)."""
    from memdiag.explain import ladder_text

    own = rule.where
    return {
        "id": rule.id,
        "defined_at": own,
        "pack": rule.pack,
        "enabled": {"value": rule.enabled, "from": rule.origin.get("enabled", own),
                    "reason": rule.notes.get("enabled") or None},
        "severity": {"value": ladder_text(rule.severity), "from": rule.origin.get("severity", own),
                     "reason": rule.notes.get("severity") or None},
        "params": {name: {"value": value, "from": rule.param_origin.get(name, own)}
                   for name, value in sorted(rule.params.items())},
        "exceptions": [{"name": e.name, "reason": e.reason, "hosts": list(e.hosts),
                        "when": None if e.when is None else " ".join(e.when.text.split()), "from": e.origin,
                        "applies": e.describe()} for e in rule.exceptions],
    }
