"""The run page's defects, each in a real Chromium: a live run opened at its latest state, a run
deleted in another tab, the windowed step table, 1-D problems, "Compare with" reusing its
counterpart, Stop on an interrupted run, and the page at 390 px."""

import json
import re
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from runs import services, stored_steps
from runs.models import Run, Step
from runs.optim import method_catalogue
from tests.browser import BrowserTestCase
from tests.polling import wait_until
from tests.runs_factory import real_run, synthetic_run
from tests.test_browser_live import PageShots

METHOD_TITLES = {m["name"]: m["short"] for m in method_catalogue()}

# Counts what the page's sockets bring, before any page script runs.
WATCH_SOCKETS = """
window.__ws = {opened: 0, steps: [], types: []};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    window.__ws.opened += 1;
    this.addEventListener("message", (ev) => {
      const m = JSON.parse(ev.data);
      window.__ws.types.push(m.type);
      if (m.type === "steps") window.__ws.steps.push([m.steps[0].seq, m.steps.length]);
    });
  }
};
"""

VIEW = """
const v = document.getElementById('run-view');
const gd = document.getElementById('plot-contour');
const trace = (name) => (gd.data || []).find(t => t.name === name) || (gd.drawnPoints || {})[name];
const cur = document.querySelector('#steps-body tr.current');
const box = document.getElementById('steps-scroll');
const rows = [...document.querySelectorAll('#steps-body tr[data-seq]')];
return {
  phase: v.dataset.phase, latest: v.dataset.latestSeq === undefined ? null : Number(v.dataset.latestSeq),
  series: v.dataset.series || null, cursor: v.dataset.cursor === undefined ? null : Number(v.dataset.cursor),
  pos: document.getElementById('replay-pos').textContent,
  slider: Number(document.getElementById('replay-slider').value),
  row: cur ? Number(cur.dataset.seq) : null,
  rowVisible: cur ? (() => { const a = cur.getBoundingClientRect(), b = box.getBoundingClientRect();
                             return a.top >= b.top && a.bottom <= b.bottom + 1; })() : false,
  rows: rows.length, firstCell: rows.length ? rows[0].cells[0].textContent : null,
  topSeq: rows.length ? Number(rows[0].dataset.seq) : null,
  convergence: (document.getElementById('plot-convergence').data[0].x || []).length,
  path: trace('best point') ? {x: trace('best point').x, y: trace('best point').y} : null,
  population: trace('population') ? {x: trace('population').x, y: trace('population').y} : null,
};
"""


def long_de(owner, maxiter=20000):
    """A DE run that lasts (10-D Rastrigin, rand1bin, tol 0)."""
    return services.launch(owner=owner, data={
        "method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
        "options": {"maxiter": maxiter, "tol": 0, "polish": False, "seed": 1, "strategy": "rand1bin"}})


class RunPageTests(PageShots, BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_SOCKETS})

    def view(self):
        return self.browser.execute_script(VIEW)

    def launch_long_run(self) -> int:
        """A long DE run launched from the new-run page: the live server's own workers drive it, so
        its live steps reach the pages' sockets (the test process has a channel layer of its own)."""
        self.browser.get(self.url("/runs/new/"))
        self.fill_long_de_run()
        self.find("#btn-launch").click()
        self.wait().until(lambda d: re.search(r"/runs/\d+/$", d.current_url))
        return int(re.search(r"/runs/(\d+)/$", self.browser.current_url).group(1))

    def delete_elsewhere(self, run_id: int):
        """Delete the run from a second window, as the history page does."""
        first = self.browser.current_window_handle
        self.browser.switch_to.new_window("tab")
        self.browser.get(self.url("/runs/"))
        answer = self.browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            fetch(`/runs/${arguments[0]}/delete/`, {method: 'POST', headers: {'X-CSRFToken': token, Accept: 'application/json'}})
              .then(r => r.json()).then(done, (e) => done(String(e)));""", run_id)
        self.browser.close()
        self.browser.switch_to.window(first)
        return answer

    def sockets(self):
        return self.browser.execute_script("return window.__ws")

    def uncaught(self):
        """Console errors other than failed loads (a deleted run's 404s are expected)."""
        return [m for m in self.console_errors() if "Failed to load resource" not in m]

    # -- a live run opens at its latest state ------------------------------------------------------
    def test_opening_a_live_run_shows_its_latest_step_at_once_and_replays_nothing(self):
        self.create_user("alice")
        self.log_in("alice")
        run_id = self.launch_long_run()
        assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps >= 300, timeout=60)
        before = Run.objects.get(pk=run_id).n_steps
        started = time.monotonic()
        self.browser.get(self.url(f"/runs/{run_id}/"))
        self.wait(60).until(lambda d: (v := self.view())["latest"] is not None and v["latest"] >= before - 1)
        shown = time.monotonic() - started
        self.wait().until(lambda d: self.view()["series"] == "drawn")
        v = self.view()
        self.assertEqual(v["phase"], "live")
        self.assertLess(shown, 10)  # generous: the machine is shared; the benchmark has the figure
        # The socket started after the page's last step: no stored step came again.
        self.wait().until(lambda d: self.sockets()["steps"])
        first_seq = self.sockets()["steps"][0][0]
        self.assertGreaterEqual(first_seq, before)
        # The plots hold the history (downsampled) and go on live; the table is bounded. Waited
        # for, not read once: the series may be marked drawn a redraw before its points are counted.
        self.wait().until(lambda d: self.view()["convergence"] > 100)
        v = self.view()
        self.assertLessEqual(v["rows"], 50)
        self.assertEqual(v["firstCell"], f"{v['topSeq'] + 1:,}")
        self.wait().until(lambda d: self.view()["population"] is not None)
        self.screenshot("run-live-opened")
        self.find("#btn-stop").click()
        self.wait_text("#run-status", "stopped", 60)
        self.assertEqual(self.uncaught(), [])

    # -- deleted in another tab ---------------------------------------------------------------------
    def test_a_replayed_run_deleted_elsewhere_says_so_and_links_to_the_history(self):
        alice = self.create_user("alice")
        run = synthetic_run(alice, 3000)
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait().until(lambda d: self.view()["row"] == 2999)
        self.assertEqual(self.delete_elsewhere(run.pk)["deleted"], run.pk)
        self.find("body").send_keys(Keys.HOME)  # the page needs steps it does not hold
        alert = self.wait_visible("#run-alert.run-deleted")
        self.assertIn(f"Run {run.pk} was deleted.", alert.text)
        self.assertEqual(alert.find_element(By.LINK_TEXT, "Back to the runs").get_attribute("pathname"), "/runs/")
        self.assertEqual(self.find("#run-status").text, "deleted")
        self.assertFalse(self.find("#run-controls").is_displayed())
        self.assertNotIn("loading", self.find("#replay-status").text + self.find("#steps-body").text)
        self.screenshot("run-deleted-replay")
        self.assertEqual(self.uncaught(), [])

    def test_a_live_run_deleted_elsewhere_says_so_and_does_not_reconnect(self):
        self.create_user("alice")
        self.log_in("alice")
        run_id = self.launch_long_run()
        assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps >= 20, timeout=60)
        self.browser.get(self.url(f"/runs/{run_id}/"))
        self.wait().until(lambda d: self.view()["latest"] is not None)
        self.assertEqual(self.delete_elsewhere(run_id)["deleted"], run_id)
        alert = self.wait_visible("#run-alert.run-deleted")
        self.assertIn(f"Run {run_id} was deleted.", alert.text)
        opened = self.sockets()["opened"]
        time.sleep(3)  # a reconnect would have happened by now (backoff starts at 0.5 s)
        self.assertEqual(self.sockets()["opened"], opened)
        self.assertFalse(self.find("#run-conn").is_displayed())
        self.screenshot("run-deleted-live")
        self.assertEqual(self.uncaught(), [])

    # -- the step table of an ended run -----------------------------------------------------------
    def test_the_step_table_scrolls_over_the_whole_run_and_follows_the_cursor(self):
        alice = self.create_user("alice")
        n = 5000
        run = synthetic_run(alice, n)
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait().until(lambda d: self.view()["row"] == n - 1)
        v = self.view()
        self.assertEqual(v["pos"], f"step {n:,} of {n:,}")
        self.assertEqual(v["firstCell"], f"{n:,}")  # the same count in the table
        self.assertIn(f"{n:,} steps", self.find("#steps-note").text)
        self.assertTrue(v["rowVisible"])
        # Scroll the table's own box to its end: the first steps are there, fetched as they come into view.
        box = self.find("#steps-scroll")
        self.browser.execute_script("arguments[0].scrollTop = arguments[0].scrollHeight", box)
        self.wait().until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#steps-body tr[data-seq]')].some(r => r.dataset.seq === '0' && !r.classList.contains('loading'))"))
        self.assertLessEqual(self.view()["rows"], 80)  # only the rows in view are in the page
        self.screenshot("steps-table-bottom")
        # Click a row: the replay goes there.
        # (found and clicked in one go: the windowed table redraws its rows as pages arrive)
        self.browser.execute_script("document.querySelector('#steps-body tr[data-seq=\"3\"]').click()")
        self.wait().until(lambda d: (v := self.view())["slider"] == 3 and v["row"] == 3)
        self.assertEqual(self.view()["pos"], f"step 4 of {n:,}")
        # Keys in the table: up is the later step (newest on top), Page Down a page back.
        box.send_keys(Keys.ARROW_UP)
        self.wait().until(lambda d: self.view()["slider"] == 4)
        box.send_keys(Keys.PAGE_UP)
        self.wait().until(lambda d: self.view()["slider"] > 10)
        # The slider far away: the table scrolls the current row into view.
        self.browser.execute_script(
            "const s = document.getElementById('replay-slider'); s.value = 2500; s.dispatchEvent(new Event('input'))")
        self.wait().until(lambda d: (v := self.view())["row"] == 2500 and v["rowVisible"])
        self.wait().until(lambda d: d.execute_script(
            "const r = document.querySelector('#steps-body tr[data-seq=\"2500\"]'); return r && !r.classList.contains('loading')"))
        self.screenshot("steps-table-middle")
        self.assertEqual(self.uncaught(), [])

    # -- 1-D problems ---------------------------------------------------------------------------
    def test_a_1d_run_draws_its_path_on_f_of_x(self):
        alice = self.create_user("alice")
        run = services.launch(owner=alice, data={"method": "de", "problem": "rastrigin", "dim": 1,
                                                 "bounds": [[-5.12, 5.12]], "options": {"maxiter": 30, "seed": 1}})
        assert services.wait_for_run(run_id=run["id"], timeout=60)
        run = Run.objects.get(pk=run["id"])
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait().until(lambda d: self.view()["row"] == run.n_steps - 1 and self.view()["series"] == "drawn")
        self.wait().until(lambda d: self.view()["path"] and len(self.view()["path"]["x"]) == run.n_steps)
        path = self.view()["path"]
        steps = [json.loads(t) for t in Step.objects.filter(run=run).order_by("seq").values_list("data", flat=True)]
        # The path is (x[0], f) of every step: it lies on the curve f(x).
        self.assertEqual(path["x"], [s["x"][0] for s in steps])
        self.assertEqual(path["y"], [s["fun"] for s in steps])
        self.assertEqual(self.browser.execute_script(
            "return document.getElementById('plot-contour').layout.xaxis.title.text"), "x[0]")
        # f(x) itself, drawn over the bound from the 1-D grid
        self.wait_text("#contour-note", "f along x[0]")
        curve = self.browser.execute_script(
            "return document.getElementById('plot-contour').data.filter(t => t.mode === 'lines' && t.x.length > 100).length")
        self.assertGreaterEqual(curve, 1)
        # The population of a generation, at its members' f values where the steps carry them.
        self.find("body").send_keys(Keys.HOME)
        self.wait().until(lambda d: self.view()["row"] == 0)
        first = json.loads(stored_steps.step_text(run_id=run.pk, seq=0)[1])["extra"]  # with its bulky fields
        # (the step's bulky fields are fetched, and the map drawn, after the cursor moved)
        self.wait().until(lambda d: (self.view()["population"] or {}).get("x") == [m[0] for m in first["population"]])
        pop = self.view()["population"]
        self.assertEqual(pop["x"], [m[0] for m in first["population"]])
        self.assertEqual(pop["y"], first["population_energies"])
        self.full_screenshot("run-1d")
        # Zoomed to the path, the line gets a finer stretch over the view (240 points over the bound before).
        line = "return document.getElementById('plot-contour').data.find(t => t.uid === 'grid').x.length"
        n_full = self.browser.execute_script(line)
        self.browser.execute_script(
            "[...document.querySelectorAll('.plot-tools button')].find(b => b.textContent === 'Zoom to path').click()")
        self.wait().until(lambda d: d.execute_script(line) > n_full)
        self.assertEqual(self.uncaught(), [])

    # -- compare with the other method --------------------------------------------------------------
    def test_compare_reuses_an_identical_counterpart_unless_asked_for_a_fresh_one(self):
        alice = self.create_user("alice")
        de = services.launch(owner=alice, data={"method": "de", "problem": "rosenbrock", "dim": 2,
                                                "bounds": [[-5, 10], [-5, 10]], "options": {"maxiter": 20, "seed": 1}})
        assert services.wait_for_run(run_id=de["id"], timeout=60)
        self.log_in("alice")

        def compare_ids():
            self.wait().until(lambda d: "/runs/compare/" in d.current_url)
            return [int(i) for i in re.search(r"ids=([\d,]+)", self.browser.current_url).group(1).split(",")]

        self.browser.get(self.url(f"/runs/{de['id']}/"))
        self.wait_for("#steps-body tr.current")
        self.assertFalse(self.find("#btn-compare-fresh").is_displayed())  # nothing to reuse yet
        self.find("#btn-compare").click()
        first = compare_ids()[1]
        self.assertEqual(Run.objects.count(), 2)
        assert services.wait_for_run(run_id=first, timeout=60)
        # Again: the same L-BFGS-B run is reused, and the page says which.
        self.browser.get(self.url(f"/runs/{de['id']}/"))
        self.wait_text("#compare-note", f"run {first}")
        self.assertEqual(self.find("#btn-compare").text, f"Compare with {METHOD_TITLES['lbfgsb']}")
        fresh = self.find("#btn-compare-fresh")
        self.assertTrue(fresh.is_displayed())
        self.assertEqual(fresh.text, f"New {METHOD_TITLES['lbfgsb']} run")
        self.screenshot("compare-reuse")
        self.find("#btn-compare").click()
        self.assertEqual(compare_ids(), [de["id"], first])
        self.assertEqual(Run.objects.count(), 2)
        # Asked for a fresh one: a new run.
        self.browser.get(self.url(f"/runs/{de['id']}/"))
        self.wait_text("#compare-note", f"run {first}")
        self.find("#btn-compare-fresh").click()
        ids = compare_ids()
        self.assertEqual(Run.objects.count(), 3)
        self.assertNotIn(ids[1], (de["id"], first))
        self.assertEqual(self.uncaught(), [])

    def counterparts(self, runs: list[dict]) -> list[dict]:
        """counterpartSpec of the page's own counterpart.js for each run (run-data's shape), with
        the problems and methods of the catalogue."""
        return self.browser.execute_async_script("""
          const [runs, done] = [arguments[0], arguments[arguments.length - 1]];
          const url = performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/counterpart(\\.[0-9a-f]+)?\\.js/.test(n));
          Promise.all([import(url), fetch("/api/problems/").then(r => r.json()), fetch("/api/methods/").then(r => r.json())])
            .then(([m, problems, methods]) => {
              const P = new Map(problems.map(p => [p.name, p])), M = new Map(methods.map(x => [x.name, x]));
              done(runs.map(r => m.counterpartSpec(r, P.get(r.problem), M)));
            }, e => done("failed: " + e));""", runs)

    def test_every_method_has_a_counterpart_of_the_other_kind_that_the_validator_takes(self):
        from runs.optim import get_problem, problem_catalogue, validate_spec

        alice = self.create_user("alice")
        page = real_run(alice, {"method": "nelder-mead", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0],
                                "options": {"maxiter": 30}})
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{page.pk}/"))
        self.wait_for("#steps-body tr.current")
        methods = {m["name"]: m for m in method_catalogue()}
        constrained = {p["name"] for p in problem_catalogue() if p["constraints"]}

        def run_of(method, problem):
            m, pr = methods[method], get_problem(problem)
            spec = {"method": method, "problem": problem, "dim": 2}
            if m["needs_bounds"]:
                spec["bounds"] = pr.default_bounds(2)
            if m["takes_x0"]:
                spec["x0"] = [-1.2, 1.0] if problem == "rosenbrock" else [2.0, 2.0]
            return validate_spec(spec).to_dict()

        runs = [run_of(name, "rosenbrock") for name in methods]
        runs += [run_of(name, "hs007") for name, m in methods.items() if m["takes_constraints"]]
        got = self.counterparts(runs)
        self.assertIsInstance(got, list, got)
        for run, cmp in zip(runs, got):
            m = methods[run["method"]]
            with self.subTest(method=run["method"], problem=run["problem"]):
                spec = cmp["spec"]
                want = ("de" if m["family"] != "global" else "slsqp" if run["problem"] in constrained else "lbfgsb")
                self.assertEqual(spec["method"], want)
                services.validate(spec)  # the server takes it as it is (raises ServiceError if not)
                if want == "de":  # a closed box: the run's own, or the problem's defaults
                    self.assertEqual(spec["bounds"], run["bounds"] or get_problem(run["problem"]).default_bounds(2))
                    self.assertEqual(spec.get("x0"), run["x0"])
                else:
                    self.assertEqual(spec.get("bounds"), run["bounds"])
                    if run["x0"] is not None:
                        self.assertEqual(spec["x0"], run["x0"])
                    else:  # a quarter of the way into each bound, and the note says so
                        self.assertEqual(spec["x0"], [float(f"{lo + 0.25 * (hi - lo):.6g}") for lo, hi in run["bounds"]])
                        self.assertIn("quarter of the way", cmp["note"])
                if run["problem"] in constrained:
                    self.assertIn("constraints too", cmp["note"])
        # An x0 outside the box DE would search is left out (scipy's DE refuses it), and the note says so.
        far = validate_spec({"method": "bfgs", "problem": "rosenbrock", "dim": 2, "x0": [50.0, -1.0]}).to_dict()
        (cmp,) = self.counterparts([far])
        self.assertNotIn("x0", cmp["spec"])
        self.assertIn("outside those bounds", cmp["note"])
        services.validate(cmp["spec"])
        self.assertEqual(self.uncaught(), [])

    def test_nelder_mead_and_a_constrained_slsqp_compare_with_de_and_dual_annealing_with_lbfgsb(self):
        from runs.optim import get_problem

        alice = self.create_user("alice")
        nm = real_run(alice, {"method": "nelder-mead", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0],
                              "options": {"maxiter": 40}})
        sq = real_run(alice, {"method": "slsqp", "problem": "hs007", "dim": 2, "x0": [2.0, 2.0]})
        da = real_run(alice, {"method": "dual_annealing", "problem": "rosenbrock", "dim": 2,
                              "bounds": [[-5, 10], [-5, 10]], "options": {"maxiter": 5, "seed": 3}})
        self.log_in("alice")

        def launched_from(run, title):
            self.browser.get(self.url(f"/runs/{run.pk}/"))
            self.wait_for("#steps-body tr.current")
            button = self.find("#btn-compare")
            self.wait().until(lambda d: button.text == f"Compare with {title}")
            before = set(Run.objects.values_list("pk", flat=True))
            button.click()
            self.wait().until(lambda d: "/runs/compare/" in d.current_url)
            ids = [int(i) for i in re.search(r"ids=([\d,]+)", self.browser.current_url).group(1).split(",")]
            self.assertEqual(ids[0], run.pk)
            self.assertNotIn(ids[1], before)
            return Run.objects.get(pk=ids[1], owner=alice)

        de = launched_from(nm, METHOD_TITLES["de"])
        self.assertEqual((de.method, de.problem), ("de", "rosenbrock"))
        self.assertEqual(de.spec["bounds"], get_problem("rosenbrock").default_bounds(2))
        self.assertEqual(de.spec["x0"], [-1.2, 1.0])
        # SLSQP on HS007 (an equality constraint): DE, which scipy gives the constraints too
        self.browser.get(self.url(f"/runs/{sq.pk}/"))
        self.wait_for("#steps-body tr.current")
        self.wait_text("#compare-note", "takes Hock-Schittkowski 7's constraints too")
        self.screenshot("compare-constrained-with-de")
        de = launched_from(sq, METHOD_TITLES["de"])
        self.assertEqual((de.method, de.problem), ("de", "hs007"))
        self.assertEqual(de.spec["bounds"], get_problem("hs007").default_bounds(2))
        assert services.wait_for_run(run_id=de.pk, timeout=120)
        de.refresh_from_db()
        self.assertEqual(de.status, "finished")
        # dual annealing has no x0 here: L-BFGS-B starts a quarter of the way into the bounds
        lb = launched_from(da, METHOD_TITLES["lbfgsb"])
        self.assertEqual((lb.method, lb.spec["bounds"], lb.spec["x0"]), ("lbfgsb", [[-5, 10], [-5, 10]], [-1.25, -1.25]))
        self.assertEqual(self.uncaught(), [])

    def test_a_counterpart_the_validator_refuses_is_not_offered_and_the_note_says_why(self):
        alice = self.create_user("alice")
        nm = real_run(alice, {"method": "nelder-mead", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0],
                              "options": {"maxiter": 30}})
        # stored under older rules: a coefficient the validator now refuses, so DE's spec would be refused
        spec = dict(nm.spec, params={"a": 1.0, "b": 2e6})
        Run.objects.filter(pk=nm.pk).update(spec=spec)
        with self.assertRaises(services.ServiceError) as refused:
            services.validate({"method": "de", "problem": "rosenbrock", "dim": 2, "params": spec["params"],
                               "bounds": [[-5, 10], [-5, 10]]})
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{nm.pk}/"))
        self.wait_for("#steps-body tr.current")
        self.wait_text("#compare-note", "cannot run this comparison")
        note = self.find("#compare-note").text
        self.assertIn(f"DE cannot run this comparison: {refused.exception.message}", note)
        self.assertFalse(self.find("#btn-compare").is_enabled())
        self.screenshot("compare-refused")
        self.assertEqual(self.uncaught(), [])

    # -- stop an interrupted run ------------------------------------------------------------------
    def test_stop_on_an_interrupted_run_ends_it_as_stopped_with_its_result(self):
        alice = self.create_user("alice")
        run_id = long_de(alice)["id"]
        assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps >= 20, timeout=60)
        services.control_run(user=alice, run_id=run_id, action="pause")
        assert services.wait_for_run(run_id=run_id, timeout=60)
        # As a worker that went away leaves it: interrupted, with its last checkpoint.
        Run.objects.filter(pk=run_id).update(status="interrupted")
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run_id}/"))
        self.wait_visible("#run-result")
        self.assertIn("Interrupted", self.find("#run-result").text)
        stop = self.find("#btn-stop")
        self.assertTrue(stop.is_displayed() and stop.is_enabled())
        self.screenshot("run-interrupted-stop")
        stop.click()
        self.wait_text("#run-status", "stopped", 60)
        self.wait_visible("#run-result")
        self.wait_text("#run-result", "Stopped")
        run = Run.objects.get(pk=run_id)
        self.assertEqual(run.status, "stopped")
        self.assertIsNotNone(run.result)  # scipy's result as of the checkpoint
        self.assertFalse(self.find("#run-controls").is_displayed())
        self.screenshot("run-interrupted-stopped")
        self.assertEqual(self.uncaught(), [])

    # -- a phone -----------------------------------------------------------------------------------
    def test_the_run_page_fits_390_px_with_the_site_names(self):
        alice = self.create_user("alice")
        run = services.launch(owner=alice, data={"method": "de", "problem": "rastrigin", "dim": 3,
                                                 "bounds": [[-5.12, 5.12]] * 3, "options": {"maxiter": 30, "seed": 1}},
                              label="a long label that has to wrap on a phone screen somewhere")
        assert services.wait_for_run(run_id=run["id"], timeout=60)
        self.log_in("alice")
        self.phone(900)
        self.browser.get(self.url(f"/runs/{run['id']}/"))
        self.wait_for("#steps-body tr.current")
        self.wait().until(lambda d: self.view()["series"] == "drawn")
        too_wide = """
          const w = document.documentElement.clientWidth;
          return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1
            && !e.closest('.table-responsive, .plot')).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className);"""
        try:
            self.wait(5).until(lambda d: d.execute_script(too_wide) == [])
        finally:
            self.phone_screenshot("run-390")
        self.assertEqual(self.browser.execute_script(too_wide), [])
        self.assertLessEqual(self.browser.execute_script("return document.documentElement.scrollWidth"),
                             self.browser.execute_script("return document.documentElement.clientWidth"))
        title = self.find("#run-title").text
        self.assertIn(f"{METHOD_TITLES['de']} on Rastrigin", title)  # the catalogue's title, never "de"
        self.assertNotRegex(title, r"\bde\b")
        self.assertEqual(self.browser.execute_script(
            "return [...document.querySelectorAll('#contour-ix option')].map(o => o.textContent)"), ["x[0]", "x[1]", "x[2]"])
        self.assertEqual(self.browser.execute_script(
            "return document.getElementById('plot-contour').layout.yaxis.title.text"), "x[1]")
        self.phone_screenshot("run-390")
        self.assertEqual(self.uncaught(), [])
