"""Loading rule packs: YAML files validated by schemas/rule.schema.json, compiled once.

Every problem is reported with file:line, and one bad rule never takes the others down: it is
kept out of evaluation and shows up as a rule in state *error* with the problem.

Validation (jsonschema, ~80 ms to import) and YAML parsing only happen when a rule file changed:
a validated pack is cached as JSON under $XDG_CACHE_HOME/memdiag, keyed by the file's content
and memdiag's version, so a plain diagnosis loads rules without either import.

Compiling is deferred where it can be: a rule's condition is compiled at load (every run
evaluates it), its message, severity/confidence steps and discriminators only when it fires.
Loading still needs their names (unknown facts, undeclared params), so the names of every text
that compiled are kept in a second cache file (:class:`_CompiledNames`, plain data); a text not
in it is compiled at load as before, so its errors are reported at load as before.

Cache files are only read if they belong to this user and nobody else may write them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Iterable

from memdiag import __version__
from memdiag.errors import UsageError
from memdiag.expr import Expr, ExprError, Template, compile_expr, compile_template, deferred, describe
from memdiag.facts import Catalog, _Frozen, _Record, _set
from memdiag.units import UnitError, parse_size

RULE_FILE_LIMIT = 1 << 20

try:  # CPython's own SHA-256 (3.12+: _sha2): hashlib would load OpenSSL, ~3 ms of every start-up
    from _sha2 import sha256 as _sha256
except ImportError:
    try:
        from _sha256 import sha256 as _sha256
    except ImportError:  # a build without it (some FIPS builds): the same digest from hashlib
        from hashlib import sha256 as _sha256


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex, without hashlib's import cost on CPython."""
    return _sha256(data).hexdigest()
_SIZE_TEXT = re.compile(r"^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$")


# Classes written out rather than made with @dataclass: see memdiag.facts (start-up cost).

class RuleProblem(_Frozen):
    __slots__ = ("path", "line", "message", "rule_id", "level")
    path: str
    line: int | None
    message: str
    rule_id: str | None
    level: str  # error: the rule (or file) is not used; warning: used, but look at it

    def __init__(self, path: str, line: int | None, message: str, rule_id: str | None = None,
                 level: str = "error") -> None:
        _set(self, "path", path)
        _set(self, "line", line)
        _set(self, "message", message)
        _set(self, "rule_id", rule_id)
        _set(self, "level", level)

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.level}: {self.message}"


class Ladder(_Record):
    """A level chosen by the first step whose ``when`` holds (a step without one always does)."""

    _FIELDS = ("steps",)

    def __init__(self, steps: list[tuple[str, Expr | None]]) -> None:
        self.steps = steps

    @property
    def fixed(self) -> str | None:
        return self.steps[0][0] if len(self.steps) == 1 and self.steps[0][1] is None else None


class Rule(_Record):
    _FIELDS = ("id", "title", "description", "severity", "confidence", "tags", "params", "condition",
               "message", "evidence", "discriminators", "remediation", "references", "enabled",
               "priority", "tests", "path", "line", "pack", "param_origin", "origin", "notes",
               "exceptions")

    def __init__(self, *, id: str, title: str, description: str, severity: Ladder, confidence: Ladder,
                 tags: list[str], params: dict[str, Any], condition: Expr, message: Template,
                 evidence: list[str], discriminators: list[Expr], remediation: dict[str, str],
                 references: list[dict[str, str]], enabled: bool, priority: int, tests: list[dict],
                 path: str, line: int | None, pack: str, param_origin: dict[str, str] | None = None,
                 origin: dict[str, str] | None = None, notes: dict[str, str] | None = None,
                 exceptions: list | None = None, raw: dict | None = None) -> None:
        self.id, self.title, self.description = id, title, description
        self.severity, self.confidence = severity, confidence
        self.tags, self.params = tags, params
        self.condition, self.message = condition, message
        self.evidence, self.discriminators = evidence, discriminators
        self.remediation, self.references = remediation, references
        self.enabled, self.priority, self.tests = enabled, priority, tests
        self.path, self.line, self.pack = path, line, pack
        #: where each param's value in force came from ("rules/core.yaml:14", "--param", ...)
        self.param_origin: dict[str, str] = {} if param_origin is None else param_origin
        #: where ``enabled`` / ``severity`` in force came from, when an override set them
        self.origin: dict[str, str] = {} if origin is None else origin
        #: the reasons overrides gave ("enabled", "severity", "tuning")
        self.notes: dict[str, str] = {} if notes is None else notes
        #: memdiag.overrides.RuleException: a finding one applies to is reported as suppressed
        self.exceptions: list = [] if exceptions is None else exceptions
        self.raw: dict = {} if raw is None else raw

    @property
    def where(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"

    @property
    def disabled_reason(self) -> str:
        if "enabled" not in self.origin:
            return f"disabled in its rule file ({self.where})"
        note = self.notes.get("enabled")
        return f"disabled by {self.origin['enabled']}" + (f": {note}" if note else "")

    def expressions(self) -> Iterable[Expr | Template]:
        yield self.condition
        yield self.message
        yield from self.discriminators
        for ladder in (self.severity, self.confidence):
            yield from (when for _, when in ladder.steps if when is not None)


class RuleSet(_Record):
    _FIELDS = ("rules", "problems", "broken", "files")

    def __init__(self, rules: list[Rule] | None = None, problems: list[RuleProblem] | None = None,
                 broken: dict[str, RuleProblem] | None = None, files: list[str] | None = None) -> None:
        self.rules: list[Rule] = [] if rules is None else rules
        self.problems: list[RuleProblem] = [] if problems is None else problems
        #: ids of rules that exist but could not be used, with the problem
        self.broken: dict[str, RuleProblem] = {} if broken is None else broken
        self.files: list[str] = [] if files is None else files

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def errors(self) -> list[RuleProblem]:
        return [p for p in self.problems if p.level == "error"]


# -- versions ---------------------------------------------------------------------------------

def _vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def satisfies(requirement: str, version: str = __version__) -> bool:
    """Does ``version`` meet ``requirement`` such as ``>=0.2, <2``?"""
    have = _vtuple(version)
    for clause in requirement.split(","):
        m = re.match(r"\s*(>=|>|==|<=|<)?\s*([\d.]+)\s*$", clause)
        if not m:
            return False
        op, want = m.group(1) or ">=", _vtuple(m.group(2))
        pad = max(len(have), len(want))
        h, w = have + (0,) * (pad - len(have)), want + (0,) * (pad - len(want))
        if not {">=": h >= w, ">": h > w, "==": h == w, "<=": h <= w, "<": h < w}[op]:
            return False
    return True


# -- values -----------------------------------------------------------------------------------

def param_value(value: Any) -> Any:
    """Param values from YAML or the command line: sizes with units become bytes."""
    if isinstance(value, str):
        text = value.strip()
        if _SIZE_TEXT.match(text):
            try:
                return parse_size(text)
            except UnitError:
                return value
        for conv in (int, float):
            try:
                return conv(text)
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    return value


# -- reading files ----------------------------------------------------------------------------

class _LineDict(dict):
    line: int | None = None
    key_lines: dict = {}  # key -> the line it is on


def _parse_yaml(text: str, path: str) -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    def mapping(loader, node):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise UsageError(f"duplicate key {key!r} (first at line {seen[key]})", path=path,
                                 line=key_node.start_mark.line + 1)
            seen[key] = key_node.start_mark.line + 1
        d = _LineDict(loader.construct_mapping(node, deep=True))
        d.line = node.start_mark.line + 1
        d.key_lines = seen
        return d

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        # Aliases let a few hundred bytes expand into billions of nodes (for the validator and
        # every error message), and a rule file has no use for them: refuse before building.
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.AliasEvent):
                raise UsageError("YAML aliases (*name) are not allowed here; write the value out",
                                 path=path, line=event.start_mark.line + 1)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"not valid YAML: {problem}", path=path,
                         line=None if mark is None else mark.line + 1) from None


def _line_of(data: Any, path_parts: Iterable[Any]) -> int | None:
    line = getattr(data, "line", None)
    node = data
    for part in path_parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        line = getattr(node, "line", None) or line
    return line


def _schema() -> dict:
    from importlib.resources import files

    return json.loads(files("memdiag.schemas").joinpath("rule.schema.json").read_text())


def validate_data(data: Any, path: str) -> list[RuleProblem]:
    """Check parsed YAML against the rule schema; one problem per violation, with its line."""
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        if err.context:
            err = best_match(err.context)
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        rule_id = None
        parts = list(err.absolute_path)
        if len(parts) >= 2 and parts[0] == "rules" and isinstance(data, dict):
            try:
                rule_id = data["rules"][parts[1]].get("id")
            except (IndexError, AttributeError, TypeError):
                pass
        problems.append(RuleProblem(path, _line_of(data, parts), f"{where}: {err.message}", rule_id))
    return problems


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "memdiag", "rules")


def read_pack(path: str, *, use_cache: bool = True) -> tuple[dict | None, list[RuleProblem]]:
    """Read and validate one rule file. Returns (data with ``__line__`` on each rule, problems)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(RULE_FILE_LIMIT + 1)
    except OSError as exc:
        return None, [RuleProblem(path, None, f"cannot read: {exc.strerror or exc}")]
    if len(raw) > RULE_FILE_LIMIT:
        return None, [RuleProblem(path, None, "larger than 1 MiB; not a rule file?")]
    key = sha256_hex(raw + b"\0" + __version__.encode())[:32]
    cached = os.path.join(_cache_dir(), key + ".json")
    if use_cache:
        data = _read_cache(cached)
        if type(data) is dict and type(data.get("rules")) is list:
            return data, []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [RuleProblem(path, None, "not UTF-8 text")]
    try:
        data = _parse_yaml(text, path)
    except UsageError as exc:
        return None, [RuleProblem(path, exc.line, exc.message)]
    tuning = data.pop("overrides", None) if isinstance(data, dict) else None
    problems = validate_data(data, path)
    if tuning is not None:  # a pack's tuning of other packs' rules (memdiag.overrides)
        from memdiag import overrides

        problems += [RuleProblem(path, line, f"overrides: {msg}")
                     for line, msg in overrides.validate({"rules": tuning}, path)]
    if problems:
        return None, problems
    plain = {k: v for k, v in data.items() if k != "rules"}
    plain["rules"] = [{**r, "__line__": getattr(r, "line", None)} for r in data["rules"]]
    if tuning:
        from memdiag.overrides import _with_lines

        plain["overrides"] = _with_lines(tuning)
    if use_cache:
        _write_cache(cached, plain)
    return plain, []


def _read_cache(path: str) -> Any:
    """A cache file's JSON, or None when it is missing, damaged, or could have been written by
    someone else (not ours, or writable by group or others)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None


def _write_cache(path: str, data: dict) -> None:
    """Best effort: a read-only or full disk only costs speed."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        import threading  # a temporary file per thread: two diagnoses in one process may write at once

        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        # 0600 whatever the umask: _read_cache refuses files others could write (umask 002 too)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass


def rule_files(path: str) -> list[str]:
    """A rule file, or every *.yaml / *.yml file in a folder (sorted, recursively)."""
    if os.path.isdir(path):
        found = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith((".yaml", ".yml"))]
        return found
    if os.path.exists(path):
        return [path]
    raise UsageError("no such rule file or folder", path=path)


# -- compiling --------------------------------------------------------------------------------

class _CompiledNames:
    """The names used by every expression and template text that compiled, from earlier runs:
    with them, a text needed only when its rule fires is compiled then, not at every load.

    One JSON file per memdiag version, Python version and expression compiler (its file's
    mtime and size), so a changed compiler never trusts what an older one found."""

    #: more texts than this (rule files edited over and over): start again from this load's
    LIMIT = 5000

    def __init__(self, path: str | None) -> None:
        self.path = path
        data = _read_cache(path) if path else None
        ok = type(data) is dict and type(data.get("expr")) is dict and type(data.get("template")) is dict
        self.known: dict[str, dict] = {"expr": data["expr"], "template": data["template"]} if ok else \
            {"expr": {}, "template": {}}
        self.used: dict[str, dict] = {"expr": {}, "template": {}}
        self.changed = False

    @classmethod
    def open(cls) -> "_CompiledNames":
        from memdiag import expr

        try:
            st = os.stat(expr.__file__)
        except (OSError, TypeError):
            return cls(None)
        stamp = f"{__version__}-py{sys.version_info[0]}{sys.version_info[1]}-{st.st_mtime_ns:x}-{st.st_size:x}"
        return cls(os.path.join(_cache_dir(), f"compiled-{stamp}.json"))

    def get(self, text: Any, *, template: bool = False) -> Expr | Template:
        """``text`` compiled, or deferred when it compiled before; raises ExprError as the
        compiler does."""
        kind = "template" if template else "expr"
        record = self.known[kind].get(text) if type(text) is str else None
        found = None if record is None else deferred(text, record, template=template)
        if found is None:
            found = compile_template(text) if template else compile_expr(text)
            record = describe(found)
            self.changed = True
        self.used[kind][text] = record
        return found

    def save(self) -> None:
        if not (self.changed and self.path):
            return
        known = self.known
        if sum(map(len, known.values())) > self.LIMIT:
            known = {"expr": {}, "template": {}}
        for kind, records in self.used.items():
            known[kind].update(records)
        _write_cache(self.path, known)
        folder, mine = os.path.split(self.path)
        try:  # records of an older memdiag or compiler are never read again
            for name in os.listdir(folder):
                if name.startswith("compiled-") and name.endswith(".json") and name != mine:
                    os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _compile(text: Any, memo: _CompiledNames | None) -> Expr:
    return compile_expr(text) if memo is None else memo.get(text)  # type: ignore[return-value]


def _ladder(value: Any, what: str, memo: _CompiledNames | None = None) -> Ladder:
    if isinstance(value, str):
        return Ladder([(value, None)])
    steps = []
    for i, step in enumerate(value):
        when = step.get("when")
        try:
            steps.append((step["level"], None if when is None else _compile(when, memo)))
        except ExprError as exc:
            raise ExprError(f"{what}[{i}].when: {exc.message}", exc.offset) from None
    if steps[-1][1] is not None:
        raise ExprError(f"{what}: the last step needs no 'when' (it is the default)", None)
    return Ladder(steps)


def compile_rule(raw: dict, path: str, pack: str, memo: _CompiledNames | None = None) -> Rule:
    """Build a :class:`Rule`; raises ExprError naming the field that does not compile. With
    ``memo``, texts that compiled before are compiled only when first used (the condition is
    always compiled now: every run evaluates it)."""
    line = raw.get("__line__")

    def expr(text: str, what: str, *, defer: bool = False) -> Expr:
        try:
            return _compile(text, memo if defer else None)
        except ExprError as exc:
            raise ExprError(f"{what}: {exc.message}", exc.offset) from None

    try:
        message = compile_template(raw["message"]) if memo is None else memo.get(raw["message"], template=True)
    except ExprError as exc:
        raise ExprError(f"message: {exc.message}", exc.offset) from None
    params = {k: param_value(v) for k, v in (raw.get("params") or {}).items()}
    where = path if line is None else f"{path}:{line}"
    return Rule(
        id=raw["id"],
        title=raw["title"],
        description=(raw.get("description") or "").strip(),
        severity=_ladder(raw["severity"], "severity", memo),
        confidence=_ladder(raw["confidence"], "confidence", memo),
        tags=list(raw.get("tags") or []),
        params=params,
        condition=expr(raw["condition"], "condition"),
        message=message,
        evidence=list(raw.get("evidence") or []),
        discriminators=[expr(d, f"discriminators[{i}]", defer=True)
                        for i, d in enumerate(raw.get("discriminators") or [])],
        remediation=dict(raw["remediation"]),
        references=list(raw.get("references") or []),
        enabled=raw.get("enabled", True),
        priority=raw.get("priority", 50),
        tests=list(raw.get("tests") or []),
        path=path,
        line=line,
        pack=pack,
        param_origin={k: where for k in params},
        raw=raw,
    )


def check_names(rule: Rule, catalog: Catalog) -> list[RuleProblem]:
    """Unknown fact names (with a did-you-mean) and undeclared params."""
    problems = []
    names: set[str] = set(rule.evidence)
    for e in rule.expressions():
        names |= e.names
    for name in sorted(names):
        if name.startswith("params."):
            param = name[7:]
            if param not in rule.params:
                problems.append(RuleProblem(rule.path, rule.line, f"rule {rule.id}: uses params.{param}, "
                                            "which its params do not declare", rule.id))
            continue
        if name in ("confidence", "severity"):
            continue
        if _known(name, catalog, exact=True):
            continue
        # A family (meminfo.*) admits fields newer than this catalog, but a near miss of a
        # known name is far more likely a typo.
        hint = catalog.suggest(name)
        if hint or not _known(name, catalog, exact=False):
            extra = f"; did you mean '{hint}'?" if hint else ""
            problems.append(RuleProblem(rule.path, rule.line, f"rule {rule.id}: unknown fact '{name}'{extra}",
                                        rule.id, "warning"))
    return problems


def _known(name: str, catalog: Catalog, *, exact: bool) -> bool:
    """Is ``name`` a fact, or a key inside a map fact (``balloon.vmware.current``)?"""
    head = name
    while head:
        if catalog.is_exact(head) or (not exact and head in catalog):
            return True
        head = head.rpartition(".")[0]
    return False


def load(
    packs: Iterable[tuple[str, str]],
    catalog: Catalog,
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    use_cache: bool = True,
    site: str | None = None,
) -> RuleSet:
    """Load rule packs given as (path, pack name) pairs, in precedence order, then apply the
    packs' ``overrides:`` sections, the site overrides file ``site`` and the command line's
    ``overrides`` (rule id -> {param: value}), in that order (see memdiag.overrides).
    """
    rs = RuleSet()
    seen: dict[str, str] = {}
    tunings: list = []
    memo = _CompiledNames.open() if use_cache else None
    for pack_path, pack in packs:
        try:
            files = rule_files(pack_path)
        except UsageError as exc:
            rs.problems.append(RuleProblem(pack_path, None, exc.message))
            continue
        for path in files:
            rs.files.append(path)
            data, problems = read_pack(path, use_cache=use_cache)
            rs.problems += problems
            for p in problems:
                if p.rule_id:
                    rs.broken.setdefault(p.rule_id, p)
            if data is None:
                continue
            need = data.get("memdiag")
            if need and not satisfies(need):
                rs.problems.append(RuleProblem(path, None, f"this rule pack needs memdiag {need}; "
                                               f"this is memdiag {__version__}: upgrade memdiag to use it"))
                for raw in data["rules"]:
                    rs.broken.setdefault(raw["id"], rs.problems[-1])
                continue
            for raw in data["rules"]:
                _add_rule(rs, raw, path, pack, seen, catalog, memo)
            if data.get("overrides"):
                from memdiag import overrides as ov

                found, bad = ov.compile_tunings(data["overrides"], path, f"overrides in rule pack {pack}")
                tunings += found
                rs.problems += [RuleProblem(path, line, msg, rid) for line, rid, msg in bad]
    if site:
        from memdiag import overrides as ov

        tunings += ov.site_tunings(site, use_cache=use_cache)
    if tunings:
        from memdiag import overrides as ov

        ov.apply(rs, tunings, catalog)
    _apply_overrides(rs, overrides or {})
    if memo is not None:
        memo.save()
    return rs


def _add_rule(rs: RuleSet, raw: dict, path: str, pack: str, seen: dict[str, str], catalog: Catalog,
              memo: _CompiledNames | None = None) -> None:
    rid, line = raw["id"], raw.get("__line__")
    if rid in seen:
        rs.problems.append(RuleProblem(path, line, f"rule {rid}: id already defined at {seen[rid]}; ignored", rid))
        return
    seen[rid] = path if line is None else f"{path}:{line}"
    need = raw.get("memdiag")
    if need and not satisfies(need):
        problem = RuleProblem(path, line, f"rule {rid} needs memdiag {need}; this is memdiag {__version__}: "
                              "upgrade memdiag to use it", rid)
        rs.problems.append(problem)
        rs.broken[rid] = problem
        return
    try:
        rule = compile_rule(raw, path, pack, memo)
    except ExprError as exc:
        problem = RuleProblem(path, line, f"rule {rid}: {exc.message}", rid)  # it says the column
        rs.problems.append(problem)
        rs.broken[rid] = problem
        return
    name_problems = check_names(rule, catalog)
    rs.problems += name_problems
    hard = [p for p in name_problems if p.level == "error"]
    if hard:
        rs.broken[rid] = hard[0]
        return
    rs.rules.append(rule)


def _apply_overrides(rs: RuleSet, overrides: dict[str, dict[str, Any]]) -> None:
    for rid, params in overrides.items():
        rule = rs.get(rid)
        if rule is None:
            raise UsageError(f"--param names rule '{rid}', which is not loaded")
        for name, value in params.items():
            if name not in rule.params:
                known = ", ".join(sorted(rule.params)) or "none"
                raise UsageError(f"--param: rule {rid} has no param '{name}' (its params: {known})")
            rule.params[name] = param_value(value)
            rule.param_origin[name] = "--param"


def parse_param_args(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["vmware-balloon.min_unaccounted=2GiB"]`` -> ``{"vmware-balloon": {"min_unaccounted": "2GiB"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        rid, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not rid or not name:
            raise UsageError(f"--param {item!r}: expected RULE.NAME=VALUE")
        out.setdefault(rid, {})[name] = value
    return out
