// The run view shared by /runs/new/ (after launching) and /runs/<id>/: the shell that owns the
// header (status, controls, progress, compare), the result panel and the alerts, and hands the
// rest to its parts:
//   livestream.js   LiveFeed (socket steps -> buffer -> one draw per frame) and RunWatch (the socket)
//   replay.js       Replay (the timeline of an ended run)
//   steptable.js    StepTable (bounded while live, windowed over the whole run in replay)
//   objectivemap.js ObjectiveMap (contour, or f(x) for 1-D, with path / population / line search)
//   stepstore.js    StepStore (stored steps in pages, single full steps)
//   counterpart.js  CompareButtons ("Compare with …", reusing an identical run)
//
//   const view = new RunView(document.getElementById("run-view"), { problems, methods, tableRows: 50 });
//   view.showRun(run, { mode: "live" });   // a Run object (PROTOCOL); resets everything
//   view.addSteps(steps);                  // live steps, any rate
//   view.setRun(run);                      // status changes
//   view.ended(run);                       // final Run: result panel, then replay from the server
//   view.showDeleted(message);             // the run was deleted elsewhere
//   view.onControl = (action) => ...;      // "stop" | "pause" | "resume" buttons
//   view.onCompare = async (spec) => ...;  // launch the counterpart and open the comparison
//
// The root element carries what the page shows for tests and benchmarks: data-phase (live,
// replay, deleted), data-latest-seq (the newest step drawn), data-series ("drawn"), data-cursor.
import { ConvergencePlot } from "./plots.js";
import { escapeHTML, getJSON } from "./api.js";
import { fmtCount, fmtF, fmtSeconds, fmtVec } from "./format.js";
import { CompareButtons } from "./counterpart.js";
import { LiveFeed, RunWatch } from "./livestream.js";
import { ObjectiveMap } from "./objectivemap.js";
import { Replay } from "./replay.js";
import { StepStore } from "./stepstore.js";
import { StepTable } from "./steptable.js";
import {
  ACTIVE, PENDING_NOTE, STATUS_CLASS, boundsText, defaultBounds, jacText, methodTitle, plural, statusNote, stepNo,
  waitingText,
} from "./runtext.js";

export { ACTIVE, RunWatch, boundsText, defaultBounds };

const QUEUE_POLL_MS = 2000;
// An interruption seen live is followed by the server queueing the run again within moments; if
// that has not happened by then, the page offers Resume instead of promising it.
const RESUME_WAIT_MS = 15000;

export class RunView {
  constructor(root, { problems = [], methods = [], tableRows = 50 } = {}) {
    this.root = root;
    this.problems = new Map(problems.map((p) => [p.name, p]));
    this.methods = new Map(methods.map((m) => [m.name, m]));
    this.onControl = null;
    this.onCompare = null;
    this.$ = (sel) => root.querySelector(sel);
    this.run = null;
    this.generation = 0; // bumped by showRun: answers for an earlier showing are dropped
    this._pending = null; // a control sent and not yet answered
    this._resumeBy = 0;
    this._pollTimer = null;
    this.table = new StepTable(this.$, { liveRows: tableRows, onPick: (seq) => { this.replay.stop(); this.replay.go(seq); } });
    this.map = new ObjectiveMap(this);
    this.map.onAxes = () => this._axesChanged();
    this.feed = new LiveFeed(this);
    this.replay = new Replay(this);
    this.compare = new CompareButtons(this);
    this._bind();
  }

  _bind() {
    for (const action of ["stop", "pause", "resume"]) {
      this.$(`#btn-${action}`).addEventListener("click", () => {
        if (!this.onControl) return;
        // Show the pending state at once, then send: the socket's handler does no drawing, so the
        // message leaves in the same task.
        this._pending = action;
        this._keepFocus = true;
        this._renderState();
        this.onControl(action);
      });
    }
    window.addEventListener("resize", () => { this.cp && this.cp.resize(); this.map.resize(); });
  }

  /** Reset and show `run`. mode "live": steps come through addSteps; "replay": load from the server. */
  showRun(run, { mode = "live", knownMinimum = undefined } = {}) {
    this.run = run;
    this.generation += 1;
    this._pending = null;
    this._resumeBy = 0;
    this.mode = mode;
    this.problem = this.problems.get(run.problem) || null;
    this.known = knownMinimum === undefined ? null : knownMinimum;
    this.dim = run.dim || (run.x0 ? run.x0.length : 2);
    this.latest = null;
    this.polish = null;
    this.root.dataset.phase = mode;
    delete this.root.dataset.latestSeq;
    delete this.root.dataset.series;
    delete this.root.dataset.cursor;
    this.store = new StepStore(run.id, {
      onChange: () => { this.table.refresh(); this.replay.stepsArrived(); },
      onGone: () => this.showDeleted(),
    });
    if (this.$("#run-empty")) this.$("#run-empty").hidden = true;
    this.$("#run-main").hidden = false; // before the plots are made: Plotly sizes them to their box
    this.$("#run-alert").hidden = true;
    this.replay.reset();
    this.feed.reset(run);
    this.table.reset(run);
    this.map.reset(run, this.dim, this.known);
    this._renderHead();
    this._initPlots();
    this.setRun(run);
    this._renderResult();
    if (knownMinimum === undefined) this._fetchKnownMinimum();
    this.loadGrid();
    if (!run.n_steps) {
      this.table.empty(mode === "live" ? waitingText(run.status) : "This run has no stored steps.");
      this.root.dataset.series = "drawn"; // no history to fill behind what arrives
    } else if (mode === "replay") this.replay.open();
    else this.feed.catchUp(run);
  }

  _initPlots() {
    const title = `${methodTitle(this.methods, this.run.method)} run ${this.run.id}`;
    if (!this.cp) {
      this.cp = new ConvergencePlot(this.$("#plot-convergence"), { fstar: this._fstar(), xTitle: "iteration" });
    } else {
      this.cp.setFstar(this._fstar());
      for (const id of [...this.cp.series.keys()]) this.cp.removeSeries(id);
    }
    this.cp.addSeries("run", title, { color: "#0d6efd" });
    this.cp.setMarker(null);
    this._convergenceNote();
  }

  _fstar() { return this.known && typeof this.known.f === "number" ? this.known.f : null; }

  async _fetchKnownMinimum() {
    const run = this.run;
    if (run.problem === "external") return; // a function of the user's own: no f* here
    const q = new URLSearchParams({ problem: run.problem, dim: String(this.dim), params: JSON.stringify(run.params || {}) });
    try {
      const data = await getJSON(`/runs/new/known-minimum/?${q}`);
      if (this.run.id !== run.id) return;
      this.known = data.known_minimum;
      this.cp.setFstar(this._fstar());
      this._convergenceNote();
      this.map.setMinimum(this.known);
    } catch { /* f* stays unknown: the plot shows f */ }
  }

  _convergenceNote() {
    const f = this._fstar();
    this.$("#convergence-note").textContent = f === null
      ? "f (no known minimum for these coefficients)"
      : `f − f*, with f* = ${fmtF(f)} (values ≤ 0 drawn at 1e-16)`;
  }

  _renderHead() {
    const r = this.run;
    const p = this.problem;
    const params = Object.entries(r.params || {}).map(([k, v]) => `${k}=${fmtF(v)}`).join(", ");
    const title = `${methodTitle(this.methods, r.method)} on ${p ? p.title : r.problem}`;
    this.$("#run-title").innerHTML = `<a href="/runs/${r.id}/" class="link-body-emphasis text-decoration-none">Run ${r.id}</a>` +
      ` <span class="fw-normal">· ${escapeHTML(title)}</span>` +
      (r.label ? ` <span class="badge text-bg-light border fw-normal run-label">${escapeHTML(r.label)}</span>` : "");
    const bits = [];
    bits.push(`${escapeHTML(p ? p.title : r.problem)}${params ? ` (${escapeHTML(params)})` : ""}, ${this.dim}-D`);
    if (r.bounds) bits.push(`bounds ${boundsText(r.bounds)}`);
    if (r.x0) bits.push(`x0 ${fmtVec(r.x0, 4)}`);
    const o = r.options || {};
    if (r.method === "de") bits.push(`popsize ${fmtCount(o.popsize)}, tol ${fmtF(o.tol)}, seed ${o.seed ?? (o.rng !== null && o.rng !== undefined ? `rng ${o.rng}` : "none")}`);
    if (r.method === "lbfgsb") bits.push(`${escapeHTML(jacText(o))}, gtol ${fmtF(o.gtol)}`);
    this.$("#run-subtitle").innerHTML = bits.join(" · ");
    this.$("#btn-csv").href = `/runs/${r.id}/steps.csv`;
    this.compare.update(r);
  }

  // ---- status ---------------------------------------------------------------------------
  setRun(run) {
    if (this.root.dataset.phase === "deleted") return;
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
    this.renderProgress();
    if (s === "failed" || s === "interrupted") this._renderResult();
    if (this.mode === "live" && ACTIVE.has(s)) this.table.setEmptyText(waitingText(s));
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
    // An external run's controls are obeyed by its owner's Python process between steps; an
    // interrupted one goes on when that process reconnects, not from here.
    const external = r.problem === "external";
    const can = {
      pause: !blocked && (s === "running" || s === "queued"),
      resume: !blocked && (s === "paused" || (s === "interrupted" && !external)),
      stop: !blocked && (ACTIVE.has(s) || s === "interrupted"),
    };
    const titles = external ? {
      pause: "Its Python process waits after the step it is computing",
      resume: s === "interrupted" ? "It goes on when its Python process reconnects" : "Its Python process goes on",
      stop: s === "interrupted" ? "Its Python process stops when it reconnects" : "Its Python process stops after the step it is computing",
    } : {
      pause: s === "queued" ? "Take it out of the queue; Resume puts it back" : "Store a checkpoint and free the worker",
      resume: s === "interrupted" ? "Continue from the last checkpoint" : "Queue it again; it goes on where it paused",
      stop: s === "interrupted" ? "End the run as stopped, with the result of its last checkpoint" : "End the run; its steps so far are kept",
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
    } catch (e) {
      if (e.status === 404 && this.generation === gen) { this.showDeleted(); return; }
    }
    this._pollTimer = null;
    this._syncPoll();
  }

  /** The progress bar and counters, for the newest step drawn (live) or the current one (replay). */
  renderProgress() {
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
    // Striped while active, never animated: an animated stripe repaints the page every frame (in
    // software where there is no GPU), a steady cost that a live run cannot afford. The counters move.
    bar.className = "progress-bar" + (active ? " progress-bar-striped" : "")
      + (r.status === "interrupted" ? " bg-warning" : "")
      + (r.status === "finished" ? (r.result && !r.result.success ? " bg-warning" : " bg-success") : "")
      + (r.status === "failed" ? " bg-danger" : "") + (r.status === "stopped" ? " bg-secondary" : "");
    this.$("#run-progress").setAttribute("aria-valuenow", String(Math.round(100 * frac)));
    const unit = r.method === "de" ? "generation" : "iteration";
    const best = last ? last.fun : r.best_fun;
    const n = this.replay.active ? this.replay.n : Math.max(r.n_steps || 0, last ? last.seq + 1 : 0);
    const stepText = last ? `step <strong>${fmtCount(stepNo(last.seq))}</strong>${this.replay.active ? ` of ${fmtCount(n)}` : ""}`
      : plural(n, "step");
    const html =
      `<span>${stepText}</span>` +
      `<span>${unit} <strong>${fmtCount(nit)}</strong>${maxiter ? ` of ${fmtCount(maxiter)}` : ""}</span>` +
      `<span><strong>${fmtCount(nfev)}</strong> evaluations${r.method === "lbfgsb" && o.maxfun ? ` of ${fmtCount(o.maxfun)}` : ""}</span>` +
      `<span>f <strong class="mono">${fmtF(best)}</strong></span>` +
      `<span>${fmtSeconds(elapsed)}</span>` +
      (r.status === "running" && r.method === "de" ? `<span class="text-body-secondary">DE usually stops well before maxiter, when the population agrees</span>` : "");
    const counters = this.$("#run-counters");
    if (counters._html !== html) { counters._html = html; counters.innerHTML = html; }
  }

  // ---- live steps ----------------------------------------------------------------------------
  addSteps(steps) { this.feed.push(steps); }

  // ---- the end ------------------------------------------------------------------------------
  /** The run ended (Run object with result): draw what is waiting, show the result, switch to replay. */
  ended(run) {
    this.feed.flushNow();
    this.setRun(run);
    this.mode = "replay";
    this.root.dataset.phase = "replay";
    this._renderResult();
    if (this.run.n_steps > 0) {
      this.store.seed(this.feed.rows);
      this.replay.open({ fromLive: true });
    }
  }

  /** The run is gone (deleted in another tab or window): say so, link to the history, stop everything. */
  showDeleted(message) {
    if (this.root.dataset.phase === "deleted") return;
    this.generation += 1; // late answers for the run are dropped
    this.root.dataset.phase = "deleted";
    this.replay.reset();
    this.feed.reset(this.run);
    this.store.gone = true;
    clearTimeout(this._pollTimer); this._pollTimer = null;
    const r = this.run;
    const badge = this.$("#run-status");
    badge.className = `badge ${STATUS_CLASS.deleted}`;
    badge.textContent = "deleted";
    this.$("#run-where").hidden = true;
    this.$("#run-controls").hidden = true;
    this.$("#btn-compare").hidden = true;
    const fresh = this.$("#btn-compare-fresh");
    if (fresh) fresh.hidden = true;
    this.$("#compare-note").hidden = true;
    this.$("#run-result").hidden = true;
    this.setConnection("closed");
    const el = this.$("#run-alert");
    el.className = "alert alert-warning mb-3 run-deleted";
    el.setAttribute("role", "alert");
    el.innerHTML = `<strong>${escapeHTML(message || `Run ${r.id} was deleted.`)}</strong> Its steps are gone with it; `
      + `what is drawn below is what this page had. <a href="/runs/" class="alert-link">Back to the runs</a>.`;
    el.hidden = false;
    this.table.reset(this.run); // out of windowed mode: nothing more is fetched or drawn
    this.table.empty("The run was deleted.");
  }

  async _loadPolish() {
    // The polish step is the last one of a DE run that polished.
    const r = this.run;
    if (r.method !== "de" || this.polish || !r.n_steps) return;
    try {
      const s = await this.store.full(r.n_steps - 1);
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
        : `<p class="mb-0">The worker went away while this run was going. Its steps up to the last checkpoint are kept; <strong>Resume</strong> continues it exactly where it stopped, <strong>Stop</strong> ends it with the result of that checkpoint.</p>`;
    }
    if (res) {
      html += `<p class="mb-2" id="result-reason">${escapeHTML(res.reason || res.message || "")}</p>`;
      const fstar = this._fstar();
      const gap = fstar !== null && res.fun !== null ? `<div class="text-body-secondary">f − f* = ${fmtF(res.fun - fstar)}</div>` : "";
      const stat = (label, body, id = "") => `<div class="col-sm-6 col-xl-3"${id ? ` id="${id}"` : ""}><div class="stat-label">${label}</div>${body}</div>`;
      html += `<div class="row g-2 small result-stats">`;
      html += stat("best f", `<div class="mono">${fmtF(res.fun)}</div>${gap}`);
      html += stat("x", `<div class="mono text-break">${fmtVec(res.x, 8)}</div>`);
      html += stat("work", `${fmtCount(res.nit)} ${r.method === "de" ? "generations" : "iterations"}<br>${fmtCount(res.nfev ?? 0)} evaluations of f${res.njev ? `, ${fmtCount(res.njev)} of ∇f` : ""}`);
      if (r.method === "de") {
        const p = this.polish && this.polish.extra;
        const polishText = !r.options || r.options.polish === false ? "off"
          : !p ? "–"
          : p.accepted ? `accepted: L-BFGS-B moved f to ${fmtF(p.fun)} (${plural(p.nit, "iteration")}, ${plural(p.nfev, "evaluation")})`
          : `not accepted: ${escapeHTML(p.message || "no improvement")}. The DE best stands.`;
        html += stat("polish (L-BFGS-B)", polishText, "result-polish");
      } else if (res.jac) {
        html += stat("final gradient", `<div class="mono text-break">${fmtVec(res.jac, 4)}</div>`);
      }
      html += `</div><div class="small text-body-secondary mt-2">scipy: status ${escapeHTML(String(res.status))}, “${escapeHTML(res.message || "")}”</div>`;
    }
    box.className = `alert ${cls} mb-3`;
    box.innerHTML = html;
    box.hidden = false;
    if (r.method === "de" && res && !this.polish) this._loadPolish();
  }

  // ---- the map ------------------------------------------------------------------------------
  loadGrid(opts = {}) {
    const points = opts.points || (this.replay.active ? this.replay.pairs : this.feed.path) || [];
    const at = opts.at || (this.replay.active ? this.replay.currentStep && this.replay.currentStep.x : this.latest && this.latest.x);
    return this.map.loadGrid({ ...opts, points, at });
  }

  _axesChanged() {
    this.loadGrid();
    if (this.replay.active) { this.replay.reloadSeries(); return; }
    this._reloadLivePath();
  }

  async _reloadLivePath() {
    // The live path holds only the plotted pair: fetch the path for the new pair from the server.
    const run = this.run, gen = this.generation;
    try {
      const data = await getJSON(`/api/runs/${run.id}/series/?points=2000&x=${this.map.seriesX()}`);
      if (this.generation !== gen) return;
      this.feed.path = this.map.seriesPairs(data);
    } catch { this.feed.path = []; }
    this.feed.mapDirty = true;
    this.feed.nextMap = 0;
    this.feed._schedule(0);
  }

  showAlert(text, kind = "danger") {
    if (this.root.dataset.phase === "deleted") return;
    const el = this.$("#run-alert");
    el.className = `alert alert-${kind} alert-dismissible mb-3`;
    el.innerHTML = `${escapeHTML(text)}<button type="button" class="btn-close" aria-label="Close"></button>`;
    el.querySelector(".btn-close").addEventListener("click", () => { el.hidden = true; });
    el.hidden = false;
  }

  setConnection(state) {
    const el = this.$("#run-conn");
    const text = { connecting: "connecting…", reconnecting: "connection lost, reconnecting…" }[state] ?? "";
    el.textContent = text;
    el.hidden = !text;
  }
}
