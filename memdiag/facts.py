"""The fact catalog and the set of facts one diagnosis works on.

A fact has a dotted name (``meminfo.MemTotal``), a type, a unit, the source that produces it and
a plain-language explanation. Sizes are always bytes. A fact that no source could establish is
*unknown* (absent from the :class:`FactSet`), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

#: The fact types. ``bytes`` are sizes in bytes, ``count`` a number of things named by ``unit``,
#: ``ratio`` a fraction of 1, ``seconds`` a duration or a time stamp, ``table`` a list of mappings.
FACT_TYPES = ("bytes", "count", "ratio", "number", "seconds", "bool", "str", "list", "table", "map")


class _Unknown:
    """The value of a fact nobody could establish. Distinct from 0, None and False."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "unknown"

    def __bool__(self) -> bool:
        raise TypeError("unknown has no truth value; test `is UNKNOWN`")

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True, slots=True)
class FactSpec:
    """What a fact means. ``name`` may end in ``.*`` for a family (``vmstat.*``)."""

    name: str
    type: str
    doc: str
    unit: str = ""
    source: str = ""
    since: str = ""  # kernel versions that have it, where that matters

    def __post_init__(self) -> None:
        if self.type not in FACT_TYPES:
            raise ValueError(f"fact {self.name}: unknown type {self.type!r}")
        if self.type == "bytes" and not self.unit:
            object.__setattr__(self, "unit", "bytes")

    @property
    def is_family(self) -> bool:
        return self.name.endswith(".*")


class Catalog:
    """Every fact memdiag knows, by name; families (``vmstat.*``) match any member."""

    def __init__(self, specs: Iterable[FactSpec] = ()) -> None:
        self._exact: dict[str, FactSpec] = {}
        self._families: dict[str, FactSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: FactSpec) -> None:
        if spec.is_family:
            self._families[spec.name[:-1]] = spec
        else:
            self._exact[spec.name] = spec

    def get(self, name: str) -> FactSpec | None:
        spec = self._exact.get(name)
        if spec is not None:
            return spec
        prefix = name.rpartition(".")[0] + "."
        while prefix:
            fam = self._families.get(prefix)
            if fam is not None:
                return fam
            prefix = prefix[:-1].rpartition(".")[0]
            prefix = prefix + "." if prefix else ""
        return None

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def is_exact(self, name: str) -> bool:
        """Known by name, not merely as a member of a family."""
        return name in self._exact

    def __iter__(self) -> Iterator[FactSpec]:
        yield from sorted([*self._exact.values(), *self._families.values()], key=lambda s: s.name)

    def names(self) -> list[str]:
        return sorted([*self._exact, *(p + "*" for p in self._families)])

    def suggest(self, name: str) -> str | None:
        """The closest known name, for did-you-mean messages."""
        import difflib  # only on the error path

        close = difflib.get_close_matches(name, list(self._exact), n=1, cutoff=0.8)
        return close[0] if close else None


@dataclass(slots=True)
class Fact:
    """One established value and where it came from (a file path, live or in a snapshot)."""

    name: str
    value: Any
    origin: str


@dataclass(frozen=True, slots=True)
class Problem:
    """Evidence a source could not use: unreadable, timed out, malformed. Never fatal."""

    source: str
    message: str
    path: str = ""
    kind: str = "unreadable"  # unreadable | permission | timeout | malformed | failed

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}: {where}{self.message}"


@dataclass(slots=True)
class FactSet:
    """The facts of one host at one moment, with the problems met while collecting them."""

    catalog: Catalog
    facts: dict[str, Fact] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def set(self, name: str, value: Any, origin: str) -> None:
        if value is UNKNOWN or value is None:
            return
        self.facts[name] = Fact(name, value, origin)

    def get(self, name: str, default: Any = UNKNOWN) -> Any:
        fact = self.facts.get(name)
        return default if fact is None else fact.value

    def __contains__(self, name: str) -> bool:
        return name in self.facts

    def origin(self, name: str) -> str | None:
        fact = self.facts.get(name)
        return None if fact is None else fact.origin

    def problem(self, source: str, message: str, path: str = "", kind: str = "unreadable") -> None:
        self.problems.append(Problem(source, message, path, kind))

    def lookup(self, dotted: str) -> Any:
        """Resolve a dotted name: a fact, or a key inside a fact's mapping value.

        ``processes.top`` is a fact; ``meminfo.MemTotal`` is a fact; ``balloon.vmware.current``
        may be the ``current`` key of the ``balloon.vmware`` map fact.
        """
        fact = self.facts.get(dotted)
        if fact is not None:
            return fact.value
        head, _, tail = dotted.rpartition(".")
        keys = [tail]
        while head:
            fact = self.facts.get(head)
            if fact is not None:
                value = fact.value
                for key in reversed(keys):
                    if not isinstance(value, dict) or key not in value:
                        return UNKNOWN
                    value = value[key]
                return UNKNOWN if value is None else value  # a None entry is not a known value
            head, _, tail = head.rpartition(".")
            keys.append(tail)
        return UNKNOWN
