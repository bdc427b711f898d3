"""Production security: deploy settings, the Content-Security-Policy in a real Chromium, the
WebSocket Origin check on a real daphne, server errors in the log, password reset, look-alike
user names, and login and sign-up throttling."""

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import websocket
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import caches
from django.test import Client as PageClient
from django.test import override_settings
from django.utils.html import escape
from selenium.webdriver.support.ui import Select

from optsite.accounts import LOOK_ALIKE
from tests import servers
from tests.browser import BrowserTestCase
from tests.conftest import PASSWORD as RIGHT
from tests.conftest import communicator
from tests.faulty_site_urls import FAULT
from tests.live_client import Client
from tests.polling import wait_until
from tests.runs_factory import real_run, spec_for

# Recorded from the first line of every document on (a DevTools script runs before the page's own
# and is not itself subject to the policy).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`));
"""


class ContentSecurityPolicyTests(BrowserTestCase):
    """Every page, with everything it draws, passes the policy: no violation, no console error."""

    @classmethod
    def setUpClass(cls):
        # The live server (a spawned process) runs the site plus one failing view, for the 500 page.
        previous = os.environ["DJANGO_SETTINGS_MODULE"]
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.faulty_site_settings"
        try:
            super().setUpClass()
        finally:
            os.environ["DJANGO_SETTINGS_MODULE"] = previous

    def setUp(self):
        super().setUp()
        self.browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
        self.seen = []

    def visit(self, path: str, ready: str):
        self.browser.get(self.url(path))
        self.wait_for(ready)
        self.check(path)

    def check(self, what: str):
        """No violation so far on this document, and no console error (Chromium reports an error
        page's own status, or a form's 400, as a failed load of the document: that one is expected)."""
        violations = self.browser.execute_script("return window.__violations || []")
        document = self.browser.current_url.split("?")[0]
        errors = [e for e in self.console_errors()
                  if not re.match(re.escape(document) + r"\S* - Failed to load resource: the server responded with a status of [45]", e)]
        self.seen.append(what)
        self.assertEqual(violations, [], what)
        self.assertEqual(errors, [], what)

    def test_every_page_passes_the_policy(self):
        # logged out: login (with an error), sign-up (with errors), the 404 page
        self.visit("/accounts/login/", "#id_username")
        self.find("#id_username").send_keys("nobody")
        self.find("#id_password").send_keys("wrong")
        self.find("form button[type=submit]").click()
        self.wait_visible(".alert-danger")
        self.check("login with an error")
        self.visit("/accounts/signup/", "#id_username")
        self.find("#id_username").send_keys("dora")
        self.find("#id_password1").send_keys("1")
        self.find("#id_password2").send_keys("2")
        self.find("form button[type=submit]").click()
        self.wait_visible("#id_password2 ~ .invalid-feedback")
        self.check("sign-up with errors")
        self.visit("/no/such/page/", ".error-page")
        self.visit("/accounts/password_reset/", "#account-card")  # no mail here: the page says why

        alice = self.create_user("alice")
        lb = real_run(alice, spec_for("lbfgsb"), label="L-BFGS-B")
        de = real_run(alice, spec_for("de"), label="DE")
        self.log_in("alice")
        self.check("login")
        self.visit("/accounts/tokens/", "#no-tokens")
        self.find("#id_name").send_keys("a script")
        self.find("#token-form button[type=submit]").click()
        self.wait_visible("#copy-token")  # the page's module shows it
        self.find("#copy-token").click()
        self.wait().until(lambda d: d.find_element("id", "copy-said").text)
        self.screenshot("api-tokens-made")
        self.check("a new API token, copied")
        self.visit("/runs/", "#history")
        self.visit(f"/runs/{lb.pk}/", "#run-view")
        self.wait_for("#plot-convergence .scatterlayer .trace")
        self.wait_for("#plot-contour .main-svg")
        # Plotly's own style rules (an empty <style> it fills through the CSSOM) are in force
        self.assertEqual(self.browser.execute_script(
            "return getComputedStyle(document.querySelector('#plot-convergence .modebar')).position"), "absolute")
        self.check("a finished run's page with its plots")
        self.visit(f"/runs/compare/?ids={lb.pk},{de.pk}", "#compare[data-ready='1']")
        self.wait_for("#contour-shared .main-svg")
        self.check("compare")

        # a live run, launched from the new-run page and watched there to its end
        self.visit("/runs/new/", "#run-form")
        Select(self.find("#id_problem")).select_by_value("rastrigin")
        self.wait_for("#problem-formula.math-rendered .katex")  # the problem's formula, drawn by KaTeX
        self.find("label[for=method-de]").click()
        self.find("#btn-launch").click()
        self.wait().until(lambda d: re.search(r"/runs/\d+/$", d.current_url))
        self.wait_text("#run-status", "finished", 60)
        self.wait_for("#plot-convergence .scatterlayer .trace")
        self.screenshot("csp-live-run")
        self.check("a live run on the new-run page")

        # the error pages: 404, 400, 403 (a form without its CSRF cookie), 500
        self.visit("/runs/999999/", ".error-page")
        self.visit("/runs/?" + "&".join(["f=1"] * 1200), ".error-page")
        self.browser.get(self.url("/runs/"))
        self.browser.delete_cookie("csrftoken")
        self.find("nav form button[type=submit]").click()
        self.wait_for(".error-page")
        self.assertIn("403", self.find(".error-page").text)
        self.check("the 403 page of a forged form")
        self.visit("/fault/", ".error-page")
        self.assertIn("Something went wrong on the server", self.find(".error-page").text)
        self.screenshot("csp-500")
        self.assertEqual(len(self.seen), 20)

        # and the policy is in force: inline code put into a page does not run, and is reported
        self.browser.execute_script("""
          const s = document.createElement("script"); s.textContent = "window.ran = 1"; document.body.append(s);
          document.body.insertAdjacentHTML("beforeend", '<img src="data:," onload="window.ran = 2">');""")
        self.wait().until(lambda d: len(d.execute_script("return window.__violations")) == 2)
        self.assertIsNone(self.browser.execute_script("return window.ran"))


# ---- a real daphne with DEBUG=0: the Origin check, and server errors in its log -----------------



ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
PASSWORD = "origin, scheme and port"


class Site:
    """daphne on its own SQLite file with DEBUG=0, as deployed, plus one view that fails."""

    def __init__(self, root: Path):
        self.log = root / "daphne.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DEBUG")}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "tests.faulty_site_settings", "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0", "OPTSITE_WORKERS": "1",
            "SECRET_KEY": "optsite-security-test-key-not-secret-0123456789abcdefghijklmnop",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1",
        })
        for command in (["migrate", "--noinput"],
                        ["createsuperuser", "--noinput", "--username", "alice", "--email", "a@example.org"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=self.env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"manage.py {command[0]} failed:\n{done.stdout}\n{done.stderr}"
        self.port = servers.free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        # stderr alone: what the server logs, apart from daphne's access lines on stdout
        self.process = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(self.port), "optsite.asgi:application"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        servers.wait_for_port(self.port, timeout=60, process=self.process)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def handshake(self, origin: str, cookie: str | None, path: str = "/ws/runs/") -> int:
        """101 if the socket opened, else the status the server refused it with."""
        try:
            conn = websocket.create_connection(f"ws://127.0.0.1:{self.port}{path}", origin=origin,
                                               cookie=cookie, timeout=10)
        except websocket.WebSocketBadStatusException as refused:
            return refused.status_code
        conn.close()
        return 101

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not DAPHNE.exists():
        pytest.skip(f"no daphne next to {sys.executable}")
    site = Site(tmp_path_factory.mktemp("security-site"))
    yield site
    site.stop()


@pytest.fixture(scope="module")
def alice_cookie(site):
    return f"sessionid={Client(site.http, 'alice', PASSWORD).cookie('sessionid')}"


@pytest.mark.parametrize("origin", [
    "http://127.0.0.1:9999",     # another service on the same machine
    "https://127.0.0.1:{port}",  # another scheme
    "http://localhost:{port}",   # another host, though an allowed one
    "http://127.0.0.1",          # another port (80)
    "null",                      # a sandboxed page or a file
])
@pytest.mark.parametrize("logged_in", [True, False], ids=["with-cookie", "without-cookie"])
def test_a_socket_from_another_origin_is_refused(site, alice_cookie, origin, logged_in):
    assert site.handshake(origin.format(port=site.port), alice_cookie if logged_in else None) == 403


def test_the_sites_own_origin_opens_sockets_with_a_session_only(site, alice_cookie):
    assert site.handshake(site.http, alice_cookie) == 101
    assert site.handshake(site.http, None) == 403  # the origin is right, but nobody is logged in


def test_a_server_error_with_debug_off_is_logged_with_its_traceback(site):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(site.http + "/fault/", timeout=10)
    assert answer.value.code == 500
    page = answer.value.read().decode()
    assert "Something went wrong on the server" in page and FAULT not in page  # nothing leaks to the page
    assert wait_until(lambda: FAULT in site.stderr(), timeout=10), site.stderr()
    log = site.stderr()
    assert "ERROR django.request: Internal Server Error: /fault/" in log
    assert "Traceback (most recent call last)" in log and f"ZeroDivisionError: {FAULT}" in log


def test_a_request_refused_as_suspicious_is_logged_in_one_line_without_a_traceback(site):
    import urllib.error
    import urllib.request

    # More than DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) fields in a query: Django refuses it with 400
    # and logs it on django.security, with the exception attached; an answer, not a fault.
    query = "&".join(f"f{i}=1" for i in range(1_500))
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"{site.http}/accounts/login/?{query}", timeout=10)
    assert answer.value.code == 400
    assert wait_until(lambda: "django.security.TooManyFieldsSent" in site.stderr(), timeout=10), site.stderr()
    log = site.stderr()
    line = next(line for line in log.splitlines() if "django.security.TooManyFieldsSent" in line)
    assert "number of GET/POST parameters exceeded" in line
    assert "Traceback (most recent call last)" not in log.split(line, 1)[1]


# ---- the Origin rule in process: allow-list, proxies ---------------------------------------------



async def opens(user, origin: str, *, host: str = "localhost", headers=()) -> bool:
    comm = await database_sync_to_async(communicator)("/ws/runs/", user, origin)
    comm.scope["headers"] = [(k, v) for k, v in comm.scope["headers"] if k != b"host"] + [
        (b"host", host.encode()), *headers]
    connected, _ = await comm.connect()
    await comm.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_the_allow_list_admits_exactly_its_origins(alice):
    assert not await opens(alice, "http://127.0.0.1:9999")
    with override_settings(OPTSITE_ALLOWED_ORIGINS=["http://127.0.0.1:9999"]):
        assert await opens(alice, "http://127.0.0.1:9999")
        assert await opens(alice, "HTTP://127.0.0.1:9999/")  # as a browser may spell it
        assert not await opens(alice, "http://127.0.0.1:9998")
        assert not await opens(alice, "https://127.0.0.1:9999")


@pytest.mark.django_db(transaction=True)
async def test_behind_a_proxy_the_scheme_is_the_proxys_only_when_it_is_trusted(alice):
    https = [(b"x-forwarded-proto", b"https")]
    # no proxy configured: a client's own X-Forwarded-Proto changes nothing
    assert not await opens(alice, "https://optsite.example.org", host="optsite.example.org", headers=https)
    with override_settings(ALLOWED_HOSTS=["optsite.example.org"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert await opens(alice, "https://optsite.example.org", host="optsite.example.org", headers=https)
        assert not await opens(alice, "http://optsite.example.org", host="optsite.example.org", headers=https)
        # a Host that is not an allowed one is no origin of the site's
        assert not await opens(alice, "https://evil.example", host="evil.example", headers=https)


@pytest.mark.parametrize("text, origin", [
    ("https://Optsite.Example.org", "https://optsite.example.org"),
    ("https://optsite.example.org:443/", "https://optsite.example.org"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("null", None), ("ftp://example.org", None), ("https://example.org/path", None),
    ("https://user@example.org", None), ("https://*.example.org", None), ("http://x:99999", None),
])
def test_origins_are_compared_as_browsers_write_them(text, origin):
    from optsite.origins import normalise

    assert normalise(text) == origin


# ---- password reset: offered only when the site can send mail ------------------------------------



@pytest.mark.django_db
def test_without_mail_there_is_no_reset_link_and_the_reset_page_says_why(client, alice, settings):
    assert settings.OPTSITE_PASSWORD_RESET is False  # no EMAIL_HOST: the default
    login = client.get("/accounts/login/").content.decode()
    assert "Forgot your password" not in login and "password_reset" not in login
    for url in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"):
        r = client.get(url)
        html = r.content.decode()
        assert r.status_code == 404 and "Password reset is not available" in html, url
        assert "cannot send you a link" in html and "manage.py changepassword" in html
    r = client.post("/accounts/password_reset/", {"email": "alice@example.org"})
    assert r.status_code == 404 and mail.outbox == []
    assert "email" not in client.get("/accounts/signup/").content.decode().lower().replace("new-password", "")


@pytest.mark.django_db
def test_with_mail_a_user_resets_the_password_through_the_link_in_the_mail(settings):
    settings.OPTSITE_PASSWORD_RESET = True  # EMAIL_HOST set; the test's mail goes to mail.outbox
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = PageClient()
    assert 'href="/accounts/password_reset/" id="forgot-password">Forgot your password?' in \
        client.get("/accounts/login/").content.decode()
    # sign-up asks for the address (optional) that a reset link goes to
    r = client.post("/accounts/signup/", {"username": "dora", "email": "dora@example.org",
                                          "password1": "a new pass phrase 1", "password2": "a new pass phrase 1"})
    assert r.status_code == 302 and get_user_model().objects.get(username="dora").email == "dora@example.org"
    client.post("/accounts/logout/")
    r = client.post("/accounts/password_reset/", {"email": "dora@example.org"}, follow=True)
    assert "Check your mail" in r.content.decode()
    (sent,) = mail.outbox
    assert sent.to == ["dora@example.org"] and sent.subject == "Your new optsite password" and '"dora"' in sent.body
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", sent.body).group(1)
    r = client.get(link, follow=True)
    assert "Choose a new password" in r.content.decode()
    r = client.post(r.redirect_chain[-1][0], {"new_password1": "another pass phrase 2",
                                              "new_password2": "another pass phrase 2"}, follow=True)
    assert "Your password is changed" in r.content.decode()
    fresh = PageClient()
    r = fresh.post("/accounts/login/", {"username": "dora", "password": "another pass phrase 2"})
    assert r.status_code == 302 and r["Location"] == "/runs/"
    # the link worked once
    assert "This link does not work" in client.get(link, follow=True).content.decode()


# ---- user names that read as another's -----------------------------------------------------------
def sign_up(client, username: str):
    return client.post("/accounts/signup/", {"username": username, "password1": "a fine pass phrase 7",
                                             "password2": "a fine pass phrase 7"})


ALREADY = "A user with that username already exists."  # Django's, for the same name in other case


@pytest.mark.django_db
@pytest.mark.parametrize("name, words", [
    ("\N{CYRILLIC SMALL LETTER A}lice", LOOK_ALIKE),                 # Cyrillic а
    ("\N{GREEK CAPITAL LETTER ALPHA}lice", LOOK_ALIKE),              # Greek Α
    ("\uff41\uff4c\uff49\uff43\uff45", ALREADY),                      # fullwidth ａｌｉｃｅ: NFKC makes it alice
    ("\uff41lice", ALREADY),
    ("ALICE", ALREADY), ("Alice", ALREADY),
    ("\N{CYRILLIC CAPITAL LETTER A}LICE", LOOK_ALIKE),               # capitals from two alphabets
    ("a1ice", LOOK_ALIKE), ("aIice", LOOK_ALIKE),                     # digit one, capital I for l
    ("ch\N{CYRILLIC SMALL LETTER A}rlie", LOOK_ALIKE),
])
def test_a_look_alike_of_an_existing_name_is_refused_at_the_field(client, alice, charlie, fast_passwords, name, words):
    r = sign_up(client, name)
    html = r.content.decode()
    assert r.status_code == 400
    field = re.search(r'id="id_username"[^>]*>\s*((?:<div class="invalid-feedback">[^<]*</div>\s*)+)', html).group(1)
    assert field.count("invalid-feedback") == 1 and escape(words) in field, field
    assert get_user_model().objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["alicia", "alice2", "bob", "jos\N{LATIN SMALL LETTER E WITH ACUTE}",
                                  "\N{CYRILLIC SMALL LETTER A}\N{CYRILLIC SMALL LETTER ER}\N{CYRILLIC SMALL LETTER IE}\N{CYRILLIC SMALL LETTER SHORT I}"])
def test_names_that_merely_resemble_or_use_another_alphabet_are_welcome(client, alice, fast_passwords, name):
    assert sign_up(client, name).status_code == 302
    assert get_user_model().objects.filter(username=name).exists()


@pytest.mark.django_db
def test_fullwidth_letters_are_stored_as_plain_ones(client, fast_passwords):
    assert sign_up(client, "\uff44\uff4f\uff52\uff41").status_code == 302
    assert get_user_model().objects.filter(username="dora").exists()
    assert sign_up(PageClient(), "dora").status_code == 400


# ---- login and sign-up throttling (the site's own settings: 10 failures, 15 minutes, 5 sign-ups/h) --
UNTIL = re.compile(r"Try again after \d\d:\d\d UTC \(in (\d+) minutes?\)\.")


@pytest.fixture(autouse=True)
def counters():
    """Sign-up counters live in the cache, which outlives a test's database: each test here
    starts with none (the tests above sign up several accounts from one address)."""
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def log_in(address: str, username: str, password: str, **headers):
    return PageClient().post("/accounts/login/", {"username": username, "password": password},
                             REMOTE_ADDR=address, **headers)


def assert_locked_out(r):
    html = r.content.decode()
    assert r.status_code == 429 and "sessionid" not in r.cookies, r.status_code
    assert "Too many failed logins from your address or for this account." in html
    assert int(UNTIL.search(html).group(1)) == 15  # the cool-off, from now
    assert 'id="id_username"' in html  # still the login page, to try again later


@pytest.mark.django_db
def test_failed_logins_lock_out_the_address_and_the_account_with_the_time_to_come_back(fast_passwords, alice, charlie):
    for n in range(9):
        assert log_in("10.0.0.1", "alice", f"guess {n}").status_code == 200
    assert_locked_out(log_in("10.0.0.1", "alice", "guess 9"))
    assert_locked_out(log_in("10.0.0.1", "alice", RIGHT))          # the right password no longer helps
    assert_locked_out(log_in("10.0.0.1", "charlie", RIGHT))        # nor another account from there
    assert_locked_out(log_in("10.0.0.2", "alice", RIGHT))          # nor the account from elsewhere
    r = log_in("10.0.0.2", "charlie", RIGHT)                       # everyone else logs in as usual
    assert r.status_code == 302 and r["Location"] == "/runs/" and "sessionid" in r.cookies


@pytest.mark.django_db
def test_an_address_guessing_many_accounts_is_locked_out_alone(fast_passwords, alice, charlie):
    for n in range(10):
        log_in("10.0.0.1", f"user{n}", "guess")
    assert_locked_out(log_in("10.0.0.1", "alice", RIGHT))
    assert log_in("10.0.0.2", "alice", RIGHT).status_code == 302


@pytest.mark.django_db
def test_with_address_only_lockout_the_owner_logs_in_from_elsewhere(fast_passwords, alice, settings):
    settings.AXES_LOCKOUT_PARAMETERS = ["ip_address"]  # OPTSITE_LOGIN_LOCKOUT=address
    for n in range(10):
        log_in("10.0.0.1", "alice", f"guess {n}")
    assert_locked_out(log_in("10.0.0.1", "alice", RIGHT))
    assert log_in("10.0.0.2", "alice", RIGHT).status_code == 302


@pytest.mark.django_db
def test_after_the_cool_off_the_right_password_works_again(fast_passwords, alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for n in range(10):
        log_in("10.0.0.1", "alice", f"guess {n}")
    assert log_in("10.0.0.1", "alice", RIGHT).status_code == 429
    time.sleep(1.5)  # untouched for longer than the cool-off (every attempt meanwhile would restart it)
    assert log_in("10.0.0.1", "alice", RIGHT).status_code == 302


@pytest.mark.django_db
def test_a_clients_own_forwarded_for_header_does_not_change_its_address(fast_passwords, alice):
    for n in range(10):  # a new made-up address with every guess
        log_in("10.0.0.1", "alice", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert_locked_out(log_in("10.0.0.1", "alice", RIGHT, HTTP_X_FORWARDED_FOR="192.0.2.99"))


@pytest.mark.django_db
def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(fast_passwords, alice, charlie, settings):
    settings.OPTSITE_PROXIES = 1
    proxy = "127.0.0.1"
    for n in range(10):  # whatever the client puts in front, the proxy appends what it saw
        log_in(proxy, "alice", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
    assert_locked_out(log_in(proxy, "charlie", RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.7"))
    assert log_in(proxy, "charlie", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302


@pytest.mark.django_db
def test_sign_ups_from_one_address_are_limited_with_the_time_to_come_back(fast_passwords):
    def sign_up_from(address, name):
        return PageClient().post("/accounts/signup/", {"username": name, "password1": "a fine pass phrase 7",
                                                       "password2": "a fine pass phrase 7"}, REMOTE_ADDR=address)

    for n in range(5):
        assert sign_up_from("10.0.0.1", f"sock{n}").status_code == 302
    r = sign_up_from("10.0.0.1", "sock5")
    html = r.content.decode()
    assert r.status_code == 429 and "5 accounts were made from your address in a short time." in html
    assert 1 <= int(UNTIL.search(html).group(1)) <= 60 and 'value="sock5"' in html
    assert not get_user_model().objects.filter(username="sock5").exists()
    assert sign_up_from("10.0.0.2", "sock5").status_code == 302  # another address signs up as usual
