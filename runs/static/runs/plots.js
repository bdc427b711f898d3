// Reusable Plotly components for optsite pages (run view, compare page).
// Needs the vendored plotly-cartesian bundle loaded first as a classic <script> (window.Plotly).
//
// ConvergencePlot — objective against iteration, several series, log axis of f − f* when f* is known.
//   const cp = new ConvergencePlot(el, { fstar: 0, logScale: true, xTitle: "iteration", maxPoints: 4000,
//                                        emptyText: "No steps yet" });
//   cp.addSeries("run-7", "DE", { color: "#0d6efd" });
//   cp.extend("run-7", [0, 1, 2], [6.5, 3.1, 1.2]);   // append raw f values (the plot subtracts f*)
//   cp.setData("run-7", xs, fs);                      // replace a series
//   cp.setMarker(12);                                 // vertical line + a dot on every series at x=12 (null: hide)
//   cp.setFstar(null);                                // unknown minimum: plots f itself
//   cp.removeSeries("run-7");  cp.clear();  cp.resize();  cp.destroy();
// Values with f − f* <= 0 (rounding, or f* slightly off) are drawn at a small positive floor and the hover
// says so. Past `maxPoints` a series is drawn from min/max buckets (redrawn at most twice a second);
// markers and hovers always use the full data.
//
// ContourPlot — a 2-D map of the objective with overlays.
//   const ct = new ContourPlot(el, { xTitle: "x0", yTitle: "x1" });
//   ct.setGrid({ x, y, z });               // z[j][i] is f at (x[i], y[j]); nulls are holes; drawn on log10(1 + f − min f)
//   ct.setPath("run-7", xs, ys, { name: "best point", color });   // several paths allowed (compare page)
//   ct.setPopulation([[x, y], ...]);       // DE generation (null clears)
//   ct.setLineSearch([[x, y], ...]);       // L-BFGS-B line-search trial points (null clears)
//   ct.setMarker(x, y);                    // the current point (null clears)
//   ct.setMinimum(x, y);                   // the known minimiser (null clears)
//   ct.setMessage("Loading…");             // text over the plot (null clears)
// Updates are batched: many calls cause one Plotly.react on a later animation frame, at most one
// per `minInterval` ms (option, default 120).

const Plotly = () => window.Plotly;

const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 };
const PALETTE = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#dc3545", "#6c757d"];
// Where f − f* <= 0 is drawn on a log axis: far below anything double precision resolves near 1.
const FLOOR = 1e-16;

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

export class ConvergencePlot {
  constructor(el, { fstar = null, logScale = true, xTitle = "iteration", maxPoints = 4000, height = null,
    emptyText = "No steps yet" } = {}) {
    this.el = el;
    this.emptyText = emptyText;
    this.fstar = fstar;
    this.logScale = logScale;
    this.xTitle = xTitle;
    this.maxPoints = maxPoints;
    this.height = height;
    this.series = new Map(); // id -> {name, color, xs, fs, trace, thinned}
    this.marker = null;
    this._negative = false; // some plotted value <= 0 with no f*: log axis impossible
    this._drawn = false;
    this._redrawTimer = null;
    this._draw();
  }

  get _useLog() { return this.logScale && !(this.fstar === null && this._negative); }

  _yTitle() {
    if (this.fstar !== null) return this._useLog ? "f − f*  (log scale)" : "f − f*";
    return this._useLog ? "f  (log scale)" : "f";
  }

  /** Plotted y, hover text for one raw f. */
  _point(f) {
    if (f === null || f === undefined) return [null, "f not finite"];
    if (this.fstar !== null) {
      const d = f - this.fstar;
      if (this._useLog && d <= 0) return [FLOOR, `f = ${fmt(f)}<br>f − f* = ${fmt(d)} ≤ 0, drawn at ${FLOOR}`];
      return [d, `f = ${fmt(f)}<br>f − f* = ${fmt(d)}`];
    }
    return [f, `f = ${fmt(f)}`];
  }

  _traceFor(s) {
    let idx = null;
    if (s.xs.length > this.maxPoints) {
      const ys = s.fs;
      idx = minMaxIndices(ys, this.maxPoints);
    }
    const xs = idx ? idx.map((i) => s.xs[i]) : s.xs.slice();
    const pts = (idx ? idx.map((i) => s.fs[i]) : s.fs).map((f) => this._point(f));
    return {
      type: "scatter", mode: "lines", name: s.name, x: xs, y: pts.map((p) => p[0]), text: pts.map((p) => p[1]),
      line: { color: s.color, width: 2, dash: s.dash || "solid" },
      hovertemplate: `<b>${s.name}</b><br>${this.xTitle} %{x}<br>%{text}<extra></extra>`,
    };
  }

  _markerTraces() {
    if (this.marker === null) return [];
    const xs = [], ys = [], texts = [], colors = [];
    for (const s of this.series.values()) {
      if (!s.xs.length) continue;
      // Last point at or before the marker.
      let i = lowerBound(s.xs, this.marker);
      if (i >= s.xs.length || s.xs[i] > this.marker) i -= 1;
      if (i < 0) continue;
      const [y, t] = this._point(s.fs[i]);
      xs.push(s.xs[i]); ys.push(y); texts.push(`${s.name}: ${t}`); colors.push(s.color);
    }
    return [{
      type: "scatter", mode: "markers", x: xs, y: ys, text: texts, hovertemplate: "%{text}<extra></extra>",
      marker: { size: 11, color: colors, line: { color: "#fff", width: 2 } }, showlegend: false,
    }];
  }

  _layout() {
    const shapes = this.marker === null ? [] : [{
      type: "line", xref: "x", yref: "paper", x0: this.marker, x1: this.marker, y0: 0, y1: 1,
      line: { color: "rgba(33,37,41,.45)", width: 1, dash: "dot" },
    }];
    return baseLayout({
      height: this.height || undefined,
      showlegend: this.series.size > 1,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      margin: { l: 64, r: 16, t: this.series.size > 1 ? 28 : 12, b: 44 },
      xaxis: { title: { text: this.xTitle }, zeroline: false, gridcolor: "#eee" },
      yaxis: { title: { text: this._yTitle() }, type: this._useLog ? "log" : "linear", exponentformat: "e",
        gridcolor: "#eee", zeroline: false },
      shapes,
      annotations: [...this.series.values()].some((s) => s.xs.length) ? [] : [{
        text: this.emptyText, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        font: { size: 14, color: "#6c757d" },
      }],
      uirevision: "keep", // keep the user's zoom across updates
    });
  }

  _draw() {
    const traces = [...this.series.values()].map((s) => this._traceFor(s));
    Plotly().react(this.el, [...traces, ...this._markerTraces()], this._layout(), CONFIG);
    this._drawn = true;
  }

  _scheduleRedraw() {
    if (this._redrawTimer) return;
    this._redrawTimer = setTimeout(() => { this._redrawTimer = null; this._draw(); }, 400);
  }

  addSeries(id, name, { color = null, dash = null } = {}) {
    if (this.series.has(id)) return;
    const n = this.series.size;
    this.series.set(id, { name, color: color || PALETTE[n % PALETTE.length], dash, xs: [], fs: [] });
    this._draw();
  }

  removeSeries(id) {
    if (this.series.delete(id)) this._draw();
  }

  /** Append points (x ascending, raw f values) to a series. */
  extend(id, xs, fs) {
    const s = this.series.get(id);
    if (!s || !xs.length) return;
    for (let i = 0; i < xs.length; i++) {
      s.xs.push(xs[i]); s.fs.push(fs[i]);
      if (this.fstar === null && fs[i] !== null && fs[i] <= 0 && !this._negative) {
        this._negative = true;
        this._draw(); // the axis changes: full redraw (includes these points)
        return;
      }
    }
    if (s.xs.length === xs.length) { this._draw(); return; } // first points: drop the empty-state note
    if (s.xs.length > this.maxPoints || this.marker !== null) { this._scheduleRedraw(); return; }
    const trace = [...this.series.keys()].indexOf(id);
    const pts = fs.map((f) => this._point(f));
    Plotly().extendTraces(this.el, { x: [xs], y: [pts.map((p) => p[0])], text: [pts.map((p) => p[1])] }, [trace]);
  }

  setData(id, xs, fs) {
    const s = this.series.get(id);
    if (!s) return;
    s.xs = Array.from(xs); s.fs = Array.from(fs);
    if (this.fstar === null) this._negative = this._negative || s.fs.some((f) => f !== null && f <= 0);
    this._draw();
  }

  setMarker(x) {
    this.marker = x === null || x === undefined ? null : x;
    this._draw();
  }

  setFstar(fstar) {
    this.fstar = fstar === undefined ? null : fstar;
    this._negative = false;
    if (this.fstar === null) {
      for (const s of this.series.values()) if (s.fs.some((f) => f !== null && f <= 0)) this._negative = true;
    }
    this._draw();
  }

  clear() {
    for (const s of this.series.values()) { s.xs = []; s.fs = []; }
    this.marker = null;
    this._negative = false;
    this._draw();
  }

  resize() { if (this._drawn) Plotly().Plots.resize(this.el); }

  destroy() { clearTimeout(this._redrawTimer); Plotly().purge(this.el); }
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (v !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(4);
  return String(Number(v.toPrecision(7)));
}

export class ContourPlot {
  constructor(el, { xTitle = "x0", yTitle = "x1", height = null, minInterval = 120 } = {}) {
    this.el = el;
    this.minInterval = minInterval;
    this._last = 0;
    this.xTitle = xTitle;
    this.yTitle = yTitle;
    this.height = height;
    this.grid = null;      // the contour trace, built once per grid
    this.paths = new Map(); // id -> trace
    this.population = null;
    this.lineSearch = null;
    this.marker = null;
    this.minimum = null;
    this.message = null;
    this._pending = false;
    this._flush();
  }

  setAxes(xTitle, yTitle) { this.xTitle = xTitle; this.yTitle = yTitle; this._schedule(); }

  setGrid(grid) {
    if (!grid) { this.grid = null; this._schedule(); return; }
    const { x, y, z } = grid;
    let zmin = Infinity;
    for (const row of z) for (const v of row) if (v !== null && v < zmin) zmin = v;
    // log10(1 + f − min f): valleys like Rosenbrock's are invisible on a linear scale.
    const zt = z.map((row) => row.map((v) => (v === null ? null : Math.log10(1 + v - zmin))));
    const text = z.map((row) => row.map((v) => fmt(v)));
    this.grid = {
      type: "contour", x, y, z: zt, text, ncontours: 24, colorscale: "Viridis", reversescale: false,
      contours: { coloring: "heatmap", showlines: true }, line: { width: 0.5, color: "rgba(255,255,255,.35)" },
      colorbar: { title: { text: "log₁₀(1+f−f<sub>min</sub>)", side: "right" }, thickness: 12, len: 0.9 },
      hovertemplate: `${this.xTitle} %{x:.4g}<br>${this.yTitle} %{y:.4g}<br>f %{text}<extra></extra>`,
      connectgaps: false,
    };
    this.range = { x: [x[0], x[x.length - 1]], y: [y[0], y[y.length - 1]] };
    this._schedule();
  }

  setPath(id, xs, ys, { name = "path", color = null } = {}) {
    if (xs === null) { this.paths.delete(id); this._schedule(); return; }
    const n = this.paths.size;
    const c = color || (this.paths.get(id) && this.paths.get(id).line.color) || ["#ff4d4f", "#ffc107", "#0dcaf0", "#f8f9fa"][n % 4];
    this.paths.set(id, {
      type: "scatter", mode: "lines+markers", name, x: xs, y: ys,
      line: { color: c, width: 2 }, marker: { size: 4, color: c },
      hovertemplate: `<b>${name}</b><br>%{x:.5g}, %{y:.5g}<extra></extra>`,
    });
    this._schedule();
  }

  setPopulation(points) { this.population = points && points.length ? points : null; this._schedule(); }

  setLineSearch(points) { this.lineSearch = points && points.length ? points : null; this._schedule(); }

  setMarker(x, y) { this.marker = x === null || x === undefined ? null : [x, y]; this._schedule(); }

  setMinimum(x, y) { this.minimum = x === null || x === undefined ? null : [x, y]; this._schedule(); }

  setMessage(text) { this.message = text || null; this._schedule(); }

  _schedule() {
    if (this._pending) return;
    this._pending = true;
    // A react redraws the contour too: at most ~8 per second, however fast the overlays change.
    const wait = Math.max(0, this._last + this.minInterval - performance.now());
    const go = () => requestAnimationFrame(() => { this._pending = false; this._last = performance.now(); this._flush(); });
    if (wait > 0) setTimeout(go, wait); else go();
  }

  _flush() {
    const traces = [];
    if (this.grid) traces.push(this.grid);
    if (this.population) {
      traces.push({
        type: "scatter", mode: "markers", name: "population", x: this.population.map((p) => p[0]),
        y: this.population.map((p) => p[1]), cliponaxis: true,
        marker: { size: 6, color: "rgba(255,255,255,.85)", line: { color: "#212529", width: 1 } },
        hovertemplate: "member<br>%{x:.4g}, %{y:.4g}<extra></extra>",
      });
    }
    for (const p of this.paths.values()) traces.push(p);
    if (this.lineSearch) {
      traces.push({
        type: "scatter", mode: "markers", name: "line search", x: this.lineSearch.map((p) => p[0]),
        y: this.lineSearch.map((p) => p[1]),
        marker: { size: 9, symbol: "x-thin", color: "#ffc107", line: { color: "#ffc107", width: 2 } },
        hovertemplate: "line-search trial<br>%{x:.4g}, %{y:.4g}<extra></extra>",
      });
    }
    if (this.minimum) {
      traces.push({
        type: "scatter", mode: "markers", name: "known minimum", x: [this.minimum[0]], y: [this.minimum[1]],
        marker: { size: 13, symbol: "star", color: "#fff", line: { color: "#212529", width: 1 } },
        hovertemplate: "known minimum<br>%{x:.4g}, %{y:.4g}<extra></extra>",
      });
    }
    if (this.marker) {
      traces.push({
        type: "scatter", mode: "markers", name: "current", x: [this.marker[0]], y: [this.marker[1]],
        marker: { size: 12, color: "#ff4d4f", line: { color: "#fff", width: 2 } },
        hovertemplate: "current best<br>%{x:.5g}, %{y:.5g}<extra></extra>",
      });
    }
    const layout = baseLayout({
      height: this.height || undefined,
      margin: { l: 56, r: 8, t: 12, b: 44 },
      xaxis: { title: { text: this.xTitle }, range: this.range && this.range.x, zeroline: false, showgrid: false },
      yaxis: { title: { text: this.yTitle }, range: this.range && this.range.y, zeroline: false, showgrid: false },
      annotations: this.message ? [{
        text: this.message, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        font: { size: 14, color: "#6c757d" }, bgcolor: "rgba(255,255,255,.85)",
      }] : [],
      uirevision: `${this.xTitle}|${this.yTitle}`,
    });
    Plotly().react(this.el, traces, layout, CONFIG);
  }

  resize() { Plotly().Plots.resize(this.el); }

  destroy() { Plotly().purge(this.el); }
}
