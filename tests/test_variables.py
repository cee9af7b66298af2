from __future__ import annotations

import pytest

from promptd.errors import BadRequest
from promptd.prompts.variables import Rule, Rules

RULES = Rules(
    (
        Rule("s", "string"),
        Rule("n", "number"),
        Rule("i", "integer"),
        Rule("b", "boolean"),
        Rule("o", "object"),
        Rule("a", "array"),
        Rule("e", "string", enum=("x", "y"), default="x"),
        Rule("opt", "integer", required=False),
    )
)
GOOD = {"s": "", "n": 2.5, "i": 3, "b": False, "o": {}, "a": []}


def test_valid_values_and_defaults():
    context = RULES.apply(GOOD)
    assert context == {**GOOD, "e": "x"}
    assert RULES.apply({**GOOD, "n": 0, "i": 4.0})["i"] == 4.0


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("s", 1, "string"),
        ("n", "1", "number"),
        ("n", True, "number"),
        ("i", 1.5, "integer"),
        ("i", False, "integer"),
        ("b", 0, "boolean"),
        ("o", [], "object"),
        ("a", {}, "array"),
        ("opt", "1", "integer"),
    ],
)
def test_wrong_types(name, value, expected):
    with pytest.raises(BadRequest) as info:
        RULES.apply({**GOOD, name: value})
    assert info.value.details == [{"variable": name, "problem": "wrong_type", "expected": expected}]


def test_every_problem_at_once():
    with pytest.raises(BadRequest) as info:
        RULES.apply({"s": 1, "e": "z"})
    assert info.value.code == "invalid_variables"
    assert [(d["variable"], d["problem"]) for d in info.value.details] == [
        ("s", "wrong_type"),
        ("n", "missing"),
        ("i", "missing"),
        ("b", "missing"),
        ("o", "missing"),
        ("a", "missing"),
        ("e", "not_in_enum"),
    ]
    assert info.value.message.startswith("7 problems with prompt variables:")
