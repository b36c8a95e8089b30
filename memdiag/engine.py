"""Evaluating rules over facts. Every rule ends in exactly one state:

* ``fired``   - the condition holds: a finding
* ``passed``  - the condition is false
* ``skipped`` - the condition is unknown because facts are missing (they are named)
* ``error``   - the rule itself failed (named, with the problem); the others still run
"""

from __future__ import annotations

from memdiag.expr import EvalError, unknown_names
from memdiag.facts import UNKNOWN, FactSet, _Record
from memdiag.ruleset import Ladder, Rule, RuleSet, sha256_hex
from memdiag.units import format_bytes, format_ratio

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any

SEVERITIES = ("info", "warning", "critical")
CONFIDENCES = ("suspected", "likely", "confirmed")


class RuleResult(_Record):
    """How one rule ended (written out, not a dataclass: see memdiag.facts)."""

    _FIELDS = ("rule_id", "state", "reason", "missing", "finding", "rule")

    def __init__(self, rule_id: str, state: str, reason: str = "", missing: list[str] | None = None,
                 finding: dict | None = None, rule: Rule | None = None) -> None:
        self.rule_id, self.state, self.reason = rule_id, state, reason
        self.missing: list[str] = [] if missing is None else missing
        self.finding, self.rule = finding, rule


_UNSEEN = object()


class FactEnv:
    """What expressions see: facts by dotted name, the rule's params, and an earlier snapshot.

    ``seen`` remembers what names resolved to, and may be shared by every rule of one run: the
    facts do not change while rules are evaluated, and rules ask for the same facts (MemTotal)
    and for the same missing ones, which cost a walk up the dotted name each time."""

    def __init__(self, facts: FactSet, params: dict[str, Any], previous: FactSet | None = None,
                 elapsed_hours: float | None = None, seen: dict[str, Any] | None = None) -> None:
        self.facts, self.params, self.prev, self.elapsed = facts, params, previous, elapsed_hours
        self._seen: dict[str, Any] = {} if seen is None else seen

    def lookup(self, name: str) -> Any:
        if name.startswith("params."):
            return self.params.get(name[7:], UNKNOWN)
        value = self._seen.get(name, _UNSEEN)
        if value is _UNSEEN:
            value = self._seen[name] = self.facts.lookup(name)
        return value

    def previous(self, name: str) -> Any:
        return UNKNOWN if self.prev is None else self.prev.lookup(name)

    def elapsed_hours(self) -> Any:
        return UNKNOWN if self.elapsed is None else self.elapsed


def fingerprint(rule_id: str, host: str, discriminators: list[Any]) -> str:
    """Stable across runs: never includes a measured value unless a rule says it is stable."""
    key = "|".join([rule_id, host, *(str(d) for d in discriminators)])
    return sha256_hex(key.encode())[:16]


def display(value: Any, type_: str | None) -> str:
    """A fact value as people read it."""
    if value is UNKNOWN or value is None:
        return "unknown"
    if type_ == "bytes" and isinstance(value, (int, float)):
        return format_bytes(value)
    if type_ == "ratio" and isinstance(value, (int, float)):
        return format_ratio(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if not value:
            return "none"
        if isinstance(value[0], dict):
            return ", ".join(_row(v) for v in value[:5]) + (f", ... ({len(value)} in all)" if len(value) > 5 else "")
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        # counts read better grouped; a "number" (a pid, an oom_score_adj, a sysctl) is an identifier
        return str(value) if type_ == "number" else f"{value:,}"
    return str(value)


#: Columns that name a table row and that size it, most telling first.
_ROW_NAMES = ("comm", "process", "name", "victim", "path", "mountpoint", "caller", "label", "key", "zone")
_ROW_SIZES = ("rss", "bytes", "size", "pss")


def _row(row: dict) -> str:
    name = next((row[k] for k in _ROW_NAMES if row.get(k)), None)
    size = next((row[k] for k in _ROW_SIZES if isinstance(row.get(k), int) and not isinstance(row[k], bool)), None)
    if size is None:  # sources name sizes after what they measure: rss_bytes, usage_bytes, ...
        size = next((v for k, v in row.items() if k.endswith("_bytes") and isinstance(v, int)
                     and not isinstance(v, bool)), None)
    name = "?" if name is None else str(name)
    return f"{name} {format_bytes(size)}" if size is not None else name


def _missing(rule: Rule, env: FactEnv) -> list[str]:
    """Facts whose absence left the condition unknown. Facts the rule tests with has() are
    optional by the author's own account, so they are named only if nothing else is missing."""
    names = unknown_names(rule.condition, env)
    return [n for n in names if n not in rule.condition.tested_names] or names


def _pick(ladder: Ladder, env: FactEnv) -> str:
    for level, when in ladder.steps:
        if when is None:
            return level
        if when.evaluate(env) is True:
            return level
    return ladder.steps[-1][0]


def evaluate(rule: Rule, facts: FactSet, *, host: str, now: str, previous: FactSet | None = None,
             elapsed_hours: float | None = None, partial_sources: frozenset[str] = frozenset(),
             seen: dict[str, Any] | None = None) -> RuleResult:
    """Evaluate one rule; never raises. ``seen``: fact lookups shared by the rules of one run."""
    env = FactEnv(facts, rule.params, previous, elapsed_hours, seen)
    try:
        verdict = rule.condition.evaluate(env)
        if verdict is UNKNOWN:
            missing = _missing(rule, env)
            return RuleResult(rule.id, "skipped", f"missing facts: {', '.join(missing) or 'unknown'}", missing, rule=rule)
        if not isinstance(verdict, bool):
            return RuleResult(rule.id, "error", f"condition gave {type(verdict).__name__} {verdict!r}, "
                              "not true or false", rule=rule)
        if not verdict:
            return RuleResult(rule.id, "passed", rule=rule)
        finding = _finding(rule, facts, env, host, now, partial_sources)
    except EvalError as exc:
        return RuleResult(rule.id, "error", f"{rule.where}: {exc}", rule=rule)
    except Exception as exc:  # a rule must never take the diagnosis down
        return RuleResult(rule.id, "error", f"{rule.where}: {type(exc).__name__}: {exc}", rule=rule)
    # An exception (memdiag.overrides) marks the finding; it is reported, never dropped.
    for exception in rule.exceptions:
        if exception.applies(env, host):
            finding["suppressed"] = {"reason": exception.reason, "by": exception.by}
            return RuleResult(rule.id, "fired", f"finding suppressed by {exception.by}", finding=finding, rule=rule)
    return RuleResult(rule.id, "fired", finding=finding, rule=rule)


def _finding(rule: Rule, facts: FactSet, env: FactEnv, host: str, now: str,
             partial_sources: frozenset[str]) -> dict:
    severity = _pick(rule.severity, env)
    confidence = _pick(rule.confidence, env)
    referenced = set(rule.condition.names) | set(rule.evidence)
    partial = any(
        (spec := facts.catalog.get(n)) is not None and spec.source in partial_sources for n in referenced
    )
    if partial and confidence != CONFIDENCES[0]:
        confidence = CONFIDENCES[CONFIDENCES.index(confidence) - 1]
    message = rule.message.render(env, {"confidence": confidence, "severity": severity})
    evidence = []
    for name in rule.evidence:
        spec = facts.catalog.get(name)
        value = env.lookup(name)
        if value is UNKNOWN:  # not evidence of anything; the JSON keeps every fact anyway
            continue
        evidence.append({
            "fact": name,
            "value": value,
            "display": display(value, spec.type if spec else None),
            "unit": spec.unit if spec else "",
            "origin": facts.origin(name),
            "doc": spec.doc if spec else "",
        })
    discriminators = [d.evaluate(env) for d in rule.discriminators]
    finding = {
        "rule_id": rule.id,
        "title": rule.title,
        "severity": severity,
        "confidence": confidence,
        "message": " ".join(message.split()),
        "fingerprint": fingerprint(rule.id, host, discriminators),
        "host": host,
        "time": now,
        "tags": list(rule.tags),
        "evidence": evidence,
        "remediation": {k: " ".join(v.split()) if k == "steps" else v.strip() for k, v in rule.remediation.items()},
        "references": list(rule.references),
    }
    if partial:
        finding["partial"] = True
    return finding


def run(ruleset: RuleSet, facts: FactSet, *, host: str, now: str, previous: FactSet | None = None,
        elapsed_hours: float | None = None) -> list[RuleResult]:
    """Evaluate every enabled rule; list disabled ones (saying who disabled them) and report
    broken ones as errors."""
    partial = frozenset(p.source for p in facts.problems if p.kind in ("timeout", "failed"))
    seen: dict[str, Any] = {}
    results = [
        evaluate(r, facts, host=host, now=now, previous=previous, elapsed_hours=elapsed_hours,
                 partial_sources=partial, seen=seen) if r.enabled else RuleResult(r.id, "disabled", r.disabled_reason, rule=r)
        for r in ruleset.rules
    ]
    for rid, problem in ruleset.broken.items():
        results.append(RuleResult(rid, "error", str(problem)))
    return results
