"""Loading rule packs: YAML files validated by schemas/rule.schema.json, compiled once.

Every problem is reported with file:line, and one bad rule never takes the others down: it is
kept out of evaluation and shows up as a rule in state *error* with the problem.

Validation (jsonschema, ~80 ms to import) and YAML parsing only happen when a rule file changed,
and analysing expressions (``ast``) only when a text is new. Under $XDG_CACHE_HOME/memdiag/rules:

* one file per rule set (:class:`_RuleCache`, marshal), keyed by its packs' paths, memdiag's
  and Python's versions and the identity (mtime, size) of memdiag.expr, memdiag.expr_analysis,
  this module and memdiag.rulepacks:
  the bytes and validated data of each rule file, the recipe (memdiag.expr) of every
  expression and template text, and what check_names found for each rule against the catalog
  (by a digest of its names). A run whose rule files are unchanged reads that one file,
  compares each rule file's bytes with those kept there (an edit that keeps size and mtime is
  still seen) and builds each rule's condition from its recipe: no YAML, schema, ``ast`` or
  ``json``;
* one JSON file per validated rule file, keyed by its content and memdiag's version
  (:func:`read_pack`): a rule file the rule set's file lacks (a new set of packs) is taken
  from there before it is parsed and validated again.

A rule that compiled before from the same data is built with what every run reads (id,
params, condition, enabled, priority); the rest (message, steps, discriminators, remediation,
tests, ...) when first read, which for a plain run means when it fires (Rule's _Deferred
attributes). Any other rule, or any text without a recipe, is compiled in full at load, so its
problems are reported at load as before. Unknown facts and undeclared params are reported for
every text either way: check_names runs, or its findings for the same data and catalog are
reused.

Cache files are only read if they belong to this user and nobody else may write them.

Reading rule files from their text (YAML, the schema, the JSON cache) and writing cache files
live in :mod:`memdiag.rulepacks`, imported only when needed.
"""

from __future__ import annotations

import marshal
import os
import sys

from memdiag import __version__
from memdiag.errors import UsageError
from memdiag.expr import (Expr, ExprError, Template, compile_expr, compile_template, expr_from_recipe,
                          expr_recipe, template_from_recipe, template_recipe)
from memdiag.facts import Catalog, _Frozen, _Record, _set
from memdiag.units import UnitError, _split_size, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable, Iterable

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


# Text patterns here are str code: importing re (and enum with it) cost ~3 ms of every start-up.
def _is_size_text(text: str) -> bool:
    r"""Does ``text`` read as ``^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$``: a size with a unit, no sign?"""
    parts = _split_size(text)
    return parts is not None and parts[1] != "" and parts[0][:1] not in ("+", "-")


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


class _Deferred:
    """A Rule attribute a warm load leaves until it is first read (see _RuleCache.rule): then
    built from the rule's data as compile_rule builds it, and kept in the instance, which
    every later read finds first (this descriptor defines no __set__)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, rule: Any, owner: type | None = None) -> Any:
        if rule is None:
            return self
        state = rule.__dict__
        raw = state["_raw"]
        if "__rest__" in raw:  # the part of the data a warm load does not read, still packed
            raw = state["_raw"] = _unpack_rule(raw, state["path"], state["line"])
        value = state[self.name] = _FIELD_OF[self.name](raw, state["_memo"])
        return value


class Rule(_Record):
    _FIELDS = ("id", "title", "description", "severity", "confidence", "tags", "params", "condition",
               "message", "evidence", "discriminators", "remediation", "references", "enabled",
               "priority", "tests", "path", "line", "pack", "param_origin", "origin", "notes",
               "exceptions")

    if TYPE_CHECKING:
        title: str
        description: str
        severity: Ladder
        confidence: Ladder
        tags: list[str]
        message: Template
        evidence: list[str]
        discriminators: list[Expr]
        remediation: dict[str, str]
        references: list[dict[str, str]]
        tests: list[dict]
        raw: dict
    else:  # what a plain run reads only of rules that fire
        title, description = _Deferred(), _Deferred()
        severity, confidence = _Deferred(), _Deferred()
        tags, message, evidence = _Deferred(), _Deferred(), _Deferred()
        discriminators, remediation, references = _Deferred(), _Deferred(), _Deferred()
        tests, raw = _Deferred(), _Deferred()  # raw: the rule's data as its file gives it

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
        self.raw = {} if raw is None else raw

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


#: Names that moved to memdiag.rulepacks, still readable here (``ruleset._parse_yaml``).
_IN_RULEPACKS = frozenset({"_LineDict", "_parse_yaml", "_line_of", "validate_data", "_pack_data",
                           "_read_cache", "_write_private", "_write_cache", "_write_marshal", "_cacheable",
                           "_plain", "_keep_newest", "_deferred_texts"})


def __getattr__(name: str) -> Any:
    if name in _IN_RULEPACKS:
        from memdiag import rulepacks

        return getattr(rulepacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- versions ---------------------------------------------------------------------------------

def _vtuple(text: str) -> tuple[int, ...]:
    r"""The first three runs of ``\d`` (any Unicode decimal digit, which int() reads) as numbers."""
    runs = "".join(c if c.isdecimal() else " " for c in text).split()
    return tuple(int(x) for x in runs[:3])


#: The operators of a requirement's clause, longest first where one begins another.
_OPS = (">=", "<=", "==", ">", "<")


def satisfies(requirement: str, version: str = __version__) -> bool:
    """Does ``version`` meet ``requirement`` such as ``>=0.2, <2``?"""
    have = _vtuple(version)
    for clause in requirement.split(","):
        # as ``\s*(>=|>|==|<=|<)?\s*([\d.]+)\s*$`` reads it: \s is what strip() removes
        clause = clause.strip()
        op = next((o for o in _OPS if clause.startswith(o)), "")
        number = clause[len(op):].lstrip()
        if not number.replace(".", "0").isdecimal():  # one or more of \d and "."
            return False
        op, want = op or ">=", _vtuple(number)
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
        if _is_size_text(text):
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


#: The site overrides file read when neither --overrides nor $MEMDIAG_OVERRIDES names one.
SITE_FILE = "/etc/memdiag/overrides.yaml"
#: The environment variable naming the site overrides file.
SITE_ENV_VAR = "MEMDIAG_OVERRIDES"


def find_site_file(explicit: str | None = None) -> str | None:
    """``--overrides FILE``, else ``$MEMDIAG_OVERRIDES``, else :data:`SITE_FILE` if present.

    A file named explicitly (option or variable) must exist; an empty value means none. Here
    rather than in memdiag.overrides, which a run without a site file does not import."""
    for named, how in ((explicit, "--overrides"), (os.environ.get(SITE_ENV_VAR), f"${SITE_ENV_VAR}")):
        if named is None:
            continue
        if not named:
            return None
        if not os.path.isfile(named):
            raise UsageError(f"overrides file not found (named by {how})", path=named)
        return named
    return SITE_FILE if os.path.isfile(SITE_FILE) else None


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "memdiag", "rules")


def _read_rule_file(path: str) -> tuple[bytes | None, list[RuleProblem]]:
    """A rule file's bytes, or None and the problem."""
    try:
        raw = _read_at_most(path, RULE_FILE_LIMIT + 1)
    except OSError as exc:
        return None, [RuleProblem(path, None, f"cannot read: {exc.strerror or exc}")]
    if len(raw) > RULE_FILE_LIMIT:
        return None, [RuleProblem(path, None, "larger than 1 MiB; not a rule file?")]
    return raw, []


def _read_at_most(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path``. Reads what fstat says the file holds (plus one byte, to
    see the end) instead of asking for ``limit`` bytes at once: a read of 1 MiB allocates 1 MiB,
    ~20 us a file, and every run reads every rule file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        want = size + 1 if 0 < size < limit else limit  # /proc-like files say 0
        data = os.read(fd, want)
        while data and len(data) < limit:
            more = os.read(fd, max(want, len(data) + 1) - len(data))  # it grew since fstat: go on
            if not more:
                break
            data += more
            want = limit
        return data
    finally:
        os.close(fd)


def read_pack(path: str, *, use_cache: bool = True) -> tuple[dict | None, list[RuleProblem]]:
    """Read and validate one rule file. Returns (data with ``__line__`` on each rule, problems)."""
    raw, problems = _read_rule_file(path)
    if raw is None:
        return None, problems
    from memdiag.rulepacks import _pack_data  # YAML, the schema and the JSON cache: not on a warm load

    return _pack_data(raw, path, use_cache=use_cache)


def _read_private(path: str) -> bytes | None:
    """A cache file's bytes, or None when it is missing or could have been written by someone
    else (not ours, or writable by group or others)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            return f.read()
    except OSError:
        return None


def _read_marshal(path: str) -> Any:
    """A marshal cache file's data, or None when it is missing, damaged or not private.

    marshal is not meant for data from others, and is not given any: only files of this user
    that nobody else may write are read, and whoever can write those can run code as this
    user anyway. What comes back is still checked before use (recipes: memdiag.expr)."""
    raw = _read_private(path)
    if raw is None:
        return None
    try:
        return marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return None


#: What a load reads of every rule (see _RuleCache.rule); the rest of each rule's data is kept
#: marshalled in the rule set's cache file under "__rest__" until a rule is first used so.
_READ_AT_LOAD = ("id", "__line__", "memdiag", "params", "condition", "enabled", "priority")


def _unpack_rule(raw: dict, path: str, line: int | None) -> dict:
    """A rule's data as read_pack gives it, from the rule set cache's form (_cacheable)."""
    if "__rest__" not in raw:
        return raw
    try:
        rest = marshal.loads(raw["__rest__"])
    except (ValueError, EOFError, TypeError):
        rest = None
    if type(rest) is not dict:  # written whole by _write_private: someone edited the file
        raise UsageError(f"the rule cache's copy of this rule is damaged; remove {_cache_dir()} and run again",
                         path=path, line=line)
    return {**{k: v for k, v in raw.items() if k not in ("__rest__", "__texts__")}, **rest}


def rule_files(path: str) -> list[str]:
    """A rule file, or every *.yaml / *.yml file in a folder (sorted, recursively: a folder's
    files, then its subfolders' in name order, symbolic links to folders not followed, what
    cannot be listed skipped, as os.walk goes, in a third of its time)."""
    if os.path.isdir(path):
        found: list[str] = []
        _walk(path, found)
        return found
    if os.path.exists(path):
        return [path]
    raise UsageError("no such rule file or folder", path=path)


def _walk(folder: str, found: list[str]) -> None:
    try:
        with os.scandir(folder) as entries:
            listed = list(entries)
    except OSError:
        return
    files, folders = [], []
    for entry in listed:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            files.append(entry.name)
        elif not entry.is_symlink():
            folders.append(entry.name)
    found += [os.path.join(folder, f) for f in sorted(files) if f.endswith((".yaml", ".yml"))]
    for name in sorted(folders):
        _walk(os.path.join(folder, name), found)


# -- compiling --------------------------------------------------------------------------------

class _RuleCache:
    """One rule set's cache file (see the module docstring): the content and validated data
    of each rule file, the recipe of each text and what check_names found for each rule (with
    the catalog it checked against) the last load of the same packs used.

    It records what this load uses, and :meth:`close` writes that back when anything was
    missing or changed, so rule files and texts no longer used drop out of it."""

    #: rule-set files kept in the cache folder; past this, the ones written longest ago go
    KEEP = 32
    #: Validated pack files kept (one per pack text): the newest.
    KEEP_PACKS = 256

    def __init__(self, path: str | None, stamp: str) -> None:
        self.path, self.stamp = path, stamp
        data = _read_marshal(path) if path else None
        ok = (type(data) is dict and data.get("stamp") == stamp and type(data.get("files")) is dict
              and type(data.get("expr")) is dict and type(data.get("template")) is dict)
        self.files: dict = data["files"] if ok else {}  # type: ignore[index]
        self.recipes: dict[str, dict] = ({"expr": data["expr"], "template": data["template"]}  # type: ignore[index]
                                         if ok else {"expr": {}, "template": {}})
        checked = data.get("checked") if ok else None  # type: ignore[union-attr]
        #: (catalog key, {rule key: ((message, level), ...)}): check_names' findings
        self.checked: tuple[str, dict] = (checked if type(checked) is tuple and len(checked) == 2
                                          and type(checked[1]) is dict else ("", {}))
        self.hits: set[str] = set()  # rule files whose data came from here
        self.catalog_key: str | None = None
        self.used_files: dict[str, tuple] = {}
        self.used: dict[str, dict] = {"expr": {}, "template": {}}
        self.used_checked: dict[str, tuple] = {}
        self.deferred: list[tuple] = []  # (kind, text) of rules built only in part (rule())
        self.changed = False

    @classmethod
    def open(cls, paths: Iterable[str]) -> _RuleCache:
        """The cache file of the rule set made of the packs at ``paths``, for this memdiag,
        this Python, this expression compiler (builder and analyser) and this loader (their
        files' mtime and size)."""
        from memdiag import expr

        try:
            here = os.path.dirname(__file__)  # the analyser and the pack reader: not imported, stat only
            code = [os.stat(expr.__file__), os.stat(os.path.join(here, "expr_analysis.py")), os.stat(__file__),
                    os.stat(os.path.join(here, "rulepacks.py"))]
        except (OSError, TypeError):
            return cls(None, "")
        stamp = "-".join([__version__, f"py{sys.version_info[0]}.{sys.version_info[1]}",
                          *(f"{st.st_mtime_ns:x}-{st.st_size:x}" for st in code)])
        packs = sha256_hex("\0".join(paths).encode())[:16]
        return cls(os.path.join(_cache_dir(), f"set-{packs}-{sha256_hex(stamp.encode())[:16]}.marshal"), stamp)

    def pack(self, path: str) -> tuple[dict | None, list[RuleProblem]]:
        """A rule file's validated data: from this cache when the file's content is the one
        kept here, else as read_pack finds it (kept for next time)."""
        raw, problems = _read_rule_file(path)
        if raw is None:
            return None, problems
        entry = self.files.get(path)
        if type(entry) is tuple and len(entry) == 2 and entry[0] == raw:
            data = entry[1]
            if type(data) is dict and type(data.get("rules")) is list:
                self.used_files[path] = entry
                self.hits.add(path)
                return data, []
        from memdiag.rulepacks import _cacheable, _pack_data

        data, problems = _pack_data(raw, path, use_cache=True)
        cacheable = None if data is None else _cacheable(data)
        if cacheable is not None:
            self.used_files[path] = (raw, cacheable)
            self.changed = True
        return data, problems

    def get(self, text: Any, *, template: bool = False, lazy: bool = True) -> Expr | Template:
        """``text`` compiled: built from its recipe here (``lazy``: when first used), else
        analysed now, raising ExprError as the compiler does."""
        kind = "template" if template else "expr"
        build = template_from_recipe if template else expr_from_recipe
        if type(text) is str:
            recipe = self.recipes[kind].get(text)
            if recipe is not None:
                found = build(text, recipe, lazy=lazy)
                if found is not None:
                    self.used[kind][text] = recipe
                    return found
        recipe = template_recipe(text) if template else expr_recipe(text)
        found = build(text, recipe, lazy=lazy)
        if found is None:  # the builder refuses a recipe of the analyser's: compile as without a cache
            return compile_template(text) if template else compile_expr(text)
        # A text built only when used keeps its node marshalled: a load unpacks it only to build
        # it (a rule that fired), not the message and ladders of every rule. A condition, which
        # every load builds, keeps it as is: one marshal.loads of the file, not one each.
        self.used[kind][text] = (marshal.dumps(recipe[0]), *recipe[1:]) if lazy else recipe
        self.changed = True
        return found

    def rule(self, raw: dict, path: str, pack: str) -> Rule | None:
        """The rule of ``raw`` with only what every run reads (id, params, the condition built,
        ...); the rest is built when first read (Rule's _Deferred attributes). Only for a rule
        that compiled before from this data: its file came from here, a load found it sound
        (check_names' findings are kept only for those), and every text of it has a recipe.
        None otherwise: compile_rule builds it all, reporting any problem now."""
        rid = raw["id"]
        texts = raw.get("__texts__")
        if path not in self.hits or f"{path}\0{rid}" not in self.checked[1] or type(texts) is not tuple:
            return None
        recipes = self.recipes
        try:
            for kind, text in texts:
                if type(text) is not str or text not in recipes[kind]:
                    return None
        except (TypeError, ValueError, KeyError):  # not (kind, text) pairs: a damaged file
            return None
        line = raw.get("__line__")
        params = {k: param_value(v) for k, v in (raw.get("params") or {}).items()}
        where = path if line is None else f"{path}:{line}"
        rule = Rule.__new__(Rule)
        rule.__dict__.update(
            id=rid, params=params, condition=_expr_field(raw["condition"], "condition", self, lazy=False),
            enabled=raw.get("enabled", True), priority=raw.get("priority", 50), path=path, line=line,
            pack=pack, param_origin={k: where for k in params}, origin={}, notes={}, exceptions=[],
            _raw=raw, _memo=self)
        self.deferred.append(texts)
        return rule

    def check_names(self, rule: Rule, catalog: Catalog, known: dict[str, str | None]) -> list[RuleProblem]:
        """What :func:`check_names` finds: as it found last time when the rule's file is
        unchanged (so are its names and params) and so is the catalog (its names' digest)."""
        if self.catalog_key is None:
            self.catalog_key = sha256_hex("\n".join(catalog.names()).encode())
        key = f"{rule.path}\0{rule.id}"
        if rule.path in self.hits and self.checked[0] == self.catalog_key:
            found = self.checked[1].get(key)
            if found == ():  # the usual answer: nothing to say
                self.used_checked[key] = found
                return []
            if type(found) is tuple and all(type(f) is tuple and len(f) == 2 and type(f[0]) is str
                                            and f[1] in ("error", "warning") for f in found):
                self.used_checked[key] = found
                return [RuleProblem(rule.path, rule.line, message, rule.id, level) for message, level in found]
        problems = check_names(rule, catalog, known)
        self.used_checked[key] = tuple([(p.message, p.level) for p in problems])
        self.changed = True
        return problems

    def close(self) -> None:
        """At the end of a load: save, then keep only what rules built later need (recipes)."""
        self._save()
        self.files, self.used_files, self.hits, self.deferred = {}, {}, set(), []

    def _save(self) -> None:
        if not self.path or not (self.changed or len(self.used_files) != len(self.files)):
            return
        from memdiag.rulepacks import save_rule_set

        save_rule_set(self)


def _compile(text: Any, memo: _RuleCache | None, *, lazy: bool = True) -> Expr:
    return compile_expr(text) if memo is None else memo.get(text, lazy=lazy)  # type: ignore[return-value]


def _ladder(value: Any, what: str, memo: _RuleCache | None = None) -> Ladder:
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


def _message(raw: dict, memo: _RuleCache | None) -> Template:
    try:
        return compile_template(raw["message"]) if memo is None else memo.get(raw["message"], template=True)  # type: ignore[return-value]
    except ExprError as exc:
        raise ExprError(f"message: {exc.message}", exc.offset) from None


def _expr_field(text: Any, what: str, memo: _RuleCache | None, *, lazy: bool = True) -> Expr:
    try:
        return _compile(text, memo, lazy=lazy)
    except ExprError as exc:
        raise ExprError(f"{what}: {exc.message}", exc.offset) from None


def _discriminators(raw: dict, memo: _RuleCache | None) -> list[Expr]:
    return [_expr_field(d, f"discriminators[{i}]", memo) for i, d in enumerate(raw.get("discriminators") or [])]


#: How compile_rule makes each of a rule's fields from its data (Rule's _Deferred ones, later).
_FIELD_OF: dict[str, Callable[[dict, Any], Any]] = {
    "title": lambda raw, memo: raw["title"],
    "description": lambda raw, memo: (raw.get("description") or "").strip(),
    "severity": lambda raw, memo: _ladder(raw["severity"], "severity", memo),
    "confidence": lambda raw, memo: _ladder(raw["confidence"], "confidence", memo),
    "tags": lambda raw, memo: list(raw.get("tags") or []),
    "message": _message,
    "evidence": lambda raw, memo: list(raw.get("evidence") or []),
    "discriminators": _discriminators,
    "remediation": lambda raw, memo: dict(raw["remediation"]),
    "references": lambda raw, memo: list(raw.get("references") or []),
    "tests": lambda raw, memo: list(raw.get("tests") or []),
    "raw": lambda raw, memo: raw,
}


def compile_rule(raw: dict, path: str, pack: str, memo: _RuleCache | None = None) -> Rule:
    """Build a :class:`Rule`; raises ExprError naming the field that does not compile. With
    ``memo``, texts come from their recipes when it has them, and all but the condition (every
    run evaluates it) are built only when first used; a rule that compiled before from the
    same data is built with only what every run reads (:meth:`_RuleCache.rule`)."""
    if memo is not None:
        rule = memo.rule(raw, path, pack)
        if rule is not None:
            return rule
    line = raw.get("__line__")
    raw = _unpack_rule(raw, path, line)
    message = _message(raw, memo)  # the first field that does not compile is the one reported
    params = {k: param_value(v) for k, v in (raw.get("params") or {}).items()}
    where = path if line is None else f"{path}:{line}"
    return Rule(
        id=raw["id"],
        title=raw["title"],
        description=_FIELD_OF["description"](raw, memo),
        severity=_ladder(raw["severity"], "severity", memo),
        confidence=_ladder(raw["confidence"], "confidence", memo),
        tags=list(raw.get("tags") or []),
        params=params,
        condition=_expr_field(raw["condition"], "condition", memo, lazy=False),
        message=message,
        evidence=list(raw.get("evidence") or []),
        discriminators=_discriminators(raw, memo),
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


def check_names(rule: Rule, catalog: Catalog, memo: dict[str, str | None] | None = None) -> list[RuleProblem]:
    """Unknown fact names (with a did-you-mean) and undeclared params, in name order. ``memo``:
    what earlier calls with the same catalog found for each fact name (loading passes one)."""
    found: list[tuple[str, RuleProblem]] = []
    names: set[str] = set(rule.evidence)
    for e in rule.expressions():
        names |= e.names
    if memo is None:
        memo = {}
    for name in names:
        if name.startswith("params."):
            param = name[7:]
            if param not in rule.params:
                found.append((name, RuleProblem(rule.path, rule.line, f"rule {rule.id}: uses params.{param}, "
                                                "which its params do not declare", rule.id)))
            continue
        if name in ("confidence", "severity"):
            continue
        if name in memo:
            problem = memo[name]
        else:
            problem = memo[name] = _fact_problem(name, catalog)
        if problem is not None:
            found.append((name, RuleProblem(rule.path, rule.line, f"rule {rule.id}: {problem}", rule.id,
                                            "warning")))
    if len(found) > 1:
        found.sort(key=lambda item: item[0])
    return [problem for _, problem in found]


def _fact_problem(name: str, catalog: Catalog) -> str | None:
    """What is wrong with fact ``name``, or None."""
    if _known(name, catalog, exact=True):
        return None
    # A family (meminfo.*) admits fields newer than this catalog, but a near miss of a
    # known name is far more likely a typo.
    hint = catalog.suggest(name)
    if hint or not _known(name, catalog, exact=False):
        extra = f"; did you mean '{hint}'?" if hint else ""
        return f"unknown fact '{name}'{extra}"
    return None


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
    known: dict[str, str | None] = {}  # fact name -> its problem (check_names), for this catalog
    packs = list(packs)
    memo = _RuleCache.open([p for p, _ in packs]) if use_cache else None
    for pack_path, pack in packs:
        try:
            files = rule_files(pack_path)
        except UsageError as exc:
            rs.problems.append(RuleProblem(pack_path, None, exc.message))
            continue
        for path in files:
            rs.files.append(path)
            data, problems = read_pack(path, use_cache=False) if memo is None else memo.pack(path)
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
                _add_rule(rs, raw, path, pack, seen, catalog, memo, known)
            if data.get("overrides"):
                from memdiag import overrides as ov

                found, bad = ov.compile_tunings(data["overrides"], path, f"overrides in rule pack {pack}", memo)
                tunings += found
                rs.problems += [RuleProblem(path, line, msg, rid) for line, rid, msg in bad]
    if site:
        from memdiag import overrides as ov

        tunings += ov.site_tunings(site, use_cache=use_cache, memo=memo)
    if tunings:
        from memdiag import overrides as ov

        ov.apply(rs, tunings, catalog)
    _apply_overrides(rs, overrides or {})
    if memo is not None:
        memo.close()
    return rs


def _add_rule(rs: RuleSet, raw: dict, path: str, pack: str, seen: dict[str, str], catalog: Catalog,
              memo: _RuleCache | None = None, known: dict[str, str | None] | None = None) -> None:
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
    name_problems = check_names(rule, catalog, known) if memo is None else memo.check_names(rule, catalog, {} if known is None else known)
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
