"""``memdiag rules``: list, show, validate, test and scaffold rules.

``list``, ``show`` and ``validate`` (without paths) see the rules as they are in force: every
override layer applied (packs' ``overrides:``, the site file, ``--param``). ``test`` checks the
rules as their authors wrote them, so a site's tuning never breaks a rule's own tests.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from memdiag.errors import EXIT_INVALID_RULES, EXIT_OK, EXIT_WARNING, UsageError

ACTIONS = ("list", "show", "validate", "test", "new")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("targets", nargs="*", metavar="ID|PATH",
                   help="show/new: a rule id; validate/test: rule files or folders (default: every loaded rule)")
    p.add_argument("--output", "-o", metavar="PATH", help="new: the file (or folder) to write (default ./ID.yaml)")
    p.add_argument("--junit", metavar="FILE", help="test: also write the results as JUnit XML to FILE")
    p.add_argument("--warn-as-error", action="store_true",
                   help="test: rule-file warnings and rules lacking a firing or a non-firing test fail the run")


def run(args: argparse.Namespace, reg) -> int:
    return {"list": _list, "show": _show, "validate": _validate, "test": _test, "new": _new}[args.action](args, reg)


def _load(args, reg, *, only_targets: bool, use_cache: bool = True, tuned: bool = True):
    """Rules of ``args.targets`` (when ``only_targets`` and some are given), else every loaded
    rule; ``tuned`` applies the site overrides file and ``--param`` on top of the packs."""
    from memdiag import pipeline, ruleset
    from memdiag.ruleset import parse_param_args

    if only_targets and args.targets:
        site = ruleset.find_site_file(args.overrides) if tuned and args.overrides is not None else None
        return ruleset.load([(t, "--rules") for t in args.targets], pipeline.catalog(reg), use_cache=use_cache,
                            site=site)
    return pipeline.load_rules(reg, args.rules, parse_param_args(args.param) if tuned else None,
                               site_file=args.overrides, use_site=tuned, use_cache=use_cache)


def _list(args, reg) -> int:
    rs = _load(args, reg, only_targets=False)
    if args.format == "json":
        import json

        print(json.dumps([{"id": r.id, "title": r.title, "tags": r.tags, "severity": [s for s, _ in r.severity.steps],
                           "enabled": r.enabled, "disabled_reason": None if r.enabled else r.disabled_reason,
                           "exceptions": len(r.exceptions), "file": r.where, "pack": r.pack} for r in rs.rules],
                         indent=2))
        return EXIT_OK
    by_tag: dict[str, list] = {}
    for r in rs.rules:
        by_tag.setdefault(r.tags[0] if r.tags else "untagged", []).append(r)
    for tag in sorted(by_tag):
        print(f"{tag}:")
        for r in sorted(by_tag[tag], key=lambda r: r.id):
            sev = "/".join(dict.fromkeys(s for s, _ in r.severity.steps))
            off = "" if r.enabled else f"  ({r.disabled_reason})"
            exc = f"  [{len(r.exceptions)} exception(s)]" if r.exceptions else ""
            print(f"  {r.id:<34} {sev:<17} {r.title}{exc}{off}")
    for rid, problem in sorted(rs.broken.items()):
        print(f"  {rid:<34} BROKEN            {problem}")
    return EXIT_OK


def _show(args, reg) -> int:
    if len(args.targets) != 1:
        raise UsageError("rules show takes one rule id")
    rs = _load(args, reg, only_targets=False)
    for problem in rs.problems:
        if problem.rule_id == args.targets[0]:
            print(f"memdiag: {problem}", file=sys.stderr)
    rule = rs.get(args.targets[0])
    if rule is None:
        if args.targets[0] in rs.broken:
            raise UsageError(f"rule '{args.targets[0]}' cannot be used: {rs.broken[args.targets[0]]}")
        known = [r.id for r in rs.rules]
        import difflib

        hint = difflib.get_close_matches(args.targets[0], known, n=1)
        raise UsageError(f"no rule '{args.targets[0]}'" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    if args.format == "json":
        import json

        from memdiag.overrides import in_force

        print(json.dumps({"title": rule.title, **in_force(rule)}, indent=2, default=str))
        return EXIT_OK
    from memdiag.explain import describe_rule

    print(describe_rule(rule))
    return EXIT_OK


def _validate(args, reg) -> int:
    rs = _load(args, reg, only_targets=True, use_cache=False)
    for p in rs.problems:
        print(p)
    errors = len(rs.errors)
    warnings = len(rs.problems) - errors
    print(f"{len(rs.files)} file(s), {len(rs.rules)} rule(s) valid, {errors} error(s), {warnings} warning(s)")
    return EXIT_INVALID_RULES if errors else EXIT_OK


def _test(args, reg) -> int:
    from memdiag import ruletest

    rs = _load(args, reg, only_targets=True, tuned=False)
    for p in rs.problems:
        print(p, file=sys.stderr)
    outcomes = ruletest.run_all(rs.rules, reg)
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if not o.ok:
            print(f"FAIL {o.rule_id}: {o.name}: {o.detail}  ({o.where})")
    gaps = ruletest.coverage(rs.rules)
    covered = len(rs.rules) - len(gaps)
    print(f"Coverage: {covered} of {len(rs.rules)} rule(s) have both a firing and a non-firing test")
    for gap in gaps:
        print(f"  {'error' if args.warn_as_error else 'note'}: {gap}")
    warnings = [p for p in rs.problems if p.level != "error"]
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if args.junit:
        xml = ruletest.junit_xml(outcomes, gaps, rs.problems, warn_as_error=args.warn_as_error)
        try:
            with open(args.junit, "w", encoding="utf-8") as f:
                f.write(xml)
        except OSError as exc:
            raise UsageError(f"cannot write JUnit report: {exc.strerror or exc}", path=args.junit) from None
    if rs.errors:
        return EXIT_INVALID_RULES
    if failed:
        return EXIT_WARNING
    if args.warn_as_error and (gaps or warnings):
        print(f"--warn-as-error: {len(gaps)} coverage gap(s) and {len(warnings)} warning(s) fail the run")
        return EXIT_WARNING
    return EXIT_OK


# -- scaffolding ------------------------------------------------------------------------------

SCAFFOLD = '''\
# {id}: scaffolded by `memdiag rules new`. The example below is a working rule with a firing
# and a non-firing test; replace its condition, params, message and tests with your own.
#   memdiag facts                     the facts a condition can use
#   memdiag rules validate {file}     schema, expressions and fact names
#   memdiag rules test {file}         its tests, and whether it has both kinds
# The format is described in docs/plugins.md; the schema is schemas/rule.schema.json.
memdiag: ">={major_minor}"
rules:
  - id: {id}
    title: Little memory is available
    description: |
      Why this matters, in plain words, for the engineer who reads the finding at night.
    severity:
      - {{level: critical, when: "meminfo.MemAvailable < params.critical_ratio * meminfo.MemTotal"}}
      - {{level: warning}}
    confidence: likely
    tags: [site]
    params:
      min_available_ratio: 0.1
      critical_ratio: 0.03
    condition: meminfo.MemAvailable < params.min_available_ratio * meminfo.MemTotal
    message: >-
      Only {{meminfo.MemAvailable|bytes}} of {{meminfo.MemTotal|bytes}}
      ({{meminfo.MemAvailable / meminfo.MemTotal|pct}}) is available.
    evidence: [meminfo.MemAvailable, meminfo.MemTotal]
    remediation:
      steps: What to do about it, in plain words.
      confirm: grep -E 'MemTotal|MemAvailable' /proc/meminfo
    tests:
      - name: fires when little memory is available
        facts: {{meminfo.MemTotal: 8 GiB, meminfo.MemAvailable: 512 MiB}}
        expect: {{state: fired, severity: warning, message_contains: ["512.00 MiB", "(6%)"]}}
      - name: silent when plenty is available
        facts: {{meminfo.MemTotal: 8 GiB, meminfo.MemAvailable: 4 GiB}}
        expect: {{state: passed}}
'''


def scaffold(rule_id: str) -> str:
    from memdiag import __version__

    major_minor = ".".join(__version__.split(".")[:2])
    return SCAFFOLD.format(id=rule_id, file=f"{rule_id}.yaml", major_minor=major_minor)


def _new(args, reg) -> int:
    if len(args.targets) != 1:
        raise UsageError("rules new takes one rule id, e.g. memdiag rules new my-site-low-memory")
    rule_id = args.targets[0]
    if not _ID.match(rule_id) or len(rule_id) > 80:
        raise UsageError(f"'{rule_id}' is not a rule id: lower-case letters, digits and '-', starting with a "
                         "letter or digit")
    path = args.output or f"{rule_id}.yaml"
    if os.path.isdir(path):
        path = os.path.join(path, f"{rule_id}.yaml")
    if os.path.exists(path):
        raise UsageError("already exists; not overwritten", path=path)
    text = scaffold(rule_id).replace(f"{rule_id}.yaml", path if args.output else f"{rule_id}.yaml")
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror or exc}", path=path) from None
    print(f"wrote {path}: rule {rule_id} with a firing and a non-firing test")
    print(f"next: edit it, then  memdiag rules test {path}")
    return EXIT_OK
