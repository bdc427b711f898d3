// The canvases under a ContourPlot's overlay (plots.js): the map of the objective and the points of
// one step. Plotly draws the overlay (axes, paths, markers); these draw what made its redraws
// long: a filled contour of a 70 × 70 grid took 60–100 ms in Plotly (marching squares, smoothed SVG
// paths, a colour bar) and a DE population of 450 SVG markers most of each overlay redraw. Here the
// map is a raster of the same bands (a few ms) and the points a canvas path (well under one).
//
// Both draw on the overlay's axes: `axesOf(overlay)` reads its plot area and ranges after each draw.
import { fmtF, fmtX } from "./format.js";

// Plotly's "Viridis" stops, so that the map keeps the colours it had.
const VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
  "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"].map((h) =>
  [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
const BANDS = 24;               // about as many as the contour's ncontours gave
const LINE = [255, 255, 255, 0.3]; // the faint white line between bands
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

/** For each of n pixel centres from v0 to v1: the grid cell (index into `grid`) and the fraction in it; -1 outside. */
function cells(grid, v0, v1, n) {
  const idx = new Int32Array(n), frac = new Float64Array(n), last = grid.length - 1;
  const up = grid[last] > grid[0];
  let j = 0;
  for (let i = 0; i < n; i++) {
    const v = v0 + ((i + 0.5) / n) * (v1 - v0);
    if (up ? v < grid[0] || v > grid[last] : v > grid[0] || v < grid[last]) { idx[i] = -1; continue; }
    // pixel centres are monotonic: walk the grid instead of searching it
    if (j > 0 && (up ? v < grid[j] : v > grid[j])) j = 0;
    while (j < last - 1 && (up ? v > grid[j + 1] : v < grid[j + 1])) j++;
    idx[i] = j;
    frac[i] = (v - grid[j]) / (grid[j + 1] - grid[j]);
  }
  return { idx, frac };
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
  }

  /** {x, y, z, detail} with z already on the map's scale (nulls are holes), or null. `detail`, a
   * finer {x, y, z} over part of it (or null), is drawn instead of it inside its box. */
  setGrid(grid) {
    this.grid = null;
    if (grid) {
      let lo = Infinity, hi = -Infinity;
      for (const g of grid.detail ? [grid, grid.detail] : [grid]) {
        for (const row of g.z) for (const v of row) if (v !== null && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
      }
      if (lo <= hi) {
        const step = hi > lo ? niceStep((hi - lo) / BANDS) : 1;
        const start = Math.floor(lo / step) * step, n = Math.max(1, Math.ceil((hi - start) / step));
        const colors = Array.from({ length: n }, (_, k) => viridis(hi > lo ? (start + (k + 0.5) * step - lo) / (hi - lo) : 0.5));
        this.grid = { x: grid.x, y: grid.y, z: grid.z, detail: grid.detail || null, lo, hi, start, step, colors };
      }
    }
    this.rev += 1;
  }

  draw(a) {
    const g = fit(this.canvas, a);
    this.canvas.dataset.drawn = String(this.grid && a ? this.rev : 0);
    this.canvas.dataset.detail = this.grid && this.grid.detail ? "1" : "0";
    if (!a || !this.grid) return;
    const G = this.grid, dpr = window.devicePixelRatio || 1;
    const scale = Math.min(dpr, Math.sqrt(MAX_PIXELS / (a.w * a.h)));
    const pw = Math.max(1, Math.round(a.w * scale)), ph = Math.max(1, Math.round(a.h * scale));
    const img = new ImageData(pw, ph), px = img.data;
    const band = new Int16Array(pw * ph).fill(-1);
    const { start, step, colors } = G, nb = colors.length;
    // The detail first; the grid where the detail has nothing (outside its box, or a hole).
    for (const g of G.detail ? [G.detail, G] : [G]) {
      const cx = cells(g.x, a.x0, a.x1, pw), cy = cells(g.y, a.y1, a.y0, ph), z = g.z; // rows from the top
      for (let r = 0; r < ph; r++) {
        const j = cy.idx[r];
        if (j < 0) continue;
        const fy = cy.frac[r], row0 = z[j], row1 = z[j + 1];
        for (let c = 0; c < pw; c++) {
          const i = cx.idx[c];
          if (i < 0 || band[r * pw + c] >= 0) continue;
          const z00 = row0[i], z10 = row0[i + 1], z01 = row1[i], z11 = row1[i + 1];
          if (z00 === null || z10 === null || z01 === null || z11 === null) continue; // a hole, as Plotly leaves it
          const fx = cx.frac[c];
          const v = (z00 * (1 - fx) + z10 * fx) * (1 - fy) + (z01 * (1 - fx) + z11 * fx) * fy;
          band[r * pw + c] = Math.min(nb - 1, Math.max(0, Math.floor((v - start) / step)));
        }
      }
    }
    for (let r = 0; r < ph; r++) {
      for (let c = 0; c < pw; c++) {
        const k = band[r * pw + c];
        if (k < 0) continue;
        const o = 4 * (r * pw + c), col = colors[k];
        const edge = (c > 0 && band[r * pw + c - 1] >= 0 && band[r * pw + c - 1] !== k)
          || (r > 0 && band[(r - 1) * pw + c] >= 0 && band[(r - 1) * pw + c] !== k);
        const m = edge ? LINE[3] : 0;
        px[o] = col[0] + m * (LINE[0] - col[0]); px[o + 1] = col[1] + m * (LINE[1] - col[1]);
        px[o + 2] = col[2] + m * (LINE[2] - col[2]); px[o + 3] = 255;
      }
    }
    const off = new OffscreenCanvas(pw, ph);
    off.getContext("2d").putImageData(img, 0, 0);
    g.drawImage(off, a.l, a.t, a.w, a.h);
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

  destroy() { this.canvas.remove(); }
}

// What a point layer draws, per kind.
const POINT_STYLES = {
  population: { name: "population", what: "member", r: 3, fill: "rgba(255,255,255,.85)", stroke: "#212529", width: 1 },
  "line-search": { name: "line search", what: "line-search trial", r: 4, cross: true, stroke: "#d39e00", width: 2 },
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
