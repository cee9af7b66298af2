"""The compile step without HTTP: resolution order and the merge rules."""

from __future__ import annotations

import pytest
from conftest import NOMODEL, SUPPORT, write_config

from promptd.compiler import compile_request
from promptd.compiler.fields import take_prompt_ref
from promptd.errors import BadRequest, NotFound
from promptd.prompts.promptset import PromptLoader


@pytest.fixture
def prompts(tmp_path):
    config = write_config(
        tmp_path,
        {
            "support.toml": SUPPORT,
            "nomodel.toml": NOMODEL,
            "latest.toml": SUPPORT.replace('id = "support"', 'id = "latest"').replace(
                "[environments]\nproduction = 2\nstaging = 3", "[environments]\nstaging = 1"
            ),
        },
    )
    return PromptLoader([config / "prompts"]).build()


def compile_body(prompts, body, default_environment="production"):
    body = dict(body)
    ref = take_prompt_ref(body)
    assert ref is not None
    return compile_request(prompts, ref, body, default_environment)


@pytest.mark.parametrize(
    ("fields", "version"),
    [
        ({"prompt_id": "support", "prompt_version": 1}, 1),  # explicit version
        ({"prompt_id": "support", "environment": "staging"}, 3),  # explicit environment
        ({"prompt_id": "support"}, 2),  # default environment
        ({"prompt_id": "latest"}, 3),  # no default environment mapped: latest
    ],
)
def test_resolution_order(prompts, fields, version):
    compiled = compile_body(prompts, {**fields, "prompt_variables": {"name": "n", "issue": "billing"}})
    assert compiled.version.number == version


def test_default_environment_setting(prompts):
    compiled = compile_body(prompts, {"prompt_id": "support"}, default_environment="staging")
    assert compiled.version.number == 3 and compiled.environment == "staging"


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"prompt_id": "missing"}, NotFound, "prompt_not_found"),
        ({"prompt_id": "support", "prompt_version": 7}, NotFound, "prompt_version_not_found"),
        ({"prompt_id": "support@7"}, NotFound, "prompt_version_not_found"),
        ({"prompt_id": "support", "environment": "dev"}, NotFound, "prompt_environment_not_found"),
        ({"prompt_id": "support@dev"}, NotFound, "prompt_environment_not_found"),
        ({"prompt_id": "support", "prompt": {"id": "support"}}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support", "inputs": {}, "prompt_variables": {}}, BadRequest, "invalid_prompt_fields"),
        ({"prompt": {"id": "support", "variables": {}}, "inputs": {}}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support@2", "prompt_version": 2}, BadRequest, "invalid_prompt_fields"),
        ({"prompt": {"id": "support", "version": 1}, "prompt_version": 1}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support", "environment": "a", "prompt_label": "a"}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support@staging", "environment": "staging"}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_version": 1, "environment": "staging"}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_version": 0}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_version": True}, BadRequest, "invalid_prompt_fields"),
        ({"prompt_id": "@2"}, BadRequest, "invalid_prompt_fields"),
        ({"prompt": {"id": "support", "label": "x"}}, BadRequest, "invalid_prompt_fields"),
        ({"environment": "production"}, BadRequest, "invalid_prompt_fields"),
    ],
)
def test_errors(prompts, fields, error, code):
    with pytest.raises(error) as info:
        compile_body(prompts, fields)
    assert info.value.code == code


def test_prompt_fields_are_removed_and_everything_else_kept(prompts):
    body = {
        "prompt": {"id": "support", "version": 1},
        "environment_name": "kept",
        "tools": [{"type": "function"}],
        "messages": [{"role": "user", "content": "{{company}}"}],
    }
    compiled = compile_body(prompts, body)
    assert compiled.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "v1 for Acme"}, {"role": "user", "content": "{{company}}"}],
        "environment_name": "kept",
        "tools": [{"type": "function"}],
    }


def test_variable_defaults_and_falsy_values(prompts):
    compiled = compile_body(prompts, {"prompt_id": "support@1", "prompt_variables": {"company": ""}})
    assert compiled.body["messages"][0]["content"] == "v1 for "
    compiled = compile_body(prompts, {"prompt_id": "support@1", "prompt_variables": {"company": None}})
    assert compiled.body["messages"][0]["content"] == "v1 for Acme"


def test_messages_must_be_a_list(prompts):
    with pytest.raises(BadRequest) as info:
        compile_body(prompts, {"prompt_id": "support@1", "messages": "hi"})
    assert info.value.code == "invalid_messages"
