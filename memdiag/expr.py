"""The rule expression language and message templates: parsed with ``ast``, never ``eval``.

A condition such as ``accounting.unaccounted_ratio >= params.min_ratio and has(balloon.vmware)``
is compiled once by :func:`compile_expr` into a tree of small closures (constant parts are
computed then); :meth:`Expr.evaluate` runs it against an :class:`Env` as often as needed.

The language (anything else is refused at compile time with the construct and its column):

* literals: ints, floats, strings, ``true``/``false``/``none`` in any case, lists ``[a, b]``;
* dotted names ``meminfo.MemTotal``, ``params.min_ratio``, ``balloon.vmware.current``: the env
  resolves them (one-part names too); no part may start with ``__``;
* subscripts and slices of lists, strings and maps: ``processes.top[0]["comm"]``; a missing
  element or key is UNKNOWN;
* ``and or not``, ``a if c else b``, comparisons (chained) ``== != < <= > >=``, ``in``,
  ``not in``; ``+`` on numbers, strings or lists; ``- * / // %`` and unary ``-``/``+`` on
  numbers only. Version tuples compare with missing parts as 0 (``4.4 == 4.4.0``);
* the functions in :data:`FUNCTIONS`: min, max (several values or one list), abs, len,
  count, round(x[, digits]), sum(list), has(name), coalesce(a, ...), intersects(list, list),
  lower(s), startswith(s, prefix or [prefixes]), contains(s or list or map, item),
  kib/mib/gib(n) (to bytes), version(s) (``"3.10.0-693.el7"`` -> ``(3, 10, 0)``), and for diffs
  prev(name), delta(name) (now - prev), per_hour(name) (delta / elapsed hours),
  elapsed_hours(). has/prev/delta/per_hour take a fact *name* (or a string naming it).

Missing facts are :data:`memdiag.facts.UNKNOWN` and propagate with three-valued (Kleene) logic:
``False and UNKNOWN`` is False, ``True or UNKNOWN`` is True, ``not UNKNOWN`` and
``x if UNKNOWN else y`` are UNKNOWN, and so is every comparison, operation or function with an
UNKNOWN operand, except has() and coalesce(). Division or modulo by zero is UNKNOWN too, as
are the min/max of an empty list and a list literal with an UNKNOWN member.

Compiling is two steps. *Analysis* (:func:`expr_recipe`, :func:`template_recipe`) parses the
text with ``ast``, refuses what the language does not have, computes constant parts and the
location words of every run-time error, and returns a *recipe*: plain data (nested tuples of
operation names, constants, fact names and locations; see "Recipes and building" below) with
the names the text uses. *Building* (:func:`expr_from_recipe`, :func:`template_from_recipe`) turns a recipe
into closures; the builders are the only place run-time semantics live. ``compile_expr`` is
both steps. The analyser lives in :mod:`memdiag.expr_analysis`, imported when a text is first
analysed; memdiag.ruleset keeps recipes in its cache file, so a later run only builds (and
imports neither the analyser nor ``ast``).

Safety: the evaluator never looks up attributes on values, never calls a value and only applies
operators to plain data (numbers, strings, lists, maps, version tuples), so a rule file from an
untrusted folder cannot reach Python internals. There are no loops, and work is bounded by the
``MAX_*`` constants below (text length, node count, nesting, int size, string/list growth).
A recipe read back from a cache file is checked structurally as it is built, whoever wrote it:
only the node kinds, operators, functions and filters the analyser emits, their arities, plain
constants within the analyser's bounds, nesting and size within MAX_DEPTH and MAX_NODES (with
room for what analysis adds), string names and locations. Anything else makes the builder
refuse the recipe, and the text is compiled from scratch instead. So a damaged or forged
recipe can at worst describe another expression a rule text could have been (which is why
memdiag.ruleset reads cache files only when they belong to this user and nobody else may
write them: for integrity, not for this property).

Errors: :class:`ExprError` (a ``ValueError``) at compile time, naming the construct and column;
:class:`EvalError` at run time (the rule is broken, e.g. ordering a string against a number),
naming the operation, the operand types and the column.

Templates (:func:`compile_template`): text with ``{expr}`` or ``{expr|filter}`` fields, filters
in :data:`FILTERS` (bytes, pct, int, num, list, str); ``{{`` and ``}}`` are literal braces;
UNKNOWN renders as ``unknown``; ``extra`` names (confidence, severity) are usable as bare names.
"""

from __future__ import annotations

import itertools
import marshal

from memdiag.facts import UNKNOWN
from memdiag.units import GIB, KIB, MIB, format_bytes, format_ratio

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable, Iterable, Protocol

    _Fn = Callable[[Any], Any]
else:
    Protocol = object  # Env only documents what an env offers; nothing checks it at run time

__all__ = [
    "UNKNOWN", "ExprError", "EvalError", "Env", "MappingEnv", "Expr", "Template", "compile_expr",
    "compile_template", "unknown_names", "FUNCTIONS", "FILTERS",
    "MAX_TEXT", "MAX_TEMPLATE_TEXT", "MAX_NODES", "MAX_DEPTH", "MAX_INT_BITS", "MAX_SIZE",
    "MAX_ROUND_DIGITS",
]

#: Longest expression source, in characters.
MAX_TEXT = 4096
#: Longest template source, in characters (each ``{...}`` field is also held to MAX_TEXT).
MAX_TEMPLATE_TEXT = 16384
#: Most expression nodes (names, literals, operators, calls, ...) in one expression.
MAX_NODES = 500
#: Deepest nesting of expression nodes.
MAX_DEPTH = 64
#: Integer results must satisfy ``abs(x) < 2**MAX_INT_BITS``.
MAX_INT_BITS = 256
#: Longest string or list an operation may produce (characters or items); also the longest
#: text one template field renders to.
MAX_SIZE = 65536
#: Largest ``abs(ndigits)`` accepted by ``round(x, ndigits)`` (``round(1, -10**9)`` would hang).
MAX_ROUND_DIGITS = 64

_INT_LIMIT = 1 << MAX_INT_BITS
_NUMS = (int, float, bool)  # checked with `type(x) in _NUMS`: subclasses are not numbers here


class ExprError(ValueError):
    """An expression or template that cannot be compiled.

    ``offset`` is the 0-based column of the problem within its line (``None`` when the whole
    text is at fault), ``line`` the 1-based line within the text. ``message`` already says
    where, e.g. ``'lambda' is not allowed at column 5`` (columns in messages count from 1);
    ``reason`` is the same without the location.
    """

    def __init__(self, message: str, offset: int | None = None, line: int | None = None,
                 *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.line = line
        #: The problem without the "at column N" words, for callers that place it themselves.
        self.reason = message if reason is None else reason


class EvalError(ValueError):
    """A run-time failure: the rule itself is broken (comparing a string with a number, ...).

    ``message`` names the operation, the operands and the column; ``reason`` leaves out the
    column; ``offset`` and ``line`` are as in ExprError.
    """

    def __init__(self, message: str, offset: int | None = None, line: int | None = None,
                 *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.line = line
        #: The problem without the "at column N" words, for callers that place it themselves.
        self.reason = message if reason is None else reason


class Env(Protocol):
    """Where an expression finds its facts. Names are dotted, exactly as written in the rule."""

    def lookup(self, name: str) -> object:
        """The current value of ``name``, or UNKNOWN."""

    def previous(self, name: str) -> object:
        """The value of ``name`` in the earlier snapshot (diff mode), or UNKNOWN."""

    def elapsed_hours(self) -> object:
        """Hours between the earlier snapshot and now, or UNKNOWN."""


def _is_map(value: object) -> bool:
    # issubclass on the type, not isinstance: isinstance may consult the value's __class__.
    return issubclass(type(value), dict)


def _resolve(values: dict, name: str) -> Any:
    """``name`` in ``values``, else a key path inside a map value (like FactSet.lookup)."""
    if name in values:
        value = values[name]
        return UNKNOWN if value is None else value
    head, _, tail = name.rpartition(".")
    keys = [tail]
    while head:
        if head in values:
            value = values[head]
            for key in reversed(keys):
                if not _is_map(value) or key not in value:
                    return UNKNOWN
                value = value[key]
            return value
        head, _, tail = head.rpartition(".")
        keys.append(tail)
    return UNKNOWN


class MappingEnv:
    """An :class:`Env` over plain dicts, for tests and rule tests.

    ``lookup("a.b.c")`` returns ``values["a.b.c"]`` if present, else ``values["a.b"]["c"]``, else
    ``values["a"]["b"]["c"]``; anything missing (or a top-level ``None``, as in FactSet) is UNKNOWN.
    """

    __slots__ = ("values", "previous_values", "hours")

    def __init__(self, values: dict, previous: dict | None = None,
                 elapsed_hours: float | None = None) -> None:
        self.values = values
        self.previous_values = previous
        self.hours = elapsed_hours

    def lookup(self, name: str) -> object:
        return _resolve(self.values, name)

    def previous(self, name: str) -> object:
        return UNKNOWN if self.previous_values is None else _resolve(self.previous_values, name)

    def elapsed_hours(self) -> object:
        return UNKNOWN if self.hours is None else self.hours


class _ExtraEnv:
    """An env whose ``extra`` names (``confidence``, ``severity``) shadow the facts."""

    __slots__ = ("env", "extra")

    def __init__(self, env: Env, extra: dict[str, object]) -> None:
        self.env, self.extra = env, extra

    def lookup(self, name: str) -> object:
        if name in self.extra:
            value = self.extra[name]
            return UNKNOWN if value is None else value
        return self.env.lookup(name)

    def previous(self, name: str) -> object:
        return self.env.previous(name)

    def elapsed_hours(self) -> object:
        return self.env.elapsed_hours()


# --------------------------------------------------------------------------------------------
# Operations on values. They raise _Bad(message); the node that called them adds the column.


class _Bad(Exception):
    """An operation refused its operands; turned into EvalError with a location by the caller."""


def _located(reason: str, where: str, col: int | None, line: int | None) -> EvalError:
    return EvalError(reason + where, col, line, reason=reason)


def _tn(value: object) -> str:
    """A type name a rule author understands."""
    t = type(value)
    if _is_map(value):
        return "map"
    if t is tuple:
        return "version" if all(type(x) is int for x in value) else "tuple"
    if value is None:
        return "none"
    return t.__name__


def _desc(value: object) -> str:
    """Type and, for short scalars, the value: ``str 'vmware'``."""
    t = type(value)
    if t in (str, int, float, bool):
        try:
            text = repr(value)
        except ValueError:  # an int beyond the str-conversion digit limit
            return _tn(value)
        if len(text) > 40:
            text = text[:37] + "..."
        return f"{_tn(value)} {text}"
    if t is tuple and all(type(x) is int for x in value) and len(value) < 10:
        return "version " + ".".join(map(str, value))
    return _tn(value)


def _int_ok(result: Any) -> Any:
    if type(result) is int and not -_INT_LIMIT < result < _INT_LIMIT:
        raise _Bad(f"integer result exceeds the bound of 2**{MAX_INT_BITS}")
    return result


def _numbers(a: object, b: object, symbol: str) -> None:
    if type(a) not in _NUMS or type(b) not in _NUMS:
        raise _Bad(f"'{symbol}' needs numbers, got {_desc(a)} and {_desc(b)}")


def _add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta in _NUMS and tb in _NUMS:
        try:
            return _int_ok(a + b)
        except OverflowError:
            raise _Bad("'+' result is too large") from None
    if (ta is str and tb is str) or (ta is list and tb is list):
        if len(a) + len(b) > MAX_SIZE:
            raise _Bad(f"'+' result would exceed {MAX_SIZE} items")
        return a + b
    raise _Bad(f"cannot add {_desc(a)} and {_desc(b)} with '+'")


def _sub(a: Any, b: Any) -> Any:
    _numbers(a, b, "-")
    try:
        return _int_ok(a - b)
    except OverflowError:
        raise _Bad("'-' result is too large") from None


def _mul(a: Any, b: Any) -> Any:
    _numbers(a, b, "*")
    try:
        return _int_ok(a * b)
    except OverflowError:
        raise _Bad("'*' result is too large") from None


def _div(a: Any, b: Any) -> Any:
    _numbers(a, b, "/")
    if b == 0:
        return UNKNOWN
    try:
        return a / b
    except OverflowError:
        raise _Bad("'/' result is too large for a float") from None


def _floordiv(a: Any, b: Any) -> Any:
    _numbers(a, b, "//")
    if b == 0:
        return UNKNOWN
    try:
        return _int_ok(a // b)
    except OverflowError:
        raise _Bad("'//' result is too large") from None


def _mod(a: Any, b: Any) -> Any:
    # Numbers only: '%' on a string would be printf-style formatting.
    _numbers(a, b, "%")
    if b == 0:
        return UNKNOWN
    try:
        return a % b
    except OverflowError:
        raise _Bad("'%' operand is too large") from None


def _pad(a: tuple, b: tuple) -> tuple[tuple, tuple]:
    """Versions compare with missing parts as 0: ``4.4 == 4.4.0``."""
    if len(a) < len(b):
        return a + (0,) * (len(b) - len(a)), b
    if len(b) < len(a):
        return a, b + (0,) * (len(a) - len(b))
    return a, b


def _ordering(symbol: str, op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if type(a) is tuple and type(b) is tuple:
            a, b = _pad(a, b)
        try:
            return op(a, b)
        except TypeError:
            hint = ""
            if (type(a) is tuple) != (type(b) is tuple) and str in (type(a), type(b)):
                hint = '; wrap the string in version("...")'
            raise _Bad(f"cannot compare {_desc(a)} with {_desc(b)} using '{symbol}'{hint}") from None

    return compare


def _eq(a: Any, b: Any) -> bool:
    if type(a) is tuple and type(b) is tuple:
        a, b = _pad(a, b)
    return a == b


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _in(a: Any, b: Any) -> bool:
    tb = type(b)
    if tb is str:
        if type(a) is not str:
            raise _Bad(f"'in' on a string needs a string on the left, got {_desc(a)}")
        return a in b
    if tb is list or tb is tuple:
        return a in b
    if _is_map(b):
        try:
            return a in b
        except TypeError:
            raise _Bad(f"a {_tn(a)} cannot be a key of a map") from None
    raise _Bad(f"'in' needs a list, string or map on the right, got {_desc(b)}")


def _not_in(a: Any, b: Any) -> bool:
    return not _in(a, b)


#: Binary operators by the symbol recipes name them with.
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "//": _floordiv, "%": _mod,
}
#: Comparison operators by symbol.
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": _eq, "!=": _ne,
    "<": _ordering("<", lambda a, b: a < b), "<=": _ordering("<=", lambda a, b: a <= b),
    ">": _ordering(">", lambda a, b: a > b), ">=": _ordering(">=", lambda a, b: a >= b),
    "in": _in, "not in": _not_in,
}
def _index(c: Any, k: Any) -> Any:
    tc = type(c)
    if tc is list or tc is tuple or tc is str:
        if type(k) is not int and type(k) is not bool:
            raise _Bad(f"a {_tn(c)} index must be an int, got {_desc(k)}")
        try:
            return c[k]
        except IndexError:
            return UNKNOWN  # no such element: not established, like a missing fact
    if _is_map(c):
        try:
            return c[k]
        except KeyError:
            return UNKNOWN
        except TypeError:
            raise _Bad(f"a {_tn(k)} cannot be a key of a map") from None
    raise _Bad(f"cannot index {_desc(c)} with [...]")


def _slice(c: Any, lo: Any, hi: Any, step: Any) -> Any:
    tc = type(c)
    if tc is not list and tc is not tuple and tc is not str:
        raise _Bad(f"cannot slice {_desc(c)}")
    for part in (lo, hi, step):
        if part is not None and type(part) is not int and type(part) is not bool:
            raise _Bad(f"slice bounds must be ints, got {_desc(part)}")
    if step == 0:
        raise _Bad("slice step cannot be zero")
    return c[lo:hi:step]


# --------------------------------------------------------------------------------------------
# Functions. Each takes already evaluated, known arguments (UNKNOWN arguments make the call
# UNKNOWN before it is reached) and raises _Bad on wrong types.


def _need_number(fn: str, value: Any) -> None:
    if type(value) not in _NUMS:
        raise _Bad(f"{fn}() needs a number, got {_desc(value)}")


def _need_str(fn: str, value: Any) -> None:
    if type(value) is not str:
        raise _Bad(f"{fn}() needs a string, got {_desc(value)}")


def _extreme(fn: str, pick: Callable) -> Callable:
    def impl(*args: Any) -> Any:
        if len(args) == 1:
            items = args[0]
            if type(items) not in (list, tuple):
                raise _Bad(f"{fn}() of one argument needs a list, got {_desc(items)}")
            if not items:
                return UNKNOWN  # the extreme of nothing is not established
            if any(x is UNKNOWN for x in items):
                return UNKNOWN
        else:
            items = args
        try:
            return pick(items)
        except TypeError:
            kinds = ", ".join(sorted({_tn(x) for x in items}))
            raise _Bad(f"{fn}() cannot compare {kinds}") from None

    return impl


def _abs(x: Any) -> Any:
    _need_number("abs", x)
    return abs(x)


def _len(x: Any) -> int:
    if type(x) in (str, list, tuple) or _is_map(x):
        return len(x)
    raise _Bad(f"len() needs a list, string or map, got {_desc(x)}")


def _count(x: Any) -> int:
    if type(x) in (list, tuple) or _is_map(x):
        return len(x)
    raise _Bad(f"count() needs a list or map, got {_desc(x)}")


def _round(x: Any, ndigits: Any = None) -> Any:
    _need_number("round", x)
    if ndigits is not None:
        if type(ndigits) is not int or abs(ndigits) > MAX_ROUND_DIGITS:
            raise _Bad(f"round() digits must be an int between -{MAX_ROUND_DIGITS} and "
                       f"{MAX_ROUND_DIGITS}, got {_desc(ndigits)}")
    try:
        return round(x) if ndigits is None else round(x, ndigits)
    except (OverflowError, ValueError):
        raise _Bad(f"round() cannot round {_desc(x)}") from None


def _sum(items: Any) -> Any:
    if type(items) not in (list, tuple):
        raise _Bad(f"sum() needs a list of numbers, got {_desc(items)}")
    total: Any = 0
    for x in items:
        if x is UNKNOWN:
            return UNKNOWN
        if type(x) not in _NUMS:
            raise _Bad(f"sum() needs a list of numbers, found {_desc(x)}")
    try:
        total = sum(items)
    except OverflowError:
        raise _Bad("sum() result is too large") from None
    return _int_ok(total)


def _intersects(a: Any, b: Any) -> bool:
    if type(a) not in (list, tuple) or type(b) not in (list, tuple):
        raise _Bad(f"intersects() needs two lists, got {_tn(a)} and {_tn(b)}")
    try:
        return not set(a).isdisjoint(b)
    except TypeError:
        raise _Bad("intersects() needs lists of plain values (strings, numbers)") from None


def _lower(s: Any) -> str:
    _need_str("lower", s)
    return s.lower()


def _startswith(s: Any, prefix: Any) -> bool:
    _need_str("startswith", s)
    if type(prefix) is str:
        return s.startswith(prefix)
    if type(prefix) in (list, tuple) and all(type(p) is str for p in prefix):
        return s.startswith(tuple(prefix))
    raise _Bad(f"startswith() needs a string or a list of strings as prefix, got {_desc(prefix)}")


def _contains(s: Any, sub: Any) -> bool:
    if type(s) is str:
        if type(sub) is not str:
            raise _Bad(f"contains() on a string needs a string to look for, got {_desc(sub)}")
        return sub in s
    if type(s) in (list, tuple):
        return sub in s
    if _is_map(s):
        try:
            return sub in s
        except TypeError:
            raise _Bad(f"a {_tn(sub)} cannot be a key of a map") from None
    raise _Bad(f"contains() needs a string, list or map, got {_desc(s)}")


def _scaler(fn: str, factor: int) -> Callable[[Any], Any]:
    def impl(n: Any) -> Any:
        _need_number(fn, n)
        try:
            return _int_ok(n * factor)
        except OverflowError:
            raise _Bad(f"{fn}() result is too large") from None

    return impl


def _version(s: Any) -> Any:
    """``"3.10.0-693.el7.x86_64"`` -> ``(3, 10, 0)``: the leading dotted numeric part."""
    _need_str("version", s)
    text = s.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    parts: list[int] = []
    digits = ""
    for ch in text:
        if "0" <= ch <= "9":
            digits += ch
            if len(digits) > 18:  # not a version part; also keeps int() cheap
                return UNKNOWN
        elif ch == "." and digits:
            parts.append(int(digits))
            digits = ""
        else:
            break
    if digits:
        parts.append(int(digits))
    return tuple(parts) if parts else UNKNOWN


# name -> (min args, max args or None for any, implementation)
_VALUE_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    "min": (1, None, _extreme("min", min)),
    "max": (1, None, _extreme("max", max)),
    "abs": (1, 1, _abs),
    "len": (1, 1, _len),
    "count": (1, 1, _count),
    "round": (1, 2, _round),
    "sum": (1, 1, _sum),
    "intersects": (2, 2, _intersects),
    "lower": (1, 1, _lower),
    "startswith": (2, 2, _startswith),
    "contains": (2, 2, _contains),
    "kib": (1, 1, _scaler("kib", KIB)),
    "mib": (1, 1, _scaler("mib", MIB)),
    "gib": (1, 1, _scaler("gib", GIB)),
    "version": (1, 1, _version),
}
#: Functions whose argument is a fact *name*, not its value.
_NAME_FUNCTIONS = ("has", "prev", "delta", "per_hour")
#: Every function an expression may call.
FUNCTIONS: frozenset[str] = frozenset(
    [*_VALUE_FUNCTIONS, *_NAME_FUNCTIONS, "coalesce", "elapsed_hours"])


# --------------------------------------------------------------------------------------------
# Recipes and building: recipe -> closures. The only place run-time semantics live.
#
# A recipe node is a tuple whose first item says what it is:
#   ("const", value)                      a literal or a folded constant part: plain data
#   ("unknown",)                          a constant part that is UNKNOWN (``1 / 0``)
#   ("name", name)                        the env's value of a dotted name
#   ("list", items)                       ``[a, b]``
#   ("and", items), ("or", items)         Kleene and/or over two or more items
#   ("not", item)
#   ("neg", item, loc), ("pos", item, loc)
#   ("bin", symbol, left, right, loc)     ``+ - * / // %``
#   ("cmp", first, steps)                 steps: ((symbol, item, loc), ...) left to right
#   ("if", test, body, orelse)
#   ("index", container, key, loc), ("slice", container, lower, upper, step, loc)
#   ("has", name), ("prev", name), ("delta", name, loc), ("per_hour", name, loc)
#   ("elapsed",), ("coalesce", items), ("call", function, args, loc)
# items are tuples of nodes; loc is (where, column, line): the words a run-time error there
# ends with (" at column 7") and its position, as EvalError carries them.
#
# An expression's recipe is (node, names, read, history, tested, uses_elapsed); a template's
# is (pieces, names, read), each piece a literal str or (node, filter, where, column, line).
# Name lists are tuples of str in order of appearance (see Expr for what each means).


class _BadRecipe(Exception):
    """A recipe the analyser does not make: damaged, or not from this version of it."""


#: The analyser's recipes nest at most MAX_DEPTH + 1 deep; slices add up to three nodes the
#: node count does not include. Beyond these limits a recipe cannot be the analyser's.
_BUILD_DEPTH = MAX_DEPTH + 2
_BUILD_NODES = 4 * MAX_NODES
#: round() of the largest float has 1024 bits: the largest int a constant part can fold to.
_CONST_INT_LIMIT = 1 << 1100
#: What building a recipe that is not the analyser's may raise: a bad shape fails to unpack
#: (ValueError, TypeError); a marshalled node may be damaged (EOFError).
_RECIPE_ERRORS = (_BadRecipe, TypeError, ValueError, EOFError, RecursionError)


def _node_of(node: object) -> object:
    """A recipe node, given as is or marshalled (bytes: how memdiag.ruleset's cache keeps the
    nodes of texts built only when first used, so that loading does not unpack them)."""
    return marshal.loads(node) if type(node) is bytes else node  # type: ignore[arg-type]


def _plain_constant(value: object, depth: int = 0) -> bool:
    """Is ``value`` a constant the analyser can fold to: plain data within its bounds?"""
    t = type(value)
    if value is None or t is bool or t is float:
        return True
    if t is int:
        return -_CONST_INT_LIMIT < value < _CONST_INT_LIMIT  # type: ignore[operator]
    if t is str:
        return len(value) <= MAX_SIZE  # type: ignore[arg-type]
    if t is tuple:  # a version
        return len(value) <= MAX_SIZE and all(  # type: ignore[arg-type]
            type(x) is int and -_INT_LIMIT < x < _INT_LIMIT for x in value)  # type: ignore[attr-defined]
    if t is list:
        return depth <= _BUILD_DEPTH and len(value) <= MAX_SIZE and all(  # type: ignore[arg-type]
            _plain_constant(x, depth + 1) for x in value)  # type: ignore[attr-defined]
    return False


def _location(loc: object) -> tuple[str, int | None, int | None]:
    if type(loc) is not tuple:
        raise _BadRecipe("a location is not a tuple")
    where, col, line = loc
    if type(where) is not str or (col is not None and type(col) is not int) \
            or (line is not None and type(line) is not int):
        raise _BadRecipe("a location is not (words, column, line)")
    return where, col, line


def _fact_name(name: object, *, dotted: bool) -> str:
    """A fact name as the analyser writes it: a non-empty string; a dotted name's parts never
    start with ``__`` (has("...") and friends take any string, as their texts may)."""
    if type(name) is not str or not name or len(name) > MAX_TEXT:
        raise _BadRecipe("a name is not a string")
    if dotted and "__" in name and any(part.startswith("__") for part in name.split(".")):
        raise _BadRecipe(f"the name {name!r} is not one a rule can write")
    return name


class _Builder:
    """Builds one expression's closures from its recipe, checking each node as it goes.

    ``check``: also check that constants are plain data (recipes from a cache file); the
    analyser's own recipes skip it, since folding builds the same constant again and again.

    The closures take what they use as default arguments rather than from closure cells:
    cheaper to make (one tuple instead of a cell each) and to run (local variables). They are
    only ever called with the env."""

    __slots__ = ("nodes", "check")

    def __init__(self, *, check: bool = True) -> None:
        self.nodes = 0
        self.check = check

    def node(self, node: Any, depth: int) -> _Fn:
        if type(node) is not tuple or not node:
            raise _BadRecipe("a node is not a tuple")
        self.nodes += 1
        if self.nodes > _BUILD_NODES or depth > _BUILD_DEPTH:
            raise _BadRecipe("the recipe is larger or deeper than any expression")
        builder = _BUILDERS.get(node[0])  # an unhashable kind: TypeError, a bad recipe too
        if builder is None:
            raise _BadRecipe(f"unknown node {node[0]!r}")
        return builder(self, node, depth + 1)

    def items(self, items: Any, depth: int, least: int = 0) -> tuple[_Fn, ...]:
        if type(items) is not tuple or len(items) < least:
            raise _BadRecipe("a node's items are not a tuple")
        return tuple([self.node(item, depth) for item in items])


def _b_const(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, value = node
    if bd.check and not _plain_constant(value):
        raise _BadRecipe("a constant is not plain data")

    def const(env: Any, value: Any = value) -> Any:
        return value

    return const


def _unknown(env: Any) -> Any:
    return UNKNOWN


def _b_unknown(bd: _Builder, node: tuple, depth: int) -> _Fn:
    if len(node) != 1:
        raise _BadRecipe("'unknown' takes nothing")
    return _unknown


def _b_name(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, name = node
    if type(name) is not str or "__" in name or not name or len(name) > MAX_TEXT:  # the most common node
        name = _fact_name(name, dotted=True)

    def lookup(env: Any, name: str = name) -> Any:
        return env.lookup(name)

    return lookup


def _b_list(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, items = node

    def build(env: Any, fns: tuple = bd.items(items, depth)) -> Any:
        values = [fn(env) for fn in fns]
        for v in values:
            if v is UNKNOWN:  # a list with an unknown member is not established
                return UNKNOWN
        return values

    return build


def _b_and(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, items = node

    def kleene(env: Any, fns: tuple = bd.items(items, depth, 2)) -> Any:
        unknown = False
        value: Any = True
        for fn in fns:
            value = fn(env)
            if value is UNKNOWN:
                unknown = True
            elif not value:
                return value  # False and anything is False
        return UNKNOWN if unknown else value

    return kleene


def _b_or(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, items = node

    def kleene(env: Any, fns: tuple = bd.items(items, depth, 2)) -> Any:
        unknown = False
        value: Any = False
        for fn in fns:
            value = fn(env)
            if value is UNKNOWN:
                unknown = True
            elif value:
                return value  # True or anything is True
        return UNKNOWN if unknown else value

    return kleene


def _b_not(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, item = node

    def unary(env: Any, fn: _Fn = bd.node(item, depth)) -> Any:
        v = fn(env)
        return UNKNOWN if v is UNKNOWN else not v

    return unary


def _b_sign(bd: _Builder, node: tuple, depth: int) -> _Fn:
    kind, item, loc = node
    fn = bd.node(item, depth)
    where, col, line = _location(loc)
    if kind == "neg":
        def neg(env: Any, fn: _Fn = fn, where: str = where, col: int | None = col,
                line: int | None = line) -> Any:
            v = fn(env)
            if v is UNKNOWN:
                return UNKNOWN
            if type(v) not in _NUMS:
                raise _located(f"cannot apply unary '-' to {_desc(v)}", where, col, line)
            return -v

        return neg

    def pos(env: Any, fn: _Fn = fn, where: str = where, col: int | None = col,
            line: int | None = line) -> Any:
        v = fn(env)
        if v is UNKNOWN:
            return UNKNOWN
        if type(v) not in _NUMS:
            raise _located(f"cannot apply unary '+' to {_desc(v)}", where, col, line)
        return +v

    return pos


def _b_bin(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, symbol, left, right, loc = node
    impl = _BINARY.get(symbol)
    if impl is None:
        raise _BadRecipe(f"unknown operator {symbol!r}")
    return _binary(bd.node(left, depth), bd.node(right, depth), impl, loc)


def _binary(lf: _Fn, rf: _Fn, impl: Callable, loc: Any) -> _Fn:
    """``impl(a, b)`` of two operands: UNKNOWN if either is, a located EvalError if it refuses."""
    where, col, line = _location(loc)

    def binary(env: Any, lf: _Fn = lf, rf: _Fn = rf, impl: Callable = impl, where: str = where,
               col: int | None = col, line: int | None = line) -> Any:
        a = lf(env)
        if a is UNKNOWN:
            return UNKNOWN
        b = rf(env)
        if b is UNKNOWN:
            return UNKNOWN
        try:
            return impl(a, b)
        except _Bad as exc:
            raise _located(f"{exc}", where, col, line) from None

    return binary


def _b_cmp(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, first, steps = node
    first_fn = bd.node(first, depth)
    if type(steps) is not tuple or not steps:
        raise _BadRecipe("a comparison without steps")
    built = []
    for step in steps:
        if type(step) is not tuple:
            raise _BadRecipe("a comparison step is not a tuple")
        symbol, item, loc = step
        impl = _COMPARE.get(symbol)
        if impl is None:
            raise _BadRecipe(f"unknown comparison {symbol!r}")
        built.append((impl, bd.node(item, depth), *_location(loc)))

    if len(built) == 1:
        impl, rf, where, col, line = built[0]

        def compare(env: Any, lf: _Fn = first_fn, rf: _Fn = rf, impl: Callable = impl,
                    where: str = where, col: int | None = col, line: int | None = line) -> Any:
            a = lf(env)
            b = rf(env)
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            try:
                return impl(a, b)
            except _Bad as exc:
                raise _located(f"{exc}", where, col, line) from None

        return compare

    def compare_chain(env: Any, first_fn: _Fn = first_fn, chain: tuple = tuple(built)) -> Any:
        # a < b < c is (a < b) and (b < c), each operand evaluated once, with Kleene 'and'
        unknown = False
        a = first_fn(env)
        for impl, rf, where, col, line in chain:
            b = rf(env)
            if a is UNKNOWN or b is UNKNOWN:
                unknown = True
            else:
                try:
                    if not impl(a, b):
                        return False
                except _Bad as exc:
                    raise _located(f"{exc}", where, col, line) from None
            a = b
        return UNKNOWN if unknown else True

    return compare_chain


def _b_if(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, test, body, orelse = node

    def choose(env: Any, tf: _Fn = bd.node(test, depth), bf: _Fn = bd.node(body, depth),
               of: _Fn = bd.node(orelse, depth)) -> Any:
        t = tf(env)
        if t is UNKNOWN:
            return UNKNOWN
        return bf(env) if t else of(env)

    return choose


def _b_index(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, container, key, loc = node
    return _binary(bd.node(container, depth), bd.node(key, depth), _index, loc)


def _b_slice(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, container, lower, upper, step, loc = node
    cf = bd.node(container, depth)
    lo, hi, st = bd.node(lower, depth), bd.node(upper, depth), bd.node(step, depth)
    where, col, line = _location(loc)

    def subscript(env: Any, cf: _Fn = cf, lo: _Fn = lo, hi: _Fn = hi, st: _Fn = st,
                  where: str = where, col: int | None = col, line: int | None = line) -> Any:
        c, a, b, s = cf(env), lo(env), hi(env), st(env)
        if c is UNKNOWN or a is UNKNOWN or b is UNKNOWN or s is UNKNOWN:
            return UNKNOWN
        try:
            return _slice(c, a, b, s)
        except _Bad as exc:
            raise _located(f"{exc}", where, col, line) from None

    return subscript


def _b_has(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, name = node

    def has(env: Any, name: str = _fact_name(name, dotted=False)) -> Any:
        return env.lookup(name) is not UNKNOWN

    return has


def _b_prev(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, name = node

    def prev(env: Any, name: str = _fact_name(name, dotted=False)) -> Any:
        return env.previous(name)

    return prev


def _b_change(bd: _Builder, node: tuple, depth: int) -> _Fn:
    """delta(name) and per_hour(name)."""
    func, name, loc = node
    name = _fact_name(name, dotted=False)
    where, col, line = _location(loc)

    def change(env: Any, func: str = func, name: str = name, where: str = where,
               col: int | None = col, line: int | None = line) -> Any:
        now = env.lookup(name)
        if now is UNKNOWN:
            return UNKNOWN
        before = env.previous(name)
        if before is UNKNOWN:
            return UNKNOWN
        if type(now) not in _NUMS or type(before) not in _NUMS:
            raise _located(f"{func}({name}) needs numbers, got {_desc(before)} then "
                           f"{_desc(now)}", where, col, line)
        try:
            diff = _int_ok(now - before)
        except (_Bad, OverflowError):
            raise _located(f"{func}({name}) result is too large", where, col, line) from None
        if func == "delta":
            return diff
        hours = env.elapsed_hours()
        if hours is UNKNOWN:
            return UNKNOWN
        if type(hours) not in _NUMS:
            raise _located(f"elapsed hours must be a number, got {_desc(hours)}", where,
                           col, line)
        if hours == 0:
            return UNKNOWN
        try:
            return diff / hours
        except OverflowError:
            raise _located(f"{func}({name}) result is too large", where, col, line) from None

    return change


def _elapsed(env: Any) -> Any:
    return env.elapsed_hours()


def _b_elapsed(bd: _Builder, node: tuple, depth: int) -> _Fn:
    if len(node) != 1:
        raise _BadRecipe("'elapsed' takes nothing")
    return _elapsed


def _b_coalesce(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, items = node

    def coalesce(env: Any, fns: tuple = bd.items(items, depth, 1)) -> Any:
        for fn in fns:  # lazily: the first known value wins
            v = fn(env)
            if v is not UNKNOWN:
                return v
        return UNKNOWN

    return coalesce


def _b_call(bd: _Builder, node: tuple, depth: int) -> _Fn:
    _, name, args, loc = node
    spec = _VALUE_FUNCTIONS.get(name)
    if spec is None:
        raise _BadRecipe(f"unknown function {name!r}")
    low, high, impl = spec
    fns = bd.items(args, depth)
    if len(fns) < low or (high is not None and len(fns) > high):
        raise _BadRecipe(f"{name}() with {len(fns)} arguments")
    where, col, line = _location(loc)

    if len(fns) == 1:
        def call(env: Any, f0: _Fn = fns[0], impl: Callable = impl, where: str = where,
                 col: int | None = col, line: int | None = line) -> Any:
            a = f0(env)
            if a is UNKNOWN:
                return UNKNOWN
            try:
                return impl(a)
            except _Bad as exc:
                raise _located(f"{exc}", where, col, line) from None

        return call

    def call_n(env: Any, fns: tuple = fns, impl: Callable = impl, where: str = where,
               col: int | None = col, line: int | None = line) -> Any:
        values = [fn(env) for fn in fns]
        for v in values:
            if v is UNKNOWN:
                return UNKNOWN
        try:
            return impl(*values)
        except _Bad as exc:
            raise _located(f"{exc}", where, col, line) from None

    return call_n


_BUILDERS: dict[str, Callable[[_Builder, tuple, int], _Fn]] = {
    "const": _b_const, "unknown": _b_unknown, "name": _b_name, "list": _b_list,
    "and": _b_and, "or": _b_or, "not": _b_not, "neg": _b_sign, "pos": _b_sign, "bin": _b_bin,
    "cmp": _b_cmp, "if": _b_if, "index": _b_index, "slice": _b_slice, "has": _b_has,
    "prev": _b_prev, "delta": _b_change, "per_hour": _b_change, "elapsed": _b_elapsed,
    "coalesce": _b_coalesce, "call": _b_call,
}


def _names_ok(names: object) -> bool:
    # join refuses anything but str (marshal makes no str subclass): one C call, no loop
    return type(names) is tuple and type("".join(names)) is str  # type: ignore[arg-type]


def _expr_header(recipe: object) -> tuple:
    """An expression recipe's parts, checked: (node, names, read, history, tested, elapsed)."""
    if type(recipe) is not tuple or len(recipe) != 6:  # type: ignore[arg-type]
        raise _BadRecipe("an expression recipe has six parts")
    node, names, read, history, tested, uses_elapsed = recipe  # type: ignore[misc]
    if not (_names_ok(names) and _names_ok(read) and _names_ok(history) and _names_ok(tested)
            and type(uses_elapsed) is bool):
        raise _BadRecipe("an expression recipe's names are not tuples of strings")
    return recipe  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Public API


_NO_NAMES: frozenset[str] = frozenset()


class Expr:
    """A compiled expression. Evaluate it against any number of environments."""

    __slots__ = ("text", "names", "read_names", "history_names", "tested_names", "uses_elapsed", "_fn")

    def __init__(self, text: str, recipe: tuple, fn: _Fn | None) -> None:
        _, names, read, history, tested, uses_elapsed = recipe
        self.text = text
        #: Every dotted name referenced, including the arguments of has/prev/delta/per_hour.
        self.names: frozenset[str] = frozenset(names) if names else _NO_NAMES
        #: Names whose current value is read (not has()/prev() only), in order of appearance:
        #: the ones that can make the result UNKNOWN.
        self.read_names: tuple[str, ...] = read
        #: Names whose previous-snapshot value is read (prev/delta/per_hour).
        self.history_names: frozenset[str] = frozenset(history) if history else _NO_NAMES
        #: Names the expression tests with has(): optional by the author's own account.
        self.tested_names: frozenset[str] = frozenset(tested) if tested else _NO_NAMES
        #: Whether elapsed_hours() or per_hour() is used.
        self.uses_elapsed: bool = uses_elapsed
        self._fn = fn

    def evaluate(self, env: Env) -> object:
        """The value, or UNKNOWN. Raises EvalError when the rule is broken (type errors)."""
        return self._fn(env)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


class _LazyExpr(Expr):
    """An Expr from a recipe, built on first evaluation (a rule's message, severity steps and
    discriminators are needed only when it fires). A recipe the builder refuses is replaced by
    compiling the text, whose errors are then raised here."""

    __slots__ = ("_node",)

    def __init__(self, text: str, recipe: tuple) -> None:
        Expr.__init__(self, text, recipe, None)
        self._node = recipe[0]

    def evaluate(self, env: Env) -> object:
        fn = self._fn
        if fn is None:
            try:
                fn = _Builder().node(_node_of(self._node), 0)
            except _RECIPE_ERRORS:
                fn = _recompile(self.text, compile_expr)._fn  # type: ignore[union-attr]
            self._fn = fn
        return fn(env)  # type: ignore[misc]


def _recompile(text: str, compiler: Callable[[str], Expr | Template]) -> Expr | Template:
    """``text`` compiled from scratch, for a recipe the builder refused. The text compiled
    when its recipe was made; if it does not now, the rule is broken: an EvalError, which
    callers of evaluate() and render() handle."""
    try:
        return compiler(text)
    except ExprError as exc:
        raise EvalError(exc.message, exc.offset, exc.line, reason=exc.reason) from None


def expr_recipe(text: str) -> tuple:
    """Analyse ``text`` into its recipe; raises ExprError naming the problem and its column."""
    from memdiag.expr_analysis import expr_recipe as analyse  # ast and the analyser: only for a new text

    return analyse(text)


def compile_expr(text: str) -> Expr:
    """Compile ``text``; raises ExprError naming the problem and its column."""
    recipe = expr_recipe(text)
    return Expr(text, recipe, _Builder(check=False).node(recipe[0], 0))


def expr_from_recipe(text: str, recipe: object, *, lazy: bool = False) -> Expr | None:
    """The expression ``recipe`` (from :func:`expr_recipe`, perhaps by way of a cache file)
    describes, carrying ``text``; None when it is not a recipe the analyser makes. ``lazy``:
    build it on first evaluation (only its names are checked now). The recipe's node may be
    marshalled (bytes), as a cache keeps it; it is then unpacked when built."""
    try:
        header = _expr_header(recipe)
        if lazy:
            return _LazyExpr(text, header)
        return Expr(text, header, _Builder().node(_node_of(header[0]), 0))
    except _RECIPE_ERRORS:
        return None


# Templates ----------------------------------------------------------------------------------


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # beyond the interpreter's int-to-str digit limit
        return "(a number too long to print)"


def _float_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _scalar_text(value: Any) -> str | None:
    """The text of a scalar, or None for containers and other objects."""
    if value is UNKNOWN:
        return "unknown"
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "none"
    if t is int:
        return _int_text(value)
    if t is float:
        return _float_text(value)
    return None


def _write(value: Any, out: list[str], budget: int, depth: int) -> int:
    """Append the text of ``value`` to ``out``, stopping once ``budget`` characters are used
    up (a field shows at most MAX_SIZE characters, so no more work than that is done).
    Returns the budget left."""
    text = _scalar_text(value)
    if text is None:
        t = type(value)
        if depth > 2:
            text = "..."
        elif t is tuple and len(value) < 64 and all(type(x) is int for x in value):
            text = ".".join(_int_text(x) for x in value)  # a version
        elif t is list or t is tuple or _is_map(value):
            pairs = _is_map(value)
            first = True
            for item in (value.items() if pairs else value):
                if budget <= 0:
                    break
                if not first:
                    out.append(", ")
                    budget -= 2
                first = False
                if pairs:
                    budget = _write(item[0], out, budget, depth + 1)
                    out.append(": ")
                    budget = _write(item[1], out, budget - 2, depth + 1)
                else:
                    budget = _write(item, out, budget, depth + 1)
            return budget
        else:
            text = f"({_tn(value)})"  # not plain data: say what it is, never call its __str__
    if len(text) > budget:
        text = text[:max(budget, 0) + 1]
    out.append(text)
    return budget - len(text)


def _text(value: Any) -> str:
    """How a value reads in a message: UNKNOWN is "unknown", lists are "a, b, c". Texts
    longer than MAX_SIZE come back cut to MAX_SIZE + 1 characters (the caller marks the cut)."""
    text = _scalar_text(value)
    if text is not None:
        return text
    out: list[str] = []
    _write(value, out, MAX_SIZE, 0)
    return "".join(out)


def _finite(value: Any) -> bool:
    return type(value) is not float or (value == value and abs(value) != float("inf"))


def _filter_number(value: Any) -> None:
    if type(value) not in _NUMS:
        raise _Bad(f"needs a number, got {_desc(value)}")


def _filter_bytes(value: Any) -> str:
    _filter_number(value)
    return format_bytes(value) if _finite(value) else _text(value)


def _filter_pct(value: Any) -> str:
    _filter_number(value)
    return format_ratio(value) if _finite(value) else _text(value)


def _filter_int(value: Any) -> str:
    _filter_number(value)
    return _int_text(round(value)) if _finite(value) else _text(value)


def _filter_num(value: Any) -> str:
    _filter_number(value)
    if not _finite(value):
        return _text(value)
    if type(value) is not float or (value.is_integer() and abs(value) < 1e15):
        try:
            return f"{round(value):,}"
        except ValueError:
            return _int_text(value)
    return f"{value:,.2f}"


def _filter_list(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) in (list, tuple):
        return _text(list(value))  # a version tuple lists its parts too
    if _is_map(value):
        return _text(list(itertools.islice(value, MAX_SIZE)))  # the keys
    raise _Bad(f"needs a list, got {_desc(value)}")


#: Template filters: ``{expr|name}``.
FILTERS: dict[str, Callable[[Any], str]] = {
    "bytes": _filter_bytes, "pct": _filter_pct, "int": _filter_int, "num": _filter_num,
    "list": _filter_list, "str": _text,
}


class Template:
    """A compiled message template: text with ``{expr}`` and ``{expr|filter}`` fields."""

    __slots__ = ("text", "names", "read_names", "_pieces")

    def __init__(self, text: str, pieces: list | None, names: Iterable[str],
                 read: Iterable[str]) -> None:
        self.text = text
        self.names: frozenset[str] = frozenset(names)
        self.read_names: tuple[str, ...] = tuple(read)
        self._pieces = pieces  # str, or (closure, filter, filter name, where, col, line)

    def render(self, env: Env, extra: dict[str, object] | None = None) -> str:
        """The message. ``extra`` names (``confidence``, ``severity``) shadow facts."""
        if extra:
            env = _ExtraEnv(env, extra)
        out: list[str] = []
        for piece in self._pieces:  # type: ignore[union-attr]
            if type(piece) is str:
                out.append(piece)
                continue
            fn, flt, fname, where, col, line = piece
            value = fn(env)
            if value is UNKNOWN:
                out.append("unknown")
                continue
            try:
                text = flt(value)
            except _Bad as exc:
                raise _located(f"filter '{fname}' {exc}", where, col, line) from None
            except (OverflowError, ValueError):
                raise _located(f"filter '{fname}' cannot format {_desc(value)}", where,
                               col, line) from None
            if len(text) > MAX_SIZE:
                text = text[:MAX_SIZE - 3] + "..."
            out.append(text)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


class _LazyTemplate(Template):
    """A Template from a recipe, built on first render (see _LazyExpr)."""

    __slots__ = ("_recipe_pieces",)

    def __init__(self, text: str, recipe: tuple) -> None:
        Template.__init__(self, text, None, recipe[1], recipe[2])
        self._recipe_pieces = recipe[0]

    def render(self, env: Env, extra: dict[str, object] | None = None) -> str:
        if self._pieces is None:
            try:
                self._pieces = _build_pieces(_node_of(self._recipe_pieces), check=True)
            except _RECIPE_ERRORS:
                self._pieces = _recompile(self.text, compile_template)._pieces  # type: ignore[union-attr]
        return Template.render(self, env, extra)


def _build_pieces(pieces: object, *, check: bool) -> list:
    """A template's pieces from its recipe's; each field is built like an expression."""
    if type(pieces) is not tuple or len(pieces) > MAX_TEMPLATE_TEXT:  # type: ignore[arg-type]
        raise _BadRecipe("a template's pieces are not a tuple")
    out: list = []
    for piece in pieces:  # type: ignore[attr-defined]
        if type(piece) is str:
            if len(piece) > MAX_TEMPLATE_TEXT:
                raise _BadRecipe("a template's literal text is too long")
            out.append(piece)
            continue
        if type(piece) is not tuple:
            raise _BadRecipe("a template piece is neither text nor a field")
        node, fname, where, col, line = piece
        flt = FILTERS.get(fname) if type(fname) is str else None
        if flt is None:
            raise _BadRecipe(f"unknown filter {fname!r}")
        where, col, line = _location((where, col, line))
        out.append((_Builder(check=check).node(node, 0), flt, fname, where, col, line))
    return out


def template_recipe(text: str) -> tuple:
    """Analyse a message template into its recipe; raises ExprError naming the problem and
    its column."""
    from memdiag.expr_analysis import template_recipe as analyse

    return analyse(text)


def compile_template(text: str) -> Template:
    """Compile a message template; raises ExprError naming the problem and its column."""
    recipe = template_recipe(text)
    return Template(text, _build_pieces(recipe[0], check=False), recipe[1], recipe[2])


def template_from_recipe(text: str, recipe: object, *, lazy: bool = False) -> Template | None:
    """The template ``recipe`` (from :func:`template_recipe`) describes, carrying ``text``;
    None when it is not a recipe the analyser makes. ``lazy``: build it on first render."""
    try:
        if type(recipe) is not tuple or len(recipe) != 3 or not _names_ok(recipe[1]) \
                or not _names_ok(recipe[2]):  # type: ignore[arg-type]
            raise _BadRecipe("a template recipe is (pieces, names, read)")
        if lazy:
            return _LazyTemplate(text, recipe)
        return Template(text, _build_pieces(_node_of(recipe[0]), check=True), recipe[1], recipe[2])
    except _RECIPE_ERRORS:
        return None


def unknown_names(expr_or_template: Expr | Template, env: Env,
                  extra: dict[str, object] | None = None) -> list[str]:
    """The names whose current value ``env`` does not know, in order of appearance.

    For "skipped: missing X". Names used only inside has() or prev() are left out: they cannot
    make a result UNKNOWN. Names in ``extra`` count as known.
    """
    extra = extra or {}
    return [name for name in expr_or_template.read_names
            if name not in extra and env.lookup(name) is UNKNOWN]
