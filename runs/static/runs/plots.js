// Reusable Plotly components for optsite pages (run view, compare page).
// Needs the vendored plotly-cartesian bundle loaded first as a classic <script> (window.Plotly).
// Every text given to these classes (series and path names, titles, messages) is plain text: it is
// escaped here before it reaches Plotly, which would otherwise render <b>, <a href> and the like.
//
// ConvergencePlot — objective against iteration, several series, log axis of f − f* when f* is known.
//   const cp = new ConvergencePlot(el, { fstar: 0, logScale: true, xTitle: "iteration", maxPoints: 4000,
//                                        emptyText: "No steps yet", logX: false });
//   cp.addSeries("run-7", "DE", { color: "#0d6efd" });
//   cp.extend("run-7", [0, 1, 2], [6.5, 3.1, 1.2]);   // append raw f values (the plot subtracts f*)
//   cp.setData("run-7", xs, fs);                      // replace a series
//   cp.setMarker(12);                                 // vertical line + a dot on every series at x=12 (null: hide)
//   cp.setFstar(null);                                // unknown minimum: plots f itself
//   cp.setLogX(true);                                 // log x axis (also a "log x" toggle above the plot)
//   cp.removeSeries("run-7");  cp.clear();  cp.resize();  cp.destroy();
// Values with f − f* <= 0 (rounding, or f* slightly off) are drawn at a small positive floor and the hover
// says so. Log axes are labelled at decades only (minor ticks unlabelled). Updates are drawn at most
// once per animation frame (less often when a draw is slow: see Pacer); new points go in with
// Plotly.extendTraces; past `maxPoints` a series is drawn from min/max buckets of the full data,
// re-thinned as it grows. Markers and hovers use the full data.
//
// ContourPlot — a 2-D map of the objective with overlays, or f(x) as a line for a 1-D problem.
//   const ct = new ContourPlot(el, { xTitle: "x[0]", yTitle: "x[1]" });
//   ct.setGrid({ x, y, z });               // z[j][i] is f at (x[i], y[j]); nulls are holes; drawn on log10(1 + f − min f)
//   ct.setGrid({ x, z });                  // no y: 1-D mode, z[i] = f(x[i]) drawn as a line; every overlay
//                                          //   below then takes y = f (points as [x, f] pairs)
//   ct.setPath("run-7", xs, ys, { name: "best point", color });   // several paths allowed (compare page)
//   ct.setPopulation([[x, y], ...]);       // DE generation (null clears)
//   ct.setLineSearch([[x, y], ...]);       // L-BFGS-B line-search trial points (null clears)
//   ct.setMarker(x, y);                    // the current point (null clears)
//   ct.setMinimum(x, y);                   // the known minimiser (null clears)
//   ct.setMessage("Loading…");             // text over the plot (null clears)
//   ct.setRange({ x, y });                 // the full view's bounds without a grid (no map to draw)
//   ct.setView("path" | "full");           // zoom to the paths / back to the grid's bounds (also two buttons
//                                          //   above the plot); while zoomed, the view widens as the path leaves it
//   ct.onView = ({ x, y }) => ...;         // the view settled on new ranges (a zoom, a pan, the path view)
//   ct.setDetail({ x, y, z });             // a finer grid over part of the map, drawn over it (null drops it)
// A grid of a constrained problem may carry `infeasibility` (signed, shaded where positive) and
// `equalities` ([h of each equality constraint], each traced as a line where h = 0), as the grid
// endpoint gives them.
// The legend (HTML, above the plot) lists only what is drawn: no population entry without a population;
// each entry is a button that hides and shows what it names (both plots).
// Plotly draws the axes, paths and markers; the map and the population / line search are canvases
// under it (maplayers.js), so that a new population redraws no Plotly plot. Updates are batched:
// many calls cause one Plotly.react on a later animation frame, at most one per `minInterval` ms
// (option, default 120) and fewer when a react is slow; the points alone redraw once per frame.
// Long paths are drawn thinned to `maxPathPoints` (repeats dropped, ends kept).

import { fmtCount, fmtF, fmtX } from "./format.js";
import { MapLayer, PointLayer, axesOf } from "./maplayers.js";

const Plotly = () => window.Plotly;

const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
// Plotly's default ("hide past div") measures every tick label against every other on each redraw.
const AXIS = { ticklabeloverflow: "allow", zeroline: false };
const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 };
const PALETTE = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#dc3545", "#6c757d"];
const PATH_COLORS = ["#ff4d4f", "#ffc107", "#0dcaf0", "#f8f9fa"];
// The overlay's plot area over a 2-D map: fixed margins, with room on the right for the map's colour
// bar (drawn by maplayers.js in that margin).
const MAP_MARGIN = { l: 56, r: 76, t: 12, b: 44, autoexpand: false };
// Where f − f* <= 0 is drawn on a log axis: far below anything double precision resolves near 1.
const FLOOR = 1e-16;

// Plotly renders a small HTML subset in every string and fills %{...} in hover templates; its entity
// decoder knows &amp; &lt; &gt; and numeric references, so these make any text literal.
const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "%": "&#37;" };
/** Plain text -> a string Plotly shows literally (no tags, no links, no template fields). */
export function plotText(text) {
  return String(text ?? "").replace(/[&<>"'%]/g, (c) => ENTITIES[c]);
}

function baseLayout(extra = {}) {
  return {
    font: FONT,
    margin: { l: 64, r: 16, t: 12, b: 44 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
    showlegend: false,
    hovermode: "closest",
    ...extra,
  };
}

/** First index with xs[i] >= x in an ascending array (xs.length if none). */
function lowerBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Indices keeping the first, last, min and max of each of ~n/2 buckets (shape-preserving thinning). */
export function minMaxIndices(ys, n) {
  const len = ys.length;
  if (len <= n) return Array.from({ length: len }, (_, i) => i);
  const buckets = Math.max(1, Math.floor(n / 2));
  const size = len / buckets;
  const out = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size), end = Math.min(len, Math.floor((b + 1) * size));
    let iMin = start, iMax = start;
    for (let i = start; i < end; i++) {
      const v = ys[i];
      if (v === null) continue;
      if (ys[iMin] === null || v < ys[iMin]) iMin = i;
      if (ys[iMax] === null || v > ys[iMax]) iMax = i;
    }
    if (iMin <= iMax) out.push(iMin, iMax); else out.push(iMax, iMin);
  }
  out[0] = 0;
  out.push(len - 1);
  return [...new Set(out)].sort((a, b) => a - b);
}

const SEQ_STEPS = [1, 2, 3, 4, 5, 10, 20, 25, 50, 100];

/**
 * Tick settings for a log axis showing [lo, hi] (log10 units): labels at decades only (every
 * `stride`-th decade when there are more than `maxLabels`), unlabelled minor ticks between. A view
 * holding fewer than two decades is labelled at 1, 2 and 5 times its decades instead, so it never
 * shows a lone label. null (Plotly's own ticks) when there is nothing to go by.
 */
export function logTicks(lo, hi, fmt, maxLabels = 8) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return null;
  const a = Math.floor(lo + 1e-9), b = Math.ceil(hi - 1e-9);
  const pow = (k, d = 1) => Number(`${d}e${k}`); // exact decimals: 3e-4, not 0.00030000000000000003
  const vals = [], minor = [];
  const inside = Math.floor(hi + 1e-9) - Math.ceil(lo - 1e-9) + 1;
  if (inside >= 2) {
    const stride = SEQ_STEPS.find((s) => inside / s <= maxLabels) || Math.ceil(inside / maxLabels);
    for (let k = a; k <= b; k++) {
      if (k % stride === 0) vals.push(pow(k)); else minor.push(pow(k));
      if (stride === 1 && b - a <= 12) for (let d = 2; d <= 9; d++) minor.push(pow(k, d));
    }
  } else {
    for (let k = a - 1; k <= b; k++) {
      for (const d of [1, 2, 5]) vals.push(pow(k, d));
      for (const d of [3, 4, 6, 7, 8, 9]) minor.push(pow(k, d));
    }
  }
  return {
    tickmode: "array", tickvals: vals, ticktext: vals.map(fmt),
    minor: { tickmode: "array", tickvals: minor, ticks: "outside", ticklen: 3, tickcolor: "#adb5bd", showgrid: false },
  };
}

/**
 * A row just above a plot (outside its role="img" box, so that screen readers and the keyboard reach
 * it): the legend on the left, small buttons on the right. The legend is HTML, not Plotly's: Plotly
 * redraws its legend on every update, a quarter of the cost of a contour redraw, and HTML text needs
 * no escaping (textContent).
 */
function toolbar(el, label) {
  const row = document.createElement("div");
  row.className = "plot-tools";
  const legend = document.createElement("ul");
  legend.className = "plot-legend";
  legend.setAttribute("aria-label", "Legend");
  const bar = document.createElement("div");
  bar.className = "plot-buttons";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", label);
  row.append(legend, bar);
  if (el.parentNode) el.parentNode.insertBefore(row, el);
  return { row, legend, bar, key: null };
}

/** Show `items` ({kind, name, color}) in a toolbar's legend; the DOM changes only when they do. */
/**
 * The legend above a plot: one button per item ({id, kind, name, color}) that hides and shows
 * what it names (`hidden`, a Set of ids, is the plot's; `onToggle(id)` redraws it).
 */
function setLegend(tools, items, hidden = new Set(), onToggle = null) {
  const key = JSON.stringify([items, [...hidden]]);
  if (key === tools.key) return;
  tools.key = key;
  tools.legend.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.className = `plot-swatch plot-swatch-${it.kind}`;
    swatch.setAttribute("aria-hidden", "true");
    if (it.color) swatch.style.setProperty("--swatch", it.color);
    if (!onToggle) { li.append(swatch, document.createTextNode(it.name)); return li; }
    const b = document.createElement("button");
    b.type = "button";
    b.className = "plot-legend-item";
    const shown = !hidden.has(it.id);
    b.setAttribute("aria-pressed", shown ? "true" : "false");
    b.title = `${shown ? "Hide" : "Show"} ${it.name}`;
    b.append(swatch, document.createTextNode(it.name));
    b.addEventListener("click", () => onToggle(it.id));
    li.append(b);
    return li;
  }));
}

/** Hide `id` if shown, show it if hidden. */
function toggle(set, id) { if (set.has(id)) set.delete(id); else set.add(id); }

function toolButton(tools, text, title, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "btn btn-outline-secondary btn-sm";
  b.textContent = text;
  b.title = title;
  b.addEventListener("click", onClick);
  tools.bar.append(b);
  return b;
}

// Each draw runs as a task of its own, queued from an animation frame: two plots (and the page's own
// frame work) never add up to one long task.
const ownTasks = [];
let ownChannel = null;
function inOwnTask(fn) {
  if (!ownChannel) {
    ownChannel = new MessageChannel();
    ownChannel.port1.onmessage = () => { const f = ownTasks.shift(); if (f) f(); };
  }
  ownTasks.push(fn);
  ownChannel.port2.postMessage(0);
}

/**
 * Runs `draw` once per animation frame at most, and never sooner after the previous draw than
 * `gap` ms nor than twice what that draw took: on a slow or busy machine a plot redraws less often
 * (at most a third of the main thread) instead of taking all of it.
 */
class Pacer {
  constructor(draw, gap = 0) {
    this.draw = draw; this.gap = gap;
    this.last = -Infinity; this.cost = 0; this.pending = false; this.timer = null; this.frame = null; this.token = 0;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    const token = this.token;
    const wait = this.last + Math.max(this.gap, 2 * this.cost) - performance.now();
    const go = () => {
      this.timer = null;
      this.frame = requestAnimationFrame(() => { this.frame = null; inOwnTask(() => { if (token === this.token) this.run(); }); });
    };
    if (wait > 4) this.timer = setTimeout(go, wait); else go();
  }

  run() {
    this.pending = false;
    const t0 = performance.now();
    this.draw();
    this.last = performance.now();
    this.cost = this.last - t0;
  }

  cancel() {
    clearTimeout(this.timer); cancelAnimationFrame(this.frame);
    this.token += 1;
    this.pending = false;
  }
}

function isPos(v) { return typeof v === "number" && v > 0 && Number.isFinite(v); }

export class ConvergencePlot {
  constructor(el, { fstar = null, logScale = true, xTitle = "iteration", maxPoints = 2000, height = null,
    emptyText = "No steps yet", logX = false } = {}) {
    this.el = el;
    this.emptyText = emptyText;
    this.fstar = fstar;
    this.logScale = logScale;
    this.logX = !!logX;
    this.xTitle = xTitle; // may be reassigned by the page; read at every draw
    this.maxPoints = Math.max(16, maxPoints);
    this.height = height;
    // id -> {name, color, dash, xs, fs (full data), trace (what Plotly draws), queue (points not drawn yet)}
    this.series = new Map();
    this.hidden = new Set(); // ids of series the user hid with the legend
    this.marker = null;
    this._negative = false; // some plotted value <= 0 with no f*: log axis impossible
    this._drawn = false;
    this._full = true;       // rebuild every trace at the next frame
    this._pacer = new Pacer(() => this._draw());
    this._layout = null; this._layoutKey = null; this._tracesTitle = null;
    this._zoom = { x: null, y: null }; // log10 ranges the user zoomed to (for the ticks), null: autorange
    this.tools = toolbar(el, "Convergence plot axes");
    this._logXButton = toolButton(this.tools, "log x", "Logarithmic x axis", () => this.setLogX(!this.logX));
    this._renderTools();
    this._onRelayout = (ev) => this._relayout(ev);
    this._draw();
    if (el.on) el.on("plotly_relayout", this._onRelayout);
  }

  /** What the last redraw took (ms): a page that feeds the plot paces itself by it. */
  get drawCost() { return this._pacer.cost; }

  get _useLog() { return this.logScale && !(this.fstar === null && this._negative); }

  _yTitle() {
    if (this.fstar !== null) return this._useLog ? "f − f*  (log scale)" : "f − f*";
    return this._useLog ? "f  (log scale)" : "f";
  }

  /** Plotted y for one raw f (as _point, without the hover text). */
  _y(f) {
    if (f === null || f === undefined) return null;
    if (this.fstar === null) return f;
    const d = f - this.fstar;
    return this._useLog && d <= 0 ? FLOOR : d;
  }

  /** Plotted y, hover text for one raw f. */
  _point(f) {
    if (f === null || f === undefined) return [null, "f not finite"];
    if (this.fstar !== null) {
      const d = f - this.fstar;
      if (this._useLog && d <= 0) return [FLOOR, `f = ${fmtF(f)}<br>f − f* = ${fmtF(d)} ≤ 0, drawn at ${fmtF(FLOOR)}`];
      return [d, `f = ${fmtF(f)}<br>f − f* = ${fmtF(d)}`];
    }
    return [f, `f = ${fmtF(f)}`];
  }

  _fmtXValue(x) { return Number.isInteger(x) ? fmtCount(x) : fmtX(x); }

  /** Plotted points (x, y, hover text) for raw indices `idx` of a series (all when null). */
  _points(s, from, to, idx = null) {
    const x = [], y = [], text = [];
    const n = idx ? idx.length : to - from;
    for (let k = 0; k < n; k++) {
      const i = idx ? idx[k] : from + k;
      const [v, t] = this._point(s.fs[i]);
      x.push(s.xs[i]); y.push(v); text.push(s.intX ? t : `${fmtX(s.xs[i])}<br>${t}`);
    }
    return { x, y, text };
  }

  _buildTrace(s) {
    const len = s.xs.length;
    // Thinned to half the cap, so that many more points can be appended before the next thinning.
    const idx = len > this.maxPoints ? minMaxIndices(s.fs, Math.floor(this.maxPoints / 2)) : null;
    const p = this._points(s, 0, len, idx);
    s.queue = null;
    s.trace = {
      type: "scatter", mode: "lines", name: plotText(s.name), uid: `series-${s.uid}`, x: p.x, y: p.y, text: p.text,
      line: { color: s.color, width: 2, dash: s.dash || "solid" }, visible: !this.hidden.has(s.uid),
      // Counts as fmtCount writes them (d3's "," is the same grouping) without a string per point.
      hovertemplate: `<b>%{fullData.name}</b><br>${plotText(this.xTitle)} ${s.intX ? "%{x:,}<br>" : ""}%{text}<extra></extra>`,
    };
    return s.trace;
  }

  /** Extents of the plotted values: positive x and y (for log ticks). */
  _extents() {
    let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
    for (const s of this.series.values()) {
      if (!s.xs.length) continue;
      const e = s.ext;
      xlo = Math.min(xlo, e.xlo); xhi = Math.max(xhi, e.xhi); ylo = Math.min(ylo, e.ylo); yhi = Math.max(yhi, e.yhi);
    }
    return { xlo, xhi, ylo, yhi };
  }

  _grow(s, from) {
    const e = s.ext;
    for (let i = from; i < s.xs.length; i++) {
      const x = s.xs[i], y = this._y(s.fs[i]);
      if (isPos(x)) { if (x < e.xlo) e.xlo = x; if (x > e.xhi) e.xhi = x; }
      if (isPos(y)) { if (y < e.ylo) e.ylo = y; if (y > e.yhi) e.yhi = y; }
    }
  }

  _resetExtents() {
    for (const s of this.series.values()) { s.ext = { xlo: Infinity, xhi: -Infinity, ylo: Infinity, yhi: -Infinity }; this._grow(s, 0); }
  }

  _markerShapes() {
    if (this.marker === null) return [];
    return [{
      type: "line", xref: "x", yref: "paper", x0: this.marker, x1: this.marker, y0: 0, y1: 1,
      line: { color: "rgba(33,37,41,.45)", width: 1, dash: "dot" },
    }];
  }

  /** A dot on every series at the marker (its last point at or before it), from the full data. */
  _markerTrace() {
    if (this.marker === null) return null;
    const xs = [], ys = [], texts = [], colors = [];
    for (const s of this.series.values()) {
      if (!s.xs.length || this.hidden.has(s.uid)) continue;
      let i = lowerBound(s.xs, this.marker);
      if (i >= s.xs.length || s.xs[i] > this.marker) i -= 1;
      if (i < 0) continue;
      const [y, t] = this._point(s.fs[i]);
      xs.push(s.xs[i]); ys.push(y); colors.push(s.color);
      texts.push(`${plotText(s.name)}: ${s.intX ? fmtCount(s.xs[i]) : fmtX(s.xs[i])}<br>${t}`);
    }
    return {
      type: "scatter", mode: "markers", uid: "marker", x: xs, y: ys, text: texts, hovertemplate: "%{text}<extra></extra>",
      marker: { size: 11, color: colors, line: { color: "#fff", width: 2 } },
    };
  }

  _axisTicks(axis, lo, hi, fmt, px) {
    const zoom = this._zoom[axis];
    if (zoom) [lo, hi] = zoom; else { lo = Math.log10(lo); hi = Math.log10(hi); }
    return logTicks(lo, hi, fmt, Math.max(3, Math.floor(px)));
  }

  _layoutState() {
    const e = this._extents();
    // Read once and on resize(): a size read every frame would force a layout of the whole page.
    if (!this._size) this._size = { w: this.el.clientWidth || 500, h: this.el.clientHeight || this.height || 340 };
    const { w, h } = this._size;
    return {
      xTitle: this.xTitle, yTitle: this._yTitle(), logY: this._useLog, logX: this.logX,
      empty: ![...this.series.values()].some((s) => s.xs.length),
      yTicks: this._useLog ? this._axisTicks("y", e.ylo, e.yhi, fmtF, (h - 60) / 34) : null,
      xTicks: this.logX ? this._axisTicks("x", e.xlo, e.xhi, (v) => this._fmtXValue(v), (w - 90) / 64) : null,
      shapes: this._markerShapes(), height: this.height, emptyText: this.emptyText,
      intX: [...this.series.values()].every((s) => s.intX),
    };
  }

  _buildLayout(st) {
    const axis = (ticks) => (ticks ? { ...ticks } : { tickmode: "auto" });
    return baseLayout({
      height: this.height || undefined,
      // Room on the right for half of the last x label (labels may overflow: see AXIS).
      margin: { l: 64, r: 28, t: 12, b: 44 },
      xaxis: {
        ...AXIS, title: { text: plotText(st.xTitle) }, gridcolor: "#eee", type: st.logX ? "log" : "linear",
        ...axis(st.xTicks), ...(st.xTicks || !st.intX ? {} : { tickformat: "," }),
      },
      yaxis: {
        ...AXIS, title: { text: plotText(st.yTitle) }, type: st.logY ? "log" : "linear", exponentformat: "e",
        gridcolor: "#eee", ...axis(st.yTicks),
      },
      shapes: st.shapes,
      annotations: st.empty ? [{
        text: plotText(st.emptyText), xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        font: { size: 14, color: "#6c757d" },
      }] : [],
      // Keep the user's zoom across updates; a change of axis type starts afresh.
      uirevision: `${st.logX}|${st.logY}`,
    });
  }

  _schedule() { this._pacer.schedule(); }

  /** One Plotly call: extendTraces when only new points arrived, else react (unchanged traces are reused). */
  _draw() {
    // Several series: each one that has points is listed (one series needs no legend).
    const shown = [...this.series.values()].filter((s) => s.xs.length);
    setLegend(this.tools, shown.length > 1 ? shown.map((s) => ({ id: s.uid, kind: "line", name: s.name, color: s.color })) : [],
      this.hidden, (id) => { toggle(this.hidden, id); this._full = true; this._schedule(); });
    if (this._tracesTitle !== this.xTitle) { this._full = true; this._tracesTitle = this.xTitle; }
    const st = this._layoutState();
    const key = JSON.stringify(st);
    const layoutChanged = key !== this._layoutKey;
    if (layoutChanged) { this._layout = this._buildLayout(st); this._layoutKey = key; }
    const list = [...this.series.values()];
    const markerKey = this.marker === null ? null : JSON.stringify([this.marker, this._layoutKey, list.map((s) => s.xs.length)]);
    const markerChanged = markerKey !== this._markerKey;
    const queued = list.filter((s) => s.queue && s.queue.x.length);
    const rebuilt = list.some((s) => s.rebuilt);
    const P = Plotly();
    if (!this._full && !layoutChanged && !rebuilt && !markerChanged && queued.length) {
      P.extendTraces(this.el, {
        x: queued.map((s) => s.queue.x), y: queued.map((s) => s.queue.y), text: queued.map((s) => s.queue.text),
      }, queued.map((s) => list.indexOf(s)));
      for (const s of queued) s.queue = null;
    } else if (this._full || layoutChanged || rebuilt || markerChanged || queued.length || !this._drawn) {
      for (const s of list) {
        if (this._full || !s.trace) this._buildTrace(s);
        else if (s.queue) {
          // New arrays: react sees the change (it compares data arrays by reference).
          const q = s.queue;
          s.trace = { ...s.trace, x: s.trace.x.concat(q.x), y: s.trace.y.concat(q.y), text: s.trace.text.concat(q.text) };
          s.queue = null;
        }
      }
      for (const s of list) s.rebuilt = false;
      this._markerKey = markerKey;
      const marker = this._markerTrace();
      const traces = list.map((s) => s.trace);
      P.react(this.el, marker ? [...traces, marker] : traces, this._layout, CONFIG);
    }
    this._full = false;
    this._drawn = true;
  }

  _relayout(ev) {
    if (!ev) return;
    let changed = false;
    for (const a of ["x", "y"]) {
      if (ev[`${a}axis.autorange`]) { if (this._zoom[a]) { this._zoom[a] = null; changed = true; } continue; }
      const lo = ev[`${a}axis.range[0]`], hi = ev[`${a}axis.range[1]`];
      const r = Array.isArray(ev[`${a}axis.range`]) ? ev[`${a}axis.range`] : (lo !== undefined ? [lo, hi] : null);
      if (!r) continue;
      const type = a === "x" ? (this.logX ? "log" : "linear") : (this._useLog ? "log" : "linear");
      if (type === "log") { this._zoom[a] = [Math.min(r[0], r[1]), Math.max(r[0], r[1])]; changed = true; }
    }
    if (changed) this._schedule(); // new ticks for the zoomed view
  }

  _renderTools() {
    this._logXButton.setAttribute("aria-pressed", this.logX ? "true" : "false");
    this._logXButton.classList.toggle("active", this.logX);
  }

  addSeries(id, name, { color = null, dash = null } = {}) {
    if (this.series.has(id)) return;
    const n = this.series.size;
    this._uid = (this._uid || 0) + 1;
    this.series.set(id, {
      name, color: color || PALETTE[n % PALETTE.length], dash, xs: [], fs: [], trace: null, queue: null, uid: this._uid,
      ext: { xlo: Infinity, xhi: -Infinity, ylo: Infinity, yhi: -Infinity }, intX: true,
    });
    this._full = true;
    this._schedule();
  }

  removeSeries(id) {
    if (this.series.delete(id)) { this._full = true; this._schedule(); }
  }

  /** Append points (x ascending, raw f values) to a series. */
  extend(id, xs, fs) {
    const s = this.series.get(id);
    if (!s || !xs.length) return;
    const from = s.xs.length, wasNegative = this._negative;
    for (let i = 0; i < xs.length; i++) {
      s.xs.push(xs[i]); s.fs.push(fs[i]);
      if (s.intX && !Number.isInteger(xs[i])) { s.intX = false; this._full = true; } // the hover changes
      if (this.fstar === null && fs[i] !== null && fs[i] <= 0) this._negative = true;
    }
    if (this._negative !== wasNegative && this.logScale) {
      this._full = true; // the axis turns linear: every plotted value changes
      this._resetExtents();
    } else this._grow(s, from);
    if (this._full || !s.trace) { this._schedule(); return; }
    const drawn = s.trace.x.length + (s.queue ? s.queue.x.length : 0);
    if (drawn + xs.length > this.maxPoints) {
      // Outgrew the cap: this trace alone is drawn from min/max buckets of the full data again.
      this._buildTrace(s);
      s.rebuilt = true;
    } else {
      const p = this._points(s, from, s.xs.length);
      if (!s.queue) s.queue = p;
      else for (let k = 0; k < p.x.length; k++) { s.queue.x.push(p.x[k]); s.queue.y.push(p.y[k]); s.queue.text.push(p.text[k]); }
    }
    this._schedule();
  }

  setData(id, xs, fs) {
    const s = this.series.get(id);
    if (!s) return;
    s.xs = Array.from(xs); s.fs = Array.from(fs);
    s.intX = s.xs.every((x) => x === null || Number.isInteger(x));
    if (this.fstar === null) {
      const neg = this._negative || s.fs.some((f) => f !== null && f <= 0);
      if (neg !== this._negative) { this._negative = neg; this._full = true; this._resetExtents(); }
    }
    s.ext = { xlo: Infinity, xhi: -Infinity, ylo: Infinity, yhi: -Infinity };
    this._grow(s, 0);
    this._buildTrace(s);
    s.rebuilt = true;
    this._schedule();
  }

  setMarker(x) {
    this.marker = x === null || x === undefined ? null : x;
    this._schedule();
  }

  setFstar(fstar) {
    this.fstar = fstar === undefined ? null : fstar;
    this._negative = false;
    if (this.fstar === null) {
      for (const s of this.series.values()) if (s.fs.some((f) => f !== null && f <= 0)) this._negative = true;
    }
    this._resetExtents();
    this._full = true;
    this._schedule();
  }

  setLogX(on) {
    on = !!on;
    if (on === this.logX) return;
    this.logX = on;
    this._zoom.x = null;
    this._renderTools();
    this._schedule();
  }

  clear() {
    for (const s of this.series.values()) {
      s.xs = []; s.fs = []; s.intX = true; s.ext = { xlo: Infinity, xhi: -Infinity, ylo: Infinity, yhi: -Infinity };
    }
    this.marker = null;
    this._negative = false;
    this._full = true;
    this._schedule();
  }

  resize() {
    this._size = null; // the tick density follows the plot's size
    if (this._drawn) { Plotly().Plots.resize(this.el); this._schedule(); }
  }

  destroy() {
    this._pacer.cancel();
    if (this.el.removeListener) this.el.removeListener("plotly_relayout", this._onRelayout);
    Plotly().purge(this.el);
    this.tools.row.remove();
  }
}

/** Indices of at most `max` points: beyond it repeats are dropped, then evenly spaced (ends kept). */
function thinPoints(xs, ys, max) {
  const ix = [];
  const long = xs.length > max;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] === null || xs[i] === undefined || ys[i] === null || ys[i] === undefined) continue;
    const j = ix.length ? ix[ix.length - 1] : -1;
    if (long && j >= 0 && xs[j] === xs[i] && ys[j] === ys[i]) continue; // DE's best often stays put
    ix.push(i);
  }
  let keep = ix;
  if (ix.length > max) {
    keep = [];
    const k = (ix.length - 1) / (max - 1);
    for (let m = 0; m < max - 1; m++) keep.push(ix[Math.floor(m * k)]);
    keep.push(ix[ix.length - 1]);
  }
  return keep;
}

function boxOf(xs, ys, box = null) {
  let b = box || { x: [Infinity, -Infinity], y: [Infinity, -Infinity] };
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i], y = ys[i];
    if (typeof x !== "number" || typeof y !== "number" || !Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < b.x[0]) b.x[0] = x; if (x > b.x[1]) b.x[1] = x;
    if (y < b.y[0]) b.y[0] = y; if (y > b.y[1]) b.y[1] = y;
  }
  return b;
}

const within = (inner, outer) => inner[0] >= outer[0] && inner[1] <= outer[1];
const VIEW_SETTLE_MS = 250; // a view is reported once it has held this long (zooms come in bursts)

/** The ranges a drag has reached (plotly_relayouting's event), where it says them; null: the layout's. */
function draggedRanges(e) {
  if (!e) return null;
  const pair = (ax) => (ax + ".range[0]" in e && ax + ".range[1]" in e ? [e[ax + ".range[0]"], e[ax + ".range[1]"]]
    : Array.isArray(e[ax + ".range"]) ? e[ax + ".range"] : null);
  const x = pair("xaxis"), y = pair("yaxis");
  return x || y ? { x, y } : null;
}

export class ContourPlot {
  constructor(el, { xTitle = "x[0]", yTitle = "x[1]", height = null, minInterval = 120, maxPathPoints = 2000,
    legend = true } = {}) {
    this.el = el;
    this.maxPathPoints = Math.max(2, maxPathPoints);
    this.legend = legend;
    this.xTitle = xTitle;
    this.yTitle = yTitle;
    this.height = height;
    this.grid = null;       // the contour (2-D) or line (1-D) trace, built once per grid and titles
    this.gridData = null;   // what setGrid was given
    this.oneD = false;
    this.range = null;      // the grid's bounds {x, y} (y null in 1-D: autorange)
    this.paths = new Map(); // id -> {name, color, xs, ys, trace (null: to build), box}
    this.hidden = new Set(); // what the user hid with the legend: "population", "line-search", "minimum", "path-<id>"
    this.population = null;
    this.lineSearch = null;
    this.marker = null;
    this.minimum = null;
    this.message = null;
    this.view = "full";     // "full" bounds or zoomed to the "path"
    this._zoom = null;      // the zoomed ranges {x, y} while view is "path"
    this._viewRev = 0;      // bumped by the buttons: the chosen view wins over a user's drag-zoom
    this._pacer = new Pacer(() => this._flush(), minInterval);
    // The population and the line search change with every step but never move the axes: they
    // redraw on their own canvas, every frame if need be, without a Plotly redraw.
    this._pointsPacer = new Pacer(() => this._drawPoints());
    this.layer = null;
    this._layoutKey = null; this._layout = null;
    // Under the overlay (made on the first draw): the map of the objective (2-D), redrawn only when
    // the grid or the view changes, and the points of the step, redrawn with every step.
    this.mapLayer = null; this._mapKey = null;
    this.detailData = null;
    this.onView = null;
    this.tools = toolbar(el, "Map view");
    this._fullButton = toolButton(this.tools, "Full bounds", "Show the whole map", () => this.setView("full"));
    this._pathButton = toolButton(this.tools, "Zoom to path", "Zoom to the path", () => this.setView("path"));
    this._renderTools();
    this._flush();
  }

  /** What the last redraw of the overlay took (ms). */
  get drawCost() { return this._pacer.cost; }

  setAxes(xTitle, yTitle) {
    if (xTitle === this.xTitle && yTitle === this.yTitle) return;
    this.xTitle = xTitle; this.yTitle = yTitle;
    if (this.gridData) this._buildGrid();
    for (const p of this.paths.values()) p.trace = null; // hover texts name the axes
    this._schedule();
  }

  setGrid(grid) {
    this.gridData = grid || null;
    this.detailData = null; // it belonged to the grid before
    const oneD = !!grid && !grid.y;
    if (oneD !== this.oneD) for (const p of this.paths.values()) p.trace = null; // drawn differently
    this.oneD = oneD;
    if (!grid) { this.grid = null; this.range = null; this._schedule(); return; }
    this._buildGrid();
    const x = grid.x;
    this.range = { x: [x[0], x[x.length - 1]], y: oneD ? null : [grid.y[0], grid.y[grid.y.length - 1]] };
    this._schedule();
  }

  _buildGrid() {
    this._gridRev = (this._gridRev || 0) + 1; // the map redraws for a new grid, titles or colours
    const grid = this.gridData;
    const X = plotText(this.xTitle);
    if (this.oneD) {
      let { x, z } = grid;
      const d = this.detailData && !this.detailData.y ? this.detailData : null;
      if (d && d.x.length) { // the finer line inside its range, the grid's outside it
        const lo = d.x[0], hi = d.x[d.x.length - 1], keep = x.map((v) => v < lo || v > hi);
        const pts = x.map((v, i) => [v, z[i]]).filter((_, i) => keep[i]).concat(d.x.map((v, i) => [v, d.z[i]]));
        pts.sort((a, b) => a[0] - b[0]);
        x = pts.map((p) => p[0]); z = pts.map((p) => p[1]);
      }
      this.grid = {
        type: "scatter", mode: "lines", name: "f", uid: "grid", x, y: z, connectgaps: false,
        line: { color: "#495057", width: 1.5 },
        text: x.map((v, i) => `${plotText(this.xTitle)} ${fmtX(v)}<br>f ${fmtF(z[i])}`),
        hovertemplate: "%{text}<extra></extra>",
      };
      return;
    }
    // log10(1 + f − min f), min over the grid and its detail: valleys like Rosenbrock's are
    // invisible on a linear scale, and both grids share one colour scale.
    const detail = this.detailData && this.detailData.y ? this.detailData : null;
    let zmin = Infinity;
    for (const g of detail ? [grid, detail] : [grid]) for (const row of g.z) for (const v of row) if (v !== null && v < zmin) zmin = v;
    const scaled = (g) => ({
      x: g.x, y: g.y, z: g.z.map((row) => row.map((v) => (v === null ? null : Math.log10(1 + v - zmin)))),
      // the constraints': shaded where positive, and each equality's curve h = 0 traced (maprender.js)
      infeasibility: (!this.hidden.has("infeasible") && g.infeasibility) || null,
      equalities: (!this.hidden.has("feasible-curve") && g.equalities) || null,
    });
    this.grid = scaled(grid);
    this.grid.detail = detail ? scaled(detail) : null;
  }

  /**
   * A finer grid over part of the map (what a zoomed view shows), drawn over the grid inside its
   * box on the same colour scale (1-D: a finer stretch of the line); null drops it. `onView(ranges)`,
   * if set, hears of every new view.
   */
  setDetail(grid) {
    this.detailData = grid && !grid.y === this.oneD ? grid : null;
    if (!this.gridData) return;
    this._buildGrid();
    if (this.oneD) this._schedule(); else this._drawMap(); // the line is a trace of the overlay
  }

  setPath(id, xs, ys, { name = "path", color = null } = {}) {
    if (xs === null || xs === undefined) {
      this.paths.delete(id);
      if (!this.paths.size) this._zoom = null; // a new run starts from its own path
      this._schedule();
      return;
    }
    const old = this.paths.get(id);
    const c = color || (old && old.color) || PATH_COLORS[this.paths.size % PATH_COLORS.length];
    // Kept as given (not copied): thinned and measured once, at the next draw.
    this.paths.set(id, { id, name, color: c, xs, ys, trace: null, box: null });
    this._schedule();
  }

  setPopulation(points) { this._setPoints("population", points); }

  setLineSearch(points) { this._setPoints("lineSearch", points); }

  /** The points a method evaluated in a step (minimize's methods), as [[x, y], ...] or null. */
  setTrials(points) { this._setPoints("trials", points); }

  /** Nelder–Mead's simplex, its vertices as [[x, y], ...] (best first), or null. */
  setSimplex(points) { this._setPoints("simplex", points); }

  /** The trust region's edge in the plotted plane, as [[x, y], ...] around it, or null. */
  setTrust(points) { this._setPoints("trust", points); }

  _setPoints(key, points) {
    const had = !!this[key];
    this[key] = points && points.length ? points : null;
    // Only the legend (drawn with the overlay) cares whether there are any.
    if (had !== !!this[key]) this._schedule(); else this._pointsPacer.schedule();
  }

  setMarker(x, y) { this.marker = x === null || x === undefined ? null : [x, y]; this._schedule(); }

  setMinimum(x, y) { this.minimum = x === null || x === undefined ? null : [x, y]; this._schedule(); }

  setMessage(text) { this.message = text || null; this._schedule(); }

  /** The bounds of the full view where there is no grid (a function the server does not have): {x, y}. */
  setRange(box) { this.range = box ? { x: box.x, y: this.oneD ? null : box.y } : null; this._schedule(); }

  /** "path": zoom to the paths (and the current point); "full": the grid's bounds. */
  setView(view) {
    this.view = view === "path" ? "path" : "full";
    this._zoom = null;
    this._viewRev += 1;
    this._renderTools();
    this._schedule();
  }

  _renderTools() {
    for (const [b, v] of [[this._fullButton, "full"], [this._pathButton, "path"]]) {
      b.setAttribute("aria-pressed", this.view === v ? "true" : "false");
      b.classList.toggle("active", this.view === v);
    }
    const hasPath = [...this.paths.values()].some((p) => p.xs && p.xs.length);
    this._pathButton.disabled = !hasPath && this.view !== "path";
  }

  // A react redraws the contour too: at most ~8 per second, however fast the overlays change.
  _schedule() { this._pacer.schedule(); }

  _pathTrace(p) {
    const keep = thinPoints(p.xs, p.ys, this.maxPathPoints);
    p.box = boxOf(p.xs, p.ys);
    const x = keep.map((i) => p.xs[i]), y = keep.map((i) => p.ys[i]);
    p.trace = {
      type: "scatter", mode: "lines+markers", name: plotText(p.name), uid: `path-${p.id}`, x, y,
      line: { color: p.color, width: this.oneD ? 1 : 2, dash: this.oneD ? "dot" : "solid" },
      // One SVG element per marker: a long path shows a few hundred of them, its line shows every point.
      marker: { size: this.oneD ? 7 : 4, color: p.color, maxdisplayed: this.oneD ? 400 : 150 },
      hoverinfo: "skip", // the point layer's tip names path points
    };
    return p.trace;
  }

  _points(kind, name, pts, marker, what) {
    const X = plotText(this.xTitle), Y = this.oneD ? "f" : plotText(this.yTitle);
    const fy = this.oneD ? fmtF : fmtX;
    return {
      type: "scatter", mode: "markers", name, uid: kind, x: pts.map((p) => p[0]), y: pts.map((p) => p[1]),
      text: pts.map((p) => `${what}<br>${X} ${fmtX(p[0])}, ${Y} ${fy(p[1])}`), cliponaxis: true, marker,
      hovertemplate: "%{text}<extra></extra>",
    };
  }

  /** The view's ranges: the grid's bounds, or (zoomed) the paths' box, widened only when the path leaves it. */
  _ranges() {
    const full = this.range ? { x: this.range.x, y: this.range.y } : { x: null, y: null };
    if (this.view !== "path") return full;
    let box = null;
    for (const p of this.paths.values()) if (p.box) box = boxOf([p.box.x[0], p.box.x[1]], [p.box.y[0], p.box.y[1]], box);
    if (this.marker) box = boxOf([this.marker[0]], [this.marker[1]], box);
    if (!box || !(box.x[1] >= box.x[0])) return full;
    const pad = (r, f, frac) => {
      const fspan = f ? f[1] - f[0] : 0;
      const span = Math.max(r[1] - r[0], 0.04 * fspan, 1e-9 * Math.max(1, Math.abs(r[0])));
      let lo = r[0] - frac * span, hi = r[1] + frac * span;
      if (r[1] - r[0] < span) { const mid = (r[0] + r[1]) / 2; lo = mid - span * (0.5 + frac); hi = mid + span * (0.5 + frac); }
      if (f) { lo = Math.max(lo, f[0]); hi = Math.min(hi, f[1]); }
      return [lo, hi];
    };
    if (this.oneD) {
      // y follows f over the zoomed x range (the curve and the points on it).
      const x = this._zoom && within(box.x, this._zoom.x) ? this._zoom.x : pad(box.x, full.x, this._zoom ? 0.3 : 0.12);
      let ylo = box.y[0], yhi = box.y[1];
      if (this.gridData) {
        const gx = this.gridData.x, gz = this.gridData.z;
        for (let i = 0; i < gx.length; i++) if (gx[i] >= x[0] && gx[i] <= x[1] && gz[i] !== null) { ylo = Math.min(ylo, gz[i]); yhi = Math.max(yhi, gz[i]); }
      }
      const m = Math.max((yhi - ylo) * 0.08, 1e-9 * Math.max(1, Math.abs(yhi)));
      this._zoom = { x, y: [ylo - m, yhi + m] };
      return this._zoom;
    }
    const tight = { x: box.x, y: box.y };
    if (this._zoom && within(tight.x, this._zoom.x) && within(tight.y, this._zoom.y)) return this._zoom;
    // First zoom: snug; later (the path left the view): wider, so that it does not change every frame.
    const frac = this._zoom ? 0.3 : 0.12;
    const next = { x: pad(tight.x, full.x, frac), y: pad(tight.y, full.y, frac) };
    if (this._zoom) { // never narrower than before while following
      next.x = [Math.min(next.x[0], this._zoom.x[0]), Math.max(next.x[1], this._zoom.x[1])];
      next.y = [Math.min(next.y[0], this._zoom.y[0]), Math.max(next.y[1], this._zoom.y[1])];
    }
    this._zoom = next;
    return next;
  }

  /** What is drawn, in drawing order: only overlays that have points right now. */
  _legendItems() {
    const items = [];
    if (this.population) items.push({ id: "population", kind: "population", name: "population" });
    for (const p of this.paths.values()) if (p.xs && p.xs.length) items.push({ id: `path-${p.id}`, kind: "path", name: p.name, color: p.color });
    if (this.lineSearch) items.push({ id: "line-search", kind: "line-search", name: "line search" });
    if (this.simplex) items.push({ id: "simplex", kind: "simplex", name: "simplex" });
    if (this.trust) items.push({ id: "trust", kind: "trust", name: "trust region" });
    if (this.trials) items.push({ id: "trials", kind: "trials", name: "trial points" });
    if (this.minimum) items.push({ id: "minimum", kind: "minimum", name: "known minimum" });
    if (this.gridData && this.gridData.infeasibility) items.push({ id: "infeasible", kind: "infeasible", name: "infeasible (shaded)" });
    if (this.gridData && this.gridData.equalities && this.gridData.equalities.length) {
      items.push({ id: "feasible-curve", kind: "feasible-curve", name: "feasible curve (h = 0)" });
    }
    return items;
  }

  /** The map and the point layer under the overlay (made on the first draw). */
  _stack() {
    if (this.mapLayer) return;
    const stack = document.createElement("div");
    stack.className = "contour-stack";
    this.el.parentNode.insertBefore(stack, this.el);
    stack.append(this.el);
    this.el.classList.add("contour-overlay");
    this.mapLayer = new MapLayer(stack, this.el);
    this.layer = new PointLayer(stack, this.el);
  }

  /** Called once Plotly has made the overlay (its .on exists after the first react). */
  _listen() {
    if (this._listening || !this.el.on) return;
    this._listening = true;
    // A zoom or pan in the overlay (drag, double click, the mode bar) moves the map and the points with it.
    const redraw = (ranges) => { this._drawMap(ranges); this._drawPoints(ranges); };
    this.el.on("plotly_relayout", () => { redraw(); this._reportView(); });
    this.el.on("plotly_relayouting", (e) => redraw(draggedRanges(e))); // a drag moves the axes as it goes
  }

  /** Draw the map on the overlay's current axes, if the grid or the axes changed since it was drawn. */
  _drawMap(ranges = null) {
    const L = this.mapLayer;
    if (!L) return;
    const a = this.oneD || !this.grid ? null : axesOf(this.el, ranges);
    const key = a ? JSON.stringify([a.x0, a.x1, a.y0, a.y1, a.width, a.height, this._gridRev]) : null;
    if (key === this._mapKey) return;
    if (this._mapGridRev !== this._gridRev) { L.setGrid(this.oneD ? null : this.grid); this._mapGridRev = this._gridRev; }
    this._mapKey = key;
    L.draw(a);
  }

  /** Tell onView of the overlay's ranges once they have held for VIEW_SETTLE_MS. */
  _reportView() {
    const a = axesOf(this.el);
    if (!a) return;
    const view = { x: [a.x0, a.x1], y: [a.y0, a.y1] };
    const key = JSON.stringify(view);
    if (key === this._viewKey || !this.onView) return;
    this._viewKey = key;
    clearTimeout(this._viewTimer);
    this._viewTimer = setTimeout(() => this.onView(view), VIEW_SETTLE_MS);
  }

  _flush() {
    this._stack();
    const traces = [];
    if (this.grid && this.oneD) traces.push(this.grid);
    for (const p of this.paths.values()) {
      if (!p.xs || !p.xs.length) continue;
      const t = p.trace || this._pathTrace(p);
      if (!this.hidden.has(`path-${p.id}`)) traces.push(t);
    }
    if (this.minimum && !this.hidden.has("minimum")) {
      traces.push(this._points("minimum", "known minimum", [this.minimum],
        { size: 13, symbol: "star", color: "#fff", line: { color: "#212529", width: 1 } }, "known minimum"));
    }
    if (this.marker) {
      traces.push(this._points("current", "current", [this.marker],
        { size: 12, color: "#ff4d4f", line: { color: "#fff", width: 2 } }, "current best"));
    }
    this._renderTools();
    const r = this._ranges();
    setLegend(this.tools, this.legend ? this._legendItems() : [], this.hidden, (id) => {
      toggle(this.hidden, id);
      if ((id === "infeasible" || id === "feasible-curve") && this.gridData && !this.oneD) this._buildGrid(); // drawn by the map
      this._schedule();
    });
    const st = {
      x: r.x, y: r.y, xt: this.xTitle, yt: this.oneD ? "f" : this.yTitle, d: this.oneD, m: this.message, h: this.height,
      rev: this._viewRev,
    };
    const key = JSON.stringify(st);
    if (key !== this._layoutKey) {
      this._layoutKey = key;
      const stacked = !this.oneD && !!this.grid;
      this._layout = baseLayout({
        height: this.height || undefined,
        // over the map: the same plot area as the map's (fixed margins, room for its colour bar)
        margin: stacked ? { ...MAP_MARGIN } : { l: 56, r: this.oneD ? 24 : 8, t: 12, b: 44 },
        plot_bgcolor: "rgba(0,0,0,0)", // the map and the point layer are under it
        xaxis: { ...AXIS, title: { text: plotText(st.xt) }, range: r.x || undefined, autorange: !r.x, showgrid: this.oneD },
        yaxis: { ...AXIS, title: { text: plotText(st.yt) }, range: r.y || undefined, autorange: !r.y, showgrid: this.oneD, gridcolor: "#eee" },
        annotations: this.message ? [{
          text: plotText(this.message), xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
          font: { size: 14, color: "#6c757d" }, bgcolor: "rgba(255,255,255,.85)",
        }] : [],
        uirevision: `${this.xTitle}|${this.yTitle}|${this.oneD}|${this._viewRev}`,
      });
    }
    Plotly().react(this.el, traces, this._layout, CONFIG);
    this._listen();
    this._pointsPacer.cancel();
    this._drawMap();
    this._drawPoints();
    this._reportView();
  }

  _drawPoints(ranges = null) {
    const L = this.layer;
    if (!L) return;
    L.oneD = this.oneD;
    L.titles = [this.xTitle, this.oneD ? "f" : this.yTitle];
    const shown = (id, v) => (this.hidden.has(id) ? null : v);
    L.set("population", shown("population", this.population));
    L.set("line-search", shown("line-search", this.lineSearch));
    L.set("simplex", shown("simplex", this.simplex));
    L.set("trust", shown("trust", this.trust));
    L.set("trials", shown("trials", this.trials));
    L.paths = [...this.paths.values()].filter((p) => p.trace && !this.hidden.has(`path-${p.id}`))
      .map((p) => ({ name: p.name, x: p.trace.x, y: p.trace.y }));
    L.draw(axesOf(this.el, ranges));
  }

  resize() {
    Plotly().Plots.resize(this.el).then(() => { this._drawMap(); this._drawPoints(); }, () => {});
  }

  destroy() {
    this._pacer.cancel();
    this._pointsPacer.cancel();
    clearTimeout(this._viewTimer);
    Plotly().purge(this.el);
    if (this.mapLayer) {
      this.mapLayer.destroy();
      this.layer.destroy();
      const stack = this.el.parentNode;
      stack.parentNode.insertBefore(this.el, stack);
      stack.remove();
      this.el.classList.remove("contour-overlay");
      this.mapLayer = null; this.layer = null;
    }
    this.tools.row.remove();
  }
}
