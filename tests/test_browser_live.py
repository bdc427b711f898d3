"""The new-run page in a real Chromium: launch, watch steps arrive, errors at the field, controls."""

import re

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from runs.models import Run
from tests.browser import PASSWORD, BrowserTestCase

PLOT_LEN = """
const gd = document.getElementById(arguments[0]);
if (!gd || !gd.data) return null;
// the population and the line search are on the map's point layer, the rest are Plotly traces
const t = gd.data.find(t => t.name === arguments[1]) || (gd.drawnPoints || {})[arguments[1]]
  || (arguments[1] === null ? gd.data[0] : null);
return t ? (t.x || []).length : null;
"""


class PageShots:
    def full_screenshot(self, name):
        """The whole page, not just the viewport: grow the window to the document, shoot, restore."""
        size = self.browser.get_window_size()
        height = self.browser.execute_script("return document.documentElement.scrollHeight")
        self.browser.set_window_size(size["width"], max(size["height"], height + 140))
        try:
            return self.screenshot(name)
        finally:
            self.browser.set_window_size(size["width"], size["height"])


class LiveRunTests(PageShots, BrowserTestCase):
    def sign_up(self, username="dora"):
        self.browser.get(self.url("/accounts/signup/"))
        self.find("#id_username").send_keys(username)
        self.find("#id_password1").send_keys(PASSWORD)
        self.find("#id_password2").send_keys(PASSWORD)
        self.find("form button[type=submit]").click()
        self.wait_for("#run-form")

    def plot_len(self, plot_id, trace_name=None):
        return self.browser.execute_script(PLOT_LEN, plot_id, trace_name)

    def latest_seq(self):
        """The newest step the view has drawn (-1 before the first)."""
        return int(self.browser.execute_script("return document.getElementById('run-view').dataset.latestSeq ?? -1"))

    def rows(self):
        return self.browser.execute_script("return document.querySelectorAll('#steps-body tr').length")

    def choose_method(self, name):
        self.find(f"label[for=method-{name}]").click()

    def launch(self):
        self.find("#btn-launch").click()
        self.wait().until(lambda d: re.search(r"/runs/\d+/$", d.current_url))
        return int(re.search(r"/runs/(\d+)/$", self.browser.current_url).group(1))

    def wait_status(self, status, timeout=60):
        self.wait_text("#run-status", status, timeout)

    def test_launch_de_with_the_defaults_and_watch_it_to_the_end(self):
        self.sign_up()
        self.wait_visible("#run-empty")
        self.screenshot("new-run-form")
        run_id = self.launch()
        # Steps arrive: table rows, the convergence line and the path grow.
        self.wait().until(lambda d: self.rows() >= 3)
        self.wait().until(lambda d: (self.plot_len("plot-convergence") or 0) >= 3)
        self.wait_status("finished")
        self.wait_visible("#run-result")
        self.assertIn("Converged", self.find("#run-result").text)
        reason = self.find("#result-reason").text
        self.assertTrue(reason.strip())
        self.wait_text("#result-polish", "accepted")  # DE polishes with L-BFGS-B by default
        run = Run.objects.get(pk=run_id)
        self.assertEqual(run.status, "finished")
        self.assertEqual(run.spec["options"]["seed"], 1)
        # Plots: every step on the convergence plot, path and population on the contour.
        self.wait().until(lambda d: self.plot_len("plot-convergence") == run.n_steps)
        self.wait().until(lambda d: (self.plot_len("plot-contour", "best point") or 0) >= 2)
        self.wait().until(lambda d: d.execute_script(  # the map, drawn on its canvas
            "return Number(document.getElementById('plot-contour-map').dataset.drawn) > 0"))
        # by its worker, off the main thread (the policy lets the site's own worker script run)
        self.assertEqual(self.find("#plot-contour-map").get_attribute("data-maker"), "worker")
        # After the end the view becomes a replay of the stored run, at its last step (the polish).
        self.wait_visible("#replay")
        self.wait_for("#steps-body tr.current")
        self.full_screenshot("live-de-finished")
        # One step back is the last generation: its population is on the map.
        self.find("body").send_keys(Keys.ARROW_LEFT)
        self.wait().until(lambda d: (self.plot_len("plot-contour", "population") or 0) >= 10)
        self.assertEqual(self.console_errors(), [])

    def test_launch_lbfgsb_shows_gradient_and_line_search(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        self.choose_method("lbfgsb")
        self.assertEqual(self.find("#x0-0").get_attribute("value"), "-1.25")  # default start filled in
        self.find("#id_label").send_keys("quasi-Newton baseline")
        self.screenshot("new-run-lbfgsb")
        run_id = self.launch()
        self.wait_status("finished")
        self.wait_visible("#run-result")
        self.assertTrue(self.find("#result-reason").text.strip())
        headers = [th.text for th in self.find_all("#steps-head th")]
        self.assertIn("gradient", headers)
        self.wait_for("#steps-body tr.current")
        run = Run.objects.get(pk=run_id)
        self.assertEqual(run.method, "lbfgsb")
        self.assertTrue(run.result["success"])
        self.wait_text("#run-title", "quasi-Newton baseline")  # PROTOCOL's start has no label: set after
        self.assertEqual(Run.objects.get(pk=run_id).label, "quasi-Newton baseline")
        # Step back to a middle iteration: its line-search trials are on the map.
        self.find("#replay-slider").click()
        self.wait().until(lambda d: self.plot_len("plot-contour", "best point"))
        self.browser.execute_script("""
          const s = document.getElementById('replay-slider');
          s.value = 5; s.dispatchEvent(new Event('input'));""")
        self.wait().until(lambda d: (self.plot_len("plot-contour", "line search") or 0) >= 1)
        self.screenshot("live-lbfgsb-finished")
        self.assertEqual(self.console_errors(), [])

    def test_jac_is_chosen_in_words_and_null_runs_scipys_default_without_a_gradient(self):
        from runs.optim import UNLIMITED, validate_spec
        from runs.optim.oracle import scipy_reference

        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        self.choose_method("lbfgsb")
        jac = Select(self.find("#opt-lbfgsb-jac"))
        texts = {o.get_attribute("value"): o.text for o in jac.options}
        self.assertEqual(list(texts), ["analytic", "2-point", "3-point", "cs", "null"])
        self.assertEqual(texts["analytic"], "analytic gradient (default)")
        self.assertIn("absolute step eps", texts["null"])
        jac.select_by_value("null")
        run_id = self.launch()
        self.wait_status("finished")
        run = Run.objects.get(pk=run_id)
        self.assertIsNone(run.spec["options"]["jac"])
        _, ref = scipy_reference(validate_spec(run.spec, UNLIMITED))  # minimize(jac=None)
        self.assertEqual((run.result["x"], run.result["nfev"]), (ref.x.tolist(), ref.nfev))
        self.wait_text("#run-subtitle", "forward differences, step eps 1e−8")  # the site writes minus signs
        # A complex step is offered only where f takes complex numbers (Ackley's abs does not).
        self.browser.get(self.url("/runs/new/"))
        self.choose_method("lbfgsb")
        Select(self.find("#id_problem")).select_by_value("ackley")
        cs = self.find("#opt-lbfgsb-jac option[value=cs]")
        self.assertFalse(cs.is_enabled())
        Select(self.find("#id_problem")).select_by_value("rosenbrock")
        self.assertTrue(self.find("#opt-lbfgsb-jac option[value=cs]").is_enabled())
        self.assertEqual(self.console_errors(), [])

    def test_launch_each_family_of_minimize_methods_and_watch_it_to_the_end(self):
        self.create_user("alice")
        self.log_in("alice")
        for method in ("bfgs", "nelder-mead", "trust-exact"):
            self.browser.get(self.url("/runs/new/"))
            self.choose_method(method)
            if method == "bfgs":  # no bounds in scipy's BFGS: the form keeps them, unsent
                self.assertFalse(self.find("#bounds-all-lo").is_enabled())
                self.assertIn("takes no bounds", self.find("#bounds-help").text)
                self.screenshot("new-run-bfgs")
            run_id = self.launch()
            self.wait_status("finished")
            self.wait_visible("#run-result")
            run = Run.objects.get(pk=run_id)
            self.assertEqual((run.method, run.spec["bounds"] is None), (method, method != "nelder-mead"))
            self.assertTrue(run.result["success"], run.result)
            self.wait().until(lambda d: self.plot_len("plot-convergence") == run.n_steps)
            self.wait().until(lambda d: (self.plot_len("plot-contour", "best point") or 0) >= 2)
            self.wait_for("#steps-body tr.current")
            if method == "nelder-mead":  # one step back: its simplex (3 vertices) and trial points on the map
                self.find("body").send_keys(Keys.ARROW_LEFT)
                drawn = "return (document.getElementById('plot-contour').drawnPoints || {})[arguments[0]]"
                self.wait().until(lambda d: (d.execute_script(drawn, "simplex") or {}).get("x"))
                self.assertEqual(len(self.browser.execute_script(drawn, "simplex")["x"]), 3)
                self.assertTrue(self.browser.execute_script(drawn, "trial points")["x"])
            self.full_screenshot(f"live-{method}-finished")
        self.assertEqual(self.console_errors(), [])

    def test_a_constrained_problem_shows_its_constraints_and_offers_only_the_methods_that_take_them(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        self.choose_method("lbfgsb")
        Select(self.find("#id_problem")).select_by_value("rosenbrock_disk")
        self.wait().until(lambda d: self.find("#problem-constraints").is_displayed())
        self.assertIn("subject to", self.find("#problem-constraints").text)
        self.assertFalse(self.find("#method-lbfgsb").is_enabled())
        self.assertTrue(self.find("#method-slsqp").is_enabled() and self.find("#method-de").is_enabled())
        self.choose_method("slsqp")
        self.screenshot("new-run-constrained")
        run_id = self.launch()
        self.wait_status("finished")
        run = Run.objects.get(pk=run_id)
        self.assertEqual((run.method, run.problem), ("slsqp", "rosenbrock_disk"))
        self.wait().until(lambda d: "infeasible (shaded)" in d.execute_script(
            "return [...document.querySelectorAll('.plot-legend li')].map(li => li.textContent).join('|')"))
        # back to an unconstrained problem: every method again
        self.browser.get(self.url("/runs/new/"))
        Select(self.find("#id_problem")).select_by_value("rosenbrock_disk")
        Select(self.find("#id_problem")).select_by_value("rosenbrock")
        self.assertTrue(self.find("#method-lbfgsb").is_enabled())
        self.assertFalse(self.find("#problem-constraints").is_displayed())
        self.assertEqual(self.console_errors(), [])

    def test_a_stopping_rule_from_the_form_ends_the_run_and_says_which(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        self.choose_method("nelder-mead")
        self.find("details.stop-rules summary").click()
        self.set_field("#stop-f", "abc")
        self.find("#btn-launch").click()
        self.wait_visible('[data-field="stop.f"] .invalid-feedback')  # at its field, in words
        self.set_field("#stop-f", "0.001")
        self.screenshot("new-run-stop-rules")
        run_id = self.launch()
        self.wait_status("finished")
        run = Run.objects.get(pk=run_id)
        self.assertEqual((run.spec["stop"], run.result["rule"]), ({"f": 0.001}, "f"))
        self.assertLessEqual(run.best_fun, 0.001)
        self.wait_text("#run-result", "Stopped by the rule f ≤")
        self.browser.get(self.url("/runs/?outcome=rule"))
        self.assertIn(f"run-{run_id}", self.browser.page_source)
        self.assertEqual(self.console_errors(), [])

    def test_errors_appear_at_the_field(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        # Client-side: reversed bounds, under the bounds row.
        self.set_field("#bounds-all-lo", "5")
        self.set_field("#bounds-all-hi", "-5")
        self.find("#btn-launch").click()
        feedback = self.wait_visible("#bounds-all .invalid-feedback")
        self.assertIn("greater than", feedback.text)
        self.assertIn("is-invalid", self.find("#bounds-all-lo").get_attribute("class"))
        self.screenshot("new-run-errors-client")
        # Typing in the field clears its error.
        self.set_field("#bounds-all-lo", "-5")
        self.assertEqual(self.find_all("#bounds-all .invalid-feedback"), [])
        self.set_field("#bounds-all-hi", "10")
        # Server-side: maxiter over the site's limit comes back keyed "options.maxiter".
        self.set_field("#opt-de-maxiter", "50000")
        self.find("#btn-launch").click()
        feedback = self.wait_visible('[data-field="options.maxiter"] .invalid-feedback')
        self.assertIn("limit", feedback.text)
        self.assertIn("more than this server allows", self.find("#form-alert").text)
        self.assertFalse(Run.objects.exists())
        self.assertIn("/runs/new/", self.browser.current_url)
        self.screenshot("new-run-errors-server")
        # Per-coordinate bounds: an error lands on its own row.
        self.set_field("#opt-de-maxiter", "20")
        self.find("#id_bounds_same").click()
        self.set_field("#bounds-1-hi", "-9")
        self.find("#btn-launch").click()
        self.wait_visible('[data-field="bounds[1]"] .invalid-feedback')
        self.assertEqual(self.find_all('[data-field="bounds[0]"] .invalid-feedback'), [])
        self.assertEqual(self.console_errors(), [])

    def test_pause_resume_and_stop_from_the_page(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/runs/new/"))
        self.fill_long_de_run()
        self.launch()
        self.wait_status("running")
        self.wait().until(lambda d: self.rows() >= 20)
        self.wait().until(lambda d: (self.plot_len("plot-contour", "population") or 0) >= 100)
        self.screenshot("live-running")
        # 10-D: the map is a slice over two coordinates the user picks.
        Select(self.find("#contour-ix")).select_by_value("3")
        self.wait_text("#contour-note", "x[3], x[1]")
        self.assertEqual(self.browser.execute_script(
            "return document.getElementById('plot-contour').layout.xaxis.title.text"), "x[3]")
        self.find("#btn-pause").click()
        self.wait_status("paused")
        self.assertFalse(self.find("#btn-resume").get_property("disabled"))
        self.assertTrue(self.find("#btn-pause").get_property("disabled"))
        self.screenshot("live-paused")
        seq = self.latest_seq()
        self.find("#btn-resume").click()
        self.wait_status("running")
        self.wait().until(lambda d: self.latest_seq() > max(seq, 80))  # past the 50 rows the table keeps
        self.assertEqual(self.rows(), 50)  # bounded while live, however long the run
        self.find("#btn-stop").click()
        self.wait_status("stopped")
        self.wait_visible("#run-result")
        self.assertIn("Stopped", self.find("#run-result").text)
        self.assertEqual(Run.objects.get().status, "stopped")
        self.screenshot("live-stopped")
        self.assertEqual(self.console_errors(), [])
