// /runs/new/: the server renders the form (prefilled, and usable without JavaScript); this module
// keeps it consistent as problem / dimension / method change, checks the obvious, launches over the
// /ws/runs/ socket, puts the server's spec errors at their fields, and shows the run live below.
import { escapeHTML, getJSON, readJSONScript, requestOnce, RunSocket } from "./api.js";
import { fmtF, fmtX } from "./format.js";
import { setMath } from "./math.js";
import { ACTIVE, defaultBounds, RunView, RunWatch } from "./runview.js";

const problems = readJSONScript("problems-data", []);
const methods = readJSONScript("methods-data", []);
const config = readJSONScript("page-config", {});
const P = new Map(problems.map((p) => [p.name, p]));
const M = new Map(methods.map((m) => [m.name, m]));

const form = document.getElementById("run-form");
const $ = (sel) => form.querySelector(sel);
const $$ = (sel) => [...form.querySelectorAll(sel)];
const alertBox = document.getElementById("form-alert");
const launchBtn = document.getElementById("btn-launch");

const view = new RunView(document.getElementById("run-view"), { problems, methods, tableRows: config.table_rows || 50 });
let sock = null;
let current = null; // the Run on screen
// After an interruption the launch socket is done with the run; its watch socket sees it resume.
const watch = new RunWatch(view, { onRun: (run) => setLaunching(ACTIVE.has(run.status) ? "running" : "idle") });
let awaitingStart = false;
let launched = null; // {spec, label} of the last launch: the form's history entry links it

// ---- reading the form ---------------------------------------------------------------------------
const problemName = () => $("#id_problem").value;
const methodName = () => ($("input[name=method]:checked") || {}).value;
const dimValue = () => parseInt($("#id_dim").value, 10);
const visible = (el) => !el.closest("[hidden]");

// A select's value for a null choice (jac null: scipy's default without a gradient), as runs/forms.py writes it.
const NULL_CHOICE = "null";
const choiceValue = (c) => (c === null ? NULL_CHOICE : String(c));

/** "" -> null, a number -> the number, anything else -> NaN. */
function parseNum(text) {
  const t = String(text ?? "").trim().replace(/^−/, "-");
  if (t === "") return null;
  if (/^[-+]?(inf|infinity)$/i.test(t)) return NaN;
  const v = Number(t);
  return Number.isFinite(v) ? v : NaN;
}

function fmtDefault(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

// ---- keeping the form consistent -------------------------------------------------------------
function boundsRowHTML(i, lo, hi) {
  return `<div class="bounds-row" data-field="bounds[${i}]"><div class="input-group input-group-sm">
    <span class="input-group-text coord">x[${i}]</span>
    <input type="text" class="form-control" name="bounds.${i}.lo" id="bounds-${i}-lo" value="${escapeHTML(fmtDefault(lo))}" placeholder="−∞" inputmode="decimal" autocomplete="off" aria-label="lower bound of x[${i}]">
    <span class="input-group-text">to</span>
    <input type="text" class="form-control" name="bounds.${i}.hi" id="bounds-${i}-hi" value="${escapeHTML(fmtDefault(hi))}" placeholder="∞" inputmode="decimal" autocomplete="off" aria-label="upper bound of x[${i}]">
  </div></div>`;
}

function x0CellHTML(i, v) {
  return `<div class="col-6 col-sm-4 x0-cell" data-field="x0[${i}]"><div class="input-group input-group-sm">
    <span class="input-group-text coord">x[${i}]</span>
    <input type="text" class="form-control" name="x0.${i}" id="x0-${i}" value="${escapeHTML(fmtDefault(v))}" inputmode="decimal" autocomplete="off" aria-label="x0[${i}]">
  </div></div>`;
}

/** Bounds as typed (strings), one pair per coordinate, honouring "same for every coordinate". */
function boundsText() {
  const n = dimValue() || 0;
  if ($("#id_bounds_same").checked) {
    const pair = [$("#bounds-all-lo").value, $("#bounds-all-hi").value];
    return Array.from({ length: n }, () => pair.slice());
  }
  return Array.from({ length: n }, (_, i) => [
    ($(`#bounds-${i}-lo`) || {}).value ?? "", ($(`#bounds-${i}-hi`) || {}).value ?? "",
  ]);
}

function setBounds(pairs) {
  $("#bounds-rows").innerHTML = pairs.map((b, i) => boundsRowHTML(i, b[0], b[1])).join("");
  const same = pairs.length > 1 && pairs.every((b) => String(b[0]) === String(pairs[0][0]) && String(b[1]) === String(pairs[0][1]));
  $("#bounds-all-lo").value = fmtDefault(pairs[0] ? pairs[0][0] : "");
  $("#bounds-all-hi").value = fmtDefault(pairs[0] ? pairs[0][1] : "");
  $("#id_bounds_same").checked = same;
  syncSame();
  lockUnsent();
}

/** Bounds for a method without them (CG, BFGS, …) and x0 for one without it (SHGO, DIRECT) stay as typed, greyed, unsent.
 * Basin-hopping's bounds go to its local minimizer when its switch says so (minimizer_kwargs bounds). */
function lockUnsent() {
  const m = M.get(methodName());
  if (!m) return;
  const local = localBoundsOn(m.name) && !m.takes_bounds;
  for (const el of $$('[data-field="bounds"] input')) el.disabled = !m.takes_bounds && !local;
  for (const el of $$("#x0-cells input")) el.disabled = !m.takes_x0;
  if (m.form_help) $("#bounds-help").textContent = local ? `Given to ${m.title}'s local minimizer (minimizer_kwargs bounds), not to ${m.title} itself.` : m.form_help.bounds;
}

// ---- the global methods' local minimizer (minimizer_kwargs) and shgo's own options ------------
// The markup is runs/forms.py local_fields' and templates/runs/_run_field.html's; the server renders
// the prefilled one, this module the one a change of local method (or problem) asks for.
const MKEY = "options.minimizer_kwargs";
const localBox = (g) => document.getElementById(`local-${g}`);
const localMethod = (g) => { const box = localBox(g); return box ? box.querySelector(".local-method").value : ""; };

function localBoundsOn(g) {
  const el = document.getElementById(`opt-${g}-mk-bounds`);
  return !!(el && el.checked && localMethod(g));
}

function localInfo(g, local) {
  const mk = M.get(g).options.find((o) => o.type === "minimizer_kwargs");
  const info = mk.local_methods.find((x) => x.name === local);
  return { info, entry: M.get(info.catalogue) };
}

/** The field descriptions of local method `local` of global method `g` (jac, hess, then its options). */
function localFields(g, local) {
  const { info, entry } = localInfo(g, local);
  const p = P.get(problemName());
  const out = [];
  const opts = [...entry.options].sort((a, b) => (["jac", "hess"].includes(b.name) ? 1 : 0) - (["jac", "hess"].includes(a.name) ? 1 : 0));
  for (const o of opts) {
    if (o.name === "jac" || o.name === "hess") {
      let choices = [...o.choices], labels = [...(o.labels || o.choices)];
      const required = o.name === "jac" ? choices.length === 1 && choices[0] === "analytic" : info.needs_hess;
      if (!choices.includes(null) && !required) { choices = [null, ...choices]; labels = ["scipy's default (none given)", ...labels]; }
      let def = choices.includes(null) ? null : choices[0];
      if (o.name === "hess" && def === "analytic" && !p.has_hessian && choices.length > 1) def = choices[1];
      const disabled = (c) => (c === "analytic" && !(o.name === "jac" ? p.has_gradient : p.has_hessian)) || (c === "cs" && !p.complex_step);
      out.push({ key: `${MKEY}.${o.name}`, name: `mk.${g}.${o.name}`, id: `opt-${g}-mk-${o.name}`, label: o.name, help: o.description,
        widget: "select", value: choiceValue(def),
        choices: choices.map((c, i) => [choiceValue(c), c === def ? `${labels[i]} (default)` : labels[i], disabled(c)]) });
      continue;
    }
    if (info.options && !info.options.includes(o.name)) continue;
    out.push({ key: `${MKEY}.options.${o.name}`, name: `mk.${g}.o.${o.name}`, id: `opt-${g}-mk-o-${o.name}`, label: o.name,
      help: o.description, widget: o.type === "bool" ? "checkbox" : "text", checked: !!o.default,
      placeholder: fmtDefault(o.default), inputmode: o.type === "int" ? "numeric" : "decimal", value: "" });
  }
  return out;
}

function fieldHTML(f) {
  const e = escapeHTML, help = f.help ? ` aria-describedby="${e(f.id)}-help"` : "";
  const helpDiv = f.help ? `<div class="form-text small mt-0" id="${e(f.id)}-help">${e(f.help)}</div>` : "";
  if (f.widget === "checkbox") {
    return `<div class="run-field pt-md-4" data-field="${e(f.key)}"><input type="hidden" name="${e(f.name)}" value="false">
      <div class="form-check form-switch"><input class="form-check-input" type="checkbox" role="switch" id="${e(f.id)}" name="${e(f.name)}" value="true"${f.checked ? " checked" : ""}${help}>
      <label class="form-check-label" for="${e(f.id)}">${e(f.label)}</label></div>${helpDiv}</div>`;
  }
  const input = f.widget === "select"
    ? `<select class="form-select form-select-sm" id="${e(f.id)}" name="${e(f.name)}"${help}>${f.choices.map(([v, t, off]) =>
      `<option value="${e(v)}"${v === f.value ? " selected" : ""}${off ? " disabled" : ""}>${e(t)}</option>`).join("")}</select>`
    : `<input type="text" class="form-control form-control-sm" id="${e(f.id)}" name="${e(f.name)}" value="${e(f.value)}" placeholder="${e(f.placeholder)}" inputmode="${f.inputmode}" autocomplete="off" spellcheck="false"${help}>`;
  return `<div class="run-field" data-field="${e(f.key)}"><label class="form-label small mb-0" for="${e(f.id)}">${e(f.label)}</label>${input}${helpDiv}</div>`;
}

/** Draw the local method's fields; `keep`: carry over what was typed (a change of problem, not of method). */
function renderLocal(g, keep = false) {
  const box = localBox(g);
  if (!box) return;
  const local = localMethod(g);
  const before = new Map(keep ? [...box.querySelectorAll(".local-options input, .local-options select")].map((el) => [el.id, el]) : []);
  box.querySelector(".local-options").innerHTML = local ? localFields(g, local).map((f) => `<div class="col-6">${fieldHTML(f)}</div>`).join("") : "";
  for (const el of box.querySelectorAll(".local-options input, .local-options select")) {
    const old = before.get(el.id);
    if (!old || old.type === "hidden") continue;
    if (el.type === "checkbox") el.checked = old.checked;
    else if (el.tagName === "SELECT") { const o = [...el.options].find((x) => x.value === old.value && !x.disabled); if (o) el.value = old.value; }
    else el.value = old.value;
  }
  const b = box.querySelector(".local-bounds");
  if (b) b.hidden = !local;
  lockUnsent();
}

/** One scalar option's value from its input: {value} to send, null to leave out (an error goes to `err`). */
function readScalar(el, o, k, err) {
  if (o.type === "bool") return el.checked !== o.default ? { value: el.checked } : null;
  if (o.type === "choice" || o.type === "jac" || o.type === "hess") {
    return { value: el.value === NULL_CHOICE && (o.choices || []).includes(null) ? null : el.value };
  }
  const raw = el.value.trim();
  if (raw === "") return null;
  if (o.type === "mutation" && raw.includes(",")) {
    const pair = raw.split(",").map(parseNum);
    if (pair.length !== 2 || pair.some((v) => v === null || Number.isNaN(v))) { err(k, "give one number, or two separated by a comma (dithering)"); return null; }
    return { value: pair };
  }
  const v = parseNum(raw);
  if (Number.isNaN(v) || v === null) { err(k, "must be a number"); return null; }
  if ((o.type === "int" || o.type === "seed") && !Number.isInteger(v)) { err(k, "must be a whole number"); return null; }
  if (o.min !== undefined && (v < o.min || (o.min_exclusive && v === o.min))) { err(k, `must be ${o.min_exclusive ? "greater than" : "at least"} ${o.min}`); return null; }
  if (o.max !== undefined && (v > o.max || (o.max_exclusive && v === o.max))) { err(k, `must be ${o.max_exclusive ? "less than" : "at most"} ${o.max}`); return null; }
  return { value: v };
}

/** minimizer_kwargs and shgo's options, as the spec takes them (left out: scipy's defaults). */
function collectNested(m, options, err) {
  for (const o of m.options) {
    if (o.type === "minimizer_kwargs") {
      const local = localMethod(m.name);
      if (!local) continue;
      const box = localBox(m.name), mk = { method: local };
      for (const slot of ["jac", "hess"]) {
        const el = box.querySelector(`#opt-${m.name}-mk-${slot}`);
        if (el && el.value !== NULL_CHOICE) mk[slot] = el.value;
      }
      if (localBoundsOn(m.name)) {
        mk.bounds = boundsText().map(([lo, hi]) => [parseNum(lo), parseNum(hi)]);
        if (mk.bounds.some((b) => b.some(Number.isNaN))) err(`${MKEY}.bounds`, "bounds must be numbers");
      }
      const { entry } = localInfo(m.name, local), opts = {};
      for (const lo of entry.options) {
        const el = box.querySelector(`#opt-${m.name}-mk-o-${CSS.escape(lo.name)}`);
        const got = el && readScalar(el, lo, `${MKEY}.options.${lo.name}`, err);
        if (got) opts[lo.name] = got.value;
      }
      if (Object.keys(opts).length) mk.options = opts;
      options.minimizer_kwargs = mk;
    } else if (o.type === "dict") {
      const given = {};
      for (const k of o.keys) {
        const el = form.querySelector(`#opt-${m.name}-${o.name}-${k.name}`);
        const got = el && readScalar(el, k, `options.${o.name}.${k.name}`, err);
        if (got) given[k.name] = got.value;
      }
      if (Object.keys(given).length) options[o.name] = given;
    }
  }
}

function syncSame() {
  const same = $("#id_bounds_same").checked;
  $("#bounds-all").hidden = !same;
  $("#bounds-rows").hidden = same;
}

/** A quarter of the way into each bound (the centre is the minimum of many test functions). */
function defaultX0() {
  return boundsText().map(([lo, hi]) => {
    const a = parseNum(lo), b = parseNum(hi);
    if (a === null && b === null) return 0;
    if (a === null || Number.isNaN(a)) return Number.isFinite(b) ? b - 1 : 0;
    if (b === null || Number.isNaN(b)) return a + 1;
    return Number((a + 0.25 * (b - a)).toPrecision(4));
  });
}

function setX0(values) {
  $("#x0-cells").innerHTML = values.map((v, i) => x0CellHTML(i, v)).join("");
  lockUnsent();
}

function x0Text() {
  return $$("#x0-cells input").map((el) => el.value);
}

function onProblemChange() {
  const p = P.get(problemName());
  for (const g of $$(".params")) g.hidden = g.dataset.problem !== p.name;
  setMath($("#problem-formula"), p.latex, p.formula);
  syncConstraints(p);
  const dim = $("#id_dim");
  dim.min = String(p.min_dim);
  dim.max = String(p.max_dim || 200);
  dim.value = String(p.default_dim);
  dim.readOnly = p.max_dim === p.min_dim;
  $("#dim-help").textContent = p.max_dim === p.min_dim ? `fixed at ${p.min_dim}` : `${p.min_dim} to ${p.max_dim || 200}`;
  // The jac default depends on whether the problem has a gradient; a complex step on whether f takes complex numbers.
  for (const jac of $$('select[name="options.jac"]')) {
    const opt = M.get(jac.id.replace(/^opt-(.+)-jac$/, "$1")).options.find((o) => o.name === "jac");
    const def = p.has_gradient ? "analytic" : NULL_CHOICE;
    for (const o of jac.options) {
      const i = opt.choices.findIndex((c) => choiceValue(c) === o.value);
      const label = opt.labels ? opt.labels[i] : o.value;
      o.textContent = o.value === def ? `${label} (default)` : label;
      o.disabled = (o.value === "analytic" && !p.has_gradient) || (o.value === "cs" && !p.complex_step);
    }
    jac.value = def;
  }
  // The Hessian's default as the validator picks it (runs/optim/spec.py default_hess).
  for (const hess of $$('select[name="options.hess"]')) {
    const opt = M.get(hess.id.replace(/^opt-(.+)-hess$/, "$1")).options.find((o) => o.name === "hess");
    const has = (c) => opt.choices.includes(c);
    const def = choiceValue(has("analytic") && p.has_hessian ? "analytic" : [null, "bfgs", "2-point"].find(has) ?? "analytic");
    for (const o of hess.options) {
      const label = opt.labels[opt.choices.findIndex((c) => choiceValue(c) === o.value)];
      o.textContent = o.value === def ? `${label} (default)` : label;
      o.disabled = (o.value === "analytic" && !p.has_hessian) || (o.value === "cs" && !p.complex_step);
    }
    hess.value = def;
  }
  for (const box of $$(".local-minimizer")) renderLocal(box.dataset.method, true); // which derivatives the problem has
  resetSearchSpace();
  refreshMinimum();
}

function resetSearchSpace() {
  setBounds(defaultBounds(P.get(problemName()), dimValue()));
  setX0(M.get(methodName()).needs_x0 ? defaultX0() : Array(dimValue()).fill(""));
}

function onDimChange() {
  const p = P.get(problemName());
  const n = dimValue();
  if (!Number.isInteger(n) || n < p.min_dim || n > (p.max_dim || 200)) return; // submit reports it
  const old = boundsText();
  const defaults = defaultBounds(p, n);
  const keepSame = $("#id_bounds_same").checked;
  const pairs = defaults.map((d, i) => old[i] || (old.length ? old[old.length - 1] : d));
  setBounds(pairs);
  if (keepSame && n > 1) { $("#id_bounds_same").checked = true; syncSame(); }
  const x0 = x0Text();
  const fill = defaultX0();
  const anyX0 = x0.some((v) => v.trim() !== "");
  setX0(Array.from({ length: n }, (_, i) => (i < x0.length ? x0[i] : anyX0 ? fill[i] : "")));
  refreshMinimum();
}

/** A constrained problem: its constraints under f, and only the methods scipy passes them to. */
function syncConstraints(p) {
  const cons = p.constraints || [];
  $("#problem-constraints").hidden = !cons.length;
  $("#problem-constraint-list").replaceChildren(...cons.map((c) => {
    const li = document.createElement("li");
    li.className = "formula";
    setMath(li, c.latex, c.formula);
    return li;
  }));
  $("#method-constraints-note").hidden = !cons.length;
  for (const input of $$('input[name="method"]')) {
    const ok = !cons.length || M.get(input.value).takes_constraints;
    input.disabled = !ok;
    const label = input.nextElementSibling;
    label.dataset.title ??= label.title;
    label.title = ok ? label.dataset.title : `${label.dataset.title} (cannot take this problem's constraints)`;
  }
  const chosen = $('input[name="method"]:checked');
  if (chosen && chosen.disabled) {
    const first = $$('input[name="method"]').find((i) => !i.disabled);
    if (first) { first.checked = true; onMethodChange(); }
  }
}

function onMethodChange() {
  const m = methodName();
  for (const g of $$(".method-options")) g.hidden = g.dataset.method !== m;
  const method = M.get(m);
  if (method.needs_x0 && x0Text().every((v) => v.trim() === "")) setX0(defaultX0());
  // The catalogue's words (runs/forms.py form_help), in the method's own title.
  $("#x0-help").textContent = method.form_help.x0;
  $("#bounds-help").textContent = method.form_help.bounds;
  lockUnsent();
}

let minimumTimer = null;
function refreshMinimum() {
  clearTimeout(minimumTimer);
  minimumTimer = setTimeout(async () => {
    const p = problemName();
    const params = {};
    for (const q of P.get(p).params) {
      const v = parseNum(($(`#param-${p}-${q.name}`) || {}).value);
      if (v === null || Number.isNaN(v)) continue;
      params[q.name] = v;
    }
    const q = new URLSearchParams({ problem: p, dim: String(dimValue() || ""), params: JSON.stringify(params) });
    const el = $("#problem-minimum");
    try {
      const { known_minimum: k } = await getJSON(`/runs/new/known-minimum/?${q}`);
      if (!k) { el.textContent = "unknown for these coefficients"; return; }
      const x = k.x.length <= 4 ? ` at (${k.x.map(fmtX).join(", ")})` : "";
      el.textContent = `f* = ${fmtF(k.f)}${x}`;
    } catch { el.textContent = "–"; }
  }, 250);
}

// ---- errors at the field ----------------------------------------------------------------------
function clearErrors(scope = form) {
  for (const el of scope.querySelectorAll(".is-invalid")) el.classList.remove("is-invalid");
  for (const el of scope.querySelectorAll(".invalid-feedback")) el.remove();
  if (scope === form) { alertBox.hidden = true; alertBox.innerHTML = ""; }
}

function findField(key) {
  const candidates = [key];
  if (/^bounds\[\d+\]$/.test(key) && $("#id_bounds_same").checked) candidates.unshift("bounds[*]");
  const base = key.replace(/\[\d+\]$/, "");
  if (base !== key && !key.startsWith("bounds") && !key.startsWith("x0")) candidates.push(base);
  for (const k of candidates) {
    // a field inside a closed <details> (More options, Stop early) opens to show its error
    for (const el of $$(`[data-field="${CSS.escape(k)}"]`)) { const d = el.closest("details"); if (d) d.open = true; }
    const el = $$(`[data-field="${CSS.escape(k)}"]`).find(visible);
    if (el) return el;
  }
  return null;
}

function sentence(msg) { return msg ? msg[0].toUpperCase() + msg.slice(1) : msg; }

/** Put errors {key: [messages]} at their fields; keys without a field go to the alert. */
function showErrors(errors, lead = "The run was not started.", extra = []) {
  clearErrors();
  const general = [...extra];
  let first = null;
  const shown = new Map(); // element -> messages already there (bounds[*] collects every row's)
  for (const [key, all] of Object.entries(errors || {})) {
    const el = findField(key);
    if (!el) { general.push(...all.map((m) => `${key}: ${m}`)); continue; }
    const seen = shown.get(el) || new Set();
    shown.set(el, seen);
    const msgs = all.filter((m) => !seen.has(m));
    msgs.forEach((m) => seen.add(m));
    // A field inside "More options" must be visible to be fixed.
    const details = el.closest("details");
    if (details) details.open = true;
    for (const input of el.querySelectorAll("input:not([type=hidden]), select")) {
      if (input.type === "radio") continue;
      input.classList.add("is-invalid");
    }
    const help = [...el.children].find((c) => c.classList.contains("form-text"));
    for (const m of msgs) {
      const div = document.createElement("div");
      div.className = "invalid-feedback d-block";
      div.textContent = sentence(m);
      if (help) el.insertBefore(div, help); else el.appendChild(div);
    }
    if (!first) first = el;
  }
  alertBox.innerHTML = `<strong>${escapeHTML(lead)}</strong> ${first ? "Fix the highlighted fields." : ""}` +
    (general.length ? `<ul class="mb-0 ps-3">${general.map((g) => `<li>${escapeHTML(g)}</li>`).join("")}</ul>` : "");
  alertBox.hidden = false;
  const focus = first && first.querySelector("input:not([type=hidden]), select");
  if (focus) { focus.focus({ preventScroll: true }); first.scrollIntoView({ block: "center", behavior: "smooth" }); }
  else alertBox.scrollIntoView({ block: "center" });
}

// Editing a field clears its own error.
form.addEventListener("input", (e) => {
  const field = e.target.closest("[data-field]");
  if (field && field.querySelector(".is-invalid")) clearErrors(field);
});

// ---- building the spec (and the obvious checks) ---------------------------------------------
function collect() {
  const errors = {};
  const err = (k, m) => (errors[k] = errors[k] || []).push(m);
  const p = P.get(problemName()), m = M.get(methodName());
  const spec = { method: m.name, problem: p.name, params: {} };
  for (const q of p.params) {
    const v = parseNum($(`#param-${p.name}-${q.name}`).value);
    if (v === null) continue;
    if (Number.isNaN(v)) err(`params.${q.name}`, "must be a number");
    else if (v < q.min || v > q.max) err(`params.${q.name}`, `must be between ${q.min} and ${q.max}`);
    else spec.params[q.name] = v;
  }
  const n = Number($("#id_dim").value);
  if (!Number.isInteger(n)) err("dim", "must be a whole number");
  else if (n < p.min_dim || n > (p.max_dim || 200)) err("dim", p.max_dim === p.min_dim ? `${p.title} is ${p.min_dim}-D only` : `must be between ${p.min_dim} and ${p.max_dim || 200}`);
  else spec.dim = n;
  if (spec.dim) {
    const bounds = !m.takes_bounds ? [] : boundsText().map(([lo, hi], i) => {
      const a = parseNum(lo), b = parseNum(hi);
      const k = `bounds[${i}]`;
      if (Number.isNaN(a) || Number.isNaN(b)) err(k, "bounds must be numbers");
      else if (m.needs_bounds && (a === null || b === null)) err(k, `${m.title} needs both a lower and an upper bound`);
      else if (a !== null && b !== null && a > b) err(k, `lower bound ${a} must not be greater than upper bound ${b}`);
      return [a, b];
    });
    if (m.takes_bounds && (m.needs_bounds || bounds.some((b) => b[0] !== null || b[1] !== null))) spec.bounds = bounds;
    const x0 = m.takes_x0 ? x0Text().map(parseNum) : [];
    const given = x0.filter((v) => v !== null).length;
    if (given || m.needs_x0) {
      x0.forEach((v, i) => {
        if (v === null) err(`x0[${i}]`, given ? "give every coordinate (or none, for DE)" : `${m.title} needs a starting point`);
        else if (Number.isNaN(v)) err(`x0[${i}]`, "must be a number");
        else if (spec.bounds && spec.bounds[i]) {
          const [lo, hi] = spec.bounds[i];
          if (m.needs_bounds && ((lo !== null && v < lo) || (hi !== null && v > hi))) err(`x0[${i}]`, "must lie inside the bounds");
        }
      });
      spec.x0 = x0;
    }
  }
  const stop = {};
  for (const el of $$('[data-field="stop"] input')) {
    const raw = el.value.trim();
    if (raw === "") continue;
    const v = parseNum(raw), key = el.name.slice(5); // "stop.f", "stop.stall.steps"
    if (Number.isNaN(v)) { err(el.name, "must be a number"); continue; }
    if (key.startsWith("stall.")) (stop.stall = stop.stall || {})[key.slice(6)] = v;
    else stop[key] = v;
  }
  if (Object.keys(stop).length) spec.stop = stop;
  spec.options = {};
  for (const o of m.options) {
    if (o.type === "minimizer_kwargs" || o.type === "dict") continue; // collectNested
    const el = form.querySelector(`#opt-${m.name}-${o.name}`);
    const got = el && readScalar(el, o, `options.${o.name}`, err);
    if (got) spec.options[o.name] = got.value;
  }
  collectNested(m, spec.options, err);
  return { spec, errors, label: $("#id_label").value.trim() };
}

/** Too many active runs: say so (the server's words) and link to them. */
function showCapReached(message) {
  clearErrors();
  alertBox.innerHTML = `<strong>The run was not started.</strong> ${escapeHTML(message || "")}
    <a class="alert-link d-inline-block" id="active-runs-link" href="/runs/?status=active">See your active runs</a>`;
  alertBox.hidden = false;
  alertBox.scrollIntoView({ block: "center" });
}

// ---- the page's history: the form one entry back from the run it launched ----------------------
// A request line must fit the 8 KB common proxies allow (daphne takes 16 KB). Past that the entry
// keeps its own URL: Back still finds the filled form in this document, only a reload shows defaults.
const MAX_FORM_URL = 8000;

const clonedFrom = new URLSearchParams(location.search).get("from"); // a clone's note stays on
let formEntry = location.href; // the URL of the history entry that shows this form as it is now

/** /runs/new/?spec=…&label=… : a URL whose page is this form, filled as it was launched. */
function formURL({ spec, label }) {
  // No bounds at all is said so: a missing "bounds" would bring the problem's defaults back.
  const q = new URLSearchParams({ spec: JSON.stringify({ ...spec, bounds: spec.bounds ?? null }) });
  if (label) q.set("label", label);
  if (clonedFrom) q.set("from", clonedFrom);
  return `${form.getAttribute("action")}?${q}`;
}

/** The run's own URL in the address bar; Back returns to the form (also after a reload). */
function showLaunchedURL(run) {
  const url = launched ? formURL(launched) : "";
  history.replaceState({ form: true }, "", url && url.length <= MAX_FORM_URL ? url : location.href);
  formEntry = location.href;
  history.pushState({ run: run.id }, "", run.url || `/runs/${run.id}/`);
  document.title = `Run ${run.id} · optsite`;
}

window.addEventListener("popstate", (e) => {
  const runId = e.state && e.state.run;
  if (runId && !(current && current.id === runId)) {
    location.reload(); // an entry kept across a reload of this page: the run's own page serves it
  } else if (runId) {
    document.title = `Run ${runId} · optsite`;
    document.getElementById("run-view").scrollIntoView({ block: "start" });
  } else if (location.href !== formEntry) {
    location.reload(); // an older form entry (an earlier launch from this page): the server fills it
  } else {
    document.title = "New run · optsite";
    form.scrollIntoView({ block: "start" });
  }
});

// ---- launching ------------------------------------------------------------------------------
function setLaunching(state) {
  // state: "idle" | "starting" | "running"
  const spin = launchBtn.querySelector(".spinner-border");
  const label = launchBtn.querySelector(".label");
  spin.hidden = state !== "starting";
  launchBtn.disabled = state !== "idle";
  const status = view.run && view.run.status;
  const going = { queued: "Queued…", paused: "Paused…" }[status] || "Running…";
  label.textContent = state === "starting" ? "Launching…" : state === "running" ? going : current ? "Launch another run" : "Launch run";
  $("#launch-help").innerHTML = state === "running"
    ? "A run is in progress: stop it or wait for it to end to launch another."
    : "<kbd>Ctrl</kbd>+<kbd>Enter</kbd> launches from any field";
}

function launch() {
  const { spec, errors, label } = collect();
  if (Object.keys(errors).length) { showErrors(errors); return; }
  clearErrors();
  if (sock) sock.close();
  watch.close();
  launched = { spec, label };
  awaitingStart = true;
  setLaunching("starting");
  sock = new RunSocket("/ws/runs/", { onMessage: (msg) => onMessage(msg), onState: onSocketState });
  sock.send({ type: "start", spec, label });
  clearTimeout(launch.timer);
  launch.timer = setTimeout(() => {
    if (!awaitingStart) return;
    awaitingStart = false;
    sock.close();
    setLaunching("idle");
    showErrors({}, "The server did not answer in time; the run may not have started. Check the Runs page.");
  }, 20000);
}

function onSocketState(state) {
  if (awaitingStart && state === "reconnecting") {
    // Never re-send "start" blindly: the first one may have been received.
    awaitingStart = false;
    sock.close();
    setLaunching("idle");
    showErrors({}, "Lost the connection to the server while launching. Check the Runs page before trying again.");
    return;
  }
  view.setConnection(state);
}

async function onMessage(msg) {
  switch (msg.type) {
    case "started": {
      awaitingStart = false;
      current = msg.run;
      // Reconnects now go to the run's own socket and ask only for what was missed.
      sock.path = `/ws/runs/${current.id}/`;
      sock.resumeInURL();
      showLaunchedURL(current);
      view.showRun(current, { mode: "live" });
      setLaunching("running");
      break;
    }
    case "steps":
      view.addSteps(msg.steps);
      break;
    case "deleted": // in another tab: the server closes the socket for good
      sock.close();
      sock = null;
      view.showDeleted(msg.message);
      setLaunching("idle");
      break;
    case "run": // after a reconnect to the run's own socket
    case "status":
      view.setRun(msg.run);
      if (ACTIVE.has(msg.run.status)) setLaunching("running");
      break;
    case "finished":
      view.ended(msg.run);
      current = msg.run;
      sock.close();
      sock = null;
      view.setConnection("closed");
      setLaunching("idle");
      if (msg.run.status === "interrupted") watch.follow(msg.run);
      break;
    case "error":
      if (awaitingStart) {
        awaitingStart = false;
        setLaunching("idle");
        if (msg.code === "limit" && msg.errors && msg.errors.runs) { showCapReached(msg.message); break; }
        const lead = msg.code === "limit" ? "The run asks for more than this server allows." : "The run was not started.";
        const fields = msg.errors && Object.keys(msg.errors).length ? msg.errors : {};
        showErrors(fields, lead, Object.keys(fields).length ? [] : [msg.message]);
      } else if (msg.code === "not_found" && current) { // deleted while this socket was away
        sock.close();
        sock = null;
        view.showDeleted();
        setLaunching("idle");
      } else {
        view.showAlert(msg.message || "The server refused that.");
        view.setRun({});
      }
      break;
    default:
  }
}

view.onControl = (action) => { if (sock) sock.send({ type: action }); else watch.control(action); };
view.onCompare = async (spec) => {
  const reply = await requestOnce("/ws/runs/", { type: "start", spec }, ["started"]);
  if (reply.type === "error") throw new Error(reply.message);
  location.href = `/runs/compare/?ids=${view.run.id},${reply.run.id}`;
};

// ---- wiring -------------------------------------------------------------------------------------
$("#id_problem").addEventListener("change", onProblemChange);
$("#id_dim").addEventListener("change", onDimChange);
for (const r of $$("input[name=method]")) r.addEventListener("change", onMethodChange);
$("#id_bounds_same").addEventListener("change", () => {
  const same = $("#id_bounds_same").checked;
  if (same) {
    const first = [($("#bounds-0-lo") || {}).value ?? "", ($("#bounds-0-hi") || {}).value ?? ""];
    $("#bounds-all-lo").value = first[0];
    $("#bounds-all-hi").value = first[1];
  } else {
    const pair = [$("#bounds-all-lo").value, $("#bounds-all-hi").value];
    $("#bounds-rows").innerHTML = Array.from({ length: dimValue() || 0 }, (_, i) => boundsRowHTML(i, pair[0], pair[1])).join("");
  }
  syncSame();
});
$("#x0-fill").addEventListener("click", () => setX0(defaultX0()));
for (const box of $$(".local-minimizer")) {
  box.querySelector(".local-method").addEventListener("change", () => renderLocal(box.dataset.method));
  const b = box.querySelector(".local-bounds input");
  if (b) b.addEventListener("change", lockUnsent);
}
form.addEventListener("input", (e) => { if (e.target.name && e.target.name.startsWith("params.")) refreshMinimum(); });
form.addEventListener("submit", (e) => { e.preventDefault(); if (!launchBtn.disabled) launch(); });
form.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); if (!launchBtn.disabled) launch(); }
});
syncConstraints(P.get(problemName()));
if (!form.querySelector(".is-invalid")) onMethodChange(); // sync the help texts; keeps server-rendered errors
$("#id_dim").readOnly = (() => { const p = P.get(problemName()); return p.max_dim === p.min_dim; })();
