from django.contrib.auth import get_user_model

from tests.browser import PASSWORD, BrowserTestCase


class SignupAndLoginTests(BrowserTestCase):
    def test_a_new_user_signs_up_and_is_logged_in(self):
        self.browser.get(self.url("/accounts/signup/"))
        self.find("#id_username").send_keys("dora")
        self.find("#id_password1").send_keys(PASSWORD)
        self.find("#id_password2").send_keys(PASSWORD)
        self.screenshot("signup")
        self.find("form button[type=submit]").click()
        self.wait_text("#nav-user", "dora")
        self.assertTrue(get_user_model().objects.filter(username="dora").exists())
        self.assertEqual(self.console_errors(), [])

    def test_signup_errors_appear_at_the_field(self):
        self.browser.get(self.url("/accounts/signup/"))
        self.find("#id_username").send_keys("dora")
        self.find("#id_password1").send_keys("123")
        self.find("#id_password2").send_keys("124")
        self.find("form button[type=submit]").click()
        feedback = self.wait_visible("#id_password2 ~ .invalid-feedback")
        self.assertIn("match", feedback.text)
        self.screenshot("signup-errors")
        self.assertFalse(get_user_model().objects.filter(username="dora").exists())

    def test_login_shows_who_is_logged_in_and_logout_returns_to_login(self):
        self.create_user("alice")
        self.log_in("alice")
        self.assertIn("alice", self.find("#nav-user").text)
        self.find("nav form button[type=submit]").click()
        self.wait_for("#id_username")
        self.assertIn("/accounts/login/", self.browser.current_url)
