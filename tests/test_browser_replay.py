"""The run page in a real Chromium: replaying finished runs (small and very large), and "Compare with"."""

import json
import math
import re
import time

from selenium.webdriver.common.keys import Keys

from runs import services
from runs.models import Run, Step
from tests.browser import BrowserTestCase
from tests.polling import wait_until
from tests.test_browser_live import PageShots

STATE = """
const gd = id => document.getElementById(id);
const trace = (id, name) => (gd(id).data || []).find(t => t.name === name) || (gd(id).drawnPoints || {})[name];
const cur = document.querySelector('#steps-body tr.current');
const shapes = gd('plot-convergence').layout.shapes || [];
return {
  pos: document.getElementById('replay-pos').textContent,
  slider: Number(document.getElementById('replay-slider').value),
  max: Number(document.getElementById('replay-slider').max),
  row: cur ? Number(cur.dataset.seq) : null,
  rows: document.querySelectorAll('#steps-body tr').length,
  marker: shapes.length ? shapes[0].x0 : null,
  convergence: (gd('plot-convergence').data[0].x || []).length,
  path: trace('plot-contour', 'best point') ? trace('plot-contour', 'best point').x.length : 0,
  population: trace('plot-contour', 'population') ? trace('plot-contour', 'population').x.length : 0,
  lineSearch: trace('plot-contour', 'line search') ? trace('plot-contour', 'line search').x.length : 0,
  playing: document.getElementById('replay-play').getAttribute('aria-pressed') === 'true',
};
"""


def finished_run(owner, method="de", **options):
    spec = {"method": method, "problem": "rosenbrock", "dim": 2, "bounds": [[-5, 10], [-5, 10]],
            "options": options}
    if method == "lbfgsb":
        spec["x0"] = [-1.25, -1.25]
    run = services.launch(owner=owner, data=spec)
    assert services.wait_for_run(run_id=run["id"], timeout=60)
    return Run.objects.get(pk=run["id"])


class ReplayTests(PageShots, BrowserTestCase):
    def state(self):
        return self.browser.execute_script(STATE)

    def key(self, k):
        self.find("body").send_keys(k)

    def wait_state(self, timeout: float = 20.0, **expect):
        """Until the page shows `expect` (some of STATE's keys); else fail naming what it showed.

        The slider, the table, the convergence plot's marker and the map each redraw on their own
        frame (the plots through their pacers), so a value read once may be one redraw behind.
        """
        seen = {}

        def shown():
            nonlocal seen
            s = self.state()
            seen = {k: s[k] for k in expect}
            return seen == expect

        if not wait_until(shown, timeout):
            self.assertEqual(seen, expect)

    def wait_seq(self, seq):
        """The slider, the highlighted row and the convergence plot's marker all at `seq`."""
        self.wait_state(slider=seq, row=seq, marker=seq)

    def open(self, run):
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait_visible("#replay")
        self.wait_for("#steps-body tr.current")

    def test_replay_a_finished_de_run_with_slider_keys_and_play(self):
        alice = self.create_user("alice")
        run = finished_run(alice, "de", maxiter=40, tol=0, seed=1)
        last = run.n_steps - 1
        self.log_in("alice")
        self.open(run)
        self.wait().until(lambda d: self.state()["convergence"] == run.n_steps)  # drawn a frame or more later
        s = self.state()
        self.assertEqual((s["max"], s["slider"], s["row"]), (last, last, last))
        # Steps are counted 1 … n everywhere: the last of 42 steps is "step 42 of 42".
        self.assertEqual(s["pos"], f"step {run.n_steps:,} of {run.n_steps:,}")
        self.wait_visible("#run-result")
        self.assertIn("polish", self.find("#run-result").text.lower())
        self.full_screenshot("replay-de-end")

        # Home: the initial population, the marker at 0, the first row highlighted.
        self.key(Keys.HOME)
        self.wait_seq(0)
        self.wait().until(lambda d: self.state()["population"] >= 20)
        self.wait_state(marker=0, path=1)
        # Arrows step; the path grows with the steps.
        for _ in range(3):
            self.key(Keys.ARROW_RIGHT)
        self.wait_seq(3)
        self.assertEqual(self.state()["marker"], 3)
        self.key(Keys.ARROW_LEFT)
        self.wait_seq(2)
        self.key(Keys.END)
        self.wait_seq(last)
        # The slider itself (keyboard on the range input).
        slider = self.find("#replay-slider")
        slider.send_keys(Keys.HOME)
        self.wait_seq(0)
        slider.send_keys(Keys.ARROW_RIGHT)
        self.wait_seq(1)
        # Space plays from where it is; Space again pauses.
        self.browser.execute_script("document.activeElement.blur()")
        self.key(" ")
        self.wait().until(lambda d: self.state()["slider"] >= 4)
        self.assertTrue(self.state()["playing"])
        self.key(" ")
        self.wait().until(lambda d: not self.state()["playing"])
        paused_at = self.state()["slider"]
        time.sleep(0.4)
        self.assertEqual(self.state()["slider"], paused_at)
        self.wait_seq(paused_at)
        self.screenshot("replay-de-middle")
        self.assertEqual(self.console_errors(), [])

    def test_replay_of_lbfgsb_shows_line_search_and_gradient(self):
        alice = self.create_user("alice")
        run = finished_run(alice, "lbfgsb")
        self.log_in("alice")
        self.open(run)
        self.key(Keys.HOME)
        self.wait_seq(0)
        for _ in range(6):
            self.key(Keys.ARROW_RIGHT)
        self.wait_seq(6)
        self.wait().until(lambda d: self.state()["lineSearch"] >= 1)
        self.assertIn("gradient", [th.text for th in self.find_all("#steps-head th")])
        self.assertIn("Converged", self.find("#run-result").text)
        self.screenshot("replay-lbfgsb")
        # A phone-sized window: everything stacks, nothing overflows sideways.
        self.browser.set_window_size(400, 900)
        self.wait().until(lambda d: d.execute_script("return document.documentElement.clientWidth") <= 400)
        too_wide = """
          const w = document.documentElement.clientWidth;
          return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1
            && !e.closest('.table-responsive')).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className);"""
        # Plotly follows the window after a short debounce.
        self.wait(5).until(lambda d: d.execute_script(too_wide) == [])
        self.full_screenshot("replay-narrow")
        self.assertEqual(self.console_errors(), [])

    def test_compare_with_lbfgsb_launches_it_and_opens_the_comparison(self):
        alice = self.create_user("alice")
        run = finished_run(alice, "de", maxiter=20, seed=1)
        self.log_in("alice")
        self.open(run)
        button = self.find("#btn-compare")
        self.assertEqual(button.text, "Compare with L-BFGS-B")
        self.assertIn("quarter of the way", self.find("#compare-note").text)
        button.click()
        self.wait().until(lambda d: "/runs/compare/" in d.current_url)
        ids = [int(i) for i in re.search(r"ids=([\d,]+)", self.browser.current_url).group(1).split(",")]
        self.assertEqual(ids[0], run.pk)
        other = Run.objects.get(pk=ids[1], owner=alice)
        self.assertEqual(other.method, "lbfgsb")
        self.assertEqual(other.spec["bounds"], run.spec["bounds"])
        self.assertEqual(other.spec["params"], run.spec["params"])
        self.assertEqual(other.spec["x0"], [-1.25, -1.25])

    def test_a_100000_step_run_replays_from_the_series_and_windows(self):
        alice = self.create_user("alice")
        n = 100_000
        run = Run.objects.create(
            owner=alice, method="lbfgsb", problem="rosenbrock", status="finished", n_steps=n,
            spec={"method": "lbfgsb", "problem": "rosenbrock", "params": {"a": 1.0, "b": 100.0}, "dim": 2,
                  "bounds": None, "x0": [-1.2, 1.0],
                  "options": {"maxiter": 100_000, "maxfun": 10**7, "jac": "analytic", "gtol": 1e-5}},
            result={"x": [1.0, 1.0], "fun": 1e-12, "nit": n - 1, "nfev": n, "njev": n, "success": True,
                    "status": 0, "message": "CONVERGENCE", "jac": [0.0, 0.0], "reason": "Synthetic run.",
                    "stopped": False},
        )
        steps = []
        for seq in range(n):
            t = seq / n
            x = [-1.2 + 2.2 * t, 1.0 + 0.3 * math.sin(40 * t)]
            fun = 24.2 * (1 - t) ** 3 + 1e-12
            data = {"seq": seq, "nit": seq, "x": x, "fun": fun, "nfev": seq + 1, "njev": seq + 1,
                    "jac": [0.1, -0.1], "elapsed": seq * 1e-4, "phase": "init" if seq == 0 else "iterate",
                    "extra": {"pg_norm": 0.1, "step_length": 1.0,
                              "line_search": {"x": [[x[0] + 0.05, x[1]]], "f": [fun]}}}
            steps.append(Step(run=run, seq=seq, nit=seq, phase=data["phase"], fun=fun, nfev=seq + 1,
                              njev=seq + 1, elapsed=data["elapsed"], data=json.dumps(data)))
        Step.objects.bulk_create(steps, batch_size=5000)
        self.log_in("alice")
        started = time.monotonic()
        self.open(run)
        self.wait().until(lambda d: self.state()["convergence"] > 0)
        loaded = time.monotonic() - started
        s = self.state()
        self.assertEqual(s["max"], n - 1)
        self.assertLessEqual(s["convergence"], 2000)  # downsampled, not 100,000 points
        self.assertLessEqual(s["rows"], 80)  # a window of rows, not the run
        self.assertLess(loaded, 15)
        # Jump around: the window and the line search follow.
        self.key(Keys.HOME)
        self.wait_seq(0)
        slider = self.find("#replay-slider")
        self.browser.execute_script(
            "arguments[0].value = 54321; arguments[0].dispatchEvent(new Event('input'))", slider)
        self.wait_seq(54321)
        self.wait().until(lambda d: self.state()["lineSearch"] == 1)
        # Play at the fastest speed for a moment: it moves and the page stays responsive.
        self.browser.execute_script("document.getElementById('replay-speed').value = '5000'")
        self.key(" ")
        time.sleep(1.0)
        self.key(" ")
        self.wait().until(lambda d: not self.state()["playing"])
        moved = self.state()["slider"] - 54321
        self.assertGreater(moved, 1000)
        self.wait_seq(self.state()["slider"])
        self.full_screenshot("replay-100k")
        self.assertEqual(self.console_errors(), [])

    def test_an_interrupted_run_resumes_from_the_page(self):
        from runs.optim import validate_spec

        alice = self.create_user("alice")
        spec = validate_spec({"method": "de", "problem": "rosenbrock", "bounds": [[-5, 10], [-5, 10]],
                              "options": {"maxiter": 30, "seed": 1}}).to_dict()
        run = Run.objects.create(owner=alice, method="de", problem="rosenbrock", spec=spec, status="interrupted")
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait_visible("#run-result")
        self.assertIn("Interrupted", self.find("#run-result").text)
        resume = self.find("#btn-resume")
        self.assertTrue(resume.is_enabled())
        self.assertFalse(self.find("#btn-pause").is_enabled())
        self.screenshot("run-interrupted")
        resume.click()
        self.wait_text("#run-status", "finished", 60)
        self.wait_for("#steps-body tr.current")
        run.refresh_from_db()
        self.assertEqual(run.status, "finished")
        self.assertEqual(self.state()["convergence"], run.n_steps)
        self.assertEqual(self.console_errors(), [])
