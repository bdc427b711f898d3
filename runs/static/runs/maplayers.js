// The canvases under a ContourPlot's overlay (plots.js): the map of the objective and the points of
// one step. Plotly draws the overlay (axes, paths, markers); these draw what made its redraws
// long: a filled contour of a 70 × 70 grid took 60–100 ms in Plotly (marching squares, smoothed SVG
// paths, a colour bar) and a DE population of 450 SVG markers most of each overlay redraw. Here the
// map is a raster of the same bands, made by a worker (maprender.js) off the main thread, and the
// points a canvas path (well under a millisecond).
//
// Both draw on the overlay's axes: `axesOf(overlay)` reads its plot area and ranges after each draw.
import { fmtF, fmtX } from "./format.js";
import { packGrid, raster } from "./maprender.js";

// Plotly's "Viridis" stops, so that the map keeps the colours it had.
const VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
  "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"].map((h) =>
  [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
const BANDS = 24;               // about as many as the contour's ncontours gave
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"; // the plots' own
const MAX_PIXELS = 1.2e6;       // of the map's raster: on a large HiDPI screen it is drawn at a lower scale

function viridis(t) {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(u)), f = u - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
}

/** A step of 1, 2, 2.5 or 5 × 10^k near `raw`. */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  return p * (m < 1.5 ? 1 : m < 2.25 ? 2 : m < 3.5 ? 2.5 : m < 7.5 ? 5 : 10);
}

/** The overlay's plot area (CSS px of the stack) and its linear axes; null before its first draw. */
export function axesOf(overlay, ranges = null) {
  const full = overlay._fullLayout;
  if (!full || !full._size || !full.xaxis || !full.yaxis) return null;
  const { l, t, w, h } = full._size;
  const [x0, x1] = (ranges && ranges.x) || full.xaxis.range, [y0, y1] = (ranges && ranges.y) || full.yaxis.range;
  if (!(w > 0 && h > 0 && x1 !== x0 && y1 !== y0)) return null;
  return {
    l, t, w, h, x0, x1, y0, y1, width: full.width, height: full.height,
    px: (x) => l + ((x - x0) / (x1 - x0)) * w, py: (y) => t + ((y1 - y) / (y1 - y0)) * h,
  };
}

/** A canvas the size of the overlay, scaled for the screen; returns its 2-D context, cleared. */
function fit(canvas, a) {
  const dpr = window.devicePixelRatio || 1;
  const W = a ? a.width : 0, H = a ? a.height : 0;
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  return g;
}

/** The objective's map as filled bands of log10(1 + f − min f), with its colour bar in the right margin. */
export class MapLayer {
  constructor(stack, overlay) {
    this.overlay = overlay;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "contour-map";
    this.canvas.setAttribute("aria-hidden", "true");
    if (overlay.id) this.canvas.id = `${overlay.id}-map`;
    stack.prepend(this.canvas);
    this.grid = null;
    this.rev = 0;
    this.axes = null;     // the view last asked for
    this.shown = null;    // {bitmap, rev, x0, x1, y0, y1}: the newest raster that arrived
    this.job = null;      // the raster the view needs, not asked of the worker yet
    this.pending = false; // the worker is making one
    this.jobs = 0;
    this.worker = null;
    try {
      this.worker = new Worker(new URL("./maprender.js", import.meta.url), { type: "module" });
      this.worker.onmessage = (e) => this._arrived(e.data);
      this.worker.onerror = () => this._inline(); // drawn here instead, as before workers
    } catch (e) {
      this.worker = null;
    }
  }

  /** {x, y, z, detail} with z already on the map's scale (nulls are holes), or null. `detail`, a
   * finer {x, y, z} over part of it (or null), is drawn instead of it inside its box. Each may
   * carry `infeasibility` (shaded where positive) and `equalities` (each h traced where h = 0). */
  setGrid(grid) {
    this.grid = null;
    this.rev += 1;
    if (grid) {
      let lo = Infinity, hi = -Infinity;
      for (const g of grid.detail ? [grid, grid.detail] : [grid]) {
        for (const row of g.z) for (const v of row) if (v !== null && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
      }
      if (lo <= hi) {
        const step = hi > lo ? niceStep((hi - lo) / BANDS) : 1;
        const start = Math.floor(lo / step) * step, n = Math.max(1, Math.ceil((hi - start) / step));
        const colors = Array.from({ length: n }, (_, k) => viridis(hi > lo ? (start + (k + 0.5) * step - lo) / (hi - lo) : 0.5));
        this.grid = { lo, hi, start, step, colors, packed: { ...packGrid({ ...grid, start, step, colors }), rev: this.rev } };
        if (this.worker) this.worker.postMessage({ grid: this.grid.packed });
      }
    }
    if (!this.grid) this.shown = null; // nothing to stand in for a map that has gone
  }

  /**
   * Draw on the axes `a`: at once the newest raster there is, moved and scaled to them (the map
   * as it was a moment ago, or the previous grid's), and the colour bar; the raster of exactly this
   * view and grid when the worker has made it.
   */
  draw(a) {
    this.axes = a;
    this.canvas.dataset.detail = this.grid && this.grid.packed.detail ? "1" : "0";
    this._paint();
    if (!a || !this.grid) { this.job = null; return; }
    const scale = Math.min(window.devicePixelRatio || 1, Math.sqrt(MAX_PIXELS / (a.w * a.h)));
    const job = {
      id: ++this.jobs, rev: this.rev, x0: a.x0, x1: a.x1, y0: a.y0, y1: a.y1,
      pw: Math.max(1, Math.round(a.w * scale)), ph: Math.max(1, Math.round(a.h * scale)),
    };
    if (this._exact(job)) { this.job = null; return; }
    this.job = job;
    this._send();
  }

  _exact(job) {
    const r = this.shown;
    return !!r && r.rev === job.rev && r.x0 === job.x0 && r.x1 === job.x1 && r.y0 === job.y0 && r.y1 === job.y1
      && r.bitmap.width === job.pw && r.bitmap.height === job.ph;
  }

  /** One raster at a time: a view that changes while the worker draws waits for it, then only the newest is drawn. */
  _send() {
    if (this.pending || !this.job) return;
    const job = this.job;
    this.job = null;
    if (!this.worker) { this._arrived(this._local(job)); return; }
    this.pending = true;
    this.worker.postMessage({ job });
  }

  _local(job) {
    const px = raster(this.grid.packed, job);
    const off = new OffscreenCanvas(job.pw, job.ph);
    off.getContext("2d").putImageData(new ImageData(px, job.pw, job.ph), 0, 0);
    return { ...job, bitmap: off };
  }

  _arrived(msg) {
    this.pending = false;
    if (msg.bitmap && msg.rev === this.rev) {
      if (this.shown && this.shown.bitmap.close) this.shown.bitmap.close();
      this.shown = msg;
      this._paint();
    } else if (msg.bitmap && msg.bitmap.close) msg.bitmap.close(); // a grid that has gone
    this._send();
  }

  /** The worker could not start (or failed): every raster is made here from now on. */
  _inline() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.pending = false;
    const a = this.axes;
    if (a) this.draw(a);
  }

  _paint() {
    const a = this.axes, g = fit(this.canvas, a), r = this.shown;
    const exact = !!(r && a && r.rev === this.rev && r.x0 === a.x0 && r.x1 === a.x1 && r.y0 === a.y0 && r.y1 === a.y1);
    this.canvas.dataset.drawn = String(this.grid && exact ? this.rev : 0);
    this.canvas.dataset.maker = this.worker ? "worker" : "page"; // what makes the rasters (tests ask)
    if (!a || !this.grid) return;
    if (r) {
      g.save();
      g.beginPath(); g.rect(a.l, a.t, a.w, a.h); g.clip();
      const X0 = a.px(r.x0), X1 = a.px(r.x1), Y0 = a.py(r.y1), Y1 = a.py(r.y0);
      g.drawImage(r.bitmap, X0, Y0, X1 - X0, Y1 - Y0);
      g.restore();
    }
    this._colorBar(g, a);
  }

  /** The bands' colours beside the plot, with decade-like ticks and the scale's name. */
  _colorBar(g, a) {
    const G = this.grid, n = G.colors.length;
    const x = a.l + a.w + 10, w = 12, top = a.t + a.h * 0.05, h = a.h * 0.9;
    const lo = G.start, hi = G.start + n * G.step, yOf = (v) => top + h * (1 - (v - lo) / (hi - lo));
    for (let k = 0; k < n; k++) {
      const c = G.colors[k];
      g.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
      const y0 = yOf(G.start + (k + 1) * G.step), y1 = yOf(G.start + k * G.step);
      g.fillRect(x, y0, w, y1 - y0 + 0.5);
    }
    g.font = `11px ${FONT}`; g.fillStyle = "#444"; g.textBaseline = "middle"; g.textAlign = "left";
    const tick = niceStep((hi - lo) / 5);
    for (let v = Math.ceil(lo / tick) * tick; v <= hi + 1e-9 * tick; v += tick) {
      g.fillText(String(Math.abs(v) < 1e-9 * tick ? 0 : +v.toPrecision(6)), x + w + 4, yOf(v));
    }
    g.save();
    g.translate(a.l + a.w + 66, top + h / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.font = `12px ${FONT}`;
    g.fillText("log₁₀(1+f−fₘᵢₙ)", 0, 0);
    g.restore();
  }

  destroy() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.canvas.remove();
  }
}

// What a point layer draws, per kind.
const POINT_STYLES = {
  population: { name: "population", what: "member", r: 3, fill: "rgba(255,255,255,.85)", stroke: "#212529", width: 1 },
  "line-search": { name: "line search", what: "line-search trial", r: 4, cross: true, stroke: "#d39e00", width: 2 },
  trials: { name: "trial points", what: "trial point", r: 3, cross: true, stroke: "#6f42c1", width: 1.5 },
  // Nelder–Mead's simplex: its vertices joined, in the order scipy holds them (best first)
  simplex: { name: "simplex", what: "vertex", r: 3, polygon: true, fill: "rgba(255,255,255,.9)", stroke: "#d63384", width: 1.5 },
  // the trust region around the step's point (the trust methods' radius, tr_radius): a closed outline only
  trust: { name: "trust region", what: "trust-region edge", r: 0, polygon: true, stroke: "#fd7e14", width: 1.5 },
};
const HOVER_PX = 7; // how near the pointer a point must be to name itself

/**
 * The population and the line-search trials of one step, on a canvas between the map and the
 * overlay's SVG (under the paths, which stay Plotly traces). Pointing at one of these or at a
 * path's point names it in a small tip, in the site's number formats: the path traces carry no
 * hover text per point, which cost thousands of strings per redraw.
 */
export class PointLayer {
  constructor(stack, overlay) {
    this.overlay = overlay;
    this.sets = new Map(); // kind -> [[x, y], ...]
    this.canvas = document.createElement("canvas");
    this.canvas.className = "contour-points";
    this.canvas.setAttribute("aria-hidden", "true");
    this.tip = document.createElement("div");
    this.tip.className = "plot-tip";
    this.tip.hidden = true;
    stack.insertBefore(this.canvas, overlay);
    stack.append(this.tip);
    this.axes = null;
    this.titles = ["x[0]", "x[1]"];
    this.oneD = false;
    this.paths = []; // [{name, x, y}] as drawn by the overlay: named here too, so that their traces need no text
    overlay.drawnPoints = {}; // what is drawn, by name, as {x, y} (as a Plotly trace would hold it)
    overlay.addEventListener("mousemove", (e) => this._hover(e));
    overlay.addEventListener("mouseleave", () => { this.tip.hidden = true; });
  }

  set(kind, pts) {
    const name = POINT_STYLES[kind].name;
    if (pts && pts.length) {
      this.sets.set(kind, pts);
      this.overlay.drawnPoints[name] = { x: pts.map((p) => p[0]), y: pts.map((p) => p[1]) };
    } else {
      this.sets.delete(kind);
      delete this.overlay.drawnPoints[name];
    }
  }

  draw(a) {
    const g = fit(this.canvas, a);
    this.axes = a;
    if (!a || !this.sets.size) return;
    g.save();
    g.beginPath(); g.rect(a.l, a.t, a.w, a.h); g.clip();
    for (const [kind, pts] of this.sets) {
      const st = POINT_STYLES[kind];
      if (st.polygon) {
        g.beginPath();
        pts.forEach(([x, y], i) => { if (i) g.lineTo(a.px(x), a.py(y)); else g.moveTo(a.px(x), a.py(y)); });
        g.closePath();
        g.lineWidth = st.width; g.strokeStyle = st.stroke; g.stroke();
        if (!st.r) continue;
      }
      g.beginPath();
      for (const [x, y] of pts) {
        const X = a.px(x), Y = a.py(y);
        if (!Number.isFinite(X) || !Number.isFinite(Y)) continue;
        if (st.cross) {
          g.moveTo(X - st.r, Y - st.r); g.lineTo(X + st.r, Y + st.r);
          g.moveTo(X - st.r, Y + st.r); g.lineTo(X + st.r, Y - st.r);
        } else {
          g.moveTo(X + st.r, Y); g.arc(X, Y, st.r, 0, 2 * Math.PI);
        }
      }
      if (st.fill) { g.fillStyle = st.fill; g.fill(); }
      g.lineWidth = st.width; g.strokeStyle = st.stroke; g.stroke();
    }
    g.restore();
  }

  /** The point nearest the pointer (a path's first: they are drawn on top), named in the tip. */
  _hover(e) {
    const a = this.axes;
    let best = null, bestD = HOVER_PX * HOVER_PX;
    if (a) {
      const box = this.canvas.getBoundingClientRect();
      const mx = e.clientX - box.left, my = e.clientY - box.top;
      const consider = (label, x, y) => {
        const dx = a.px(x) - mx, dy = a.py(y) - my, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = { label, x, y, mx, my }; }
      };
      for (const p of this.paths) for (let i = 0; i < p.x.length; i++) consider(p.name, p.x[i], p.y[i]);
      if (!best) {
        for (const [kind, pts] of this.sets) {
          const what = POINT_STYLES[kind].what;
          for (let i = 0; i < pts.length; i++) consider(`${what} ${i + 1}`, pts[i][0], pts[i][1]);
        }
      }
    }
    if (!best) { this.tip.hidden = true; return; }
    const [xt, yt] = this.titles, fy = this.oneD ? fmtF : fmtX;
    this.tip.textContent = `${best.label} · ${xt} ${fmtX(best.x)}, ${yt} ${fy(best.y)}`;
    this.tip.style.left = `${best.mx + 12}px`;
    this.tip.style.top = `${best.my + 12}px`;
    this.tip.hidden = false;
  }

  destroy() { this.canvas.remove(); this.tip.remove(); delete this.overlay.drawnPoints; }
}
