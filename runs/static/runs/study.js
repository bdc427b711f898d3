// /studies/<id>/: one study, live while its runs go.
// - polls /api/studies/<id>/ (statuses, counts, the runs table) and then
//   /api/studies/<id>/summary/?since=<version> (the aggregates; {"unchanged": true} when nothing
//   moved) about once a second while the study is active, and stops once it has ended;
// - draws the convergence bands, the ECDF of evaluations to a target and the fixed-budget
//   distributions with Plotly.react, each only when its data changed, on an animation frame;
// - updates the server-rendered runs table cell by cell (text only when it differs);
// - controls the whole study (POST /api/studies/<id>/<action>/ with the CSRF header).
// Labels reach Plotly through plotText (literal text) and the DOM through textContent.
import { getJSON, readJSONScript } from "./api.js";
import { DASH, fmtCount, fmtF, fmtSeconds, fmtVec } from "./format.js";
import { plotText } from "./plots.js";
import { STATUS_CLASS } from "./runtext.js";

const Plotly = () => window.Plotly;
const PALETTE = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#dc3545", "#6c757d",
  "#0dcaf0", "#8c564b", "#9a9a00", "#1f3a93"];
// Where a gap of 0 (or a rounding error below f*) is drawn on a log axis.
const FLOOR = 1e-16;
const POLL_MS = 1000, HIDDEN_POLL_MS = 5000, MAX_BACKOFF_MS = 15000;
const ENDED = ["finished", "stopped", "failed", "interrupted"];
const AXES = {
  nfev: { title: "function evaluations", hover: (v) => `${fmtCount(v)} evaluations` },
  nit: { title: "iterations", hover: (v) => `iteration ${fmtCount(v)}` },
  elapsed: { title: "wall time (s)", hover: (v) => fmtSeconds(v) },
};
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 };
const OUTCOMES = readJSONScript("outcome-labels", {});

const root = document.getElementById("study");
const initial = readJSONScript("study-data", {});
let study = initial.study;
let summary = initial.summary;
const id = study.id;
const $ = (sel) => document.querySelector(sel);
const $$ = (sel, el = document) => [...el.querySelectorAll(sel)];
const colorOf = (i) => PALETTE[i % PALETTE.length];

const params = new URLSearchParams(location.search);
const state = {
  axis: "nfev", logX: true, minmax: false, target: 3, kind: "box",
  // log y for gaps; for best f (f* unknown) only when every run's best is positive
  logY: summary.measure === "gap" || summary.configs.every((c) => !c.final || c.final.min > 0),
  budgets: parseBudgets(params.get("budgets")), // null: the server's choice (powers of ten within reach)
  pending: null, // a control on its way
};

function parseBudgets(raw) {
  if (!raw) return null;
  const bs = raw.split(",").map((s) => parseInt(s, 10)).filter((b) => Number.isInteger(b) && b > 0);
  return bs.length ? [...new Set(bs)].sort((a, b) => a - b) : null;
}

function rgba(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }

// ---- header, progress, controls --------------------------------------------------------------
function renderHeader() {
  const c = study.counts, total = study.runs.length || 1;
  const badge = $("#study-status");
  setText(badge, study.status);
  badge.className = `badge ${study.status === "ended" ? "text-bg-success" : STATUS_CLASS[study.status] || "text-bg-light"}`;
  root.dataset.status = study.status;
  $("#live-state").classList.toggle("d-none", study.status === "ended");
  for (const part of $$("#study-progress > .progress")) {
    const n = c[part.dataset.part] || 0;
    const pct = `${(100 * n) / total}%`;
    if (part.style.width !== pct) part.style.width = pct;
    part.setAttribute("aria-valuenow", String(n));
    part.setAttribute("aria-valuemin", "0");
    part.setAttribute("aria-valuemax", String(study.runs.length));
    part.title = `${fmtCount(n)} ${part.dataset.part}`;
  }
  const ended = ENDED.reduce((s, k) => s + (c[k] || 0), 0);
  const text = $("#progress-text");
  const words = `${fmtCount(ended)} of ${fmtCount(study.runs.length)} runs ended`;
  if (text.dataset.words !== words) {
    text.dataset.words = words;
    text.replaceChildren();
    const b = document.createElement("strong");
    b.textContent = fmtCount(ended);
    text.append(b, ` of ${fmtCount(study.runs.length)} runs ended`);
  }
  const parts = ["running", "queued", "paused", "finished", "stopped", "failed", "interrupted"]
    .filter((k) => c[k]).map((k) => `${fmtCount(c[k])} ${k}`);
  setText($("#progress-counts"), parts.join(" · "));
  const can = {
    pause: c.queued + c.running > 0,
    resume: c.paused + c.interrupted > 0,
    stop: c.queued + c.running + c.paused > 0,
  };
  for (const [action, ok] of Object.entries(can)) {
    const b = $(`#btn-${action}`);
    b.disabled = !ok || state.pending !== null;
    const word = { pause: "Pause", resume: "Resume", stop: "Stop study" }[action];
    setText(b, state.pending === action ? { pause: "Pausing…", resume: "Resuming…", stop: "Stopping…" }[action] : word);
  }
}

function csrfToken() {
  const c = document.cookie.split("; ").find((s) => s.startsWith("csrftoken="));
  return c ? decodeURIComponent(c.slice(10)) : ($("input[name=csrfmiddlewaretoken]") || {}).value || "";
}

async function control(action) {
  const err = $("#control-error");
  err.hidden = true;
  state.pending = action;
  renderHeader();
  try {
    const resp = await fetch(`/api/studies/${id}/${action}/`, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    let body = null;
    try { body = await resp.json(); } catch { /* not JSON */ }
    if (resp.ok && body && body.study) {
      study = { ...study, ...body.study };
    } else {
      err.textContent = (body && body.error) || (resp.status === 403
        ? "The server refused the request (your session may have ended): reload the page."
        : `The server answered ${resp.status}.`);
      err.hidden = false;
    }
  } catch {
    err.textContent = "Could not reach the server: check the connection and try again.";
    err.hidden = false;
  } finally {
    state.pending = null;
    renderHeader();
    pollSoon(0);
  }
}

// ---- the runs table: cells updated in place ---------------------------------------------------
const rowsById = new Map($$("#runs-table tbody tr").map((tr) => [Number(tr.dataset.runId), {
  tr, status: tr.querySelector(".c-status .badge"), outcome: tr.querySelector(".c-outcome"),
  best: tr.querySelector(".c-best"), gap: tr.querySelector(".c-gap"), nfev: tr.querySelector(".c-nfev"),
  nit: tr.querySelector(".c-nit"), elapsed: tr.querySelector(".c-elapsed"),
}]));

function renderRuns(list) {
  latestRuns = new Map(list.map((r) => [r.id, r]));
  for (const r of list) {
    const row = rowsById.get(r.id);
    if (!row) continue;
    if (row.status.textContent !== r.status) {
      row.status.textContent = r.status;
      row.status.className = `badge ${STATUS_CLASS[r.status] || "text-bg-light"}`;
      row.tr.dataset.status = r.status;
    }
    setText(row.outcome, r.outcome && r.outcome !== r.status ? OUTCOMES[r.outcome] || "" : "");
    setText(row.best, fmtF(r.best_fun));
    setText(row.gap, fmtF(r.gap));
    const waiting = r.status === "queued" && !r.nfev; // not started: nothing counted yet
    setText(row.nfev, waiting ? DASH : fmtCount(r.nfev));
    setText(row.nit, waiting ? DASH : fmtCount(r.nit));
    setText(row.elapsed, waiting ? DASH : fmtSeconds(r.elapsed));
  }
}

// Sorting moves the rows (no new DOM); it applies when a heading is clicked, not on every poll,
// so that rows do not jump while the runs go. Missing values sort last either way.
let latestRuns = new Map();
const sortState = { key: "id", dir: 1 };
function sortRuns(key) {
  sortState.dir = sortState.key === key ? -sortState.dir : 1;
  sortState.key = key;
  const value = (r) => (key === "id" ? r.id : key === "config" ? r.config * 1e6 + r.repeat : r[key]);
  const ids = [...rowsById.keys()].sort((a, b) => {
    const ra = latestRuns.get(a), rb = latestRuns.get(b);
    const va = ra ? value(ra) : null, vb = rb ? value(rb) : null;
    if (va === vb) return a - b;
    if (va === null || va === undefined) return 1;
    if (vb === null || vb === undefined) return -1;
    return (va < vb ? -1 : 1) * sortState.dir;
  });
  const body = $("#runs-table tbody");
  body.append(...ids.map((i) => rowsById.get(i).tr));
  for (const th of $$("#runs-table th[data-sort]")) {
    if (th.dataset.sort === key) th.setAttribute("aria-sort", sortState.dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function syncPicks() {
  const picked = $$(".run-pick:checked").map((el) => el.value);
  const btn = $("#compare-picked");
  btn.disabled = picked.length < 2 || picked.length > 4;
  btn.textContent = picked.length ? `Compare selected (${picked.length})` : "Compare selected";
  setText($("#pick-text"), picked.length === 0 ? "Tick two to four runs to open them side by side."
    : picked.length === 1 ? "Tick one to three more." : picked.length > 4 ? "At most four runs can be compared." : `Runs ${picked.map((p) => `#${p}`).join(", ")}.`);
}

// ---- the configurations table ----------------------------------------------------------------
function renderConfigs() {
  for (const c of summary.configs) {
    const tr = $(`#configs-table tr[data-config="${c.index}"]`);
    if (!tr) continue;
    const f = c.final;
    setText(tr.querySelector(".c-runs"), fmtCount(c.runs));
    setText(tr.querySelector(".c-finished"), fmtCount(c.finished));
    setText(tr.querySelector(".c-running"), fmtCount(c.running));
    setText(tr.querySelector(".c-queued"), fmtCount(c.queued + (c.paused || 0)));
    setText(tr.querySelector(".c-median"), f ? fmtF(f.median) : DASH);
    setText(tr.querySelector(".c-iqr"), f ? `${fmtF(f.q1)} – ${fmtF(f.q3)}` : DASH);
    setText(tr.querySelector(".c-min"), f ? fmtF(f.min) : DASH);
    setText(tr.querySelector(".c-max"), f ? fmtF(f.max) : DASH);
  }
  // the best median (lowest) is marked when more than one configuration has one
  const medians = summary.configs.map((c) => (c.final ? c.final.median : null));
  const known = medians.filter((m) => m !== null);
  const best = known.length > 1 ? Math.min(...known) : null;
  for (const c of summary.configs) {
    const cell = $(`#configs-table tr[data-config="${c.index}"] .c-median`);
    if (cell) cell.classList.toggle("best", best !== null && medians[c.index] === best);
  }
}

// ---- plots ------------------------------------------------------------------------------------
const logY = () => state.logY;
const yTitle = () => (summary.measure === "gap" ? "best f − f*" : "best f");
// On a log axis a gap at or below 0 (f* reached to the last digit) is drawn at FLOOR; a best f at or
// below 0 (f* unknown) cannot be drawn at all, and the note says so.
let floored = false, dropped = false;
function yv(v) {
  if (v === null || v === undefined) return null;
  if (logY() && !(v > 0)) {
    if (summary.measure === "gap") { floored = true; return FLOOR; }
    dropped = true;
    return null;
  }
  return v;
}
function floorNote() {
  if (floored) return ` Values at or below 0 (f* reached to the last digit) are drawn at ${fmtF(FLOOR)} on the log axis.`;
  if (dropped) return " Values at or below 0 cannot be drawn on a log axis: turn off log y to see them.";
  return "";
}

function layout(extra = {}) {
  return {
    font: FONT, margin: { l: 64, r: 16, t: 8, b: 44 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    hovermode: "closest", showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } },
    ...extra,
  };
}

function react(el, traces, lay) {
  if (!Plotly()) return;
  Plotly().react(el, traces, lay, CONFIG);
  el.dataset.drawn = String(Number(el.dataset.drawn || 0) + 1);
  // when the page first had this plot drawn (ms since navigation): bench/bench_study.py reads it
  if (!el.dataset.drawnAt) el.dataset.drawnAt = String(Math.round(performance.now()));
}

/** A closed polygon over the points where both edges are known: a band that gaps cleanly. */
function band(xs, lo, hi) {
  const keep = xs.map((_, i) => i).filter((i) => lo[i] !== null && hi[i] !== null);
  const fx = keep.map((i) => xs[i]), up = keep.map((i) => yv(hi[i])), down = keep.map((i) => yv(lo[i]));
  return { x: [...fx, ...fx.slice().reverse()], y: [...up, ...down.reverse()] };
}

function drawBands() {
  const el = $("#bands-plot");
  floored = false; dropped = false;
  const xs = summary.grids[state.axis];
  const traces = [];
  let any = false, partialAny = false;
  for (const c of summary.configs) {
    const b = c.bands[state.axis], color = colorOf(c.index), name = plotText(c.label);
    if (!b) continue;
    if (b.n.some((n) => n > 0)) any = true;
    if (state.minmax) {
      const mm = band(xs, b.min, b.max);
      traces.push({ type: "scatter", mode: "lines", x: mm.x, y: mm.y, fill: "toself", fillcolor: rgba(color, 0.08),
        line: { width: 0.5, color: rgba(color, 0.3) }, hoverinfo: "skip", legendgroup: `c${c.index}`, showlegend: false, name: `${name} min–max` });
    }
    const iq = band(xs, b.q1, b.q3);
    traces.push({ type: "scatter", mode: "lines", x: iq.x, y: iq.y, fill: "toself", fillcolor: rgba(color, 0.2),
      line: { width: 0 }, hoverinfo: "skip", legendgroup: `c${c.index}`, showlegend: false, name: `${name} q1–q3` });
    const keep = xs.map((_, i) => i).filter((i) => b.median[i] !== null);
    const med = keep.map((i) => yv(b.median[i]));
    const hover = {
      customdata: keep.map((i) => [fmtF(b.q1[i]), fmtF(b.q3[i]), fmtF(b.min[i]), fmtF(b.max[i]),
        `${fmtCount(b.n[i])} of ${fmtCount(c.runs)}`, AXES[state.axis].hover(xs[i]), fmtF(b.median[i])]),
      hovertemplate: `<b>${name}</b> at %{customdata[5]}<br>median %{customdata[6]}<br>q1 %{customdata[0]}, q3 %{customdata[1]}`
        + "<br>min %{customdata[2]}, max %{customdata[3]}<br>over %{customdata[4]} runs<extra></extra>",
    };
    // Dotted where not every run is counted yet (a running one only up to where it has got, a
    // queued one not at all), solid where all are: a median of one run is no median of three.
    // a configuration with nothing left to run counts every run it will ever count somewhere (its
    // runs stopped before their first step never count)
    const whole = c.running + c.queued + (c.paused || 0) > 0 ? c.runs : Math.max(0, ...b.n);
    const partial = keep.some((i) => b.n[i] < whole);
    if (partial) {
      traces.push({ type: "scatter", mode: "lines", x: keep.map((i) => xs[i]), y: med, legendgroup: `c${c.index}`,
        showlegend: false, name: `${name} (some runs not counted)`, line: { color, width: 1.6, dash: "dot" }, ...hover });
      partialAny = true;
    }
    traces.push({
      type: "scatter", mode: "lines", x: keep.map((i) => xs[i]), y: keep.map((i, j) => (b.n[i] < whole ? null : med[j])),
      name, legendgroup: `c${c.index}`, line: { color, width: 2.2 }, connectgaps: false, ...hover,
    });
  }
  $("#bands-empty").hidden = any;
  // Plotly's own log ticks: decades over a wide range, 2 and 5 between them over a narrow one
  const yaxis = { title: { text: yTitle() }, type: logY() ? "log" : "linear", exponentformat: "power", zeroline: false };
  const xaxis = { title: { text: AXES[state.axis].title }, type: state.logX ? "log" : "linear", zeroline: false,
    exponentformat: "power" };
  react(el, traces, layout({ xaxis, yaxis }));
  el.dataset.traces = String(traces.filter((t) => t.showlegend !== false).length);
  let note = "Per configuration: the median of the runs' best-so-far (line) and their quartiles q1–q3 (band)"
    + (state.minmax ? ", min to max (pale band)" : "") + ". A run that has ended keeps its final best; a running one counts only up to where it has got.";
  if (partialAny) note += " Dotted: some of the configuration's runs are not counted there (a running run counts only up to where it has got, a queued one not yet).";
  note += floorNote();
  if (summary.measure !== "gap") note += " f* is unknown for this problem: the plot shows best f itself.";
  setText($("#bands-note"), note);
}

function drawTargets() {
  if (summary.measure !== "gap") return;
  for (const c of summary.configs) {
    c.targets.forEach((t, k) => {
      const tr = $(`#targets-table tr[data-target="${k}"]`);
      if (!tr) return;
      const rate = tr.querySelector(`.t-rate[data-config="${c.index}"]`), ert = tr.querySelector(`.t-ert[data-config="${c.index}"]`);
      setText(rate, `${fmtCount(t.hits)}/${fmtCount(t.runs)}`);
      rate.title = `${Math.round(100 * t.rate)} % of the configuration's runs reached f − f* ≤ ${fmtF(t.gap)}`;
      setText(ert, t.ert === null ? DASH : fmtCount(t.ert));
      ert.title = t.ert === null ? "no run reached it (yet)" : `expected evaluations to reach f − f* ≤ ${fmtF(t.gap)}`;
      rate.classList.toggle("text-body-secondary", t.hits === 0);
    });
  }
  // the lowest ERT of each target, where two or more configurations have one
  summary.targets.forEach((_, k) => {
    const erts = summary.configs.map((c) => (c.targets[k] ? c.targets[k].ert : null));
    const known = erts.filter((e) => e !== null);
    const best = known.length > 1 ? Math.min(...known) : null;
    summary.configs.forEach((c) => {
      const cell = $(`#targets-table tr[data-target="${k}"] .t-ert[data-config="${c.index}"]`);
      if (cell) cell.classList.toggle("best", best !== null && erts[c.index] === best);
    });
  });
}

function drawECDF() {
  if (summary.measure !== "gap") return;
  const el = $("#ecdf-plot"), k = state.target;
  const traces = [];
  let right = 1, any = false;
  for (const c of summary.configs) for (const t of [c.targets[k]]) if (t && t.ecdf.length) right = Math.max(right, t.ecdf[t.ecdf.length - 1]);
  const reach = summary.grids.nfev[summary.grids.nfev.length - 1] || right;
  right = Math.max(right, reach);
  let left = right;
  for (const c of summary.configs) { const t = c.targets[k]; if (t && t.ecdf.length) left = Math.min(left, t.ecdf[0]); }
  for (const c of summary.configs) {
    const t = c.targets[k];
    if (!t) continue;
    const n = t.runs || 1;
    const x = [], y = [];
    if (t.ecdf.length) {
      any = true;
      x.push(t.ecdf[0]); y.push(0);
      t.ecdf.forEach((v, i) => { x.push(v); y.push((i + 1) / n); });
      x.push(right); y.push(t.ecdf.length / n);
    }
    traces.push({ type: "scatter", mode: "lines", x, y, name: plotText(`${c.label} (${t.hits}/${t.runs})`),
      line: { color: colorOf(c.index), width: 2, shape: "hv" },
      hovertemplate: `<b>${plotText(c.label)}</b><br>%{y:.0%} of the runs within %{x:,} evaluations<extra></extra>` });
  }
  $("#ecdf-empty").hidden = any;
  react(el, traces, layout({
    xaxis: { title: { text: "function evaluations" }, type: "log", zeroline: false, exponentformat: "SI", nticks: 7 },
    yaxis: { title: { text: "fraction of runs" }, range: [0, 1.04], tickformat: ".0%", zeroline: false },
  }));
}

// budgets: the 1-2-5 grid of evaluations up to what the study has reached
function budgetChoices() {
  const reach = Math.max(...summary.grids.nfev, 10);
  const out = [];
  for (let k = 0; k <= 8; k++) for (const m of [1, 2, 5]) { const b = m * 10 ** k; if (b >= 10 && b <= reach) out.push(b); }
  for (const b of summary.budgets) if (!out.includes(b)) out.push(b);
  return out.sort((a, b) => a - b);
}

function renderBudgetChoices() {
  const box = $("#budget-choices");
  const choices = budgetChoices(), chosen = new Set(summary.budgets);
  const key = JSON.stringify([choices, [...chosen]]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...choices.map((b) => {
    const wrap = document.createElement("span");
    const input = document.createElement("input");
    input.type = "checkbox"; input.className = "btn-check budget-choice"; input.id = `budget-${b}`; input.value = String(b);
    input.autocomplete = "off"; input.checked = chosen.has(b);
    const label = document.createElement("label");
    label.className = "btn btn-outline-secondary btn-sm py-0"; label.htmlFor = input.id; label.textContent = fmtCount(b);
    label.title = `best after ${fmtCount(b)} function evaluations`;
    wrap.append(input, label);
    return wrap;
  }));
}

function drawBudgets() {
  const el = $("#budgets-plot");
  floored = false; dropped = false;
  const traces = [];
  let any = false;
  const cats = summary.budgets.map((b) => `${fmtCount(b)} evals`);
  for (const c of summary.configs) {
    const x = [], y = [];
    c.budgets.forEach((row, j) => { for (const v of row.values) { x.push(cats[j]); y.push(yv(v)); } });
    if (y.length) any = true;
    const color = colorOf(c.index);
    const strip = state.kind === "strip";
    traces.push({
      type: "box", x, y, name: plotText(c.label), marker: { color, size: 5, opacity: 0.75 }, line: { color, width: strip ? 0 : 1.5 },
      fillcolor: strip ? "rgba(0,0,0,0)" : rgba(color, 0.2), boxpoints: strip ? "all" : "outliers", jitter: strip ? 0.5 : 0,
      pointpos: 0, hoveron: strip ? "points" : "boxes+points",
    });
  }
  $("#budgets-empty").hidden = any || !summary.budgets.length;
  if (!summary.budgets.length) setText($("#budgets-empty"), "Pick a budget above.");
  else setText($("#budgets-empty"), "No run has reached any of these budgets yet.");
  $("#budgets-empty").hidden = any && summary.budgets.length > 0;
  react(el, traces, layout({
    boxmode: "group",
    xaxis: { type: "category", categoryorder: "array", categoryarray: cats, title: { text: "budget (function evaluations)" } },
    yaxis: { title: { text: yTitle() }, type: logY() ? "log" : "linear", exponentformat: "power", zeroline: false },
  }));
  let note = `Best ${summary.measure === "gap" ? "f − f*" : "f"} after B function evaluations, over the runs known there (a run that ended sooner keeps its final best).`;
  note += floorNote();
  setText($("#budgets-note"), note);
}

let drawPending = false;
function drawAll() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    renderConfigs();
    drawBands();
    drawTargets();
    drawECDF();
    renderBudgetChoices();
    drawBudgets();
    root.dataset.version = summary.version;
  });
}

// ---- polling ----------------------------------------------------------------------------------
let timer = null, failures = 0, inFlight = false, budgetsChanged = false;

function summaryURL(since) {
  const q = new URLSearchParams();
  if (since) q.set("since", since);
  if (state.budgets) q.set("budgets", state.budgets.join(","));
  const query = q.toString().replace(/%2C/g, ",");
  return `/api/studies/${id}/summary/${query ? `?${query}` : ""}`;
}

async function poll() {
  timer = null;
  if (inFlight) return;
  inFlight = true;
  try {
    const detail = await getJSON(`/api/studies/${id}/`);
    study = detail;
    renderHeader();
    renderRuns(detail.run_list);
    // the summary after the statuses: once the study has ended, this answer holds its end too
    const since = budgetsChanged ? null : summary.version;
    budgetsChanged = false;
    const s = await getJSON(summaryURL(since));
    if (!s.unchanged) { summary = s; drawAll(); }
    failures = 0;
    $("#control-error").dataset.polling = "";
  } catch (e) {
    failures += 1;
    if (e && e.status === 404) { stopPolling("This study is gone (deleted)."); inFlight = false; return; }
  } finally {
    inFlight = false;
  }
  if (study.status !== "ended") pollSoon();
  else root.dataset.polling = "0";
}

function pollSoon(ms = null) {
  clearTimeout(timer);
  const wait = ms !== null ? ms : failures ? Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** failures) : document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  root.dataset.polling = "1";
  timer = setTimeout(poll, wait);
}

function stopPolling(message) {
  clearTimeout(timer);
  root.dataset.polling = "0";
  const err = $("#control-error");
  err.textContent = message;
  err.hidden = false;
}

// ---- start ------------------------------------------------------------------------------------
function init() {
  setText($("#study-bounds"), study.bounds.length > 3 && study.bounds.every((b) => b[0] === study.bounds[0][0] && b[1] === study.bounds[0][1])
    ? `[${fmtF(study.bounds[0][0])}, ${fmtF(study.bounds[0][1])}]^${study.dim}`
    : study.bounds.slice(0, 3).map((b) => `[${fmtF(b[0])}, ${fmtF(b[1])}]`).join(" × ") + (study.bounds.length > 3 ? " × …" : ""));
  for (const tr of $$("#runs-table tbody tr")) {
    const r = study.run_list.find((x) => x.id === Number(tr.dataset.runId));
    if (r && r.x0) setText(tr.querySelector(".c-x0"), fmtVec(r.x0, 3));
  }
  renderHeader();
  renderRuns(study.run_list);
  drawAll();

  for (const b of $$("[data-action]")) b.addEventListener("click", () => control(b.dataset.action));
  for (const r of $$("input[name=axis]")) r.addEventListener("change", () => { state.axis = r.value; root.dataset.axis = r.value; drawAll(); });
  $("#bands-logx").addEventListener("change", (e) => { state.logX = e.target.checked; drawAll(); });
  $("#bands-logy").checked = state.logY;
  $("#bands-logy").addEventListener("change", (e) => { state.logY = e.target.checked; drawAll(); });
  $("#bands-minmax").addEventListener("change", (e) => { state.minmax = e.target.checked; drawAll(); });
  const target = $("#ecdf-target");
  if (target) {
    state.target = Number(target.value);
    target.addEventListener("change", () => { state.target = Number(target.value); drawAll(); });
  }
  for (const r of $$("input[name=budget-kind]")) r.addEventListener("change", () => { state.kind = r.value; drawAll(); });
  $("#budget-choices").addEventListener("change", () => {
    state.budgets = $$(".budget-choice:checked").map((el) => Number(el.value));
    const q = new URLSearchParams(location.search);
    if (state.budgets.length) q.set("budgets", state.budgets.join(",")); else q.delete("budgets");
    const query = q.toString().replace(/%2C/g, ","); // budgets=100,1000 as a person types it
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}`);
    if (!state.budgets.length) state.budgets = null;
    budgetsChanged = true;
    if (study.status === "ended") { poll(); } else pollSoon(0);
  });
  for (const th of $$("#runs-table th[data-sort]")) th.querySelector("button").addEventListener("click", () => sortRuns(th.dataset.sort));
  $("#runs-table").addEventListener("change", (e) => { if (e.target.classList.contains("run-pick")) syncPicks(); });
  $("#compare-picked").addEventListener("click", () => {
    const ids = $$(".run-pick:checked").map((el) => el.value);
    if (ids.length >= 2 && ids.length <= 4) location.assign(`/runs/compare/?ids=${ids.join(",")}`);
  });
  $("#delete-form").addEventListener("submit", (e) => {
    const active = study.status !== "ended" ? " Its runs that have not ended are stopped first." : "";
    if (!window.confirm(`Delete study ${id} and its ${study.runs.length} runs, with all their steps?${active}`)) e.preventDefault();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && study.status !== "ended") pollSoon(0); });
  syncPicks();
  // ?budgets= in the page's URL: ask for those at once
  if (state.budgets) budgetsChanged = true;
  if (study.status !== "ended" || state.budgets) pollSoon(state.budgets ? 0 : POLL_MS);
  root.dataset.ready = "1";
}

init();
