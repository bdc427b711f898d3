"""Where a run is, in a real Chromium: queued with its place in line (run page and history), on
which worker, paused (holding no worker), interrupted by a dead worker and resumed by itself."""

import json
import os
import signal
import time

import websocket
from django.conf import settings
from selenium.webdriver.support.ui import Select

from runs.models import Run
from tests.browser import BrowserTestCase
from tests.test_browser_live import PageShots

# Long enough to watch and control (it cannot converge early), as in test_browser_live.
LONG_SPEC = {
    "method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
    "options": {"maxiter": 20000, "popsize": 40, "tol": 0, "strategy": "rand1bin", "seed": 3, "polish": False},
}
ACTIVE = ("queued", "running", "paused")

# What the page showed, in order: the status badge and the note beside it.
RECORD_STATES = """
window.__states = [];
const badge = document.getElementById("run-status"), where = document.getElementById("run-where");
const note = () => { const t = `${badge.textContent} | ${where.hidden ? "" : where.textContent.replace(/^, /, "")}`;
  if (window.__states[window.__states.length - 1] !== t) window.__states.push(t); };
note();
new MutationObserver(note).observe(badge, { childList: true, characterData: true, subtree: true });
new MutationObserver(note).observe(where, { childList: true, characterData: true, subtree: true, attributes: true });
"""


class QueueTests(PageShots, BrowserTestCase):
    # Two workers (the live server's own pool), so two long runs fill them; a higher per-user cap
    # than the default 4, so one user can queue behind them.
    SERVER_ENV = {"OPTSITE_WORKERS": "2", "OPTSITE_MAX_CONCURRENT_RUNS": "8"}

    @classmethod
    def setUpClass(cls):
        saved = {k: os.environ.get(k) for k in cls.SERVER_ENV}
        os.environ.update(cls.SERVER_ENV)  # read by the live server process as it starts
        try:
            super().setUpClass()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def setUp(self):
        super().setUp()
        self.create_user("alice")
        self.log_in("alice")
        self.addCleanup(self.stop_everything)

    # -- the live server, as another client of alice's would use it --------------------------
    def ws(self, path: str):
        cookie = self.browser.get_cookie(settings.SESSION_COOKIE_NAME)["value"]
        return websocket.create_connection(self.live_server_ws_url + path, origin=self.live_server_url,
                                           cookie=f"{settings.SESSION_COOKIE_NAME}={cookie}", timeout=30)

    def start_run(self, label: str, spec=None) -> int:
        conn = self.ws("/ws/runs/")
        try:
            conn.send(json.dumps({"type": "start", "spec": spec or LONG_SPEC, "label": label}))
            while True:
                msg = json.loads(conn.recv())
                if msg["type"] == "error":
                    raise AssertionError(msg)
                if msg["type"] == "started":
                    return msg["run"]["id"]
        finally:
            conn.close()

    def control(self, run_id: int, action: str):
        """Send a control from a socket of its own and wait until the server has taken it."""
        before = Run.objects.values_list("status", "control_requests").get(pk=run_id)
        conn = self.ws(f"/ws/runs/{run_id}/")
        try:
            conn.send(json.dumps({"type": action}))
            self.until(lambda: Run.objects.values_list("status", "control_requests").get(pk=run_id) != before)
        finally:
            conn.close()

    def until(self, check, timeout=60, what="the condition"):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def status(self, run_id: int) -> str:
        return Run.objects.values_list("status", flat=True).get(pk=run_id)

    def stop_everything(self):
        # The database goes after each test: the live server's workers must be done with its runs.
        going = Run.objects.filter(status__in=ACTIVE).exclude(control_requests__contains="stop")
        for run_id in going.values_list("pk", flat=True):
            try:
                self.control(run_id, "stop")
            except Exception:
                pass  # ended meanwhile
        self.until(lambda: not Run.objects.filter(status__in=ACTIVE).exists(), 120, "every run to end")

    # -- the page ---------------------------------------------------------------------------
    def where(self) -> str:
        return self.find("#run-where").text

    def wait_where(self, text, timeout=60):
        self.wait_text("#run-where", text, timeout)

    def enabled(self) -> dict:
        return {a: self.find(f"#btn-{a}").is_enabled() for a in ("pause", "resume", "stop")}

    def states(self) -> list[str]:
        return self.browser.execute_script("return window.__states || []")

    def newest_row(self) -> int:
        return int(self.browser.execute_script(
            "const r = document.querySelector('#steps-body tr[data-seq]'); return r ? Number(r.dataset.seq) : -1"))

    def rows(self) -> int:
        return self.browser.execute_script("return document.querySelectorAll('#steps-body tr:not(.empty)').length")

    def launch_long_run_from_the_form(self) -> int:
        self.browser.get(self.url("/runs/new/"))
        self.fill_long_de_run()
        self.find("#id_label").send_keys("from the form")
        self.find("#btn-launch").click()
        self.wait().until(lambda d: "/runs/new/" not in d.current_url)
        return int(self.browser.current_url.rstrip("/").rsplit("/", 1)[1])

    def history_row(self, run_id: int):
        return self.find(f"#run-{run_id}")

    # -- tests ------------------------------------------------------------------------------
    def test_a_run_beyond_the_workers_waits_in_line_and_starts_when_one_frees(self):
        first, second = self.start_run("busy 1"), self.start_run("busy 2")
        self.until(lambda: Run.objects.filter(status="running").count() == 2, what="both workers to be busy")
        ahead = self.start_run("first in line")
        # Launched from the form: the page says where it waits, and what can be done meanwhile.
        mine = self.launch_long_run_from_the_form()
        self.wait_status_text("queued")
        self.wait_where("2nd in line")
        self.assertEqual(self.enabled(), {"pause": True, "resume": False, "stop": True})
        self.assertEqual(self.find("#run-state").get_attribute("role"), "status")
        self.screenshot("queue-new-run-2nd-in-line")

        # The history says the same for every run: in line, or on which worker.
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.wait_visible("#live-indicator")
        self.assertIn("queued", self.history_row(ahead).find_element("css selector", ".status-badge").text)
        self.assertIn("next in line", self.history_row(ahead).text)
        self.assertIn("2nd in line", self.history_row(mine).text)
        worker = Run.objects.get(pk=first).worker
        self.assertTrue(worker)
        self.assertIn(f"on {worker}", self.history_row(first).text)
        self.screenshot("queue-history")
        # The status filter has the queued (and interrupted) runs.
        options = [o.get_attribute("value") for o in Select(self.find("#f-status")).options]
        self.assertIn("queued", options)
        self.assertIn("interrupted", options)
        Select(self.find("#f-status")).select_by_value("queued")
        self.wait().until(lambda d: "status=queued" in d.current_url)
        ids = [int(tr.get_attribute("data-run-id")) for tr in self.find_all("#history-table tbody tr")]
        self.assertEqual(sorted(ids), sorted([ahead, mine]))

        # On its own page: pause takes it out of the line, resume puts it back at the end.
        self.browser.get(self.url(f"/runs/{mine}/"))
        self.wait_where("2nd in line")
        self.phone()
        self.screenshot("queue-run-page-phone")
        self.browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.browser.execute_script(RECORD_STATES)
        self.find("#btn-pause").click()
        self.wait_status_text("paused")
        self.wait_where("holds no worker")
        self.assertEqual(self.enabled(), {"pause": False, "resume": True, "stop": True})
        self.assertEqual(self.browser.switch_to.active_element.get_attribute("id"), "btn-resume")
        self.screenshot("queue-paused-while-queued")
        self.find("#btn-resume").click()
        self.wait_status_text("queued")
        self.wait_where("2nd in line")

        # The run ahead leaves the line: the page follows its place without being told.
        self.control(ahead, "stop")
        self.wait_where("next in line", 30)
        # A worker frees up: the run starts on it, and the page says which.
        self.control(first, "stop")
        self.wait_status_text("running", 90)
        worker = Run.objects.get(pk=mine).worker
        self.wait_where(f"on {worker}")
        self.wait().until(lambda d: self.rows() >= 3)
        self.assertEqual(self.enabled(), {"pause": True, "resume": False, "stop": True})
        self.full_screenshot("queue-started-on-a-worker")
        seen = self.states()
        order = [s.split(" | ")[0] for s in seen]
        self.assertEqual(order[-1], "running")
        self.assertIn("queued | next in line", seen)
        self.assertEqual(self.status(second), "running")
        self.assertEqual(self.console_errors(), [])

    def test_pause_frees_the_worker_and_resume_queues_it_again(self):
        run_id = self.start_run("pause me")
        self.browser.get(self.url(f"/runs/{run_id}/"))
        self.wait_status_text("running")
        self.wait_where("on pool@")
        self.wait().until(lambda d: self.rows() >= 5)
        self.browser.execute_script(RECORD_STATES)
        self.find("#btn-pause").click()
        self.wait_status_text("paused")
        self.wait_where("holds no worker")
        self.assertIsNone(Run.objects.get(pk=run_id).worker)
        self.assertEqual(self.enabled(), {"pause": False, "resume": True, "stop": True})
        self.screenshot("queue-paused")
        self.find("#btn-resume").click()
        self.wait().until(lambda d: self.states()[-1].startswith("running | on pool@"))
        states = self.states()
        # Pressed, answered; pressed, then queued again and taken by a worker (often at once: the
        # page may never see it queued).
        self.assertIn("running | pausing…", states)
        paused = states.index("paused | holds no worker")
        self.assertIn("paused | resuming…", states[paused:])
        n = self.newest_row()
        self.wait().until(lambda d: self.newest_row() > n)  # steps flow again (the live table keeps the newest rows)
        self.screenshot("queue-resumed")
        self.assertEqual(self.console_errors(), [])

    def test_a_dead_worker_interrupts_the_run_and_the_page_follows_it_back(self):
        run_id = self.launch_long_run_from_the_form()  # the new-run page keeps the view
        self.wait_status_text("running")
        self.wait().until(lambda d: self.rows() >= 5)
        self.browser.execute_script(RECORD_STATES)
        holder = Run.objects.get(pk=run_id).lease_holder
        self.wait_where(f"on {holder}")
        os.kill(int(holder.rsplit(":", 1)[1]), signal.SIGKILL)
        self.until(lambda: (Run.objects.get(pk=run_id).lease_holder or holder) != holder
                   and self.status(run_id) == "running", 60, "the run to go on elsewhere")
        other = Run.objects.get(pk=run_id).lease_holder
        self.wait_where(f"on {other}", 60)
        self.wait_status_text("running")
        seen = self.states()
        # (Queued again and taken at once: the page may see it queued, or only running again.)
        self.assertIn("interrupted | the worker went away; resuming…", seen)
        self.assertEqual(seen[-1], f"running | on {other}")
        self.assertEqual(Run.objects.get(pk=run_id).interruptions, 1)
        # Live again: every stored step is back on the page and new ones arrive.
        n = self.newest_row()
        self.wait().until(lambda d: self.newest_row() > n)  # steps flow again (the live table keeps the newest rows)
        self.assertFalse(self.find("#btn-pause").get_property("disabled"))
        self.full_screenshot("queue-resumed-after-a-dead-worker")
        self.assertEqual(self.console_errors(), [])

    def wait_status_text(self, status, timeout=60):
        self.wait_text("#run-status", status, timeout)
