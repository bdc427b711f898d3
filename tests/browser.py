"""Real-browser test support: a live daphne server (ChannelsLiveServerTestCase) and Debian's Chromium.

Every browser test class derives from BrowserTestCase; `self.browser` is a fresh headless Chromium
per test and `self.screenshot(name)` saves tests/screenshots/<name>.png to be looked at.
"""

import base64
import shutil
import tempfile
from pathlib import Path

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth import get_user_model
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"
PHONE_WIDTH = 390

# What sticks out past the right edge of the screen, apart from boxes that scroll by themselves.
NO_SIDEWAYS_SCROLL = """
const doc = document.documentElement;
const wide = [...document.querySelectorAll("body *")].filter((e) => {
  const r = e.getBoundingClientRect();
  return r.width && r.right > innerWidth + 1 && !e.closest(".katex-mathml") && getComputedStyle(e).position !== "fixed"
    && !e.parentElement.closest("[style*=overflow], .formula, .table-responsive, .bounds-rows, #x0-cells, .steps-scroll, .js-plotly-plot");
}).slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
return {scroll: doc.scrollWidth, width: innerWidth, wide};
"""


def make_browser(profile_dir: str, width: int = 1440, height: int = 1000) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.mark.browser
class BrowserTestCase(ChannelsLiveServerTestCase):
    host = "localhost"
    # Static files come from WhiteNoise and STATIC_ROOT, hashed and compressed, as in production.
    serve_static = False
    wait_seconds = 30

    def setUp(self):
        super().setUp()
        self._profile = tempfile.mkdtemp(prefix="optsite-chromium-")
        self.browser = make_browser(self._profile)
        self.addCleanup(self._close_browser)

    def _close_browser(self):
        self.browser.quit()
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.live_server_url + path

    def wait(self, timeout: float | None = None) -> WebDriverWait:
        return WebDriverWait(self.browser, timeout or self.wait_seconds)

    def wait_for(self, css: str, timeout: float | None = None):
        return self.wait(timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def wait_visible(self, css: str, timeout: float | None = None):
        return self.wait(timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def wait_text(self, css: str, text: str, timeout: float | None = None):
        return self.wait(timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def find(self, css: str):
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        return self.browser.find_elements(By.CSS_SELECTOR, css)

    def set_field(self, css: str, value) -> None:
        el = self.find(css)
        el.clear()
        el.send_keys(value)

    def fill_long_de_run(self) -> None:
        """On /runs/new/: a DE run that lasts (Rastrigin 10-D, 400 members, tol 0, rand1bin keeps
        the population diverse): long enough to control, or to keep a worker busy."""
        Select(self.find("#id_problem")).select_by_value("rastrigin")
        self.set_field("#id_dim", "10")
        self.find("#id_dim").send_keys("\t")
        self.set_field("#opt-de-maxiter", "20000")
        self.set_field("#opt-de-popsize", "40")
        self.set_field("#opt-de-tol", "0")
        self.find(".method-options[data-method=de] details summary").click()
        Select(self.find("#opt-de-strategy")).select_by_value("rand1bin")

    def create_user(self, username: str = "alice"):
        return get_user_model().objects.create_user(username, f"{username}@example.org", PASSWORD)

    def log_in(self, username: str = "alice"):
        """Log in through the real login form."""
        self.browser.get(self.url("/accounts/login/"))
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(PASSWORD)
        self.find("form button[type=submit]").click()
        self.wait_for("#nav-user")

    # -- a phone (a headless window cannot be made narrower than 500 px: emulate the screen) --
    def phone(self, height: int = 844) -> None:
        """A 390 px wide phone, with the metrics a real one reports (device width, meta viewport)."""
        self.browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True})
        self.addCleanup(lambda: self.browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {}))

    def phone_screenshot(self, name: str) -> Path:
        """The whole page at phone width (the window's own size does not apply under emulation)."""
        shot = self.browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path = self.screenshot(name)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def assert_fits(self, what: str) -> None:
        """Nothing on the page is wider than the phone's screen."""
        state = self.browser.execute_script(NO_SIDEWAYS_SCROLL)
        self.assertEqual(state["width"], PHONE_WIDTH, what)
        self.assertLessEqual(state["scroll"], PHONE_WIDTH, f"{what} scrolls sideways: {state}")
        self.assertEqual(state["wide"], [], f"{what}: wider than the screen")

    def tap(self, css: str) -> None:
        """Click, as a phone user does after scrolling to it (the emulated screen is smaller than
        the window, which confuses WebDriver's own click coordinates)."""
        self.browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", self.find(css))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.browser.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """Severe messages the page logged (uncaught errors, failed loads)."""
        return [e["message"] for e in self.browser.get_log("browser") if e["level"] == "SEVERE"]
