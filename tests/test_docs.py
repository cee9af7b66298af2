"""README.md documents every config key, every metric and every error code."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from promptd import settings
from promptd.ops.metrics import Metrics

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_config_key_is_documented():
    sections = {
        "server": settings.ServerSection,
        "prompts": settings.PromptsSection,
        "upstreams[]": settings.UpstreamSection,
        "auth": settings.AuthSection,
    }
    for section, struct in sections.items():
        for field in msgspec.structs.fields(struct):
            assert f"| `{section}.{field.name}` |" in README, f"{section}.{field.name} is not in README.md"


def test_every_metric_is_documented():
    text = Metrics().render().decode()
    names = set(re.findall(r"^# TYPE (promptd_\w+) (\w+)", text, re.MULTILINE))
    assert len(names) >= 9
    for name, kind in names:
        documented = name + "_total" if kind == "counter" and not name.endswith("_total") else name
        assert f"| `{documented}` | {kind} |" in README, name


def test_every_error_code_is_documented():
    codes = set()
    for path in (Path(__file__).parent.parent / "promptd").rglob("*.py"):
        codes |= set(re.findall(r'code="([a-z_]+)"', path.read_text()))
    assert {"invalid_json", "invalid_variables", "upstream_timeout"} <= codes
    for code in codes:
        assert f"`{code}`" in README, code
