// The objective's map as a raster of filled bands: every pixel interpolates the grid, which at a
// 1440 px window costs 40–170 ms. MapLayer (maplayers.js) runs this module as a worker, so that
// the page's main thread only draws the finished bitmap; `raster` is also imported there, for a
// browser that cannot start the worker.
//
// Messages to the worker: {grid} (a new grid, as `packGrid` makes it) and {job} ({id, rev, x0,
// x1, y0, y1, pw, ph}: the raster of grid `rev` over that view at pw × ph pixels). Each job is
// answered with the job and its `bitmap` (an ImageBitmap, transferred) or an `error`.

const LINE = [255, 255, 255, 0.3]; // the faint white line between bands
const SHADE = 0.62;       // how far an infeasible pixel is washed towards white
const CURVE = [217, 72, 15]; // an equality constraint's curve h = 0 (the legend's swatch in site.css)

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

/**
 * A grid as the raster reads it, cheap to post to a worker: z flattened row by row (NaN for a
 * hole), the infeasibility (v) and each equality's h (e) likewise, the detail (a finer grid over
 * part of it, drawn first) likewise; the bands' start, step and colours ([[r, g, b], ...]).
 */
export function packGrid({ x, y, z, infeasibility, equalities, detail, start, step, colors }) {
  const flatten = (rows, nx, ny) => {
    const flat = new Float64Array(nx * ny);
    rows.forEach((row, j) => { for (let i = 0; i < nx; i++) flat[j * nx + i] = row[i] === null ? NaN : row[i]; });
    return flat;
  };
  const pack = (g) => {
    const nx = g.x.length, ny = g.y.length;
    return { x: Float64Array.from(g.x), y: Float64Array.from(g.y), z: flatten(g.z, nx, ny),
      v: g.infeasibility ? flatten(g.infeasibility, nx, ny) : null,
      e: g.equalities && g.equalities.length ? g.equalities.map((h) => flatten(h, nx, ny)) : null };
  };
  return { main: pack({ x, y, z, infeasibility, equalities }), detail: detail ? pack(detail) : null, start, step, colors };
}

/** RGBA pixels (pw × ph, rows from the top) of a packed grid over the view x0..x1 × y0..y1. */
export function raster(G, { x0, x1, y0, y1, pw, ph }) {
  const px = new Uint8ClampedArray(4 * pw * ph);
  const band = new Int16Array(pw * ph).fill(-1);
  const outside = new Uint8Array(pw * ph); // 1: the constraints are violated there (shaded)
  // per equality, the sign of its h at each pixel (0: no value); a pixel beside one of the other
  // sign is on the curve h = 0, so that the curve is traced two pixels wide, one on each side
  const neq = Math.max(G.main.e ? G.main.e.length : 0, G.detail && G.detail.e ? G.detail.e.length : 0);
  const sign = Array.from({ length: neq }, () => new Int8Array(pw * ph));
  const { start, step, colors } = G, nb = colors.length;
  // The detail first; the grid where the detail has nothing (outside its box, or a hole).
  for (const g of G.detail ? [G.detail, G.main] : [G.main]) {
    const nx = g.x.length, z = g.z;
    const cx = cells(g.x, x0, x1, pw), cy = cells(g.y, y1, y0, ph);
    for (let r = 0; r < ph; r++) {
      const j = cy.idx[r];
      if (j < 0) continue;
      const fy = cy.frac[r], row0 = j * nx, row1 = (j + 1) * nx;
      for (let c = 0; c < pw; c++) {
        const i = cx.idx[c];
        if (i < 0 || band[r * pw + c] >= 0) continue;
        const z00 = z[row0 + i], z10 = z[row0 + i + 1], z01 = z[row1 + i], z11 = z[row1 + i + 1];
        if (z00 !== z00 || z10 !== z10 || z01 !== z01 || z11 !== z11) continue; // a hole (NaN), as Plotly leaves it
        const fx = cx.frac[c];
        const v = (z00 * (1 - fx) + z10 * fx) * (1 - fy) + (z01 * (1 - fx) + z11 * fx) * fy;
        band[r * pw + c] = Math.min(nb - 1, Math.max(0, Math.floor((v - start) / step)));
        if (g.v) { // the signed infeasibility, interpolated the same way: its zero level is the edge
          const V = g.v, w = (V[row0 + i] * (1 - fx) + V[row0 + i + 1] * fx) * (1 - fy) + (V[row1 + i] * (1 - fx) + V[row1 + i + 1] * fx) * fy;
          outside[r * pw + c] = w > 0 ? 1 : 0;
        }
        if (g.e) {
          for (let k = 0; k < g.e.length; k++) {
            const H = g.e[k], h = (H[row0 + i] * (1 - fx) + H[row0 + i + 1] * fx) * (1 - fy) + (H[row1 + i] * (1 - fx) + H[row1 + i + 1] * fx) * fy;
            if (h === h) sign[k][r * pw + c] = h >= 0 ? 1 : -1;
          }
        }
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
      let R = col[0] + m * (LINE[0] - col[0]), Gc = col[1] + m * (LINE[1] - col[1]), B = col[2] + m * (LINE[2] - col[2]);
      const out = outside[r * pw + c];
      // the feasible region's edge: where a neighbour is on the other side
      const rim = (c > 0 && outside[r * pw + c - 1] !== out) || (r > 0 && outside[(r - 1) * pw + c] !== out);
      let curve = false;
      for (let k = 0; k < neq && !curve; k++) {
        const S = sign[k], p = r * pw + c, s0 = S[p];
        curve = s0 !== 0 && ((c > 0 && S[p - 1] === -s0) || (c < pw - 1 && S[p + 1] === -s0)
          || (r > 0 && S[p - pw] === -s0) || (r < ph - 1 && S[p + pw] === -s0));
      }
      if (curve) { R = CURVE[0]; Gc = CURVE[1]; B = CURVE[2]; } else if (rim) { R = 33; Gc = 37; B = 41; } else if (out) { R += SHADE * (255 - R); Gc += SHADE * (255 - Gc); B += SHADE * (255 - B); }
      px[o] = R; px[o + 1] = Gc; px[o + 2] = B; px[o + 3] = 255;
    }
  }
  return px;
}

// As a worker: the newest grid, and each job answered in turn.
if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  const grids = new Map(); // rev -> packed grid (the newest only)
  self.onmessage = async ({ data }) => {
    if (data.grid) { grids.clear(); grids.set(data.grid.rev, data.grid); return; }
    const job = data.job, G = grids.get(job.rev);
    if (!G) { self.postMessage({ ...job, error: "no such grid" }); return; } // replaced meanwhile
    try {
      const bitmap = await createImageBitmap(new ImageData(raster(G, job), job.pw, job.ph));
      self.postMessage({ ...job, bitmap }, [bitmap]);
    } catch (e) {
      self.postMessage({ ...job, error: String(e) });
    }
  };
}
