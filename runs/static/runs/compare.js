// Compare page (/runs/compare/?ids=3,4): two to four runs side by side.
// - data: each run's downsampled series (/api/runs/<id>/series/, min/max-preserving, x0/x1 only),
//   then for active runs the watch socket (/ws/runs/<id>/) streams the rest live.
// - ONE scrubber for all runs, on the chosen x-axis (iteration, evaluations, wall time): it moves
//   the marker on the convergence plot, each run's path on the contour, and the "at the
//   scrubber" table (each run's last step at or before the position).
// - the summary table (server-rendered) is recomputed as live steps arrive, best values re-marked
//   by the rules of runs/comparison.py (only runs a column can compare; the page says why not).
// User text (labels) reaches the page only as text: textContent here, plain strings to plots.js.
// Keyboard: the axis is a radio group (arrows), the scrubber a range input (arrows, PageUp/Down,
// Home/End); Space on the scrubber plays/pauses.

import { ConvergencePlot, ContourPlot } from "./plots.js";
import { RunSocket, getJSON, readJSONScript } from "./api.js";
import { DASH, fmtCount, fmtF, fmtSeconds, fmtVec } from "./format.js";
import { detailOnZoom } from "./objectivemap.js";

const SERIES_POINTS = 2000;
const PLAY_MS = 8000; // a full sweep of the scrubber takes this long
const AXES = {
  nit: { title: "iteration", unit: "iteration", integer: true },
  nfev: { title: "function evaluations", unit: "evaluations", integer: true },
  elapsed: { title: "wall time (s)", unit: "s", integer: false },
};
const ICON_PLAY = '<svg width="12" height="12" viewBox="0 0 16 16" aria-hidden="true"><path fill="currentColor" d="M3 2v12l11-6z"/></svg>';
const ICON_PAUSE = '<svg width="12" height="12" viewBox="0 0 16 16" aria-hidden="true"><path fill="currentColor" d="M3 2h4v12H3zM9 2h4v12H9z"/></svg>';
const RULES = readJSONScript("compare-ranking", { static: {}, cost: [], ranked: [] });
const OUTCOME_LABELS = RULES.outcomes || {}; // outcome key -> words (runs/outcomes.py)
const LABEL_IN_LEGEND = 28; // characters of a label in a legend entry (the rest is in the chips)

const root = document.getElementById("compare");
const runs = readJSONScript("compare-data", []);
const overlay = root?.dataset.overlay === "1";
const oneD = overlay && runs.length > 0 && runs[0].dim === 1; // one shared line f(x[0])
const state = { axis: "nit", pos: 0, follow: true, playing: false, loaded: 0 };

// Per run: columns (seq, nit, nfev, njev, elapsed, fun, x0, x1), status, result.
for (const r of runs) {
  r.data = { seq: [], nit: [], nfev: [], njev: [], elapsed: [], fun: [], x0: [], x1: [] };
  r.lastX = null;       // full x of the newest step (for distance to x*)
  r.live = r.active;    // streamed into this page: its summary is recomputed as steps arrive
  r.downsampled = false;
}

// -- helpers ------------------------------------------------------------------------------------
function lastAtOrBefore(xs, v) {
  // Index of the last element <= v in an ascending array (-1 if none).
  let lo = 0, hi = xs.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] <= v) lo = mid + 1; else hi = mid; }
  return lo - 1;
}

function axisMax() {
  let m = 0;
  for (const r of runs) { const xs = r.data[state.axis]; if (xs.length) m = Math.max(m, xs[xs.length - 1] ?? 0); }
  return m;
}

function fmtAxis(v) {
  if (state.axis === "elapsed") return fmtSeconds(v);
  const n = fmtCount(Math.floor(v)); // the last whole step at or before the position
  return state.axis === "nit" ? `iteration ${n}` : `${n} evaluations`;
}

function traceName(r) {
  const label = r.label.length > LABEL_IN_LEGEND ? r.label.slice(0, LABEL_IN_LEGEND - 1) + "…" : r.label;
  return `#${r.id} ${r.method_title}${label ? " · " + label : ""}`;
}

// One f* for the plot when all runs share it; else each run is drawn as f − f*(its own problem).
const fstars = runs.map((r) => r.f_star);
const allKnown = fstars.every((f) => f !== null && f !== undefined);
const sharedFstar = allKnown && fstars.every((f) => f === fstars[0]) ? fstars[0] : null;
const preSubtract = allKnown && sharedFstar === null;
function plotF(r, f) { return f === null || !preSubtract ? f : f - r.f_star; }

// -- plots --------------------------------------------------------------------------------------
let conv = null;
const contours = new Map(); // run id -> ContourPlot (one shared entry keyed "shared" when overlaid)

function initPlots() {
  conv = new ConvergencePlot(document.getElementById("convergence-plot"), {
    fstar: allKnown ? (preSubtract ? 0 : sharedFstar) : null, xTitle: AXES[state.axis].title, maxPoints: 4000,
  });
  for (const r of runs) conv.addSeries(r.id, traceName(r), { color: r.color });
  const note = document.getElementById("convergence-note");
  if (!allKnown) note.textContent = "f* is not known for every run: plotting f";
  else if (preSubtract) note.textContent = "each run's f − f* for its own problem (log scale)";
  else note.textContent = "f − f* (log scale)";

  if (overlay) {
    contours.set("shared", new ContourPlot(document.getElementById("contour-shared"), { xTitle: "x[0]", yTitle: oneD ? "f" : "x[1]" }));
  } else {
    for (const r of runs) contours.set(r.id, new ContourPlot(document.getElementById(`contour-${r.id}`), { xTitle: "x[0]", yTitle: r.dim === 1 ? "f" : "x[1]", height: 300 }));
  }
  for (const c of contours.values()) c.setMessage("Loading…");
  window.addEventListener("resize", () => { conv.resize(); for (const c of contours.values()) c.resize(); });
}

function contourFor(r) { return overlay ? contours.get("shared") : contours.get(r.id); }

const zooms = new Map(); // ContourPlot -> {zoom (detailOnZoom's), source (its grid now)}

async function loadGrid(group) {
  // group: runs drawn on one contour. Limits: the runs' closed bounds, else their paths (padded).
  const r0 = group[0];
  const plot = contourFor(r0);
  const dims = r0.dim === 1 ? [0] : [0, 1]; // a 1-D landscape is the line f(x[0]) (plots.js draws it)
  const lim = dims.map((k) => {
    let lo = Infinity, hi = -Infinity, closed = true;
    for (const r of group) {
      const b = r.bounds && r.bounds[k];
      if (b && b[0] !== null && b[1] !== null) { lo = Math.min(lo, b[0]); hi = Math.max(hi, b[1]); } else closed = false;
    }
    if (!closed) {
      for (const r of group) for (const v of r.data[`x${k}`]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      for (const r of group) if (r.x_star) { lo = Math.min(lo, r.x_star[k]); hi = Math.max(hi, r.x_star[k]); }
      if (!Number.isFinite(lo)) { lo = -1; hi = 1; }
      const pad = Math.max((hi - lo) * 0.15, 1e-3);
      lo -= pad; hi += pad;
    }
    return [lo, hi];
  });
  const query = (xlim, ylim, n) => {
    const q = new URLSearchParams({ params: JSON.stringify(r0.params || {}), dim: String(r0.dim || 2), n, xlim: xlim.join(",") });
    if (ylim) q.set("ylim", ylim.join(","));
    return `/api/problems/${encodeURIComponent(r0.problem)}/grid/?${q}`;
  };
  if (r0.problem === "external") {
    plot.setMessage("No landscape: this function runs in its owner's Python process.");
    return;
  }
  const url = query(lim[0], lim[1], r0.dim === 1 ? "400" : "80");
  try {
    const grid = await getJSON(url);
    plot.setGrid(grid);
    plot.setMessage(null);
    // a zoomed view gets a finer grid (1-D: line) of its own
    let z = zooms.get(plot);
    if (!z) { z = { source: null }; z.zoom = detailOnZoom(plot, () => z.source); zooms.set(plot, z); }
    z.source = { key: url, box: { x: lim[0], y: lim[1] || null }, url: (xlim, ylim) => query(xlim, ylim, lim[1] ? "80" : "400") };
    z.zoom.refresh();
    if (r0.x_star) plot.setMinimum(r0.x_star[0], r0.dim === 1 ? r0.f_star : r0.x_star[1]);
    if (r0.dim > 2) {
      const n = document.getElementById("contour-dim-note");
      n.textContent = `${r0.dim}-D problem: the landscape is the slice through x* over x[0] and x[1]; paths show x[0] and x[1] of each run.`;
      n.classList.remove("d-none");
    }
  } catch (err) {
    plot.setMessage(`Landscape unavailable: ${err.message}`);
  }
}

// -- data in ------------------------------------------------------------------------------------
function appendSteps(r, steps) {
  const d = r.data;
  for (const s of steps) {
    if (d.seq.length && s.seq <= d.seq[d.seq.length - 1]) continue;
    d.seq.push(s.seq); d.nit.push(s.nit); d.nfev.push(s.nfev); d.njev.push(s.njev);
    d.elapsed.push(s.elapsed); d.fun.push(s.fun);
    d.x0.push(s.x ? s.x[0] ?? null : null); d.x1.push(s.x ? s.x[1] ?? null : null);
    r.lastX = s.x;
  }
}

async function loadSeries(r) {
  const s = await getJSON(`/api/runs/${r.id}/series/?points=${SERIES_POINTS}&x=0,1`);
  const d = r.data;
  d.seq = s.seq; d.nit = s.nit; d.nfev = s.nfev; d.njev = s.njev; d.elapsed = s.elapsed; d.fun = s.fun;
  d.x0 = s.x.map((x) => x[0]); d.x1 = s.x.map((x) => x[1]);
  r.downsampled = s.downsampled;
  r.status = s.status;
  r.lastX = r.summary.x;
}

function connectLive(r) {
  const d = r.data;
  const last = d.seq.length ? d.seq[d.seq.length - 1] : -1; // the series already holds these
  // after=: the server sends only newer stored steps, then live ones (older servers send all: skipped)
  const sock = new RunSocket(`/ws/runs/${r.id}/?after=${last}`, {
    onMessage: (msg) => {
      if (msg.type === "steps") {
        appendSteps(r, msg.steps);
        scheduleRedraw(r);
      } else if (msg.type === "run" || msg.type === "status" || msg.type === "finished") {
        r.status = msg.run.status;
        r.active = ["queued", "running", "paused"].includes(r.status);
        if ("outcome" in msg.run) r.outcome = msg.run.outcome;
        if (msg.run.result) r.result = msg.run.result;
        if (msg.run.error) r.error = msg.run.error;
        if (msg.type === "finished") sock.close();
        scheduleRedraw(r);
        updateLiveBadge();
      } else if (msg.type === "deleted" || (msg.type === "error" && msg.code === "not_found")) {
        // deleted in another tab: its figures stay as last seen; the server closes with 4404
        sock.close();
        r.active = false;
        r.status = "deleted";
        r.deleted = msg.message || `Run ${r.id} was deleted.`;
        updateLiveBadge();
        scheduleRedraw(r);
      }
    },
    onState: (st) => { r.socketState = st; updateLiveBadge(); },
  });
  sock.lastSeq = last;
  r.socket = sock;
}

function updateLiveBadge() {
  const live = runs.filter((r) => r.active);
  const badge = document.getElementById("live-state");
  badge.classList.toggle("d-none", live.length === 0);
  const reconnecting = live.some((r) => r.socketState === "reconnecting");
  document.getElementById("live-text").textContent = reconnecting ? "reconnecting…" :
    `live: ${live.map((r) => "#" + r.id).join(", ")}`;
  for (const r of runs) {
    const chip = document.querySelector(`.run-chip[data-run-id="${r.id}"] .chip-status`);
    if (chip && chip.textContent !== r.status) {
      chip.textContent = r.status;
      chip.className = `badge chip-status ${statusClass(r.status)}`;
    }
  }
}

function statusClass(s) {
  return { queued: "text-bg-secondary", running: "text-bg-primary", paused: "text-bg-warning", finished: "text-bg-success",
    stopped: "text-bg-dark", failed: "text-bg-danger", interrupted: "text-bg-warning" }[s] || "text-bg-light";
}

// -- drawing ------------------------------------------------------------------------------------
let redrawPending = false;
function scheduleRedraw() {
  if (redrawPending) return;
  redrawPending = true;
  // Live runs can send hundreds of steps a second: redraw at most ~4 times a second.
  setTimeout(() => { redrawPending = false; redrawAll(); }, 250);
}

function redrawAll() {
  for (const r of runs) conv.setData(r.id, r.data[state.axis], r.data.fun.map((f) => plotF(r, f)));
  updateScrubberRange();
  drawCursor();
  updateSummary();
}

function updateScrubberRange() {
  const el = document.getElementById("scrubber");
  const max = axisMax();
  const integer = AXES[state.axis].integer;
  el.max = String(max);
  el.step = integer ? "1" : String(max > 0 ? max / 1000 : 0.001);
  el.disabled = max <= 0 && runs.every((r) => r.data.seq.length <= 1);
  if (state.follow) state.pos = max;
  el.value = String(state.pos);
  el.setAttribute("aria-valuetext", `${AXES[state.axis].title} ${fmtAxis(state.pos)}`);
}

function drawCursor() {
  const pos = state.pos;
  const max = axisMax();
  document.getElementById("scrub-readout").textContent =
    state.axis === "elapsed" ? `${fmtSeconds(pos)} of ${fmtSeconds(max)}` : `${fmtAxis(pos)} of ${fmtCount(max)}`;
  conv.setMarker(pos);
  for (const r of runs) {
    const d = r.data;
    const i = lastAtOrBefore(d[state.axis], pos);
    const plot = contourFor(r);
    const end = Math.max(i + 1, d.seq.length ? 1 : 0);
    // on a 1-D landscape the path runs along the line f(x[0])
    plot.setPath(r.id, d.x0.slice(0, end), (r.dim === 1 ? d.fun : d.x1).slice(0, end), { name: `#${r.id} ${r.method_title}`, color: r.color });
    const row = document.querySelector(`#cursor-table tr[data-run-id="${r.id}"]`);
    if (!row) continue;
    const j = Math.max(i, 0);
    const has = d.seq.length > 0;
    const approx = r.downsampled ? "≈ " : "";
    row.querySelector(".c-seq").textContent = has ? approx + fmtCount(d.seq[j]) : DASH;
    row.querySelector(".c-nit").textContent = has ? fmtCount(d.nit[j]) : DASH;
    row.querySelector(".c-nfev").textContent = has ? fmtCount(d.nfev[j]) : DASH;
    row.querySelector(".c-elapsed").textContent = has ? fmtSeconds(d.elapsed[j]) : DASH;
    row.querySelector(".c-fun").textContent = has ? fmtF(d.fun[j]) : DASH;
    row.querySelector(".c-gap").textContent = has && r.f_star !== null && d.fun[j] !== null ? fmtF(d.fun[j] - r.f_star) : DASH;
    row.querySelector(".c-x").textContent = has ? fmtVec([d.x0[j], d.x1[j]].slice(0, Math.min(2, r.dim || 2))) + (r.dim > 2 ? ` … (${fmtCount(r.dim)}-D)` : "") : DASH;
    row.classList.toggle("text-body-secondary", i < 0);
    if (r.downsampled && has) refineSoon(r, i);
  }
}

// A downsampled series holds only some steps: once the scrubber rests, fetch the steps between the
// kept neighbours and show the exact step at the position (the "≈" goes away).
const refineTimers = new Map();
function refineSoon(r, i) {
  clearTimeout(refineTimers.get(r.id));
  refineTimers.set(r.id, setTimeout(() => refine(r, i, state.pos, state.axis), 150));
}

async function refine(r, i, pos, axis) {
  const d = r.data;
  const from = i >= 0 ? d.seq[i] : 0;
  const to = i + 1 < d.seq.length ? d.seq[i + 1] - 1 : from;
  if (to <= from) { fillCursorRow(r, null); return; }
  try {
    const limit = Math.min(to - from + 1, 1000);
    const got = await getJSON(`/api/runs/${r.id}/steps/?after=${from - 1}&limit=${limit}`);
    if (state.pos !== pos || state.axis !== axis) return; // moved on meanwhile
    let best = null;
    for (const st of got.steps) if (st[axis] !== null && st[axis] <= pos) best = st;
    fillCursorRow(r, best);
  } catch { /* keep the approximate figures */ }
}

function fillCursorRow(r, st) {
  const row = document.querySelector(`#cursor-table tr[data-run-id="${r.id}"]`);
  if (!row) return;
  const seqCell = row.querySelector(".c-seq");
  seqCell.textContent = seqCell.textContent.replace("≈ ", "");
  if (!st) return;
  seqCell.textContent = fmtCount(st.seq);
  row.querySelector(".c-nit").textContent = fmtCount(st.nit);
  row.querySelector(".c-nfev").textContent = fmtCount(st.nfev);
  row.querySelector(".c-elapsed").textContent = fmtSeconds(st.elapsed);
  row.querySelector(".c-fun").textContent = fmtF(st.fun);
  row.querySelector(".c-gap").textContent = r.f_star !== null && st.fun !== null ? fmtF(st.fun - r.f_star) : DASH;
  row.querySelector(".c-x").textContent = fmtVec(st.x.slice(0, 2)) + (r.dim > 2 ? ` … (${fmtCount(r.dim)}-D)` : "");
}

function summaryOf(r) {
  // The result when the run has ended, else its newest step (live).
  const d = r.data, n = d.seq.length;
  const res = r.result;
  const s = { ...r.summary };
  if (!r.live) return s; // ended before the page loaded: the server's figures are final
  if (res) {
    s.fun = res.fun; s.nit = res.nit; s.nfev = res.nfev; s.njev = res.njev;
    s.reason = res.reason || res.message || s.reason;
  } else if (n) {
    let best = null;
    for (const f of d.fun) if (f !== null && (best === null || f < best)) best = f;
    s.fun = best; s.nit = d.nit[n - 1]; s.nfev = d.nfev[n - 1]; s.njev = d.njev[n - 1];
    if (r.active) s.reason = `still ${r.status}`;
  }
  if (n) s.elapsed = d.elapsed[n - 1];
  s.gap = s.fun !== null && r.f_star !== null ? s.fun - r.f_star : null;
  const x = res && res.x ? res.x : r.lastX;
  if (x && r.x_star && x.length === r.x_star.length && x.every((v) => v !== null)) {
    s.dist = Math.sqrt(x.reduce((acc, v, k) => acc + (v - r.x_star[k]) ** 2, 0));
  }
  s.status = r.status;
  if (r.status === "failed" && r.error) s.reason = r.error;
  if (r.deleted) s.reason = r.deleted;
  return s;
}

function cellText(key, v) {
  if (key === "elapsed") return fmtSeconds(v);
  if (key === "nit" || key === "nfev" || key === "njev") return fmtCount(v);
  return fmtF(v);
}

/** runs/comparison.py's rank(), on the page: {best: {key: value}, cell: {"key:id": note}, column: {key: note}}. */
function rankSummaries(sums) {
  const best = {}, cell = {}, column = { ...RULES.static };
  for (const k of RULES.ranked) {
    if (k in column) continue;
    const cost = RULES.cost.includes(k);
    const vals = [];
    sums.forEach((s, i) => {
      const v = s[k];
      if (v === null || v === undefined) return;
      const r = runs[i];
      if (cost && r.outcome !== "converged") {
        cell[`${k}:${r.id}`] = r.outcome ? "left out: this run did not converge, so its cost is not comparable"
          : "left out: this run has not ended";
        return;
      }
      vals.push(v);
    });
    if (vals.length < 2) column[k] = cost ? "not ranked: fewer than two of these runs converged" : "not ranked: fewer than two runs have a value";
    else best[k] = Math.min(...vals);
  }
  return { best, cell, column };
}

function statusBadge(status) {
  const b = document.createElement("span");
  b.className = `badge ${statusClass(status)}`;
  b.textContent = status;
  return b;
}

function updateSummary() {
  const sums = runs.map(summaryOf);
  const { best, cell, column } = rankSummaries(sums);
  sums.forEach((s, idx) => {
    const r = runs[idx];
    const tr = document.querySelector(`#summary-table tr[data-run-id="${r.id}"]`);
    if (!tr) return;
    for (const td of tr.querySelectorAll("td[data-key]")) {
      const k = td.dataset.key;
      if (k === "status") {
        td.replaceChildren(statusBadge(s.status));
        if (r.outcome && r.outcome !== s.status) {
          const o = document.createElement("span");
          o.className = "small outcome-text";
          o.textContent = ` ${OUTCOME_LABELS[r.outcome] || r.outcome}`;
          td.append(o);
        }
        continue;
      }
      if (k === "reason") { const sp = document.createElement("span"); sp.className = "small"; sp.textContent = s.reason || ""; td.replaceChildren(sp); continue; }
      const isBest = k in best && s[k] === best[k];
      const note = RULES.ranked.includes(k) ? cell[`${k}:${r.id}`] || column[k] || "" : "";
      td.classList.toggle("best", isBest);
      td.classList.toggle("unranked", !!note);
      if (note) td.title = note; else td.removeAttribute("title");
      td.textContent = cellText(k, s[k]);
      if (isBest) td.insertAdjacentHTML("beforeend", '<span class="ms-1" title="best in this column">★</span><span class="visually-hidden"> (best)</span>');
    }
  });
  // the footnotes under the table: one line per column that stars nothing
  const notes = document.getElementById("rank-notes");
  if (!notes) return;
  const heads = Object.fromEntries([...document.querySelectorAll("#summary-table thead th[data-key]")].map((th) => [th.dataset.key, th.textContent]));
  const grouped = new Map(); // one line per reason, naming the columns it holds for
  for (const k of RULES.ranked) {
    if (!(k in column) || !(k in heads)) continue;
    if (!grouped.has(column[k])) grouped.set(column[k], []);
    grouped.get(column[k]).push(heads[k]);
  }
  const items = [...grouped].map(([note, hs]) => {
    const li = document.createElement("li");
    const h = document.createElement("strong");
    h.textContent = hs.join(", ");
    li.append(h, ` ${note}.`);
    return li;
  });
  notes.replaceChildren(...items);
  notes.hidden = items.length === 0;
}

// -- controls -----------------------------------------------------------------------------------
function setPos(v, { fromUser = true } = {}) {
  const max = axisMax();
  state.pos = Math.min(Math.max(v, 0), max);
  if (fromUser) state.follow = state.pos >= max;
  const el = document.getElementById("scrubber");
  el.value = String(state.pos);
  el.setAttribute("aria-valuetext", `${AXES[state.axis].title} ${fmtAxis(state.pos)}`);
  drawCursor();
}

let playFrame = null;
function setPlaying(on) {
  state.playing = on;
  const btn = document.getElementById("scrub-play");
  btn.innerHTML = on ? `${ICON_PAUSE} Pause` : `${ICON_PLAY} Play`;
  btn.setAttribute("aria-label", on ? "Pause" : "Play");
  if (!on) { cancelAnimationFrame(playFrame); playFrame = null; return; }
  if (state.pos >= axisMax()) setPos(0);
  let last = performance.now();
  const tick = (now) => {
    const max = axisMax();
    const dv = ((now - last) / PLAY_MS) * max;
    last = now;
    const next = state.pos + dv;
    if (next >= max) { setPos(max); setPlaying(false); return; }
    setPos(next);
    playFrame = requestAnimationFrame(tick);
  };
  playFrame = requestAnimationFrame(tick);
}

function switchAxis(axis) {
  if (axis === state.axis) return;
  // Keep the same moment: map the position through the first run that has data there.
  let pos = 0;
  if (state.follow) pos = null;
  else {
    for (const r of runs) {
      const i = lastAtOrBefore(r.data[state.axis], state.pos);
      if (i >= 0) { pos = r.data[axis][i]; break; }
    }
  }
  state.axis = axis;
  conv.xTitle = AXES[axis].title;
  redrawAll();
  if (pos !== null) setPos(pos, { fromUser: false });
  root.dataset.axis = axis;
}

function initControls() {
  const el = document.getElementById("scrubber");
  el.addEventListener("input", () => {
    if (state.playing) setPlaying(false);
    // The slider rounds to its step: treat its last notch as the true end (the newest step).
    const v = Number(el.value), max = axisMax();
    setPos(v >= max - Number(el.step) / 2 ? max : v);
  });
  el.addEventListener("keydown", (ev) => {
    if (ev.key === " ") { ev.preventDefault(); setPlaying(!state.playing); }
  });
  document.getElementById("scrub-play").addEventListener("click", () => setPlaying(!state.playing));
  document.getElementById("scrub-start").addEventListener("click", () => { setPlaying(false); setPos(0); });
  document.getElementById("scrub-end").addEventListener("click", () => { setPlaying(false); setPos(axisMax()); });
  for (const radio of document.querySelectorAll("input[name=axis]")) {
    radio.addEventListener("change", () => { if (radio.checked) switchAxis(radio.value); });
  }
}

// -- start --------------------------------------------------------------------------------------
async function main() {
  initPlots();
  initControls();
  const results = await Promise.allSettled(runs.map((r) => loadSeries(r)));
  results.forEach((res, i) => {
    if (res.status === "rejected") {
      const r = runs[i];
      const row = document.querySelector(`#cursor-table tr[data-run-id="${r.id}"] .c-x`);
      if (row) row.textContent = `could not load steps: ${res.reason.message}`;
    }
  });
  document.getElementById("plots-loading")?.remove();
  redrawAll();
  // Landscapes: one shared (same problem) or one per run.
  if (overlay) await loadGrid(runs); else await Promise.all(runs.map((r) => loadGrid([r])));
  drawCursor();
  for (const r of runs) if (r.active) connectLive(r);
  updateLiveBadge();
  root.dataset.ready = "1";
}

if (root) main();
