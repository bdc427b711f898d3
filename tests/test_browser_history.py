"""History page in a real Chromium: filter, sort, relabel, delete, select and compare, live rows."""

import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from runs.models import Run, Step
from tests.browser import BrowserTestCase
from tests.runs_factory import real_run, spec_for, store


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
        self.wait_text(f"#run-{live.pk} td:nth-child(11)", "999")
        Run.objects.filter(pk=live.pk).update(status="finished", nit=30, nfev=1234, best_fun=1e-7)
        self.wait_text(f"#run-{live.pk} .status-badge", "finished")
        self.assertIn("1,234", self.find(f"#run-{live.pk}").text)
        self.wait().until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#live-indicator")))


class EmptyHistoryTests(BrowserTestCase):
    def test_a_new_user_is_invited_to_start_a_run(self):
        self.create_user("dora")
        self.log_in("dora")
        self.browser.get(self.url("/runs/"))
        self.wait_for("#empty-history")
        self.screenshot("history-empty")
        self.assertEqual(self.find("#empty-history a").get_attribute("href"), self.url("/runs/new/"))
