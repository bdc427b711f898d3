// The map of the objective beside the convergence plot: a contour over two coordinates (a slice
// through the current point when dim > 2), or for a 1-D problem the line f(x) over the bound, with
// the path of the best point, the DE population and the L-BFGS-B line search of one step on it.
//
//   const map = new ObjectiveMap(view);   // view: $, run, replay state; map.ct is the ContourPlot
//   map.reset(run, dim, known);
//   map.pair(step)                        // the point a step adds to the path: [x[ix], x[iy]], or [x[0], f] in 1-D
//   map.setPath(points);  map.showStep(step);  map.loadGrid({ at, points });
//   map.onAxes = () => ...;               // the user picked other coordinates
import { ContourPlot } from "./plots.js";
import { getJSON } from "./api.js";

const GRID_N = 70;
// A view narrower than this share of the grid's box (in x or y) gets a finer grid of its own.
const DETAIL_BELOW = 0.6;
const LINE_N = 240; // points of f(x) on a 1-D problem

export class ObjectiveMap {
  constructor(view) {
    this.view = view;
    this.$ = view.$;
    this.ct = null; // made on the first reset, once the view is visible (Plotly sizes it then)
    this.onAxes = () => {};
    this.gridKey = null;
    this.box = null;
    const onAxis = (e) => this._axesChanged(e.target);
    this.$("#contour-ix").addEventListener("change", onAxis);
    this.$("#contour-iy").addEventListener("change", onAxis);
  }

  reset(run, dim, known) {
    this.run = run;
    this.dim = dim;
    this.known = known;
    // The first two coordinates the bounds leave free (a fixed one would draw a line, not a map).
    const b = run.bounds, fixed = (i) => !!(b && b[i] && b[i][0] !== null && b[i][0] === b[i][1]);
    const free = Array.from({ length: dim }, (_, i) => i).filter((i) => !fixed(i));
    const axes = [...free, ...Array.from({ length: dim }, (_, i) => i).filter(fixed)];
    this.ix = axes[0];
    this.iy = dim > 1 ? axes[1] : 0;
    this.gridKey = null;
    this.box = null;
    if (!this.ct) {
      this.ct = new ContourPlot(this.$("#plot-contour"));
      this.zoom = detailOnZoom(this.ct, () => this._source());
    }
    const ct = this.ct;
    this.at = null;
    this.clearStep(); ct.setMarker(null);
    ct.setPath("run", null); ct.setGrid(null);
    ct.setAxes(`x[${this.ix}]`, this.oneD ? "f" : `x[${this.iy}]`);
    ct.setMessage("Loading the objective…");
    this._renderSelects();
    this.setMinimum(known);
  }

  get oneD() { return this.dim === 1; }

  /** The x of the series endpoint (?x=) this map needs. */
  seriesX() { return this.oneD ? "0" : `${this.ix},${this.iy}`; }

  /** A step's point on the map. */
  pair(s) {
    if (!s || !s.x) return null;
    if (this.oneD) return s.fun === null || s.fun === undefined ? null : [s.x[0], s.fun];
    return [s.x[this.ix], s.x[this.iy]];
  }

  /** Path points from a series answer (asked with x=seriesX()). */
  seriesPairs(series) {
    if (!series || !series.x) return [];
    const out = [];
    for (let i = 0; i < series.x.length; i++) {
      const x = series.x[i];
      if (!x) continue;
      if (this.oneD) { if (series.fun[i] !== null && series.fun[i] !== undefined) out.push([x[0], series.fun[i]]); }
      else out.push([x[0], x[1]]);
    }
    return out;
  }

  setPath(points) {
    const pts = thinPath(points);
    this.ct.setPath("run", pts.map((p) => p[0]), pts.map((p) => p[1]), { name: "best point", color: "#ff4d4f" });
  }

  setMinimum(known) {
    this.known = known;
    if (!known || !known.x) { this.ct.setMinimum(null); return; }
    if (this.oneD) this.ct.setMinimum(known.x[0], known.f);
    else this.ct.setMinimum(known.x[this.ix], known.x[this.iy]);
  }

  /** Overlays of one full step: population (DE), line-search trials (L-BFGS-B), the marker. */
  showStep(s) {
    if (!s) return;
    const ex = s.extra || {};
    const pop = ex.population, energies = ex.population_energies;
    if (Array.isArray(pop)) {
      if (this.oneD) {
        this.ct.setPopulation(Array.isArray(energies) ? pop.map((m, i) => [m[0], energies[i]]).filter((p) => p[1] !== null) : null);
      } else this.ct.setPopulation(pop.map((m) => [m[this.ix], m[this.iy]]));
    } else this.ct.setPopulation(null);
    const ls = ex.line_search;
    if (ls && Array.isArray(ls.x)) {
      if (this.oneD) this.ct.setLineSearch(Array.isArray(ls.f) ? ls.x.map((m, i) => [m[0], ls.f[i]]).filter((p) => p[1] !== null) : null);
      else this.ct.setLineSearch(ls.x.map((m) => [m[this.ix], m[this.iy]]));
    } else this.ct.setLineSearch(null);
    // minimize's methods: rows [x..., f] of the points evaluated in the step, and Nelder–Mead's simplex
    const rows = (key) => {
      const v = ex[key];
      if (!Array.isArray(v) || !v.length) return null;
      return this.oneD ? v.map((r) => [r[0], r[r.length - 1]]).filter((q) => q[1] !== null) : v.map((r) => [r[this.ix], r[this.iy]]);
    };
    this.ct.setTrials(rows("trials"));
    this.ct.setSimplex(rows("simplex"));
    const p = this.pair(s);
    // the trust region's slice through the step's point: a circle of its radius in the plotted plane
    const r = ex.tr_radius;
    this.ct.setTrust(p && !this.oneD && Number.isFinite(r) && r > 0
      ? Array.from({ length: 72 }, (_, k) => [p[0] + r * Math.cos(k * Math.PI / 36), p[1] + r * Math.sin(k * Math.PI / 36)]) : null);
    if (p) this.ct.setMarker(p[0], p[1]);
  }

  clearStep() {
    for (const set of ["setPopulation", "setLineSearch", "setTrials", "setSimplex", "setTrust"]) this.ct[set](null);
  }

  // ---- coordinates ---------------------------------------------------------------------------
  _renderSelects() {
    const wrap = this.$("#contour-axes");
    wrap.hidden = this.dim <= 2;
    if (this.dim <= 2) return;
    for (const [sel, val] of [["#contour-ix", this.ix], ["#contour-iy", this.iy]]) {
      const el = this.$(sel);
      el.innerHTML = Array.from({ length: this.dim }, (_, i) => `<option value="${i}">x[${i}]</option>`).join("");
      el.value = String(val);
    }
  }

  _axesChanged(changed) {
    const xs = this.$("#contour-ix"), ys = this.$("#contour-iy");
    let ix = Number(xs.value), iy = Number(ys.value);
    if (ix === iy) {
      // Two different coordinates are needed: move the other select out of the way.
      const other = (ix + 1) % this.dim;
      if (changed === xs) { ys.value = String(other); iy = other; } else { xs.value = String(other); ix = other; }
    }
    this.ix = ix; this.iy = iy;
    this.ct.setAxes(`x[${ix}]`, `x[${iy}]`);
    this.setMinimum(this.known);
    this.gridKey = null;
    this.onAxes();
  }

  // ---- the grid ------------------------------------------------------------------------------
  /** The box the map covers: the bounds where closed; else around x0, the path and the minimum. */
  _box(points) {
    const run = this.run, b = run.bounds;
    const side = (i, k) => {
      if (b && b[i] && b[i][0] !== null && b[i][0] === b[i][1]) { // fixed: the value, with room around it
        const v = b[i][0], pad = Math.max(1, 0.25 * Math.abs(v));
        return [v - pad, v + pad];
      }
      if (b && b[i] && b[i][0] !== null && b[i][1] !== null) return b[i];
      const vals = [];
      if (run.x0) vals.push(run.x0[i]);
      for (const p of points || []) if (p) vals.push(p[k]);
      if (this.known && this.known.x) vals.push(this.known.x[i]);
      const finite = vals.filter((v) => v !== null && Number.isFinite(v));
      let lo = finite.length ? Math.min(...finite) : -1, hi = finite.length ? Math.max(...finite) : 1;
      const pad = Math.max(1, 0.25 * (hi - lo));
      lo -= pad; hi += pad;
      if (b && b[i]) { if (b[i][0] !== null) lo = Math.max(lo, b[i][0]); if (b[i][1] !== null) hi = Math.min(hi, b[i][1]); }
      return [lo, hi];
    };
    return this.oneD ? { x: side(0, 0) } : { x: side(this.ix, 0), y: side(this.iy, 1) };
  }

  /** Open bounds: has the path left the box the grid was drawn for? */
  needsRefit(p) {
    const b = this.run.bounds;
    const idx = this.oneD ? [0] : [this.ix, this.iy];
    const closed = b && idx.every((i) => b[i] && b[i][0] !== null && b[i][1] !== null);
    if (closed || !this.box || !p) return false;
    return p[0] < this.box.x[0] || p[0] > this.box.x[1] || (!this.oneD && (p[1] < this.box.y[0] || p[1] > this.box.y[1]));
  }

  /** Load the grid (again, if what it depends on changed). `at`: the point a slice goes through (dim > 2). */
  async loadGrid({ at = null, points = [], current = false } = {}) {
    const run = this.run;
    const box = this._box(points);
    if (this.dim <= 2) at = null;
    else if (!at) at = run.x0 || (run.bounds ? run.bounds.map((b) => (b[0] + b[1]) / 2) : null);
    const key = JSON.stringify([box, at, this.ix, this.iy]);
    if (key === this.gridKey) return;
    this.gridKey = key;
    this.box = box;
    this.at = at;
    if (run.problem === "external") { // the server has no f to draw: the path alone
      this.ct.setRange(box);
      this.ct.setMessage("No map: f is computed in its owner's Python process. The path is drawn on its own.");
      this.$("#contour-note").textContent = this.oneD ? "x[0] of each step" : `the path over x[${this.ix}], x[${this.iy}]`;
      return;
    }
    const q = new URLSearchParams({ params: JSON.stringify(run.params || {}), dim: String(this.dim), xlim: box.x.join(",") });
    if (run.definition) q.set("run", String(run.id)); // a user's own problem: as this run ran it
    if (this.oneD) q.set("n", String(LINE_N));
    else {
      q.set("n", String(GRID_N)); q.set("ix", String(this.ix)); q.set("iy", String(this.iy)); q.set("ylim", box.y.join(","));
    }
    if (at) q.set("at", JSON.stringify(at));
    try {
      const grid = await getJSON(`/api/problems/${encodeURIComponent(run.problem)}/grid/?${q}`);
      if (this.run !== run || this.gridKey !== key) return;
      this.ct.setGrid(grid);
      this.ct.setMessage(null);
      this.zoom.refresh(); // the new grid's own detail for the view
      const sliced = this.dim > 2 ? ` — a slice through the ${current ? "current" : "best"} point` : "";
      this.$("#contour-note").textContent = this.oneD ? "f along x[0] over its bound" : `f over x[${this.ix}], x[${this.iy}]${sliced}`;
    } catch (e) {
      if (this.gridKey === key) {
        this.ct.setMessage(this.oneD && e.status === 400 ? "This server draws no map of 1-D problems yet; see the convergence plot and the table."
          : `Could not load the map (${e.message}).`);
      }
    }
  }

  /** What detailOnZoom needs of the grid shown now. */
  _source() {
    const run = this.run, box = this.box;
    if (!box || !this.gridKey || run.problem === "external") return null;
    return {
      key: this.gridKey, box: { x: box.x, y: this.oneD ? null : box.y },
      url: (xlim, ylim) => {
        const q = new URLSearchParams({ params: JSON.stringify(run.params || {}), dim: String(this.dim), xlim: xlim.join(",") });
        if (run.definition) q.set("run", String(run.id));
        if (this.oneD) q.set("n", String(LINE_N));
        else { q.set("n", String(GRID_N)); q.set("ix", String(this.ix)); q.set("iy", String(this.iy)); q.set("ylim", ylim.join(",")); }
        if (this.at) q.set("at", JSON.stringify(this.at));
        return `/api/problems/${encodeURIComponent(run.problem)}/grid/?${q}`;
      },
    };
  }

  resize() { if (this.ct) this.ct.resize(); }
}

/**
 * Makes a ContourPlot fetch the objective again on a grid over any zoomed view (narrower than
 * DETAIL_BELOW of the grid's box), so that a zoom is not a blur of the coarse grid; the full view
 * drops it. `source()` describes the grid shown now: {key, box: {x, y}, url(xlim, ylim)} (y null
 * for the line of a 1-D problem), or null.
 * Returns {refresh()}: call it after each new grid.
 */
export function detailOnZoom(ct, source) {
  let shown = null, key = null;
  const refresh = async (view = shown) => {
    shown = view;
    const src = source();
    if (!shown || !src) return;
    const small = (r, b) => !!b && r[1] - r[0] < DETAIL_BELOW * (b[1] - b[0]);
    if (!small(shown.x, src.box.x) && !small(shown.y, src.box.y)) {
      if (key !== null) { key = null; ct.setDetail(null); }
      return;
    }
    const clip = (r, b) => [Math.max(r[0], b[0]), Math.min(r[1], b[1])];
    const xlim = clip(shown.x, src.box.x), ylim = src.box.y ? clip(shown.y, src.box.y) : null; // 1-D: x only
    if (!(xlim[1] > xlim[0] && (!ylim || ylim[1] > ylim[0]))) return;
    const k = JSON.stringify([src.key, xlim, ylim]);
    if (k === key) return;
    key = k;
    try {
      const grid = await getJSON(src.url(xlim, ylim));
      if (key === k) ct.setDetail(grid);
    } catch (e) {
      if (key === k) key = null; // the coarse map stays; a later view tries again
    }
  };
  ct.onView = (view) => refresh(view);
  return { refresh: () => { key = null; return refresh(); } };
}

/** At most ~2000 points of a path, always keeping the first and the last. */
export function thinPath(pts) {
  const clean = pts.filter(Boolean);
  const max = 2000;
  if (clean.length <= max) return clean;
  const k = clean.length / max;
  const out = [];
  for (let i = 0; i < max; i++) out.push(clean[Math.floor(i * k)]);
  out.push(clean[clean.length - 1]);
  return out;
}
