"""History page in a real Chromium: filter, sort, relabel, delete, select and compare, live rows,
outcomes, the layout at 1400 px and on a 390 px phone, the count after deletes, escaped labels."""

import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from runs.models import Run, Step
from tests.browser import BrowserTestCase
from tests.runs_factory import real_run, spec_for, store


def full_height(browser) -> int:
    return int(browser.execute_script("return document.documentElement.scrollHeight"))


class HistoryPageTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.lb = real_run(self.alice, spec_for("lbfgsb"), label="L-BFGS-B from (-1.2, 1)")
        self.de = real_run(self.alice, spec_for("de"), label="DE, popsize 8")
        self.sphere = real_run(self.alice, spec_for("lbfgsb", "sphere", x0=[1.0, 2.0]), label="sphere check")
        self.log_in("alice")

    def row_ids(self):
        return [int(tr.get_attribute("data-run-id")) for tr in self.find_all("#history-table tbody tr")]

    def test_filter_sort_and_empty_state(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.assertEqual(self.row_ids(), [self.sphere.pk, self.de.pk, self.lb.pk])
        self.screenshot("history")
        # filter by method: choosing in the select applies at once
        Select(self.find("#f-method")).select_by_value("lbfgsb")
        self.wait().until(lambda d: "method=lbfgsb" in d.current_url)
        self.assertEqual(set(self.row_ids()), {self.lb.pk, self.sphere.pk})
        # sort by evaluations: first click ascending, second descending, filter kept
        self.find("th[data-sort-key=nfev] a").click()
        self.wait().until(lambda d: "sort=nfev" in d.current_url)
        self.assertIn("method=lbfgsb", self.browser.current_url)
        asc = self.row_ids()
        self.assertEqual(asc, [r.pk for r in sorted([self.lb, self.sphere], key=lambda r: r.nfev)])
        self.find("th[data-sort-key=nfev] a").click()
        self.wait().until(lambda d: "sort=-nfev" in d.current_url)
        self.assertEqual(self.row_ids(), asc[::-1])
        self.assertEqual(self.find("th[data-sort-key=nfev]").get_attribute("aria-sort"), "descending")
        # label search (Enter submits) with no match: a helpful empty state
        box = self.find("#f-q")
        box.send_keys("no such label", Keys.ENTER)
        self.wait_for("#empty-filtered")
        self.screenshot("history-empty-filter")
        self.find("#empty-filtered a").click()
        self.wait_for("#history-table")
        self.assertEqual(len(self.row_ids()), 3)
        self.assertEqual(self.console_errors(), [])

    def test_relabel_inline_with_the_keyboard(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.find(f"#run-{self.de.pk} .relabel-btn").click()
        box = self.wait_visible(f"#run-{self.de.pk} .relabel-form input")
        self.assertEqual(self.browser.switch_to.active_element, box)
        box.send_keys(Keys.ESCAPE)  # Escape cancels, nothing saved
        self.wait().until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".relabel-form"))
        self.find(f"#run-{self.de.pk} .relabel-btn").click()
        box = self.wait_visible(f"#run-{self.de.pk} .relabel-form input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("DE tuned", Keys.ENTER)
        self.wait_text(f"#run-{self.de.pk} .run-label", "DE tuned")
        self.de.refresh_from_db()
        self.assertEqual(self.de.label, "DE tuned")

    def test_delete_asks_for_confirmation(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.find(f"#run-{self.lb.pk} .dropdown-toggle").click()
        link = self.wait_visible(f"#run-{self.lb.pk} .delete-link")
        self.screenshot("history-actions-menu")  # the menu of the last row must not be clipped
        link.click()
        self.wait_visible("#delete-modal")
        self.wait_text("#delete-text", f"{self.lb.n_steps} stored steps")
        self.screenshot("history-delete-confirm")
        self.find("#delete-confirm").click()
        self.wait().until(EC.invisibility_of_element_located((By.CSS_SELECTOR, f"#run-{self.lb.pk}")))
        self.wait_text("#history-toast-body", f"Run {self.lb.pk} deleted")
        self.assertFalse(Run.objects.filter(pk=self.lb.pk).exists())
        self.assertFalse(Step.objects.filter(run_id=self.lb.pk).exists())

    def test_select_two_and_compare(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        button = self.find("#compare-btn")
        self.assertFalse(button.is_enabled())
        self.find(f"#select-{self.lb.pk}").click()
        self.wait_text("#selection-text", "pick at least one more")
        self.assertFalse(button.is_enabled())
        self.find(f"#select-{self.de.pk}").click()
        self.wait_text("#compare-btn", "Compare 2 runs")
        self.screenshot("history-selected")
        # the selection survives a page change (filters/pages), so nothing picked is lost
        self.browser.get(self.url("/runs/?method=lbfgsb"))
        self.wait_text("#selection-text", "2 runs selected")
        self.find("#compare-btn").click()
        self.wait().until(lambda d: "/runs/compare/" in d.current_url)
        self.assertIn(f"ids={self.lb.pk},{self.de.pk}", self.browser.current_url)
        self.wait_for("#compare[data-ready='1']")

    def test_running_runs_update_live(self):
        live = store(self.alice, spec_for("de"), [], result=None, status="running", label="still going")
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.wait_visible("#live-indicator")
        self.assertIn("running", self.find(f"#run-{live.pk} .status-badge").text)
        # the executor's writes, as B's writer makes them: figures move, then the run ends
        Run.objects.filter(pk=live.pk).update(nit=12, nfev=999, best_fun=0.5)
        self.wait_text(f"#run-{live.pk} .c-nfev", "999")
        self.assertIn("—", self.find(f"#run-{live.pk} .c-outcome").text)  # not ended yet
        Run.objects.filter(pk=live.pk).update(status="finished", nit=30, nfev=1234, best_fun=1e-7, result={
            "success": True, "status": 0, "message": "Optimization terminated successfully.", "reason": "Converged."})
        self.wait_text(f"#run-{live.pk} .status-badge", "finished")
        self.assertIn("1,234", self.find(f"#run-{live.pk}").text)
        self.assertEqual(self.find(f"#run-{live.pk} .c-outcome").text, "converged")
        self.wait().until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#live-indicator")))


class OutcomeLayoutAndCountTests(BrowserTestCase):
    """Runs that end every way a run ends, a label with markup, and room for all of it."""

    def setUp(self):
        super().setUp()
        self.alice = self.create_user("alice")
        self.converged = real_run(self.alice, spec_for("lbfgsb"), label="L-BFGS-B from (-1.2, 1)")
        self.limit = real_run(self.alice, spec_for("de"), label="DE, popsize 8, maxiter 30")
        self.abnormal = real_run(self.alice, spec_for("lbfgsb", options={"jac": None, "eps": 0.1}),
                                 label="coarse differences")
        self.marked = real_run(self.alice, spec_for("de", "himmelblau", bounds=[[-5, 5], [-5, 5]], options={"maxiter": 1000}),
                               label="<b>bold</b> & <i>not</i>")
        self.stopped = store(self.alice, spec_for("de"), [], result=None, status="stopped", label="stopped by hand")
        self.log_in("alice")

    def outcomes(self):
        return {int(tr.get_attribute("data-run-id")): tr.find_element(By.CSS_SELECTOR, ".c-outcome").text
                for tr in self.find_all("#history-table tbody tr")}

    def test_outcome_column_and_filter(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.assertEqual(self.outcomes(), {
            self.converged.pk: "converged", self.limit.pk: "limit", self.abnormal.pk: "failed line search",
            self.marked.pk: "converged", self.stopped.pk: "stopped"})
        badge = self.find(f"#run-{self.abnormal.pk} .outcome-badge")
        self.assertIn("line search", badge.get_attribute("title"))  # the run's own reason, on hover
        self.assertEqual(self.find(f"#run-{self.converged.pk} .method-badge").text, "L-BFGS-B")
        Select(self.find("#f-outcome")).select_by_value("converged")  # applies at once
        self.wait().until(lambda d: "outcome=converged" in d.current_url)
        self.wait_for("#history[data-ready='1']")
        self.assertEqual(set(self.outcomes()), {self.converged.pk, self.marked.pk})
        self.assertEqual(self.find("#history-count").text, "2 of 5 runs match")
        self.screenshot("history-outcome-filter")
        Select(self.find("#f-outcome")).select_by_value("line_search")
        self.wait().until(lambda d: "outcome=line_search" in d.current_url)
        self.wait_for("#history[data-ready='1']")
        self.assertEqual(list(self.outcomes()), [self.abnormal.pk])
        self.assertEqual(self.console_errors(), [])

    def test_the_table_fits_a_1400_px_window(self):
        for i in range(20):  # enough rows for a vertical scrollbar, which takes its share of the width
            store(self.alice, spec_for("de"), [], result=None, status="queued" if i % 2 else "interrupted",
                  label=f"filler {i}")
        self.browser.set_window_size(1400, 900)
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        fit = self.browser.execute_script("""
            const box = document.querySelector('.history-scroll');
            const cells = [...document.querySelectorAll('#history-table tr > :last-child')];
            return {inner: window.innerWidth, page: document.documentElement.clientWidth,
                    scroll: box.scrollWidth, client: box.clientWidth,
                    right: Math.max(...cells.map((c) => c.getBoundingClientRect().right))};""")
        self.assertEqual(fit["inner"], 1400)
        self.assertLessEqual(fit["scroll"], fit["client"], fit)  # nothing scrolls sideways inside the table
        self.assertLessEqual(fit["right"], fit["page"], fit)     # the actions are inside the window
        lines = self.browser.execute_script(
            f"return document.querySelector('#run-{self.converged.pk} .run-label a').getClientRects().length")
        self.assertLessEqual(lines, 2)  # a label of 23 characters is not broken onto three lines
        self.browser.set_window_size(1400, full_height(self.browser) + 140)
        self.screenshot("history-1400")

    def test_a_phone_shows_each_runs_essentials(self):
        self.phone()
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.assertLessEqual(self.browser.execute_script("return document.documentElement.scrollWidth"), 390)
        row = f"#run-{self.abnormal.pk}"
        for css in (".run-label", ".method-badge", ".c-problem", ".status-badge", ".outcome-badge", ".c-fun",
                    ".c-gap", ".c-nit", ".c-nfev", ".dropdown-toggle"):
            el = self.find(f"{row} {css}")
            self.assertTrue(el.is_displayed(), css)
            box = el.rect
            self.assertGreaterEqual(box["x"], 0, css)
            self.assertLessEqual(box["x"] + box["width"], 390, css)
        self.assertEqual(self.find(f"{row} .c-nit").text, str(self.abnormal.nit))
        caption = self.browser.execute_script(  # each figure is captioned (the headings are hidden)
            f"return getComputedStyle(document.querySelector('{row} .c-nit'), '::before').content")
        self.assertEqual(caption, '"iterations"')
        self.find("#f-sort")  # headings are hidden on a phone: sorting is a menu in the filters
        Select(self.find("#f-sort")).select_by_value("nfev")
        self.wait().until(lambda d: "sort=nfev" in d.current_url)
        self.wait_for("#history[data-ready='1']")
        nfev = [int(tr.get_attribute("data-run-id")) for tr in self.find_all("#history-table tbody tr")]
        by = {r.pk: r.nfev for r in Run.objects.all()}
        self.assertEqual([by[i] for i in nfev], sorted(by[i] for i in nfev))
        self.phone(height=full_height(self.browser))
        self.screenshot("history-phone")
        # the actions menu opens inside the screen
        self.phone()
        self.find(f"{row} .dropdown-toggle").click()
        menu = self.wait_visible(f"{row} .dropdown-menu")
        self.assertLessEqual(menu.rect["x"] + menu.rect["width"], 390)
        self.screenshot("history-phone-menu")
        self.assertEqual(self.console_errors(), [])

    def delete(self, run):
        self.find(f"#run-{run.pk} .dropdown-toggle").click()
        self.wait_visible(f"#run-{run.pk} .delete-link").click()
        self.wait_visible("#delete-modal")
        self.find("#delete-confirm").click()
        self.wait().until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#delete-modal")))
        self.wait().until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#run-{run.pk}"))

    def test_the_count_follows_deletes_down_to_the_empty_state(self):
        self.browser.get(self.url("/runs/?method=lbfgsb"))
        self.wait_for("#history[data-ready='1']")
        self.browser.execute_script("window.samePage = true")  # gone if the page reloads
        self.assertEqual(self.find("#history-count").text, "2 of 5 runs match")
        self.delete(self.converged)
        self.wait_text("#history-count", "1 of 4 runs match")
        self.delete(self.abnormal)
        self.wait_text("#history-count", "0 of 3 runs match")
        self.wait_visible("#empty-filtered")
        self.assertIn("You have 3 runs", self.find("#empty-filtered").text)
        self.screenshot("history-deleted-filtered")
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        self.browser.execute_script("window.samePage = true")
        for run, left in ((self.marked, "2 runs"), (self.limit, "1 run"), (self.stopped, "0 runs")):
            self.delete(run)
            self.wait_text("#history-count", left)
        self.wait_visible("#empty-history")
        self.assertFalse(self.find_all("#history-table"))
        self.assertTrue(self.browser.execute_script("return window.samePage === true"))
        self.screenshot("history-deleted-all")
        self.assertEqual(Run.objects.count(), 0)
        self.assertEqual(self.console_errors(), [])

    def test_labels_are_shown_as_text(self):
        self.browser.get(self.url("/runs/"))
        self.wait_for("#history[data-ready='1']")
        label = self.find(f"#run-{self.marked.pk} .run-label")
        self.assertEqual(label.text, "<b>bold</b> & <i>not</i>")
        self.assertFalse(label.find_elements(By.CSS_SELECTOR, "b, i"))
        self.find(f"#select-{self.marked.pk}").click()
        chip = self.wait_visible(".selection-chip")
        self.assertIn("<b>bold</b>", chip.text)
        self.assertFalse(chip.find_elements(By.CSS_SELECTOR, "b"))
        self.find(f"#run-{self.marked.pk} .dropdown-toggle").click()
        self.wait_visible(f"#run-{self.marked.pk} .delete-link").click()
        self.wait_visible("#delete-modal")
        self.assertIn("<b>bold</b>", self.find("#delete-title").text)
        self.assertFalse(self.find_all("#delete-title b"))


class EmptyHistoryTests(BrowserTestCase):
    def test_a_new_user_is_invited_to_start_a_run(self):
        self.create_user("dora")
        self.log_in("dora")
        self.browser.get(self.url("/runs/"))
        self.wait_for("#empty-history")
        self.screenshot("history-empty")
        self.assertEqual(self.find("#empty-history a").get_attribute("href"), self.url("/runs/new/"))
