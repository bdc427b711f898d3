// /runs/<id>/: one run. While it is active: its newest stored step and the downsampled series at
// once, then live over the watch socket from there. Once it has ended: replay from the HTTP API.
// An interrupted run stays watched, so the page comes back to life when it is queued again.
import { readJSONScript, requestOnce } from "./api.js";
import { ACTIVE, RunView, RunWatch } from "./runview.js";

const run = readJSONScript("run-data");
const problem = readJSONScript("problem-data");
const methods = readJSONScript("methods-data", []);
const known = readJSONScript("known-minimum");
const config = readJSONScript("page-config", {});
const view = new RunView(document.getElementById("run-view"), {
  problems: problem ? [problem] : [], methods, tableRows: config.table_rows || 50,
});
const watch = new RunWatch(view, { knownMinimum: known });

view.onControl = (action) => watch.control(action);

view.onCompare = async (spec) => {
  const reply = await requestOnce("/ws/runs/", { type: "start", spec }, ["started"]);
  if (reply.type === "error") throw new Error(reply.message);
  location.href = `/runs/compare/?ids=${view.run.id},${reply.run.id}`;
};

view.showRun(run, { mode: ACTIVE.has(run.status) ? "live" : "replay", knownMinimum: known });
watch.follow(run);
