"""README.md documents every config key, every metric and every error code."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from promptd import settings
from promptd.errors import BadRequest, errors_markdown
from promptd.ops.metrics import Metrics

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_config_table_is_the_settings_reference():
    """README's table is `promptd.settings.reference_markdown()`; every key has help."""
    assert settings.reference_markdown() in README
    for section, struct in [
        ("server", settings.ServerSection),
        ("prompts", settings.PromptsSection),
        ("upstreams[]", settings.UpstreamSection),
        ("auth", settings.AuthSection),
    ]:
        for field in msgspec.structs.fields(struct):
            assert f"{section}.{field.name}" in settings.HELP


def test_every_metric_is_documented():
    text = Metrics().render().decode()
    names = set(re.findall(r"^# TYPE (promptd_\w+) (\w+)", text, re.MULTILINE))
    assert len(names) >= 9
    for name, kind in names:
        documented = name + "_total" if kind == "counter" and not name.endswith("_total") else name
        assert f"| `{documented}` | {kind} |" in README, name


def test_the_error_table_is_the_error_codes():
    """README's error table is `promptd.errors.errors_markdown()`."""
    assert errors_markdown() in README


def test_an_error_code_outside_the_table_cannot_be_raised():
    with pytest.raises(KeyError):
        BadRequest("x", code="no_such_code")
