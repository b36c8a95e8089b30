"""Words about rules: what a rule checks, the params in force and where each came from, and why
it fired or not on a given input (``memdiag rules show``, ``memdiag explain RULE``)."""

from __future__ import annotations

from memdiag.engine import FactEnv, display
from memdiag.facts import UNKNOWN
from memdiag.ruleset import Ladder, Rule


def ladder_text(ladder: Ladder) -> str:
    if ladder.fixed:
        return ladder.fixed
    return "; ".join(f"{lvl} when {w.text}" if w else f"otherwise {lvl}" for lvl, w in ladder.steps)


def _from(rule: Rule, key: str) -> str:
    """Where an overridden value came from (nothing when the rule's own file set it)."""
    if key not in rule.origin:
        return ""
    note = rule.notes.get(key)
    return f"  (from {rule.origin[key]}" + (f": {note})" if note else ")")


def describe_rule(rule: Rule) -> str:
    lines = [
        f"{rule.id}: {rule.title}",
        f"  defined at   {rule.where} ({rule.pack})",
        f"  enabled      {'yes' if rule.enabled else 'no'}{_from(rule, 'enabled')}",
        f"  severity     {ladder_text(rule.severity)}{_from(rule, 'severity')}",
        f"  confidence   {ladder_text(rule.confidence)}",
        f"  tags         {', '.join(rule.tags) or '-'}",
        f"  condition    {' '.join(rule.condition.text.split())}",
    ]
    if rule.params:
        lines.append("  params in force:")
        for name, value in sorted(rule.params.items()):
            lines.append(f"    {name} = {value!r}  (from {rule.param_origin.get(name, rule.where)})")
    if rule.exceptions:
        lines.append("  exceptions (a finding is then reported as suppressed, and does not count):")
        for exc in rule.exceptions:
            lines.append(f"    {exc.name}: {exc.describe()}  (from {exc.origin})")
            lines.append(f"      reason: {exc.reason}")
    if rule.notes.get("tuning"):
        lines.append(f"  tuned because {rule.notes['tuning']}")
    if rule.description:
        lines += ["", *("  " + line for line in rule.description.splitlines())]
    lines += ["", f"  next step    {' '.join(rule.remediation.get('steps', '').split())}"]
    if rule.remediation.get("confirm"):
        lines.append(f"  confirm with {rule.remediation['confirm'].strip()}")
    for ref in rule.references:
        lines.append(f"  reference    {ref.get('title', '')} {ref['url']}".rstrip())
    lines.append(f"  tests        {len(rule.tests)}")
    return "\n".join(lines)


def explain_rule(rule: Rule, diag, where: str) -> str:
    """The rule, then the value of every fact its condition reads and the outcome on ``where``."""
    env = FactEnv(diag.facts, rule.params)
    result = next((r for r in diag.results if r.rule_id == rule.id), None)
    lines = [describe_rule(rule), "", f"On {where}:"]
    names = sorted(n for n in rule.condition.names if not n.startswith("params."))
    for name in names:
        spec = diag.facts.catalog.get(name)
        value = env.lookup(name)
        shown = "unknown (missing)" if value is UNKNOWN else display(value, spec.type if spec else None)
        lines.append(f"  {name} = {shown}")
    if result is None:
        lines.append("  not evaluated (disabled)")
    elif result.state == "fired":
        f = result.finding
        lines.append(f"  FIRED: {f['severity']}, {f['confidence']}: {f['message']}")
    elif result.state == "passed":
        lines.append("  passed: the condition is false for these values")
    else:
        lines.append(f"  {result.state}: {result.reason}")
    return "\n".join(lines)
