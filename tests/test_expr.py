"""The rule expression language and message templates (memdiag.expr)."""

from __future__ import annotations

import itertools
import warnings

import pytest

from memdiag.expr import (
    FUNCTIONS, MAX_DEPTH, MAX_NODES, MAX_SIZE, MAX_TEMPLATE_TEXT, MAX_TEXT, UNKNOWN, EvalError,
    ExprError, MappingEnv, compile_expr, compile_template, unknown_names,
)
from memdiag.facts import UNKNOWN as FACTS_UNKNOWN

GIB = 1024**3

FACTS = {
    "meminfo.MemTotal": 8 * GIB,
    "meminfo.MemAvailable": 1 * GIB,
    "accounting.unaccounted_ratio": 0.64,
    "accounting.unaccounted_bytes": 5444485120,
    "platform.hypervisor": "vmware",
    "platform.kernel_release": "3.10.0-693.el7.x86_64",
    "modules.loaded": ["vmw_balloon", "xfs", "ext4"],
    "processes.top": [{"comm": "java", "rss": 2 * GIB}, {"comm": "sshd", "rss": 4096}],
    "balloon.vmware": {"current": 3 * GIB, "target": 3 * GIB},
    "params": {"min_ratio": 0.25, "min_bytes": GIB},
    "flags.yes": True,
    "flags.no": False,
    "n.zero": 0,
    "n.three": 3,
    "s.empty": "",
    "l.empty": [],
}


@pytest.fixture
def env() -> MappingEnv:
    return MappingEnv(FACTS, previous={"meminfo.MemTotal": 6 * GIB, "n.three": 1}, elapsed_hours=4)


def ev(text: str, env: MappingEnv | None = None) -> object:
    return compile_expr(text).evaluate(env if env is not None else MappingEnv(FACTS))


def compile_error(text: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        compile_expr(text)
    return info.value


def eval_error(text: str, env: MappingEnv | None = None) -> EvalError:
    expr = compile_expr(text)
    with pytest.raises(EvalError) as info:
        expr.evaluate(env if env is not None else MappingEnv(FACTS))
    return info.value


def test_unknown_is_the_facts_singleton():
    assert UNKNOWN is FACTS_UNKNOWN


# -- literals and names ----------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("42", 42), ("-7", -7), ("2.5", 2.5), ("'x'", "x"), ('"vmware"', "vmware"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False),
    ("none", None), ("None", None), ("NONE", None), ("[1, 'a', [2]]", [1, "a", [2]]), ("[]", []),
])
def test_literals(text, value):
    assert ev(text) == value
    assert type(ev(text)) is type(value)


def test_dotted_names_resolve_facts_and_map_keys(env):
    assert ev("meminfo.MemTotal", env) == 8 * GIB
    assert ev("balloon.vmware.current", env) == 3 * GIB  # key of a map-valued fact
    assert ev("params.min_ratio", env) == 0.25
    assert ev("balloon.vmware.nope", env) is UNKNOWN
    assert ev("no.such.fact", env) is UNKNOWN
    assert ev("bare", env) is UNKNOWN  # a one-part name is allowed; the env decides


def test_names_lists_every_reference_including_name_functions():
    expr = compile_expr("meminfo.MemTotal > 0 and has(balloon.vmware) and delta(meminfo.Slab) > 0"
                        " or prev(a.b) == per_hour(c) or params.x")
    assert expr.names == frozenset({"meminfo.MemTotal", "balloon.vmware", "meminfo.Slab", "a.b",
                                    "c", "params.x"})
    assert expr.history_names == frozenset({"meminfo.Slab", "a.b", "c"})
    assert expr.uses_elapsed
    assert not compile_expr("delta(x)").uses_elapsed
    assert compile_expr("elapsed_hours() > 1").uses_elapsed
    assert compile_expr("1 + 2").names == frozenset()


def test_name_functions_accept_a_string_for_names_that_are_not_identifiers():
    env = MappingEnv({"meminfo.Active(anon)": 5})
    expr = compile_expr('has("meminfo.Active(anon)")')
    assert expr.evaluate(env) is True
    assert expr.names == frozenset({"meminfo.Active(anon)"})


def test_subscripts(env):
    assert ev('processes.top[0]["comm"]', env) == "java"
    assert ev("processes.top[-1]['rss']", env) == 4096
    assert ev("processes.top[5]", env) is UNKNOWN  # no such element
    assert ev("l.empty[0]", env) is UNKNOWN
    assert ev("balloon.vmware['target']", env) == 3 * GIB
    assert ev("balloon.vmware['missing']", env) is UNKNOWN
    assert ev("platform.hypervisor[0]", env) == "v"
    assert ev("modules.loaded[1:]", env) == ["xfs", "ext4"]
    assert ev("modules.loaded[::-1][0]", env) == "ext4"
    assert ev("platform.hypervisor[:3]", env) == "vmw"
    assert ev("missing[0]", env) is UNKNOWN
    assert ev("modules.loaded[missing]", env) is UNKNOWN
    assert ev("modules.loaded[missing:]", env) is UNKNOWN


def test_subscript_errors_name_the_problem(env):
    assert "list index must be an int, got str 'a'" in str(eval_error("modules.loaded['a']", env))
    assert "cannot index int 3" in str(eval_error("n.three[0]", env))
    assert "cannot be a key of a map" in str(eval_error("balloon.vmware[[1]]", env))
    assert "slice step cannot be zero" in str(eval_error("modules.loaded[::0]", env))
    assert "slice bounds must be ints" in str(eval_error("modules.loaded['a':]", env))
    assert "cannot slice map" in str(eval_error("balloon.vmware[1:]", env))


# -- three-valued logic -----------------------------------------------------------------------

T, F, U = True, False, UNKNOWN
TRUTH = {"t": T, "f": F, "u": U}
KLEENE_AND = {(T, T): T, (T, F): F, (T, U): U, (F, T): F, (F, F): F, (F, U): F,
              (U, T): U, (U, F): F, (U, U): U}
KLEENE_OR = {(T, T): T, (T, F): T, (T, U): T, (F, T): T, (F, F): F, (F, U): U,
             (U, T): T, (U, F): U, (U, U): U}
LOGIC_ENV = MappingEnv({"t": True, "f": False})  # "u" is missing


@pytest.mark.parametrize("a, b", list(itertools.product("tfu", repeat=2)))
def test_kleene_and_or(a, b):
    assert ev(f"{a} and {b}", LOGIC_ENV) is KLEENE_AND[TRUTH[a], TRUTH[b]]
    assert ev(f"{a} or {b}", LOGIC_ENV) is KLEENE_OR[TRUTH[a], TRUTH[b]]


@pytest.mark.parametrize("a, expected", [("t", F), ("f", T), ("u", U)])
def test_kleene_not(a, expected):
    assert ev(f"not {a}", LOGIC_ENV) is expected


def test_kleene_chains_and_short_circuit():
    assert ev("u and t and f", LOGIC_ENV) is False
    assert ev("u or f or t", LOGIC_ENV) is True
    assert ev("u and t and t", LOGIC_ENV) is UNKNOWN
    # Python-like: the deciding operand is the value, and later operands are not evaluated.
    assert ev("0 or 'x'", LOGIC_ENV) == "x"
    assert ev("f and ('a' < 1)", LOGIC_ENV) is False
    assert ev("t or ('a' < 1)", LOGIC_ENV) is True


def test_conditional_expression():
    assert ev("1 if t else 2", LOGIC_ENV) == 1
    assert ev("1 if f else 2", LOGIC_ENV) == 2
    assert ev("1 if u else 2", LOGIC_ENV) is UNKNOWN
    assert ev("u if t else 2", LOGIC_ENV) is UNKNOWN
    assert ev("('a' < 1) if f else 2", LOGIC_ENV) == 2  # the other branch is not evaluated


# -- comparisons ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("1 < 2", True), ("2 <= 2", True), ("3 > 4", False), ("4 >= 5", False), ("1 == 1.0", True),
    ("1 != 2", True), ("'a' < 'b'", True), ("'vmware' == 'vmware'", True), ("1 == 'a'", False),
    ("true == 1", True), ("true < 2", True), ("none == none", True), ("[1, 2] == [1, 2]", True),
    ("[1, 2] < [1, 3]", True), ("1 < 2 < 3", True), ("1 < 3 < 2", False), ("3 > 2 > 1 > 0", True),
    ("1 < u", UNKNOWN), ("u == u", UNKNOWN), ("u != 1", UNKNOWN), ("1 < 2 < u", UNKNOWN),
    ("2 < 1 < u", False), ("u < 1 < 0", False),
])
def test_comparisons(text, value):
    result = ev(text, LOGIC_ENV)
    if value is UNKNOWN:
        assert result is UNKNOWN
    else:
        assert result is value


def test_ordering_a_string_with_a_number_is_an_eval_error_naming_the_operation():
    err = eval_error("platform.hypervisor > 3")
    assert str(err) == "cannot compare str 'vmware' with int 3 using '>' at column 21"
    assert err.offset == 20 and err.line == 1
    assert err.reason == "cannot compare str 'vmware' with int 3 using '>'"
    assert "using '<'" in str(eval_error("none < 1"))
    assert "cannot compare map with map" in str(eval_error("balloon.vmware < balloon.vmware"))
    assert "using '<='" in str(eval_error("1 < 2 <= 'x'"))


def test_membership(env):
    assert ev("'xfs' in modules.loaded", env) is True
    assert ev("'zfs' not in modules.loaded", env) is True
    assert ev("'mwa' in platform.hypervisor", env) is True
    assert ev("'current' in balloon.vmware", env) is True
    assert ev("u in modules.loaded", env) is UNKNOWN
    assert ev("'a' in u", env) is UNKNOWN
    assert "'in' needs a list, string or map on the right, got int 3" in str(
        eval_error("1 in n.three", env))
    assert "'in' on a string needs a string on the left, got int 1" in str(
        eval_error("1 in platform.hypervisor", env))
    assert "cannot be a key of a map" in str(eval_error("[1] in balloon.vmware", env))


def test_versions_compare_as_numbers_with_missing_parts_as_zero():
    assert ev('version("3.10.0-693.el7.x86_64")') == (3, 10, 0)
    assert ev("version(platform.kernel_release) >= version('3.10')") is True
    assert ev("version(platform.kernel_release) < version('4.4')") is True
    assert ev("version('4.4.0') == version('4.4')") is True
    assert ev("version('4.10') > version('4.9')") is True
    assert ev("version('v5.15.0-91-generic')") == (5, 15, 0)
    assert ev("version('4.4.') ") == (4, 4)
    assert ev("version('linux')") is UNKNOWN
    assert ev("version('5')") == (5,)
    assert ev("version('1234567890123456789.1')") is UNKNOWN  # not a version part
    assert ev("version(missing)") is UNKNOWN
    err = eval_error("version(platform.kernel_release) >= '4.4'")
    assert "cannot compare version 3.10.0 with str '4.4' using '>='" in str(err)
    assert 'wrap the string in version("...")' in str(err)
    assert "version() needs a string, got int 4" in str(eval_error("version(4)"))


# -- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("1 + 2", 3), ("1.5 + 1", 2.5), ("7 - 10", -3), ("6 * 7", 42), ("7 / 2", 3.5), ("7 // 2", 3),
    ("-7 // 2", -4), ("7 % 3", 1), ("-n.three", -3), ("+n.three", 3), ("'ab' + 'cd'", "abcd"),
    ("[1] + [2]", [1, 2]), ("true + 1", 2), ("0.5 * meminfo.MemTotal", 4 * GIB),
    ("1 / 0", UNKNOWN), ("1 // 0", UNKNOWN), ("1 % 0", UNKNOWN), ("1.0 / 0.0", UNKNOWN),
    ("meminfo.MemTotal / n.zero", UNKNOWN), ("u + 1", UNKNOWN), ("1 - u", UNKNOWN),
    ("-u", UNKNOWN), ("u * 0", UNKNOWN),
])
def test_arithmetic(text, value):
    result = ev(text, MappingEnv({**FACTS, "t": True}))
    assert result is UNKNOWN if value is UNKNOWN else result == value


@pytest.mark.parametrize("text, message", [
    ("'a' * 3", "'*' needs numbers, got str 'a' and int 3 at column 5"),
    ("[1] * 3", "'*' needs numbers, got list and int 3"),
    ("'%s' % 'x'", "'%' needs numbers, got str '%s' and str 'x'"),
    ("'a' - 'b'", "'-' needs numbers"),
    ("'a' / 1", "'/' needs numbers"),
    ("'a' // 1", "'//' needs numbers"),
    ("'a' + 1", "cannot add str 'a' and int 1 with '+'"),
    ("[1] + 'a'", "cannot add list and str 'a' with '+'"),
    ("-'a'", "cannot apply unary '-' to str 'a' at column 1"),
    ("platform.hypervisor + 1", "cannot add str 'vmware' and int 1 with '+' at column 21"),
])
def test_arithmetic_type_errors(text, message):
    assert message in str(eval_error(text))


def test_eval_error_column_points_at_the_operator_on_multi_line_text():
    err = eval_error("meminfo.MemTotal > 0\n  and platform.hypervisor > 3\n")
    assert str(err).endswith("at line 2, column 27")
    assert (err.line, err.offset) == (2, 26)


# -- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("min(3, 1, 2)", 1), ("max(3, 1, 2)", 3), ("min([4, 5])", 4), ("max(['a', 'b'])", "b"),
    ("max(l.empty)", UNKNOWN), ("max(1, u)", UNKNOWN), ("abs(-2.5)", 2.5), ("abs(3)", 3),
    ("len('abc')", 3), ("len(modules.loaded)", 3), ("len(balloon.vmware)", 2),
    ("count(processes.top)", 2), ("round(2.567, 1)", 2.6), ("round(2.5)", 2), ("round(1234, -2)", 1200),
    ("sum([1, 2, 3.5])", 6.5), ("sum(l.empty)", 0),
    ("intersects(modules.loaded, ['vmw_balloon', 'vmmemctl'])", True),
    ("intersects(modules.loaded, ['vmmemctl'])", False), ("lower('VMware')", "vmware"),
    ("startswith(platform.kernel_release, '3.10')", True),
    ("startswith(platform.hypervisor, ['kvm', 'vmw'])", True),
    ("contains(platform.kernel_release, 'el7')", True), ("contains(modules.loaded, 'xfs')", True),
    ("contains(balloon.vmware, 'target')", True), ("kib(2)", 2048), ("mib(1)", 1024**2),
    ("gib(4)", 4 * GIB), ("gib(0.5)", GIB / 2), ("coalesce(u, u, 7, 8)", 7), ("coalesce(u)", UNKNOWN),
    ("coalesce(1 / 0, 0)", 0), ("has(meminfo.MemTotal)", True), ("has(u)", False),
    ("has(balloon.vmware.current)", True), ("len(u)", UNKNOWN), ("lower(u)", UNKNOWN),
    ("intersects(u, ['a'])", UNKNOWN), ("gib(u)", UNKNOWN), ("round(u, 2)", UNKNOWN),
])
def test_functions(text, value):
    result = ev(text)
    assert result is UNKNOWN if value is UNKNOWN else result == value
    if value is not UNKNOWN:
        assert type(result) is type(value)


@pytest.mark.parametrize("text, message", [
    ("abs('x')", "abs() needs a number, got str 'x' at column 1"),
    ("len(3)", "len() needs a list, string or map, got int 3"),
    ("count('abc')", "count() needs a list or map, got str 'abc'"),
    ("min(5)", "min() of one argument needs a list, got int 5"),
    ("max(1, 'a')", "max() cannot compare int, str"),
    ("round('x')", "round() needs a number"),
    ("round(1.5, 1000)", "round() digits must be an int between -64 and 64"),
    ("round(1, -1000000000)", "round() digits must be an int between -64 and 64"),
    ("round(1.0 * 1e999)", "round() cannot round float inf"),
    ("sum(['a'])", "sum() needs a list of numbers, found str 'a'"),
    ("sum(3)", "sum() needs a list of numbers, got int 3"),
    ("intersects('ab', ['a'])", "intersects() needs two lists, got str and list"),
    ("intersects([[1]], [[1]])", "intersects() needs lists of plain values"),
    ("lower(1)", "lower() needs a string, got int 1"),
    ("startswith('abc', 1)", "startswith() needs a string or a list of strings as prefix"),
    ("contains('abc', 1)", "contains() on a string needs a string to look for"),
    ("contains(1, 1)", "contains() needs a string, list or map"),
    ("gib('1')", "gib() needs a number, got str '1'"),
])
def test_function_errors(text, message):
    assert message in str(eval_error(text))


@pytest.mark.parametrize("text, message", [
    ("len()", "len() takes 1 argument (0 given) at column 1"),
    ("len(1, 2)", "len() takes 1 argument (2 given)"),
    ("round(1, 2, 3)", "round() takes 1 to 2 arguments (3 given)"),
    ("intersects([1])", "intersects() takes 2 arguments (1 given)"),
    ("min()", "min() takes at least 1 argument (0 given)"),
    ("coalesce()", "coalesce() takes at least 1 argument (0 given)"),
    ("elapsed_hours(1)", "elapsed_hours() takes no arguments (1 given)"),
    ("has()", "has() takes 1 argument (0 given)"),
    ("has(1 + 2)", "has() takes a fact name, e.g. has(meminfo.MemTotal) at column 5"),
    ("delta(x[0])", "delta() takes a fact name"),
    ("prev(true)", "prev() takes a fact name"),
    ("per_hour('')", "per_hour() takes a fact name"),
    ("len(x=1)", "len() takes no keyword arguments at column 7"),
    ("max(*x)", "'*' unpacking is not allowed at column 5"),
    ("mx(1, 2)", "unknown function 'mx' (did you mean 'max'?) at column 1"),
    ("gb(1)", "unknown function 'gb' (did you mean 'gib'?)"),
    ("frobnicate(1)", "unknown function 'frobnicate' (known: abs, coalesce,"),
    ("min", "'min' is a function; call it as min(...) at column 1"),
    ("1 + has", "'has' is a function; call it as has(...) at column 5"),
    ("x.lower()", "method calls are not allowed; write lower(x, ...) instead of x.lower(...)"),
    ("'a'.join(['b'])", "method calls are not allowed at column 1"),
    ("max(1, 2)(3)", "only the built-in functions can be called at column 1"),
])
def test_call_compile_errors(text, message):
    assert message in str(compile_error(text))


def test_history_functions(env):
    assert ev("prev(meminfo.MemTotal)", env) == 6 * GIB
    assert ev("delta(meminfo.MemTotal)", env) == 2 * GIB
    assert ev("per_hour(meminfo.MemTotal)", env) == GIB / 2
    assert ev("per_hour(n.three)", env) == 0.5
    assert ev("elapsed_hours()", env) == 4
    assert ev("prev(meminfo.MemAvailable)", env) is UNKNOWN
    assert ev("delta(meminfo.MemAvailable)", env) is UNKNOWN  # no previous value
    assert ev("delta(missing)", env) is UNKNOWN
    no_time = MappingEnv(FACTS, previous={"n.three": 1})
    assert ev("elapsed_hours()", no_time) is UNKNOWN
    assert ev("per_hour(n.three)", no_time) is UNKNOWN
    zero_time = MappingEnv(FACTS, previous={"n.three": 1}, elapsed_hours=0)
    assert ev("per_hour(n.three)", zero_time) is UNKNOWN
    assert ev("delta(n.three)", zero_time) == 2
    no_previous = MappingEnv(FACTS, elapsed_hours=2)
    assert ev("prev(n.three)", no_previous) is UNKNOWN
    strings = MappingEnv({"k": "4.4"}, previous={"k": "3.10"}, elapsed_hours=1)
    assert "delta(k) needs numbers, got str '3.10' then str '4.4' at column 1" in str(
        eval_error("delta(k)", strings))
    bad_hours = MappingEnv({"k": 2}, previous={"k": 1}, elapsed_hours="soon")
    assert "elapsed hours must be a number" in str(eval_error("per_hour(k)", bad_hours))


# -- refused constructs -----------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("(lambda: 1)", "'lambda' is not allowed at column 2"),
    ("1 + (lambda: 2)()", "only the built-in functions can be called at column 5"),
    ("[x for x in y]", "a list comprehension is not allowed at column 1"),
    ("{x for x in y}", "a set comprehension is not allowed"),
    ("{x: 1 for x in y}", "a dict comprehension is not allowed"),
    ("max(x for x in y)", "a generator expression is not allowed at column 4"),
    ("(x := 1)", "':=' is not allowed at column 2"),
    ("{'a': 1}", "a dict literal {...} is not allowed at column 1"),
    ("{1, 2}", "a set literal {...} is not allowed"),
    ("(1, 2)", "a tuple (use a list [a, b]) is not allowed at column 1"),
    ("1, 2", "a tuple (use a list [a, b]) is not allowed"),
    ("x[1, 2]", "a tuple (use a list [a, b]) is not allowed"),
    ("f'{x}'", "an f-string is not allowed at column 1"),
    ("[*x]", "'*' unpacking is not allowed"),
    ("2 ** 10", "'**' is not allowed at column 3"),
    ("1 << 2", "'<<' is not allowed at column 3"),
    ("1 >> 2", "'>>' is not allowed"),
    ("a | b", "'|' is not allowed at column 3"),
    ("a & b", "'&' is not allowed"),
    ("a ^ b", "'^' is not allowed"),
    ("a @ b", "'@' is not allowed"),
    ("~a", "'~' is not allowed at column 1"),
    ("a is none", "'is' (use ==) is not allowed at column 3"),
    ("a is not none", "'is not' (use !=) is not allowed"),
    ("1 < 2 is 3", "'is' (use ==) is not allowed at column 7"),
    ("b'x'", "a bytes literal is not allowed"),
    ("1j", "a complex number is not allowed"),
    ("...", "'...' is not allowed"),
    ("(yield x)", "'yield' is not allowed at column 2"),
    ("(yield from x)", "'yield from' is not allowed"),
    ("(await x)", "'await' is not allowed"),
    ("x.__class__", "the name '__class__' is not allowed (names may not start with '__')"),
    ("__import__", "the name '__import__' is not allowed"),
    ("__import__('os')", "unknown function '__import__'"),
    ("().__class__.__bases__", "attribute access on a computed value is not allowed"),
    ("''.__class__", "attribute access on a computed value is not allowed"),
    ("[].__class__", "attribute access on a computed value is not allowed"),
    ("processes.top[0].comm", 'attribute access on a computed value is not allowed; use ["comm"]'),
    ("max(1, 2).real", "attribute access on a computed value is not allowed"),
    ("getattr(x, 'y')", "unknown function 'getattr'"),
    ("eval('1')", "unknown function 'eval'"),
    ("x if y", "syntax error: expected 'else' after 'if' expression"),
    ("1 +", "syntax error: invalid syntax at column 4"),
    ("'abc", "syntax error: unterminated string literal"),
    ("x)(y", "syntax error: unmatched ')' at column 2"),
    ("a[1)", "syntax error: closing parenthesis ')' does not match opening parenthesis '[' at "
             "column 4"),
    ("", "empty expression"),
    ("   \n ", "empty expression"),
    ("a\x00b", "null bytes"),
    ("'\ud800'", "not valid Unicode"),
    ("import os", "syntax error"),
    ("x = 1", "syntax error"),
])
def test_refused_constructs(text, message):
    assert message in str(compile_error(text))


def test_expr_error_carries_offset_and_line():
    err = compile_error("meminfo.MemTotal + (lambda: 1)")
    assert err.message == "'lambda' is not allowed at column 21"
    assert (err.offset, err.line) == (20, 1)
    assert err.reason == "'lambda' is not allowed"  # for callers that place it themselves
    err = compile_error("a > 1\nand 2 ** 3")
    assert str(err) == "'**' is not allowed at line 2, column 7"
    assert (err.offset, err.line) == (6, 2)
    err = compile_error("ä + (lambda: 1)")  # columns count characters, not UTF-8 bytes
    assert err.offset == 5
    assert isinstance(err, ValueError)
    err = compile_error("a and\n\n   b +")
    assert "syntax error" in str(err) and err.line is not None


def test_only_plain_values_have_functions_applied():
    assert FUNCTIONS >= {"min", "max", "abs", "len", "round", "sum", "has", "coalesce",
                         "intersects", "lower", "startswith", "contains", "kib", "mib", "gib",
                         "version", "count", "prev", "delta", "per_hour", "elapsed_hours"}


# -- layout: multi-line rules, whitespace, comments --------------------------------------------


def test_block_scalar_conditions_spanning_lines(env):
    text = ("accounting.unaccounted_ratio >= params.min_ratio\n"
            "  and accounting.unaccounted_bytes >= params.min_bytes\n"
            "  and platform.hypervisor == \"vmware\"  # the founding case\n")
    assert ev(text, env) is True
    assert ev("   1 + 1", env) == 2
    assert ev("1 +\r\n 2", env) == 3
    assert ev('"""a\nb"""', env) == "a\nb"
    assert ev("(1 # comment with )\n)", env) == 1


def test_python_syntax_warnings_are_not_printed():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ev("1and t", LOGIC_ENV) is True  # Python warns "invalid decimal literal"
        assert ev(r"'\d' == '\\d'") is True  # and about invalid escapes
    assert caught == []


# -- bounds -------------------------------------------------------------------------------------


def test_text_length_bound():
    assert "too long" in str(compile_error("1" + " " * MAX_TEXT))
    compile_expr("1" + " " * (MAX_TEXT - 1))


def test_node_count_bound():
    wide = "[" + ", ".join(["1"] * (MAX_NODES + 1)) + "]"
    assert f"expression is too large (more than {MAX_NODES} nodes)" in str(compile_error(wide))
    compile_expr("[" + ", ".join(["1"] * (MAX_NODES - 1)) + "]")


@pytest.mark.parametrize("text", [
    "(" * 250 + "1" + ")" * 250,  # CPython's own limit on parentheses
    "[" * 100 + "]" * 100,
    "-" * 4000 + "1",  # deep enough to exhaust the parser's recursion
    "not " * 1000 + "x",
    "a." * 2000 + "b",
    " + ".join(["1"] * 1000),
    "x" + "[0]" * 1300,
    "max(" * 100 + "1" + ")" * 100,
])
def test_deep_or_huge_input_is_refused_cleanly(text):
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
    err = compile_error(text)
    assert err.message


def test_nesting_depth_bound():
    ok = "-" * (MAX_DEPTH - 1) + "1"
    assert ev(ok) == (-1 if (MAX_DEPTH - 1) % 2 else 1)
    assert f"nested too deeply (more than {MAX_DEPTH} levels)" in str(
        compile_error("-" * (MAX_DEPTH + 1) + "1"))


def test_integer_bounds():
    assert "integer literal exceeds the bound of 2**256" in str(compile_error(str(2**256)))
    assert "integer literal exceeds" in str(compile_error("9" * 4000))
    assert ev(str(2**256 - 1)) == 2**256 - 1
    chain = " * ".join(["4294967296"] * 9)  # 2**288
    err = eval_error(chain)
    assert "integer result exceeds the bound of 2**256" in str(err)
    assert "integer result exceeds" in str(eval_error("x * x", MappingEnv({"x": 2**200})))
    assert "integer result exceeds" in str(eval_error("gib(x)", MappingEnv({"x": 2**250})))
    assert "integer result exceeds" in str(eval_error("sum([x, x])", MappingEnv({"x": 2**255})))
    huge = MappingEnv({"x": 10**400})
    assert "too large" in str(eval_error("x * 1.5", huge))
    assert "too large for a float" in str(eval_error("x / 3", huge))
    assert ev("x > 1.5", huge) is True  # comparisons stay exact


def test_string_and_list_growth_bounds():
    env = MappingEnv({"s": "x" * (MAX_SIZE // 2 + 1), "l": [0] * (MAX_SIZE // 2 + 1)})
    assert "'+' result would exceed 65536 items" in str(eval_error("s + s", env))
    assert "'+' result would exceed" in str(eval_error("l + l", env))
    assert len(ev("s + 'y'", env)) == MAX_SIZE // 2 + 2
    # doubling by repeated addition is stopped at the bound, not by memory running out
    def doubled(depth: int) -> str:
        return "s" if depth == 0 else f"({doubled(depth - 1)} + {doubled(depth - 1)})"

    small = MappingEnv({"s": "x" * 1000})
    assert "would exceed" in str(eval_error(doubled(7), small))  # 128,000 characters
    assert len(ev(doubled(6), small)) == 64000


def test_floats_overflow_to_inf_without_crashing():
    assert ev("1e308 * 10") == float("inf")
    assert ev("1e999 - 1e999") != ev("1e999 - 1e999")  # nan


# -- safety -------------------------------------------------------------------------------------


class Spy:
    """A value that records any attribute access or call made on it by the evaluator."""

    touched: list[str] = []

    def __getattribute__(self, name):  # noqa: D401
        Spy.touched.append(name)
        return object.__getattribute__(self, name)

    def __call__(self, *args):
        Spy.touched.append("__call__")


def test_evaluator_never_touches_attributes_of_values():
    Spy.touched = []
    spy = Spy()
    env = MappingEnv({"s": spy, "obj": spy})
    for text in ["s", "obj.secret", "has(s)", "coalesce(s, 1)",
                 "s if true else 1", "[s][0]", "s and true", "not s"]:
        compile_expr(text).evaluate(env)
    assert compile_expr("obj.secret").evaluate(env) is UNKNOWN  # a fact lookup, not getattr
    for text in ["s + 1", "s * 1", "len(s)", "lower(s)", "s[0]", "abs(s)", "version(s)",
                 "sum([s])", "gib(s)", "'a' in s", "s[1:]"]:
        with pytest.raises(EvalError):
            compile_expr(text).evaluate(env)
    tpl = compile_template("{s} {s|str} {[s]|list}")
    assert tpl.render(env) == "(Spy) (Spy) (Spy)"
    assert Spy.touched == []


@pytest.mark.parametrize("text", [
    "__builtins__", "x.__globals__", "x.__class__.__mro__", "x.__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()", "lower.__globals__", "[].__class__",
    "{}.__class__", "''.join", "(1).real", "x._y.__z__", "__import__('os').system('id')",
    "open('/etc/passwd')", "exec('1')", "compile('1', '', 'eval')", "globals()", "vars()",
    "type(1)", "setattr(x, 'y', 1)", "'{0.__class__}'.format(1)", "'%s' % x",
])
def test_no_way_to_reach_python_internals(text):
    with pytest.raises((ExprError, EvalError)):
        compile_expr(text).evaluate(MappingEnv({"x": 1}))


def test_dunder_keys_are_only_reachable_as_plain_map_keys():
    env = MappingEnv({"m": {"__class__": "just a key"}})
    assert ev("m['__class__']", env) == "just a key"
    assert ev("m['__dict__']", env) is UNKNOWN


# -- constant folding ------------------------------------------------------------------------


def test_constant_parts_are_precomputed_but_errors_stay_at_run_time():
    expr = compile_expr("'a' * 2")  # compiles: the error belongs to the rule's run
    with pytest.raises(EvalError):
        expr.evaluate(MappingEnv({}))
    assert ev("gib(1) + mib(512)") == GIB + 512 * 1024**2
    assert ev("[1, 2] + [3]") == [1, 2, 3]
    assert ev("[u, 1]", LOGIC_ENV) is UNKNOWN  # a list with an unknown member


def test_compiled_expressions_are_reusable_across_envs():
    expr = compile_expr("x * 2 > 10")
    assert [expr.evaluate(MappingEnv({"x": v})) for v in (1, 6)] == [False, True]
    assert expr.evaluate(MappingEnv({})) is UNKNOWN
    assert expr.text == "x * 2 > 10" and "Expr(" in repr(expr)


# -- MappingEnv and unknown_names --------------------------------------------------------------


def test_mapping_env_lookup_rules():
    env = MappingEnv({"a.b": {"c": {"d": 1}}, "a": {"x": 2}, "top": None, "nested": {"n": None}})
    assert env.lookup("a.b.c.d") == 1
    assert env.lookup("a.b.c") == {"d": 1}
    assert env.lookup("a.x") == 2
    assert env.lookup("a.b.z") is UNKNOWN
    assert env.lookup("top") is UNKNOWN  # like FactSet: None is not an established fact
    assert env.lookup("nested.n") is None
    assert env.previous("a.x") is UNKNOWN and env.elapsed_hours() is UNKNOWN


def test_unknown_names_reports_missing_facts_in_reading_order():
    env = MappingEnv({"b": 1})
    expr = compile_expr("z > 1 and b > 0 and a < 2 and has(h) and prev(p) == 1 or delta(d) > 0")
    assert expr.evaluate(env) is UNKNOWN
    # has() and prev() arguments cannot make the result unknown, so they are not "missing"
    assert unknown_names(expr, env) == ["z", "a", "d"]
    tpl = compile_template("{confidence}: {z|bytes} of {b}")
    assert unknown_names(tpl, env) == ["confidence", "z"]
    assert unknown_names(tpl, env, extra={"confidence": "likely"}) == ["z"]


# -- templates ----------------------------------------------------------------------------------


def test_template_renders_filters_and_extras(env):
    tpl = compile_template(
        "The VMware balloon driver is {confidence} of holding {accounting.unaccounted_bytes|bytes}\n"
        "({accounting.unaccounted_ratio|pct} of MemTotal); severity {severity}.")
    text = tpl.render(env, {"confidence": "suspected", "severity": "warning"})
    assert text == ("The VMware balloon driver is suspected of holding 5.07 GiB\n"
                    "(64% of MemTotal); severity warning.")
    assert tpl.names >= {"accounting.unaccounted_bytes", "accounting.unaccounted_ratio",
                         "confidence", "severity"}


@pytest.mark.parametrize("field, text", [
    ("{meminfo.MemTotal|bytes}", "8.00 GiB"), ("{1023|bytes}", "1023 B"),
    ("{-2048|bytes}", "-2.00 KiB"), ("{0.64|pct}", "64%"), ("{accounting.unaccounted_ratio|pct}", "64%"), ("{2.5|int}", "2"), ("{3.7|int}", "4"),
    ("{1234567|num}", "1,234,567"), ("{1234.5678|num}", "1,234.57"), ("{2.0|num}", "2"),
    ("{modules.loaded|list}", "vmw_balloon, xfs, ext4"), ("{modules.loaded}", "vmw_balloon, xfs, ext4"),
    ("{'abc'|list}", "abc"), ("{balloon.vmware|list}", "current, target"),
    ("{processes.top[0]['comm']|str}", "java"), ("{n.three}", "3"), ("{0.5}", "0.5"),
    ("{4.0}", "4"), ("{true}", "true"), ("{none}", "none"), ("{version('4.4.1-x')}", "4.4.1"),
    ("{balloon.vmware}", "current: 3221225472, target: 3221225472"),
    ("{missing|bytes}", "unknown"), ("{missing}", "unknown"), ("{1 / 0|pct}", "unknown"),
    ("{1e999|bytes}", "inf"), ("{1e999|int}", "inf"), ("{1e999|num}", "inf"),
    ("{{literal}}", "{literal}"), ("a {{ b }} c", "a { b } c"), ("{{{n.three}}}", "{3}"),
    ("{ n.three + 1 }", "4"), ("{'}' + '{'}", "}{"), ("{'a|b'}", "a|b"),
    ("{[1, [2, [3, [4]]]]}", "1, 2, 3, ..."), ("{x|bytes}", "unknown"),
    ("{ n.three | num }", "3"), ("", ""), ("plain text", "plain text"),
])
def test_template_fields(field, text, env):
    assert compile_template(field).render(env) == text


@pytest.mark.parametrize("text, message", [
    ("{x.__class__}", "the name '__class__' is not allowed"),
    ("{x.__class__.__init__.__globals__}", "the name '__class__' is not allowed"),
    ("{0.__class__}", "syntax error"),
    ("{x!r}", "syntax error"),
    ("{x:>10}", "syntax error"),
    ("{x:{y}}", "syntax error"),
    ("{x.__dict__[y]}", "the name '__dict__' is not allowed"),
    ("{''.join(x)}", "method calls are not allowed"),
    ("{x|byts}", "unknown filter 'byts' (did you mean 'bytes'?) at column 4"),
    ("{x|upper}", "unknown filter 'upper' (known: bytes, int, list, num, pct, str)"),
    ("{x|bytes|pct}", "unknown filter 'bytes|pct'"),
    ("{x|}", "unknown filter ''"),
    ("a } b", "single '}' in template (write '}}' for a literal brace) at column 3"),
    ("a { b", "unclosed '{' in template (write '{{' for a literal brace) at column 3"),
    ("{}", "empty template field {} at column 1"),
    ("{ |bytes}", "empty template field"),
    ("{'abc}", "unterminated string in template field at column 2"),
    ("one\ntwo {2 ** 8}", "'**' is not allowed at line 2, column 8"),
    ("x {lambda: 1}", "'lambda' is not allowed at column 4"),
    ("{(lambda: 1)}", "'lambda' is not allowed at column 3"),
    ("{(" + "[" * 70 + "]" * 70 + ")}", "nested too deeply"),
])
def test_template_compile_errors(text, message):
    with pytest.raises(ExprError) as info:
        compile_template(text)
    assert message in str(info.value)


def test_template_error_offsets_are_relative_to_the_template():
    with pytest.raises(ExprError) as info:
        compile_template("Held: {accounting.unaccounted_bytes|bites}")
    assert (info.value.offset, info.value.line) == (36, 1)


def test_template_bounds():
    with pytest.raises(ExprError, match="template is too long"):
        compile_template("x" * (MAX_TEMPLATE_TEXT + 1))
    with pytest.raises(ExprError, match="template field is too long"):
        compile_template("{" + "1" + " " * MAX_TEXT + "}")
    long = MappingEnv({"l": ["abcdefgh"] * MAX_SIZE})
    assert len(compile_template("{l}").render(long)) == MAX_SIZE


def test_template_render_errors_name_the_filter_and_column(env):
    tpl = compile_template("Hypervisor {platform.hypervisor|bytes}")
    with pytest.raises(EvalError) as info:
        tpl.render(env)
    assert str(info.value) == "filter 'bytes' needs a number, got str 'vmware' at column 12"
    with pytest.raises(EvalError, match="filter 'list' needs a list, got int 3"):
        compile_template("{n.three|list}").render(env)
    with pytest.raises(EvalError, match="cannot add str 'vmware' and int 1"):
        compile_template("{platform.hypervisor + 1}").render(env)


def test_template_huge_int_from_a_fact_does_not_crash():
    env = MappingEnv({"x": 10**5000})
    assert compile_template("{x}").render(env) == "(a number too long to print)"
    assert compile_template("{x|num}").render(env) == "(a number too long to print)"
    with pytest.raises(EvalError, match="filter 'bytes' cannot format int"):
        compile_template("{x|bytes}").render(env)


def test_template_types_are_checked():
    with pytest.raises(ExprError, match="must be a string"):
        compile_template(3)  # type: ignore[arg-type]
    with pytest.raises(ExprError, match="must be a string"):
        compile_expr(None)  # type: ignore[arg-type]


def test_tested_names_are_the_arguments_of_has():
    e = compile_expr("not has(a.b) or a.b > c.d and has('e.f')")
    assert e.tested_names == frozenset({"a.b", "e.f"})
    assert compile_expr("a.b > 1").tested_names == frozenset()
