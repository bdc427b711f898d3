// The step table. Two modes:
//   live      a fixed number of rows, newest on top: new steps are prepended and the oldest dropped,
//             so its cost does not grow with the run;
//   windowed  an ended run, scrollable over every step (newest on top as while live): only the rows
//             in view are in the DOM, filled from a StepStore page by page as they scroll in.
// The current (replay) step is highlighted and kept in view; clicking a row or ↑ ↓ PgUp PgDn in
// the table moves the replay there (onPick).
//
//   const table = new StepTable($, { liveRows: 50, onPick: (seq) => replay.go(seq) });
//   table.reset(run);  table.empty("Waiting…");
//   table.prepend(newSteps, total);        // live
//   table.windowed(n, store);  table.setCursor(seq);  table.refresh();
import { escapeHTML } from "./api.js";
import { fmtCount, fmtF, fmtSeconds, fmtVec } from "./format.js";
import { plural, stepNo } from "./runtext.js";

const MARGIN = 12; // rows rendered beyond the visible ones, above and below

// The columns a method's steps add to the table: [heading, (step, extra) -> cell HTML].
const num = (key) => (s, ex) => fmtF(ex[key]);
const MOVE = [["‖Δx‖", num("dx_norm")], ["Δf", num("df")]];
const GRADIENT = [["‖∇f‖", num("grad_norm")], ...MOVE];
const VIOLATION = ["violation", (s, ex) => fmtF(ex.violation ?? ex.constr_violation)];
function extraColumns(method) {
  switch (method) {
    case "lbfgsb": return [["gradient", (s) => fmtVec(s.jac, 3)], ["‖proj g‖∞", num("pg_norm")], ["step length", num("step_length")]];
    case "de": return [["spread", (s, ex) => (s.phase === "polish" ? (ex.accepted ? "accepted" : "rejected") : fmtF(ex.convergence))]];
    case "nelder-mead": case "powell": return MOVE;
    case "cobyla": case "cobyqa": case "slsqp": return [...(method === "slsqp" ? GRADIENT : MOVE), VIOLATION];
    case "trust-constr": return [...GRADIENT, ["trust radius", num("tr_radius")], VIOLATION];
    case "dogleg": case "trust-ncg": case "trust-krylov": case "trust-exact": return [...GRADIENT, ["trust radius", num("tr_radius")]];
    case "dual_annealing": return [["temperature", num("temperature")]];
    case "basinhopping": return [["hop", (s, ex) => (ex.accepted === undefined ? "" : ex.accepted ? "accepted" : "rejected")],
      ["stepsize", num("stepsize")], ["best f", num("best_fun")]];
    case "direct": return [["best f", num("best_fun")]];
    case "shgo": return [["local search", (s, ex) => (ex.local_index === undefined ? "" : fmtCount(ex.local_index))]];
    default: return GRADIENT; // cg, bfgs, newton-cg, tnc
  }
}

export class StepTable {
  constructor($, { liveRows = 50, onPick = () => {} } = {}) {
    this.$ = $;
    this.liveRows = liveRows;
    this.onPick = onPick;
    this.box = $("#steps-scroll");
    this.body = $("#steps-body");
    this.mode = "live";
    this.rowH = 0;
    this.cursor = null;
    this.nRows = 0;
    this._drawSoon = false;
    this.box.addEventListener("scroll", () => { if (this.mode === "windowed") this._soon(); }, { passive: true });
    this.box.addEventListener("keydown", (e) => this._key(e));
    this.body.addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-seq]");
      if (tr && this.mode === "windowed") this.onPick(Number(tr.dataset.seq));
    });
  }

  reset(run) {
    this.run = run;
    this.mode = "live";
    this.store = null;
    this.n = 0;
    this.cursor = null;
    this._placed = null;
    this.nRows = 0;
    this.body.innerHTML = "";
    this.box.classList.remove("windowed");
    this.box.removeAttribute("tabindex");
    this.$("#steps-note").textContent = "";
    this.extras = extraColumns(run.method);
    this.cols = ["step", "iter", "phase", "f", "x", "evals", ...this.extras.map((c) => c[0]), "elapsed"];
    this.$("#steps-head").innerHTML = `<tr>${this.cols.map((c) => `<th scope="col">${c}</th>`).join("")}</tr>`;
  }

  empty(text) {
    this.body.innerHTML = `<tr class="empty"><td colspan="${this.cols.length}" class="text-center text-body-secondary py-4">${escapeHTML(text)}</td></tr>`;
    this.nRows = 0;
  }

  setEmptyText(text) {
    const td = this.body.querySelector("tr.empty td");
    if (td) td.textContent = text;
  }

  // ---- live ----------------------------------------------------------------------------------
  /** Prepend `steps` (oldest first) and keep the newest liveRows rows; `total` = steps so far. */
  prepend(steps, total) {
    if (this.mode !== "live") return;
    const placeholder = this.body.querySelector("tr.empty");
    if (placeholder) placeholder.remove();
    const shown = steps.slice(-this.liveRows);
    let html = "";
    for (let i = shown.length - 1; i >= 0; i--) html += this.rowHTML(shown[i]);
    this.body.insertAdjacentHTML("afterbegin", html);
    this.nRows += shown.length;
    while (this.nRows > this.liveRows) { this.body.lastElementChild.remove(); this.nRows -= 1; }
    const csv = `<a href="/runs/${this.run.id}/steps.csv">the CSV</a> has them all`;
    this.$("#steps-note").innerHTML = total > this.liveRows
      ? `the newest ${fmtCount(this.liveRows)} of ${plural(total, "step")} while live; ${csv}`
      : plural(total, "step");
  }

  // ---- windowed ------------------------------------------------------------------------------
  windowed(n, store) {
    this.mode = "windowed";
    this.n = n;
    this.store = store;
    this.box.classList.add("windowed");
    this.box.tabIndex = 0;
    this.box.setAttribute("aria-label", "Steps of the run; ↑ ↓ Page Up Page Down move the current step");
    this.$("#steps-note").innerHTML = `${plural(n, "step")}, newest on top; scroll, click a row or use ↑ ↓ in the table; `
      + `<a href="/runs/${this.run.id}/steps.csv">the CSV</a> has every field`;
    this._draw();
  }

  setCursor(seq, { scroll = true } = {}) {
    // Scroll only when the cursor moves: a redraw must not take the box back from the user.
    const moved = seq !== this.cursor || this._placed !== seq;
    this.cursor = seq;
    if (this.mode !== "windowed") return;
    if (scroll && moved && this.rowH) {
      this._placed = seq;
      const top = (this.n - 1 - seq) * this.rowH, head = this._headH();
      const view0 = this.box.scrollTop, view1 = view0 + this.box.clientHeight - head - this.rowH;
      if (top < view0 || top > view1) this.box.scrollTop = Math.max(0, top - (this.box.clientHeight - head) / 2);
    }
    this._draw();
  }

  refresh() { if (this.mode === "windowed") this._soon(); }

  _headH() { const h = this.$("#steps-head"); return h ? h.offsetHeight : 0; }

  _soon() {
    if (this._drawSoon) return;
    this._drawSoon = true;
    requestAnimationFrame(() => { this._drawSoon = false; this._draw(); });
  }

  _draw() {
    if (this.mode !== "windowed") return;
    const n = this.n, rowH = this.rowH || 29;
    const visible = Math.ceil(Math.max(this.box.clientHeight, 200) / rowH);
    const first = Math.max(0, Math.floor(this.box.scrollTop / rowH) - MARGIN);
    const last = Math.min(n - 1, first + visible + 2 * MARGIN);
    // rows first…last from the top: seq n-1-first down to n-1-last
    const hiSeq = n - 1 - first, loSeq = n - 1 - last;
    if (n > 0) this.store.ensure(loSeq, hiSeq);
    const span = this.cols.length;
    // Spacers stand for the rows not drawn; their heights are set below, through the DOM (a style
    // attribute in markup is inline CSS, which the site's Content-Security-Policy refuses).
    const spacer = `<tr class="spacer" aria-hidden="true"><td colspan="${span}"></td></tr>`;
    let html = first > 0 ? spacer : "";
    for (let seq = hiSeq; seq >= loSeq; seq--) {
      const s = this.store.get(seq);
      const cur = seq === this.cursor;
      html += s ? this.rowHTML(s, cur)
        : `<tr data-seq="${seq}" class="loading${cur ? " table-active current" : ""}"${cur ? ' aria-current="true"' : ""}><td>${fmtCount(stepNo(seq))}</td><td colspan="${span - 1}" class="text-body-secondary">loading…</td></tr>`;
    }
    const below = n - 1 - last;
    if (below > 0) html += spacer;
    this.body.innerHTML = html;
    if (first > 0) this.body.firstElementChild.firstElementChild.style.height = `${first * rowH}px`;
    if (below > 0) this.body.lastElementChild.firstElementChild.style.height = `${below * rowH}px`;
    if (!this.rowH) {
      const row = this.body.querySelector("tr[data-seq]");
      const h = row ? row.getBoundingClientRect().height : 0;
      if (h > 0) { this.rowH = h; if (Math.abs(h - 29) > 0.5) this._draw(); }
    }
  }

  _key(e) {
    if (this.mode !== "windowed" || this.cursor === null || e.altKey || e.ctrlKey || e.metaKey) return;
    const page = Math.max(1, Math.floor((this.box.clientHeight - this._headH()) / (this.rowH || 29)) - 1);
    // Newest on top: the row above is the later step.
    const moves = { ArrowUp: 1, ArrowDown: -1, PageUp: page, PageDown: -page };
    if (!(e.key in moves)) return;
    e.preventDefault();
    e.stopPropagation();
    this.onPick(Math.max(0, Math.min(this.n - 1, this.cursor + moves[e.key])));
  }

  // ---- one row -------------------------------------------------------------------------------
  rowHTML(s, current = false) {
    const ex = s.extra || {};
    const phase = s.phase === "iterate" ? "" : `<span class="badge rounded-pill text-bg-${s.phase === "polish" ? "info" : "light border"}">${escapeHTML(s.phase)}</span>`;
    const cells = [
      fmtCount(stepNo(s.seq)), fmtCount(s.nit), phase, `<span title="${s.fun}">${fmtF(s.fun)}</span>`, fmtVec(s.x, 4), fmtCount(s.nfev),
    ];
    for (const [, cell] of this.extras) cells.push(cell(s, ex));
    cells.push(fmtSeconds(s.elapsed));
    return `<tr data-seq="${s.seq}"${current ? ' class="table-active current" aria-current="true"' : ""}>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
  }
}
