"""The deployment files: the Kubernetes example parses and its config is valid;
the Dockerfile has what a sidecar image needs (it cannot be built here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from promptd.prompts.promptset import PromptLoader
from promptd.settings import load_settings

ROOT = Path(__file__).parent.parent
KUBE = ROOT / "deploy" / "kubernetes"


def documents() -> list[dict]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_yaml_files_parse():
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Kustomization"]


def test_sidecar_deployment_shape():
    deployment = next(d for d in documents() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert containers["app"]["env"][0] == {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8080/v1"}
    promptd = containers["promptd"]
    assert promptd["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert promptd["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["name"]: m["mountPath"] for m in promptd["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["prompts"]["configMap"]["name"] == "promptd-prompts"
    assert "subPath" not in str(promptd["volumeMounts"])  # subPath mounts never see ConfigMap updates
    assert mounts["prompts"] == "/etc/promptd-prompts"


def test_configmap_config_and_prompts_are_valid(tmp_path):
    maps = {d["metadata"]["name"]: d["data"] for d in documents() if d["kind"] == "ConfigMap"}
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name, text in maps["promptd-prompts"].items():
        (prompts / name).write_text(text)
    config = maps["promptd-config"]["promptd.toml"].replace("/etc/promptd-prompts", str(prompts))
    (tmp_path / "promptd.toml").write_text(config)
    settings = load_settings(tmp_path, environ={})
    assert settings.host == "0.0.0.0" and settings.watch
    loaded = PromptLoader(settings.prompt_dirs).build()
    assert list(loaded.prompts) == ["customer_support"]


def test_dockerfile_is_a_non_root_sidecar_image():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.MULTILINE)
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert "EXPOSE 8080" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert 'CMD ["promptd", "serve", "/etc/promptd"' in text
    for source in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), source
