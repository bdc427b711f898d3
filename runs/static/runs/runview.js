// The run view shared by /runs/new/ (after launching) and /runs/<id>/: header with status and
// controls, progress, convergence plot, contour with path / DE population / L-BFGS-B line search,
// the step table, the result, and for ended runs a replay timeline.
//
//   const view = new RunView(document.getElementById("run-view"), { problems, tableRows: 200 });
//   view.showRun(run, { mode: "live" });   // a Run object (PROTOCOL); resets everything
//   view.addSteps(steps);                  // live steps, any rate: drawn once per animation frame
//   view.setRun(run);                      // status changes
//   view.ended(run);                       // final Run: result panel, then replay from the server
//   view.onControl = (action) => ...;      // "stop" | "pause" | "resume" buttons
//   view.onCompare = async (spec) => ...;  // "Compare with ..." button
//
//   const watch = new RunWatch(view);      // or drive the view from the run's watch socket:
//   watch.follow(run);                     // live, or listening for an interrupted run's resume
//   watch.control("pause");
//
// The header says where the run is: queued (its place in line, polled: other runs move it without
// a message to this one), on which worker, paused (holding no worker), interrupted.
//
// Live data kept in memory is small per step (seq, f, nfev, elapsed and the two plotted
// coordinates); the table keeps only the newest rows. Replay reads the downsampled series
// (/api/runs/<id>/series/) for the plots and windows of full steps (/api/runs/<id>/steps/) for
// the table and the population / line search at the current step.

import { ConvergencePlot, ContourPlot } from "./plots.js";
import { escapeHTML, fmtNum, fmtSeconds, fmtVec, frameBatcher, getJSON, RunSocket } from "./api.js";

const STATUS_CLASS = {
  queued: "text-bg-secondary", running: "text-bg-primary", paused: "text-bg-warning",
  finished: "text-bg-success", stopped: "text-bg-dark", failed: "text-bg-danger", interrupted: "text-bg-warning",
};
export const ACTIVE = new Set(["queued", "running", "paused"]);
const METHOD_TITLE = { de: "DE", lbfgsb: "L-BFGS-B" };
const GRID_N = 70;
const SERIES_POINTS = 2000;
const BLOCK = 50; // steps per fetched window in replay
const REPLAY_ROWS = 25; // table rows around the current step in replay
const SLICE_REFRESH_MS = 2000; // dim > 2: how often the slice follows the best point while live
const QUEUE_POLL_MS = 2000;
// An interruption seen live is followed by the server queueing the run again within moments; if
// that has not happened by then, the page offers Resume instead of promising it.
const RESUME_WAIT_MS = 15000;
const PENDING_NOTE = { stop: "stopping…", pause: "pausing…", resume: "resuming…" };

export class RunView {
  constructor(root, { problems = [], tableRows = 200 } = {}) {
    this.root = root;
    this.problems = new Map(problems.map((p) => [p.name, p]));
    this.tableRows = tableRows;
    this.onControl = null;
    this.onCompare = null;
    this.$ = (sel) => root.querySelector(sel);
    this.run = null;
    this.generation = 0; // bumped by showRun: answers for an earlier showing are dropped
    this._pending = null; // a control sent and not yet answered
    this._resumeBy = 0;
    this._pollTimer = null;
    this._flushSoon = frameBatcher(() => this._flush());
    this._bind();
  }

  // ---- setup ------------------------------------------------------------------------------
  _bind() {
    for (const action of ["stop", "pause", "resume"]) {
      this.$(`#btn-${action}`).addEventListener("click", () => {
        if (!this.onControl) return;
        this._pending = action;
        this._keepFocus = true;
        this._renderState();
        this.onControl(action);
      });
    }
    this.$("#btn-compare").addEventListener("click", () => this._compare());
    const onAxis = () => this._axesChanged();
    this.$("#contour-ix").addEventListener("change", onAxis);
    this.$("#contour-iy").addEventListener("change", onAxis);
    this.replay = new Replay(this);
    window.addEventListener("resize", () => { this.cp && this.cp.resize(); this.ct && this.ct.resize(); });
  }

  /** Reset and show `run`. mode "live": steps will come through addSteps; "replay": load from the server. */
  showRun(run, { mode = "live", knownMinimum = undefined } = {}) {
    this.run = run;
    this.generation += 1;
    this._pending = null;
    this._resumeBy = 0;
    this.mode = mode;
    this.problem = this.problems.get(run.problem) || null;
    this.known = knownMinimum === undefined ? null : knownMinimum;
    this.dim = run.dim || (run.x0 ? run.x0.length : 2);
    this.live = { seq: [], fun: [], nfev: [], elapsed: [], pts: [] }; // pts: [x[ix], x[iy]] per step
    this.pending = [];
    this.latest = null; // the newest full step (population, line search)
    this.polish = null;
    this.nRows = 0;
    this.ix = 0; this.iy = Math.min(1, this.dim - 1);
    this.gridKey = null;
    this.lastSliceAt = 0;
    this.replay.reset();

    this.$("#run-empty") && (this.$("#run-empty").hidden = true);
    this.$("#run-main").hidden = false;
    this.$("#steps-body").innerHTML = "";
    this.$("#steps-note").textContent = "";
    this._renderHead();
    this._renderAxesSelects();
    this._renderTableHead();
    this._initPlots();
    this.setRun(run);
    this._renderResult();
    if (knownMinimum === undefined) this._fetchKnownMinimum();
    this._loadGrid();
    if (mode === "replay" && run.n_steps > 0) this.replay.open();
    if (!run.n_steps) this._emptyTable(mode === "live" ? waitingText(run.status) : "This run has no stored steps.");
  }

  _initPlots() {
    if (!this.cp) {
      this.cp = new ConvergencePlot(this.$("#plot-convergence"), { fstar: this._fstar(), xTitle: "iteration" });
      this.ct = new ContourPlot(this.$("#plot-contour"));
    } else {
      this.cp.setFstar(this._fstar());
      for (const id of [...this.cp.series.keys()]) this.cp.removeSeries(id);
      this.ct.setPopulation(null); this.ct.setLineSearch(null); this.ct.setMarker(null);
      this.ct.setPath("run", null); this.ct.setGrid(null);
    }
    this.cp.addSeries("run", `${METHOD_TITLE[this.run.method] || this.run.method} run ${this.run.id}`, { color: "#0d6efd" });
    this.cp.setMarker(null);
    this._convergenceNote();
    this.ct.setAxes(`x[${this.ix}]`, `x[${this.iy}]`);
    if (this.dim < 2) this.ct.setMessage("A 1-D problem has no 2-D map; see the convergence plot and the table.");
    else this.ct.setMessage("Loading the objective…");
    this._showMinimum();
  }

  _fstar() { return this.known && typeof this.known.f === "number" ? this.known.f : null; }

  async _fetchKnownMinimum() {
    const run = this.run;
    const q = new URLSearchParams({ problem: run.problem, dim: String(this.dim), params: JSON.stringify(run.params || {}) });
    try {
      const data = await getJSON(`/runs/new/known-minimum/?${q}`);
      if (this.run.id !== run.id) return;
      this.known = data.known_minimum;
      this.cp.setFstar(this._fstar());
      this._convergenceNote();
      this._showMinimum();
    } catch { /* f* stays unknown: the plot shows f */ }
  }

  _convergenceNote() {
    const f = this._fstar();
    this.$("#convergence-note").textContent = f === null
      ? "f (no known minimum for these coefficients)"
      : `f − f*, with f* = ${fmtNum(f)} (values ≤ 0 drawn at 1e-16)`;
  }

  _showMinimum() {
    if (this.known && this.known.x && this.dim >= 2) this.ct.setMinimum(this.known.x[this.ix], this.known.x[this.iy]);
    else this.ct.setMinimum(null);
  }

  _renderHead() {
    const r = this.run;
    const p = this.problem;
    const params = Object.entries(r.params || {}).map(([k, v]) => `${k}=${fmtNum(v)}`).join(", ");
    const title = `${METHOD_TITLE[r.method] || r.method} on ${p ? p.title : r.problem}`;
    this.$("#run-title").innerHTML = `<a href="/runs/${r.id}/" class="link-body-emphasis text-decoration-none">Run ${r.id}</a>` +
      ` <span class="fw-normal">· ${escapeHTML(title)}</span>` +
      (r.label ? ` <span class="badge text-bg-light border fw-normal">${escapeHTML(r.label)}</span>` : "");
    const bits = [];
    bits.push(`${escapeHTML(r.problem)}${params ? `(${escapeHTML(params)})` : ""}, ${this.dim}-D`);
    if (r.bounds) bits.push(`bounds ${boundsText(r.bounds)}`);
    if (r.x0) bits.push(`x0 ${fmtVec(r.x0, 4, 4)}`);
    const o = r.options || {};
    if (r.method === "de") bits.push(`popsize ${o.popsize}, tol ${fmtNum(o.tol)}, seed ${o.seed ?? (o.rng !== null && o.rng !== undefined ? `rng ${o.rng}` : "none")}`);
    if (r.method === "lbfgsb") bits.push(`jac ${o.jac}, gtol ${fmtNum(o.gtol)}`);
    this.$("#run-subtitle").innerHTML = bits.join(" · ");
    this.$("#btn-csv").href = `/runs/${r.id}/steps.csv`;
    const cmp = this._counterpart();
    const btn = this.$("#btn-compare");
    btn.hidden = !cmp;
    if (cmp) {
      btn.textContent = `Compare with ${METHOD_TITLE[cmp.spec.method]}`;
      btn.title = `Launch ${METHOD_TITLE[cmp.spec.method]} on the same problem and open both side by side`;
      this.$("#compare-note").textContent = cmp.note;
      this.$("#compare-note").hidden = !cmp.note;
    }
  }

  _renderAxesSelects() {
    const wrap = this.$("#contour-axes");
    wrap.hidden = this.dim <= 2;
    if (this.dim <= 2) return;
    for (const [sel, val] of [["#contour-ix", this.ix], ["#contour-iy", this.iy]]) {
      const el = this.$(sel);
      el.innerHTML = Array.from({ length: this.dim }, (_, i) => `<option value="${i}">x[${i}]</option>`).join("");
      el.value = String(val);
    }
  }

  _renderTableHead() {
    const lb = this.run.method === "lbfgsb";
    const cols = ["iter", "phase", "f", "x", "evals", ...(lb ? ["gradient", "‖proj g‖∞", "step"] : ["spread"]), "elapsed"];
    this.$("#steps-head").innerHTML = `<tr>${cols.map((c) => `<th scope="col">${c}</th>`).join("")}</tr>`;
  }

  // ---- status ---------------------------------------------------------------------------
  setRun(run) {
    const before = this.run ? this.run.status : null;
    this.run = { ...this.run, ...run };
    const s = this.run.status;
    this._pending = null;
    if (s !== "interrupted") this._resumeBy = 0;
    else if (ACTIVE.has(before) && this.run.auto_resume) {
      // Only an interruption seen as it happened: one found on opening the page waits for Resume.
      this._resumeBy = performance.now() + RESUME_WAIT_MS;
      const gen = this.generation;
      setTimeout(() => {
        if (this.generation !== gen || this.run.status !== "interrupted") return;
        this._renderState();
        this._renderResult();
      }, RESUME_WAIT_MS + 50);
    }
    this._renderState();
    this._renderProgress();
    if (s === "failed" || s === "interrupted") this._renderResult();
    const empty = this.$("#steps-body tr.empty td");
    if (empty && this.mode === "live" && ACTIVE.has(s)) empty.textContent = waitingText(s);
    this._syncPoll();
  }

  /** Interrupted, and the server is about to queue it again by itself. */
  resuming() {
    return this.run.status === "interrupted" && performance.now() < this._resumeBy;
  }

  _renderState() {
    const r = this.run, s = r.status;
    const badge = this.$("#run-status");
    badge.className = `badge ${STATUS_CLASS[s] || "text-bg-secondary"}`;
    if (badge.textContent !== s) badge.textContent = s; // the region is live: no needless announcements
    const note = PENDING_NOTE[this._pending] || statusNote(r, { resuming: this.resuming() });
    const where = this.$("#run-where");
    if (where.dataset.note !== note) {
      where.dataset.note = note;
      where.innerHTML = note ? `<span class="visually-hidden">, </span>${escapeHTML(note)}` : "";
    }
    where.hidden = !note;

    const blocked = Boolean(this._pending) || Boolean(r.stopping);
    const can = {
      pause: !blocked && (s === "running" || s === "queued"),
      resume: !blocked && (s === "paused" || s === "interrupted"),
      stop: !blocked && (ACTIVE.has(s) || s === "interrupted"),
    };
    const titles = {
      pause: s === "queued" ? "Take it out of the queue; Resume puts it back" : "Store a checkpoint and free the worker",
      resume: s === "interrupted" ? "Continue from the last checkpoint" : "Queue it again; it goes on where it paused",
      stop: "End the run; its steps so far are kept",
    };
    for (const a of ["pause", "resume", "stop"]) {
      const b = this.$(`#btn-${a}`);
      b.disabled = !can[a];
      b.title = titles[a];
    }
    const controls = this.$("#run-controls");
    controls.hidden = !(ACTIVE.has(s) || s === "interrupted");
    controls.setAttribute("aria-busy", this._pending ? "true" : "false");
    // A pressed button is disabled until the answer comes: then hand keyboard focus to what applies now.
    if (this._keepFocus && !this._pending) {
      this._keepFocus = false;
      const ae = document.activeElement;
      if (!controls.hidden && (!ae || ae === document.body || ae.disabled)) {
        const next = ["resume", "pause", "stop"].map((a) => this.$(`#btn-${a}`)).find((b) => !b.disabled);
        if (next) next.focus();
      }
    }
  }

  /** While queued, follow the run's place in line: it moves when other runs start or leave. */
  _syncPoll() {
    const want = this.run && this.run.status === "queued";
    if (want && !this._pollTimer) this._pollTimer = setTimeout(() => this._poll(), QUEUE_POLL_MS);
    else if (!want && this._pollTimer) { clearTimeout(this._pollTimer); this._pollTimer = null; }
  }

  async _poll() {
    const id = this.run.id, gen = this.generation;
    try {
      if (!document.hidden) {
        const fresh = await getJSON(`/api/runs/${id}/`);
        // Status changes come on the socket; only an answer newer than a "queued" on screen applies.
        if (this.generation === gen && this.run.status === "queued" && ACTIVE.has(fresh.status)) {
          if (fresh.status === "queued") {
            this.run = { ...this.run, queue_position: fresh.queue_position, stopping: fresh.stopping };
            this._renderState();
          } else this.setRun(fresh);
        }
      }
    } catch { /* offline for a moment: the next tick asks again */ }
    this._pollTimer = null;
    this._syncPoll();
  }

  _renderProgress() {
    const r = this.run, o = r.options || {};
    const last = this.latest;
    const nit = last ? last.nit : r.nit || 0;
    const nfev = last ? last.nfev : r.nfev || 0;
    const elapsed = last ? last.elapsed : r.elapsed || 0;
    const maxiter = o.maxiter || 0;
    let frac = maxiter ? nit / maxiter : 0;
    if (r.method === "lbfgsb" && o.maxfun) frac = Math.max(frac, nfev / o.maxfun);
    const active = ACTIVE.has(r.status);
    if (!active && r.status === "finished") frac = 1;
    const bar = this.$("#run-progress .progress-bar");
    bar.style.width = `${Math.min(100, 100 * frac).toFixed(1)}%`;
    // Only a run on a worker moves: a queued or paused one is striped but still.
    bar.className = "progress-bar" + (active ? " progress-bar-striped" : "") + (r.status === "running" ? " progress-bar-animated" : "")
      + (r.status === "interrupted" ? " bg-warning" : "")
      + (r.status === "finished" ? (r.result && !r.result.success ? " bg-warning" : " bg-success") : "")
      + (r.status === "failed" ? " bg-danger" : "") + (r.status === "stopped" ? " bg-secondary" : "");
    this.$("#run-progress").setAttribute("aria-valuenow", String(Math.round(100 * frac)));
    const unit = r.method === "de" ? "generation" : "iteration";
    const best = last ? last.fun : r.best_fun;
    this.$("#run-counters").innerHTML =
      `<span>${unit} <strong>${nit.toLocaleString()}</strong>${maxiter ? ` of ${maxiter.toLocaleString()}` : ""}</span>` +
      `<span><strong>${nfev.toLocaleString()}</strong> evaluations${r.method === "lbfgsb" && o.maxfun ? ` of ${o.maxfun.toLocaleString()}` : ""}</span>` +
      `<span>f <strong class="mono">${fmtNum(best)}</strong></span>` +
      `<span>${fmtSeconds(elapsed)}</span>` +
      (r.status === "running" && r.method === "de" ? `<span class="text-body-secondary">DE usually stops well before maxiter, when the population agrees</span>` : "");
  }

  // ---- live steps ----------------------------------------------------------------------------
  addSteps(steps) {
    for (const s of steps) this.pending.push(s);
    this._flushSoon();
  }

  _flush() {
    const batch = this.pending;
    if (!batch.length) return;
    this.pending = [];
    const L = this.live;
    const xs = [], fs = [];
    for (const s of batch) {
      L.seq.push(s.seq); L.fun.push(s.fun); L.nfev.push(s.nfev); L.elapsed.push(s.elapsed);
      L.pts.push(s.x && s.x.length > 1 ? [s.x[this.ix], s.x[this.iy]] : null);
      xs.push(s.seq); fs.push(s.fun);
      if (s.phase === "polish") this.polish = s;
    }
    this.latest = batch[batch.length - 1];
    this.cp.extend("run", xs, fs);
    this._prependRows(batch.slice(-this.tableRows));
    this._renderProgress();
    this._drawLiveOverlay();
  }

  _drawLiveOverlay() {
    if (this.dim < 2) return;
    const L = this.live;
    const path = thinPath(L.pts);
    this.ct.setPath("run", path.map((p) => p[0]), path.map((p) => p[1]), { name: "best point", color: "#ff4d4f" });
    const s = this.latest;
    this._showStepDetail(s);
    // Keep the map where the action is: slices follow the best point, open boxes follow the path.
    const now = performance.now();
    if (now - this.lastSliceAt > SLICE_REFRESH_MS) {
      if (this.dim > 2 || this._boxNeedsRefit()) { this.lastSliceAt = now; this._loadGrid(); }
    }
  }

  /** Contour overlays for one full step: population (DE), line search (L-BFGS-B), marker. */
  _showStepDetail(s) {
    if (!s || this.dim < 2) return;
    const ex = s.extra || {};
    const pop = ex.population;
    this.ct.setPopulation(Array.isArray(pop) ? pop.map((m) => [m[this.ix], m[this.iy]]) : null);
    const ls = ex.line_search;
    this.ct.setLineSearch(ls && Array.isArray(ls.x) ? ls.x.map((m) => [m[this.ix], m[this.iy]]) : null);
    if (s.x) this.ct.setMarker(s.x[this.ix], s.x[this.iy]);
  }

  _emptyTable(text) {
    this.$("#steps-body").innerHTML = `<tr class="empty"><td colspan="9" class="text-center text-body-secondary py-4">${escapeHTML(text)}</td></tr>`;
    this.nRows = 0;
  }

  _prependRows(steps) {
    const placeholder = this.$("#steps-body tr.empty");
    if (placeholder) placeholder.remove();
    const body = this.$("#steps-body");
    const html = steps.slice().reverse().map((s) => this._rowHTML(s)).join("");
    body.insertAdjacentHTML("afterbegin", html);
    this.nRows += steps.length;
    while (this.nRows > this.tableRows) { body.lastElementChild.remove(); this.nRows -= 1; }
    const total = this.live.seq.length;
    this.$("#steps-note").innerHTML = total > this.tableRows
      ? `newest ${this.tableRows} of ${total.toLocaleString()} steps shown live; <a href="/runs/${this.run.id}/steps.csv">the CSV</a> has them all`
      : `${total.toLocaleString()} step${total === 1 ? "" : "s"}`;
  }

  _rowHTML(s, current = false) {
    const ex = s.extra || {};
    const phase = s.phase === "iterate" ? "" : `<span class="badge rounded-pill text-bg-${s.phase === "polish" ? "info" : "light border"}">${escapeHTML(s.phase)}</span>`;
    const cells = [
      s.nit, phase, `<span title="${s.fun}">${fmtNum(s.fun, 8)}</span>`, fmtVec(s.x, 5, 4), s.nfev.toLocaleString(),
    ];
    if (this.run.method === "lbfgsb") cells.push(fmtVec(s.jac, 3, 3), fmtNum(ex.pg_norm, 3), fmtNum(ex.step_length, 3));
    else cells.push(s.phase === "polish" ? (ex.accepted ? "accepted" : "rejected") : fmtNum(ex.convergence, 3));
    cells.push(fmtSeconds(s.elapsed));
    return `<tr data-seq="${s.seq}"${current ? ' class="table-active current" aria-current="true"' : ""}>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
  }

  // ---- the end ------------------------------------------------------------------------------
  /** The run ended (Run object with result): flush, show the result, switch to replay. */
  ended(run) {
    this._flush();
    this.setRun(run);
    this._renderResult();
    if (this.run.n_steps > 0) this.replay.open({ fromLive: true });
  }

  async _loadPolish() {
    // The polish step is the last one of a DE run that polished.
    const r = this.run;
    if (r.method !== "de" || this.polish || !r.n_steps) return;
    try {
      const data = await getJSON(`/api/runs/${r.id}/steps/?after=${r.n_steps - 2}&limit=1`);
      const s = data.steps && data.steps[0];
      if (s && s.phase === "polish" && this.run.id === r.id) { this.polish = s; this._renderResult(); }
    } catch { /* the result panel just omits the polish line */ }
  }

  _renderResult() {
    const r = this.run;
    const box = this.$("#run-result");
    const res = r.result;
    if (ACTIVE.has(r.status) || (!res && r.status !== "failed" && r.status !== "interrupted")) { box.hidden = true; return; }
    let cls = "alert-success", head = "Converged";
    if (r.status === "failed") { cls = "alert-danger"; head = "Failed"; }
    else if (r.status === "interrupted") { cls = "alert-warning"; head = "Interrupted"; }
    else if (r.status === "stopped" || (res && res.stopped)) { cls = "alert-secondary"; head = "Stopped"; }
    else if (res && !res.success) { cls = "alert-warning"; head = "Ended without converging"; }
    let html = `<h2 class="h6 alert-heading mb-1">${head}</h2>`;
    if (r.status === "failed") html += `<p class="mb-0">${escapeHTML(r.error || "The run failed.")}</p>`;
    else if (r.status === "interrupted") {
      html += this.resuming()
        ? `<p class="mb-0">The worker went away while this run was going. The server queues it again by itself: it continues from its last checkpoint exactly as if nothing had happened.</p>`
        : `<p class="mb-0">The worker went away while this run was going. Its steps up to the last checkpoint are kept; <strong>Resume</strong> continues it exactly where it stopped.</p>`;
    }
    if (res) {
      html += `<p class="mb-2" id="result-reason">${escapeHTML(res.reason || res.message || "")}</p>`;
      const fstar = this._fstar();
      const gap = fstar !== null && res.fun !== null ? `<div class="text-body-secondary">f − f* = ${fmtNum(res.fun - fstar)}</div>` : "";
      const stat = (label, body, id = "") => `<div class="col-sm-6 col-xl-3"${id ? ` id="${id}"` : ""}><div class="stat-label">${label}</div>${body}</div>`;
      html += `<div class="row g-2 small result-stats">`;
      html += stat("best f", `<div class="mono">${fmtNum(res.fun, 10)}</div>${gap}`);
      html += stat("x", `<div class="mono text-break">${fmtVec(res.x, 8, 8)}</div>`);
      html += stat("work", `${res.nit.toLocaleString()} ${r.method === "de" ? "generations" : "iterations"}<br>${(res.nfev ?? 0).toLocaleString()} evaluations of f${res.njev ? `, ${res.njev.toLocaleString()} of ∇f` : ""}`);
      if (r.method === "de") {
        const p = this.polish && this.polish.extra;
        const polishText = !r.options || r.options.polish === false ? "off"
          : !p ? "–"
          : p.accepted ? `accepted: L-BFGS-B moved f to ${fmtNum(p.fun, 8)} (${plural(p.nit, "iteration")}, ${plural(p.nfev, "evaluation")})`
          : `not accepted: ${escapeHTML(p.message || "no improvement")}. The DE best stands.`;
        html += stat("polish (L-BFGS-B)", polishText, "result-polish");
      } else {
        html += stat("final gradient", `<div class="mono text-break">${fmtVec(res.jac, 3, 4)}</div>`);
      }
      html += `</div><div class="small text-body-secondary mt-2">scipy: status ${res.status}, “${escapeHTML(res.message || "")}”</div>`;
    }
    box.className = `alert ${cls} mb-3`;
    box.innerHTML = html;
    box.hidden = false;
    if (r.method === "de" && res && !this.polish) this._loadPolish();
  }

  // ---- contour grid -----------------------------------------------------------------------
  _axesChanged() {
    const ix = Number(this.$("#contour-ix").value), iy = Number(this.$("#contour-iy").value);
    if (ix === iy) {
      // Two different coordinates are needed: move the other select out of the way.
      const other = (ix + 1) % this.dim;
      if (document.activeElement === this.$("#contour-ix")) this.$("#contour-iy").value = String(other);
      else this.$("#contour-ix").value = String(other);
      return this._axesChanged();
    }
    this.ix = ix; this.iy = iy;
    this.ct.setAxes(`x[${ix}]`, `x[${iy}]`);
    this._showMinimum();
    this.gridKey = null;
    this._loadGrid();
    if (this.replay.active) this.replay.reloadSeries();
    else this._reloadLivePath();
  }

  async _reloadLivePath() {
    // The live store only holds the plotted pair: fetch the path for the new pair from the server.
    const run = this.run;
    try {
      const data = await getJSON(`/api/runs/${run.id}/series/?points=${SERIES_POINTS}&x=${this.ix},${this.iy}`);
      if (this.run.id !== run.id) return;
      const have = new Map(data.seq.map((s, i) => [s, data.x[i]]));
      this.live.pts = this.live.seq.map((s) => (have.has(s) ? have.get(s) : null)).filter(Boolean);
    } catch { this.live.pts = []; }
    if (this.latest) this._drawLiveOverlay();
  }

  /** The box the map covers: the bounds when closed; else around x0, the path and the minimum. */
  _box() {
    const b = this.run.bounds;
    const side = (i) => {
      if (b && b[i] && b[i][0] !== null && b[i][1] !== null) return b[i];
      const vals = [];
      if (this.run.x0) vals.push(this.run.x0[i]);
      const L = this.live;
      for (const p of L.pts) if (p) vals.push(p[i === this.ix ? 0 : 1]);
      if (this.replay.series && this.replay.series.x) for (const x of this.replay.series.x) if (x) vals.push(x[i === this.ix ? 0 : 1]);
      if (this.known && this.known.x) vals.push(this.known.x[i]);
      const finite = vals.filter((v) => v !== null && Number.isFinite(v));
      let lo = Math.min(...finite), hi = Math.max(...finite);
      if (!finite.length) { lo = -1; hi = 1; }
      const pad = Math.max(1, 0.25 * (hi - lo));
      lo -= pad; hi += pad;
      if (b && b[i]) { if (b[i][0] !== null) lo = Math.max(lo, b[i][0]); if (b[i][1] !== null) hi = Math.min(hi, b[i][1]); }
      return [lo, hi];
    };
    return { x: side(this.ix), y: side(this.iy) };
  }

  _boxNeedsRefit() {
    const b = this.run.bounds;
    const closed = b && [this.ix, this.iy].every((i) => b[i] && b[i][0] !== null && b[i][1] !== null);
    if (closed || !this.box) return false;
    const p = this.live.pts[this.live.pts.length - 1];
    return p && (p[0] < this.box.x[0] || p[0] > this.box.x[1] || p[1] < this.box.y[0] || p[1] > this.box.y[1]);
  }

  async _loadGrid() {
    if (this.dim < 2) return;
    const run = this.run;
    const box = this._box();
    let at = null;
    if (this.dim > 2) {
      const s = this.replay.active ? this.replay.currentStep : this.latest;
      at = s && s.x ? s.x : run.x0 || (run.bounds ? run.bounds.map((b) => (b[0] + b[1]) / 2) : null);
    }
    const key = JSON.stringify([box, at, this.ix, this.iy]);
    if (key === this.gridKey) return;
    this.gridKey = key;
    this.box = box;
    const q = new URLSearchParams({
      params: JSON.stringify(run.params || {}), dim: String(this.dim), ix: String(this.ix), iy: String(this.iy),
      xlim: box.x.join(","), ylim: box.y.join(","), n: String(GRID_N),
    });
    if (at) q.set("at", JSON.stringify(at));
    try {
      const grid = await getJSON(`/api/problems/${encodeURIComponent(run.problem)}/grid/?${q}`);
      if (this.run.id !== run.id || this.gridKey !== key) return;
      this.ct.setGrid(grid);
      this.ct.setMessage(null);
      const sliced = this.dim > 2 ? ` — a slice through the ${this.replay.active ? "current" : "best"} point` : "";
      this.$("#contour-note").textContent = `f over x[${this.ix}], x[${this.iy}]${sliced}`;
    } catch (e) {
      if (this.gridKey === key) this.ct.setMessage(`Could not load the map (${e.message}).`);
    }
  }

  // ---- compare ------------------------------------------------------------------------------
  /** The same problem under the other method, and a note on what had to be chosen for it. */
  _counterpart() {
    const r = this.run;
    const other = { de: "lbfgsb", lbfgsb: "de" }[r.method];
    if (!other) return null;
    const dim = this.dim;
    const spec = { method: other, problem: r.problem, params: r.params || {}, dim };
    const notes = [];
    let bounds = r.bounds;
    if (other === "de") {
      const open = !bounds || bounds.some((b) => b[0] === null || b[1] === null);
      if (open) {
        const defaults = defaultBounds(this.problem, dim);
        bounds = defaults.map((d, i) => {
          const b = (r.bounds && r.bounds[i]) || [null, null];
          const lo = b[0] === null ? d[0] : b[0], hi = b[1] === null ? d[1] : b[1];
          return lo < hi ? [lo, hi] : d;
        });
        notes.push(`DE needs closed bounds: open sides take ${this.problem ? this.problem.title : "the problem"}'s default bounds ${boundsText(bounds)}`);
      }
      spec.bounds = bounds;
      spec.options = { seed: 1 };
      if (r.x0) spec.x0 = r.x0;
    } else {
      if (bounds) spec.bounds = bounds;
      let x0 = r.x0;
      if (!x0) {
        // A quarter of the way into each bound, as the new-run form does: the centre is the
        // minimum of many test functions and would make the comparison meaningless.
        x0 = bounds ? bounds.map((b) => round4(b[0] + 0.25 * (b[1] - b[0]))) : Array(dim).fill(0);
        notes.push(`This DE run had no x0, so L-BFGS-B will start a quarter of the way into each bound, at ${fmtVec(x0, 4, 4)}`);
      }
      spec.x0 = x0;
      spec.options = {};
    }
    return { spec, note: notes.join(". ") };
  }

  async _compare() {
    const cmp = this._counterpart();
    if (!cmp || !this.onCompare) return;
    const btn = this.$("#btn-compare");
    btn.disabled = true;
    const old = btn.textContent;
    btn.innerHTML = `<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Launching…`;
    try {
      await this.onCompare(cmp.spec);
    } catch (e) {
      this.showAlert(`Could not launch the comparison run: ${e.message}`);
    } finally {
      btn.disabled = false;
      btn.textContent = old;
    }
  }

  showAlert(text, kind = "danger") {
    const el = this.$("#run-alert");
    el.className = `alert alert-${kind} alert-dismissible mb-3`;
    el.innerHTML = `${escapeHTML(text)}<button type="button" class="btn-close" aria-label="Close"></button>`;
    el.querySelector(".btn-close").addEventListener("click", () => { el.hidden = true; });
    el.hidden = false;
  }

  setConnection(state) {
    const el = this.$("#run-conn");
    const text = { connecting: "connecting…", reconnecting: "connection lost, reconnecting…", open: "", closed: "" }[state] ?? "";
    el.textContent = text;
    el.hidden = !text;
  }
}

// ---- replay -----------------------------------------------------------------------------------
class Replay {
  constructor(view) {
    this.view = view;
    const $ = view.$;
    this.$ = $;
    this.blocks = new Map(); // block index -> steps (or a pending Promise)
    this.active = false;
    this.playing = false;
    this._renderSoon = frameBatcher(() => this._render());
    $("#replay-slider").addEventListener("input", (e) => this.go(Number(e.target.value)));
    $("#replay-play").addEventListener("click", () => this.toggle());
    $("#replay-back").addEventListener("click", () => this.go(this.seq - 1));
    $("#replay-fwd").addEventListener("click", () => this.go(this.seq + 1));
    $("#replay-first").addEventListener("click", () => this.go(0));
    $("#replay-last").addEventListener("click", () => this.go(this.n - 1));
    document.addEventListener("keydown", (e) => this._key(e));
  }

  reset() {
    this.stop();
    this.active = false;
    this.series = null;
    this.blocks.clear();
    this.currentStep = null;
    this.$("#replay").hidden = true;
  }

  /** Load the series and show the last step. */
  async open({ fromLive = false } = {}) {
    const v = this.view;
    this.active = true;
    this.n = v.run.n_steps;
    this.seq = this.n - 1;
    const slider = this.$("#replay-slider");
    slider.max = String(Math.max(0, this.n - 1));
    slider.value = String(this.seq);
    this.$("#replay").hidden = false;
    this.$("#replay-status").textContent = "loading steps…";
    this._chooseSpeed();
    this.$("#steps-note").textContent = "";
    const gen = v.generation;
    await this.reloadSeries({ keepPlot: fromLive });
    if (v.generation === gen) this.go(this.seq, { force: true });
  }

  async reloadSeries({ keepPlot = false } = {}) {
    const v = this.view, run = v.run, gen = v.generation;
    let data;
    try {
      data = await getJSON(`/api/runs/${run.id}/series/?points=${SERIES_POINTS}&x=${v.dim >= 2 ? `${v.ix},${v.iy}` : "none"}`);
    } catch (e) {
      if (e.status !== 404) { v.showAlert(`Could not load the run's steps: ${e.message}`); return; }
      data = await this._seriesFromSteps(run.id); // the series endpoint is missing: page through steps
    }
    if (v.run.id !== run.id || v.generation !== gen) return;
    if (typeof data.n_steps === "number" && data.n_steps !== this.n && data.n_steps > 0) {
      this.n = data.n_steps;
      this.$("#replay-slider").max = String(this.n - 1);
      this.seq = Math.min(this.seq, this.n - 1);
    }
    this.series = data;
    if (!keepPlot || data.downsampled) v.cp.setData("run", data.seq, data.fun);
    this.$("#replay-status").textContent = data.downsampled
      ? `plots show ${data.count.toLocaleString()} of ${this.n.toLocaleString()} steps (every bucket's min and max kept)` : "";
    v._loadGrid();
    this._renderSoon();
  }

  async _seriesFromSteps(id) {
    const out = { seq: [], fun: [], x: [], downsampled: false };
    const v = this.view;
    let after = -1;
    for (;;) {
      const data = await getJSON(`/api/runs/${id}/steps/?after=${after}&limit=1000`);
      const steps = data.steps || [];
      for (const s of steps) {
        out.seq.push(s.seq); out.fun.push(s.fun);
        out.x.push(s.x && s.x.length > 1 ? [s.x[v.ix], s.x[v.iy]] : null);
      }
      if (!steps.length) break;
      after = steps[steps.length - 1].seq;
    }
    out.count = out.seq.length;
    out.n_steps = out.seq.length;
    return out;
  }

  _chooseSpeed() {
    // About 15 s for the whole run, from a few fixed choices.
    const sel = this.$("#replay-speed");
    const want = this.n / 15;
    let best = sel.options[0].value;
    for (const o of sel.options) if (Number(o.value) <= Math.max(want, 10)) best = o.value;
    sel.value = best;
  }

  go(seq, { force = false } = {}) {
    if (!this.active || !this.n) return;
    seq = Math.max(0, Math.min(this.n - 1, Math.round(seq)));
    if (seq === this.seq && !force) return;
    this.seq = seq;
    this.$("#replay-slider").value = String(seq);
    this._renderSoon();
  }

  toggle() { if (this.playing) this.stop(); else this.play(); }

  play() {
    if (!this.active || this.n < 2) return;
    if (this.seq >= this.n - 1) this.go(0);
    this.playing = true;
    this._setPlayButton();
    let last = performance.now(), carry = 0;
    const tick = (now) => {
      if (!this.playing) return;
      carry += ((now - last) / 1000) * Number(this.$("#replay-speed").value);
      last = now;
      const whole = Math.floor(carry);
      if (whole > 0) {
        carry -= whole;
        this.go(this.seq + whole);
        if (this.seq >= this.n - 1) { this.stop(); return; }
      }
      this._raf = requestAnimationFrame(tick);
    };
    this._raf = requestAnimationFrame(tick);
  }

  stop() {
    this.playing = false;
    cancelAnimationFrame(this._raf);
    this._setPlayButton();
  }

  _setPlayButton() {
    const b = this.$("#replay-play");
    b.innerHTML = this.playing ? "❚❚ <span class=\"visually-hidden\">Pause</span>" : "▶ <span class=\"visually-hidden\">Play</span>";
    b.setAttribute("aria-pressed", this.playing ? "true" : "false");
    b.title = this.playing ? "Pause (Space)" : "Play (Space)";
  }

  _key(e) {
    if (!this.active || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    const slider = t && t.id === "replay-slider";
    if (!slider && t && t.closest && t.closest("input, select, textarea, button, a, [contenteditable]")) return;
    if (slider && e.key !== " ") return; // the range input does arrows/Home/End itself
    const step = e.shiftKey ? 10 : 1;
    const keys = {
      ArrowLeft: () => this.go(this.seq - step), ArrowRight: () => this.go(this.seq + step),
      Home: () => this.go(0), End: () => this.go(this.n - 1), " ": () => this.toggle(),
    };
    if (!keys[e.key]) return;
    e.preventDefault();
    if (e.key !== " ") this.stop();
    keys[e.key]();
  }

  // -- drawing the current step --
  _render() {
    const v = this.view, seq = this.seq, S = this.series;
    this.$("#replay-pos").textContent = `step ${seq.toLocaleString()} of ${(this.n - 1).toLocaleString()}`;
    v.cp.setMarker(seq);
    const step = this._stepNow(seq);
    this.currentStep = step;
    if (S && S.x && v.dim >= 2) {
      const end = upperBound(S.seq, seq);
      let pts = S.x.slice(0, end).filter(Boolean);
      // The series may be thinned: end the path exactly at the current step.
      if (step && step.x && S.seq[end - 1] !== seq) pts = [...pts, [step.x[v.ix], step.x[v.iy]]];
      pts = thinPath(pts);
      v.ct.setPath("run", pts.map((p) => p[0]), pts.map((p) => p[1]), { name: "best point", color: "#ff4d4f" });
      if (!step) {
        const last = S.x[end - 1];
        if (last) v.ct.setMarker(last[0], last[1]);
        v.ct.setPopulation(null); v.ct.setLineSearch(null);
      }
    }
    if (step) {
      v._showStepDetail(step);
      v.latest = step;
      v._renderProgress();
      if (v.dim > 2 && !this.playing) v._loadGrid();
    }
    this._renderTable(seq);
    this._prefetch(seq);
  }

  _stepNow(seq) {
    const b = this.blocks.get(Math.floor(seq / BLOCK));
    return Array.isArray(b) ? b.find((s) => s.seq === seq) || null : null;
  }

  _prefetch(seq) {
    const first = Math.floor(Math.max(0, seq - REPLAY_ROWS) / BLOCK);
    const last = Math.floor(Math.min(this.n - 1, seq + REPLAY_ROWS + (this.playing ? BLOCK : 0)) / BLOCK);
    for (let b = first; b <= last; b++) this._block(b);
    // Keep the cache small: a 100,000-step run must not end up in memory.
    if (this.blocks.size > 60) {
      for (const k of [...this.blocks.keys()]) if (Math.abs(k - seq / BLOCK) > 20) this.blocks.delete(k);
    }
  }

  _block(b) {
    if (this.blocks.has(b)) return;
    const run = this.view.run;
    const p = getJSON(`/api/runs/${run.id}/steps/?after=${b * BLOCK - 1}&limit=${BLOCK}`)
      .then((data) => {
        if (this.view.run.id !== run.id) return;
        this.blocks.set(b, data.steps || []);
        const lo = b * BLOCK, hi = lo + BLOCK;
        if (this.seq >= lo - REPLAY_ROWS && this.seq < hi + REPLAY_ROWS) this._renderSoon();
      })
      .catch(() => this.blocks.delete(b));
    this.blocks.set(b, p);
  }

  _renderTable(seq) {
    const v = this.view;
    const lo = Math.max(0, seq - Math.floor(REPLAY_ROWS / 2)), hi = Math.min(this.n - 1, lo + REPLAY_ROWS - 1);
    const rows = [];
    for (let s = hi; s >= lo; s--) {
      const b = this.blocks.get(Math.floor(s / BLOCK));
      const step = Array.isArray(b) ? b.find((x) => x.seq === s) : null;
      rows.push(step ? v._rowHTML(step, s === seq)
        : `<tr data-seq="${s}"${s === seq ? ' class="table-active current"' : ""}><td colspan="9" class="text-body-secondary">step ${s} loading…</td></tr>`);
    }
    v.$("#steps-body").innerHTML = rows.join("");
    v.$("#steps-note").innerHTML = `steps ${lo.toLocaleString()}–${hi.toLocaleString()} of ${(this.n - 1).toLocaleString()} around the current one; <a href="/runs/${v.run.id}/steps.csv">the CSV</a> has them all`;
    const cur = v.$("#steps-body tr.current");
    const box = v.$("#steps-scroll");
    if (cur && box) {
      const top = cur.offsetTop - box.clientHeight / 2;
      box.scrollTop = Math.max(0, top);
    }
  }
}

// ---- watching a run ---------------------------------------------------------------------------
/**
 * Drives a RunView from the run's watch socket (/ws/runs/<id>/) for as long as the run can change.
 * An interrupted run stays watched: when it is queued again (by the server, or by Resume from any
 * page) the view goes live again from the first stored step.
 */
export class RunWatch {
  constructor(view, { knownMinimum = undefined, onRun = () => {} } = {}) {
    this.view = view;
    this.known = knownMinimum;
    this.onRun = onRun; // (Run) after every change the socket brought
    this.sock = null;
    this.ended = true;
  }

  /** Watch `run`: live from its first step when it is active; else only for what comes next. */
  follow(run) {
    this.close();
    this.ended = !ACTIVE.has(run.status);
    if (this.ended && run.status !== "interrupted") return; // nothing more will happen to it
    // An ended run's steps are on screen already: the server starts after the last of them.
    const path = this.ended ? `/ws/runs/${run.id}/?after=${Math.max(-1, (run.n_steps || 0) - 1)}` : `/ws/runs/${run.id}/`;
    const token = {}; // messages of an earlier socket of this watch are dropped
    this._token = token;
    this.sock = new RunSocket(path, {
      subscribeOnOpen: !this.ended,
      onMessage: (msg) => { if (this._token === token) this._onMessage(msg); },
      onState: (state) => { if (this._token === token) this.view.setConnection(state); },
    });
  }

  control(action) {
    if (this.sock) this.sock.send({ type: action });
  }

  close() {
    const sock = this.sock;
    this.sock = null;
    this._token = null;
    if (sock) { sock.close(); this.view.setConnection("closed"); }
  }

  _onMessage(msg) {
    const view = this.view;
    switch (msg.type) {
      case "run":
      case "status":
        if (this.ended && ACTIVE.has(msg.run.status)) { this._relive(msg.run); return; }
        view.setRun(msg.run);
        if (this.ended && msg.run.status !== "interrupted") this.close();
        break;
      case "steps":
        if (!this.ended) view.addSteps(msg.steps);
        break;
      case "finished":
        if (this.ended) { view.setRun(msg.run); break; } // said again after a reconnect
        this.ended = true;
        view.ended(msg.run);
        if (msg.run.status !== "interrupted") this.close();
        break;
      case "error":
        view.showAlert(msg.message || "The server refused that.");
        view.setRun({}); // re-enable the buttons that still apply
        break;
      default:
        return;
    }
    this.onRun(view.run);
  }

  _relive(run) {
    // A fresh socket replays every stored step from the start and then goes on live.
    const known = this.view.known;
    this.view.showRun(run, { mode: "live", knownMinimum: known === null ? this.known : known });
    this.follow(run);
    this.onRun(this.view.run);
  }
}

// ---- helpers ------------------------------------------------------------------------------------
function waitingText(status) {
  return status === "queued" ? "Queued: the first step comes as soon as a worker takes the run."
    : status === "paused" ? "Paused before its first step." : "Waiting for the first step…";
}

function ordinal(n) {
  const suffix = n % 100 >= 10 && n % 100 <= 20 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}

/** Where the run is, after its status word (history_tags.status_note says the same server-side). */
function statusNote(run, { resuming = false } = {}) {
  const s = run.status, pos = run.queue_position;
  if (run.stopping && ACTIVE.has(s)) return "stopping…";
  switch (s) {
    case "queued": return !pos ? "waiting for a worker" : pos === 1 ? "next in line" : `${ordinal(pos)} in line`;
    case "running": return run.worker ? `on ${run.worker}` : "";
    case "paused": return "holds no worker";
    case "interrupted": return resuming ? "the worker went away; resuming…" : "the worker went away";
    default: return "";
  }
}

function upperBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (xs[m] <= x) lo = m + 1; else hi = m; }
  return lo;
}

/** At most ~1500 points of a path, always keeping the first and the last. */
function thinPath(pts) {
  const clean = pts.filter(Boolean);
  const max = 1500;
  if (clean.length <= max) return clean;
  const k = clean.length / max;
  const out = [];
  for (let i = 0; i < max; i++) out.push(clean[Math.floor(i * k)]);
  out.push(clean[clean.length - 1]);
  return out;
}

function plural(n, word) { return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`; }

function round4(v) { return Number(v.toPrecision(6)); }

export function boundsText(bounds) {
  if (!bounds || !bounds.length) return "none";
  const one = (b) => `[${b[0] === null ? "−∞" : fmtNum(b[0])}, ${b[1] === null ? "∞" : fmtNum(b[1])}]`;
  const same = bounds.every((b) => b[0] === bounds[0][0] && b[1] === bounds[0][1]);
  if (same) return bounds.length > 1 ? `${one(bounds[0])}ⁿ` : one(bounds[0]);
  const shown = bounds.slice(0, 3).map(one).join(" × ");
  return bounds.length > 3 ? `${shown} × …` : shown;
}

/** The problem's default bounds for any dimension (the catalogue lists them for its default dim). */
export function defaultBounds(problem, dim) {
  const d = (problem && problem.default_bounds) || [[-5, 5]];
  return Array.from({ length: dim }, (_, i) => [...(d[i] || d[d.length - 1])]);
}
