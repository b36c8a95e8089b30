"""The fact catalog and the set of facts one diagnosis works on.

A fact has a dotted name (``meminfo.MemTotal``), a type, a unit, the source that produces it and
a plain-language explanation. Sizes are always bytes. A fact that no source could establish is
*unknown* (absent from the :class:`FactSet`), never 0.

The classes here are written out rather than made with ``@dataclass``: every run imports them,
and building a dataclass costs 0.3-0.9 ms of start-up each (it generates and compiles code).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
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


class _Frozen:
    """Immutable, compared and hashed by its fields (in ``__slots__`` order)."""

    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field '{name}' of {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field '{name}' of {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple:
        return type(self), self._values()


class _Record:
    """A mutable record compared and shown by the fields named in ``_FIELDS``; not hashable."""

    __slots__ = ()
    _FIELDS: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self._FIELDS)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._FIELDS)
        return f"{type(self).__name__}({fields})"


_set = object.__setattr__


class FactSpec(_Frozen):
    """What a fact means. ``name`` may end in ``.*`` for a family (``vmstat.*``)."""

    __slots__ = ("name", "type", "doc", "unit", "source", "since")
    name: str
    type: str
    doc: str
    unit: str
    source: str
    since: str  # kernel versions that have it, where that matters

    def __init__(self, name: str, type: str, doc: str, unit: str = "", source: str = "",
                 since: str = "") -> None:
        if type not in FACT_TYPES:
            raise ValueError(f"fact {name}: unknown type {type!r}")
        if type == "bytes" and not unit:
            unit = "bytes"
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "doc", doc)
        _set(self, "unit", unit)
        _set(self, "source", source)
        _set(self, "since", since)

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


class Fact:
    """One established value and where it came from (a file path, live or in a snapshot)."""

    __slots__ = ("name", "value", "origin")

    def __init__(self, name: str, value: Any, origin: str) -> None:
        self.name, self.value, self.origin = name, value, origin

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Fact:
            return NotImplemented
        return (self.name, self.value, self.origin) == (other.name, other.value, other.origin)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Fact(name={self.name!r}, value={self.value!r}, origin={self.origin!r})"


class Problem(_Frozen):
    """Evidence a source could not use: unreadable, timed out, malformed. Never fatal."""

    __slots__ = ("source", "message", "path", "kind")
    source: str
    message: str
    path: str
    kind: str  # unreadable | permission | timeout | malformed | failed

    def __init__(self, source: str, message: str, path: str = "", kind: str = "unreadable") -> None:
        _set(self, "source", source)
        _set(self, "message", message)
        _set(self, "path", path)
        _set(self, "kind", kind)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}: {where}{self.message}"


class FactSet:
    """The facts of one host at one moment, with the problems met while collecting them."""

    __slots__ = ("catalog", "facts", "problems")

    def __init__(self, catalog: Catalog, facts: dict[str, Fact] | None = None,
                 problems: list[Problem] | None = None) -> None:
        self.catalog = catalog
        self.facts: dict[str, Fact] = {} if facts is None else facts
        self.problems: list[Problem] = [] if problems is None else problems

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.catalog, self.facts, self.problems) == (other.catalog, other.facts, other.problems)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(catalog={self.catalog!r}, facts={self.facts!r}, problems={self.problems!r})"

    def set(self, name: str, value: Any, origin: str) -> None:
        if value is UNKNOWN or value is None:
            return
        self.facts[name] = Fact(name, value, origin)

    def set_many(self, items: Iterable[tuple[str, Any]], origin: str) -> None:
        """:meth:`set` of each (name, value), all from ``origin``: one call for a file of
        counters (vmstat sets ~180 facts, meminfo ~55)."""
        facts = self.facts
        for name, value in items:
            if value is not UNKNOWN and value is not None:
                facts[name] = Fact(name, value, origin)

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
