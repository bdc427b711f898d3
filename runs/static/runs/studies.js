// /studies/: the server renders the list; while any study on it has runs to go, its progress and
// status follow GET /api/studies/ every two seconds (cells updated in place), and stop once all have ended.
import { getJSON } from "./api.js";
import { fmtCount } from "./format.js";
import { STATUS_CLASS } from "./runtext.js";

const ENDED = ["finished", "stopped", "failed", "interrupted"];
const POLL_MS = 2000;
const table = document.getElementById("studies-table");

function update(list) {
  let active = false;
  for (const s of list) {
    const tr = document.getElementById(`study-${s.id}`);
    if (!tr) continue; // made elsewhere since this page was drawn: a reload shows it
    const ended = ENDED.reduce((n, k) => n + (s.counts[k] || 0), 0);
    const bar = tr.querySelector("progress"), text = tr.querySelector(".study-progress-cell .mono");
    bar.max = s.runs.length;
    bar.value = ended;
    text.textContent = `${fmtCount(ended)}/${fmtCount(s.runs.length)}`;
    const badge = tr.querySelector(".study-status");
    badge.textContent = s.status;
    badge.className = `badge study-status ${s.status === "ended" ? "text-bg-success" : STATUS_CLASS[s.status] || "text-bg-light"}`;
    if (s.status !== "ended") active = true;
  }
  return active;
}

async function poll() {
  let active = true;
  try { active = update(await getJSON("/api/studies/")); } catch { /* try again later */ }
  if (active) setTimeout(poll, document.hidden ? 4 * POLL_MS : POLL_MS);
}

if (table && table.querySelector("[data-status]:not([data-status=ended])")) setTimeout(poll, POLL_MS);
