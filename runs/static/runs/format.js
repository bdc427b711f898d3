// One format per kind of quantity, site-wide (the same rules as runs/templatetags/history_tags.py):
//   counts (seq, nit, nfev, njev, steps)  12,345          fmtCount
//   objective values, gaps, norms         6 significant   fmtF      (1.23457e-7 when tiny or huge)
//   coordinates                           6 significant   fmtX
//   durations                             3 significant   fmtSeconds (4.2 ms, 3.5 s, 1 min 15 s)
// A missing value is "—"; nan is "NaN"; infinities are "∞" and "−∞"; minus signs are "−".

export const DASH = "—";

function special(v) {
  if (v === null || v === undefined || v === "") return DASH;
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  return null;
}

const minus = (s) => s.replace(/-/g, "−");

/** `digits` significant digits as Python's "g" format: exponent form below 1e-4 or from 10^digits. */
export function fmtSig(v, digits = 6) {
  const s = special(v);
  if (s !== null) return s;
  if (v === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(digits)))));
  let text;
  if (exp < -4 || exp >= digits) {
    text = v.toExponential(digits - 1).replace(/\.?0+e/, "e").replace("e+", "e");
  } else {
    text = String(Number(v.toPrecision(digits)));
  }
  return minus(text);
}

export const fmtF = (v) => fmtSig(v, 6);
export const fmtX = (v) => fmtSig(v, 6);

// One formatter for every count: toLocaleString builds a new one on each call (a live table formats thousands).
const COUNTS = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function fmtCount(v) {
  const s = special(v);
  if (s !== null) return s;
  return minus(COUNTS.format(Math.round(v)));
}

export function fmtVec(xs, max = 6) {
  if (!xs) return DASH;
  const shown = xs.slice(0, max).map(fmtX);
  return `[${shown.join(", ")}${xs.length > max ? `, … (${fmtCount(xs.length)})` : ""}]`;
}

export function fmtSeconds(seconds) {
  const s0 = special(seconds);
  if (s0 !== null) return s0;
  const s = seconds;
  if (s < 0) return DASH;
  if (s < 1) return `${fmtSig(s * 1000, 3)} ms`;
  if (s < 60) return `${fmtSig(s, 3)} s`;
  let m = Math.floor(Math.round(s) / 60);
  const sec = Math.round(s) - 60 * m;
  if (m < 60) return `${m} min ${sec} s`;
  const h = Math.floor(m / 60);
  m -= 60 * h;
  return `${h} h ${m} min`;
}
