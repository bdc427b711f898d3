"""Studies in a real Chromium against the live daphne server and its workers: a study made on the
New study page (a field error first, then the launch), watched while it runs and read after it
ends (bands, targets, ECDF, budgets, the runs table, two runs opened on the compare page), and a
running study paused, resumed and stopped from its page."""

import time

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from runs.models import Run, Study
from tests.browser import BrowserTestCase
from tests.test_browser_live import PageShots

# What the study page showed, in order: its status and its "n of N runs ended" line.
RECORD_PROGRESS = """
window.__progress = [];
const status = document.getElementById("study-status"), text = document.getElementById("progress-text");
const note = () => { const t = `${status.textContent} | ${text.textContent}`;
  if (window.__progress[window.__progress.length - 1] !== t) window.__progress.push(t); };
note();
new MutationObserver(note).observe(status, { childList: true, characterData: true, subtree: true });
new MutationObserver(note).observe(text, { childList: true, characterData: true, subtree: true });
"""

POST_STUDY = """
const [spec, done] = arguments;
const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).slice(10);
fetch("/api/studies/", { method: "POST", credentials: "same-origin",
  headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(spec) })
  .then((r) => r.json().then((b) => done([r.status, b])));
"""

# A study that lasts: DE runs that cannot converge early, one worker's worth each.
LONG_STUDY = {"problem": "rastrigin", "dim": 10, "x0": "random", "repeats": 3, "label": "long",
              "configs": [{"method": "de", "options": {"maxiter": 20000, "popsize": 40, "tol": 0,
                                                       "strategy": "rand1bin", "polish": False}}]}


class StudyPageTests(PageShots, BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.create_user("alice")
        self.log_in("alice")
        self.addCleanup(self.stop_everything)

    # -- helpers ------------------------------------------------------------------------------
    def until(self, check, timeout=60, what="the condition"):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def stop_everything(self):
        # The database goes after each test: the live server's workers must be done with its runs.
        for study in Study.objects.all():
            if study.runs.filter(status__in=Run.ACTIVE).exists():
                try:
                    self.browser.execute_async_script("""
                      const [id, done] = arguments;
                      const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).slice(10);
                      fetch(`/api/studies/${id}/stop/`, { method: "POST", headers: { "X-CSRFToken": csrf } }).then(() => done());
                    """, study.pk)
                except Exception:
                    pass
        self.until(lambda: not Run.objects.filter(status__in=Run.ACTIVE).exists(), 120, "every run to end")

    def plot_traces(self, plot_id: str, kind: str | None = None) -> int:
        return self.browser.execute_script(
            "const el = document.getElementById(arguments[0]); if (!el || !el.data) return 0;"
            "return el.data.filter((t) => !arguments[1] || t.type === arguments[1]).filter((t) => t.showlegend !== false"
            " && t.y && t.y.length).length", plot_id, kind)

    def field_errors(self, key: str) -> list[str]:
        return [e.text for e in self.find_all(f'.field-error[data-key="{key}"]')]

    def post_study(self, spec) -> dict:
        status, body = self.browser.execute_async_script(POST_STUDY, spec)
        self.assertEqual(status, 201, body)
        return body["study"]

    # -- tests --------------------------------------------------------------------------------
    def test_make_a_study_on_the_form_watch_it_run_and_read_it_when_it_has_ended(self):
        self.browser.get(self.url("/studies/"))
        self.wait_for("#empty-studies")
        self.find("#empty-studies a.btn").click()
        self.wait_for("#study-form[data-ready='1']")
        # the defaults: Rastrigin 2-D, DE and L-BFGS-B from random starts, 20 repeats
        self.assertEqual(Select(self.find("#sf-problem")).first_selected_option.get_attribute("value"), "rastrigin")
        self.assertEqual(len(self.find_all(".study-config")), 2)
        self.assertIn("2 configurations × 20 repeats = 40 runs", self.find("#sf-count").text)
        # a configuration added takes the keyboard's focus at its method; removed, the focus stays in the list
        self.find("#sf-add-config").click()
        self.assertEqual(len(self.find_all(".study-config")), 3)
        added = self.find_all(".study-config")[2]
        self.assertEqual(self.browser.switch_to.active_element, added.find_element("css selector", "[data-part=method]"))
        self.assertIn("3 configurations × 20 repeats = 60 runs", self.find("#sf-count").text)
        added.find_element("css selector", "[data-part=remove]").send_keys(Keys.ENTER)
        self.assertEqual(len(self.find_all(".study-config")), 2)
        self.assertEqual(self.browser.switch_to.active_element.get_attribute("aria-label"), "Remove configuration 2")
        # more runs than a study may make: said before launching
        self.set_field("#sf-repeats", "150")
        self.assertIn("more than the 200 a study may make", self.find("#sf-count").text)
        # a bad value is refused at its field, in words
        self.set_field("#sf-repeats", "0")
        self.find("#sf-repeats").send_keys(Keys.ENTER)  # Enter in a field launches, as in any form
        self.wait().until(lambda d: self.field_errors("repeats"))
        self.assertTrue(self.find("#sf-repeats").get_attribute("class").count("is-invalid"))
        self.assertIn("1", self.field_errors("repeats")[0])
        self.assertEqual(self.browser.switch_to.active_element, self.find("#sf-repeats"))  # focus goes to it
        self.screenshot("study-new-error")
        # ... and one inside a configuration, at that configuration's option
        self.set_field("#sf-repeats", "3")
        self.assertIn("2 configurations × 3 repeats = 6 runs", self.find("#sf-count").text)
        self.assertEqual(self.field_errors("repeats"), [])  # an edited field drops its old error
        de = self.find_all(".study-config")[0]
        maxiter = de.find_element("css selector", "[data-opt=maxiter] input")
        maxiter.send_keys("-5")
        self.find("#sf-launch").click()
        self.wait().until(lambda d: self.field_errors("configs[0].options.maxiter"))
        self.assertTrue(self.find("#sf-alert").is_displayed())
        # a DE that lasts a few seconds: 6-D, tol 0, rand1bin (under "More options")
        self.set_field("#sf-dim", "6")
        self.find("#sf-dim").send_keys(Keys.TAB)
        self.assertEqual(len(self.find_all("#sf-bounds-rows .bounds-row")), 6)
        maxiter.clear()
        maxiter.send_keys("1500")
        de.find_element("css selector", "[data-opt=popsize] input").send_keys("10")
        de.find_element("css selector", "[data-opt=tol] input").send_keys("0")
        de.find_element("css selector", "[data-opt=polish] select").send_keys("f")  # keyboard: "false"
        de.find_element("css selector", "details.more-options summary").click()
        Select(de.find_element("css selector", "[data-opt=strategy] select")).select_by_value("rand1bin")
        self.find("#sf-label").send_keys("DE vs L-BFGS-B")
        self.screenshot("study-new")
        self.find("#sf-launch").click()
        self.wait().until(lambda d: "/studies/new/" not in d.current_url)
        study = Study.objects.get()
        self.assertTrue(self.browser.current_url.endswith(f"/studies/{study.pk}/"))
        self.assertEqual([c["options"] for c in study.spec["configs"]],
                         [{"maxiter": 1500, "popsize": 10, "tol": 0, "polish": False, "strategy": "rand1bin"}, {}])
        self.assertEqual((study.spec["dim"], study.spec["repeats"], study.spec["x0"]), (6, 3, "random"))

        # live: the progress moves, the bands are drawn while runs go
        self.wait_for("#study[data-ready='1']")
        self.browser.execute_script(RECORD_PROGRESS)
        self.wait().until(lambda d: self.plot_traces("bands-plot") == 2)
        if self.find("#study").get_attribute("data-status") != "ended":
            self.screenshot("study-running")
        self.wait_text("#study-status", "ended", 120)
        seen = self.browser.execute_script("return window.__progress")
        self.assertGreaterEqual(len(seen), 2, seen)
        self.assertIn("6 of 6 runs ended", seen[-1])
        self.wait_for("#study[data-polling='0']")  # the last poll fetched the end's summary, and no more come
        for action in ("pause", "resume", "stop"):
            self.assertFalse(self.find(f"#btn-{action}").is_enabled(), action)

        # ended: the targets table, the ECDF, the budgets
        self.wait().until(lambda d: self.find('#targets-table tr[data-target="0"] .t-rate[data-config="0"]').text != "—")
        rates = [td.text for td in self.find_all('#targets-table tr[data-target="0"] .t-rate')]
        self.assertTrue(all(r.endswith("/3") for r in rates), rates)
        Select(self.find("#ecdf-target")).select_by_index(0)
        self.wait().until(lambda d: self.plot_traces("ecdf-plot") >= 1)
        self.wait().until(lambda d: self.plot_traces("budgets-plot", "box") >= 1)
        # read in one script: the choices are drawn again when a summary comes, and an element
        # found a moment before may be gone
        checked = "return [...document.querySelectorAll('.budget-choice:checked')].map((e) => e.value)"
        chosen = self.browser.execute_script(checked)
        self.assertTrue(chosen)
        value = self.browser.execute_script(
            "return [...document.querySelectorAll('.budget-choice')].find((e) => !e.checked).value")
        self.tap(f"label[for=budget-{value}]")
        self.wait().until(lambda d: value in d.current_url.split("budgets=", 1)[-1].split(","))  # a link to this view
        self.wait().until(lambda d: value in d.execute_script(checked))
        categories = "return document.getElementById('budgets-plot').layout.xaxis.categoryarray.length"
        self.wait().until(lambda d: d.execute_script(categories) == len(chosen) + 1)
        self.full_screenshot("study-ended")

        # the runs table: sorted by best f at a click (the rows move, they are not redrawn) ...
        first_row = self.find("#runs-table tbody tr")
        self.tap("#runs-table th[data-sort=best_fun] button")
        bests = [float(td.text.replace("−", "-")) for td in self.find_all("#runs-table tbody .c-best")]
        self.assertEqual(bests, sorted(bests))
        self.assertEqual(self.find("#runs-table th[data-sort=best_fun]").get_attribute("aria-sort"), "ascending")
        self.assertTrue(first_row.is_displayed())  # the same element, moved
        # ... every row links its run; two picked open side by side
        rows = self.find_all("#runs-table tbody tr")
        self.assertEqual(len(rows), 6)
        ids = [int(r.get_attribute("data-run-id")) for r in rows]
        self.assertEqual(sorted(ids), sorted(study.runs.values_list("pk", flat=True)))
        for r in rows:
            link = r.find_element("css selector", "a.run-link")
            self.assertTrue(link.get_attribute("href").endswith(f"/runs/{r.get_attribute('data-run-id')}/"))
            self.assertIn(r.find_element("css selector", ".c-status .badge").text, ("finished",))
        self.assertFalse(self.find("#compare-picked").is_enabled())
        self.tap(f"#pick-{ids[0]}")
        self.tap(f"#pick-{ids[3]}")
        self.assertTrue(self.find("#compare-picked").is_enabled())
        self.tap("#compare-picked")
        self.wait().until(lambda d: "/runs/compare/" in d.current_url)
        self.assertTrue(self.browser.current_url.endswith(f"/runs/compare/?ids={ids[0]},{ids[3]}"))
        self.wait_for("#compare[data-ready='1']")
        self.assertEqual({int(c.get_attribute("data-run-id")) for c in self.find_all(".run-chip")}, {ids[0], ids[3]})
        refused = "/api/studies/ - Failed to load resource: the server responded with a status of 400"  # the two refusals
        self.assertEqual([e for e in self.console_errors() if refused not in e], [])

        # the list shows the study, ended
        self.browser.get(self.url("/studies/"))
        row = self.find(f"#study-{study.pk}")
        self.assertIn("6/6", row.text)
        self.assertIn("ended", row.text)
        self.screenshot("studies")

    def test_pause_resume_and_stop_a_running_study_from_its_page(self):
        self.browser.get(self.url("/studies/"))
        made = self.post_study(LONG_STUDY)
        self.browser.get(self.url(made["url"]))
        self.wait_for("#study[data-ready='1']")
        self.wait_text("#study-status", "running")
        self.wait().until(lambda d: self.plot_traces("bands-plot") == 1)
        self.assertTrue(self.find("#btn-stop").is_enabled())
        self.assertFalse(self.find("#btn-resume").is_enabled())
        self.find("#btn-pause").click()
        self.wait_text("#study-status", "paused")
        self.assertFalse(self.find("#btn-pause").is_enabled())
        self.assertTrue(self.find("#btn-resume").is_enabled())
        self.find("#btn-resume").click()
        self.wait_text("#study-status", "running")
        self.screenshot("study-live")
        self.find("#btn-stop").click()
        self.wait_text("#study-status", "ended", 60)
        self.wait_text("#progress-counts", "3 stopped")
        self.until(lambda: set(Run.objects.values_list("status", flat=True)) == {"stopped"}, 30, "the runs to stop")
        for action in ("pause", "resume", "stop"):
            self.assertFalse(self.find(f"#btn-{action}").is_enabled(), action)
        self.assertEqual(self.console_errors(), [])
        # on a phone nothing sticks out sideways (wide tables scroll in their own box)
        self.phone()
        self.browser.refresh()
        self.wait_for("#study[data-ready='1']")
        self.assert_fits("the study page")
        self.phone_screenshot("study-phone")
        # a second stop has nothing to take: the API says so in words
        status, body = self.browser.execute_async_script("""
          const [id, done] = arguments;
          const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).slice(10);
          fetch(`/api/studies/${id}/stop/`, { method: "POST", headers: { "X-CSRFToken": csrf } })
            .then((r) => r.json().then((b) => done([r.status, b])));
        """, made["id"])
        self.assertEqual(status, 409)
        self.assertIn("no run that can stop", body["error"])

    def test_a_runs_page_offers_its_study_and_its_study_against_the_counterpart(self):
        from tests.runs_factory import real_run

        alice = Study._meta.get_field("owner").related_model.objects.get(username="alice")
        run = real_run(alice, {"method": "de", "problem": "rastrigin", "dim": 2, "bounds": [[-5.12, 5.12]] * 2,
                               "options": {"maxiter": 10, "seed": 3}})
        self.browser.get(self.url(f"/runs/{run.pk}/"))
        repeat = self.wait_visible("#btn-study-repeat")
        self.assertEqual(repeat.text, "Repeat with 20 seeds")
        against = self.find("#btn-study-against")
        self.assertEqual(against.text, "… against L-BFGS-B")
        against.click()
        self.wait_for("#study-form[data-ready='1']")
        configs = self.find_all(".study-config")
        self.assertEqual([Select(c.find_element("css selector", "[data-part=method]")).first_selected_option
                          .get_attribute("value") for c in configs], ["de", "lbfgsb"])
        self.assertIn("2 configurations × 20 repeats = 40 runs", self.find("#sf-count").text)
        self.screenshot("study-from-run")
        self.assertEqual(self.console_errors(), [])
