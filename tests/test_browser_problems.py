"""The problem pages in a real Chromium: the live check shows the formula and its gradient, an
error at its position, and saving lists the problem (CSP-clean: no console errors)."""

import pytest
from selenium.webdriver.common.keys import Keys

from runs.models import UserProblem
from tests.browser import BrowserTestCase

pytestmark = pytest.mark.browser


class ProblemPageTests(BrowserTestCase):
    def test_define_check_and_save_a_problem(self):
        self.create_user("alice")
        self.log_in("alice")
        self.browser.get(self.url("/problems/new/"))
        self.find("#id_title").send_keys("Wavy bowl")
        self.find("#id_expression").send_keys("x[0]**2 + sine(x[1])")
        self.set_field("#id_dim", "2")
        self.wait_text('[data-errors="expression"]', "position 11: unknown function `sine`")
        self.assertIn("did you mean sin?", self.find('[data-errors="expression"]').text)
        self.assertEqual(self.find("#expression-caret").text.splitlines()[-1], " " * 10 + "^")
        self.screenshot("problem-error")
        # fix it, add a coefficient: the formula and its gradient appear, drawn by KaTeX
        expr = self.find("#id_expression")
        expr.send_keys(Keys.CONTROL, "a")
        expr.send_keys("x[0]**2 + k*sin(x[1])")
        self.find('.param-row [name="param_name"]').send_keys("k")
        self.find('.param-row [name="param_default"]').send_keys("3")
        self.wait_text("#check-status", "Parsed: wavy_bowl")
        self.wait_for("#parsed-formula.math-rendered")
        self.wait_for("#gradient-list li.math-rendered")
        self.assertEqual(len(self.find_all("#gradient-list li")), 2)
        self.assertEqual(self.find('[data-errors="expression"]').text, "")
        self.screenshot("problem-parsed")
        # keyboard: a new coefficient row takes the focus
        self.find("#add-param").send_keys(Keys.ENTER)
        focused = self.browser.switch_to.active_element
        self.assertEqual(focused.get_attribute("name"), "param_name")
        self.find("#save-problem").click()
        self.wait_for("#problem-table")
        self.assertIn("/problems/", self.browser.current_url)
        row = self.find('tr[data-problem="wavy_bowl"]')
        self.assertIn("Wavy bowl", row.text)
        self.wait_for('tr[data-problem="wavy_bowl"] .formula.math-rendered')
        stored = UserProblem.objects.get(name="wavy_bowl").definition
        self.assertEqual(stored["expression"], "x[0]**2 + k*sin(x[1])")
        self.assertEqual(stored["params"][0]["name"], "k")
        self.assertEqual(self.console_errors(), [])
        # and delete it
        self.find('tr[data-problem="wavy_bowl"] button[type=submit]').click()
        self.wait_for("#no-problems")
        self.assertFalse(UserProblem.objects.exists())


class ExpressionRunPageTests(BrowserTestCase):
    def test_a_run_on_ones_own_problem_draws_its_formula_and_its_contour(self):
        from runs import services, user_problems

        alice = self.create_user("alice")
        user_problems.create_problem(owner=alice, data={
            "title": "Tilted bowl", "expression": "(x[0] - 1)**2 + 3*(x[1] + 0.5)**2 + x[0]*x[1]", "dim": 2,
            "bounds": [-3, 3]})
        run = services.launch(owner=alice, data={"method": "de", "problem": "tilted_bowl", "bounds": [[-3, 3]] * 2,
                                                 "options": {"maxiter": 30, "seed": 1}})
        assert services.wait_for_run(run_id=run["id"], timeout=60)
        self.log_in("alice")
        self.browser.get(self.url(f"/runs/{run['id']}/"))
        self.wait_text("#contour-note", "f over x[0], x[1]")  # the grid of the run's own definition
        self.assertIn("Tilted bowl", self.find("body").text)
        self.screenshot("problem-run")
        self.assertEqual(self.console_errors(), [])
