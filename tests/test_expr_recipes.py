"""Recipes (memdiag.expr): a text analysed once and built again from its recipe, as a rule
set's cache file gives it back, behaves exactly as the text compiled from scratch; and the
builder refuses recipes the analyser does not make.

tests/test_expr_via_recipes.py runs the whole of tests/test_expr.py the cache's way too.
"""

from __future__ import annotations

import marshal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import test_expr_fuzz
from memdiag import expr
from memdiag.expr import (
    MAX_DEPTH, MAX_NODES, EvalError, MappingEnv, compile_expr, compile_template,
    expr_from_recipe, expr_recipe, template_from_recipe, template_recipe,
)


def _through_the_cache(recipe: tuple, *, lazy: bool) -> tuple:
    """``recipe`` as it comes back from a cache file: the node marshalled when it is kept for
    a lazy build, the whole marshalled and unmarshalled either way."""
    kept = (marshal.dumps(recipe[0]), *recipe[1:]) if lazy else recipe
    return marshal.loads(marshal.dumps(kept))


# -- the recipe itself ------------------------------------------------------------------------


def test_a_recipe_is_plain_data_with_the_names():
    recipe = expr_recipe("delta(a.b) > 1 and has(c) or prev(d) == x[0]")
    assert marshal.loads(marshal.dumps(recipe)) == recipe
    node, names, read, history, tested, uses_elapsed = recipe
    assert names == ("a.b", "c", "d", "x") and read == ("a.b", "x")
    assert history == ("a.b", "d") and tested == ("c",) and uses_elapsed is False
    assert node[0] == "or"


def test_constant_parts_are_folded_into_the_recipe():
    assert expr_recipe("gib(1) + mib(512)")[0] == ("const", (1 << 30) + (512 << 20))
    assert expr_recipe("version('3.10.1')[:2]")[0] == ("const", (3, 10))
    assert expr_recipe("1 / 0")[0] == ("unknown",)
    assert expr_recipe("[1 / 0, x]")[0][0] == "list"  # UNKNOWN is folded, the list is not
    failing = expr_recipe("'a' * 2")[0]  # left for run time, located
    assert failing[0] == "bin" and failing[-1] == (" at column 5", 4, 1)


def test_run_time_errors_keep_their_location_through_the_cache():
    text = "x +\n  'a' > 1"
    fresh = compile_expr(text)
    again = expr_from_recipe(text, _through_the_cache(expr_recipe(text), lazy=True), lazy=True)
    errors = []
    for e in (fresh, again):
        with pytest.raises(EvalError) as info:
            e.evaluate(MappingEnv({"x": 1}))
        errors.append((info.value.message, info.value.offset, info.value.line, info.value.reason))
    assert errors[0] == errors[1] and "at line 1, column 3" in errors[0][0]


def test_analysis_is_what_imports_ast():
    """Building from a recipe needs neither ast nor the analyser's patterns (checked in a
    fresh interpreter: this one has imported ast long ago)."""
    import subprocess
    import sys

    recipe = expr_recipe("a > 1 and lower(b) in ['x', 'y']")
    template = template_recipe("{a|bytes} of {b}")
    code = (
        "import marshal, sys\n"
        "from memdiag.expr import expr_from_recipe, template_from_recipe, MappingEnv\n"
        f"e = expr_from_recipe('t', marshal.loads({marshal.dumps(recipe)!r}))\n"
        f"t = template_from_recipe('t', marshal.loads({marshal.dumps(template)!r}))\n"
        "env = MappingEnv({'a': 2048, 'b': 'X'})\n"
        "print(e.evaluate(env), t.render(env), 'ast' in sys.modules, 'typing' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "2.00", "KiB", "of", "X", "False", "False"]


# -- the builder's checks -----------------------------------------------------------------------

LOC = ("", None, None)
GOOD = expr_recipe("a > 1")


def _with_node(node):
    return (node, *GOOD[1:])


def _deep(depth):
    node = ("name", "a")
    for _ in range(depth):
        node = ("not", node)
    return node


def _wide(count):
    return ("list", tuple(("const", 1) for _ in range(count)))


@pytest.mark.parametrize("recipe", [
    None, (), "a > 1", GOOD[:5], GOOD + (1,), [*GOOD],
    (GOOD[0], ["a"], *GOOD[2:]),  # names not a tuple
    (GOOD[0], (1,), *GOOD[2:]),  # a name not a string
    (*GOOD[:5], 1),  # uses_elapsed not a bool
    _with_node(None), _with_node(()), _with_node(["name", "a"]), _with_node(("nope",)),
    _with_node((["list"], ())),  # an unhashable kind
    _with_node(("name", "a.__class__")), _with_node(("name", "__import__")), _with_node(("name", "")),
    _with_node(("name", 1)), _with_node(("has", None)),
    _with_node(("const", object)), _with_node(("const", compile("1", "", "eval"))),
    _with_node(("const", {"a": 1})), _with_node(("const", {1, 2})), _with_node(("const", b"x")),
    _with_node(("const", [1, [2, {}]])), _with_node(("const", 1 << 1200)), _with_node(("const", (1, "a"))),
    _with_node(("call", "__import__", (("const", "os"),), LOC)), _with_node(("call", "min", (), LOC)),
    _with_node(("call", "abs", (("const", 1), ("const", 2)), LOC)),
    _with_node(("bin", "**", ("const", 2), ("const", 2), LOC)), _with_node(("bin", "+", ("const", 2), LOC)),
    _with_node(("cmp", ("const", 1), (("is", ("const", 1), LOC),))), _with_node(("cmp", ("const", 1), ())),
    _with_node(("and", (("const", True),))), _with_node(("coalesce", ())),
    _with_node(("neg", ("const", 1), ("at", "column", 3))), _with_node(("neg", ("const", 1), None)),
    _with_node(("unknown", 1)), _with_node(("elapsed", "x")),
    _with_node(_deep(MAX_DEPTH + 3)), _with_node(_wide(4 * MAX_NODES + 1)),
    _with_node(b"not marshal"),
], ids=lambda r: repr(r)[:60])
def test_the_builder_refuses_recipes_the_analyser_does_not_make(recipe):
    assert expr_from_recipe("a > 1", recipe) is None
    lazy = expr_from_recipe("a > 1", recipe, lazy=True)
    if lazy is not None:  # only the names are checked now: the text is compiled instead when used
        assert lazy.evaluate(MappingEnv({"a": 2})) is True


def test_the_analyser_s_largest_recipes_are_built():
    deepest = "(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)
    widest = "[" + ", ".join(["a"] * (MAX_NODES - 1)) + "]"
    most_slices = "[" + ", ".join(["x[::]"] * ((MAX_NODES - 1) // 3)) + "]"  # bounds it leaves out
    for text in ["not " * (MAX_DEPTH - 1) + "a", deepest, widest, most_slices, "x" + "[::]" * (MAX_DEPTH - 2)]:
        assert expr_from_recipe(text, _through_the_cache(expr_recipe(text), lazy=False)) is not None


@pytest.mark.parametrize("recipe", [
    None, ("x",), ((), ("a",)), ((("const", 1), "str", "", None, None),),
    (((("const", 1), "nope", "", None, None),), (), ()),  # an unknown filter
    ((("__import__", "str", "", None, None),), (), ()),
    ((1,), (), ()), (("x" * 20000,), (), ()),
])
def test_the_builder_refuses_template_recipes_the_analyser_does_not_make(recipe):
    assert template_from_recipe("{a}", recipe) is None
    lazy = template_from_recipe("{a}", recipe, lazy=True)
    if lazy is not None:
        assert lazy.render(MappingEnv({"a": 2})) == "2"


def test_a_refused_recipe_whose_text_does_not_compile_is_an_eval_error():
    lazy = expr_from_recipe("a >", (("nope",), (), (), (), (), False), lazy=True)
    with pytest.raises(EvalError) as info:
        lazy.evaluate(MappingEnv({}))
    assert "syntax error" in info.value.message
    lazy = template_from_recipe("{a", (((("nope",), "str", "", None, None),), (), ()), lazy=True)
    with pytest.raises(EvalError) as info:
        lazy.render(MappingEnv({}))
    assert "unclosed '{'" in info.value.message


# -- generated expressions: fresh and through the cache agree --------------------------------

def _outcome(call):
    try:
        value = call()
    except EvalError as exc:
        return ("error", exc.message, exc.offset, exc.line, exc.reason)
    return ("value", repr(value))  # repr: nan == nan, and 1 == True is not the same answer


def _both(text, compile_fresh, recipe_of, from_recipe):
    try:
        fresh = compile_fresh(text)
    except expr.ExprError as exc:
        with pytest.raises(expr.ExprError) as again:
            recipe_of(text)
        assert (again.value.message, again.value.offset, again.value.line) == (exc.message, exc.offset, exc.line)
        return None
    recipe = recipe_of(text)
    built = [from_recipe(text, _through_the_cache(recipe, lazy=lazy), lazy=lazy) for lazy in (False, True)]
    assert None not in built, text
    return fresh, built


@test_expr_fuzz.FUZZ
@given(test_expr_fuzz.expressions, test_expr_fuzz.envs)
def test_generated_expressions_evaluate_the_same_through_the_cache(text, env):
    pair = _both(text, compile_expr, expr_recipe, expr_from_recipe)
    if pair is not None:
        fresh, built = pair
        expected = _outcome(lambda: fresh.evaluate(env))
        for e in built:
            assert _outcome(lambda: e.evaluate(env)) == expected, text
            assert (e.names, e.read_names, e.history_names, e.tested_names, e.uses_elapsed) == (
                fresh.names, fresh.read_names, fresh.history_names, fresh.tested_names, fresh.uses_elapsed)


@test_expr_fuzz.FUZZ
@given(st.lists(st.tuples(test_expr_fuzz.expressions, st.sampled_from([None, *expr.FILTERS])), min_size=1,
                max_size=3), test_expr_fuzz.envs)
def test_generated_templates_render_the_same_through_the_cache(fields, env):
    text = " ".join("{" + e + (f"|{flt}" if flt else "") + "}" for e, flt in fields)
    pair = _both(text, compile_template, template_recipe, template_from_recipe)
    if pair is not None:
        fresh, built = pair
        expected = _outcome(lambda: fresh.render(env))
        for t in built:
            assert _outcome(lambda: t.render(env)) == expected, text


# -- threads ------------------------------------------------------------------------------------

class _Finalized:
    """Garbage whose finalizer runs Python code: the GC may switch threads in the middle of
    anything that allocates, ast's conversion of a parse tree included."""

    def __del__(self):
        sum(range(10))


def test_texts_compile_in_many_threads_at_once():
    """Diagnoses in threads load rules at the same time; CPython 3.11's ast conversion counts
    its depth per interpreter, so unserialised parses fail now and then with SystemError."""
    import sys
    import threading

    texts = ["(\nnot coalesce(a.b, False) and c.d <= params.e and not f.g and h >= params.i\n)",
             "a > 1 and b < 2 or c in [1, 2, 3] and lower(d) == 'x'"]
    errors: list[BaseException] = []

    def work():
        for i in range(200):
            try:
                compile_expr(texts[i % 2])
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test
                errors.append(exc)
                return
            garbage: list = [_Finalized() for _ in range(5)]
            garbage.append(garbage)  # a cycle: freed by the GC, finalizers and all

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
