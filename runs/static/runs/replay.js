// Replay of an ended run: a timeline (slider, buttons, keys, play at a chosen speed) over the
// stored steps. The plots come from the downsampled series (/api/runs/<id>/series/); the table
// and the current step's population / line search from the StepStore, page by page.
//
//   const replay = new Replay(view);   replay.open();   replay.go(seq);   replay.reset();
import { getJSON } from "./api.js";
import { fmtCount } from "./format.js";
import { markOnce } from "./livestream.js";
import { stepOf } from "./runtext.js";

const SERIES_POINTS = 2000;
const FULL_WHILE_PLAYING_MS = 200; // while playing, the population / line search follow at this pace

export class Replay {
  constructor(view) {
    this.view = view;
    const $ = view.$;
    this.$ = $;
    this.active = false;
    this.playing = false;
    this.seq = 0;
    this.n = 0;
    this._soon = false;
    this._lastFull = 0;
    $("#replay-slider").addEventListener("input", (e) => this.go(Number(e.target.value)));
    $("#replay-play").addEventListener("click", () => this.toggle());
    $("#replay-back").addEventListener("click", () => this.go(this.seq - 1));
    $("#replay-fwd").addEventListener("click", () => this.go(this.seq + 1));
    $("#replay-first").addEventListener("click", () => this.go(0));
    $("#replay-last").addEventListener("click", () => this.go(this.n - 1));
    document.addEventListener("keydown", (e) => this._key(e));
  }

  reset() {
    this.stop();
    this.active = false;
    this.series = null;
    this.currentStep = null;
    this.$("#replay").hidden = true;
    this.$("#replay-status").textContent = "";
  }

  /** Show the ended run at its last step, then load the series for the plots. */
  async open({ fromLive = false } = {}) {
    const v = this.view;
    this.active = true;
    this.n = v.run.n_steps;
    this.seq = this.n - 1;
    const slider = this.$("#replay-slider");
    slider.max = String(Math.max(0, this.n - 1));
    slider.value = String(this.seq);
    this.$("#replay").hidden = false;
    this.$("#replay-status").textContent = "loading the series…";
    this._chooseSpeed();
    v.table.windowed(this.n, v.store);
    const gen = v.generation;
    this.go(this.seq, { force: true });
    await this.reloadSeries({ keepPlot: fromLive });
    if (v.generation === gen) this.go(this.seq, { force: true });
  }

  async reloadSeries({ keepPlot = false } = {}) {
    const v = this.view, run = v.run, gen = v.generation;
    let data;
    try {
      data = await getJSON(`/api/runs/${run.id}/series/?points=${SERIES_POINTS}&x=${v.map.seriesX()}`);
    } catch (e) {
      if (v.generation !== gen) return;
      this.$("#replay-status").textContent = "";
      if (e.status === 404) v.showDeleted();
      else v.showAlert(`Could not load the run's steps: ${e.message}`);
      return;
    }
    if (v.generation !== gen) return;
    if (typeof data.n_steps === "number" && data.n_steps > 0 && data.n_steps !== this.n) {
      this.n = data.n_steps;
      this.$("#replay-slider").max = String(this.n - 1);
      this.seq = Math.min(this.seq, this.n - 1);
      v.table.windowed(this.n, v.store);
    }
    this.series = data;
    this.pairs = v.map.seriesPairs(data);
    this.pairSeq = [];
    for (let i = 0; i < data.seq.length; i++) if (data.x && data.x[i]) this.pairSeq.push(data.seq[i]);
    if (!keepPlot || data.downsampled) v.cp.setData("run", data.seq, data.fun);
    this.$("#replay-status").textContent = data.downsampled
      ? `the plots show ${fmtCount(data.count)} of ${fmtCount(this.n)} steps (every bucket's min and max kept)` : "";
    v.root.dataset.series = "drawn";
    markOnce("optsite:series");
    v.loadGrid({ points: this.pairs });
    this._renderSoon();
  }

  _chooseSpeed() {
    // About 15 s for the whole run, from a few fixed choices.
    const sel = this.$("#replay-speed");
    const want = this.n / 15;
    let best = sel.options[0].value;
    for (const o of sel.options) if (Number(o.value) <= Math.max(want, 10)) best = o.value;
    sel.value = best;
  }

  go(seq, { force = false } = {}) {
    if (!this.active || !this.n) return;
    seq = Math.max(0, Math.min(this.n - 1, Math.round(seq)));
    if (seq === this.seq && !force) return;
    this.seq = seq;
    this.$("#replay-slider").value = String(seq);
    this._renderSoon();
  }

  toggle() { if (this.playing) this.stop(); else this.play(); }

  play() {
    if (!this.active || this.n < 2) return;
    if (this.seq >= this.n - 1) this.go(0);
    this.playing = true;
    this._setPlayButton();
    let last = performance.now(), carry = 0;
    const tick = (now) => {
      if (!this.playing) return;
      carry += ((now - last) / 1000) * Number(this.$("#replay-speed").value);
      last = now;
      const whole = Math.floor(carry);
      if (whole > 0) {
        carry -= whole;
        this.go(this.seq + whole);
        if (this.seq >= this.n - 1) { this.stop(); return; }
      }
      this._raf = requestAnimationFrame(tick);
    };
    this._raf = requestAnimationFrame(tick);
  }

  stop() {
    const was = this.playing;
    this.playing = false;
    cancelAnimationFrame(this._raf);
    this._setPlayButton();
    if (was) this._renderSoon(); // the population / line search of where it stopped
  }

  _setPlayButton() {
    const b = this.$("#replay-play");
    b.innerHTML = this.playing ? "❚❚ <span class=\"visually-hidden\">Pause</span>" : "▶ <span class=\"visually-hidden\">Play</span>";
    b.setAttribute("aria-pressed", this.playing ? "true" : "false");
    b.title = this.playing ? "Pause (Space)" : "Play (Space)";
  }

  _key(e) {
    if (!this.active || e.altKey || e.ctrlKey || e.metaKey || e.defaultPrevented) return;
    const t = e.target;
    const slider = t && t.id === "replay-slider";
    if (!slider && t && t.closest && t.closest("input, select, textarea, button, a, [contenteditable]")) return;
    if (slider && e.key !== " ") return; // the range input does arrows/Home/End itself
    const step = e.shiftKey ? 10 : 1;
    const keys = {
      ArrowLeft: () => this.go(this.seq - step), ArrowRight: () => this.go(this.seq + step),
      Home: () => this.go(0), End: () => this.go(this.n - 1), " ": () => this.toggle(),
    };
    if (!keys[e.key]) return;
    e.preventDefault();
    if (e.key !== " ") this.stop();
    keys[e.key]();
  }

  _renderSoon() {
    if (this._soon) return;
    this._soon = true;
    requestAnimationFrame(() => { this._soon = false; this._render(); });
  }

  /** The table's pages arrived: redraw what depends on them. */
  stepsArrived() { if (this.active) this._renderSoon(); }

  // -- drawing the current step --
  _render() {
    if (!this.active) return;
    const v = this.view, seq = this.seq, n = this.n;
    const pos = stepOf(seq, n);
    this.$("#replay-pos").textContent = pos;
    this.$("#replay-slider").setAttribute("aria-valuetext", pos);
    v.root.dataset.cursor = String(seq);
    v.cp.setMarker(seq);
    v.table.setCursor(seq);
    const light = v.store.get(seq);
    if (light) markOnce("optsite:latest");
    if (this.pairs) {
      const end = upperBound(this.pairSeq, seq);
      let pts = this.pairs.slice(0, end);
      // The series may be thinned: end the path exactly at the current step.
      const here = v.map.pair(light);
      if (here && this.pairSeq[end - 1] !== seq) pts = [...pts, here];
      v.map.setPath(pts);
      if (!here && pts.length) v.map.ct.setMarker(pts[pts.length - 1][0], pts[pts.length - 1][1]);
    }
    if (light) {
      const p = v.map.pair(light);
      if (p) v.map.ct.setMarker(p[0], p[1]);
      v.latest = light;
      v.renderProgress();
    }
    this._full(seq);
  }

  /** The current step with its population / line search (throttled while playing). */
  _full(seq) {
    const v = this.view, now = performance.now();
    if (this.playing && now - this._lastFull < FULL_WHILE_PLAYING_MS) return;
    this._lastFull = now;
    const gen = v.generation;
    v.store.full(seq).then((step) => {
      if (v.generation !== gen || !this.active || this.seq !== seq || !step) return;
      this.currentStep = step;
      v.map.showStep(step);
      if (v.map.dim > 2 && !this.playing) v.loadGrid({ at: step.x, points: this.pairs || [], current: true });
    }, () => { /* the store reports a deleted run; other failures leave the overlays as they are */ });
  }
}

function upperBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (xs[m] <= x) lo = m + 1; else hi = m; }
  return lo;
}
