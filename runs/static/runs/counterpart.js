// "Compare with …": the same problem under a method of the other kind, side by side. A local
// method's counterpart is DE (a global search of the same box); a global method's is a local one
// from a starting point: L-BFGS-B, or SLSQP on a constrained problem (L-BFGS-B takes no
// constraints). Runs are deterministic, so an existing run of the user's with the same spec (the
// server normalises it through the one validation path: /runs/new/existing/) is reused; a second
// button launches a fresh one when the user wants that. A counterpart the validator refuses is
// not offered: the note says why, in its words.
//
// The two study links beside them open the new-study form prefilled from the run: the run
// repeated over 20 seeds (or 20 random starts), and the same against its counterpart.
//
//   const cmp = new CompareButtons(view);   cmp.update(run);
//   view.onCompare = async (spec) => { ...launch, then open the comparison... };
import { escapeHTML, getJSON } from "./api.js";
import { fmtVec } from "./format.js";
import { boundsText, defaultBounds, methodTitle } from "./runtext.js";

// What each method takes, for a page without the catalogue (the two the page knew first).
const FALLBACK = new Map([
  ["de", { name: "de", short: "DE", family: "global", takes_bounds: true, takes_x0: true }],
  ["lbfgsb", { name: "lbfgsb", short: "L-BFGS-B", family: "gradient", takes_bounds: true, takes_x0: true }],
]);

const constrained = (problem) => !!(problem && problem.constraints && problem.constraints.length);

/** The method a run is compared with: DE for a local one, L-BFGS-B (SLSQP if constrained) for a global one. */
export function counterpartMethod(run, problem, methods = FALLBACK) {
  if (run.problem === "external") return null; // the server cannot compute its owner's function
  const m = (methods && methods.get(run.method)) || FALLBACK.get(run.method);
  if (!m) return null;
  if (m.family !== "global") return "de";
  return constrained(problem) ? "slsqp" : "lbfgsb";
}

const inside = (x0, bounds) => !!x0 && x0.every((v, i) => bounds[i][0] <= v && v <= bounds[i][1]);

/** The same problem under its counterpart method, and a note on what had to be chosen for it. */
export function counterpartSpec(run, problem, methods = FALLBACK) {
  const other = counterpartMethod(run, problem, methods);
  if (!other) return null;
  const target = (methods && methods.get(other)) || FALLBACK.get(other) || { takes_bounds: true, takes_x0: true };
  const here = methodTitle(methods, run.method), there = methodTitle(methods, other);
  const dim = run.dim || (run.x0 ? run.x0.length : 2);
  const spec = { method: other, problem: run.problem, params: run.params || {}, dim };
  const notes = [];
  let bounds = run.bounds;
  if (other === "de") {
    const open = !bounds || bounds.some((b) => b[0] === null || b[1] === null);
    if (open) {
      const defaults = defaultBounds(problem, dim);
      bounds = defaults.map((d, i) => {
        const b = (run.bounds && run.bounds[i]) || [null, null];
        const lo = b[0] === null ? d[0] : b[0], hi = b[1] === null ? d[1] : b[1];
        return lo < hi ? [lo, hi] : d;
      });
      notes.push(`DE needs closed bounds: open sides take ${problem ? problem.title : "the problem"}'s default bounds ${boundsText(bounds)}`);
    }
    spec.bounds = bounds;
    spec.options = { seed: 1 };
    // scipy's DE refuses an x0 outside its bounds: then it starts from its own population alone
    if (run.x0 && target.takes_x0 !== false) {
      if (inside(run.x0, bounds)) spec.x0 = run.x0;
      else notes.push(`This ${here} run's x0 ${fmtVec(run.x0, 4)} lies outside those bounds, so DE starts without it`);
    }
  } else {
    if (bounds && target.takes_bounds !== false) spec.bounds = bounds;
    if (target.takes_x0 !== false) {
      let x0 = run.x0;
      if (!x0) {
        // A quarter of the way into each bound, as the new-run form does: the centre is the
        // minimum of many test functions and would make the comparison meaningless.
        const box = bounds || defaultBounds(problem, dim);
        x0 = box.map((b) => Number((b[0] + 0.25 * (b[1] - b[0])).toPrecision(6)));
        notes.push(`This ${here} run had no x0, so ${there} starts a quarter of the way into each bound, at ${fmtVec(x0, 4)}`);
      }
      spec.x0 = x0;
    }
    spec.options = {};
  }
  if (constrained(problem)) notes.push(`${there} takes ${problem.title}'s constraints too`);
  return { spec, note: notes.join(". ") };
}

export class CompareButtons {
  _studyLinks(run) {
    const $ = this.view.$, repeat = $("#btn-study-repeat"), against = $("#btn-study-against");
    if (!repeat || !against) return;
    // a study's runs are computed here: not an external run's function, which is its owner's
    const methods = this.view.methods, saved = run && run.id && run.problem !== "external";
    repeat.hidden = against.hidden = !saved;
    if (!saved) return;
    const m = (methods && methods.get(run.method)) || FALLBACK.get(run.method);
    const seeded = m && m.options ? m.options.some((o) => o.type === "seed") : "seed" in (run.options || {});
    repeat.textContent = seeded ? "Repeat with 20 seeds" : "Repeat from 20 starts";
    repeat.href = `/studies/new/?from=${run.id}`;
    repeat.title = `A study: this run's ${methodTitle(methods, run.method)} ${seeded ? "with seeds 1…20" : "from 20 random starts inside the bounds"}`;
    const other = counterpartMethod(run, this.view.problem, methods);
    against.hidden = !other;
    if (other) {
      against.textContent = `… against ${methodTitle(methods, other)}`;
      against.href = `/studies/new/?from=${run.id}&against=${encodeURIComponent(other)}`;
      against.title = `A study: this run's method and ${methodTitle(methods, other)}, 20 repeats each`;
    }
  }

  constructor(view) {
    this.view = view;
    const $ = view.$;
    this.btn = $("#btn-compare");
    this.fresh = $("#btn-compare-fresh");
    this.note = $("#compare-note");
    this.match = null;
    this.lookup = null;
    this.btn.addEventListener("click", () => this._go({ fresh: false }));
    if (this.fresh) this.fresh.addEventListener("click", () => this._go({ fresh: true }));
  }

  update(run) {
    const view = this.view;
    this.run = run;
    this._studyLinks(run);
    this.cmp = counterpartSpec(run, view.problem, view.methods);
    this.match = null;
    this.refused = null;
    this.btn.hidden = !this.cmp;
    this.btn.disabled = false;
    if (this.fresh) this.fresh.hidden = true;
    if (!this.cmp) { this.note.hidden = true; this.lookup = null; return; }
    const title = methodTitle(view.methods, this.cmp.spec.method);
    this.title = title;
    this.btn.textContent = `Compare with ${title}`;
    this.btn.title = `Open this run beside ${title} on the same problem`;
    this._note();
    const q = new URLSearchParams({ spec: JSON.stringify(this.cmp.spec) });
    this.lookup = getJSON(`/runs/new/existing/?${q}`).then((data) => {
      if (this.run !== run) return;
      this.match = data.run || null;
      this._note();
    }, (e) => {
      if (this.run !== run) return;
      // The validator refused the counterpart's spec: it could not be launched either.
      if (e.status === 400) { this.refused = e.message; this.btn.disabled = true; this._note(); }
      // otherwise no lookup: the button launches a new run
    });
  }

  _note() {
    const parts = [];
    if (this.refused) parts.push(`${escapeHTML(this.title)} cannot run this comparison: ${escapeHTML(this.refused)}`);
    else if (this.match) {
      const m = this.match;
      parts.push(`${escapeHTML(this.title)} on the same problem with the same settings is <a href="${escapeHTML(m.url)}">run ${m.id}</a> `
        + `(${escapeHTML(m.status)}); runs are deterministic, so the comparison reuses it`);
    }
    if (this.cmp.note && !this.refused) parts.push(escapeHTML(this.cmp.note));
    this.note.innerHTML = parts.join(". ");
    this.note.hidden = !parts.length;
    if (this.fresh) {
      this.fresh.hidden = !this.match;
      this.fresh.textContent = `New ${this.title} run`;
      this.fresh.title = `Launch a fresh ${this.title} run with these settings and compare with it`;
    }
    this.btn.title = this.refused ? `${this.title} cannot run this comparison` : this.match ? `Open this run beside run ${this.match.id} (${this.title}, the same settings)`
      : `Launch ${this.title} on the same problem and open both side by side`;
  }

  async _go({ fresh }) {
    const view = this.view;
    if (!this.cmp || !view.onCompare) return;
    if (this.lookup) await this.lookup;
    if (this.refused) return;
    if (!fresh && this.match) {
      location.href = `/runs/compare/?ids=${this.run.id},${this.match.id}`;
      return;
    }
    const btn = fresh ? this.fresh : this.btn;
    btn.disabled = true;
    const old = btn.textContent;
    btn.innerHTML = `<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Launching…`;
    try {
      await view.onCompare(this.cmp.spec);
    } catch (e) {
      view.showAlert(`Could not launch the comparison run: ${e.message}`);
    } finally {
      btn.disabled = false;
      btn.textContent = old;
    }
  }
}
