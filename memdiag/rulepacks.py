"""Rule files read from their text, and the rule caches written (the other half of memdiag.ruleset).

What a load needs only when a rule file is new or changed, or a cache file must be written:
YAML parsing (with the line of every mapping), validation against schemas/rule.schema.json,
the per-pack JSON cache, the rule-set cache file's form of a pack (:func:`_cacheable`), and
writing cache files privately. memdiag.ruleset imports this module only then, so a run whose
rules all come from its rule set's cache file loads neither it nor yaml, jsonschema or json.
"""

from __future__ import annotations

import marshal
import os

from memdiag import __version__
from memdiag.errors import UsageError
from memdiag.ruleset import _READ_AT_LOAD, RuleProblem, _cache_dir, _read_private, sha256_hex

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Iterable

    from memdiag.ruleset import _RuleCache


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


def schema_problems(data: Any, schema: str) -> list[tuple[list, int | None, str]]:
    """Each violation of schema ``schema`` (see :func:`memdiag.schemas.load`) by parsed YAML
    ``data``, in document order, as (its path's parts, its line, "where: message"); where every
    alternative (anyOf, oneOf) fails, the one that fits best."""
    import jsonschema
    from jsonschema.exceptions import best_match

    from memdiag import schemas

    validator = jsonschema.Draft202012Validator(schemas.load(schema))
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        if err.context:
            err = best_match(err.context)
        parts = list(err.absolute_path)
        where = "/".join(map(str, parts)) or "(top level)"
        problems.append((parts, _line_of(data, parts), f"{where}: {err.message}"))
    return problems


def validate_data(data: Any, path: str) -> list[RuleProblem]:
    """Check parsed YAML against the rule schema; one problem per violation, with its line."""
    problems = []
    for parts, line, message in schema_problems(data, "rule"):
        rule_id = None
        if len(parts) >= 2 and parts[0] == "rules" and isinstance(data, dict):
            try:
                rule_id = data["rules"][parts[1]].get("id")
            except (IndexError, AttributeError, TypeError):
                pass
        problems.append(RuleProblem(path, line, message, rule_id))
    return problems


def _pack_data(raw: bytes, path: str, *, use_cache: bool) -> tuple[dict | None, list[RuleProblem]]:
    """read_pack for the bytes ``raw`` of ``path``."""
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
    """A JSON cache file's data, or None when it is missing, damaged or not private."""
    raw = _read_private(path)
    if raw is None:
        return None
    import json  # only for a rule file its rule set's cache file does not have

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _write_private(path: str, data: bytes) -> None:
    """Best effort: a read-only or full disk only costs speed."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        import threading  # a temporary file per thread: two diagnoses in one process may write at once

        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        # 0600 whatever the umask: _read_private refuses files others could write (umask 002 too)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with open(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def _write_cache(path: str, data: dict) -> None:
    """Write ``data`` as JSON; data JSON cannot hold (a YAML date in a test's facts) is not
    cached."""
    import json

    try:
        text = json.dumps(data)
    except (TypeError, ValueError, RecursionError):
        return
    _write_private(path, text.encode())


def _write_marshal(path: str, data: Any) -> None:
    """Write ``data`` with marshal; data marshal cannot hold (a YAML date) is not cached."""
    try:
        blob = marshal.dumps(data)
    except ValueError:
        return
    _write_private(path, blob)


def _cacheable(data: dict) -> dict | None:
    """A validated rule file's data as the rule set's cache keeps it: plain dicts, each rule's
    data but what a load reads packed with marshal (``__rest__``), beside the (kind, text) of
    its texts built when used (``__texts__``); None if marshal cannot hold it (a YAML date)."""
    plain = _plain(data)
    try:
        for i, rule in enumerate(plain["rules"]):
            texts = tuple(_deferred_texts(rule))
            rest = {k: v for k, v in rule.items() if k not in _READ_AT_LOAD}
            kept = {k: v for k, v in rule.items() if k in _READ_AT_LOAD}
            plain["rules"][i] = {**kept, "__texts__": texts, "__rest__": marshal.dumps(rest)}
        marshal.dumps(plain)
    except ValueError:
        return None
    return plain


def _plain(value: Any) -> Any:
    """``value`` with mappings as plain dicts (marshal takes no dict subclass such as _LineDict)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value) is list:
        return [_plain(v) for v in value]
    return value


def _keep_newest(paths: list[str], keep: int) -> None:
    """Remove all but the ``keep`` most recently written of ``paths``."""
    if len(paths) > keep:
        paths.sort(key=lambda p: os.stat(p).st_mtime_ns)
        for path in paths[:len(paths) - keep]:
            os.unlink(path)


def _deferred_texts(raw: dict) -> list[tuple[str, Any]]:
    """(kind, text) of the texts of a rule built only when used: message, steps, discriminators."""
    texts: list[tuple[str, Any]] = [("template", raw.get("message"))]
    for ladder in (raw.get("severity"), raw.get("confidence")):
        if type(ladder) is list:
            texts += [("expr", step.get("when")) for step in ladder if type(step) is dict and "when" in step]
    texts += [("expr", d) for d in raw.get("discriminators") or ()]
    return texts


def save_rule_set(cache: _RuleCache) -> None:
    """Write a rule set's cache file (what its load used, :meth:`_RuleCache.close`), then bound
    the cache folder: older files of the same packs go, and so do all but the newest others."""
    for texts in cache.deferred:  # used, though not (yet) built
        for kind, text in texts:
            cache.used[kind].setdefault(text, cache.recipes[kind][text])
    path = cache.path
    assert path is not None  # _RuleCache._save writes only a cache with a file
    _write_marshal(path, {"stamp": cache.stamp, "files": cache.used_files, **cache.used,
                          "checked": (cache.catalog_key or "", cache.used_checked)})
    folder, mine = os.path.split(path)
    same_packs = mine[:21]  # "set-" and the packs' digest
    try:
        listing = os.listdir(folder)
        names = [n for n in listing if n.startswith("set-") and n.endswith(".marshal")]
        for name in names:  # these packs' files for an older memdiag or compiler: never read again
            if name.startswith(same_packs) and name != mine:
                os.unlink(os.path.join(folder, name))
        others = [os.path.join(folder, n) for n in names if not n.startswith(same_packs)]
        _keep_newest(others, cache.KEEP - 1)  # other sets of packs (this one is the newest)
        # files of memdiag before rule-set caches (never read again), and one file per pack
        # text ever loaded (each edit of a pack leaves one): bounded like the sets
        for name in listing:
            if name.startswith("compiled-") or (name.startswith("ov-") and name.endswith(".json")):
                os.unlink(os.path.join(folder, name))
        packs = [os.path.join(folder, n) for n in listing if len(n) == 37 and n.endswith(".json")]
        _keep_newest(packs, cache.KEEP_PACKS)
    except OSError:
        pass
