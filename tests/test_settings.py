from __future__ import annotations

import pytest

from promptd.errors import ConfigError
from promptd.settings import load_settings

UPSTREAM = '[[upstreams]]\nname = "echo"\ntype = "echo"\nmodels = ["echo"]\n'


def load(tmp_path, text, environ=None):
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "promptd.toml").write_text(text)
    return load_settings(tmp_path, environ=environ or {})


def problems(tmp_path, text, environ=None):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ)
    return [p.split("promptd.toml: ", 1)[1] for p in info.value.problems]


def test_defaults_and_directory_lookup(tmp_path):
    settings = load(tmp_path, UPSTREAM)
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.max_body_bytes == 33554432 and settings.shutdown_grace_s == 30
    assert settings.prompt_dirs == (tmp_path / "prompts",)
    assert settings.default_environment == "production" and settings.watch is True
    assert settings.api_keys == ()


def test_env_references_resolve(tmp_path):
    text = (
        UPSTREAM
        + '[[upstreams]]\nname = "o"\nbase_url = "http://x/v1/"\napi_key = "env:K"\nmodels = ["g*"]\n[auth]\napi_keys = "env:KEYS"\n'
    )
    settings = load(tmp_path, text, {"K": "sk-1", "KEYS": "a, b,,"})
    assert settings.upstreams[1].api_key == "sk-1"
    assert settings.upstreams[1].base_url == "http://x/v1"
    assert settings.api_keys == ("a", "b")
    assert "sk-1" not in repr(settings)
    unset = load(tmp_path, text, {"KEYS": "a"})
    assert unset.upstreams[1].api_key is None  # an unset upstream key: the client's is passed through


@pytest.mark.parametrize("environ", [{}, {"KEYS": ""}, {"KEYS": " , "}, {"KEYS": ",,"}])
def test_auth_never_fails_open(tmp_path, environ):
    text = UPSTREAM + '[auth]\napi_keys = "env:KEYS"\n'
    found = problems(tmp_path, text, environ)
    assert found == [
        "auth.api_keys: env:KEYS is unset, empty or holds no key: refusing to serve without keys"
        " (auth never fails open; remove [auth] api_keys to run without auth)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nprot = 1\n" + UPSTREAM, "server.prot: unknown key"),
        ('[server]\nport = "80"\n' + UPSTREAM, "server.port: Expected `int`, got `str`"),
        ("[server]\nport = 70000\n" + UPSTREAM, "server.port: Expected `int` <= 65535"),
        ("[tls]\n" + UPSTREAM, "tls: unknown key"),
        ("", "upstreams: needs at least one [[upstreams]] entry"),
        (
            '[[upstreams]]\nname = "o"\nmodels = ["g"]\n',
            "upstreams[0].base_url: required for an upstream of type openai",
        ),
        (
            '[[upstreams]]\nname = "o"\nbase_url = "x"\nmodels = ["g"]\n',
            'upstreams[0].base_url: "x" must start with http:// or https://',
        ),
        (
            '[[upstreams]]\nname = "o"\nbase_url = "https://"\nmodels = ["g"]\n',
            'upstreams[0].base_url: "https://" has no host',
        ),
        (
            '[[upstreams]]\nname = "o"\nbase_url = "http://h:99999/v1"\nmodels = ["g"]\n',
            'upstreams[0].base_url: "http://h:99999/v1" has an invalid port (1-65535)',
        ),
        (
            '[[upstreams]]\nname = "o"\nbase_url = "http://x"\napi_key = "sk-literal"\nmodels = ["g"]\n',
            'upstreams[0].api_key: must be a reference "env:NAME", never a literal secret',
        ),
        (UPSTREAM + UPSTREAM, 'upstreams[1].name: duplicate upstream name "echo"'),
        ('[[upstreams]]\nname = "e"\ntype = "echo"\n', "upstreams[0].models: needs at least one model pattern"),
        ('[[upstreams]]\nname = "e"\ntype = "magic"\nmodels=["x"]\n', "upstreams[0].type: Invalid enum value 'magic'"),
        ('[prompts]\npaths = ["nope"]\n' + UPSTREAM, "prompts.paths[0]: "),
        (
            '[auth]\napi_keys = "k1,k2"\n' + UPSTREAM,
            'auth.api_keys: must be a reference "env:NAME", never a literal secret',
        ),
        ("[server\n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert found[0].startswith(expected), found


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nowhere")
    assert info.value.problems == [f"{tmp_path / 'nowhere'}: no such config file"]
