"""``memdiag rules``: list, show, validate and test rules."""

from __future__ import annotations

import argparse
import sys

from memdiag.errors import EXIT_INVALID_RULES, EXIT_OK, EXIT_WARNING, UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "show", "validate", "test"))
    p.add_argument("targets", nargs="*", metavar="ID|PATH",
                   help="show: a rule id; validate/test: rule files or folders (default: every loaded rule)")


def run(args: argparse.Namespace, reg) -> int:
    return {"list": _list, "show": _show, "validate": _validate, "test": _test}[args.action](args, reg)


def _load(args, reg, *, only_targets: bool, use_cache: bool = True):
    from memdiag import pipeline
    from memdiag.ruleset import parse_param_args

    if only_targets and args.targets:
        from memdiag import ruleset

        return ruleset.load([(t, "--rules") for t in args.targets], pipeline.catalog(reg), use_cache=use_cache)
    return pipeline.load_rules(reg, args.rules, parse_param_args(args.param), use_cache=use_cache)


def _list(args, reg) -> int:
    rs = _load(args, reg, only_targets=False)
    if args.format == "json":
        import json

        print(json.dumps([{"id": r.id, "title": r.title, "tags": r.tags, "severity": [s for s, _ in r.severity.steps],
                           "enabled": r.enabled, "file": r.where, "pack": r.pack} for r in rs.rules], indent=2))
        return EXIT_OK
    by_tag: dict[str, list] = {}
    for r in rs.rules:
        by_tag.setdefault(r.tags[0] if r.tags else "untagged", []).append(r)
    for tag in sorted(by_tag):
        print(f"{tag}:")
        for r in sorted(by_tag[tag], key=lambda r: r.id):
            sev = "/".join(dict.fromkeys(s for s, _ in r.severity.steps))
            off = "" if r.enabled else "  (disabled)"
            print(f"  {r.id:<34} {sev:<17} {r.title}{off}")
    for rid, problem in sorted(rs.broken.items()):
        print(f"  {rid:<34} BROKEN            {problem}")
    return EXIT_OK


def _show(args, reg) -> int:
    if len(args.targets) != 1:
        raise UsageError("rules show takes one rule id")
    rs = _load(args, reg, only_targets=False)
    rule = rs.get(args.targets[0])
    if rule is None:
        known = [r.id for r in rs.rules]
        import difflib

        hint = difflib.get_close_matches(args.targets[0], known, n=1)
        raise UsageError(f"no rule '{args.targets[0]}'" + (f"; did you mean '{hint[0]}'?" if hint else ""))
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

    rs = _load(args, reg, only_targets=True)
    for p in rs.problems:
        print(p, file=sys.stderr)
    outcomes = ruletest.run_all(rs.rules, reg)
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if not o.ok:
            print(f"FAIL {o.rule_id}: {o.name}: {o.detail}  ({o.where})")
    for gap in ruletest.coverage_gaps(rs.rules):
        print(f"note: {gap}")
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if rs.errors:
        return EXIT_INVALID_RULES
    return EXIT_WARNING if failed else EXIT_OK
