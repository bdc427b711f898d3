// The definition form of a user's own problem (/problems/new/). As the user types, the definition
// is checked by the server (POST /api/problems/_check/, debounced; the reply of an older request
// is dropped), which answers with the formula as parsed and its gradient (LaTeX), or the errors by
// field (a 200 with valid false): an expression error names its position, marked under the text. Saving posts the same JSON
// to /api/problems/; without JavaScript the form posts to the page and errors come back there.
import { renderMath, setMath } from "./math.js";

const form = document.getElementById("problem-form");
const csrf = () => form.querySelector("input[name=csrfmiddlewaretoken]").value;
const status = document.getElementById("check-status");
const formula = document.getElementById("parsed-formula");
const gradients = document.getElementById("gradient-list");
const gradientDim = document.getElementById("gradient-dim");
const caret = document.getElementById("expression-caret");
const expression = document.getElementById("id_expression");
const alertBox = document.getElementById("form-alert");
const SECTIONS = ["name", "title", "expression", "params", "dim", "bounds", "minimum"];

// a form's number: "" -> absent; a number -> the number; anything else the text (the check names it)
function num(v) {
  const t = String(v ?? "").trim();
  if (!t) return null;
  const n = Number(t);
  return Number.isFinite(n) && /^[-+0-9.eE]+$/.test(t) ? n : t;
}

/** The JSON definition the form stands for (runs/problem_views.py builds the same from a POST). */
export function definition() {
  const v = (name) => form.elements[name]?.value ?? "";
  const data = { title: v("title").trim(), expression: v("expression") };
  if (v("name").trim()) data.name = v("name").trim();
  data.params = [];
  for (const row of form.querySelectorAll(".param-row")) {
    const [name, dflt, lo, hi] = ["param_name", "param_default", "param_min", "param_max"]
      .map((n) => row.querySelector(`[name=${n}]`).value);
    if (!name.trim() && !dflt.trim()) continue;
    const p = { name: name.trim(), default: num(dflt) };
    if (num(lo) !== null) p.min = num(lo);
    if (num(hi) !== null) p.max = num(hi);
    data.params.push(p);
  }
  if (form.elements.dim_kind.value === "any") {
    data.dim = { min: num(v("dim_min")) ?? 1 };
    if (num(v("dim_max")) !== null) data.dim.max = num(v("dim_max"));
    if (num(v("dim_default")) !== null) data.dim.default = num(v("dim_default"));
  } else if (num(v("dim")) !== null) {
    data.dim = num(v("dim"));
  }
  const lo = num(v("bounds_lo")), hi = num(v("bounds_hi"));
  if (lo !== null || hi !== null) data.bounds = [lo, hi];
  const f = num(v("minimum_f"));
  if (f !== null) data.minimum = { f, x: num(v("minimum_x")) };
  return data;
}

function sectionOf(key) {
  return SECTIONS.find((s) => key === s || key.startsWith(s + ".") || key.startsWith(s + "[")) || "other";
}

function showErrors(errors) {
  const by = {};
  for (const [key, words] of Object.entries(errors || {})) {
    const s = sectionOf(key);
    for (const w of words) (by[s] ||= []).push(s === key ? w : `${key}: ${w}`);
  }
  for (const box of form.querySelectorAll("[data-errors]")) {
    const list = by[box.dataset.errors] || [];
    box.replaceChildren(...list.map((w) => Object.assign(document.createElement("div"), { textContent: w })));
    const section = box.closest("[data-section]");
    section?.querySelectorAll("input:not([type=radio]), textarea")
      .forEach((el) => el.classList.toggle("is-invalid", list.length > 0 && !el.closest(".param-row")));
  }
  // mark the position an expression error names, under the text
  const m = /^position (\d+): /.exec((errors?.expression || [])[0] || "");
  if (m) {
    const at = Number(m[1]) - 1;
    const text = expression.value;
    const lineStart = text.lastIndexOf("\n", at - 1) + 1;
    const lineEnd = text.indexOf("\n", at);
    const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
    caret.textContent = `${line}\n${" ".repeat(Math.max(0, at - lineStart))}^`;
    caret.hidden = false;
  } else {
    caret.hidden = true;
  }
  return Object.keys(by).length > 0;
}

function showParsed(p) {
  setMath(formula, p.latex, p.text || p.formula);
  renderMath(formula);
  gradientDim.textContent = p.gradient_dim ? `(shown for n = ${p.gradient_dim}${p.gradient_dim > p.gradient_latex.length ? ", first components" : ""})` : "";
  gradients.replaceChildren(...p.gradient_latex.map((latex, k) => {
    const li = document.createElement("li");
    li.className = "formula mb-1";
    setMath(li, latex, (p.gradient_text || [])[k] || latex);
    renderMath(li);
    return li;
  }));
}

let sent = 0;
let timer = null;

async function check() {
  const mine = ++sent;
  const data = definition();
  if (!data.expression.trim()) {
    status.textContent = "Type an expression to see it parsed.";
    return;
  }
  status.textContent = "Checking…";
  let reply, body;
  try {
    reply = await fetch("/api/problems/_check/", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(data),
    });
    body = await reply.json();
  } catch {
    if (mine === sent) status.textContent = "The check could not reach the server; saving still checks everything.";
    return;
  }
  if (mine !== sent) return; // an older answer
  if (reply.ok && body.valid) {
    const p = body.problem;
    showErrors({});
    showParsed(p);
    status.textContent = `Parsed: ${p.name}, dimension ${p.min_dim === p.max_dim ? p.min_dim : `n ≥ ${p.min_dim}`}.`;
  } else {
    showErrors(body.errors || { other: [body.error] });
    status.textContent = body.error || "The definition is not valid yet.";
  }
}

function later() {
  clearTimeout(timer);
  timer = setTimeout(check, 350);
}

form.addEventListener("input", later);
form.addEventListener("change", later);

document.getElementById("add-param").addEventListener("click", () => {
  const row = document.getElementById("param-row-template").content.firstElementChild.cloneNode(true);
  document.getElementById("param-rows").append(row);
  row.querySelector("input").focus();
});
form.addEventListener("click", (e) => {
  const button = e.target.closest(".remove-param");
  if (!button) return;
  const row = button.closest(".param-row");
  const next = row.nextElementSibling?.querySelector("input") || document.getElementById("add-param");
  row.remove();
  next.focus();
  later();
});

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const reply = await fetch("/api/problems/", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
    body: JSON.stringify(definition()),
  }).catch(() => null);
  if (reply === null) {
    alertBox.textContent = "The server could not be reached: the problem was not saved.";
    alertBox.hidden = false;
    return;
  }
  if (reply.status === 201) {
    window.location.assign("/problems/");
    return;
  }
  const body = await reply.json().catch(() => ({}));
  showErrors(body.errors || {});
  alertBox.textContent = body.error || "The problem was not saved.";
  alertBox.hidden = false;
  form.querySelector(".is-invalid, [data-errors] div")?.closest("[data-section]")?.querySelector("input, textarea")?.focus();
});

if (expression.value.trim()) check();
