"""Compare page in a real Chromium: one shared scrubber, x-axis switch, live streaming, errors,
bests only where comparable, escaped labels, a 390 px phone."""

import json
import time

from selenium.webdriver.common.keys import Keys

from runs.models import Run
from runs.templatetags.history_tags import num
from tests.browser import BrowserTestCase
from tests.runs_factory import real_run, spec_for, synthetic_run

# A DE run that lasts a few seconds in the live server, so the page sees it stream.
LIVE_SPEC = {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
             "options": {"maxiter": 700, "popsize": 15, "tol": 0, "polish": False, "seed": 3}}


class ComparePageTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.lb = real_run(self.alice, spec_for("lbfgsb"), label="L-BFGS-B")
        self.de = real_run(self.alice, spec_for("de"), label="DE")
        self.log_in("alice")

    def cursor(self, run, col):
        return self.find(f'#cursor-table tr[data-run-id="{run.pk}"] .c-{col}').text

    def scrubber(self):
        return self.find("#scrubber")

    def test_shared_scrubber_and_axis_switch(self):
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{self.de.pk}"))
        self.wait_for("#compare[data-ready='1']")
        # one convergence plot with both runs, one contour with both paths
        self.assertEqual(len(self.find_all("#convergence-plot .scatterlayer .trace")), 3)  # 2 runs + marker
        self.wait().until(lambda d: d.execute_script(  # the map, drawn on its canvas
            "return Number(document.getElementById('contour-shared-map').dataset.drawn) > 0"))
        time.sleep(0.3)
        self.screenshot("compare")
        # the scrubber starts at the end: every run shows its last step
        self.assertEqual(int(float(self.scrubber().get_attribute("max"))), max(self.lb.nit, self.de.nit))
        self.assertEqual(self.cursor(self.lb, "nit"), str(self.lb.nit))
        # keyboard: Home, then three steps right -> both runs at iteration 3
        s = self.scrubber()
        s.send_keys(Keys.HOME)
        self.wait_text(f'#cursor-table tr[data-run-id="{self.de.pk}"] .c-nit', "0")
        s.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        self.wait_text("#scrub-readout", "iteration 3 of")
        self.assertEqual(self.cursor(self.lb, "nit"), "3")
        self.assertEqual(self.cursor(self.de, "nit"), "3")
        # both paths on the contour end at the scrubber: path lengths are 4 points each
        # (plots draw on a later frame, paced by their cost)
        lengths = lambda d: d.execute_script(  # noqa: E731
            "return document.getElementById('contour-shared').data.filter(t => t.mode === 'lines+markers').map(t => t.x.length)")
        self.wait().until(lambda d: lengths(d) == [4, 4])
        # zoomed to the paths, the map gets a grid of its own (as on the run page)
        row = self.browser.execute_script("return document.getElementById('contour-shared').closest('.contour-stack').previousElementSibling")
        next(b for b in row.find_elements("css selector", "button") if b.text == "Zoom to path").click()
        self.wait().until(lambda d: d.execute_script("return document.getElementById('contour-shared-map').dataset.detail") == "1")
        next(b for b in row.find_elements("css selector", "button") if b.text == "Full bounds").click()
        self.wait().until(lambda d: d.execute_script("return document.getElementById('contour-shared-map').dataset.detail") == "0")

        # switch the axis to function evaluations: a DE generation costs many evaluations
        self.find("label[for=axis-nfev]").click()
        self.wait().until(lambda d: d.find_element("css selector", "#compare").get_attribute("data-axis") == "nfev")
        self.assertEqual(int(float(self.scrubber().get_attribute("max"))), max(self.lb.nfev, self.de.nfev))
        self.assertIn("evaluations", self.find("#scrub-readout").text)
        title = self.browser.execute_script("return document.getElementById('convergence-plot').layout.xaxis.title.text")
        self.assertEqual(title, "function evaluations")
        # at 20 evaluations L-BFGS-B is well on its way, DE (16 members) has only its initial population
        self.browser.execute_script(
            "const s = document.getElementById('scrubber'); s.value = 20; s.dispatchEvent(new Event('input'));")
        self.wait_text("#scrub-readout", "20 evaluations")
        self.assertLessEqual(int(self.cursor(self.lb, "nfev").replace(",", "")), 20)
        self.assertGreater(int(self.cursor(self.lb, "nit")), 5)
        self.assertEqual(self.cursor(self.de, "nit"), "0")
        self.screenshot("compare-evaluations")

        # wall time axis, then play to the end
        self.find("label[for=axis-elapsed]").click()
        self.wait().until(lambda d: d.find_element("css selector", "#compare").get_attribute("data-axis") == "elapsed")
        self.find("#scrub-start").click()
        self.find("#scrub-play").click()
        self.wait_text("#scrub-play", "Pause")
        self.wait(20).until(lambda d: "Play" in d.find_element("css selector", "#scrub-play").text)
        self.assertAlmostEqual(float(self.scrubber().get_attribute("value")), float(self.scrubber().get_attribute("max")))
        # the summary stars what both runs measure alike: f, f - f*, distance to x* (same problem);
        # DE generations, its one polish gradient and a run cut by maxiter are not ranked, and say why
        best = {(td.find_element("xpath", "..").get_attribute("data-run-id"), td.get_attribute("data-key"))
                for td in self.find_all("#summary-table td.best")}
        self.assertEqual(best, {(str(self.lb.pk), k) for k in ("fun", "gap", "dist")})
        njev = self.find(f'#summary-table tr[data-run-id="{self.de.pk}"] td[data-key=njev]')
        self.assertIn("use gradients differently", njev.get_attribute("title"))
        notes = self.find("#rank-notes").text
        self.assertIn("iterations not ranked", notes)
        self.assertIn("gradient evals not ranked", notes)
        self.browser.execute_script("document.getElementById('summary-table').scrollIntoView({block: 'end', behavior: 'instant'})")
        self.screenshot("compare-tables")
        self.assertEqual(self.console_errors(), [])

    def test_different_problems_are_drawn_side_by_side(self):
        sphere = real_run(self.alice, spec_for("lbfgsb", "sphere", x0=[1.0, 2.0]), label="sphere")
        camel = real_run(self.alice, spec_for("de", "six_hump_camel", bounds=[[-3, 3], [-2, 2]]), label="camel")
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{sphere.pk},{camel.pk}"))
        self.wait_for("#compare[data-ready='1']")
        self.assertIn("own landscape", self.find("#contour-note").text)
        self.assertEqual(len(self.find_all(".contour-single")), 3)
        self.wait().until(lambda d: len(d.find_elements("css selector", ".contour-map[data-drawn]:not([data-drawn='0'])")) >= 3)
        time.sleep(0.3)
        self.screenshot("compare-different-problems")
        # no best across different problems: no star, and every ranked cell says why
        self.assertEqual(self.find_all("#summary-table td.best"), [])
        self.assertNotIn("★", self.find("#summary-table").text)
        for key in ("fun", "gap", "dist", "nfev"):
            cell = self.find(f'#summary-table tr[data-run-id="{sphere.pk}"] td[data-key={key}]')
            self.assertIn("do not share one problem", cell.get_attribute("title"))
        notes = self.find_all("#rank-notes li")  # one reason, said once for every column
        self.assertEqual(len(notes), 1)
        self.assertIn("distance to x*", notes[0].text)
        self.assertIn("not ranked: the runs do not share one problem", notes[0].text)
        self.assertEqual(self.console_errors(), [])

    def test_a_large_run_is_drawn_from_a_downsampled_series_but_scrubs_exactly(self):
        big = synthetic_run(self.alice, 6000, label="6,000 steps")
        self.browser.get(self.url(f"/runs/compare/?ids={big.pk},{self.lb.pk}"))
        self.wait_for("#compare[data-ready='1']")
        drawn = self.browser.execute_script(
            "return document.getElementById('convergence-plot').data.map(t => t.x.length)")
        self.assertLess(drawn[0], 2001)  # the page fetched what it draws, not 6,000 steps
        self.browser.execute_script(
            "const s = document.getElementById('scrubber'); s.value = 4321; s.dispatchEvent(new Event('input'));")
        # first the nearest kept step (marked ≈), then the exact one fetched from the steps window
        self.wait().until(lambda d: self.cursor(big, "seq") == "4,321")
        self.assertEqual(self.cursor(big, "nit"), "4,321")

    def test_runs_of_any_methods_share_one_timeline_and_one_contour(self):
        runs = [real_run(self.alice, spec_for(m, x0=[-1.2, 1.0]), label=m) for m in ("nelder-mead", "bfgs", "trust-exact")]
        runs.append(real_run(self.alice, {"method": "direct", "problem": "rosenbrock", "dim": 2,
                                          "bounds": [[-5, 10], [-5, 10]], "options": {"maxiter": 20}}, label="direct"))
        self.browser.get(self.url(f"/runs/compare/?ids={','.join(str(r.pk) for r in runs)}"))
        self.wait_for("#compare[data-ready='1']")
        lengths = lambda d: d.execute_script(  # noqa: E731
            "return document.getElementById('contour-shared').data.filter(t => t.mode === 'lines+markers').length")
        self.wait().until(lambda d: lengths(d) == 4)
        for r in runs:
            self.assertEqual(self.cursor(r, "nit"), f"{r.nit:,}")
        self.screenshot("compare-four-methods")
        self.assertEqual(self.console_errors(), [])

    def test_invalid_ids_give_a_clear_message(self):
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk}"))
        self.wait_for("#compare-error")
        self.assertIn("at least two", self.find("#compare-error").text)
        self.screenshot("compare-error")
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{self.lb.pk}"))
        self.wait_text("#compare-error", "listed twice")

    def test_a_running_run_streams_into_the_comparison(self):
        # Launch a real run through the launch socket, as the new-run page does.
        self.browser.get(self.url("/runs/"))
        run_id = self.browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const ws = new WebSocket(`ws://${location.host}/ws/runs/`);
            ws.onopen = () => ws.send(JSON.stringify({type: "start", spec: %s}));
            ws.onmessage = (ev) => { const m = JSON.parse(ev.data);
              if (m.type === "started") { ws.close(); done(m.run.id); }
              if (m.type === "error") { ws.close(); done("error: " + m.message); } };
        """ % json.dumps(LIVE_SPEC))
        self.assertIsInstance(run_id, int, run_id)
        self.browser.get(self.url(f"/runs/compare/?ids={run_id},{self.de.pk}"))
        self.wait_for("#compare[data-ready='1']")
        self.wait_visible("#live-state")
        sel = f'#cursor-table tr[data-run-id="{run_id}"] .c-nit'
        self.wait().until(lambda d: d.find_element("css selector", sel).text not in ("—", ""))
        first = int(self.find(sel).text.replace(",", ""))
        # steps keep arriving while the scrubber follows the newest one
        self.wait(20).until(lambda d: int(d.find_element("css selector", sel).text.replace(",", "")) > first + 5)
        self.screenshot("compare-live")
        self.wait(60).until(
            lambda d: "finished" in d.find_element("css selector", f'#summary-table tr[data-run-id="{run_id}"]').text)
        self.wait_text(f'#cursor-table tr[data-run-id="{run_id}"] .c-nit', "700")
        self.assertEqual(Run.objects.get(pk=run_id).status, "finished")
        self.wait_text(f'#summary-table tr[data-run-id="{run_id}"] td[data-key=nit]', "700")
        self.assertEqual(self.console_errors(), [])




class CompareTextAndPhoneTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.lb = real_run(self.alice, spec_for("lbfgsb"), label="<b>bold</b> & <a href='/x'>link</a>")
        self.de = real_run(self.alice, spec_for("de", options={"maxiter": 200, "popsize": 10}),
                           label="a rather long label for a differential evolution run, popsize 10")
        self.log_in("alice")

    def test_labels_reach_the_page_and_the_plots_as_text(self):
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{self.de.pk}"))
        self.wait_for("#compare[data-ready='1']")
        chip = self.find(f'.run-chip[data-run-id="{self.lb.pk}"] .chip-label')
        self.assertEqual(chip.text, "<b>bold</b> & <a href='/x'>link</a>")
        self.assertFalse(self.find_all("#run-chips b, #run-chips .chip-label a, #summary-table b"))
        self.assertIn("L-BFGS-B", self.find(f'.run-chip[data-run-id="{self.lb.pk}"]').text)
        # plots.js is handed plain text (it escapes what it draws): the label as typed, after the method title
        # what the legend shows (plots.js's own legend above the plot), as text
        legend = lambda d: d.execute_script(  # noqa: E731  (drawn a frame or more after data-ready)
            "const row = document.getElementById('convergence-plot').previousElementSibling;"
            "return [...row.querySelectorAll('.plot-legend li')].map(li => li.textContent)")
        names = self.wait().until(legend)
        label = self.lb.label
        short = label[:27] + "…" if len(label) > 28 else label  # long labels are cut in the legend
        self.assertIn(f"#{self.lb.pk} L-BFGS-B · {short}", names)
        self.assertTrue(any(n.startswith(f"#{self.de.pk} DE · a rather long") for n in names))
        self.assertEqual(self.console_errors(), [])

    def test_readouts_use_the_sites_formats(self):
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{self.de.pk}"))
        self.wait_for("#compare[data-ready='1']")
        self.find("label[for=axis-nfev]").click()
        self.wait().until(lambda d: d.find_element("css selector", "#compare").get_attribute("data-axis") == "nfev")
        self.assertRegex(self.find("#scrub-readout").text, r"^[\d,]+ evaluations of [\d,]+$")
        self.assertIn(f"{self.de.nfev:,}", self.find("#scrub-readout").text)
        self.assertEqual(self.find(f'#cursor-table tr[data-run-id="{self.de.pk}"] .c-nfev').text, f"{self.de.nfev:,}")
        fun = self.find(f'#cursor-table tr[data-run-id="{self.lb.pk}"] .c-fun').text
        self.assertEqual(fun, num(self.lb.result["fun"]))  # format.js and the template filter agree
        cell = self.find(f'#summary-table tr[data-run-id="{self.de.pk}"] td[data-key=nfev]').text
        self.assertEqual(cell, f"{self.de.result['nfev']:,}")

    def test_a_phone_sees_the_whole_page_and_the_readout(self):
        self.phone()
        self.browser.get(self.url(f"/runs/compare/?ids={self.lb.pk},{self.de.pk}"))
        self.wait_for("#compare[data-ready='1']")
        time.sleep(0.3)
        self.assertLessEqual(self.browser.execute_script("return document.documentElement.scrollWidth"), 390)
        readout = self.find("#scrub-readout")
        self.assertTrue(readout.is_displayed())
        self.assertLessEqual(readout.rect["x"] + readout.rect["width"], 390)
        self.assertIn("iteration", readout.text)
        for css in ("#scrubber", "#scrub-play", "#axis-group", "#convergence-plot", "#contour-shared"):
            box = self.find(css).rect
            self.assertLessEqual(box["x"] + box["width"], 390, css)
        # the wide tables scroll inside their own boxes
        box = self.browser.execute_script(
            "const b = document.querySelector('#summary-table').parentElement; return [b.scrollWidth, b.clientWidth]")
        self.assertGreater(box[0], box[1])
        height = int(self.browser.execute_script("return document.documentElement.scrollHeight"))
        self.phone(height=height)
        time.sleep(0.3)
        self.screenshot("compare-phone")
        self.assertEqual(self.console_errors(), [])
