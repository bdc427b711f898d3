// Stored steps of one run, read from the steps API in pages (PROTOCOL v1.1 "Paging and bulky
// fields"): light pages for the step table, single full steps (population, line search) for the
// map. Only a bounded number of pages is kept: a 100,000-step run never ends up in memory.
//
//   const store = new StepStore(7, { onChange, onGone });
//   store.seed(steps);              // steps already held (the live table's rows)
//   store.get(41);                  // a light step, or null while its page is on its way
//   store.ensure(100, 160);         // fetch the pages covering seq 100…160 (onChange when they land)
//   await store.full(41);           // the step with its bulky fields
//   await store.latest(nSteps);     // the newest step the page knows of, with its bulky fields
//
// A 404 for the run itself calls onGone() once (the run was deleted in another tab).
import { getJSON } from "./api.js";

const BULKY = ["population", "population_energies", "line_search"];

export function hasBulky(step) {
  const ex = step && step.extra;
  return Boolean(ex && BULKY.some((k) => ex[k] !== undefined));
}

export class StepStore {
  constructor(runId, { page = 100, maxPages = 40, onChange = () => {}, onGone = () => {} } = {}) {
    this.runId = runId;
    this.page = page;
    this.maxPages = maxPages;
    this.onChange = onChange;
    this.onGone = onGone;
    this.pages = new Map(); // page index -> Map(seq -> step) | Promise
    this.fulls = new Map(); // seq -> full step (a few, most recent last)
    this.focus = 0;
    this.gone = false;
  }

  seed(steps) {
    for (const s of steps) {
      const p = Math.floor(s.seq / this.page);
      let m = this.pages.get(p);
      if (!(m instanceof Map)) { if (m) continue; m = new Map(); this.pages.set(p, m); }
      m.set(s.seq, s);
      if (hasBulky(s)) this._keepFull(s);
    }
  }

  get(seq) {
    const m = this.pages.get(Math.floor(seq / this.page));
    return m instanceof Map ? m.get(seq) || null : null;
  }

  /** Fetch what is missing of seq lo…hi; true when all of it is here already. */
  ensure(lo, hi) {
    if (this.gone) return false;
    let all = true;
    this.focus = (lo + hi) / 2;
    for (let p = Math.floor(Math.max(0, lo) / this.page); p <= Math.floor(hi / this.page); p++) {
      const m = this.pages.get(p);
      if (m instanceof Map && (m.fetched || m.size >= this._expected(p, hi))) continue;
      all = false;
      if (!m || m instanceof Map) this._fetch(p);
    }
    this._evict();
    return all;
  }

  _expected(p, hi) {
    // A page is whole when it has every seq up to its end (or up to hi, the last step there is).
    return Math.min(this.page, hi - p * this.page + 1);
  }

  _fetch(p) {
    const url = `/api/runs/${this.runId}/steps/?after=${p * this.page - 1}&limit=${this.page}`;
    const promise = getJSON(url).then((data) => {
      const m = new Map();
      for (const s of data.steps || []) m.set(s.seq, s);
      m.fetched = true; // as whole as the server has it: not asked for again
      if (this.pages.get(p) === promise) this.pages.set(p, m);
      this.onChange();
    }, (e) => {
      if (this.pages.get(p) === promise) this.pages.delete(p);
      this._failed(e);
    });
    this.pages.set(p, promise);
  }

  _evict() {
    if (this.pages.size <= this.maxPages) return;
    const centre = this.focus / this.page;
    const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - centre) - Math.abs(a - centre));
    for (const p of far.slice(0, this.pages.size - this.maxPages)) this.pages.delete(p);
  }

  _keepFull(s) {
    this.fulls.delete(s.seq);
    this.fulls.set(s.seq, s);
    while (this.fulls.size > 12) this.fulls.delete(this.fulls.keys().next().value);
  }

  _failed(e) {
    if (e && e.status === 404 && !this.gone) { this.gone = true; this.onGone(); }
  }

  /** The step with its bulky fields (null if there is no such step). */
  async full(seq) {
    if (this.fulls.has(seq)) return this.fulls.get(seq);
    let data;
    try {
      data = await getJSON(`/api/runs/${this.runId}/steps/?after=${seq - 1}&limit=1&bulky=1`);
    } catch (e) {
      this._failed(e);
      throw e;
    }
    const step = data.steps && data.steps[0];
    if (!step || step.seq !== seq) return null;
    this._keepFull(step);
    return step;
  }

  /**
   * The newest step the page knows of (`nSteps` from the Run it was given), with its bulky
   * fields. Anything newer comes over the socket, which starts right after it.
   */
  latest(nSteps) {
    return nSteps ? this.full(nSteps - 1) : Promise.resolve(null);
  }
}
