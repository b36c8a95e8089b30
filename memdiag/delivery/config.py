"""The delivery configuration file: where it is, what it says, and where its secrets come from.

A secret is never written in the file itself: it comes from ``${VAR}`` (an environment variable)
or from a file named by a ``*_file`` option (``token_file: /etc/memdiag/jira.token`` sets
``token``). Every such value is registered with the :class:`Redactor` so it is masked in all
output, and options named like credentials (``token``, ``password`` ...) are refused when given
literally. The file is validated against ``schemas/config.schema.json``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from memdiag.delivery.redact import Redactor
from memdiag.errors import UsageError

SEVERITIES = ("info", "warning", "critical")
REPEATS = ("always", "change", "escalation", "never")
#: Options that are credentials whatever the sink type: only ``${VAR}`` or ``*_file`` may set them.
CREDENTIAL_OPTIONS = frozenset({"token", "password", "routing_key", "api_key", "secret", "integration_key"})
#: Settings the engine consumes; everything else in an entry belongs to the sink type.
COMMON_KEYS = frozenset({
    "name", "type", "enabled", "min_severity", "tags", "exclude_tags", "repeat", "deadline",
    "connect_timeout", "read_timeout", "retries", "backoff", "backoff_cap", "ca_file",
})
MAX_SECRET_FILE = 64 * 1024
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class SinkEntry:
    """One ``sinks:`` entry: engine settings plus the type's own options (secrets resolved)."""

    name: str
    type: str
    options: dict[str, Any] = field(repr=False)  # may hold secrets: never in a repr
    index: int = 0
    enabled: bool = True
    min_severity: str = "info"
    tags: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)
    repeat: str | None = None  # None: the sink type's default
    deadline: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff: float = 1.0
    backoff_cap: float = 30.0
    ca_file: str | None = None
    literal: frozenset[str] = frozenset()  # option names given as plain text in the file

    @property
    def where(self) -> str:
        return f"sinks[{self.index}] ({self.name})"

    def accepts(self, finding: dict) -> bool:
        """The entry's severity and tag filters (suppressed findings never go anywhere)."""
        if finding.get("suppressed"):
            return False
        if SEVERITIES.index(finding.get("severity", "info")) < SEVERITIES.index(self.min_severity):
            return False
        tags = set(finding.get("tags") or ())
        if self.tags and not tags.intersection(self.tags):
            return False
        return not tags.intersection(self.exclude_tags)


@dataclass
class Config:
    path: str
    sinks: list[SinkEntry]
    redactor: Redactor
    state_dir: str | None = None
    deadline: float = 60.0  # the whole delivery phase

    def sink(self, name: str) -> SinkEntry | None:
        return next((s for s in self.sinks if s.name == name), None)


def load_config(path: str, *, environ: dict[str, str] | None = None) -> Config:
    """Read, validate and resolve ``path``; any problem is a one-line :class:`UsageError`."""
    import yaml

    env = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read config: {exc.strerror or exc}", path=path) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"not valid YAML: {problem}", path=path,
                         line=None if mark is None else mark.line + 1) from None
    if raw is None:
        raw = {}
    _validate(raw, text, path)

    redactor = Redactor()
    delivery = raw.get("delivery") or {}
    entries: list[SinkEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw.get("sinks") or []):
        name = item["name"]
        if name in seen:
            raise UsageError(f"sinks[{index}]: sink name {name!r} is used twice", path=path)
        seen.add(name)
        where = f"sinks[{index}] ({name})"
        resolved, literal = _resolve(item, env, redactor, path, where)
        options = {k: v for k, v in resolved.items() if k not in COMMON_KEYS}
        for key in sorted(CREDENTIAL_OPTIONS.intersection(literal).intersection(options)):
            raise UsageError(
                f"{where}: {key!r} is a secret; give it as ${{VAR}} or {key}_file, not in the file",
                path=path)
        common = {k: v for k, v in resolved.items() if k in COMMON_KEYS and k not in ("name", "type")}
        entries.append(SinkEntry(name=name, type=item["type"], options=options, index=index,
                                 literal=frozenset(literal), **common))
    state_dir = delivery.get("state_dir")
    return Config(path=path, sinks=entries, redactor=redactor,
                  state_dir=os.path.expanduser(state_dir) if state_dir else None,
                  deadline=float(delivery.get("deadline", 60.0)))


def _resolve(item: dict, env, redactor: Redactor, path: str, where: str) -> tuple[dict, set[str]]:
    """Expand ``${VAR}`` everywhere and ``*_file`` options; return options and the literal keys."""
    out: dict[str, Any] = {}
    literal: set[str] = set()
    for key in item:
        if key.endswith("_file") and key != "ca_file" and key[: -len("_file")] in item:
            raise UsageError(f"{where}: give either {key[:-5]!r} or {key!r}, not both", path=path)
    for key, value in item.items():
        if key.endswith("_file") and key != "ca_file" and isinstance(value, str):
            target = key[: -len("_file")]
            file_path, _ = _expand(value, env, redactor, path, where, key)
            out[target] = _read_secret(file_path, path, where, key)
            redactor.add(out[target])
            continue
        expanded, from_env = _expand_any(value, env, redactor, path, where, key)
        out[key] = expanded
        if not from_env:
            literal.add(key)
    return out, literal


def _expand_any(value: Any, env, redactor: Redactor, path: str, where: str, key: str) -> tuple[Any, bool]:
    if isinstance(value, str):
        return _expand(value, env, redactor, path, where, key)
    if isinstance(value, list):
        pairs = [_expand_any(v, env, redactor, path, where, key) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if isinstance(value, dict):
        pairs = {k: _expand_any(v, env, redactor, path, where, f"{key}.{k}") for k, v in value.items()}
        return {k: p[0] for k, p in pairs.items()}, any(p[1] for p in pairs.values())
    return value, False


def _expand(value: str, env, redactor: Redactor, path: str, where: str, key: str) -> tuple[str, bool]:
    used = False

    def sub(m: re.Match) -> str:
        nonlocal used
        if m.group(0) == "$$":
            return "$"
        var = m.group(1)
        if var not in env:
            raise UsageError(f"{where}: option {key!r} needs environment variable {var}, which is not set",
                             path=path)
        used = True
        redactor.add(env[var])
        return env[var]

    result = _VAR.sub(sub, value)
    if used:
        redactor.add(result)  # a URL built around a secret is itself secret as a whole
    return result, used


def _read_secret(file_path: str, path: str, where: str, key: str) -> str:
    try:
        with open(os.path.expanduser(file_path), "rb") as f:
            data = f.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise UsageError(f"{where}: {key}: cannot read {file_path}: {exc.strerror or exc}", path=path) from None
    if len(data) > MAX_SECRET_FILE:
        raise UsageError(f"{where}: {key}: {file_path} is larger than {MAX_SECRET_FILE} bytes", path=path)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{where}: {key}: {file_path} is not UTF-8 text", path=path) from None


def _validate(raw: Any, text: str, path: str) -> None:
    import jsonschema

    from memdiag import schemas

    validator = jsonschema.Draft202012Validator(schemas.load("config"))
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    # a failing type branch also makes its options "unevaluated": report the real problem first
    real = [e for e in errors if e.validator != "unevaluatedProperties"]
    err = jsonschema.exceptions.best_match(real or errors)
    while err.context:  # descend into if/then and anyOf branches to the concrete problem
        err = jsonschema.exceptions.best_match(err.context)
    loc = _location(list(err.absolute_path), raw)
    raise UsageError(f"{loc}{_message(err)}", path=path, line=_line_of(text, list(err.absolute_path)))


def _location(parts: list, raw: Any) -> str:
    if not parts:
        return ""
    out, node = "", raw
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(p, int) and isinstance(node, dict) and isinstance(node.get("name"), str):
            out += f" ({node['name']})"
    return out + ": "


def _message(err) -> str:
    if err.validator == "unevaluatedProperties" or err.validator == "additionalProperties":
        return err.message.replace("Unevaluated properties are not allowed", "unknown option(s)")
    return err.message


def _line_of(text: str, parts: list) -> int | None:
    """The line of the YAML node at ``parts``, for messages that point at the problem."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for p in parts:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == p), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(p, int) and p < len(node.value):
            node = node.value[p]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
