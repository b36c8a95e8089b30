"""The whole of tests/test_expr.py again, with compile_expr and compile_template taking the
way a rule set's cache file gives texts back: analyse, marshal, unmarshal, build (now, as a
condition is, or on first use, as a message is). Every value, UNKNOWN and located error
message test_expr checks is thereby checked on recipes too."""

from __future__ import annotations

import pytest

import test_expr
from memdiag.expr import expr_from_recipe, expr_recipe, template_from_recipe, template_recipe
from test_expr_recipes import _through_the_cache

# test_expr's tests and its fixture, collected here again under the fixture below.
env = test_expr.env
for _name, _test in vars(test_expr).items():
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _test


@pytest.fixture(autouse=True, params=["built now", "built when used"])
def _via_recipes(request, monkeypatch):
    lazy = request.param == "built when used"

    def compile_expr_again(text):
        built = expr_from_recipe(text, _through_the_cache(expr_recipe(text), lazy=lazy), lazy=lazy)
        assert built is not None, f"the builder refused the analyser's recipe for {text!r}"
        return built

    def compile_template_again(text):
        built = template_from_recipe(text, _through_the_cache(template_recipe(text), lazy=lazy), lazy=lazy)
        assert built is not None, f"the builder refused the analyser's recipe for {text!r}"
        return built

    monkeypatch.setattr(test_expr, "compile_expr", compile_expr_again)
    monkeypatch.setattr(test_expr, "compile_template", compile_template_again)
