// History page (/runs/): enhances the server-rendered table.
// - selection for Compare, remembered across pages and filters (sessionStorage)
// - inline relabel (Enter saves, Escape cancels), delete with a confirmation dialog
// - live rows: active runs are re-rendered by the server every few seconds (/runs/rows/?ids=), and
//   so, for a little while, is one that lost its worker and is about to be queued again
// - the run count (and the empty state) follow deletes, made here or noticed while polling
// Everything here has a no-JavaScript fallback: filters/sort/pages are links and GET forms, the
// compare form submits ids=3&ids=4, delete links open a confirmation page.

import { fmtCount } from "./format.js";

const root = document.getElementById("history");
const POLL_MS = 2000;
const RESUME_WAIT_MS = 15000;
const STORE = "optsite.compare.selection";
const MAX = Number(root?.dataset.compareMax || 4);
const csrf = () => document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

// -- small helpers ------------------------------------------------------------------------------
function toast(text, kind = "success") {
  const el = document.getElementById("history-toast");
  if (!el || !window.bootstrap) return;
  el.className = `toast align-items-center border-0 text-bg-${kind}`;
  document.getElementById("history-toast-body").textContent = text;
  window.bootstrap.Toast.getOrCreateInstance(el, { delay: 4000 }).show();
}

function localTimes(scope = document) {
  // Server renders UTC; show the reader's local time, keep UTC in the tooltip.
  for (const t of scope.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    const pad = (n) => String(n).padStart(2, "0");
    t.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
}

async function post(url, data) {
  const body = new URLSearchParams(data);
  const resp = await fetch(url, {
    method: "POST", body, credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrf() },
  });
  let json = null;
  try { json = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) throw new Error((json && (json.error || json.message)) || `The server answered ${resp.status}.`);
  return json;
}

// -- selection for compare ----------------------------------------------------------------------
function loadSelection() {
  try { return JSON.parse(sessionStorage.getItem(STORE)) || []; } catch { return []; }
}
function saveSelection(sel) { sessionStorage.setItem(STORE, JSON.stringify(sel)); }
let selection = loadSelection();

function rowLabel(tr) {
  const label = tr.querySelector(".run-label")?.textContent.trim();
  return label && label !== "no label" ? label : "";
}

function renderSelection() {
  const text = document.getElementById("selection-text");
  const chips = document.getElementById("selection-chips");
  const btn = document.getElementById("compare-btn");
  const clear = document.getElementById("selection-clear");
  if (!text) return;
  for (const cb of document.querySelectorAll(".run-select")) {
    cb.checked = selection.some((s) => String(s.id) === cb.value);
    cb.closest("tr")?.classList.toggle("table-active", cb.checked);
  }
  chips.replaceChildren(...selection.map((s) => {
    const chip = document.createElement("span");
    chip.className = "badge rounded-pill text-bg-light border d-inline-flex align-items-center gap-1 selection-chip";
    chip.textContent = `#${s.id}${s.label ? " " + s.label : ""}`;
    const x = document.createElement("button");
    x.type = "button";
    x.className = "btn-close btn-close-sm";
    x.style.fontSize = ".55rem";
    x.setAttribute("aria-label", `Remove run ${s.id} from the selection`);
    x.addEventListener("click", () => { selection = selection.filter((t) => t.id !== s.id); saveSelection(selection); renderSelection(); });
    chip.append(x);
    return chip;
  }));
  const n = selection.length;
  clear.classList.toggle("d-none", n === 0);
  btn.disabled = n < 2 || n > MAX;
  btn.textContent = n >= 2 && n <= MAX ? `Compare ${n} runs` : "Compare selected";
  text.classList.toggle("text-danger", n > MAX);
  if (n === 0) text.textContent = `Select two to ${MAX === 4 ? "four" : MAX} runs to compare them side by side.`;
  else if (n === 1) text.textContent = "1 run selected — pick at least one more.";
  else if (n > MAX) text.textContent = `${n} runs selected — compare takes at most ${MAX}; remove ${n - MAX}.`;
  else text.textContent = `${n} runs selected:`;
}

function onSelect(cb) {
  const id = Number(cb.value);
  if (cb.checked) {
    if (!selection.some((s) => s.id === id)) selection.push({ id, label: rowLabel(cb.closest("tr")) });
  } else {
    selection = selection.filter((s) => s.id !== id);
  }
  saveSelection(selection);
  renderSelection();
}

function initCompare() {
  const form = document.getElementById("compare-form");
  if (!form) return;
  document.addEventListener("change", (ev) => {
    if (ev.target.matches(".run-select")) onSelect(ev.target);
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (selection.length < 2 || selection.length > MAX) return;
    location.href = `/runs/compare/?ids=${selection.map((s) => s.id).join(",")}`;
  });
  document.getElementById("selection-clear").addEventListener("click", () => {
    selection = []; saveSelection(selection); renderSelection();
  });
  renderSelection();
}

// -- relabel ------------------------------------------------------------------------------------
function startRelabel(btn) {
  const cell = btn.closest(".run-label-cell");
  if (cell.querySelector("form")) return;
  const tr = cell.closest("tr");
  const old = cell.innerHTML;
  const form = document.createElement("form");
  form.className = "relabel-form d-flex gap-1 align-items-start";
  form.innerHTML = `
    <div class="flex-grow-1"><input class="form-control form-control-sm" name="label" maxlength="200"
      aria-label="New label for run ${tr.dataset.runId}" placeholder="Label (empty to remove)">
      <div class="invalid-feedback"></div></div>
    <button class="btn btn-sm btn-primary" type="submit">Save</button>
    <button class="btn btn-sm btn-outline-secondary" type="button" data-cancel>Cancel</button>`;
  const input = form.querySelector("input");
  input.value = btn.dataset.label || "";
  cell.replaceChildren(form);
  tr.dataset.editing = "1";
  input.focus();
  input.select();
  const cancel = () => { cell.innerHTML = old; delete tr.dataset.editing; cell.querySelector(".relabel-btn")?.focus(); };
  form.querySelector("[data-cancel]").addEventListener("click", cancel);
  input.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); cancel(); } });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const saveBtn = form.querySelector("button[type=submit]");
    saveBtn.disabled = true;
    try {
      const out = await post(btn.dataset.url, { label: input.value });
      cell.innerHTML = old;
      delete tr.dataset.editing;
      const labelEl = cell.querySelector(".run-label");
      const a = document.createElement("a");
      a.href = `/runs/${tr.dataset.runId}/`;
      if (out.label) a.textContent = out.label;
      else { a.textContent = "no label"; a.className = "text-body-secondary fst-italic"; }
      labelEl.replaceChildren(a);
      const b = cell.querySelector(".relabel-btn");
      b.dataset.label = out.label;
      b.focus();
      const sel = selection.find((s) => s.id === Number(tr.dataset.runId));
      if (sel) { sel.label = out.label; saveSelection(selection); renderSelection(); }
      toast(out.label ? `Run ${out.id} is now “${out.label}”.` : `Run ${out.id}'s label removed.`);
    } catch (err) {
      input.classList.add("is-invalid");
      form.querySelector(".invalid-feedback").textContent = err.message;
      saveBtn.disabled = false;
      input.focus();
    }
  });
}

// -- delete -------------------------------------------------------------------------------------
let pendingDelete = null;

const plural = (n) => (n === 1 ? "" : "s");

function countText(total, matching, filtering) {
  // The same words as templates/runs/history.html.
  return filtering ? `${fmtCount(matching)} of ${fmtCount(total)} run${plural(total)} match` : `${fmtCount(total)} run${plural(total)}`;
}

/** A run left the listing (deleted here or elsewhere): drop its row, recount, show an empty state if it was the last. */
function removeRow(id) {
  const tr = document.getElementById(`run-${id}`);
  if (!tr) return;
  tr.remove();
  selection = selection.filter((s) => String(s.id) !== String(id));
  saveSelection(selection);
  renderSelection();
  const count = document.getElementById("history-count");
  const total = Math.max(0, Number(count.dataset.total) - 1);
  const matching = Math.max(0, Number(count.dataset.matching) - 1);
  count.dataset.total = String(total);
  count.dataset.matching = String(matching);
  count.textContent = countText(total, matching, !!count.dataset.filtering);
  const range = document.getElementById("page-range");
  if (range) {
    const start = Number(range.dataset.start), end = Math.max(start, Number(range.dataset.end) - 1);
    range.dataset.end = String(end);
    range.textContent = `Runs ${fmtCount(start)}–${fmtCount(end)} of ${fmtCount(matching)}`;
  }
  if (document.querySelector("#history-table tbody tr")) return;
  if (total === 0) {
    document.getElementById("history-listing")?.remove();
    document.getElementById("empty-history").hidden = false;
  } else if (matching === 0) {
    document.getElementById("history-card")?.remove();
    document.getElementById("history-pages")?.remove();
    const empty = document.getElementById("empty-filtered");
    empty.querySelector(".empty-total").textContent = `${fmtCount(total)} run${plural(total)}`;
    empty.hidden = false;
  } else {
    location.reload(); // this page is empty but others are not: the server shows the nearest one
  }
}

function askDelete(link) {
  const modalEl = document.getElementById("delete-modal");
  if (!window.bootstrap || !modalEl) return false;
  const id = link.dataset.runId;
  const tr = document.getElementById(`run-${id}`);
  const steps = Number(tr?.dataset.steps || link.dataset.steps || 0);
  const label = tr ? rowLabel(tr) : "";
  document.getElementById("delete-title").textContent = `Delete run ${id}${label ? " “" + label + "”" : ""}?`;
  document.getElementById("delete-text").textContent =
    `Its ${fmtCount(steps)} stored step${plural(steps)} will be deleted too. This cannot be undone.` +
    (tr?.dataset.active ? " The run is still active: it will be stopped first." : "");
  document.getElementById("delete-error").textContent = "";
  const form = document.getElementById("delete-form");
  form.action = link.dataset.url;
  document.getElementById("delete-confirm").disabled = false;
  pendingDelete = { id, link };
  window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
  return true;
}

function initDelete() {
  const form = document.getElementById("delete-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!pendingDelete) return;
    const btn = document.getElementById("delete-confirm");
    btn.disabled = true;
    btn.innerHTML = '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Deleting…';
    try {
      const out = await post(form.action, { next: location.pathname + location.search });
      window.bootstrap.Modal.getInstance(document.getElementById("delete-modal")).hide();
      removeRow(pendingDelete.id);
      toast(out.message);
    } catch (err) {
      document.getElementById("delete-error").textContent = err.message;
      btn.disabled = false;
    } finally {
      btn.textContent = "Delete";
    }
  });
}

// -- live rows ----------------------------------------------------------------------------------
let pollTimer = null;
const resumeWait = new Map(); // run id -> until when an interrupted run that resumes by itself is polled

function activeIds() {
  const ids = new Set([...document.querySelectorAll("#history-table tbody tr[data-active]")].map((tr) => tr.dataset.runId));
  const now = Date.now();
  for (const [id, until] of resumeWait) {
    if (until < now || !document.getElementById(`run-${id}`)) resumeWait.delete(id);
    else ids.add(id);
  }
  return [...ids];
}

async function poll() {
  pollTimer = null;
  const ids = activeIds();
  const indicator = document.getElementById("live-indicator");
  indicator?.classList.toggle("d-none", ids.length === 0);
  if (!ids.length) return;
  if (document.hidden) { pollTimer = setTimeout(poll, POLL_MS); return; }
  try {
    const next = encodeURIComponent(root.dataset.next || "/runs/");
    const resp = await fetch(`${root.dataset.rowsUrl}?ids=${ids.join(",")}&next=${next}`, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    if (resp.ok) {
      const { rows } = await resp.json();
      for (const id of ids) {
        const tr = document.getElementById(`run-${id}`);
        const fresh = rows[id];
        if (!tr) continue;
        if (!fresh) { removeRow(id); continue; }  // deleted elsewhere
        if (tr.dataset.editing || tr.querySelector(".dropdown-menu.show")) continue;  // don't yank what the user is using
        const tpl = document.createElement("template");
        tpl.innerHTML = fresh.html.trim();
        const row = tpl.content.firstElementChild;
        const ended = tr.dataset.active && !fresh.active;
        tr.replaceWith(row);
        localTimes(row);
        if (fresh.active || !fresh.resuming) resumeWait.delete(id);
        if (ended && fresh.resuming) {
          resumeWait.set(id, Date.now() + RESUME_WAIT_MS);
          toast(`Run ${id} lost its worker; it goes on by itself in a moment.`, "warning");
        } else if (ended) {
          row.classList.add("row-flash");
          toast(`Run ${id} is ${fresh.status}.`, fresh.status === "failed" ? "danger" : "success");
        }
      }
      renderSelection();
    }
  } catch { /* offline for a moment: try again next tick */ }
  pollTimer = setTimeout(poll, POLL_MS);
}

// -- wiring -------------------------------------------------------------------------------------
if (root) {
  localTimes();
  initCompare();
  initDelete();
  document.addEventListener("click", (ev) => {
    const rb = ev.target.closest(".relabel-btn");
    if (rb) { ev.preventDefault(); startRelabel(rb); return; }
    const dl = ev.target.closest(".delete-link");
    if (dl && askDelete(dl)) ev.preventDefault();
  });
  // Mark "Apply" when a filter changed but is not applied yet.
  const filterForm = document.getElementById("filter-form");
  filterForm?.addEventListener("input", () => {
    const apply = document.getElementById("filter-apply");
    apply.classList.replace("btn-secondary", "btn-primary");
    apply.textContent = "Apply filters";
  });
  filterForm?.addEventListener("change", (ev) => {
    // Selects apply at once (a click or Enter chooses); typing in the search box waits for Enter.
    if (ev.target.tagName === "SELECT") filterForm.requestSubmit();
  });
  document.getElementById("live-indicator")?.classList.toggle("d-none", activeIds().length === 0);
  if (activeIds().length) pollTimer = setTimeout(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !pollTimer) poll(); });
  root.dataset.ready = "1";
}
