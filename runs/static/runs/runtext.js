// Words and numbers the run view's parts share: statuses, where a run is, how steps are counted,
// method titles from the catalogue, bounds.
//
// Steps are counted one way everywhere on the page: a run of n stored steps has steps 1 … n, and
// the step with seq s is "step s + 1" (seq 0, the starting state, is step 1). The readout, the
// table's first column, its notes and the progress line all use stepNo / fmtCount.
import { fmtCount, fmtX } from "./format.js";

export const ACTIVE = new Set(["queued", "running", "paused"]);

export const STATUS_CLASS = {
  queued: "text-bg-secondary", running: "text-bg-primary", paused: "text-bg-warning",
  finished: "text-bg-success", stopped: "text-bg-dark", failed: "text-bg-danger", interrupted: "text-bg-warning",
  deleted: "text-bg-secondary",
};

export const PENDING_NOTE = { stop: "stopping…", pause: "pausing…", resume: "resuming…" };

/** The number people see for the step with this seq. */
export const stepNo = (seq) => seq + 1;

/** "step 2,058 of 2,058" */
export function stepOf(seq, n) { return `step ${fmtCount(stepNo(seq))} of ${fmtCount(n)}`; }

export function plural(n, word) { return `${fmtCount(n)} ${word}${n === 1 ? "" : "s"}`; }

/** A method's short name for people ("DE"), from the method catalogue (GET /api/methods/). */
export function methodTitle(methods, name) {
  const m = methods && methods.get(name);
  return m ? m.short || m.title : name ? name.toUpperCase() : "";
}

export function waitingText(status) {
  return status === "queued" ? "Queued: the first step comes as soon as a worker takes the run."
    : status === "paused" ? "Paused before its first step." : "Waiting for the first step…";
}

function ordinal(n) {
  const suffix = n % 100 >= 10 && n % 100 <= 20 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${fmtCount(n)}${suffix}`;
}

/** Where the run is, after its status word (history_tags.status_note says the same server-side). */
export function statusNote(run, { resuming = false } = {}) {
  const s = run.status, pos = run.queue_position;
  if (run.stopping && ACTIVE.has(s)) return "stopping…";
  if (run.problem === "external") return externalNote(s);
  switch (s) {
    case "queued": return !pos ? "waiting for a worker" : pos === 1 ? "next in line" : `${ordinal(pos)} in line`;
    case "running": return run.worker ? `on ${run.worker}` : "";
    case "paused": return "holds no worker";
    case "interrupted": return resuming ? "the worker went away; resuming…" : "the worker went away";
    default: return "";
  }
}

/** An external run is computed by its owner's Python process (history_tags.EXTERNAL_NOTES). */
function externalNote(status) {
  switch (status) {
    case "running": return "in its owner's Python process";
    case "paused": return "its Python process waits";
    case "interrupted": return "its Python process is not connected; the steps come when it is";
    default: return "";
  }
}

export function boundsText(bounds) {
  if (!bounds || !bounds.length) return "none";
  const one = (b) => `[${b[0] === null ? "−∞" : fmtX(b[0])}, ${b[1] === null ? "∞" : fmtX(b[1])}]`;
  const same = bounds.every((b) => b[0] === bounds[0][0] && b[1] === bounds[0][1]);
  if (same) return bounds.length > 1 ? `${one(bounds[0])}ⁿ` : one(bounds[0]);
  const shown = bounds.slice(0, 3).map(one).join(" × ");
  return bounds.length > 3 ? `${shown} × …` : shown;
}

/** The problem's default bounds for any dimension (the catalogue lists them for its default dim). */
export function defaultBounds(problem, dim) {
  const d = (problem && problem.default_bounds) || [[-5, 5]];
  return Array.from({ length: dim }, (_, i) => [...(d[i] || d[d.length - 1])]);
}

/** How a run takes its gradient, as its subtitle says it ("jac analytic"; null: scipy's default). */
export function jacText(o) {
  if (o.jac === null) return `forward differences, step eps ${fmtX(o.eps)}`;
  const rel = o.finite_diff_rel_step !== null && o.finite_diff_rel_step !== undefined && o.jac !== "analytic"
    ? ` (relative step ${fmtX(o.finite_diff_rel_step)})` : "";
  return `jac ${o.jac}${rel}`;
}
