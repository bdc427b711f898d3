// /runs/<id>/: one run. Live over the watch socket while it is active; replay from the HTTP API
// once it has ended (a finished run's steps never go through the socket).
import { readJSONScript, requestOnce, RunSocket } from "./api.js";
import { RunView } from "./runview.js";

const run = readJSONScript("run-data");
const problem = readJSONScript("problem-data");
const known = readJSONScript("known-minimum");
const config = readJSONScript("page-config", {});
const view = new RunView(document.getElementById("run-view"), {
  problems: problem ? [problem] : [], tableRows: config.table_rows || 200,
});
let sock = null;

let resuming = false; // an interrupted run was asked to resume: its old "finished" is stale

function watch({ subscribeOnOpen = true } = {}) {
  sock = new RunSocket(`/ws/runs/${run.id}/`, {
    subscribeOnOpen, onMessage, onState: (s) => view.setConnection(s),
  });
}

function onMessage(msg) {
  switch (msg.type) {
    case "run":
    case "status":
      if (resuming && msg.run.status === "interrupted") break;
      resuming = false;
      view.setRun(msg.run);
      break;
    case "steps":
      view.addSteps(msg.steps);
      break;
    case "finished":
      if (resuming && msg.run.status === "interrupted") break;
      sock.close();
      sock = null;
      view.setConnection("closed");
      view.ended(msg.run);
      break;
    case "error":
      view.showAlert(msg.message || "The server refused that.");
      view.setRun({}); // re-enable the buttons that still apply
      break;
    default:
  }
}

view.onControl = (action) => {
  if (!sock) {
    if (action !== "resume") return;
    // An interrupted run: go live from scratch. "resume" goes first, then "subscribe" asks for the
    // stored steps and everything after them.
    view.showRun({ ...view.run, status: "queued" }, { mode: "live", knownMinimum: known });
    resuming = true;
    watch({ subscribeOnOpen: false });
    sock.send({ type: "resume" });
    sock.send({ type: "subscribe", after: -1 });
    return;
  }
  sock.send({ type: action });
};

view.onCompare = async (spec) => {
  const reply = await requestOnce("/ws/runs/", { type: "start", spec }, ["started"]);
  if (reply.type === "error") throw new Error(reply.message);
  location.href = `/runs/compare/?ids=${view.run.id},${reply.run.id}`;
};

const live = ["queued", "running", "paused"].includes(run.status);
view.showRun(run, { mode: live ? "live" : "replay", knownMinimum: known });
if (live) watch();
