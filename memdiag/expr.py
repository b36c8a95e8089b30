"""The rule expression language and message templates: parsed with ``ast``, never ``eval``.

A condition such as ``accounting.unaccounted_ratio >= params.min_ratio and has(balloon.vmware)``
is parsed once by :func:`compile_expr` into a tree of small closures (constant parts are
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

Safety: the evaluator never looks up attributes on values, never calls a value and only applies
operators to plain data (numbers, strings, lists, maps, version tuples), so a rule file from an
untrusted folder cannot reach Python internals. There are no loops, and work is bounded by the
``MAX_*`` constants below (text length, node count, nesting, int size, string/list growth).

Errors: :class:`ExprError` (a ``ValueError``) at compile time, naming the construct and column;
:class:`EvalError` at run time (the rule is broken, e.g. ordering a string against a number),
naming the operation, the operand types and the column.

Templates (:func:`compile_template`): text with ``{expr}`` or ``{expr|filter}`` fields, filters
in :data:`FILTERS` (bytes, pct, int, num, list, str); ``{{`` and ``}}`` are literal braces;
UNKNOWN renders as ``unknown``; ``extra`` names (confidence, severity) are usable as bare names.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import warnings
from typing import Any, Callable, Iterable, Protocol

from memdiag.facts import UNKNOWN
from memdiag.units import GIB, KIB, MIB, format_bytes, format_ratio

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
_LITERALS = {"true": True, "false": False, "none": None}


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


_BINOPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", _add), ast.Sub: ("-", _sub), ast.Mult: ("*", _mul), ast.Div: ("/", _div),
    ast.FloorDiv: ("//", _floordiv), ast.Mod: ("%", _mod),
}
_CMPOPS: dict[type, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Eq: ("==", _eq), ast.NotEq: ("!=", _ne),
    ast.Lt: ("<", _ordering("<", lambda a, b: a < b)),
    ast.LtE: ("<=", _ordering("<=", lambda a, b: a <= b)),
    ast.Gt: (">", _ordering(">", lambda a, b: a > b)),
    ast.GtE: (">=", _ordering(">=", lambda a, b: a >= b)),
    ast.In: ("in", _in), ast.NotIn: ("not in", _not_in),
}
_REFUSED_OPS: dict[type, str] = {
    ast.Pow: "'**'", ast.LShift: "'<<'", ast.RShift: "'>>'", ast.BitOr: "'|'",
    ast.BitXor: "'^'", ast.BitAnd: "'&'", ast.MatMult: "'@'", ast.Invert: "'~'",
    ast.Is: "'is' (use ==)", ast.IsNot: "'is not' (use !=)",
}
_OP_TEXT: dict[type, str] = {
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^",
    ast.BitAnd: "&", ast.MatMult: "@", ast.Is: "is", ast.IsNot: "is",
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
# Compilation: ast -> closures.

_NOCONST = object()  # marks a compiled node whose value depends on the env
_Fn = Callable[[Any], Any]
_Compiled = tuple[_Fn, Any]  # (closure taking the env, constant value or _NOCONST)

_CONSTRUCTS: dict[type, str] = {
    ast.Lambda: "'lambda'", ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression", ast.NamedExpr: "':='", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield from'", ast.Dict: "a dict literal {...}",
    ast.Set: "a set literal {...}", ast.Tuple: "a tuple (use a list [a, b])",
    ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string",
    ast.Starred: "'*' unpacking", ast.Slice: "a slice here",
}


class _Fail(Exception):
    """A compile error at character ``index`` of the full text (or ``None``)."""

    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.message, self.index = message, index


def _line_starts(text: str) -> list[int]:
    """Start index of every line; newlines are \\n, \\r\\n or \\r, as Python's tokenizer sees."""
    starts = [0]
    if "\r" not in text:  # the usual case, without a Python-level loop over every character
        i = text.find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = text.find("\n", i + 1)
        return starts
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            starts.append(i + 1)
        elif ch == "\r":
            if i + 1 < n and text[i + 1] == "\n":
                i += 1
            starts.append(i + 1)
        i += 1
    return starts


class _Locator:
    """Turns character indices of a text into ``(line, column)`` and ``at column N`` words."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = _line_starts(text)
        # A trailing newline (YAML block scalars) does not make a text multi-line.
        self.multiline = any(text[s:].strip() for s in self.starts[1:])

    def position(self, index: int) -> tuple[int, int]:
        index = max(0, min(index, len(self.text)))
        lo = bisect.bisect_right(self.starts, index) - 1  # the last line start <= index
        return lo + 1, index - self.starts[lo]

    def where(self, index: int | None) -> str:
        if index is None:
            return ""
        line, col = self.position(index)
        if self.multiline:
            return f" at line {line}, column {col + 1}"
        return f" at column {col + 1}"

    def error(self, fail: _Fail) -> ExprError:
        if fail.index is None:
            return ExprError(fail.message)  # reason == message
        line, col = self.position(fail.index)
        return ExprError(fail.message + self.where(fail.index), col, line, reason=fail.message)


_BRACKET_SCAN = re.compile(r"""[()\[\]{}#'"]""")
_LINE_END = re.compile(r"[\r\n]")
_CLOSER = {"(": ")", "[": "]", "{": "}"}


def _brackets_balanced(text: str) -> bool:
    """True if ``()[]{}`` outside string literals and comments nest properly.

    Balanced text can be wrapped in parentheses (so it may span lines) without the wrapper
    changing what it means; ``x)(y`` cannot.
    """
    stack: list[str] = []
    search = _BRACKET_SCAN.search
    found = search(text)
    while found is not None:  # jumps from one bracket, quote or comment to the next
        i = found.start()
        ch = text[i]
        if ch in _CLOSER:
            stack.append(_CLOSER[ch])
            i += 1
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return False
            i += 1
        elif ch == "#":
            eol = _LINE_END.search(text, i)
            if eol is None:
                break
            i = eol.start()
        else:
            i = _string_end(text, i)
            if i < 0:
                return False
        found = search(text, i)
    return not stack


def _string_end(text: str, i: int) -> int:
    """Index just past the string literal opening at ``text[i]``, or -1 if unterminated."""
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    close = quote * 3 if triple else quote
    j, n = i + len(close), len(text)
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if not triple and ch in "\r\n":
            return -1
        if text.startswith(close, j):
            return j + len(close)
        j += 1
    return -1


class _Compiler:
    """Walks one expression's ast and builds its closures, collecting the names it reads."""

    def __init__(self, text: str, locator: _Locator, base: int) -> None:
        self.text = text  # the expression source
        self.locator = locator  # positions within the full text (a template, or text itself)
        self.base = base  # where `text` starts in the full text
        self.shift = 0  # lines the parentheses wrapper added before `text`
        self.lines = _line_starts(text)
        self.ascii = text.isascii()  # columns are then character counts: no re-encoding
        self.nodes = 0
        self.names: dict[str, None] = {}  # every name, in order of appearance
        self.read: dict[str, None] = {}  # names whose current value is read
        self.history: dict[str, None] = {}  # names read in the previous snapshot
        self.tested: dict[str, None] = {}  # names given to has(): their absence is expected
        self.uses_elapsed = False

    # -- positions ----------------------------------------------------------------------------

    def _index_at(self, lineno: int | None, col: int | None) -> int | None:
        if lineno is None or col is None:
            return None
        line = lineno - self.shift
        if line < 1:
            return self.base
        if line > len(self.lines):
            return self.base + len(self.text)
        start = self.lines[line - 1]
        end = self.lines[line] if line < len(self.lines) else len(self.text)
        if self.ascii:  # ast's col_offset counts UTF-8 bytes, which are characters here
            return self.base + start + min(max(col, 0), end - start)
        raw = self.text[start:end].encode("utf-8", "surrogatepass")
        return self.base + start + len(raw[:max(col, 0)].decode("utf-8", "ignore"))

    def index(self, node: ast.AST) -> int | None:
        return self._index_at(getattr(node, "lineno", None), getattr(node, "col_offset", None))

    def op_index(self, left: ast.AST, right: ast.AST, symbol: str) -> int | None:
        """Where the operator between two operands is (ast does not record it)."""
        start = self._index_at(getattr(left, "end_lineno", None), getattr(left, "end_col_offset", None))
        stop = self.index(right)
        if start is not None and stop is not None:
            found = self.locator.text.find(symbol, start, stop)
            if found >= 0:
                return found
        return self.index(left)

    def fail(self, node: ast.AST | None, message: str, index: int | None = None) -> _Fail:
        if index is None and node is not None:
            index = self.index(node)
        return _Fail(message, index)

    def at(self, index: int | None) -> tuple[str, int | None, int | None]:
        """Location words and (column, line) for run-time errors at ``index``."""
        if index is None:
            return "", None, None
        line, col = self.locator.position(index)
        return self.locator.where(index), col, line

    # -- parsing ------------------------------------------------------------------------------

    def parse(self) -> ast.expr:
        text = self.text
        if not text.strip():
            raise _Fail("empty expression", None)
        if _brackets_balanced(text):
            # Parenthesised, an expression may span lines (YAML block scalars) and start with
            # spaces; its meaning is unchanged because its own brackets are balanced.
            source, self.shift = "(\n" + text + "\n)", 1
        else:
            source, self.shift = text, 0
        try:
            with warnings.catch_warnings():
                # "1and x" or "\\d" only warn; a rule loader must not print Python's warnings.
                warnings.simplefilter("ignore")
                tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            msg = exc.msg or "invalid syntax"
            cut = msg.find(" (detected at line")
            if cut >= 0:
                msg = msg[:cut]
            index = None
            if exc.lineno is not None and exc.offset is not None and exc.offset >= 1:
                line = exc.lineno - self.shift
                if line < 1:
                    index = self.base
                elif line > len(self.lines):
                    index = self.base + len(text)
                else:
                    index = self.base + min(self.lines[line - 1] + exc.offset - 1, len(text))
            raise _Fail(f"syntax error: {msg}", index) from None
        except (RecursionError, MemoryError):
            raise _Fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)",
                        None) from None
        except UnicodeError:
            raise _Fail("expression text is not valid Unicode (a lone surrogate)", None) from None
        except ValueError as exc:  # null bytes, on interpreters that raise ValueError for them
            raise _Fail(f"unreadable expression text: {exc}", None) from None
        return tree.body

    # -- names --------------------------------------------------------------------------------

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted name a Name or Attribute chain spells, or None if it is something else."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            self.count(node)
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        for part in reversed(parts):
            if part.startswith("__"):
                raise self.fail(node, f"the name '{part}' is not allowed (names may not start "
                                      "with '__')")
        return ".".join(reversed(parts))

    def note(self, name: str, *, read: bool = True) -> None:
        self.names[name] = None
        if read:
            self.read[name] = None

    def count(self, node: ast.AST) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"expression is too large (more than {MAX_NODES} nodes)")

    # -- the walk -----------------------------------------------------------------------------

    def compile(self, node: ast.AST, depth: int = 0) -> _Compiled:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        handler = _HANDLERS.get(type(node))
        if handler is None:
            what = _CONSTRUCTS.get(type(node), f"'{type(node).__name__}'")
            raise self.fail(node, f"{what} is not allowed")
        self.count(node)
        return handler(self, node, depth + 1)

    def _constant(self, node: ast.Constant, depth: int) -> _Compiled:
        value = node.value
        t = type(value)
        if t is bool or value is None or t is str or t is float:
            pass
        elif t is int:
            if not -_INT_LIMIT < value < _INT_LIMIT:
                raise self.fail(node, f"integer literal exceeds the bound of 2**{MAX_INT_BITS}")
        else:
            what = {bytes: "a bytes literal", complex: "a complex number"}.get(t, "'...'")
            raise self.fail(node, f"{what} is not allowed")
        if t is str and len(value) > MAX_SIZE:  # unreachable with MAX_TEXT, kept for clarity
            raise self.fail(node, "string literal is too long")
        return _const(value)

    def _name(self, node: ast.Name, depth: int) -> _Compiled:
        literal = node.id.lower()
        if literal in _LITERALS:
            return _const(_LITERALS[literal])
        if node.id in FUNCTIONS:
            raise self.fail(node, f"'{node.id}' is a function; call it as {node.id}(...)")
        name = self.dotted(node)
        assert name is not None
        return self._lookup(name)

    def _attribute(self, node: ast.Attribute, depth: int) -> _Compiled:
        self.nodes -= 1  # dotted() counts every part of the chain, this one included
        name = self.dotted(node)
        if name is None:
            hint = f'; use ["{node.attr}"]' if not node.attr.startswith("_") else ""
            raise self.fail(node, f"attribute access on a computed value is not allowed{hint}")
        return self._lookup(name)

    def _lookup(self, name: str) -> _Compiled:
        self.note(name)

        def lookup(env: Any, name: str = name) -> Any:
            return env.lookup(name)

        return lookup, _NOCONST

    def _list(self, node: ast.List, depth: int) -> _Compiled:
        items = [self.compile(elt, depth) for elt in node.elts]
        fns = tuple(fn for fn, _ in items)

        def build(env: Any) -> Any:
            values = [fn(env) for fn in fns]
            for v in values:
                if v is UNKNOWN:  # a list with an unknown member is not established
                    return UNKNOWN
            return values

        return self.fold(build, items)

    def _boolop(self, node: ast.BoolOp, depth: int) -> _Compiled:
        items = [self.compile(v, depth) for v in node.values]
        fns = tuple(fn for fn, _ in items)
        if isinstance(node.op, ast.And):
            def kleene(env: Any) -> Any:
                unknown = False
                value: Any = True
                for fn in fns:
                    value = fn(env)
                    if value is UNKNOWN:
                        unknown = True
                    elif not value:
                        return value  # False and anything is False
                return UNKNOWN if unknown else value
        else:
            def kleene(env: Any) -> Any:
                unknown = False
                value: Any = False
                for fn in fns:
                    value = fn(env)
                    if value is UNKNOWN:
                        unknown = True
                    elif value:
                        return value  # True or anything is True
                return UNKNOWN if unknown else value
        return self.fold(kleene, items)

    def _unaryop(self, node: ast.UnaryOp, depth: int) -> _Compiled:
        op = type(node.op)
        if op not in (ast.Not, ast.USub, ast.UAdd):
            raise self.fail(node, f"{_REFUSED_OPS.get(op, repr(op.__name__))} is not allowed")
        item = self.compile(node.operand, depth)
        fn = item[0]
        if op is ast.Not:
            def unary(env: Any) -> Any:
                v = fn(env)
                return UNKNOWN if v is UNKNOWN else not v
        else:
            where, col, line = self.at(self.index(node))
            sign = -1 if op is ast.USub else 1
            symbol = "-" if op is ast.USub else "+"

            def unary(env: Any) -> Any:
                v = fn(env)
                if v is UNKNOWN:
                    return UNKNOWN
                if type(v) not in _NUMS:
                    raise _located(f"cannot apply unary '{symbol}' to {_desc(v)}", where, col, line)
                return -v if sign < 0 else +v
        return self.fold(unary, [item])

    def _binop(self, node: ast.BinOp, depth: int) -> _Compiled:
        op = type(node.op)
        if op not in _BINOPS:
            index = self.op_index(node.left, node.right, _OP_TEXT.get(op, ""))
            raise self.fail(node, f"{_REFUSED_OPS.get(op, repr(op.__name__))} is not allowed", index)
        symbol, impl = _BINOPS[op]
        left = self.compile(node.left, depth)
        right = self.compile(node.right, depth)
        lf, rf = left[0], right[0]
        where, col, line = self.at(self.op_index(node.left, node.right, symbol))

        def binop(env: Any) -> Any:
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

        return self.fold(binop, [left, right])

    def _compare(self, node: ast.Compare, depth: int) -> _Compiled:
        operands = [node.left, *node.comparators]
        steps = []
        for i, op in enumerate(node.ops):
            if type(op) not in _CMPOPS:
                index = self.op_index(operands[i], operands[i + 1], _OP_TEXT.get(type(op), ""))
                what = _REFUSED_OPS.get(type(op), repr(type(op).__name__))
                raise self.fail(node, f"{what} is not allowed", index)
        items = [self.compile(x, depth) for x in operands]
        for i, op in enumerate(node.ops):
            symbol, impl = _CMPOPS[type(op)]
            first = symbol.split()[0]
            where, col, line = self.at(self.op_index(operands[i], operands[i + 1], first))
            steps.append((impl, items[i + 1][0], where, col, line))
        first_fn = items[0][0]

        if len(steps) == 1:
            impl, rf, where, col, line = steps[0]

            def compare(env: Any) -> Any:
                a = first_fn(env)
                b = rf(env)
                if a is UNKNOWN or b is UNKNOWN:
                    return UNKNOWN
                try:
                    return impl(a, b)
                except _Bad as exc:
                    raise _located(f"{exc}", where, col, line) from None
        else:
            chain = tuple(steps)

            def compare(env: Any) -> Any:
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

        return self.fold(compare, items)

    def _ifexp(self, node: ast.IfExp, depth: int) -> _Compiled:
        body = self.compile(node.body, depth)  # in text order, so names are in reading order
        test = self.compile(node.test, depth)
        orelse = self.compile(node.orelse, depth)
        tf, bf, of = test[0], body[0], orelse[0]

        def choose(env: Any) -> Any:
            t = tf(env)
            if t is UNKNOWN:
                return UNKNOWN
            return bf(env) if t else of(env)

        return self.fold(choose, [test, body, orelse])

    def _subscript(self, node: ast.Subscript, depth: int) -> _Compiled:
        container = self.compile(node.value, depth)
        cf = container[0]
        where, col, line = self.at(self.index(node.slice) if not isinstance(node.slice, ast.Slice)
                                   else self.index(node))
        if isinstance(node.slice, ast.Slice):
            self.count(node.slice)
            parts = [self.compile(p, depth) if p is not None else _const(None)
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            lo, hi, st = (p[0] for p in parts)

            def subscript(env: Any) -> Any:
                c, a, b, s = cf(env), lo(env), hi(env), st(env)
                if c is UNKNOWN or a is UNKNOWN or b is UNKNOWN or s is UNKNOWN:
                    return UNKNOWN
                try:
                    return _slice(c, a, b, s)
                except _Bad as exc:
                    raise _located(f"{exc}", where, col, line) from None

            return self.fold(subscript, [container, *parts])
        key = self.compile(node.slice, depth)
        kf = key[0]

        def subscript(env: Any) -> Any:
            c = cf(env)
            if c is UNKNOWN:
                return UNKNOWN
            k = kf(env)
            if k is UNKNOWN:
                return UNKNOWN
            try:
                return _index(c, k)
            except _Bad as exc:
                raise _located(f"{exc}", where, col, line) from None

        return self.fold(subscript, [container, key])

    def _call(self, node: ast.Call, depth: int) -> _Compiled:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                hint = (f"; write {func.attr}(x, ...) instead of x.{func.attr}(...)"
                        if func.attr in FUNCTIONS else "")
                raise self.fail(node, f"method calls are not allowed{hint}")
            raise self.fail(node, "only the built-in functions can be called")
        name = func.id
        if name not in FUNCTIONS:
            raise self.fail(node, f"unknown function '{name}'{_did_you_mean(name, FUNCTIONS)}")
        if node.keywords:
            raise self.fail(node.keywords[0].value, f"{name}() takes no keyword arguments")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "'*' unpacking is not allowed")
        where, col, line = self.at(self.index(node))
        nargs = len(node.args)

        if name in _NAME_FUNCTIONS:
            if nargs != 1:
                raise self.fail(node, f"{name}() takes 1 argument ({nargs} given)")
            arg = node.args[0]
            fact = self.dotted(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else None
            if isinstance(arg, ast.Constant) and type(arg.value) is str and arg.value.strip():
                fact = arg.value.strip()  # for names that are not identifiers
            if fact is None or (isinstance(arg, ast.Name) and arg.id.lower() in _LITERALS):
                raise self.fail(arg, f"{name}() takes a fact name, e.g. {name}(meminfo.MemTotal)")
            self.count(arg)
            return self._history(name, fact, where, col, line), _NOCONST

        if name == "elapsed_hours":
            if nargs:
                raise self.fail(node, f"elapsed_hours() takes no arguments ({nargs} given)")
            self.uses_elapsed = True
            return (lambda env: env.elapsed_hours()), _NOCONST

        args = [self.compile(a, depth) for a in node.args]
        fns = tuple(fn for fn, _ in args)
        if name == "coalesce":
            if not nargs:
                raise self.fail(node, "coalesce() takes at least 1 argument (0 given)")

            def coalesce(env: Any) -> Any:
                for fn in fns:  # lazily: the first known value wins
                    v = fn(env)
                    if v is not UNKNOWN:
                        return v
                return UNKNOWN

            return self.fold(coalesce, args)

        low, high, impl = _VALUE_FUNCTIONS[name]
        if nargs < low or (high is not None and nargs > high):
            want = (f"{low}" if low == high else f"{low} to {high}" if high is not None
                    else f"at least {low}")
            plural = "" if want.endswith(" 1") or want == "1" else "s"
            raise self.fail(node, f"{name}() takes {want} argument{plural} ({nargs} given)")

        if nargs == 1:
            (f0,) = fns

            def call(env: Any) -> Any:
                a = f0(env)
                if a is UNKNOWN:
                    return UNKNOWN
                try:
                    return impl(a)
                except _Bad as exc:
                    raise _located(f"{exc}", where, col, line) from None
        else:
            def call(env: Any) -> Any:
                values = [fn(env) for fn in fns]
                for v in values:
                    if v is UNKNOWN:
                        return UNKNOWN
                try:
                    return impl(*values)
                except _Bad as exc:
                    raise _located(f"{exc}", where, col, line) from None

        return self.fold(call, args)

    def _history(self, func: str, name: str, where: str, col: int | None,
                 line: int | None) -> _Fn:
        """has/prev/delta/per_hour: they name a fact instead of taking its value."""
        if func == "has":
            self.note(name, read=False)
            self.tested[name] = None
            return lambda env: env.lookup(name) is not UNKNOWN
        self.names[name] = None
        self.history[name] = None
        if func == "prev":
            return lambda env: env.previous(name)
        self.read[name] = None
        if func == "per_hour":
            self.uses_elapsed = True

        def change(env: Any) -> Any:
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

    def fold(self, fn: _Fn, children: list[_Compiled]) -> _Compiled:
        """Evaluate once now if every child is constant (a failure is left for run time)."""
        for _, const in children:
            if const is _NOCONST:
                return fn, _NOCONST
        try:
            value = fn(None)
        except EvalError:
            return fn, _NOCONST
        return _const(value)


def _const(value: Any) -> _Compiled:
    return (lambda env: value), value


_HANDLERS: dict[type, Callable[[_Compiler, Any, int], _Compiled]] = {
    ast.Constant: _Compiler._constant, ast.Name: _Compiler._name,
    ast.Attribute: _Compiler._attribute, ast.List: _Compiler._list,
    ast.BoolOp: _Compiler._boolop, ast.UnaryOp: _Compiler._unaryop, ast.BinOp: _Compiler._binop,
    ast.Compare: _Compiler._compare, ast.IfExp: _Compiler._ifexp,
    ast.Subscript: _Compiler._subscript, ast.Call: _Compiler._call,
}


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib  # only on the error path

    ordered = sorted(choices)
    close = difflib.get_close_matches(word, ordered, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(ordered)})"


# --------------------------------------------------------------------------------------------
# Public API


class Expr:
    """A compiled expression. Evaluate it against any number of environments."""

    __slots__ = ("text", "names", "read_names", "history_names", "tested_names", "uses_elapsed", "_fn")

    def __init__(self, text: str, fn: _Fn, compiler: _Compiler) -> None:
        self.text = text
        #: Every dotted name referenced, including the arguments of has/prev/delta/per_hour.
        self.names: frozenset[str] = frozenset(compiler.names)
        #: Names whose current value is read (not has()/prev() only), in order of appearance:
        #: the ones that can make the result UNKNOWN.
        self.read_names: tuple[str, ...] = tuple(compiler.read)
        #: Names whose previous-snapshot value is read (prev/delta/per_hour).
        self.history_names: frozenset[str] = frozenset(compiler.history)
        #: Names the expression tests with has(): optional by the author's own account.
        self.tested_names: frozenset[str] = frozenset(compiler.tested)
        #: Whether elapsed_hours() or per_hour() is used.
        self.uses_elapsed: bool = compiler.uses_elapsed
        self._fn = fn

    def evaluate(self, env: Env) -> object:
        """The value, or UNKNOWN. Raises EvalError when the rule is broken (type errors)."""
        return self._fn(env)

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def _compile_piece(text: str, locator: _Locator, base: int) -> tuple[_Fn, _Compiler]:
    compiler = _Compiler(text, locator, base)
    fn, _ = compiler.compile(compiler.parse())
    return fn, compiler


def compile_expr(text: str) -> Expr:
    """Compile ``text``; raises ExprError naming the problem and its column."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression is too long ({len(text)} characters; the limit is {MAX_TEXT})")
    locator = _Locator(text)
    try:
        fn, compiler = _compile_piece(text, locator, 0)
    except _Fail as fail:
        raise locator.error(fail) from None
    return Expr(text, fn, compiler)


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

    def __init__(self, text: str, pieces: list, names: dict[str, None],
                 read: dict[str, None]) -> None:
        self.text = text
        self.names: frozenset[str] = frozenset(names)
        self.read_names: tuple[str, ...] = tuple(read)
        self._pieces = pieces  # str, or (closure, filter, filter name, where, col, line)

    def render(self, env: Env, extra: dict[str, object] | None = None) -> str:
        """The message. ``extra`` names (``confidence``, ``severity``) shadow facts."""
        if extra:
            env = _ExtraEnv(env, extra)
        out: list[str] = []
        for piece in self._pieces:
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


_FIELD_SCAN = re.compile(r"""['"()\[\]{}|]""")
_BRACE = re.compile(r"[{}]")


def _field_end(text: str, start: int) -> tuple[int, int]:
    """For a field opening at ``text[start] == "{"``: index of its closing brace and of the
    first top-level ``|`` (or -1). Quotes and brackets inside the field are respected."""
    depth = 0
    bar = -1
    search = _FIELD_SCAN.search
    found = search(text, start + 1)
    while found is not None:  # jumps from one quote, bracket or bar to the next
        i = found.start()
        ch = text[i]
        if ch in "'\"":
            end = _string_end(text, i)
            if end < 0:
                raise _Fail("unterminated string in template field", i)
            found = search(text, end)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "}":
            if depth <= 0:
                return i, bar
            depth -= 1
        elif ch == "|" and depth <= 0 and bar < 0:
            bar = i
        found = search(text, i + 1)
    raise _Fail("unclosed '{' in template (write '{{' for a literal brace)", start)


def _compile_template(text: str, locator: _Locator) -> Template:
    pieces: list = []
    names: dict[str, None] = {}
    read: dict[str, None] = {}
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        brace = _BRACE.search(text, i)  # literal text runs up to the next brace
        if brace is None:
            literal.append(text[i:])
            break
        if brace.start() > i:
            literal.append(text[i:brace.start()])
            i = brace.start()
        ch = text[i]
        if ch == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise _Fail("single '}' in template (write '}}' for a literal brace)", i)
        if text.startswith("{{", i):
            literal.append("{")
            i += 2
            continue
        end, bar = _field_end(text, i)
        stop = bar if bar >= 0 else end
        source = text[i + 1:stop]
        if not source.strip():
            raise _Fail("empty template field {}", i)
        if len(source) > MAX_TEXT:
            raise _Fail(f"template field is too long (the limit is {MAX_TEXT} characters)", i)
        fname = "str"
        if bar >= 0:
            fname = text[bar + 1:end].strip()
            if fname not in FILTERS:
                raise _Fail(f"unknown filter '{fname}'{_did_you_mean(fname, FILTERS)}", bar + 1)
        try:
            fn, compiler = _compile_piece(source, locator, i + 1)
        except _Fail as fail:
            if fail.index is None:
                fail.index = i
            raise
        names.update(compiler.names)
        read.update(compiler.read)
        if literal:
            pieces.append("".join(literal))
            literal = []
        where, col, line = compiler.at(i)
        pieces.append((fn, FILTERS[fname], fname, where, col, line))
        i = end + 1
    if literal:
        pieces.append("".join(literal))
    return Template(text, pieces, names, read)


def compile_template(text: str) -> Template:
    """Compile a message template; raises ExprError naming the problem and its column."""
    if not isinstance(text, str):
        raise ExprError(f"a template must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEMPLATE_TEXT:
        raise ExprError(f"template is too long ({len(text)} characters; the limit is "
                        f"{MAX_TEMPLATE_TEXT})")
    locator = _Locator(text)
    try:
        return _compile_template(text, locator)
    except _Fail as fail:
        raise locator.error(fail) from None


def unknown_names(expr_or_template: Expr | Template, env: Env,
                  extra: dict[str, object] | None = None) -> list[str]:
    """The names whose current value ``env`` does not know, in order of appearance.

    For "skipped: missing X". Names used only inside has() or prev() are left out: they cannot
    make a result UNKNOWN. Names in ``extra`` count as known.
    """
    extra = extra or {}
    return [name for name in expr_or_template.read_names
            if name not in extra and env.lookup(name) is UNKNOWN]


# Deferred compilation ------------------------------------------------------------------------
#
# A rule's message, severity and confidence steps and discriminators are only needed when it
# fires, but loading rules must still know every name they use (to report unknown facts and
# undeclared params). describe() records those names for text that compiled; deferred()
# rebuilds the object from them and compiles the text on first use. The record is plain data
# (lists of names): whatever it says, the text is still compiled by compile_expr or
# compile_template before anything is evaluated.


def describe(compiled: Expr | Template) -> list:
    """The names ``compiled`` uses, as JSON-ready data for :func:`deferred`."""
    if isinstance(compiled, Template):
        return [sorted(compiled.names), list(compiled.read_names)]
    return [sorted(compiled.names), list(compiled.read_names), sorted(compiled.history_names),
            sorted(compiled.tested_names), compiled.uses_elapsed]


def _names(value: object) -> list[str] | None:
    if type(value) is list and all(type(v) is str for v in value):
        return value
    return None


class _DeferredExpr(Expr):
    """An Expr whose text compiled before (see describe): compiled again on first evaluation."""

    __slots__ = ()

    def evaluate(self, env: Env) -> object:
        fn = self._fn
        if fn is None:
            fn = self._fn = compile_expr(self.text)._fn
        return fn(env)


class _DeferredTemplate(Template):
    """A Template whose text compiled before (see describe): compiled again on first render."""

    __slots__ = ()

    def render(self, env: Env, extra: dict[str, object] | None = None) -> str:
        if self._pieces is None:  # type: ignore[comparison-overlap]
            self._pieces = compile_template(self.text)._pieces
        return Template.render(self, env, extra)


def deferred(text: str, record: object, *, template: bool = False) -> Expr | Template | None:
    """An expression (or template) for ``text`` that compiles when first used, carrying the
    names ``record`` (from :func:`describe`) lists; None when ``record`` is not such a record."""
    if type(text) is not str or type(record) is not list or len(record) != (2 if template else 5):
        return None
    checked = [_names(v) for v in record[:2 if template else 4]]
    lists = [v for v in checked if v is not None]
    if len(lists) != len(checked):
        return None
    if template:
        tpl = object.__new__(_DeferredTemplate)
        tpl.text, tpl._pieces = text, None  # type: ignore[assignment]
        tpl.names, tpl.read_names = frozenset(lists[0]), tuple(lists[1])
        return tpl
    if type(record[4]) is not bool:
        return None
    expr = object.__new__(_DeferredExpr)
    expr.text, expr._fn = text, None  # type: ignore[assignment]
    expr.names, expr.read_names = frozenset(lists[0]), tuple(lists[1])
    expr.history_names, expr.tested_names = frozenset(lists[2]), frozenset(lists[3])
    expr.uses_elapsed = record[4]
    return expr
