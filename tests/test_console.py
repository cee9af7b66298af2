"""The prompt console (README "The prompt console"), driven in a real headless
Chromium through selenium as a person would: click, type, read what is shown.
promptd runs as a real process on the sample config plus a few test prompts; the
`echo` upstream answers with the JSON of the messages that reached it.

These tests need Debian's `chromium` and `chromium-driver` (`.ci/run` installs
them); they fail, never skip, without them. Screenshots of the catalog and of
the playground after Run are saved to tests/screenshots/run/ for a reviewer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_config
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).parent.parent
SCREENSHOTS = Path(__file__).parent / "screenshots" / "run"
WAIT_S = 10

ROLLOUT = """
id = "canary"
description = "A prompt in a weighted rollout"
[environments]
production = { "1" = 90, "2" = 10 }
staging = 2

[[versions]]
version = 1
model = "echo"
messages = [{ role = "system", content = "canary one" }]

[[versions]]
version = 2
model = "echo"
messages = [{ role = "system", content = "canary two" }]
"""

# Prompt text that would run script if a page ever inserted it as HTML.
HOSTILE = """
id = "hostile"
description = "<img src=x onerror=\\"window.__pwned = 'description'\\">"

[[versions]]
version = 1
model = "echo"
messages = [{ role = "system", content = "<script>window.__pwned = 'message'</script><b onmouseover=alert(1)>bold</b> {{name}}" }]
[versions.variables]
name = { type = "string", default = "<img src=y onerror=\\"window.__pwned = 'default'\\">" }
"""

TYPES = """
id = "types"
description = "Every kind of playground input"

[[versions]]
version = 1
model = "echo"
messages = [{ role = "user", content = "n={{count}} flag={{#flag}}on{{/flag}}{{^flag}}off{{/flag}} tone={{tone}} note={{note}}" }]
[versions.variables]
count = { type = "integer", default = 3 }
flag = { type = "boolean", default = true }
tone = { type = "string", enum = ["warm", "dry"], default = "dry" }
note = { type = "string", required = false }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Promptd:
    """`promptd serve` as a process on a copy of the sample config."""

    def __init__(self, root: Path, *, auth_keys: str | None = None, ui: bool = True) -> None:
        self.config = root / "config"
        shutil.copytree(ROOT / "config", self.config)
        prompts = self.config / "prompts"
        (prompts / "canary.toml").write_text(ROLLOUT)
        (prompts / "hostile.toml").write_text(HOSTILE)
        (prompts / "types.toml").write_text(TYPES)
        toml = (self.config / "promptd.toml").read_text()
        if auth_keys is not None:
            toml = toml.replace('# api_keys = "env:PROMPTD_API_KEYS"', 'api_keys = "env:PROMPTD_API_KEYS"')
        if not ui:
            toml = toml.replace("enabled = true", "enabled = false")
        (self.config / "promptd.toml").write_text(toml)
        env = {**os.environ, "PROMPTD_API_KEYS": auth_keys or ""}
        env.pop("OPENAI_API_KEY", None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "promptd.log"
        with open(self.log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "promptd", "serve", str(self.config), "--port", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("promptd did not start: " + self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, (
        "the console tests need chromium and chromedriver: apt-get install chromium chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def promptd(tmp_path) -> Iterator[Promptd]:
    server = Promptd(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def wait_for(browser: webdriver.Chrome, condition, message: str = "", timeout: float = WAIT_S):
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(lambda _: condition())
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {message or condition}") from None


def find(browser: webdriver.Chrome, css: str) -> WebElement:
    return wait_for(browser, lambda: (browser.find_elements(By.CSS_SELECTOR, css) or [None])[0], css)


def text_of(browser: webdriver.Chrome, css: str) -> str:
    """The element's visible text, read in one step (the page re-renders on reloads)."""
    text = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.offsetParent !== null ? e.innerText : null",
        css,
    )
    return text.strip() if text is not None else ""


def catalog_rows(browser: webdriver.Chrome) -> dict[str, list[str]]:
    """The visible catalog rows, read in one step (the table is rebuilt on reloads)."""
    return browser.execute_script(
        """
        const rows = {};
        for (const row of document.querySelectorAll("#catalog tbody tr")) {
          if (!row.hidden) rows[row.dataset.promptId] = [...row.cells].map((cell) => cell.innerText);
        }
        return rows;
        """
    )


def open_console(browser: webdriver.Chrome, server: Promptd, path: str = "/ui") -> None:
    browser.get(server.url + path)
    browser.execute_script("sessionStorage.clear()")
    browser.get(server.url + path)


def open_prompt(browser: webdriver.Chrome, server: Promptd, prompt_id: str) -> None:
    open_console(browser, server)
    find(browser, f'#catalog tr[data-prompt-id="{prompt_id}"] a').click()
    wait_for(browser, lambda: text_of(browser, "#prompt-title") == prompt_id, "the prompt page")
    find(browser, "#variables")


def screenshot(browser: webdriver.Chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(800, min(int(height) + 40, 4000)))
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(SCREENSHOTS / name))
    browser.set_window_size(1280, 1100)


def test_the_catalog_shows_every_prompt_and_filters(browser, promptd):
    open_console(browser, promptd)
    wait_for(browser, lambda: len(catalog_rows(browser)) == 6, "six catalog rows")
    rows = catalog_rows(browser)
    assert sorted(rows) == ["canary", "customer_support", "hostile", "order_summary", "translate", "types"]
    prompt, description, model, versions, latest, environments, updated, source = rows["customer_support"]
    assert (prompt, description, model, versions, latest) == (
        "customer_support",
        "First-line support agent",
        "echo",
        "3",
        "v3",
    )
    assert "production → v2" in environments and "staging → v3" in environments
    assert updated.endswith(" UTC") and updated.startswith("20")
    assert source == "prompts/customer_support.toml"  # the full path is the tooltip
    title = browser.find_element(By.CSS_SELECTOR, '#catalog tr[data-prompt-id="customer_support"] td.file')
    assert title.get_attribute("title") == str(promptd.config / "prompts" / "customer_support.toml")
    assert "production: v1 90% · v2 10%" in rows["canary"][5]  # a rollout's weights
    assert "generation 1 · 6 prompts" in text_of(browser, "#status")
    screenshot(browser, "console-catalog.png")

    browser.find_element(By.ID, "filter").send_keys("summar")
    wait_for(browser, lambda: list(catalog_rows(browser)) == ["order_summary"], "the filter to leave one row")
    assert text_of(browser, "#filter-count") == "1 of 6 prompts"
    browser.find_element(By.ID, "filter").clear()
    browser.find_element(By.ID, "filter").send_keys("CANARY")  # case-insensitive
    wait_for(browser, lambda: list(catalog_rows(browser)) == ["canary"])

    # Nothing was fetched from anywhere but promptd itself.
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(promptd.url + "/") for url in urls), urls


def test_a_prompt_page_shows_versions_any_version_and_a_diff(browser, promptd):
    open_prompt(browser, promptd, "customer_support")
    versions = browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert [row.get_attribute("data-version") for row in versions] == ["3", "2", "1"]  # newest first
    environments = {row.get_attribute("data-version"): row.find_elements(By.TAG_NAME, "td")[2].text for row in versions}
    assert environments == {"3": "staging → v3", "2": "production → v2", "1": ""}
    # The default version (production's) is shown first.
    assert text_of(browser, "#shown-version") == "Version 2"
    assert "Be friendly and solution-oriented. Company: {{company}}." in text_of(browser, "#messages")
    assert json.loads(text_of(browser, "#params")) == {"temperature": 0.2, "max_tokens": 512}

    versions[2].find_element(By.CSS_SELECTOR, "button").click()
    wait_for(browser, lambda: text_of(browser, "#shown-version") == "Version 1")
    assert "You are a helpful customer support agent for {{company}}." in text_of(browser, "#messages")
    assert "company" in text_of(browser, "#variables-table") and "TechCorp" in text_of(browser, "#variables-table")

    Select(browser.find_element(By.ID, "diff-from")).select_by_value("1")
    Select(browser.find_element(By.ID, "diff-to")).select_by_value("3")
    browser.find_element(By.ID, "diff-run").click()
    added = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#diff .added"), "added lines")
    removed = browser.find_elements(By.CSS_SELECTOR, "#diff .removed")
    added_text = "\n".join(line.text for line in added)
    removed_text = "\n".join(line.text for line in removed)
    assert all(line.text.startswith("+") for line in added) and all(line.text.startswith("-") for line in removed)
    assert "Be brief, friendly and solution-oriented" in added_text and '"tier"' in added_text
    assert "You are a helpful customer support agent" in removed_text
    assert "Be brief" not in removed_text and "helpful customer support agent" not in added_text
    same = browser.find_elements(By.CSS_SELECTOR, "#diff .same")
    assert any('"model": "echo"' in line.text for line in same)  # unchanged lines are shown, unmarked


def test_the_playground_renders_and_runs_with_streamed_answer_and_headers(browser, promptd):
    open_prompt(browser, promptd, "customer_support")
    form = browser.find_element(By.ID, "variables")
    # One input per variable, by name; enum as a select; the default filled in.
    names = sorted(e.get_attribute("name") for e in form.find_elements(By.CSS_SELECTOR, "[name]"))
    assert names == ["company", "customer_name", "issue_type"]
    assert form.find_element(By.NAME, "company").get_attribute("value") == "TechCorp"
    assert form.find_element(By.NAME, "issue_type").tag_name == "select"
    assert "string" in form.text and "required" in form.text

    # An error is shown with its details at the variable it concerns.
    browser.find_element(By.ID, "render").click()
    find(browser, "#result-error:not([hidden])")
    assert "invalid_variables" in text_of(browser, "#result-error")
    assert text_of(browser, '.var-error[data-variable="customer_name"]') == "missing (expected string)"
    assert text_of(browser, '.var-error[data-variable="issue_type"]') == "missing (expected string)"
    assert form.find_element(By.NAME, "issue_type").get_attribute("aria-invalid") == "true"

    # staging is version 3: the form follows the chosen version's variables.
    Select(browser.find_element(By.ID, "target")).select_by_value("e:staging")
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, '#variables [name="tier"]'), "the tier input")
    form = browser.find_element(By.ID, "variables")
    form.find_element(By.NAME, "customer_name").send_keys("Sarah")
    Select(form.find_element(By.NAME, "issue_type")).select_by_visible_text("billing")
    Select(form.find_element(By.NAME, "tier")).select_by_visible_text("pro")
    browser.find_element(By.ID, "render").click()
    wait_for(browser, lambda: text_of(browser, "#render-output").startswith("{"), "the rendered body")
    assert text_of(browser, '.var-error[data-variable="customer_name"]') == ""  # cleared
    body = json.loads(text_of(browser, "#render-output"))
    expected = _post(
        promptd,
        "/v1/prompts/customer_support/render",
        {
            "environment": "staging",
            "variables": {"company": "TechCorp", "customer_name": "Sarah", "issue_type": "billing", "tier": "pro"},
            "messages": [],
        },
    )
    assert body == expected["body"]
    assert body["messages"][1] == {"role": "user", "content": "Customer Sarah (pro tier) is asking about billing."}
    assert "rendered version 3 (environment staging)" in text_of(browser, "#run-meta")

    browser.find_element(By.ID, "user-message").send_keys("Where is my refund?")
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda: "first token after" in text_of(browser, "#run-meta"), "the run to finish")
    answer = json.loads(text_of(browser, "#run-output"))  # echo: the messages that reached the upstream
    assert answer == [*body["messages"], {"role": "user", "content": "Where is my refund?"}]
    headers = dict(
        (row.find_element(By.TAG_NAME, "th").text, row.find_element(By.TAG_NAME, "td").text)
        for row in browser.find_elements(By.CSS_SELECTOR, "#run-headers tr")
    )
    assert headers["x-promptd-prompt-id"] == "customer_support"
    assert headers["x-promptd-prompt-version"] == "3"
    assert headers["x-promptd-prompt-hash"] == expected["hash"]
    assert headers["x-request-id"]
    assert "status 200" in text_of(browser, "#run-meta")
    screenshot(browser, "console-playground.png")

    # A reload that does not touch this prompt leaves the page alone; one that does shows it.
    (promptd.config / "prompts" / "other.toml").write_text(
        '[[versions]]\nversion = 1\nmodel = "echo"\nmessages = [{ role = "user", content = "x" }]\n'
    )
    wait_for(browser, lambda: "generation 2" in text_of(browser, "#status"), "the reload")
    time.sleep(0.3)
    assert json.loads(text_of(browser, "#run-output")) == answer  # still there
    source = promptd.config / "prompts" / "customer_support.toml"
    source.write_text(source.read_text().replace("Be brief, friendly", "Be very brief, friendly"))
    wait_for(
        browser,
        lambda: "Be very brief" in text_of(browser, "#messages") or "generation 3" in text_of(browser, "#status"),
        "the edit",
    )
    wait_for(browser, lambda: text_of(browser, "#run-output") == "", "the page to show the new version")
    assert Select(browser.find_element(By.ID, "target")).first_selected_option.get_attribute("value") == "e:staging"
    assert browser.find_element(By.NAME, "customer_name").get_attribute("value") == "Sarah"  # typed values kept


def test_playground_inputs_follow_the_variable_types(browser, promptd):
    open_prompt(browser, promptd, "types")
    form = browser.find_element(By.ID, "variables")
    count = form.find_element(By.NAME, "count")
    assert count.get_attribute("type") == "number" and count.get_attribute("value") == "3"
    flag = form.find_element(By.NAME, "flag")
    assert flag.get_attribute("type") == "checkbox" and flag.is_selected()
    tone = Select(form.find_element(By.NAME, "tone"))
    assert tone.first_selected_option.text == "dry"
    assert "optional" in form.find_element(By.CSS_SELECTOR, 'label[for="var-note"]').text

    count.clear()
    count.send_keys("7")
    flag.click()
    tone.select_by_visible_text("warm")
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda: "first token after" in text_of(browser, "#run-meta"), "the run to finish")
    assert json.loads(text_of(browser, "#run-output")) == [{"role": "user", "content": "n=7 flag=off tone=warm note="}]


def test_get_code_snippets_run_as_shown(browser, promptd, npm_sdk, tmp_path):
    open_prompt(browser, promptd, "customer_support")
    Select(browser.find_element(By.ID, "target")).select_by_value("v:3")
    form = find(browser, '#variables [name="tier"]').find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.NAME, "customer_name").send_keys("O'Brien")  # a quote, for the shell
    Select(form.find_element(By.NAME, "issue_type")).select_by_visible_text("technical")
    wait_for(browser, lambda: "O'" in text_of(browser, "#code-python"), "the snippets to follow the form")
    expected = "Customer O'Brien (free tier) is asking about technical."

    curl = text_of(browser, "#code-curl")
    assert promptd.url in curl
    result = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(result.stdout)["choices"][0]["message"]["content"])[1]["content"] == expected

    script = tmp_path / "snippet.py"
    script.write_text(text_of(browser, "#code-python"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[1]["content"] == expected

    module = npm_sdk / "console_snippet.mjs"
    module.write_text(text_of(browser, "#code-js"))
    result = subprocess.run(["node", str(module)], capture_output=True, text=True, timeout=60, cwd=npm_sdk)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[1]["content"] == expected


def test_the_page_follows_reloads_without_a_refresh(browser, promptd):
    open_console(browser, promptd)
    wait_for(browser, lambda: len(catalog_rows(browser)) == 6, "the catalog")
    browser.execute_script("window.__sameDocument = true")
    prompts = promptd.config / "prompts"

    (prompts / "fresh.toml").write_text(
        'description = "added while the page was open"\n[[versions]]\nversion = 1\nmodel = "echo"\n'
        'messages = [{ role = "user", content = "hi" }]\n'
    )
    wait_for(browser, lambda: "fresh" in catalog_rows(browser), "the new prompt to appear")
    assert "generation 2" in text_of(browser, "#status")

    (prompts / "broken.toml").write_text("[[versions]]\nversion = 1\nmesages = []\n")
    wait_for(browser, lambda: find(browser, "#reload-error").is_displayed(), "the reload error")
    error = text_of(browser, "#reload-error")
    assert "Last reload failed" in error and "broken.toml" in error and "generation 2" in error
    assert "fresh" in catalog_rows(browser)  # still serving the last good set

    (prompts / "broken.toml").unlink()
    wait_for(browser, lambda: not browser.find_element(By.ID, "reload-error").is_displayed(), "the error to clear")
    assert "7 prompts" in text_of(browser, "#status")
    assert browser.execute_script("return window.__sameDocument") is True  # never refreshed


def test_prompt_text_is_shown_as_text_and_runs_nothing(browser, promptd):
    open_console(browser, promptd)
    wait_for(browser, lambda: "hostile" in catalog_rows(browser), "the catalog")
    assert catalog_rows(browser)["hostile"][1] == "<img src=x onerror=\"window.__pwned = 'description'\">"
    find(browser, '#catalog tr[data-prompt-id="hostile"] a').click()
    message = find(browser, "#messages .content")
    assert message.text.startswith("<script>window.__pwned = 'message'</script><b onmouseover=alert(1)>bold</b>")
    name = browser.find_element(By.NAME, "name")
    assert name.get_attribute("value") == "<img src=y onerror=\"window.__pwned = 'default'\">"
    browser.find_element(By.ID, "render").click()
    wait_for(browser, lambda: "<script>" in text_of(browser, "#render-output"), "the rendered body")
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda: "first token after" in text_of(browser, "#run-meta"), "the run")
    assert "<script>" in text_of(browser, "#run-output")
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script, main b") == []


def test_with_api_keys_the_page_asks_for_a_key_and_sends_it(browser, tmp_path):
    server = Promptd(tmp_path, auth_keys="sekret-1,sekret-2")
    try:
        open_console(browser, server)  # the page and its files need no key
        find(browser, "#auth:not([hidden])")
        assert "needs an API key" in text_of(browser, "#auth-message")
        assert browser.find_elements(By.CSS_SELECTOR, "#catalog") == []

        browser.find_element(By.ID, "api-key").send_keys("wrong")
        browser.find_element(By.ID, "use-key").click()
        wait_for(browser, lambda: "refused" in text_of(browser, "#auth-message"), "the refusal")
        assert browser.find_element(By.ID, "auth").is_displayed()
        assert browser.find_elements(By.CSS_SELECTOR, "#catalog") == []  # no data with a wrong key

        browser.find_element(By.ID, "api-key").send_keys("sekret-2")
        browser.find_element(By.ID, "use-key").click()
        wait_for(browser, lambda: len(catalog_rows(browser)) == 6, "the catalog")
        assert browser.execute_script("return sessionStorage.getItem('promptd.apiKey')") == "sekret-2"
        assert "sekret" not in browser.current_url

        # The key travels with every call, Run included; snippets name an env var, never the key.
        find(browser, '#catalog tr[data-prompt-id="translate"] a').click()
        find(browser, "#variables")
        browser.find_element(By.ID, "run").click()  # this prompt names no model: the request must
        wait_for(browser, lambda: "model_required" in text_of(browser, "#result-error"), "the model error")
        browser.find_element(By.ID, "model").send_keys("echo")
        browser.find_element(By.ID, "run").click()
        wait_for(browser, lambda: "status 200" in text_of(browser, "#run-meta"), "the run")
        assert "Translate the user's text into French." in text_of(browser, "#run-output")
        assert "$PROMPTD_API_KEY" in text_of(browser, "#code-curl") and "sekret" not in text_of(browser, "#code-curl")

        browser.refresh()  # the tab keeps its key
        wait_for(browser, lambda: text_of(browser, "#prompt-title") == "translate", "the prompt page again")
    finally:
        server.stop()


def _get(server: Promptd, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _post(server: Promptd, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# --- how the page is served (no browser needed) ---------------------------------------------


async def test_the_page_and_files_come_from_memory_with_a_strict_policy_and_validators(make_gateway):
    client = await make_gateway(auth='api_keys = "env:KEYS"', env={"KEYS": "pk-1"})
    page = await client.get("/ui")  # no key: the page asks for one itself
    assert page.status == 200 and page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-cache"
    html = await page.text()
    assert "<script>" not in html and "http://" not in html and "https://" not in html  # nothing inline or external
    script_url = html.split('<script src="', 1)[1].split('"', 1)[0]
    assert script_url.startswith("/ui/console.js?v=")

    script = await client.get(script_url)
    assert script.status == 200 and script.content_type == "text/javascript"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert script.headers["Content-Security-Policy"] == policy
    again = await client.get(script_url, headers={"If-None-Match": script.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    assert (await client.get("/ui/", headers={"If-None-Match": page.headers["ETag"]})).status == 304
    assert (await client.head("/ui/console.css")).status == 200

    missing = await client.get("/ui/secrets.txt")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    assert (await client.post("/ui")).status == 405
    # The data behind it still needs the key.
    assert (await client.get("/v1/prompts")).status == 401


async def test_ui_enabled_false_turns_the_console_off(make_gateway):
    client = await make_gateway(ui="enabled = false")
    for path in ("/ui", "/ui/", "/ui/console.js"):
        response = await client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"
    assert (await client.get("/v1/prompts")).status == 200


async def test_ui_enabled_must_be_a_boolean(tmp_path):
    from promptd.errors import ConfigError
    from promptd.settings import load_settings

    config = write_config(tmp_path, ui='enabled = "yes"')
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert "ui.enabled" in str(raised.value)
