"""plots.js in a real Chromium: decade ticks, log x, zoom to the path, legends per method, escaped
labels, the 1-D mode and the cost of long live series.

The run and compare pages of stored runs show the classes as the site uses them; the 1-D mode and
the call counts are checked on the classes themselves, imported into the run page from the console.
"""

import json
import math
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import BrowserTestCase
from tests.runs_factory import real_run, spec_for
from tests.test_browser_live import PageShots

HTML_LABEL = '<b>bold</b> <a href="x">a</a>'

TICKS = """
const gd = document.getElementById(arguments[0]);
return [...gd.querySelectorAll(`.${arguments[1]}axislayer-above .${arguments[1]}tick text`)].map(t => t.textContent);
"""

RANGES = """
const L = document.getElementById(arguments[0])._fullLayout;
return { x: L.xaxis.range.slice(), y: L.yaxis.range.slice(), xtype: L.xaxis.type, ytype: L.yaxis.type };
"""

# The legend plots.js writes above a plot (HTML, beside its buttons).
LEGEND = """
const el = document.getElementById(arguments[0]);
const row = (el.closest('.contour-stack') || el).previousElementSibling;  // a contour's map sits under it
return row && row.classList.contains('plot-tools') ? [...row.querySelectorAll('.plot-legend li')].map(li => li.textContent) : [];
"""

# Imports the page's own plots.js (whatever URL the page loaded it from) and hands it to the test.
IMPORT_PLOTS = """
const done = arguments[arguments.length - 1];
const url = performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/plots(\\.[0-9a-f]+)?\\.js/.test(n));
import(url).then(m => { window.plotsModule = m; done(url); }, e => done("failed: " + e));
"""


def is_decade(label: str) -> bool:
    value = float(label.replace("−", "-").replace(",", ""))
    return value > 0 and abs(math.log10(value) - round(math.log10(value))) < 1e-9


class PlotsOnPagesTests(PageShots, BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.log_in("alice")

    def open_run(self, run):
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait_visible("#replay")
        self.wait_for("#steps-body tr.current")
        self.wait().until(lambda d: d.execute_script(
            "const g = document.getElementById('plot-contour'); return g.data && g.data.length > 1"))

    def ticks(self, plot, axis):
        return self.browser.execute_script(TICKS, plot, axis)

    def ranges(self, plot):
        return self.browser.execute_script(RANGES, plot)

    def legend(self, plot):
        return self.browser.execute_script(LEGEND, plot)

    def tool(self, plot, text):
        """The button a plot draws above itself."""
        buttons = self.find(f"#{plot}").find_elements(By.XPATH, "preceding::div[@class='plot-tools'][1]//button")
        return next(b for b in buttons if b.text == text)

    def test_a_coordinate_fixed_by_equal_bounds_is_not_a_map_axis_unless_it_must_be(self):
        map_drawn = "return Number(document.getElementById('plot-contour-map').dataset.drawn) > 0"
        de = real_run(self.alice, {"method": "de", "problem": "rastrigin", "dim": 3,
                                   "bounds": [[-5, 5], [1, 1], [-5, 5]], "options": {"maxiter": 8, "seed": 2}})
        self.open_run(de)
        self.assertEqual([self.find("#contour-ix").get_attribute("value"), self.find("#contour-iy").get_attribute("value")],
                         ["0", "2"])
        self.wait().until(lambda d: d.execute_script(map_drawn))
        # 2-D with one coordinate fixed: the map spans a little around its value, the path on that line.
        lb = real_run(self.alice, spec_for("lbfgsb", bounds=[[-5, 5], [2, 2]], x0=[0.5, 2], options={"jac": None}))
        self.open_run(lb)
        self.wait().until(lambda d: d.execute_script(map_drawn))
        y = self.ranges("plot-contour")["y"]
        self.assertTrue(y[0] < 2 < y[1] and y[1] - y[0] < 3, y)
        path = self.browser.execute_script(
            "return document.getElementById('plot-contour').data.find(t => t.name === 'best point').y")
        self.assertTrue(path and all(v == 2 for v in path), path)
        self.screenshot("plots-fixed-coordinate")
        self.assertEqual(self.console_errors(), [])

    def test_a_constrained_run_shows_its_feasible_region(self):
        run = real_run(self.alice, {"method": "slsqp", "problem": "rosenbrock_disk", "dim": 2, "x0": [-1.0, 0.5]})
        self.open_run(run)
        self.wait().until(lambda d: d.execute_script(
            "return Number(document.getElementById('plot-contour-map').dataset.drawn) > 0"))
        self.wait().until(lambda d: "infeasible (shaded)" in self.legend("plot-contour"))
        self.full_screenshot("plots-constrained-run")
        # trust-constr reports its trust radius: a circle of it around each step's point
        tc = real_run(self.alice, {"method": "trust-constr", "problem": "rosenbrock_disk", "dim": 2, "x0": [-1.0, 0.5]})
        self.open_run(tc)
        self.find("body").send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        self.wait().until(lambda d: d.execute_script("return document.getElementById('run-view').dataset.cursor") == "2")
        data = json.loads(tc.steps.get(seq=2).data)
        radius, (cx, cy) = data["extra"]["tr_radius"], data["x"]
        drawn = "return (document.getElementById('plot-contour').drawnPoints || {})['trust region'] || null"

        def ring_at_step_2(d):
            ring = d.execute_script(drawn)
            return ring and len(ring["x"]) == 72 and all(
                abs(math.hypot(x - cx, y - cy) - radius) < 1e-9 * max(1, radius) for x, y in zip(ring["x"], ring["y"]))
        self.wait().until(ring_at_step_2)
        self.assertIn("trust region", self.legend("plot-contour"))
        # dogleg's radius is read off scipy's own loop: the same ring, and a column in the step table
        dl = real_run(self.alice, {"method": "dogleg", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0]})
        self.open_run(dl)
        self.wait().until(lambda d: "trust radius" in self.find("#steps-head").text)
        self.find("body").send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        self.wait().until(lambda d: d.execute_script("return document.getElementById('run-view').dataset.cursor") == "2")
        data = json.loads(dl.steps.get(seq=2).data)
        radius, (cx, cy) = data["extra"]["tr_radius"], data["x"]
        self.wait().until(ring_at_step_2)
        self.assertEqual(self.console_errors(), [])

    def test_an_equality_constraints_curve_is_drawn_where_h_is_zero(self):
        import numpy as np

        from runs.optim import get_problem

        # HS007: h = (1 + x²)² + y² − 4 = 0, an oval through (0, ±√3); the feasible set is that curve
        run = real_run(self.alice, {"method": "slsqp", "problem": "hs007", "dim": 2, "x0": [2.0, 2.0],
                                    "bounds": [[-2.5, 2.5], [-2.5, 2.5]]})  # the map: this box, the whole oval
        self.open_run(run)
        self.wait().until(lambda d: d.execute_script(
            "const c = document.getElementById('plot-contour-map'); return Number(c.dataset.drawn) > 0 && c.dataset.detail === '0'"))
        self.wait().until(lambda d: "feasible curve (h = 0)" in self.legend("plot-contour"))
        (h,) = get_problem("hs007").constraints()
        xs = np.linspace(-0.9, 0.9, 9)
        on = [(x, s * math.sqrt(4 - (1 + x * x) ** 2)) for x in xs for s in (1, -1)]
        self.assertLess(max(abs(h.fun(np.array(p))) for p in on), 1e-12)
        # ... and points well off it, each 0.4 above or below a point of the curve
        off = [(x, y + 0.4 * (1 if y > 0 else -1)) for x, y in on] + [(x, 0.0) for x in xs]
        # The map canvas's pixels near each point: is the curve's colour (maprender.js CURVE) among them?
        probe = """
          const gd = document.getElementById('plot-contour'), L = gd._fullLayout;
          const c = document.getElementById('plot-contour-map'), g = c.getContext('2d'), dpr = window.devicePixelRatio || 1;
          const [x0, x1] = L.xaxis.range, [y0, y1] = L.yaxis.range;
          return arguments[0].map(([x, y]) => {
            if (x < Math.min(x0, x1) || x > Math.max(x0, x1) || y < Math.min(y0, y1) || y > Math.max(y0, y1)) return null;
            const X = Math.round((L._size.l + L.xaxis.l2p(x)) * dpr), Y = Math.round((L._size.t + L.yaxis.l2p(y)) * dpr);
            const d = g.getImageData(X - 2, Y - 2, 5, 5).data;
            for (let k = 0; k < d.length; k += 4) {
              if (Math.abs(d[k] - 217) + Math.abs(d[k + 1] - 72) + Math.abs(d[k + 2] - 15) < 40) return true;
            }
            return false;
          });"""
        hits = self.browser.execute_script(probe, on)
        self.assertEqual(hits, [True] * len(on), list(zip(on, hits)))
        misses = self.browser.execute_script(probe, off)
        self.assertEqual(misses, [False] * len(off), list(zip(off, misses)))
        self.screenshot("plots-equality-curve")
        # The legend's entry hides the curve, and shows it again.
        toggle = ("[...document.querySelectorAll('.plot-legend-item')]"
                  ".find(b => b.textContent === 'feasible curve (h = 0)').click()")
        self.browser.execute_script(toggle)
        self.wait().until(lambda d: not any(self.browser.execute_script(probe, on)))
        self.browser.execute_script(toggle)
        self.wait().until(lambda d: self.browser.execute_script(probe, on) == hits)
        self.assertEqual(self.console_errors(), [])

    def test_log_axes_are_labelled_at_decades_and_x_turns_logarithmic(self):
        run = real_run(self.alice, spec_for("lbfgsb"))  # f − f* from 24 down to ~1e-14
        self.open_run(run)
        self.wait().until(lambda d: len(self.ticks("plot-convergence", "y")) >= 3)
        labels = self.ticks("plot-convergence", "y")
        self.assertTrue(all(is_decade(t) for t in labels), labels)
        values = [float(t.replace("−", "-")) for t in labels]
        self.assertEqual(values, sorted(values), labels)  # one ascending sequence, no "100, 9, 8, …"
        self.assertGreaterEqual(math.log10(values[-1] / values[0]), 6)
        # minor ticks are drawn but carry no label
        minor = self.browser.execute_script(
            "return document.querySelectorAll('#plot-convergence .minor-ytick, #plot-convergence path.ytick.minor, "
            "#plot-convergence .yaxislayer-above .ytick2').length + "
            "(document.getElementById('plot-convergence')._fullLayout.yaxis.minor.tickvals || []).length")
        self.assertGreater(minor, 0)
        self.assertEqual(self.ranges("plot-convergence")["xtype"], "linear")
        self.screenshot("plots-decade-ticks")
        # a zoom to three decades is labelled at each of them; one under a decade at 1, 2 and 5 times
        self.browser.execute_script("Plotly.relayout('plot-convergence', {'yaxis.range': [-6.2, -2.8]})")
        self.wait().until(lambda d: self.ticks("plot-convergence", "y") == ["1e−6", "1e−5", "0.0001", "0.001"])
        self.browser.execute_script("Plotly.relayout('plot-convergence', {'yaxis.range': [-0.9, 0.4]})")
        self.wait().until(lambda d: self.ticks("plot-convergence", "y") == ["0.2", "0.5", "1", "2"])
        self.browser.execute_script("Plotly.relayout('plot-convergence', {'yaxis.autorange': true})")
        self.wait().until(lambda d: self.ticks("plot-convergence", "y") == labels)

        button = self.tool("plot-convergence", "log x")
        self.assertEqual(button.get_attribute("aria-pressed"), "false")
        button.click()
        self.wait().until(lambda d: self.ranges("plot-convergence")["xtype"] == "log")
        self.assertEqual(button.get_attribute("aria-pressed"), "true")
        self.wait().until(lambda d: len(self.ticks("plot-convergence", "x")) >= 2)
        xlabels = self.ticks("plot-convergence", "x")
        self.assertTrue(all(is_decade(t) for t in xlabels), xlabels)
        self.screenshot("plots-log-x")
        # keyboard: the toggle is a real button
        button.send_keys(Keys.SPACE)
        self.wait().until(lambda d: self.ranges("plot-convergence")["xtype"] == "linear")
        self.assertEqual(button.get_attribute("aria-pressed"), "false")
        self.assertEqual(self.console_errors(), [])

    def test_zoom_to_the_path_and_back_to_the_full_bounds(self):
        # L-BFGS-B from (-1.2, 1) inside [-5, 10]²: the path fills a small corner of the map.
        run = real_run(self.alice, spec_for("lbfgsb", bounds=[[-5, 10], [-5, 10]]))
        self.open_run(run)
        full = self.ranges("plot-contour")
        self.assertAlmostEqual(full["x"][0], -5, places=6)
        self.assertAlmostEqual(full["x"][1], 10, places=6)
        self.full_screenshot("plots-contour-full")
        zoom = self.tool("plot-contour", "Zoom to path")
        back = self.tool("plot-contour", "Full bounds")
        self.assertEqual(back.get_attribute("aria-pressed"), "true")
        # keyboard reachable: focus it and press Enter
        self.browser.execute_script("arguments[0].focus()", zoom)
        zoom.send_keys(Keys.ENTER)
        self.wait().until(lambda d: self.ranges("plot-contour")["x"][1] < 5)
        r = self.ranges("plot-contour")
        self.assertEqual(zoom.get_attribute("aria-pressed"), "true")
        path = self.browser.execute_script(
            "const t = document.getElementById('plot-contour').data.find(t => t.name === 'best point'); return [t.x, t.y];")
        # the whole path is in view, and the view is much smaller than the bounds
        self.assertTrue(all(r["x"][0] <= x <= r["x"][1] for x in path[0]))
        self.assertTrue(all(r["y"][0] <= y <= r["y"][1] for y in path[1]))
        self.assertLess(r["x"][1] - r["x"][0], 0.5 * 15)
        self.assertLess(r["y"][1] - r["y"][0], 0.5 * 15)
        # the zoomed view gets a grid of its own (the coarse one, stretched, would be a blur)
        detail = "return document.getElementById('plot-contour-map').dataset.detail"
        self.wait().until(lambda d: d.execute_script(detail) == "1")
        self.full_screenshot("plots-contour-zoomed")
        # stepping through the replay keeps the zoomed view where it is (the path stays inside it)
        self.find("body").send_keys(Keys.HOME)
        self.wait().until(lambda d: d.execute_script(
            "return document.getElementById('plot-contour').data.find(t => t.name === 'best point').x.length") == 1)
        self.assertEqual(self.ranges("plot-contour")["x"], r["x"])
        back.click()
        self.wait().until(lambda d: self.ranges("plot-contour")["x"][1] > 9.99)
        self.wait().until(lambda d: d.execute_script(detail) == "0")  # the whole map needs no detail
        self.assertAlmostEqual(self.ranges("plot-contour")["x"][0], -5, places=6)
        self.assertEqual(back.get_attribute("aria-pressed"), "true")
        # a phone: the buttons wrap inside the card, nothing makes the page scroll sideways
        self.phone(900)
        too_wide = """
          const w = document.documentElement.clientWidth;
          return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1
            && !e.closest('.table-responsive')).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className);"""
        self.wait(5).until(lambda d: d.execute_script(too_wide) == [])
        self.browser.execute_script("document.getElementById('plot-contour').scrollIntoView()")
        time.sleep(0.3)
        self.screenshot("plots-contour-narrow")
        self.assertEqual(self.console_errors(), [])

    def test_the_legend_lists_only_what_the_method_draws(self):
        lb = real_run(self.alice, spec_for("lbfgsb"))
        self.open_run(lb)
        self.find("body").send_keys(Keys.HOME)
        for _ in range(4):
            self.find("body").send_keys(Keys.ARROW_RIGHT)
        self.wait().until(lambda d: "line search" in self.legend("plot-contour"))
        entries = self.legend("plot-contour")
        self.assertIn("best point", entries)
        self.assertNotIn("population", entries)
        self.screenshot("plots-legend-lbfgsb")

        de = real_run(self.alice, spec_for("de"))
        self.open_run(de)
        self.find("body").send_keys(Keys.HOME)
        self.wait().until(lambda d: "population" in self.legend("plot-contour"))
        entries = self.legend("plot-contour")
        self.assertIn("best point", entries)
        self.assertNotIn("line search", entries)
        # an empty trace has no entry: a single-series convergence plot has no legend at all
        self.assertEqual(self.legend("plot-convergence"), [])
        self.screenshot("plots-legend-de")
        self.assertEqual(self.console_errors(), [])

    def test_run_labels_reach_the_legend_as_plain_text(self):
        a = real_run(self.alice, spec_for("lbfgsb"), label=HTML_LABEL)
        b = real_run(self.alice, spec_for("de"), label="plain")
        self.browser.get(self.url(f"/runs/compare/?ids={a.pk},{b.pk}"))
        self.wait_for("#compare[data-ready='1']")
        self.wait().until(lambda d: len(self.legend("convergence-plot")) == 2)
        entries = self.legend("convergence-plot")
        # as typed (compare cuts labels longer than 28 characters to 27 and "…")
        self.assertTrue(any(HTML_LABEL[:27] in e for e in entries), entries)
        legend = self.find("#convergence-plot").find_element(By.XPATH, "preceding-sibling::div[@class='plot-tools']")
        self.assertEqual(legend.find_elements(By.CSS_SELECTOR, "a, b"), [])
        # nor anything Plotly draws: no link, no bold text in the plot
        self.assertEqual(self.find_all("#convergence-plot a"), [])
        bold = self.browser.execute_script(
            "return [...document.querySelectorAll('#convergence-plot tspan')].filter(t => /bold/.test(t.getAttribute('style') || '')).length")
        self.assertEqual(bold, 0)
        self.screenshot("plots-escaped-label")
        self.assertEqual(self.console_errors(), [])


class PlotClassesTests(PageShots, BrowserTestCase):
    """ConvergencePlot and ContourPlot driven directly, on the run page of a stored run."""

    def setUp(self):
        super().setUp()
        alice = self.create_user("alice")
        self.log_in("alice")
        run = real_run(alice, spec_for("lbfgsb"))
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        self.wait_for("#steps-body tr.current")
        self.browser.set_script_timeout(30)
        url = self.browser.execute_async_script(IMPORT_PLOTS)
        self.assertFalse(str(url).startswith("failed"), url)
        # A card of our own at the top of the page for the plots under test.
        self.browser.execute_script("""
          const card = document.createElement('div');
          card.className = 'card m-2'; card.id = 'test-card';
          card.innerHTML = '<div class="card-body p-1"><div id="test-plot" class="plot" style="height: 360px"></div></div>';
          document.querySelector('main, body').prepend(card);
          window.scrollTo(0, 0);""")

    def run_js(self, body):
        return self.browser.execute_script(
            "const { ConvergencePlot, ContourPlot, plotText } = window.plotsModule; const el = document.getElementById('test-plot');"
            + body)

    def settle(self):
        """Two animation frames and the contour's minimum interval."""
        self.browser.execute_async_script(
            "const done = arguments[0]; setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(done)), 250);")

    def test_a_1d_grid_draws_f_of_x_with_the_path_and_population_on_it(self):
        self.run_js("""
          const f = (x) => 10 + x * x - 10 * Math.cos(2 * Math.PI * x);   // Rastrigin, 1-D
          const x = Array.from({ length: 201 }, (_, i) => -5.12 + 10.24 * i / 200);
          window.ct = new ContourPlot(el);
          ct.setAxes('x[0]', 'x[0]');
          ct.setGrid({ problem: 'rastrigin', dim: 1, ix: 0, x, z: x.map(f) });
          const path = [3.1, 2.2, 1.05, 0.98, 0.02, 0.001];
          ct.setPath('run', path, path.map(f), { name: 'best point' });
          const pop = [-4, -2.5, -1, 0.5, 1.9, 3.3, 4.6];
          ct.setPopulation(pop.map((p) => [p, f(p)]));
          ct.setMarker(0.001, f(0.001));
          ct.setMinimum(0, 0);""")
        self.settle()
        traces = self.run_js("return el.data.map(t => [t.type, t.mode, t.name, t.x.length, t.y.length]);")
        self.assertEqual(traces[0][:2], ["scatter", "lines"])
        self.assertEqual(traces[0][3:], [201, 201])
        names = [t[2] for t in traces]
        for name in ("best point", "known minimum", "current"):
            self.assertIn(name, names)
        self.assertEqual(self.run_js("return el.drawnPoints.population.x.length"), 7)  # on the point layer
        # overlays sit on the curve: y is f(x)
        ok = self.run_js("""
          const f = (x) => 10 + x * x - 10 * Math.cos(2 * Math.PI * x);
          const t = el.drawnPoints.population;
          return t.x.every((x, i) => Math.abs(t.y[i] - f(x)) < 1e-12);""")
        self.assertTrue(ok)
        r = self.browser.execute_script(RANGES, "test-plot")
        self.assertEqual(r["xtype"], "linear")
        self.assertAlmostEqual(r["x"][0], -5.12, places=6)
        self.assertEqual(self.run_js("return el.layout.yaxis.title.text"), "f")
        self.assertEqual(self.run_js("return el.layout.xaxis.title.text"), "x[0]")
        self.assertEqual(self.browser.execute_script(LEGEND, "test-plot"), ["population", "best point", "known minimum"])
        self.screenshot("plots-1d")
        # zoom to the path in 1-D: x narrows to the path, y to f over that stretch
        self.run_js("ct.setView('path')")
        self.settle()
        z = self.browser.execute_script(RANGES, "test-plot")
        self.assertLess(z["x"][1] - z["x"][0], 5)
        self.assertLessEqual(z["x"][0], 0.001)
        self.assertGreaterEqual(z["x"][1], 3.1)
        self.assertLess(z["y"][1], 45)
        # a finer stretch of the line replaces the grid's inside its range (a zoomed view's detail)
        self.run_js("""
          const f = (x) => 10 + x * x - 10 * Math.cos(2 * Math.PI * x);
          const x = Array.from({ length: 401 }, (_, i) => -0.5 + 4 * i / 400);
          ct.setDetail({ x, z: x.map(f) });""")
        self.settle()
        line = self.run_js("const t = el.data[0]; return [t.x.length, t.x.every((v, i) => i === 0 || v > t.x[i - 1])]")
        self.assertEqual(line, [201 - 78 + 401, True])  # 78 of the 201 grid points lie in [-0.5, 3.5]
        self.screenshot("plots-1d-zoomed")
        self.assertEqual(self.console_errors(), [])

    def test_the_map_is_rastered_by_its_worker_as_the_page_would_and_a_zoom_shows_at_once(self):
        self.run_js("""
          const n = 41, x = [], y = [], z = [];
          for (let i = 0; i < n; i++) { x.push(-5 + 15 * i / (n - 1)); y.push(-5 + 15 * i / (n - 1)); }
          y.forEach((b, j) => z.push(x.map((a, i) => (i === 20 && j === 20 ? null : (1 - a) ** 2 + 100 * (b - a * a) ** 2))));
          window.ct = new ContourPlot(el, { minInterval: 0 });
          ct.setGrid({ x, y, z });""")
        drawn = "return Number(document.getElementById('test-plot-map').dataset.drawn)"
        self.wait().until(lambda d: d.execute_script(drawn) > 0)
        self.assertEqual(self.find("#test-plot-map").get_attribute("data-maker"), "worker")
        # The worker's pixels are those the same raster gives on the page's own thread.
        same = """
          const done = arguments[arguments.length - 1];
          const L = ct.mapLayer, c = L.canvas, r = L.shown;
          const url = performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/maprender(\\.[0-9a-f]+)?\\.js/.test(n))
            || new URL("maprender.js", performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/plots/.test(n))).href;
          import(url).then((m) => {
            const px = m.raster(L.grid.packed, { x0: r.x0, x1: r.x1, y0: r.y0, y1: r.y1, pw: r.bitmap.width, ph: r.bitmap.height });
            const off = new OffscreenCanvas(r.bitmap.width, r.bitmap.height), g = off.getContext('2d');
            g.drawImage(r.bitmap, 0, 0);
            const got = g.getImageData(0, 0, off.width, off.height).data;
            let differ = 0, holes = 0;
            for (let i = 0; i < px.length; i++) if (px[i] !== got[i]) differ++;
            for (let i = 3; i < px.length; i += 4) if (px[i] === 0) holes++;
            done({ differ, holes, pixels: px.length / 4, w: off.width });
          }, (e) => done({ error: String(e) }));"""
        result = self.browser.execute_async_script("const { ConvergencePlot, ContourPlot } = window.plotsModule;" + same)
        self.assertEqual(result["differ"], 0, result)
        self.assertGreater(result["pixels"], 100_000, result)
        self.assertGreater(result["holes"], 0, result)  # the null at x[20], y[20] leaves a hole, as Plotly would
        # A zoom: in the same task the map is there, moved and scaled from the raster it had
        # (not exact yet: data-drawn 0); the exact raster follows from the worker.
        now = self.browser.execute_async_script("""
          const done = arguments[arguments.length - 1], el = document.getElementById('test-plot');
          Plotly.relayout(el, {'xaxis.range': [-2, 3], 'yaxis.range': [-1, 4]}).then(() => {
            const c = ct.mapLayer.canvas, g = c.getContext('2d');  // no task has run since: no answer from the worker
            const a = g.getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 3; i < a.length; i += 4) if (a[i]) painted++;
            done({ drawn: Number(c.dataset.drawn), painted, all: a.length / 4 });
          });""")
        self.assertEqual(now["drawn"], 0, now)
        self.assertGreater(now["painted"], 0.4 * now["all"], now)
        self.wait().until(lambda d: d.execute_script(drawn) > 0)
        exact = self.run_js("const r = ct.mapLayer.shown; return [r.x0, r.x1, r.y0, r.y1];")
        self.assertEqual(exact, [-2, 3, -1, 4])
        self.screenshot("plots-map-zoomed")
        self.assertEqual(self.console_errors(), [])

    def test_a_constrained_problems_infeasible_region_is_shaded_with_its_edge(self):
        # Rosenbrock on the disk x² + y² ≤ 2, as the grid endpoint gives it (infeasibility ≤ 0 inside).
        self.run_js("""
          const n = 61, x = [], y = [], z = [], infeasibility = [];
          for (let i = 0; i < n; i++) { x.push(-1.5 + 3 * i / (n - 1)); y.push(-1.5 + 3 * i / (n - 1)); }
          for (const b of y) {
            z.push(x.map((a) => (1 - a) ** 2 + 100 * (b - a * a) ** 2));
            infeasibility.push(x.map((a) => a * a + b * b - 2));  // -g for g = 2 - x² - y² >= 0
          }
          window.ct = new ContourPlot(el, { minInterval: 0 });
          ct.setGrid({ x, y, z, infeasibility });""")
        self.wait().until(lambda d: d.execute_script(
            "return Number(document.getElementById('test-plot-map').dataset.drawn) > 0"))
        self.assertIn("infeasible (shaded)", self.browser.execute_script(LEGEND, "test-plot"))
        # The same raster with and without the infeasibility: equal inside the disk, lighter outside.
        probe = """
          const done = arguments[arguments.length - 1];
          const L = ct.mapLayer, r = L.shown, url = new URL("maprender.js", performance.getEntriesByType("resource")
            .map(e => e.name).find(n => /\\/plots/.test(n))).href;
          const resource = performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/maprender/.test(n));
          import(resource || url).then((m) => {
            const job = { x0: r.x0, x1: r.x1, y0: r.y0, y1: r.y1, pw: r.bitmap.width, ph: r.bitmap.height };
            const shaded = m.raster(L.grid.packed, job);
            const plain = m.raster({ ...L.grid.packed, main: { ...L.grid.packed.main, v: null } }, job);
            const at = (X, Y) => { // a data point's pixel in the raster
              const c = Math.floor((X - r.x0) / (r.x1 - r.x0) * job.pw), rr = Math.floor((r.y1 - Y) / (r.y1 - r.y0) * job.ph);
              const o = 4 * (rr * job.pw + c);
              return [[...shaded.slice(o, o + 3)], [...plain.slice(o, o + 3)]];
            };
            done({ inside: at(0.3, 0.4), outside: at(1.4, 1.4) });
          }, (e) => done({ error: String(e) }));"""
        got = self.browser.execute_async_script("const { ContourPlot } = window.plotsModule;" + probe)
        self.assertNotIn("error", got)
        self.assertEqual(got["inside"][0], got["inside"][1])
        self.assertGreater(sum(got["outside"][0]), sum(got["outside"][1]) + 60)  # washed towards white
        self.screenshot("plots-infeasible-shaded")
        self.assertEqual(self.console_errors(), [])

    def test_the_population_is_drawn_on_the_overlays_axes_and_follows_a_zoom(self):
        # The population lives on a canvas under the overlay: its pixels must sit where Plotly puts
        # the same coordinates (the known minimum, an SVG marker, is at the first member).
        self.run_js("""
          const n = 41, x = [], y = [], z = [];
          for (let i = 0; i < n; i++) { x.push(-5 + 15 * i / (n - 1)); y.push(-5 + 15 * i / (n - 1)); }
          for (const b of y) z.push(x.map((a) => (1 - a) ** 2 + 100 * (b - a * a) ** 2));
          window.ct = new ContourPlot(el, { minInterval: 0 });
          ct.setGrid({ x, y, z });
          ct.setMinimum(1, 1);
          ct.setPopulation([[1, 1], [-2, 3], [6, -4]]);""")
        self.settle()
        probe = """
          const L = el._fullLayout, c = el.parentNode.querySelector('canvas.contour-points');
          const dpr = window.devicePixelRatio || 1, g = c.getContext('2d');
          const at = (x, y) => [L._size.l + L.xaxis.l2p(x), L._size.t + L.yaxis.l2p(y)];
          const alpha = ([X, Y]) => g.getImageData(Math.round(X * dpr) + 3 * dpr - 1, Math.round(Y * dpr), 1, 1).data[3];
          const star = el.querySelector('.scatterlayer .trace:last-child .point').getBoundingClientRect();
          const box = el.getBoundingClientRect();
          return { star: [star.left + star.width / 2 - box.left, star.top + star.height / 2 - box.top],
                   first: at(1, 1), ring: [alpha(at(1, 1)), alpha(at(-2, 3)), alpha(at(6, -4))],
                   empty: alpha(at(8, 8)) };"""
        before = self.run_js(probe)
        self.assertAlmostEqual(before["first"][0], before["star"][0], delta=1.5)
        self.assertAlmostEqual(before["first"][1], before["star"][1], delta=1.5)
        self.assertTrue(all(a > 0 for a in before["ring"]), before)  # each member's ring is drawn
        self.assertEqual(before["empty"], 0)
        self.screenshot("plots-points-full")
        # A zoom moves them with the axes (and the member outside the new view is not drawn).
        self.run_js("Plotly.relayout(el, {'xaxis.range': [-3, 2], 'yaxis.range': [0, 4]})")
        self.settle()
        after = self.run_js(probe)
        self.assertNotEqual(after["first"], before["first"])
        self.assertAlmostEqual(after["first"][0], after["star"][0], delta=1.5)
        self.assertAlmostEqual(after["first"][1], after["star"][1], delta=1.5)
        self.assertTrue(after["ring"][0] > 0 and after["ring"][1] > 0, after)
        self.assertEqual(after["ring"][2], 0)  # (6, -4) is outside the zoomed view
        # Pointing at a member names it.
        tip = self.run_js("""
          const L = el._fullLayout, box = el.getBoundingClientRect();
          const X = box.left + L._size.l + L.xaxis.l2p(-2), Y = box.top + L._size.t + L.yaxis.l2p(3);
          el.dispatchEvent(new MouseEvent('mousemove', { clientX: X + 2, clientY: Y - 1, bubbles: true }));
          const t = el.parentNode.querySelector('.plot-tip');
          return { hidden: t.hidden, text: t.textContent };""")
        self.assertEqual(tip, {"hidden": False, "text": "member 2 · x[0] −2, x[1] 3"})
        # and at a point of a path (named by the same tip: the path's trace has no hover text per point)
        self.run_js("ct.setPath('run', [-2.5, 0.5], [0.5, 2.5], { name: 'best point' })")
        self.settle()
        tip = self.run_js("""
          const L = el._fullLayout, box = el.getBoundingClientRect();
          el.dispatchEvent(new MouseEvent('mousemove', { bubbles: true,
            clientX: box.left + L._size.l + L.xaxis.l2p(0.5), clientY: box.top + L._size.t + L.yaxis.l2p(2.5) }));
          return el.parentNode.querySelector('.plot-tip').textContent;""")
        self.assertEqual(tip, "best point · x[0] 0.5, x[1] 2.5")
        self.screenshot("plots-points-zoomed")
        self.assertEqual(self.console_errors(), [])

    def test_legend_entries_hide_and_show_what_they_name(self):
        self.run_js("""
          window.cp = new ConvergencePlot(el, { fstar: 0 });
          cp.addSeries('a', 'DE'); cp.addSeries('b', 'L-BFGS-B');
          cp.extend('a', [0, 1, 2], [3, 2, 1]); cp.extend('b', [0, 1, 2], [4, 1, 0.5]);""")
        self.settle()
        buttons = lambda: self.find("#test-card").find_elements(By.CSS_SELECTOR, ".plot-legend-item")  # noqa: E731
        visible = "return el.data.filter(t => t.uid && t.uid.startsWith('series-')).map(t => t.visible)"
        self.assertEqual([b.text for b in buttons()], ["DE", "L-BFGS-B"])
        self.assertEqual(self.run_js(visible), [True, True])
        buttons()[0].click()
        self.wait().until(lambda d: self.run_js(visible) == [False, True])
        self.assertEqual(buttons()[0].get_attribute("aria-pressed"), "false")
        self.screenshot("plots-legend-hidden")
        # keyboard: the entry is a button
        self.browser.execute_script("arguments[0].focus()", buttons()[0])
        buttons()[0].send_keys(Keys.ENTER)
        self.wait().until(lambda d: self.run_js(visible) == [True, True])
        self.assertEqual(buttons()[0].get_attribute("aria-pressed"), "true")
        # the map's population (a canvas layer) and its paths hide the same way
        self.run_js("""
          cp.destroy();
          window.ct = new ContourPlot(el, { minInterval: 0 });
          ct.setGrid({ x: [-5, 0, 5], y: [-5, 0, 5], z: [[2, 1, 2], [1, 0, 1], [2, 1, 2]] });
          ct.setPopulation([[1, 1], [-2, 3]]);
          ct.setPath('run', [0, 1], [0, 1], { name: 'best point' });""")
        self.settle()
        self.assertEqual([b.text for b in buttons()], ["population", "best point"])
        buttons()[0].click()
        self.wait().until(lambda d: self.run_js("return 'population' in el.drawnPoints") is False)
        buttons()[1].click()
        self.wait().until(lambda d: self.run_js("return el.data.some(t => t.name === 'best point')") is False)
        buttons()[0].click()
        self.wait().until(lambda d: self.run_js("return el.drawnPoints.population && el.drawnPoints.population.x.length") == 2)
        self.assertEqual(self.console_errors(), [])

    def test_the_zoomed_view_follows_a_live_path_without_jumping(self):
        # 200 frames of a path spiralling out from (1, 1); each frame the page gives the whole path.
        result = self.browser.execute_async_script("""
          const done = arguments[0];
          const { ContourPlot } = window.plotsModule;
          const el = document.getElementById('test-plot');
          const n = 41, x = [], y = [], z = [];
          for (let i = 0; i < n; i++) { x.push(-5 + 15 * i / (n - 1)); y.push(-5 + 15 * i / (n - 1)); }
          for (const b of y) z.push(x.map((a) => (1 - a) ** 2 + 100 * (b - a * a) ** 2));
          const ct = new ContourPlot(el, { minInterval: 0 });
          ct.setGrid({ x, y, z });
          ct.setView('path');
          const px = [], py = [], views = [];
          let outside = 0, k = 0;
          const frame = () => {
            const r = 0.02 + 0.015 * k, t = k / 6;
            px.push(1 + r * Math.cos(t)); py.push(1 + r * Math.sin(t));
            ct.setPath('run', px, py, { name: 'best point' });
            ct.setMarker(px[k], py[k]);
            k++;
            requestAnimationFrame(() => requestAnimationFrame(() => {
              // What is drawn (a slow draw may land a frame later): the drawn path inside the drawn view.
              const L = el._fullLayout, rx = L.xaxis.range, ry = L.yaxis.range;
              const t = el.data.find((t) => t.name === 'best point');
              views.push(JSON.stringify([rx, ry]));
              if (t && t.x.some((v, i) => v < rx[0] || v > rx[1] || t.y[i] < ry[0] || t.y[i] > ry[1])) outside++;
              if (k < 200) frame(); else done({ changes: new Set(views).size, outside, last: [rx, ry] });
            }));
          };
          frame();""")
        self.assertEqual(result["outside"], 0, result)  # the whole path always in view
        self.assertLessEqual(result["changes"], 12, result)  # widened in steps, not every frame
        self.assertLess(result["last"][0][1] - result["last"][0][0], 15)  # still zoomed in
        self.screenshot("plots-zoom-follows")

    def test_every_text_is_shown_literally(self):
        self.run_js(f"""
          const label = {HTML_LABEL!r};
          window.cp = new ConvergencePlot(el, {{ fstar: 0, xTitle: label, emptyText: label }});
          cp.addSeries('a', label); cp.addSeries('b', 'second %{{x}}'); cp.addSeries('c', 'no points yet');
          cp.extend('a', [0, 1, 2], [3, 2, 1]); cp.extend('b', [0, 1, 2], [4, 1, 0.5]);""")
        self.settle()
        svg_text = self.run_js("return el.textContent")
        self.assertIn(HTML_LABEL, svg_text)  # the x-axis title
        legend = self.run_js("return el.previousElementSibling.querySelector('.plot-legend').textContent")
        self.assertIn(HTML_LABEL, legend)
        self.assertIn("second %{x}", legend)
        self.assertEqual(self.browser.execute_script(LEGEND, "test-plot"), [HTML_LABEL, "second %{x}"])  # not the empty one
        self.assertEqual(self.run_js("return el.previousElementSibling.querySelectorAll('.plot-legend a, .plot-legend b').length"), 0)
        self.assertEqual(self.run_js("return el.querySelectorAll('a').length"), 0)
        self.assertEqual(self.run_js(
            "return [...el.querySelectorAll('tspan')].filter(t => /bold/.test(t.getAttribute('style') || '')).length"), 0)
        self.assertEqual(self.run_js("return window.plotsModule.plotText('<b>&%')"), "&lt;b&gt;&amp;&#37;")
        self.run_js(f"""
          cp.destroy();
          window.ct = new ContourPlot(el, {{}});
          ct.setAxes({HTML_LABEL!r}, 'y <i>it</i>');
          ct.setPath('p', [0, 1], [0, 1], {{ name: {HTML_LABEL!r} }});
          ct.setMessage({HTML_LABEL!r});""")
        self.settle()
        svg_text = self.run_js("return el.textContent")
        self.assertIn(HTML_LABEL, svg_text)
        self.assertIn("y <i>it</i>", svg_text)
        self.assertEqual(self.run_js("return el.querySelectorAll('a').length"), 0)
        # default axis titles follow the site's rule
        self.run_js("ct.destroy(); window.ct = new ContourPlot(el); ct.setGrid({ x: [0, 1], y: [0, 1], z: [[0, 1], [1, 2]] });")
        self.settle()
        self.assertEqual(self.run_js("return [el.layout.xaxis.title.text, el.layout.yaxis.title.text]"), ["x[0]", "x[1]"])
        self.assertEqual(self.console_errors(), [])

    def test_long_live_series_cost_one_plotly_call_per_frame_and_a_bounded_drawing(self):
        # Counts every Plotly call per plot per animation frame while 100,000 points stream in.
        result = self.browser.execute_async_script("""
          const done = arguments[0];
          const { ConvergencePlot, ContourPlot } = window.plotsModule;
          const el = document.getElementById('test-plot');
          const frames = new Map(); let frame = 0, calls = 0;
          for (const name of ['react', 'extendTraces', 'newPlot', 'relayout', 'restyle']) {
            const f = Plotly[name];
            Plotly[name] = function (gd, ...rest) {
              if (gd === el) { calls++; frames.set(frame, (frames.get(frame) || 0) + 1); }
              return f.call(this, gd, ...rest);
            };
          }
          const tick = () => { frame++; if (frame < 1e9) requestAnimationFrame(tick); };
          requestAnimationFrame(tick);
          const cp = new ConvergencePlot(el, { fstar: 0 });
          cp.addSeries('run', 'run');
          let i = 0;
          const step = () => {
            for (let k = 0; k < 2000; k++, i++) cp.extend('run', [i], [24 * Math.exp(-i / 9000) + 1e-12]);
            if (i < 100000) requestAnimationFrame(step);
            else setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(() => done({
              calls, maxPerFrame: Math.max(...frames.values()), drawn: el.data[0].x.length,
              last: el.data[0].x[el.data[0].x.length - 1], kinds: null,
            }))), 100);
          };
          requestAnimationFrame(step);""")
        # 50 frames of 2,000 single-point extend() calls each
        self.assertLessEqual(result["maxPerFrame"], 1, result)
        self.assertLessEqual(result["calls"], 60, result)
        self.assertLessEqual(result["drawn"], 4000, result)
        self.assertEqual(result["last"], 99999, result)  # thinned, but the newest point is drawn
        self.screenshot("plots-long-series")
        self.assertEqual(self.console_errors(), [])
