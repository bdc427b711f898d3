// Live steps: what the socket brings goes into a buffer (no DOM work per message), and a frame
// draws what arrived since the last one, at most once per animation frame:
//   - the step table and the counters every frame (bounded: a fixed number of rows);
//   - the convergence plot by extending its trace, spaced so that drawing it takes at most ~10 %
//     of the time (the spacing follows what the last extend cost);
//   - the map a few times a second: the path (thinned as it grows) and the population / line
//     search of the newest step only.
// A page that opens a run which is already going draws its newest stored step and the downsampled
// series at once, and takes the rest from the socket, which starts after the last step the page
// was rendered with (RunWatch): nothing is replayed.
//
//   const feed = new LiveFeed(view);   feed.reset(run);   feed.push(steps);   await feed.catchUp(run);
//   const watch = new RunWatch(view);  watch.follow(run);  watch.control("pause");  watch.close();
import { getJSON, RunSocket } from "./api.js";
import { hasBulky } from "./stepstore.js";
import { ACTIVE } from "./runtext.js";

const SERIES_POINTS = 2000;
// At most these shares of the time go to redrawing, each by what its last redraw took: a
// thousand steps a second then cost the page no more than ten.
const PLOT_SHARE = 0.1; // the convergence plot
const PLOT_MIN_MS = 200, PLOT_MAX_MS = 2000;
const MAP_MS = 1000; // map updates while live (each redraws the whole contour), at the least this far apart
const MAP_SHARE = 0.05;
// The table and the readout while live: nobody reads 60 updates a second, and each one lays out
// and paints the table again (at L-BFGS-B's thousand steps a second, the page's largest cost).
const TEXT_MS = 125, TEXT_SHARE = 0.05;
const SLICE_MS = 3000; // dim > 2: how often the slice follows the best point
const PATH_MAX = 4000; // live path points kept (halved when full; the newest point is always drawn)

export class LiveFeed {
  constructor(view) {
    this.view = view;
    this._due = null;
    this._timer = null;
    this._raf = null;
  }

  reset(run) {
    this.run = run;
    this.count = 0; // steps of the run known here (highest seq + 1)
    this.received = 0;
    this.latest = null;
    this.latestFull = null; // the newest step that carries its population / line search
    this.polish = null;
    this.rows = []; // the newest steps for the table, oldest first (at most liveRows … 2 × liveRows)
    this.newRows = [];
    this.cpX = []; this.cpF = []; // not yet on the convergence plot
    this.liveX = []; this.liveF = []; // every live point, until the series of the history is drawn
    this.keepLive = false;
    this.historyUpto = -1; // steps up to this seq come from the series, not the socket
    this.path = [];
    this.latestDirty = false;
    this.mapDirty = false;
    this.nextPlot = 0;
    this.nextMap = 0;
    this.nextText = 0;
    this.lastSlice = 0;
    this._cancel();
  }

  get liveRows() { return this.view.table.liveRows; }

  /** Steps from the socket, in seq order. Cheap: no DOM work here. */
  push(steps) {
    const map = this.view.map, R = this.liveRows;
    for (const s of steps) {
      if (s.seq < this.count) continue; // held already
      this.count = s.seq + 1;
      this.received += 1;
      if (s.seq > this.historyUpto) {
        this.cpX.push(s.seq); this.cpF.push(s.fun);
        if (this.keepLive) { this.liveX.push(s.seq); this.liveF.push(s.fun); }
        const p = map.pair(s);
        if (p) this._addPath(p);
      }
      if (s.phase === "polish") this.polish = s;
      if (hasBulky(s)) this.latestFull = s;
      this.newRows.push(s);
      this.rows.push(s);
      this.latest = s;
    }
    if (this.newRows.length > R) this.newRows.splice(0, this.newRows.length - R);
    if (this.rows.length > 2 * R) this.rows.splice(0, this.rows.length - R);
    this.latestDirty = true;
    this.mapDirty = true;
    this._schedule(0);
  }

  _addPath(p) {
    const path = this.path;
    path.push(p);
    if (path.length > PATH_MAX) {
      const kept = [];
      for (let i = 0; i < path.length - 1; i += 2) kept.push(path[i]);
      kept.push(path[path.length - 1]);
      this.path = kept;
    }
  }

  /**
   * A run that has stored steps already: its newest step (with population / line search), the
   * newest rows of the table and the downsampled series, fetched in parallel and drawn as each
   * arrives. Steps after run.n_steps - 1 come from the socket meanwhile.
   */
  async catchUp(run) {
    const n0 = run.n_steps || 0;
    if (!n0) return;
    const view = this.view, gen = view.generation, R = this.liveRows;
    this.historyUpto = n0 - 1;
    this.count = Math.max(this.count, n0);
    this.keepLive = true;
    const stale = () => view.generation !== gen;
    const latest = view.store.latest(n0).then((step) => {
      if (stale() || !step) return;
      if (!this.latest || step.seq >= this.latest.seq) {
        this.latest = step;
        this.latestFull = step;
        if (step.phase === "polish") this.polish = step;
        this.latestDirty = true;
        this.mapDirty = true;
        this._schedule(0);
      }
    });
    const rows = getJSON(`/api/runs/${run.id}/steps/?after=${Math.max(-1, n0 - 1 - R)}&limit=${R}`).then((data) => {
      if (stale()) return;
      const older = (data.steps || []).filter((s) => s.seq < n0);
      const live = this.rows.filter((s) => s.seq >= n0);
      this.rows = [...older, ...live].slice(-R);
      this.newRows = [];
      view.table.empty("");
      view.table.prepend(this.rows, this.count);
    });
    const series = getJSON(`/api/runs/${run.id}/series/?points=${SERIES_POINTS}&x=${view.map.seriesX()}`).then((data) => {
      if (stale()) return;
      const keep = [];
      for (let i = 0; i < data.seq.length; i++) if (data.seq[i] <= this.historyUpto) keep.push(i);
      const xs = keep.map((i) => data.seq[i]).concat(this.liveX);
      const fs = keep.map((i) => data.fun[i]).concat(this.liveF);
      const past = view.map.seriesPairs({ x: keep.map((i) => data.x && data.x[i]), fun: keep.map((i) => data.fun[i]) });
      this.keepLive = false;
      this.liveX = []; this.liveF = [];
      this.cpX = []; this.cpF = [];
      view.cp.setData("run", xs, fs);
      this.path = past.concat(this.path);
      while (this.path.length > PATH_MAX) this.path = this.path.filter((_, i) => i % 2 === 0 || i === this.path.length - 1);
      this.mapDirty = true;
      view.root.dataset.series = "drawn";
      markOnce("optsite:series");
      this._schedule(0);
    });
    const results = await Promise.allSettled([latest, rows, series]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed && !stale() && !view.store.gone) {
      const e = failed.reason;
      if (e && e.status === 404) view.showDeleted();
      else view.showAlert(`Could not load what the run has done so far: ${e && e.message}`);
    }
  }

  /** Draw everything that is waiting, now (the run ended). */
  flushNow() {
    this._cancel();
    this.nextPlot = 0;
    this.nextMap = 0;
    this.nextText = 0;
    this._frame();
  }

  _cancel() {
    clearTimeout(this._timer);
    if (this._raf !== null) cancelAnimationFrame(this._raf);
    this._timer = null; this._raf = null; this._due = null;
  }

  _schedule(delay) {
    const due = performance.now() + delay;
    if (this._due !== null && this._due <= due) return;
    this._cancel();
    this._due = due;
    const frame = () => { this._raf = requestAnimationFrame(() => { this._raf = null; this._due = null; this._frame(); }); };
    if (delay <= 0) frame(); else this._timer = setTimeout(() => { this._timer = null; frame(); }, delay);
  }

  _frame() {
    const view = this.view, now = performance.now();
    let wait = Infinity;
    if (this.newRows.length || (this.latestDirty && this.latest)) {
      if (now >= this.nextText) this._texts(now); else wait = this.nextText - now;
    }
    if (this.cpX.length) {
      if (now >= this.nextPlot) {
        view.cp.extend("run", this.cpX, this.cpF); // drawn by the plot on a later frame
        this.cpX = []; this.cpF = [];
        this.nextPlot = now + Math.min(PLOT_MAX_MS, Math.max(PLOT_MIN_MS, view.cp.drawCost / PLOT_SHARE));
      } else wait = Math.min(wait, this.nextPlot - now);
    }
    if (this.mapDirty) {
      if (now >= this.nextMap) {
        this.mapDirty = false;
        this.nextMap = now + Math.max(MAP_MS, view.map.ct.drawCost / MAP_SHARE);
        this._drawMap(now);
      } else wait = Math.min(wait, this.nextMap - now);
    }
    if (wait < Infinity) this._schedule(wait);
  }

  /** The table's newest rows and the readout of the newest step. */
  _texts(now) {
    const view = this.view, t0 = performance.now();
    if (this.newRows.length) {
      view.table.prepend(this.newRows, this.count);
      this.newRows = [];
    }
    if (this.latestDirty && this.latest) {
      this.latestDirty = false;
      view.latest = this.latest;
      view.polish = this.polish || view.polish;
      view.renderProgress();
      if (view.root.dataset.latestSeq === undefined) markOnce("optsite:latest");
      view.root.dataset.latestSeq = String(this.latest.seq);
      view.root.dataset.received = String(this.received);
    }
    this.nextText = now + Math.max(TEXT_MS, (performance.now() - t0) / TEXT_SHARE);
  }

  _drawMap(now) {
    const map = this.view.map, s = this.latest;
    if (!s) return;
    const p = map.pair(s);
    const last = this.path[this.path.length - 1];
    map.setPath(p && last !== p ? [...this.path, p] : this.path);
    if (this.latestFull) map.showStep(this.latestFull);
    if (p) map.ct.setMarker(p[0], p[1]);
    // Keep the map where the action is: slices follow the best point, open boxes follow the path.
    if (now - this.lastSlice > SLICE_MS && (map.dim > 2 || map.needsRefit(p))) {
      this.lastSlice = now;
      map.loadGrid({ at: s.x, points: this.path });
    }
  }
}

/** A performance mark the first time the page reaches a state (the browser benchmark reads them). */
export function markOnce(name) {
  if (!performance.getEntriesByName(name, "mark").length) performance.mark(name);
}

// ---- watching a run ---------------------------------------------------------------------------
/**
 * Drives a RunView from the run's watch socket (/ws/runs/<id>/?after=<seq>) for as long as the run
 * can change. The socket starts after the last step the page holds (the server sends only newer
 * ones) and resumes from the last step received after a reconnect. An interrupted run stays
 * watched: when it is queued again (by the server, or by Resume or Stop from any page) the view
 * goes live again. A deleted run ends the watch for good (no reconnect).
 */
export class RunWatch {
  constructor(view, { knownMinimum = undefined, onRun = () => {} } = {}) {
    this.view = view;
    this.known = knownMinimum;
    this.onRun = onRun; // (Run) after every change the socket brought
    this.sock = null;
    this.ended = true;
  }

  follow(run) {
    this.close();
    this.ended = !ACTIVE.has(run.status);
    if (this.ended && run.status !== "interrupted") return; // nothing more will happen to it
    const token = {}; // messages of an earlier socket of this watch are dropped
    this._token = token;
    this.sock = new RunSocket(`/ws/runs/${run.id}/`, {
      after: Math.max(-1, (run.n_steps || 0) - 1),
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
      case "deleted":
        this.close();
        view.showDeleted(msg.message);
        return;
      case "error":
        if (msg.code === "not_found") { this.close(); view.showDeleted(); return; }
        view.showAlert(msg.message || "The server refused that.");
        view.setRun({}); // re-enable the buttons that still apply
        break;
      default:
        return;
    }
    this.onRun(view.run);
  }

  _relive(run) {
    const known = this.view.known;
    this.view.showRun(run, { mode: "live", knownMinimum: known === null ? this.known : known });
    this.follow(run);
    this.onRun(this.view.run);
  }
}
