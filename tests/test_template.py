from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptd.prompts.template import Template, TemplateSyntaxError


def render(source: str, **variables) -> str:
    return Template(source).render(variables)


def test_variables_with_and_without_spaces():
    assert render("Hi {{name}} and {{ name }}!", name="Ann") == "Hi Ann and Ann!"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        ("", ""),
        ({"a": [1, "x"]}, '{"a":[1,"x"]}'),
        ([1, 2], "[1,2]"),
    ],
)
def test_values_insert_as_text_and_json(value, text):
    assert render("[{{v}}]", v=value) == f"[{text}]"


def test_values_are_never_evaluated_again():
    assert render("{{a}}", a="{{b}} {{#c}}x{{/c}}", b="no", c=True) == "{{b}} {{#c}}x{{/c}}"


def test_escaped_braces_are_literal():
    assert render(r"write \{{name}} to get {{name}}", name="N") == "write {{name}} to get N"


def test_helicone_typed_form():
    template = Template("{{hc:count:number}} items, gift: {{hc:gift:boolean}}")
    assert template.typed == {"count": "number", "gift": "boolean"}
    assert template.render({"count": 3, "gift": False}) == "3 items, gift: false"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "yes"),
        ("text", "yes"),
        (0, "yes"),
        ({"k": 1}, "yes"),
        ([1], "yes"),
        (False, "no"),
        (None, "no"),
        ([], "no"),
        ("", "no"),
    ],
)
def test_section_truthiness(value, expected):
    assert render("{{#v}}yes{{/v}}{{^v}}no{{/v}}", v=value) == expected


def test_missing_section_is_falsy():
    assert render("{{#v}}yes{{/v}}{{^v}}no{{/v}}") == "no"


def test_list_sections_iterate_with_dot_and_object_keys():
    assert render("{{#xs}}<{{.}}>{{/xs}}", xs=[1, "a", True]) == "<1><a><true>"
    assert (
        render("{{#people}}{{name}}@{{team}};{{/people}}", people=[{"name": "A"}, {"name": "B", "team": "y"}], team="x")
        == "A@x;B@y;"
    )


def test_nested_sections():
    source = "{{#groups}}{{title}}:{{#items}} {{.}}{{/items}}{{^items}} none{{/items}}|{{/groups}}"
    groups = [{"title": "a", "items": [1, 2]}, {"title": "b", "items": []}]
    assert render(source, groups=groups) == "a: 1 2|b: none|"


def test_object_section_pushes_its_keys():
    assert render("{{#user}}{{name}}{{/user}}", user={"name": "Zed"}) == "Zed"


def test_name_sets():
    template = Template("{{a}} {{#s}}{{b}}{{/s}} {{^t}}{{c}}{{/t}}")
    assert template.names == ["a"]
    assert template.sections == ["s", "t"]
    assert template.inner == ["b", "c"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{#items}}x", 'unclosed section "items"'),
        ("{{#a}}{{#b}}{{/a}}{{/b}}", 'section "b" is closed by "{{/a}}"'),
        ("{{/a}}", 'closing tag "{{/a}}" has no open section'),
        ("{{1x}}", 'bad variable name in "{{1x}}"'),
        ("{{a-b}}", 'bad variable name in "{{a-b}}"'),
        ("{{}}", 'bad variable name in "{{}}"'),
        ("{{.}}", '"{{.}}" is only valid inside a section'),
        ("hi {{name", 'unterminated tag: "{{" without "}}" (write \\{{ for a literal "{{")'),
        ("{{hc:x:date}}", '"{{hc:x:date}}": type must be string, number or boolean'),
        ("{{hc:x:number}}{{hc:x:string}}", 'variable "x" is typed both number and string'),
    ],
)
def test_syntax_errors(source, message):
    with pytest.raises(TemplateSyntaxError) as info:
        Template(source)
    assert str(info.value) == message


def test_constant_template_is_prebuilt():
    template = Template(r"no tags \{{ here")
    assert template.constant == "no tags {{ here"


# Random literal text (with "{{" escaped) interleaved with variables of any JSON type.
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
    lambda s: not s.endswith("\\")
)
_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_text, st.sampled_from(["a", "b", "c"])), max_size=6),
    _text,
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _value),
)
def test_rendering_never_raises_and_round_trips_literal_text(pieces, tail, variables):
    source = "".join(text.replace("{{", "\\{{") + "{{" + name + "}}" for text, name in pieces) + tail.replace(
        "{{", "\\{{"
    )
    rendered = Template(source).render(variables)
    from promptd.prompts.template import to_text

    expected = "".join(text + to_text(variables.get(name)) for text, name in pieces) + tail
    assert rendered == expected
