// /studies/new/: one problem × method configurations × repeats, POSTed as JSON to /api/studies/.
// The form is built here from the catalogues (json_script blocks) and the prefill the view chose
// (defaults, or ?from=<run>&against=<method>). Validation is the server's alone: whatever is typed
// goes as typed (numbers as numbers, other text as text), and the answer's "errors" are put at
// their fields ("repeats", "bounds[1]", "configs[0].options.maxiter", ...). On 201 the page moves
// to the study.
import { escapeHTML, getJSON, readJSONScript } from "./api.js";
import { fmtCount, fmtX } from "./format.js";
import { defaultBounds } from "./runtext.js";

const problems = readJSONScript("problems-data", []);
const methods = readJSONScript("methods-data", []);
const groups = readJSONScript("method-groups", []);
const prefill = readJSONScript("study-prefill", {});
const config = readJSONScript("page-config", {});
const P = new Map(problems.map((p) => [p.name, p]));
const M = new Map(methods.map((m) => [m.name, m]));
const PALETTE = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#dc3545", "#6c757d"];
const NULL = "null"; // a select's value for a null choice (jac null: scipy's default without a gradient)

const form = document.getElementById("study-form");
const $ = (sel) => document.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const alertBox = $("#sf-alert");
const launchBtn = $("#sf-launch");
const configsBox = $("#sf-configs");

const problem = () => P.get($("#sf-problem").value);
const dimValue = () => parseInt($("#sf-dim").value, 10);
const x0Mode = () => ($("input[name=x0mode]:checked") || {}).value || "random";

// ---- values as typed -> JSON ---------------------------------------------------------------------
/** "" -> undefined (not sent); a number -> the number; "a, b" -> [a, b]; null/none/true/false; else the text. */
function typed(text, { list = false } = {}) {
  const t = String(text ?? "").trim().replace(/−/g, "-");
  if (t === "") return undefined;
  if (/^(null|none)$/i.test(t)) return null;
  if (/^(true|false)$/i.test(t)) return t.toLowerCase() === "true";
  if (list && t.includes(",")) return t.split(",").map((s) => typed(s) ?? s);
  const v = Number(t);
  return t !== "" && Number.isFinite(v) ? v : t;
}

const show = (v) => (v === null || v === undefined ? "" : Array.isArray(v) ? v.join(", ") : typeof v === "number" ? fmtX(v).replace(/−/g, "-") : String(v));

// ---- problem, dimension, bounds, x0 -------------------------------------------------------------
function renderParams(p, values = {}) {
  $("#sf-params").innerHTML = p.params.map((q) => `<div class="col-6" data-param="${escapeHTML(q.name)}">
      <label class="form-label small mb-0" for="sf-param-${escapeHTML(q.name)}">${escapeHTML(q.name)}</label>
      <input type="text" class="form-control form-control-sm" id="sf-param-${escapeHTML(q.name)}" data-name="${escapeHTML(q.name)}"
        value="${escapeHTML(show(values[q.name] ?? ""))}" placeholder="${escapeHTML(show(q.default))}" inputmode="decimal"
        title="${escapeHTML(q.description || "")}">
    </div>`).join("");
}

function boundsRow(i, lo, hi) {
  return `<div class="bounds-row" data-bound="${i}"><div class="input-group input-group-sm">
    <span class="input-group-text coord">x[${i}]</span>
    <input type="text" class="form-control" id="sf-bounds-${i}-lo" value="${escapeHTML(show(lo))}" inputmode="decimal" aria-label="lower bound of x[${i}]">
    <span class="input-group-text">to</span>
    <input type="text" class="form-control" id="sf-bounds-${i}-hi" value="${escapeHTML(show(hi))}" inputmode="decimal" aria-label="upper bound of x[${i}]">
  </div></div>`;
}

function setBounds(pairs) {
  $("#sf-bounds-rows").innerHTML = pairs.map((b, i) => boundsRow(i, b[0], b[1])).join("");
  const same = pairs.length > 1 && pairs.every((b) => b[0] === pairs[0][0] && b[1] === pairs[0][1]);
  $("#sf-bounds-all-lo").value = show(pairs[0] ? pairs[0][0] : "");
  $("#sf-bounds-all-hi").value = show(pairs[0] ? pairs[0][1] : "");
  $("#sf-bounds-same").checked = same;
  syncSame();
}

function syncSame() {
  const same = $("#sf-bounds-same").checked;
  $("#sf-bounds-all").hidden = !same;
  $("#sf-bounds-rows").hidden = same;
}

/** Bounds as typed, one [lo, hi] pair of texts per coordinate. */
function boundsText() {
  const n = dimValue() || 0;
  if ($("#sf-bounds-same").checked) return Array.from({ length: n }, () => [$("#sf-bounds-all-lo").value, $("#sf-bounds-all-hi").value]);
  return Array.from({ length: n }, (_, i) => [($(`#sf-bounds-${i}-lo`) || {}).value ?? "", ($(`#sf-bounds-${i}-hi`) || {}).value ?? ""]);
}

/** A quarter of the way into each bound (the centre is the minimum of many test functions), as the run form does. */
function quarterPoint() {
  return boundsText().map(([lo, hi]) => {
    const a = Number(lo), b = Number(hi);
    return Number.isFinite(a) && Number.isFinite(b) && lo !== "" && hi !== "" ? Number((a + 0.25 * (b - a)).toPrecision(4)) : 0;
  });
}

function setX0Cells(values) {
  $("#sf-x0-cells").innerHTML = values.map((v, i) => `<div class="col-6 col-sm-4" data-x0="${i}"><div class="input-group input-group-sm">
    <span class="input-group-text coord">x[${i}]</span>
    <input type="text" class="form-control" id="sf-x0-${i}" value="${escapeHTML(show(v))}" inputmode="decimal" aria-label="x0[${i}]">
  </div></div>`).join("");
}

function syncX0Mode() {
  const mode = x0Mode();
  $("#sf-x0-random-row").hidden = mode !== "random";
  $("#sf-x0-cells").hidden = mode !== "fixed";
  if (mode === "fixed" && !$$("#sf-x0-cells input").length) setX0Cells(quarterPoint());
  $("#sf-x0-help").textContent = {
    random: "Repeat r starts at the r-th point drawn uniformly inside the bounds, for every configuration that takes a start (DE's population is its own start).",
    fixed: "Every repeat starts here: then only the seeds make repeats differ.",
    none: "Methods that need a start (L-BFGS-B, BFGS, Nelder-Mead, …) are then refused; DE, SHGO, DIRECT need none.",
  }[mode];
}

function syncDimHelp(p) {
  const dim = $("#sf-dim");
  const max = Math.min(p.max_dim || config.max_dim || 200, config.max_dim || 200);
  dim.min = String(p.min_dim);
  dim.max = String(max);
  dim.readOnly = p.max_dim === p.min_dim;
  $("#sf-dim-help").textContent = p.max_dim === p.min_dim ? `fixed at ${p.min_dim}` : `${p.min_dim} to ${max}`;
}

function onProblemChange() {
  const p = problem();
  renderParams(p);
  $("#sf-formula").textContent = p.formula;
  syncDimHelp(p);
  $("#sf-dim").value = String(p.default_dim);
  setBounds(defaultBounds(p, p.default_dim));
  if (x0Mode() === "fixed") setX0Cells(quarterPoint());
  for (const card of cards()) renderOptions(card, readOptions(card));
  refreshMinimum();
  clearErrors();
}

function onDimChange() {
  const p = problem(), n = dimValue();
  if (!Number.isInteger(n) || n < p.min_dim || n > (p.max_dim || config.max_dim || 200)) return; // the server says why
  const old = boundsText(), defaults = defaultBounds(p, n), same = $("#sf-bounds-same").checked;
  setBounds(defaults.map((d, i) => old[i] || (old.length ? old[old.length - 1] : d)));
  if (same && n > 1) { $("#sf-bounds-same").checked = true; syncSame(); }
  if (x0Mode() === "fixed") {
    const x0 = $$("#sf-x0-cells input").map((el) => el.value), fill = quarterPoint();
    setX0Cells(Array.from({ length: n }, (_, i) => (i < x0.length ? x0[i] : fill[i])));
  }
  refreshMinimum();
}

let minimumToken = 0;
/** f* for these coefficients and this dimension: whether the study will measure targets. */
async function refreshMinimum() {
  const p = problem(), token = ++minimumToken;
  const params = {};
  for (const el of $$("#sf-params input")) { const v = typed(el.value); if (v !== undefined) params[el.dataset.name] = v; }
  const q = new URLSearchParams({ problem: p.name, dim: String(dimValue() || p.default_dim), params: JSON.stringify(params) });
  let known = p.known_minimum;
  try { known = (await getJSON(`/runs/new/known-minimum/?${q}`)).known_minimum; } catch { /* keep the catalogue's */ }
  if (token !== minimumToken) return;
  $("#sf-minimum").textContent = known
    ? `f* = ${fmtX(known.f)}: the study measures f − f*, with success rates and ERT for targets 10⁻¹ … 10⁻⁸`
    : "unknown for these coefficients: the study compares best f, without targets";
}

// ---- configurations ----------------------------------------------------------------------------
const cards = () => $$(".study-config", configsBox);
let uid = 0;

function methodSelect(id, chosen) {
  const optgroups = groups.map((g) => `<optgroup label="${escapeHTML(g.title)}">${g.methods.map((name) => {
    const m = M.get(name);
    return `<option value="${escapeHTML(name)}"${name === chosen ? " selected" : ""}>${escapeHTML(m.short || m.title)} — ${escapeHTML(m.title)}</option>`;
  }).join("")}</optgroup>`).join("");
  return `<select class="form-select form-select-sm" id="${id}" data-part="method">${optgroups}</select>`;
}

function seedOptions(m) { return m.options.filter((o) => o.type === "seed").map((o) => o.name); }

/** The default a jac / hess select stands for, as the validator picks it (runs/optim/spec.py). */
function choiceDefault(o, p) {
  const has = (c) => o.choices.includes(c);
  if (o.type === "jac") return p.has_gradient && has("analytic") ? "analytic" : has(null) ? null : o.choices[0];
  if (o.type === "hess") return has("analytic") && p.has_hessian ? "analytic" : [null, "bfgs", "2-point"].find(has) ?? "analytic";
  return o.default;
}

function optionField(card, o, value) {
  const p = problem();
  const id = `sf-c${card.dataset.uid}-${o.name}`;
  const help = o.description ? ` title="${escapeHTML(o.description)}"` : "";
  let input;
  if (o.type === "bool" || o.type === "choice" || o.type === "jac" || o.type === "hess") {
    const choices = o.type === "bool" ? [true, false] : o.choices;
    const labels = o.labels || choices.map((c) => (c === null ? "none" : String(c)));
    const def = o.type === "jac" || o.type === "hess" ? choiceDefault(o, p) : o.default;
    const defLabel = labels[choices.indexOf(def)] ?? String(def);
    const cur = value === undefined ? "" : value === null ? NULL : String(value);
    input = `<select class="form-select form-select-sm" id="${id}" data-opt-input${help}>
      <option value="">default (${escapeHTML(defLabel)})</option>
      ${choices.map((c, i) => {
        const v = c === null ? NULL : String(c);
        const off = (c === "analytic" && ((o.type === "jac" && !p.has_gradient) || (o.type === "hess" && !p.has_hessian)))
          || (c === "cs" && !p.complex_step);
        return `<option value="${escapeHTML(v)}"${v === cur ? " selected" : ""}${off ? " disabled" : ""}>${escapeHTML(labels[i])}</option>`;
      }).join("")}</select>`;
  } else {
    const placeholder = o.default === null || o.default === undefined ? "scipy's default" : show(o.default);
    input = `<input type="text" class="form-control form-control-sm" id="${id}" data-opt-input value="${escapeHTML(show(value))}"
      placeholder="${escapeHTML(placeholder)}" inputmode="decimal" spellcheck="false"${help}>`;
  }
  return `<div class="col-6 col-md-4 col-xl-3" data-opt="${escapeHTML(o.name)}" data-type="${escapeHTML(o.type)}">
    <label class="form-label small mb-0 text-truncate d-block" for="${id}"${help}>${escapeHTML(o.name)}</label>${input}</div>`;
}

/** Options as typed in a card: name -> JSON value (empty fields left out). */
function readOptions(card) {
  const out = {};
  for (const cell of $$("[data-opt]", card)) {
    const el = cell.querySelector("[data-opt-input]");
    if (!el || el.value === "") continue;
    if (el.tagName === "SELECT") {
      const v = el.value;
      out[cell.dataset.opt] = v === NULL ? null : v === "true" ? true : v === "false" ? false : v;
    } else {
      const v = typed(el.value, { list: cell.dataset.type === "mutation" });
      if (v !== undefined) out[cell.dataset.opt] = v;
    }
  }
  const rng = card.querySelector("[data-part=seedto]");
  if (rng && rng.value === "rng") out.rng = 0; // any seed: the study gives repeat r its own through rng=
  return out;
}

const primaryOf = (m) => (config.primary_options || {})[m.name] || m.options.filter((o) => o.type !== "seed").slice(0, 4).map((o) => o.name);

function renderOptions(card, values = {}) {
  const m = M.get(card.querySelector("[data-part=method]").value);
  const shownOpts = m.options.filter((o) => o.type !== "seed");
  const primary = new Set(primaryOf(m));
  const head = shownOpts.filter((o) => primary.has(o.name)), rest = shownOpts.filter((o) => !primary.has(o.name));
  const seeds = seedOptions(m);
  const moreOpen = rest.some((o) => values[o.name] !== undefined);
  const notes = [];
  if (seeds.length) notes.push(`Repeat r is seeded with the study's seed r (scipy's ${seeds.length > 1 ? "seed= or rng=" : `${seeds[0]}=`}).`);
  else notes.push("Deterministic: its repeats differ only by their start.");
  if (!m.takes_bounds) notes.push("Takes no bounds, as in scipy.");
  if (!m.takes_x0) notes.push("Takes no starting point.");
  card.querySelector("[data-part=options]").innerHTML = `
    <p class="small text-body-secondary mb-1 config-notes">${escapeHTML(notes.join(" "))}</p>
    ${seeds.length > 1 ? `<div class="mb-2 d-flex align-items-center gap-2 small">
      <label for="sf-c${card.dataset.uid}-seedto" class="mb-0">seeds go to</label>
      <select class="form-select form-select-sm w-auto" id="sf-c${card.dataset.uid}-seedto" data-part="seedto">
        <option value="seed"${values.rng === undefined || values.rng === null ? " selected" : ""}>seed= (legacy RandomState)</option>
        <option value="rng"${values.rng !== undefined && values.rng !== null ? " selected" : ""}>rng= (numpy Generator)</option>
      </select></div>` : ""}
    <div class="row g-2">${head.map((o) => optionField(card, o, values[o.name])).join("")}</div>
    ${rest.length ? `<details class="mt-2 more-options"${moreOpen ? " open" : ""}><summary class="small">More options (${rest.length})</summary>
      <div class="row g-2 mt-0">${rest.map((o) => optionField(card, o, values[o.name])).join("")}</div></details>` : ""}
    ${card.dataset.stop ? `<p class="small mb-0 mt-2">Stopping rules kept from the run: <code>${escapeHTML(card.dataset.stop)}</code></p>` : ""}`;
}

function addConfig(c = { method: "de", options: {}, label: "" }, { focus = false } = {}) {
  const card = document.createElement("div");
  card.className = "card study-config mb-2";
  card.dataset.uid = String(++uid);
  if (c.stop) card.dataset.stop = JSON.stringify(c.stop);
  const id = `sf-c${card.dataset.uid}`;
  card.innerHTML = `<div class="card-header py-1 d-flex align-items-center gap-2">
      <i class="config-swatch" aria-hidden="true"></i><h3 class="h6 mb-0 config-title"></h3>
      <button type="button" class="btn btn-sm btn-outline-danger ms-auto py-0" data-part="remove">Remove</button>
    </div>
    <div class="card-body py-2" data-part="body">
      <div class="row g-2 mb-2">
        <div class="col-sm-7" data-part="method-field">
          <label class="form-label small mb-0" for="${id}-method">Method</label>${methodSelect(`${id}-method`, c.method)}
        </div>
        <div class="col-sm-5" data-part="label-field">
          <label class="form-label small mb-0" for="${id}-label">Label</label>
          <input type="text" class="form-control form-control-sm" id="${id}-label" data-part="label" maxlength="200" value="${escapeHTML(c.label || "")}">
        </div>
      </div>
      <div data-part="options"></div>
    </div>`;
  configsBox.append(card);
  const select = card.querySelector("[data-part=method]");
  select.addEventListener("change", () => { renderOptions(card); syncTitles(); clearErrors(card); });
  card.querySelector("[data-part=remove]").addEventListener("click", () => {
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    syncTitles();
    const target = next && next.querySelector("[data-part=remove]");
    (target || $("#sf-add-config")).focus();
  });
  renderOptions(card, c.options || {});
  syncTitles();
  if (focus) select.focus();
  return card;
}

/** Titles, colours (the study page's), placeholders, remove buttons and the run count follow the cards. */
function syncTitles() {
  const all = cards();
  all.forEach((card, i) => {
    const m = M.get(card.querySelector("[data-part=method]").value);
    card.querySelector(".config-title").textContent = `Configuration ${i + 1}`;
    card.querySelector(".config-swatch").style.setProperty("--swatch", PALETTE[i % PALETTE.length]);
    card.querySelector("[data-part=label]").placeholder = m.short || m.title;
    const rm = card.querySelector("[data-part=remove]");
    rm.disabled = all.length === 1;
    rm.setAttribute("aria-label", `Remove configuration ${i + 1}`);
  });
  const cap = config.max_configs || 12;
  $("#sf-add-config").disabled = all.length >= cap;
  $("#sf-config-cap").textContent = all.length >= cap ? `at most ${cap} configurations in a study` : "";
  syncCount();
}

function syncCount() {
  const n = cards().length, r = parseInt($("#sf-repeats").value, 10), cap = config.max_runs || 200;
  const el = $("#sf-count");
  if (!Number.isInteger(r) || r < 1) { el.textContent = `${fmtCount(n)} configuration${n === 1 ? "" : "s"} × ? repeats`; el.className = "small"; return; }
  const total = n * r;
  el.textContent = `${fmtCount(n)} configuration${n === 1 ? "" : "s"} × ${fmtCount(r)} repeat${r === 1 ? "" : "s"} = ${fmtCount(total)} run${total === 1 ? "" : "s"}`
    + (total > cap ? ` — more than the ${fmtCount(cap)} a study may make` : ` (a study makes at most ${fmtCount(cap)})`);
  el.className = total > cap ? "small text-danger fw-semibold" : "small";
}

// ---- the study spec, the launch and the answer's errors ------------------------------------------
function spec() {
  const out = { problem: problem().name, params: {}, dim: typed($("#sf-dim").value) };
  for (const el of $$("#sf-params input")) { const v = typed(el.value); if (v !== undefined) out.params[el.dataset.name] = v; }
  out.bounds = boundsText().map(([lo, hi]) => [typed(lo) ?? null, typed(hi) ?? null]);
  const mode = x0Mode();
  if (mode === "random") {
    out.x0 = "random";
    const seed = typed($("#sf-x0-seed").value);
    if (seed !== undefined) out.x0_seed = seed;
  } else if (mode === "fixed") {
    out.x0 = $$("#sf-x0-cells input").map((el) => typed(el.value) ?? null);
  } else {
    out.x0 = null;
  }
  out.repeats = typed($("#sf-repeats").value) ?? 1;
  const seeds = $("#sf-seeds").value.trim();
  if (seeds) out.seeds = seeds.split(/[\s,;]+/).filter(Boolean).map((s) => typed(s));
  const label = $("#sf-label").value.trim();
  if (label) out.label = label;
  out.configs = cards().map((card) => {
    const c = { method: card.querySelector("[data-part=method]").value, options: readOptions(card) };
    const l = card.querySelector("[data-part=label]").value.trim();
    if (l) c.label = l;
    if (card.dataset.stop) c.stop = JSON.parse(card.dataset.stop);
    return c;
  });
  return out;
}

function clearErrors(root = form) {
  for (const el of $$(".is-invalid", root)) el.classList.remove("is-invalid");
  for (const el of $$(".field-error", root)) el.remove();
  if (root === form) { alertBox.hidden = true; alertBox.textContent = ""; }
}

/** The element an error key belongs to, and the inputs to mark (null: no field; the alert says it). */
function fieldFor(key) {
  let m = /^configs\[(\d+)\](?:\.(.*))?$/.exec(key);
  if (m) {
    const card = cards()[Number(m[1])];
    if (!card) return { box: $("[data-field=configs]") };
    const rest = m[2] || "";
    const opt = /^options\.([^.[\]]+)/.exec(rest);
    if (opt) {
      const cell = card.querySelector(`[data-opt="${CSS.escape(opt[1])}"]`);
      if (cell) { const d = cell.closest("details"); if (d) d.open = true; return { box: cell }; }
      const seedto = card.querySelector("[data-part=seedto]");
      return { box: seedto ? seedto.parentElement : card.querySelector("[data-part=options]") };
    }
    if (rest === "method") return { box: card.querySelector("[data-part=method-field]") };
    if (rest === "label") return { box: card.querySelector("[data-part=label-field]") };
    return { box: card.querySelector("[data-part=body]") };
  }
  if ((m = /^bounds\[(\d+)\]/.exec(key))) {
    if ($("#sf-bounds-same").checked) return { box: $("#sf-bounds-all") };
    return { box: $(`[data-bound="${m[1]}"]`) || $("#sf-bounds") };
  }
  if ((m = /^x0\[(\d+)\]/.exec(key))) return { box: $(`[data-x0="${m[1]}"]`) || $("#sf-x0") };
  if ((m = /^params\.([^.[\]]+)/.exec(key))) return { box: $(`[data-param="${CSS.escape(m[1])}"]`) || $("#sf-params") };
  if ((m = /^seeds(\[\d+\])?$/.exec(key))) return { box: $("[data-field=seeds]") };
  const head = key.split(/[.[]/)[0];
  const box = $(`[data-field="${CSS.escape(key)}"]`) || $(`[data-field="${CSS.escape(head)}"]`);
  return box && box !== form ? { box } : null;
}

function showErrors(errors, message) {
  clearErrors();
  const loose = [];
  let first = null;
  for (const [key, msgs] of Object.entries(errors || {})) {
    const where = fieldFor(key);
    if (!where || !where.box) { loose.push(...msgs.map((t) => `${key}: ${t}`)); continue; }
    const inputs = $$("input:not([type=radio]):not([type=checkbox]), select", where.box).filter((el) => !el.closest("[hidden]"));
    for (const el of inputs.length ? inputs : []) el.classList.add("is-invalid");
    for (const text of msgs) {
      const div = document.createElement("div");
      div.className = "invalid-feedback d-block field-error";
      div.dataset.key = key;
      div.textContent = text.charAt(0).toUpperCase() + text.slice(1);
      where.box.append(div);
    }
    if (!first) first = inputs[0] || where.box;
  }
  alertBox.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = "The study was not launched. ";
  alertBox.append(strong, document.createTextNode(loose.length ? loose.join(" ") : message || "Fix the highlighted fields."));
  alertBox.hidden = false;
  if (first) { first.scrollIntoView({ block: "center" }); if (first.focus) first.focus({ preventScroll: true }); }
  else alertBox.focus();
}

function csrfToken() {
  const fromCookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return fromCookie ? decodeURIComponent(fromCookie.slice(10)) : (form.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
}

let sending = false;
async function launch(ev) {
  ev.preventDefault();
  if (sending) return;
  sending = true;
  launchBtn.disabled = true;
  launchBtn.querySelector(".spinner-border").hidden = false;
  try {
    const resp = await fetch("/api/studies/", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(spec()),
    });
    let body = null;
    try { body = await resp.json(); } catch { /* not JSON */ }
    if (resp.status === 201 && body && body.study) { location.assign(body.study.url); return; }
    if (resp.status === 403 && !(body && body.errors)) {
      showErrors({}, "The server refused the request (your session may have ended): reload the page and log in again.");
    } else {
      showErrors((body && body.errors) || {}, (body && (body.error || body.message)) || `The server answered ${resp.status}.`);
    }
  } catch {
    showErrors({}, "Could not reach the server: check the connection and try again.");
  } finally {
    sending = false;
    launchBtn.disabled = false;
    launchBtn.querySelector(".spinner-border").hidden = true;
  }
}

// ---- start ---------------------------------------------------------------------------------------
function init() {
  const p = P.get(prefill.problem) || problems[0];
  $("#sf-problem").value = p.name;
  renderParams(p, prefill.params || {});
  $("#sf-formula").textContent = p.formula;
  syncDimHelp(p);
  const dim = prefill.dim || p.default_dim;
  $("#sf-dim").value = String(dim);
  setBounds(prefill.bounds || defaultBounds(p, dim));
  const mode = prefill.x0 === "random" ? "random" : Array.isArray(prefill.x0) ? "fixed" : prefill.x0 === null ? "none" : "random";
  $(`#sf-x0-${mode}`).checked = true;
  if (Array.isArray(prefill.x0)) setX0Cells(prefill.x0);
  $("#sf-x0-seed").value = prefill.x0_seed ?? "";
  syncX0Mode();
  $("#sf-repeats").value = String(prefill.repeats ?? 20);
  $("#sf-repeats").max = String(config.max_runs || 200);
  if (Array.isArray(prefill.seeds)) $("#sf-seeds").value = prefill.seeds.join(", ");
  $("#sf-label").value = prefill.label || "";
  for (const c of prefill.configs || []) if (M.has(c.method)) addConfig(c);
  if (!cards().length) addConfig();
  refreshMinimum();

  $("#sf-problem").addEventListener("change", onProblemChange);
  $("#sf-dim").addEventListener("change", onDimChange);
  $("#sf-params").addEventListener("change", refreshMinimum);
  $("#sf-bounds-same").addEventListener("change", () => {
    if ($("#sf-bounds-same").checked) {
      const first = boundsText()[0] || ["", ""];
      $("#sf-bounds-all-lo").value = first[0];
      $("#sf-bounds-all-hi").value = first[1];
    } else {
      const pair = [$("#sf-bounds-all-lo").value, $("#sf-bounds-all-hi").value];
      $("#sf-bounds-rows").innerHTML = Array.from({ length: dimValue() || 0 }, (_, i) => boundsRow(i, pair[0], pair[1])).join("");
    }
    syncSame();
  });
  $("#sf-bounds-reset").addEventListener("click", () => setBounds(defaultBounds(problem(), dimValue() || problem().default_dim)));
  for (const r of $$("input[name=x0mode]")) r.addEventListener("change", syncX0Mode);
  $("#sf-repeats").addEventListener("input", syncCount);
  $("#sf-add-config").addEventListener("click", () => {
    const used = new Set(cards().map((c) => c.querySelector("[data-part=method]").value));
    const next = ["de", "lbfgsb", "nelder-mead", "dual_annealing", "bfgs", "powell"].find((m) => !used.has(m)) || "de";
    addConfig({ method: next, options: {}, label: "" }, { focus: true });
  });
  // An edited field loses its error: what it says is about the old value.
  form.addEventListener("input", (ev) => {
    const box = ev.target.closest("[data-opt], [data-param], [data-bound], [data-x0], [data-field], [data-part$=-field]");
    if (!box) return;
    ev.target.classList.remove("is-invalid");
    for (const e of $$(".field-error", box)) e.remove();
  });
  form.addEventListener("submit", launch);
  form.dataset.ready = "1";
}

init();
