import re

from django.conf import settings
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
        # the passwords typed are not sent back in the page
        self.assertEqual(self.find("#id_password1").get_attribute("value"), "")
        self.assertNotIn('value="123"', self.browser.page_source)
        self.screenshot("signup-errors")
        self.assertFalse(get_user_model().objects.filter(username="dora").exists())

    def test_login_shows_who_is_logged_in_and_logout_returns_to_login(self):
        self.create_user("alice")
        self.log_in("alice")
        self.assertIn("alice", self.find("#nav-user").text)
        self.find("nav form button[type=submit]").click()
        self.wait_for("#id_username")
        self.assertIn("/accounts/login/", self.browser.current_url)


class LoginThrottleTests(BrowserTestCase):
    def test_too_many_failed_logins_say_when_to_try_again(self):
        self.create_user("alice")
        for n in range(settings.AXES_FAILURE_LIMIT):  # the site's own limit (10 by default)
            self.browser.get(self.url("/accounts/login/"))
            self.find("#id_username").send_keys("alice")
            self.find("#id_password").send_keys(f"guess {n}")
            self.find("form button[type=submit]").click()
            self.wait_for("#id_username")
        message = self.wait_visible("#throttled").text
        self.assertIn("Too many failed logins from your address or for this account.", message)
        self.assertRegex(message, r"Try again after \d\d:\d\d UTC \(in 15 minutes\)\.")
        self.assertEqual(self.find("#id_username").get_attribute("value"), "alice")
        self.screenshot("login-throttled")
        # the right password does not get in meanwhile
        self.find("#id_password").send_keys(PASSWORD)
        self.find("form button[type=submit]").click()
        self.wait_visible("#throttled")
        self.assertFalse(self.find_all("#nav-user"))
        self.assertTrue(re.search(r"/accounts/login/$", self.browser.current_url))


class PhoneAccountTests(BrowserTestCase):
    """Login, sign-up and the navbar on a 390 px phone: nothing scrolls sideways."""

    def test_login_and_signup_fit_a_phone_with_their_errors(self):
        self.phone()
        self.browser.get(self.url("/accounts/login/"))
        self.find("#id_username").send_keys("nobody")
        self.find("#id_password").send_keys("wrong")
        self.tap("form button[type=submit]")
        self.wait_visible(".alert-danger")
        self.assert_fits("login with an error")
        self.phone_screenshot("login-phone-error")
        self.browser.get(self.url("/accounts/signup/"))
        self.find("#id_username").send_keys("dora")
        self.find("#id_password1").send_keys("123")
        self.find("#id_password2").send_keys("124")
        self.tap("form button[type=submit]")
        self.wait_visible("#id_password2 ~ .invalid-feedback")
        self.assert_fits("sign-up with errors")
        self.phone_screenshot("signup-phone-errors")

    def test_a_long_user_name_fits_the_navbar_on_a_phone_and_a_tablet(self):
        name = "a_very_long_user_name_without_any_space_" + "x" * 100  # 140 of Django's 150 characters
        self.create_user(name)
        self.log_in(name)
        self.phone()
        self.browser.get(self.url("/runs/"))
        self.tap(".navbar-toggler")
        self.wait_visible("#nav-user")
        self.assert_fits("navbar with a long user name")
        self.assertTrue(self.find("nav form button[type=submit]").is_displayed())
        self.phone_screenshot("navbar-phone-long-name")
        # From 768 px the menu is one row: the name gives way, Log out stays on screen.
        self.browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 800, "height": 600, "deviceScaleFactor": 1, "mobile": False})
        self.browser.get(self.url("/runs/"))
        self.screenshot("navbar-tablet-long-name")
        doc = self.browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
        self.assertLessEqual(doc[0], doc[1])
        logout = self.browser.execute_script(
            "return document.querySelector('nav form button').getBoundingClientRect().right")
        self.assertLessEqual(logout, 800)
        self.screenshot("navbar-tablet-long-name")
