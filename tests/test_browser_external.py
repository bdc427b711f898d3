"""An external run in a real Chromium: a function of the test process's own, stepped by the Python
client (DE) and streamed to the live server, shows live on the run page under its own title (no map: the
server has no f), and the page's Pause, Resume and Stop reach the client's process between steps."""

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
from scipy.optimize import differential_evolution

from runs import tokens
from runs.models import Run, Step
from tests.browser import BrowserTestCase
from tests.polling import wait_until
from tests.test_browser_live import PageShots

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
from optsite_client import Client  # noqa: E402

PAGE = """
const v = document.getElementById('run-view');
const rows = [...document.querySelectorAll('#steps-body tr[data-seq]')];
const gd = document.getElementById('plot-convergence');
return {
  phase: v.dataset.phase, latest: v.dataset.latestSeq === undefined ? null : Number(v.dataset.latestSeq),
  status: document.getElementById('run-status').textContent,
  where: document.getElementById('run-where').textContent.trim(),
  title: document.getElementById('run-title').textContent,
  rows: rows.length, convergence: ((gd.data || [{}])[0].x || []).length,
  pause: !document.getElementById('btn-pause').disabled, resume: !document.getElementById('btn-resume').disabled,
  stop: !document.getElementById('btn-stop').disabled,
  map: document.getElementById('plot-contour').textContent,
};
"""


SLOW = {"on": True}


def bowl(x):
    """A tilted bowl that takes a moment per evaluation (while SLOW is on), so that the run lasts
    until it is stopped; scipy's reference run takes it at full speed."""
    if SLOW["on"]:
        time.sleep(0.002)
    return float((x[0] - 0.7) ** 2 + 3 * (x[1] + 0.2) ** 2 + 0.1 * np.sin(5 * x[0]) * x[1])


BOUNDS = [(-2, 2), (-2, 2)]
DE = dict(seed=5, maxiter=20000, tol=0, popsize=10)


class ExternalRunPageTests(PageShots, BrowserTestCase):
    def test_an_external_run_is_live_on_its_page_and_obeys_pause_resume_and_stop_from_there(self):
        user = self.create_user("alice")
        self.log_in("alice")
        _, token = tokens.issue(user, "notebook")
        client = Client(self.live_server_url, token)
        outcome = {}

        def optimize():  # the user's own process: here a thread of the test process
            try:
                outcome["result"] = client.differential_evolution(
                    bowl, BOUNDS, title="a slow bowl of mine", label="from my notebook", **DE)
            except BaseException as exc:  # reported by the test, not lost in the thread
                outcome["error"] = exc
        thread = threading.Thread(target=optimize, daemon=True)
        thread.start()
        assert wait_until(lambda: Run.objects.filter(owner=user, problem="external", n_steps__gte=20).exists(),
                          timeout=60), outcome
        run = Run.objects.get(owner=user, problem="external")
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        page = lambda: self.browser.execute_script(PAGE)  # noqa: E731
        self.wait(60).until(lambda d: (p := page())["latest"] is not None and p["latest"] > 20 and p["pause"])
        p = page()
        self.assertEqual(p["phase"], "live")
        self.assertIn("a slow bowl of mine", p["title"])
        self.assertIn("Python process", p["where"])
        self.assertIn("No map", p["map"])
        self.wait().until(lambda d: page()["convergence"] > 10)
        self.screenshot("external-live")

        # Pause: the client's process waits between two steps; no step comes while it is paused.
        self.find("#btn-pause").click()
        self.wait(30).until(lambda d: page()["status"] == "paused")
        held = Run.objects.get(pk=run.pk).n_steps
        time.sleep(1.0)
        self.assertEqual(Run.objects.get(pk=run.pk).n_steps, held)
        self.assertTrue(thread.is_alive())
        self.assertIn("waits", page()["where"])

        # Resume: it goes on from where it was.
        self.find("#btn-resume").click()
        self.wait(30).until(lambda d: page()["status"] == "running")
        assert wait_until(lambda: Run.objects.get(pk=run.pk).n_steps > held + 10, timeout=30)

        # Stop: the client's minimize returns scipy's result of a stop at that step.
        self.find("#btn-stop").click()
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", outcome, outcome.get("error"))
        result = outcome["result"]
        self.wait(30).until(lambda d: page()["status"] == "stopped")
        run.refresh_from_db()
        self.assertEqual(run.status, Run.Status.STOPPED)
        self.assertEqual(result.run_id, run.pk)
        self.assertEqual(run.result["x"], list(result.x))
        self.assertEqual(run.result["nit"], result.nit)
        # The stored steps are scipy's own generations on the same function, stopped at that one
        # (scipy's callback stop, then its polish).
        seen = []

        def callback(intermediate_result):
            seen.append(np.copy(intermediate_result.x))
            return len(seen) >= result.nit
        SLOW["on"] = False
        ref = differential_evolution(bowl, BOUNDS, callback=callback, **DE)
        stored = [json.loads(t) for t in Step.objects.filter(run=run).order_by("seq").values_list("data", flat=True)]
        self.assertEqual([s["seq"] for s in stored], list(range(run.n_steps)))
        self.assertEqual([s["x"] for s in stored if s["phase"] == "iterate"], [list(x) for x in seen])
        self.assertEqual(list(ref.x), list(result.x))
        self.assertEqual((ref.nit, ref.nfev), (result.nit, result.nfev))
        self.screenshot("external-stopped")
        # In the history: under its own title, marked external, with no "Clone" (the server has no f).
        self.browser.get(self.url("/runs/"))
        row = self.wait_for(f"#run-{run.pk}")
        self.assertIn("a slow bowl of mine", row.find_element("css selector", ".problem-cell").text)
        self.assertEqual(row.find_element("css selector", ".external-badge").get_attribute("textContent"), "external")
        self.assertFalse(row.find_elements("css selector", f"a[href='/runs/{run.pk}/clone/']"))
        self.assertEqual([m for m in self.console_errors() if "Failed to load resource" not in m], [])
