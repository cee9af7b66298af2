// promptd's prompt console (README "The prompt console"). Plain JavaScript, no
// build step, nothing from outside the page's own origin. Every piece of text
// that comes from a prompt file is inserted with textContent, never as HTML.
"use strict";

const KEY_STORAGE = "promptd.apiKey";
const POLL_MS = 1000;

const state = {
  generation: null, // the prompt set generation last shown
  catalog: [], // GET /v1/prompts data
  prompt: null, // GET /v1/prompts/{id} of the prompt page
  shownVersion: null,
  locked: false, // a key is needed (or was refused): no data is shown
};

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.details = error.details || null;
    this.param = error.param || null;
  }
}
class NeedsKey extends Error {}

// --- DOM helpers: text only ---------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);
const view = () => $("#view");

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function sortedKeys(value) {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortedKeys(value[key]);
    return out;
  }
  return value;
}

// The last two segments of a file's path (the full path is the cell's tooltip).
function shortPath(path) {
  return path.split("/").slice(-2).join("/");
}

function timeText(iso) {
  if (!iso) return "-";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

// --- calls to promptd ----------------------------------------------------------

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function call(path, { method = "GET", json, signal } = {}) {
  const headers = authHeaders();
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body, signal, cache: "no-store" });
  if (response.status === 401) {
    const had = sessionStorage.getItem(KEY_STORAGE);
    lock(had ? "The key was refused (401 unauthorized): enter a valid promptd API key." : "This promptd needs an API key.");
    throw new NeedsKey();
  }
  return response;
}

async function getJSON(path, options) {
  const response = await call(path, options);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// --- the key --------------------------------------------------------------------

function lock(message) {
  state.locked = true;
  state.generation = null;
  view().replaceChildren();
  $("#auth-message").textContent = message;
  $("#auth").hidden = false;
  $("#status").textContent = "no access";
  $("#reload-error").hidden = true;
  $("#api-key").focus();
}

function unlock() {
  state.locked = false;
  $("#auth").hidden = true;
}

$("#auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  $("#api-key").value = "";
  unlock();
  poll();
});

$("#change-key").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  lock("Enter a promptd API key.");
});

// --- live: follow /readyz ----------------------------------------------------------

async function poll() {
  if (state.locked) return;
  let ready;
  try {
    ready = await getJSON("/readyz");
  } catch (error) {
    if (!(error instanceof NeedsKey)) $("#status").textContent = `promptd unreachable (${error.message})`;
    return;
  }
  $("#change-key").hidden = !sessionStorage.getItem(KEY_STORAGE);
  $("#status").textContent =
    `generation ${ready.generation} · ${ready.prompts} prompts · loaded ${timeText(ready.loaded_at)}`;
  const failure = $("#reload-error");
  const problems = ready.last_reload_error;
  failure.hidden = !problems;
  failure.textContent = problems
    ? `Last reload failed (still serving generation ${ready.generation}): ${[].concat(problems).join("; ")}`
    : "";
  if (ready.generation !== state.generation) {
    state.generation = ready.generation;
    await show();
  }
}

function startPolling() {
  poll();
  setInterval(poll, POLL_MS);
}

// --- routing ------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/prompt\/(.+)$/);
  return match ? { page: "prompt", id: decodeURIComponent(match[1]) } : { page: "catalog" };
}

async function show() {
  if (state.locked) return;
  const where = route();
  try {
    if (where.page === "prompt") await showPrompt(where.id);
    else await showCatalog();
  } catch (error) {
    if (error instanceof NeedsKey) return;
    view().replaceChildren(el("p", { class: "error", id: "page-error", text: error.message }));
  }
}

window.addEventListener("hashchange", () => {
  state.prompt = null;
  show();
});

// --- catalog --------------------------------------------------------------------------

function environmentText(name, target) {
  if (typeof target === "number") return `${name} → v${target}`;
  const total = Object.values(target).reduce((a, b) => a + b, 0) || 1;
  const shares = Object.entries(target)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([version, weight]) => `v${version} ${Math.round((weight / total) * 1000) / 10}%`);
  return `${name}: ${shares.join(" · ")}`;
}

function environmentChips(environments) {
  return Object.keys(environments)
    .sort()
    .map((name) =>
      el("span", {
        class: typeof environments[name] === "number" ? "chip" : "chip rollout",
        text: environmentText(name, environments[name]),
      }),
    );
}

async function showCatalog() {
  const data = await getJSON("/v1/prompts");
  state.catalog = data.data;
  const previous = $("#filter");
  const filterText = previous ? previous.value : "";
  const rows = state.catalog.map((prompt) =>
    el(
      "tr",
      { dataset: { promptId: prompt.id } },
      el("td", {}, el("a", { href: `#/prompt/${encodeURIComponent(prompt.id)}`, class: "prompt-link", text: prompt.id })),
      el("td", { text: prompt.description || "" }),
      el("td", { text: prompt.model || "-" }),
      el("td", { class: "num", text: String(prompt.versions.length) }),
      el("td", { class: "num", text: `v${prompt.latest}` }),
      el("td", {}, environmentChips(prompt.environments)),
      el("td", { class: "time", text: timeText(prompt.updated_at) }),
      el("td", { class: "file", title: prompt.source, text: shortPath(prompt.source) }),
    ),
  );
  const filter = el("input", {
    id: "filter",
    type: "search",
    placeholder: "Filter by id, description, model, alias or file",
    "aria-label": "Filter prompts",
    oninput: applyFilter,
  });
  filter.value = filterText;
  view().replaceChildren(
    el("h1", { text: "Prompts" }),
    el("div", { class: "toolbar" }, filter, el("span", { id: "filter-count" })),
    el(
      "table",
      { id: "catalog" },
      el(
        "thead",
        {},
        el("tr", {}, ["Prompt", "Description", "Model", "Versions", "Latest", "Environments", "Updated", "File"].map((h) => el("th", { text: h }))),
      ),
      el("tbody", {}, rows),
    ),
  );
  applyFilter();
}

function applyFilter() {
  const needle = $("#filter").value.trim().toLowerCase();
  let shown = 0;
  for (const row of document.querySelectorAll("#catalog tbody tr")) {
    const prompt = state.catalog.find((p) => p.id === row.dataset.promptId);
    const haystack = [prompt.id, prompt.description, prompt.model, prompt.source, ...(prompt.aliases || [])]
      .filter(Boolean)
      .join("\n")
      .toLowerCase();
    row.hidden = needle !== "" && !haystack.includes(needle);
    if (!row.hidden) shown += 1;
  }
  $("#filter-count").textContent = `${shown} of ${state.catalog.length} prompts`;
}

// --- a prompt's page -------------------------------------------------------------------------

function pointingAt(prompt, number) {
  return Object.keys(prompt.environments)
    .sort()
    .filter((name) => {
      const target = prompt.environments[name];
      return typeof target === "number" ? target === number : (target[String(number)] || 0) > 0;
    })
    .map((name) => el("span", { class: "chip", text: environmentText(name, prompt.environments[name]) }));
}

function versionOf(prompt, number) {
  return prompt.versions.find((v) => v.version === number);
}

async function showPrompt(id) {
  const kept = keepForm();
  const prompt = await getJSON(`/v1/prompts/${encodeURIComponent(id)}`);
  if (kept && state.prompt && state.prompt.id === prompt.id && state.prompt.hash === prompt.hash) {
    return; // a reload that did not touch this prompt: keep the page as it is (a diff, a Run's answer)
  }
  state.prompt = prompt;
  const newest = [...prompt.versions].sort((a, b) => b.version - a.version);
  if (!versionOf(prompt, state.shownVersion)) state.shownVersion = prompt.default_version;

  const versionRows = newest.map((version) =>
    el(
      "tr",
      { dataset: { version: version.version }, class: version.version === state.shownVersion ? "selected" : null },
      el("td", {}, el("button", { type: "button", class: "show-version", text: `v${version.version}`, onclick: () => showVersion(version.version) })),
      el("td", { text: version.model || "-" }),
      el("td", {}, pointingAt(prompt, version.version)),
      el("td", { class: "hash", text: version.hash }),
    ),
  );
  const versionOptions = (selected) =>
    newest.map((v) => el("option", { value: v.version, text: `v${v.version}`, selected: v.version === selected }));

  view().replaceChildren(
    el("p", {}, el("a", { href: "#/", text: "← all prompts" })),
    el("h1", { id: "prompt-title", text: prompt.id }),
    el("p", { class: "description", text: prompt.description || "" }),
    el("p", { class: "meta" }, "file ", el("code", { text: prompt.source }), ` · updated ${timeText(prompt.updated_at)}`,
      prompt.aliases.length ? ` · aliases ${prompt.aliases.join(", ")}` : ""),
    el("section", {},
      el("h2", { text: "Versions" }),
      el("table", { id: "versions" },
        el("thead", {}, el("tr", {}, ["Version", "Model", "Environments", "Hash"].map((h) => el("th", { text: h })))),
        el("tbody", {}, versionRows)),
      el("div", { id: "version-detail" })),
    el("section", {},
      el("h2", { text: "Compare versions" }),
      el("div", { class: "toolbar" },
        el("label", {}, "from ", el("select", { id: "diff-from" }, versionOptions(newest[Math.min(1, newest.length - 1)].version))),
        el("label", {}, "to ", el("select", { id: "diff-to" }, versionOptions(newest[0].version))),
        el("button", { id: "diff-run", type: "button", text: "Compare", onclick: showDiff })),
      el("pre", { id: "diff", class: "diff" })),
    playground(prompt),
    el("section", {},
      el("h2", { text: "Get code" }),
      el("p", { class: "hint", text: "The current playground choice, against this promptd." }),
      el("h3", { text: "curl" }), el("pre", { id: "code-curl", class: "code" }),
      el("h3", { text: "Python (openai)" }), el("pre", { id: "code-python", class: "code" }),
      el("h3", { text: "JavaScript (openai npm, an ES module)" }), el("pre", { id: "code-js", class: "code" })),
  );
  showVersion(state.shownVersion);
  restoreForm(kept);
  updateCode();
}

function showVersion(number) {
  state.shownVersion = number;
  const version = versionOf(state.prompt, number);
  for (const row of document.querySelectorAll("#versions tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.version) === number);
  }
  const messages = version.messages.map((message) => {
    if (message.placeholder !== undefined) {
      return el("div", { class: "message placeholder" },
        el("span", { class: "role", text: "placeholder" }),
        el("pre", { class: "content", text: `${message.placeholder}: the request's messages go here` }));
    }
    const content = typeof message.content === "string" ? message.content : pretty(message.content);
    return el("div", { class: "message" }, el("span", { class: "role", text: message.role }), el("pre", { class: "content", text: content }));
  });
  const variables = Object.entries(version.variables).map(([name, rule]) =>
    el("tr", {},
      el("td", {}, el("code", { text: name })),
      el("td", { text: rule.type }),
      el("td", { text: rule.required ? "required" : "optional" }),
      el("td", { text: rule.default === undefined ? "" : JSON.stringify(rule.default) }),
      el("td", { text: rule.enum ? rule.enum.map((v) => JSON.stringify(v)).join(", ") : "" }),
      el("td", { text: rule.description || "" })),
  );
  $("#version-detail").replaceChildren(
    el("h3", { id: "shown-version", text: `Version ${number}` }),
    el("p", { class: "meta" }, `model ${version.model || "- (the request chooses)"} · hash `, el("code", { text: version.hash }),
      version.partials.length ? ` · partials ${version.partials.join(", ")}` : ""),
    el("h4", { text: "Messages" }),
    el("div", { id: "messages" }, messages),
    el("h4", { text: "Params" }),
    el("pre", { id: "params", text: pretty(version.params) }),
    el("h4", { text: "Variables" }),
    variables.length
      ? el("table", { id: "variables-table" },
          el("thead", {}, el("tr", {}, ["Name", "Type", "", "Default", "Enum", "Description"].map((h) => el("th", { text: h })))),
          el("tbody", {}, variables))
      : el("p", { id: "variables-table", text: "No variables." }),
  );
}

// --- diff: line level, longest common subsequence ------------------------------------------

function versionLines(version) {
  const shown = { model: version.model, messages: version.messages, params: version.params, variables: version.variables };
  return pretty(sortedKeys(shown)).split("\n");
}

function diffLines(a, b) {
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["+", b[j]]); j++; }
    else { out.push(["-", a[i]]); i++; }
  }
  return out;
}

function showDiff() {
  const from = versionOf(state.prompt, Number($("#diff-from").value));
  const to = versionOf(state.prompt, Number($("#diff-to").value));
  const lines = diffLines(versionLines(from), versionLines(to));
  const kinds = { "+": "added", "-": "removed", " ": "same" };
  const changed = lines.filter(([mark]) => mark !== " ").length;
  $("#diff").replaceChildren(
    el("div", { class: "diff-head", text: `v${from.version} → v${to.version}: ${changed ? `${changed} changed lines` : "identical"}` }),
    ...lines.map(([mark, text]) => el("div", { class: `line ${kinds[mark]}`, text: `${mark} ${text}` })),
  );
}

// --- playground ------------------------------------------------------------------------------

function targetVersion(prompt, choice) {
  if (choice.startsWith("v:")) return versionOf(prompt, Number(choice.slice(2)));
  if (choice.startsWith("e:")) {
    const target = prompt.environments[choice.slice(2)];
    if (typeof target === "number") return versionOf(prompt, target);
    const heaviest = Object.entries(target).sort((a, b) => b[1] - a[1] || Number(b[0]) - Number(a[0]))[0];
    return versionOf(prompt, Number(heaviest[0]));
  }
  return versionOf(prompt, prompt.default_version);
}

function playground(prompt) {
  const options = [el("option", { value: "", text: `default (v${prompt.default_version})` })];
  for (const name of Object.keys(prompt.environments).sort()) {
    options.push(el("option", { value: `e:${name}`, text: `environment ${environmentText(name, prompt.environments[name])}` }));
  }
  for (const v of [...prompt.versions].sort((a, b) => b.version - a.version)) {
    options.push(el("option", { value: `v:${v.version}`, text: `version ${v.version}` }));
  }
  return el("section", { id: "playground" },
    el("h2", { text: "Playground" }),
    el("div", { class: "toolbar" },
      el("label", {}, "Version ", el("select", { id: "target", onchange: () => { variableInputs(); updateCode(); } }, options)),
      el("label", {}, "Model ", el("input", { id: "model", type: "text", placeholder: "the version's model", oninput: updateCode }))),
    el("form", { id: "variables", oninput: updateCode, onchange: updateCode, onsubmit: (e) => e.preventDefault() }),
    el("label", { class: "block" }, "Your message (optional, sent after the prompt's messages)",
      el("textarea", { id: "user-message", rows: 2, oninput: updateCode })),
    el("div", { class: "toolbar" },
      el("button", { id: "render", type: "button", text: "Render", onclick: render }),
      el("button", { id: "run", type: "button", text: "Run", onclick: run }),
      el("span", { id: "run-meta" })),
    el("div", { id: "result-error", class: "error", hidden: true }),
    el("h3", { text: "Upstream body (Render)" }),
    el("pre", { id: "render-output" }),
    el("h3", { text: "Answer (Run)" }),
    el("pre", { id: "run-output" }),
    el("table", { id: "run-headers" }),
  );
}

function variableInputs() {
  const version = targetVersion(state.prompt, $("#target").value);
  $("#model").placeholder = version.model || "required: this version names no model";
  const fields = Object.entries(version.variables).map(([name, rule]) => {
    let input;
    const has = rule.default !== undefined;
    if (rule.enum) {
      input = el("select", { name },
        rule.required && !has ? el("option", { value: "", text: "(choose)" }) : el("option", { value: "", text: "(not set)" }),
        rule.enum.map((value) => el("option", { value: JSON.stringify(value), text: String(value), selected: has && value === rule.default })));
    } else if (rule.type === "boolean") {
      input = el("input", { name, type: "checkbox", checked: rule.default === true });
    } else if (["object", "array", "any"].includes(rule.type)) {
      input = el("textarea", { name, rows: 2, placeholder: "JSON" });
      if (has) input.value = JSON.stringify(rule.default);
    } else {
      const kind = rule.type === "number" || rule.type === "integer" ? "number" : "text";
      input = el("input", { name, type: kind, step: rule.type === "integer" ? "1" : kind === "number" ? "any" : null,
        placeholder: rule.type === "image" || rule.type === "file" ? "https:// or data: URL" : null });
      if (has) input.value = String(rule.default);
    }
    input.id = `var-${name}`;
    return el("div", { class: "variable" },
      el("label", { for: input.id }, el("code", { text: name }), el("span", { class: "type", text: rule.type }),
        el("span", { class: "required", text: rule.required && !has ? "required" : "optional" })),
      input,
      rule.description ? el("span", { class: "hint", text: rule.description }) : null,
      el("span", { class: "var-error error", dataset: { variable: name } }));
  });
  $("#variables").replaceChildren(...(fields.length ? fields : [el("p", { class: "hint", text: "This version has no variables." })]));
}

function keepForm() {
  if (!state.prompt || !$("#variables")) return null; // a different prompt starts afresh
  const values = {};
  for (const input of $("#variables").elements) values[input.name] = input.type === "checkbox" ? input.checked : input.value;
  return { target: $("#target").value, model: $("#model").value, message: $("#user-message").value, values };
}

function restoreForm(kept) {
  if (kept && [...$("#target").options].some((o) => o.value === kept.target)) $("#target").value = kept.target;
  variableInputs();
  if (!kept) return;
  $("#model").value = kept.model;
  $("#user-message").value = kept.message;
  for (const input of $("#variables").elements) {
    if (!(input.name in kept.values)) continue;
    if (input.type === "checkbox") input.checked = kept.values[input.name];
    else input.value = kept.values[input.name];
  }
}

// The request the playground sends (Run) and "Get code" shows: prompt fields, not messages.
function playgroundRequest() {
  const version = targetVersion(state.prompt, $("#target").value);
  const variables = {};
  const problems = [];
  for (const [name, rule] of Object.entries(version.variables)) {
    const input = $("#variables").elements[name];
    if (!input) continue;
    if (input.type === "checkbox") { variables[name] = input.checked; continue; }
    const text = input.value;
    if (text === "") continue;
    if (rule.enum) variables[name] = JSON.parse(text);
    else if (rule.type === "number" || rule.type === "integer") {
      const number = Number(text);
      if (Number.isNaN(number)) problems.push({ variable: name, problem: "not a number" });
      else variables[name] = number;
    } else if (["object", "array", "any"].includes(rule.type)) {
      try { variables[name] = JSON.parse(text); }
      catch { if (rule.type === "any") variables[name] = text; else problems.push({ variable: name, problem: "not valid JSON" }); }
    } else variables[name] = text;
  }
  const fields = { prompt_id: state.prompt.id };
  const choice = $("#target").value;
  if (choice.startsWith("v:")) fields.prompt_version = Number(choice.slice(2));
  if (choice.startsWith("e:")) fields.environment = choice.slice(2);
  fields.prompt_variables = variables;
  const message = $("#user-message").value;
  const messages = message ? [{ role: "user", content: message }] : [];
  const model = $("#model").value.trim() || null;
  return { version, fields, messages, model, problems };
}

function clearResult() {
  $("#result-error").hidden = true;
  $("#result-error").replaceChildren();
  for (const span of document.querySelectorAll(".var-error")) span.textContent = "";
  for (const input of $("#variables").elements) input.removeAttribute("aria-invalid");
}

function showError(error) {
  const box = $("#result-error");
  box.hidden = false;
  box.replaceChildren(el("strong", { text: error.code ? `${error.code}: ` : "" }), error.message);
  for (const detail of error.details || []) {
    const problem = `${detail.problem}${detail.expected ? ` (expected ${detail.expected})` : ""}`;
    const span = document.querySelector(`.var-error[data-variable="${CSS.escape(detail.variable)}"]`);
    if (span) {
      span.textContent = problem;
      const input = $("#variables").elements[detail.variable];
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      box.append(el("div", { class: "detail", text: `${detail.variable}: ${problem}` }));
    }
  }
}

function localProblems(problems) {
  if (!problems.length) return false;
  showError({ code: "invalid_variables", message: "some values cannot be sent as their type", details: problems });
  return true;
}

async function render() {
  clearResult();
  const request = playgroundRequest();
  if (localProblems(request.problems)) return;
  const body = { variables: request.fields.prompt_variables, messages: request.messages };
  if (request.fields.prompt_version) body.version = request.fields.prompt_version;
  if (request.fields.environment) body.environment = request.fields.environment;
  if (request.model) body.model = request.model;
  $("#render-output").textContent = "";
  try {
    const answer = await getJSON(`/v1/prompts/${encodeURIComponent(state.prompt.id)}/render`, { method: "POST", json: body });
    $("#run-meta").textContent =
      `rendered version ${answer.version}${answer.environment ? ` (environment ${answer.environment})` : ""} for upstream ${answer.upstream || "-"}; nothing was sent`;
    $("#render-output").textContent = pretty(answer.body);
  } catch (error) {
    if (!(error instanceof NeedsKey)) showError(error);
  }
}

async function run() {
  clearResult();
  const request = playgroundRequest();
  if (localProblems(request.problems)) return;
  const body = { ...(request.model ? { model: request.model } : {}), messages: request.messages, stream: true, ...request.fields };
  const output = $("#run-output");
  output.textContent = "";
  $("#run-headers").replaceChildren();
  $("#run-meta").textContent = "running…";
  const started = performance.now();
  let firstToken = null;
  try {
    const response = await call("/v1/chat/completions", { method: "POST", json: body });
    const shown = [...response.headers].filter(([name]) => name.startsWith("x-promptd-") || name === "x-request-id");
    $("#run-headers").replaceChildren(...shown.sort().map(([name, value]) => el("tr", {}, el("th", { text: name }), el("td", { text: value }))));
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new ApiError(response.status, data);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new ApiError(500, chunk);
          const text = chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content;
          if (text) {
            if (firstToken === null) firstToken = performance.now() - started;
            output.textContent += text;
          }
        }
      }
    }
    const total = performance.now() - started;
    $("#run-meta").textContent =
      `status ${response.status} · first token after ${firstToken === null ? "-" : `${firstToken.toFixed(1)} ms`} · done after ${total.toFixed(1)} ms`;
  } catch (error) {
    if (error instanceof NeedsKey) return;
    $("#run-meta").textContent = "failed";
    showError(error);
  }
}

// --- get code -------------------------------------------------------------------------------------

function pyLiteral(value, indent = "") {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value)) return `[${value.map((v) => pyLiteral(v, indent)).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v, indent)}`).join(", ")}}`;
  }
  return JSON.stringify(value);
}

function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function updateCode() {
  if (!$("#code-curl") || !state.prompt) return;
  const request = playgroundRequest();
  const origin = location.origin;
  const keyed = Boolean(sessionStorage.getItem(KEY_STORAGE));
  const model = request.model || request.version.model || "MODEL";
  const body = { model, messages: request.messages, ...request.fields };
  $("#code-curl").textContent = [
    `curl -s ${origin}/v1/chat/completions \\`,
    `  -H 'Content-Type: application/json' \\`,
    ...(keyed ? [`  -H "Authorization: Bearer $PROMPTD_API_KEY" \\`] : []),
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join("\n");
  $("#code-python").textContent = [
    ...(keyed ? ["import os", ""] : []),
    "import openai",
    "",
    `client = openai.OpenAI(base_url=${JSON.stringify(`${origin}/v1`)}, api_key=${keyed ? 'os.environ["PROMPTD_API_KEY"]' : '"unused"'})`,
    "answer = client.chat.completions.create(",
    `    model=${JSON.stringify(model)},`,
    `    messages=${pyLiteral(request.messages)},`,
    `    extra_body=${pyLiteral(request.fields)},`,
    ")",
    "print(answer.choices[0].message.content)",
  ].join("\n");
  const fieldLines = Object.entries(request.fields).map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`);
  $("#code-js").textContent = [
    'import OpenAI from "openai";',
    "",
    `const client = new OpenAI({ baseURL: ${JSON.stringify(`${origin}/v1`)}, apiKey: ${keyed ? "process.env.PROMPTD_API_KEY" : '"unused"'} });`,
    "const answer = await client.chat.completions.create({",
    `  model: ${JSON.stringify(model)},`,
    `  messages: ${JSON.stringify(request.messages)},`,
    ...fieldLines,
    "});",
    "console.log(answer.choices[0].message.content);",
  ].join("\n");
}

startPolling();
