"""The new-run form in a real Chromium: formulas rendered by KaTeX, the active-run cap, Back after
launching, a clone's label and note, the site's error pages, and the 390 px phone layout."""

import re

from django.templatetags.static import static
from selenium.webdriver.support.ui import Select

from runs import services
from runs.models import Run
from tests.browser import BrowserTestCase


# Every [data-latex] formula drawn by KaTeX: no error element, no raw LaTeX in what is shown.
FORMULA_STATE = """
const el = document.getElementById("problem-formula");
const html = el.querySelector(".katex-html");
return {rendered: el.classList.contains("math-rendered") && !!html, errors: el.querySelectorAll(".katex-error").length,
        shown: html ? html.textContent : el.textContent, latex: el.dataset.latex};
"""

# The whole catalogue through KaTeX itself, strict about errors.
RENDER_CATALOGUE = """
const done = arguments[arguments.length - 1];
import(arguments[0]).then(async (m) => {
  const katex = await m.loadKatex();
  const problems = JSON.parse(document.getElementById("problems-data").textContent);
  done(problems.map((p) => {
    try { katex.renderToString(p.latex, {throwOnError: true}); return [p.name, null]; }
    catch (e) { return [p.name, String(e.message)]; }
  }));
}, (e) => done([["import", String(e)]]));
"""

SET_MATH = """
const args = arguments, done = arguments[arguments.length - 1];
import(arguments[0]).then(async (m) => {
  const el = document.getElementById("problem-formula");
  const ok = await m.setMath(el, args[1], args[2]);
  done({ok, text: el.textContent, errors: el.querySelectorAll(".katex-error").length,
        rendered: el.classList.contains("math-rendered")});
});
"""

def valid_spec(**over) -> dict:
    spec = {"method": "lbfgsb", "problem": "sphere", "dim": 2, "x0": [1.5, -0.5], "options": {"maxiter": 40}}
    spec.update(over)
    return services.validate(spec).to_dict()


class NewRunPageCase(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.log_in("alice")

    def launch(self):
        self.find("#btn-launch").click()
        self.wait().until(lambda d: re.search(r"/runs/\d+/$", d.current_url))
        return int(re.search(r"/runs/(\d+)/$", self.browser.current_url).group(1))

    def formula(self):
        return self.browser.execute_script(FORMULA_STATE)

    def wait_formula(self, latex):
        self.wait().until(lambda d: (lambda s: s["rendered"] and s["latex"] == latex)(self.formula()))
        return self.formula()


class FormulaTests(NewRunPageCase):
    def test_every_problem_formula_is_rendered_from_its_latex(self):
        self.browser.get(self.url("/runs/new/"))
        problems = self.browser.execute_script("return JSON.parse(document.getElementById('problems-data').textContent)")
        self.assertGreaterEqual(len(problems), 10)
        # KaTeX parses every formula of the catalogue, strictly.
        failures = [(name, err) for name, err in self.browser.execute_async_script(RENDER_CATALOGUE, static("runs/math.js")) if err]
        self.assertEqual(failures, [])
        # And the form shows each one rendered as the problem is chosen: no raw LaTeX, no error.
        for p in problems:
            Select(self.find("#id_problem")).select_by_value(p["name"])
            state = self.wait_formula(p["latex"])
            self.assertEqual(state["errors"], 0, p["name"])
            self.assertNotIn("\\", state["shown"], p["name"])
            self.assertNotIn("sum_", state["shown"], p["name"])
            self.assertNotEqual(state["shown"].strip(), p["formula"].strip(), p["name"])
            if p["name"] in ("rosenbrock", "ackley"):
                self.screenshot(f"new-run-formula-{p['name']}")
        self.assertEqual(self.console_errors(), [])

    def test_the_first_formula_is_rendered_on_load_and_fonts_are_local(self):
        self.browser.get(self.url("/runs/new/"))
        state = self.wait_formula(self.browser.execute_script(
            "return document.getElementById('problem-formula').dataset.latex"))
        self.assertIn("∑", state["shown"])  # \\sum, drawn
        fonts = self.browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => /katex|KaTeX/.test(n))")
        self.assertTrue(any(re.search(r"katex\.min\.[0-9a-f]{12}\.js$", n) for n in fonts), fonts)
        self.assertTrue(any(n.endswith(".woff2") for n in fonts), fonts)
        self.assertTrue(all(n.startswith(self.live_server_url) for n in fonts), fonts)
        self.assertEqual(self.console_errors(), [])

    def test_a_formula_that_does_not_parse_shows_its_plain_text(self):
        self.browser.get(self.url("/runs/new/"))
        self.wait_formula(self.browser.execute_script("return document.getElementById('problem-formula').dataset.latex"))
        state = self.browser.execute_async_script(SET_MATH, static("runs/math.js"), r"f(x) = \frac{1", "f(x) = 1 / ...")
        self.assertEqual(state, {"ok": False, "text": "f(x) = 1 / ...", "errors": 0, "rendered": False})
        self.screenshot("new-run-formula-fallback")
        state = self.browser.execute_async_script(SET_MATH, static("runs/math.js"), r"\alpha^2", "alpha^2")
        self.assertTrue(state["ok"] and state["rendered"])


class LaunchFlowTests(NewRunPageCase):
    def test_the_active_run_cap_says_what_happened_and_links_the_active_runs(self):
        # Four paused runs (active, holding no worker): the default cap of 4 is reached.
        spec = valid_spec()
        for i in range(4):
            Run.objects.create(owner=self.alice, method="lbfgsb", problem="sphere", spec=spec, status="paused",
                               label=f"held {i}")
        self.browser.get(self.url("/runs/new/"))
        self.find("#btn-launch").click()
        alert = self.wait_visible("#form-alert")
        self.wait_text("#form-alert", "You already have 4 active runs, the most this server allows at once")
        self.assertIn("The run was not started.", alert.text)
        self.assertNotIn("runs:", alert.text)
        self.assertNotIn("asks for more", alert.text)
        link = self.find("#active-runs-link")
        self.assertEqual(link.get_attribute("href"), self.url("/runs/?status=active"))
        self.assertFalse(self.find("#btn-launch").get_attribute("disabled"))
        self.assertEqual(Run.objects.filter(owner=self.alice).count(), 4)
        self.assertTrue(self.browser.current_url.endswith("/runs/new/"))
        self.screenshot("new-run-cap-reached")
        link.click()
        self.wait().until(lambda d: "status=active" in d.current_url)
        self.wait_for("#history-table tbody tr")
        ids = {int(tr.get_attribute("data-run-id")) for tr in self.find_all("#history-table tbody tr")}
        self.assertEqual(ids, set(Run.objects.filter(owner=self.alice).values_list("pk", flat=True)))

    def test_back_after_launching_returns_to_the_filled_form(self):
        self.browser.get(self.url("/runs/"))  # where the user came from
        self.browser.get(self.url("/runs/new/"))
        Select(self.find("#id_problem")).select_by_value("sphere")
        self.set_field("#id_dim", "3")
        self.find("#id_dim").send_keys("\t")
        self.find("label[for=method-lbfgsb]").click()
        self.set_field("#opt-lbfgsb-maxiter", "30")
        self.set_field("#x0-2", "0.75")
        self.set_field("#id_label", "back and forth")
        run_id = self.launch()
        self.assertEqual(self.browser.title, f"Run {run_id} · optsite")
        self.wait_text("#run-status", "finished")
        self.assertEqual(Run.objects.get(pk=run_id).label, "back and forth")

        def assert_form_as_filled(where):
            self.assertEqual(Select(self.find("#id_problem")).first_selected_option.get_attribute("value"), "sphere", where)
            self.assertEqual(self.find("#id_dim").get_attribute("value"), "3", where)
            self.assertTrue(self.find("#method-lbfgsb").is_selected(), where)
            self.assertEqual(self.find("#opt-lbfgsb-maxiter").get_attribute("value"), "30", where)
            self.assertEqual(self.find("#x0-2").get_attribute("value"), "0.75", where)
            self.assertEqual(self.find("#id_label").get_attribute("value"), "back and forth", where)

        self.browser.back()
        self.wait().until(lambda d: "/runs/new/" in d.current_url)
        self.wait().until(lambda d: d.title == "New run · optsite")
        assert_form_as_filled("after Back")
        self.screenshot("new-run-back-to-the-form")
        # The entry itself holds the form as launched: a reload (or a browser that dropped the page)
        # shows the same values, filled in by the server.
        self.browser.refresh()
        self.wait_for("#run-form")
        assert_form_as_filled("after a reload")
        self.browser.forward()
        self.wait().until(lambda d: d.current_url.endswith(f"/runs/{run_id}/"))
        self.wait_for("#run-data")  # the run's own page
        self.wait_text("#run-status", "finished")
        self.browser.back()
        self.wait().until(lambda d: "/runs/new/" in d.current_url)
        self.browser.back()
        self.wait().until(lambda d: d.current_url.endswith("/runs/"))
        self.assertEqual(Run.objects.filter(owner=self.alice).count(), 1)

    def test_a_cloned_run_keeps_its_label_with_a_note_and_the_new_run_stores_it(self):
        source = Run.objects.create(owner=self.alice, method="lbfgsb", problem="sphere", status="finished",
                                    spec=valid_spec(x0=[2.0, 1.0]), label="baseline <b>bold</b>")
        self.browser.get(self.url(f"/runs/{source.pk}/clone/"))
        note = self.wait_visible("#cloned-note")
        self.assertIn(f"Cloned from run {source.pk}", note.text)
        self.assertIn("baseline <b>bold</b>", note.text)  # the label as text, never as markup
        self.assertEqual(self.find("#cloned-note a").get_attribute("href"), self.url(f"/runs/{source.pk}/"))
        self.assertEqual(self.find("#id_label").get_attribute("value"), "baseline <b>bold</b>")
        self.assertEqual(self.find("#x0-0").get_attribute("value"), "2")
        self.screenshot("new-run-cloned")
        run_id = self.launch()
        self.wait_text("#run-status", "finished")
        self.assertEqual(Run.objects.get(pk=run_id).label, "baseline <b>bold</b>")
        self.assertEqual(Run.objects.get(pk=run_id).spec, source.spec)
        # Back: the clone's form, note included.
        self.browser.back()
        self.wait().until(lambda d: "/runs/new/" in d.current_url)
        self.browser.refresh()
        self.assertIn(f"Cloned from run {source.pk}", self.wait_visible("#cloned-note").text)


class ErrorPageTests(NewRunPageCase):
    def test_a_missing_run_shows_the_sites_404_page_that_fits_a_phone(self):
        self.phone()
        self.browser.get(self.url("/runs/999999/"))
        self.wait_for("#error-links")
        self.assertIn("Run 999999 is not here", self.find("h1").text)
        self.assertTrue(self.find("nav.navbar").is_displayed())
        self.assertEqual(self.find("#error-links a").get_attribute("href"), self.url("/runs/"))
        self.assert_fits("404 page")
        self.screenshot("error-404-phone")


class PhoneLayoutTests(NewRunPageCase):
    def test_the_new_run_page_fits_390_px(self):
        self.phone()
        self.browser.get(self.url("/runs/new/"))
        self.wait_formula(self.browser.execute_script("return document.getElementById('problem-formula').dataset.latex"))
        self.assert_fits("new-run form")
        self.phone_screenshot("new-run-phone")
        # the longest formula, the widest inputs
        Select(self.find("#id_problem")).select_by_value("goldstein_price")
        self.wait_formula(self.browser.execute_script(
            "return JSON.parse(document.getElementById('problems-data').textContent).find(p => p.name === 'goldstein_price').latex"))
        self.wait_text("#problem-minimum", "f* = 3 at (0, −1)")
        self.tap("label[for=method-lbfgsb]")
        self.tap(".method-options[data-method=lbfgsb] details summary")
        self.assert_fits("new-run form, Goldstein-Price, L-BFGS-B, more options")
        self.phone_screenshot("new-run-phone-long-formula")
        # errors at the fields
        self.set_field("#opt-lbfgsb-maxiter", "-3")
        self.set_field("#x0-0", "abc")
        self.tap("#btn-launch")
        self.wait_visible("#form-alert")
        self.assert_fits("new-run form with errors")
        self.phone_screenshot("new-run-phone-errors")
        # the navbar's menu, opened
        self.browser.execute_script("scrollTo(0, 0)")
        self.tap(".navbar-toggler")
        self.wait_visible("#nav-user")
        self.assert_fits("navbar menu")
        self.screenshot("navbar-phone-open")


class LocalMinimizerTests(NewRunPageCase):
    def test_a_basinhopping_run_with_a_chosen_local_minimizer_is_scipys(self):
        import numpy as np
        from scipy.optimize import basinhopping

        from runs.optim import METHODS, get_problem

        self.browser.get(self.url("/runs/new/"))
        Select(self.find("#id_problem")).select_by_value("rosenbrock")
        self.find("label[for=method-basinhopping]").click()
        self.set_field("#opt-basinhopping-seed", "3")
        self.find(".method-options[data-method=basinhopping] .more-options summary").click()
        self.set_field("#opt-basinhopping-niter", "4")
        self.assertFalse(self.find("#local-basinhopping .local-bounds").is_displayed())  # scipy's default: no switch
        Select(self.find("#opt-basinhopping-mk-method")).select_by_value("powell")
        # Powell's own options, scipy's defaults shown; no jac (Powell uses none)
        ftol = self.wait_visible("#opt-basinhopping-mk-o-ftol")
        powell = {o.name: o.default for o in METHODS["powell"].options}
        self.assertEqual(ftol.get_attribute("placeholder"), str(powell["ftol"]))
        self.assertEqual(self.find_all("#opt-basinhopping-mk-jac"), [])
        self.assertTrue(self.find("#local-basinhopping .local-bounds").is_displayed())
        # the server's error, at the field: a huge local maxiter is over the site's limit
        self.set_field("#opt-basinhopping-mk-o-maxiter", "1000000000")
        self.find("#btn-launch").click()
        field = '[data-field="options.minimizer_kwargs.options.maxiter"]'
        self.wait_text(f"{field} .invalid-feedback", "more than the limit")
        self.assertIn("is-invalid", self.find(f"{field} input").get_attribute("class"))
        self.assertEqual(self.browser.switch_to.active_element.get_attribute("id"), "opt-basinhopping-mk-o-maxiter")
        self.screenshot("new-run-local-minimizer-error")
        # fixed from the keyboard, with the form's bounds handed to the local minimizer, launched by Ctrl+Enter
        self.set_field("#opt-basinhopping-mk-o-maxiter", "60")
        self.set_field("#opt-basinhopping-mk-o-ftol", "1e-6")
        self.find("#opt-basinhopping-mk-bounds").send_keys(" ")
        self.assertTrue(self.find("#opt-basinhopping-mk-bounds").is_selected())
        self.assertTrue(self.find("#bounds-all-lo").is_enabled())  # basinhopping's bounds now go somewhere
        self.set_field("#bounds-all-lo", "-2")
        self.set_field("#bounds-all-hi", "2")
        self.screenshot("new-run-local-minimizer")
        from selenium.webdriver.common.keys import Keys
        self.find("#opt-basinhopping-mk-o-ftol").send_keys(Keys.CONTROL, Keys.ENTER)
        self.wait().until(lambda d: re.search(r"/runs/\d+/$", d.current_url))
        run = Run.objects.get(pk=int(re.search(r"/runs/(\d+)/$", self.browser.current_url).group(1)))
        self.wait_text("#run-status", "finished")
        run.refresh_from_db()
        mk = {"method": "powell", "bounds": [[-2.0, 2.0], [-2.0, 2.0]], "options": {"ftol": 1e-6, "maxiter": 60}}
        self.assertEqual(run.spec["options"]["minimizer_kwargs"], mk)
        self.assertNotIn("bounds", {k for k, v in run.spec.items() if v is not None})
        p = get_problem("rosenbrock")
        ref = basinhopping(p.objective(run.spec["params"]), np.array(run.spec["x0"]), niter=4, seed=3,
                           minimizer_kwargs={"method": "Powell", "bounds": [(-2, 2), (-2, 2)],
                                             "options": {"ftol": 1e-6, "maxiter": 60}})
        self.assertEqual(run.result["x"], ref.x.tolist())
        self.assertEqual((run.result["fun"], run.result["nfev"], run.result["nit"]), (ref.fun, ref.nfev, ref.nit))
        # Back, then a reload: the server fills the local minimizer in as it was launched
        self.browser.back()
        self.wait().until(lambda d: "/runs/new/" in d.current_url)
        self.browser.refresh()
        self.wait_for("#run-form")
        self.assertEqual(Select(self.find("#opt-basinhopping-mk-method")).first_selected_option.get_attribute("value"),
                         "powell")
        self.assertEqual(self.find("#opt-basinhopping-mk-o-maxiter").get_attribute("value"), "60")
        self.assertTrue(self.find("#opt-basinhopping-mk-bounds").is_selected())
        self.assertEqual(self.find("#bounds-all-hi").get_attribute("value"), "2")
        self.assertTrue(self.find("#bounds-all-hi").is_enabled())
        self.assertEqual(self.console_errors(), [])


    def test_shgos_options_and_its_local_minimizer_reach_scipy(self):
        import numpy as np
        from scipy.optimize import shgo

        from runs.optim import get_problem

        self.browser.get(self.url("/runs/new/"))
        Select(self.find("#id_problem")).select_by_value("himmelblau")
        self.find("label[for=method-shgo]").click()
        self.find(".method-options[data-method=shgo] .object-options summary").click()
        self.assertEqual(self.find("#opt-shgo-options-f_tol").get_attribute("placeholder"), "0.0001")
        self.set_field("#opt-shgo-options-f_min", "0")
        self.find("#btn-launch").click()
        self.wait_text('[data-field="options.options.f_min"] .invalid-feedback', "Needs maxiter, maxfev or maxev")
        self.set_field("#opt-shgo-options-maxiter", "2")
        Select(self.find("#opt-shgo-mk-method")).select_by_value("cobyla")
        self.wait_visible("#opt-shgo-mk-o-catol")
        self.assertEqual(self.find_all("#opt-shgo-mk-o-maxiter"), [])  # shgo would drop it
        self.find("#opt-shgo-mk-o-catol").send_keys("1e-5")
        run_id = self.launch()
        self.wait_text("#run-status", "finished")
        run = Run.objects.get(pk=run_id)
        self.assertEqual(run.spec["options"]["options"], {"f_min": 0.0, "maxiter": 2})
        self.assertEqual(run.spec["options"]["minimizer_kwargs"], {"method": "cobyla", "options": {"catol": 1e-5}})
        ref = shgo(get_problem("himmelblau").objective(run.spec["params"]), [tuple(b) for b in run.spec["bounds"]],
                   minimizer_kwargs={"method": "COBYLA", "options": {"catol": 1e-5}}, options={"f_min": 0, "maxiter": 2})
        self.assertEqual(run.result["x"], np.asarray(ref.x).tolist())
        self.assertEqual((run.result["fun"], run.result["nfev"], run.result["nit"]), (ref.fun, ref.nfev, ref.nit))
        self.assertEqual(self.console_errors(), [])

# -- the same form without JavaScript: a plain POST carries the nested options ------------------
def test_a_post_without_javascript_puts_nested_errors_at_their_fields(alice_client):
    r = alice_client.post("/runs/new/", {
        "problem": "rosenbrock", "method": "shgo", "dim": "2", "bounds.0.lo": "-2", "bounds.0.hi": "2",
        "bounds.1.lo": "-2", "bounds.1.hi": "2", "mk.shgo.method": "l-bfgs-b", "mk.shgo.jac": "analytic",
        "mk.shgo.o.ftol": "abc", "options.options.f_min": "0", "options.options.symmetry": ["false", "true"]})
    assert r.status_code == 400
    html = r.content.decode()
    for key, words in (("options.minimizer_kwargs.options.ftol", "Must be a number"),
                       ("options.options.f_min", "Needs maxiter, maxfev or maxev")):
        at = html[html.index(f'data-field="{key}"'):]
        at = at[:at.index("</div>\n</div>")]
        assert "is-invalid" in at and words in at, key
    # what was typed is kept: the local method, its jac, shgo's switch
    assert '<option value="l-bfgs-b" selected>' in html
    assert 'id="opt-shgo-options-symmetry" name="options.options.symmetry" value="true" checked' in html
    assert not Run.objects.exists()


def test_a_post_without_javascript_stands_for_the_spec_the_script_sends():
    from django.http import QueryDict

    from runs import forms

    q = QueryDict(mutable=True)
    for k, v in {"problem": "rosenbrock", "method": "basinhopping", "dim": "2", "x0.0": "0.5", "x0.1": "0.5",
                 "bounds.0.lo": "-1", "bounds.0.hi": "1", "bounds.1.lo": "-1", "bounds.1.hi": "1",
                 "mk.basinhopping.method": "tnc", "mk.basinhopping.jac": "null", "mk.basinhopping.bounds": "true",
                 "mk.basinhopping.o.maxfun": "40", "mk.basinhopping.o.eta": ""}.items():
        q[k] = v
    spec, _ = forms.spec_from_post(q)
    assert "bounds" not in spec  # basin-hopping's bounds went to its local minimizer
    assert spec["options"] == {"minimizer_kwargs": {"method": "tnc", "bounds": [[-1, 1], [-1, 1]],
                                                    "options": {"maxfun": 40}}}
    assert services.validate(spec).options["minimizer_kwargs"]["bounds"] == [[-1.0, 1.0], [-1.0, 1.0]]
