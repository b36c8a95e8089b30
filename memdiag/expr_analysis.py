"""Analysis of rule expressions and message templates: text -> ``ast`` -> recipe.

The other half of :mod:`memdiag.expr` (see its docstring, "Compiling is two steps"): this
module parses a text, refuses what the language does not have, folds constant parts and
works out the location words of every run-time error, returning a recipe that
memdiag.expr's builders turn into closures. It is imported only when a text must be analysed
(a new or changed rule, a text without a recipe in the rule cache, ``compile_expr``), so a run
whose rules come from the cache loads neither it nor ``ast``.
"""

from __future__ import annotations

import _thread
import re

from memdiag.expr import (_INT_LIMIT, _NAME_FUNCTIONS, _VALUE_FUNCTIONS, FILTERS, FUNCTIONS, MAX_DEPTH,
                          MAX_INT_BITS, MAX_NODES, MAX_SIZE, MAX_TEMPLATE_TEXT, MAX_TEXT, UNKNOWN, EvalError,
                          ExprError, _Builder)

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable, Iterable

_LITERALS = {"true": True, "false": False, "none": None}

# The analyser's view of ast operator classes, by class name (ast is imported only to analyse).
_BINOP_SYMBOLS = {"Add": "+", "Sub": "-", "Mult": "*", "Div": "/", "FloorDiv": "//", "Mod": "%"}
_CMPOP_SYMBOLS = {"Eq": "==", "NotEq": "!=", "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=",
                  "In": "in", "NotIn": "not in"}
_REFUSED_OPS: dict[str, str] = {
    "Pow": "'**'", "LShift": "'<<'", "RShift": "'>>'", "BitOr": "'|'", "BitXor": "'^'",
    "BitAnd": "'&'", "MatMult": "'@'", "Invert": "'~'", "Is": "'is' (use ==)",
    "IsNot": "'is not' (use !=)",
}
_OP_TEXT: dict[str, str] = {
    "Pow": "**", "LShift": "<<", "RShift": ">>", "BitOr": "|", "BitXor": "^", "BitAnd": "&",
    "MatMult": "@", "Is": "is", "IsNot": "is",
}


# --------------------------------------------------------------------------------------------
# Analysis: text -> ast -> recipe. ast is imported here only, when a text is first compiled.

_CONSTRUCTS: dict[str, str] = {
    "Lambda": "'lambda'", "ListComp": "a list comprehension",
    "SetComp": "a set comprehension", "DictComp": "a dict comprehension",
    "GeneratorExp": "a generator expression", "NamedExpr": "':='", "Await": "'await'",
    "Yield": "'yield'", "YieldFrom": "'yield from'", "Dict": "a dict literal {...}",
    "Set": "a set literal {...}", "Tuple": "a tuple (use a list [a, b])",
    "JoinedStr": "an f-string", "FormattedValue": "an f-string",
    "Starred": "'*' unpacking", "Slice": "a slice here",
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
        from bisect import bisect_right  # analysis only: a cached rule set never locates

        lo = bisect_right(self.starts, index) - 1  # the last line start <= index
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


# Patterns, compiled on first use (re keeps them): only analysis needs them.
_BRACKET_SCAN = r"""[()\[\]{}#'"]"""
_LINE_END = r"[\r\n]"
_CLOSER = {"(": ")", "[": "]", "{": "}"}


def _brackets_balanced(text: str) -> bool:
    """True if ``()[]{}`` outside string literals and comments nest properly.

    Balanced text can be wrapped in parentheses (so it may span lines) without the wrapper
    changing what it means; ``x)(y`` cannot.
    """
    stack: list[str] = []
    search = re.compile(_BRACKET_SCAN).search
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
            eol = re.compile(_LINE_END).search(text, i)
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


_UNKNOWN_NODE = ("unknown",)

#: One ast.parse at a time in a process: CPython 3.11 counts the depth of its ast-to-object
#: conversion per interpreter, not per thread, so two threads parsing at once (a thread switch
#: inside it, say for a finalizer the GC runs) fail with "SystemError: AST constructor
#: recursion depth mismatch". Diagnoses run in threads may load rules at the same time.
_PARSING = _thread.allocate_lock()


def _constant_node(value: Any) -> tuple:
    return _UNKNOWN_NODE if value is UNKNOWN else ("const", value)


def _is_constant(node: tuple) -> bool:
    return node[0] == "const" or node[0] == "unknown"


class _Analyser:
    """Walks one expression's ast into its recipe, collecting the names it reads."""

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

    def index(self, node: Any) -> int | None:
        return self._index_at(getattr(node, "lineno", None), getattr(node, "col_offset", None))

    def op_index(self, left: Any, right: Any, symbol: str) -> int | None:
        """Where the operator between two operands is (ast does not record it)."""
        start = self._index_at(getattr(left, "end_lineno", None), getattr(left, "end_col_offset", None))
        stop = self.index(right)
        if start is not None and stop is not None:
            found = self.locator.text.find(symbol, start, stop)
            if found >= 0:
                return found
        return self.index(left)

    def fail(self, node: Any, message: str, index: int | None = None) -> _Fail:
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

    def parse(self) -> Any:
        import ast
        import warnings

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
            with _PARSING, warnings.catch_warnings():
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

    def dotted(self, node: Any) -> str | None:
        """The dotted name a Name or Attribute chain spells, or None if it is something else."""
        import ast

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

    def count(self, node: Any) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"expression is too large (more than {MAX_NODES} nodes)")

    # -- the walk -----------------------------------------------------------------------------

    def walk(self, node: Any, depth: int = 0) -> tuple:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        kind = type(node).__name__
        handler = _HANDLERS.get(kind)
        if handler is None:
            what = _CONSTRUCTS.get(kind, f"'{kind}'")
            raise self.fail(node, f"{what} is not allowed")
        self.count(node)
        return handler(self, node, depth + 1)

    def _constant(self, node: Any, depth: int) -> tuple:
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
        return ("const", value)

    def _name(self, node: Any, depth: int) -> tuple:
        literal = node.id.lower()
        if literal in _LITERALS:
            return ("const", _LITERALS[literal])
        if node.id in FUNCTIONS:
            raise self.fail(node, f"'{node.id}' is a function; call it as {node.id}(...)")
        name = self.dotted(node)
        assert name is not None
        self.note(name)
        return ("name", name)

    def _attribute(self, node: Any, depth: int) -> tuple:
        self.nodes -= 1  # dotted() counts every part of the chain, this one included
        name = self.dotted(node)
        if name is None:
            hint = f'; use ["{node.attr}"]' if not node.attr.startswith("_") else ""
            raise self.fail(node, f"attribute access on a computed value is not allowed{hint}")
        self.note(name)
        return ("name", name)

    def _list(self, node: Any, depth: int) -> tuple:
        items = tuple([self.walk(elt, depth) for elt in node.elts])
        return self.fold(("list", items), items)

    def _boolop(self, node: Any, depth: int) -> tuple:
        items = tuple([self.walk(v, depth) for v in node.values])
        kind = "and" if type(node.op).__name__ == "And" else "or"
        return self.fold((kind, items), items)

    def _unaryop(self, node: Any, depth: int) -> tuple:
        op = type(node.op).__name__
        if op not in ("Not", "USub", "UAdd"):
            raise self.fail(node, f"{_REFUSED_OPS.get(op, repr(op))} is not allowed")
        item = self.walk(node.operand, depth)
        if op == "Not":
            return self.fold(("not", item), (item,))
        loc = self.at(self.index(node))
        return self.fold(("neg" if op == "USub" else "pos", item, loc), (item,))

    def _binop(self, node: Any, depth: int) -> tuple:
        op = type(node.op).__name__
        if op not in _BINOP_SYMBOLS:
            index = self.op_index(node.left, node.right, _OP_TEXT.get(op, ""))
            raise self.fail(node, f"{_REFUSED_OPS.get(op, repr(op))} is not allowed", index)
        symbol = _BINOP_SYMBOLS[op]
        left = self.walk(node.left, depth)
        right = self.walk(node.right, depth)
        loc = self.at(self.op_index(node.left, node.right, symbol))
        return self.fold(("bin", symbol, left, right, loc), (left, right))

    def _compare(self, node: Any, depth: int) -> tuple:
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            kind = type(op).__name__
            if kind not in _CMPOP_SYMBOLS:
                index = self.op_index(operands[i], operands[i + 1], _OP_TEXT.get(kind, ""))
                what = _REFUSED_OPS.get(kind, repr(kind))
                raise self.fail(node, f"{what} is not allowed", index)
        items = tuple([self.walk(x, depth) for x in operands])
        steps = []
        for i, op in enumerate(node.ops):
            symbol = _CMPOP_SYMBOLS[type(op).__name__]
            first = symbol.split()[0]
            loc = self.at(self.op_index(operands[i], operands[i + 1], first))
            steps.append((symbol, items[i + 1], loc))
        return self.fold(("cmp", items[0], tuple(steps)), items)

    def _ifexp(self, node: Any, depth: int) -> tuple:
        body = self.walk(node.body, depth)  # in text order, so names are in reading order
        test = self.walk(node.test, depth)
        orelse = self.walk(node.orelse, depth)
        return self.fold(("if", test, body, orelse), (test, body, orelse))

    def _subscript(self, node: Any, depth: int) -> tuple:
        import ast

        container = self.walk(node.value, depth)
        sliced = isinstance(node.slice, ast.Slice)
        loc = self.at(self.index(node) if sliced else self.index(node.slice))
        if sliced:
            self.count(node.slice)
            parts = tuple([self.walk(p, depth) if p is not None else ("const", None)
                           for p in (node.slice.lower, node.slice.upper, node.slice.step)])
            return self.fold(("slice", container, *parts, loc), (container, *parts))
        key = self.walk(node.slice, depth)
        return self.fold(("index", container, key, loc), (container, key))

    def _call(self, node: Any, depth: int) -> tuple:
        import ast

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
        loc = self.at(self.index(node))
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
            return self._history(name, fact, loc)

        if name == "elapsed_hours":
            if nargs:
                raise self.fail(node, f"elapsed_hours() takes no arguments ({nargs} given)")
            self.uses_elapsed = True
            return ("elapsed",)

        args = tuple([self.walk(a, depth) for a in node.args])
        if name == "coalesce":
            if not nargs:
                raise self.fail(node, "coalesce() takes at least 1 argument (0 given)")
            return self.fold(("coalesce", args), args)

        low, high, _ = _VALUE_FUNCTIONS[name]
        if nargs < low or (high is not None and nargs > high):
            want = (f"{low}" if low == high else f"{low} to {high}" if high is not None
                    else f"at least {low}")
            plural = "" if want.endswith(" 1") or want == "1" else "s"
            raise self.fail(node, f"{name}() takes {want} argument{plural} ({nargs} given)")
        return self.fold(("call", name, args, loc), args)

    def _history(self, func: str, name: str, loc: tuple) -> tuple:
        """has/prev/delta/per_hour: they name a fact instead of taking its value."""
        if func == "has":
            self.note(name, read=False)
            self.tested[name] = None
            return ("has", name)
        self.names[name] = None
        self.history[name] = None
        if func == "prev":
            return ("prev", name)
        self.read[name] = None
        if func == "per_hour":
            self.uses_elapsed = True
        return (func, name, loc)

    def fold(self, node: tuple, children: tuple) -> tuple:
        """A constant node for ``node`` if every child is constant: it is built and evaluated
        once now (a failure is left for run time)."""
        for child in children:
            if not _is_constant(child):
                return node
        try:
            value = _Builder(check=False).node(node, 0)(None)
        except EvalError:
            return node
        return _constant_node(value)


_HANDLERS: dict[str, Callable[[_Analyser, Any, int], tuple]] = {
    "Constant": _Analyser._constant, "Name": _Analyser._name,
    "Attribute": _Analyser._attribute, "List": _Analyser._list,
    "BoolOp": _Analyser._boolop, "UnaryOp": _Analyser._unaryop, "BinOp": _Analyser._binop,
    "Compare": _Analyser._compare, "IfExp": _Analyser._ifexp,
    "Subscript": _Analyser._subscript, "Call": _Analyser._call,
}


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib  # only on the error path

    ordered = sorted(choices)
    close = difflib.get_close_matches(word, ordered, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(ordered)})"


def _analyse(text: str, locator: _Locator, base: int) -> tuple[tuple, _Analyser]:
    analyser = _Analyser(text, locator, base)
    return analyser.walk(analyser.parse()), analyser


def expr_recipe(text: str) -> tuple:
    """Analyse ``text`` into its recipe; raises ExprError naming the problem and its column."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression is too long ({len(text)} characters; the limit is {MAX_TEXT})")
    locator = _Locator(text)
    try:
        node, analyser = _analyse(text, locator, 0)
    except _Fail as fail:
        raise locator.error(fail) from None
    return (node, tuple(analyser.names), tuple(analyser.read), tuple(analyser.history),
            tuple(analyser.tested), analyser.uses_elapsed)


# Patterns, compiled on first use (re keeps them): only analysis needs them.
_FIELD_SCAN = r"""['"()\[\]{}|]"""
_BRACE = r"[{}]"


def _field_end(text: str, start: int) -> tuple[int, int]:
    """For a field opening at ``text[start] == "{"``: index of its closing brace and of the
    first top-level ``|`` (or -1). Quotes and brackets inside the field are respected."""
    depth = 0
    bar = -1
    search = re.compile(_FIELD_SCAN).search
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


def _analyse_template(text: str, locator: _Locator) -> tuple:
    pieces: list = []
    names: dict[str, None] = {}
    read: dict[str, None] = {}
    literal: list[str] = []
    brace_search = re.compile(_BRACE).search
    i, n = 0, len(text)
    while i < n:
        brace = brace_search(text, i)  # literal text runs up to the next brace
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
            node, analyser = _analyse(source, locator, i + 1)
        except _Fail as fail:
            if fail.index is None:
                fail.index = i
            raise
        names.update(analyser.names)
        read.update(analyser.read)
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append((node, fname, *analyser.at(i)))
        i = end + 1
    if literal:
        pieces.append("".join(literal))
    return (tuple(pieces), tuple(names), tuple(read))


def template_recipe(text: str) -> tuple:
    """Analyse a message template into its recipe; raises ExprError naming the problem and
    its column."""
    if not isinstance(text, str):
        raise ExprError(f"a template must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEMPLATE_TEXT:
        raise ExprError(f"template is too long ({len(text)} characters; the limit is "
                        f"{MAX_TEMPLATE_TEXT})")
    locator = _Locator(text)
    try:
        return _analyse_template(text, locator)
    except _Fail as fail:
        raise locator.error(fail) from None
