// "Compare with L-BFGS-B" / "Compare with DE": the same problem under the other method, side by
// side. Runs are deterministic, so an existing run of the user's with the same spec (the server
// normalises it through the one validation path: /runs/new/existing/) is reused; a second button
// launches a fresh one when the user wants that.
//
//   const cmp = new CompareButtons(view);   cmp.update(run);
//   view.onCompare = async (spec) => { ...launch, then open the comparison... };
import { escapeHTML, getJSON } from "./api.js";
import { fmtVec } from "./format.js";
import { boundsText, defaultBounds, methodTitle } from "./runtext.js";

const OTHER = { de: "lbfgsb", lbfgsb: "de" };

/** The same problem under the other method, and a note on what had to be chosen for it. */
export function counterpartSpec(run, problem) {
  const other = OTHER[run.method];
  if (!other) return null;
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
    if (run.x0) spec.x0 = run.x0;
  } else {
    if (bounds) spec.bounds = bounds;
    let x0 = run.x0;
    if (!x0) {
      // A quarter of the way into each bound, as the new-run form does: the centre is the
      // minimum of many test functions and would make the comparison meaningless.
      x0 = bounds ? bounds.map((b) => Number((b[0] + 0.25 * (b[1] - b[0])).toPrecision(6))) : Array(dim).fill(0);
      notes.push(`This DE run had no x0, so L-BFGS-B starts a quarter of the way into each bound, at ${fmtVec(x0, 4)}`);
    }
    spec.x0 = x0;
    spec.options = {};
  }
  return { spec, note: notes.join(". ") };
}

export class CompareButtons {
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
    this.cmp = counterpartSpec(run, view.problem);
    this.match = null;
    this.btn.hidden = !this.cmp;
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
    }, () => { /* no lookup: the button launches a new run */ });
  }

  _note() {
    const parts = [];
    if (this.match) {
      const m = this.match;
      parts.push(`${escapeHTML(this.title)} on the same problem with the same settings is <a href="${escapeHTML(m.url)}">run ${m.id}</a> `
        + `(${escapeHTML(m.status)}); runs are deterministic, so the comparison reuses it`);
    }
    if (this.cmp.note) parts.push(escapeHTML(this.cmp.note));
    this.note.innerHTML = parts.join(". ");
    this.note.hidden = !parts.length;
    if (this.fresh) {
      this.fresh.hidden = !this.match;
      this.fresh.textContent = `New ${this.title} run`;
      this.fresh.title = `Launch a fresh ${this.title} run with these settings and compare with it`;
    }
    this.btn.title = this.match ? `Open this run beside run ${this.match.id} (${this.title}, the same settings)`
      : `Launch ${this.title} on the same problem and open both side by side`;
  }

  async _go({ fresh }) {
    const view = this.view;
    if (!this.cmp || !view.onCompare) return;
    if (this.lookup) await this.lookup;
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
