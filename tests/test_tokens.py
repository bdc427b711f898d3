"""Personal API tokens (runs/tokens.py): made, listed and revoked on the account page, shown once and
stored as a digest only; `Authorization: Bearer` on every JSON endpoint family without CSRF, with
the isolation of a session; refused tokens in words (401, never the login page), throttled per
address; and both sockets, by header or query, refusing a revoked token at its next message."""

import hashlib
import json
import subprocess
import re
from datetime import timedelta
from pathlib import Path

import pytest
import websocket
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.utils import timezone

from runs import tokens
from runs.models import ApiToken, Run, Study
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import session_cookie
from tests.fuzzing import FUZZ_EXAMPLES, fuzz_settings
from tests.runs_factory import real_run, spec_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

NEW_TOKEN = re.compile(r'id="new-token" type="text" value="([^"]+)"')
STUDY = {"problem": "sphere", "dim": 2, "x0": [1.5, -0.5], "repeats": 1, "configs": [{"method": "lbfgsb"}]}


@pytest.fixture(autouse=True)
def counters():
    """Refused-token counters live in the cache, which outlives a test's database."""
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def make_token(client, name="laptop") -> str:
    r = client.post("/accounts/tokens/", {"name": name})
    assert r.status_code == 200, r.content.decode()[:2000]
    return NEW_TOKEN.search(r.content.decode()).group(1)


def bearer(text: str, **extra) -> Client:
    """A script's client: no session, no CSRF token, the token in every request."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {text}", **extra)


def body(response):
    return json.loads(b"".join(response.streaming_content) if response.streaming else response.content)


@pytest.fixture
def alice_token(alice_client):
    return make_token(alice_client)


@pytest.fixture
def charlie_token(charlie_client):
    return make_token(charlie_client, "charlie's script")


# ---- the page -------------------------------------------------------------------------------------
def test_the_page_makes_a_token_shows_it_once_lists_it_and_revokes_it(alice, alice_client):
    page = alice_client.get("/accounts/tokens/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="no-tokens"' in html and 'id="nav-tokens"' in html
    assert "no-store" in page["Cache-Control"]

    r = alice_client.post("/accounts/tokens/", {"name": "  notebook on my laptop  "})
    html = r.content.decode()
    text = NEW_TOKEN.search(html).group(1)
    assert re.fullmatch(r"opt_[A-Za-z0-9_-]{43}", text) and html.count(text) == 1
    assert "shown only this once" in html and 'id="copy-token"' in html and "no-store" in r["Cache-Control"]
    token = ApiToken.objects.get()
    assert (token.owner, token.name, token.prefix, token.last_used, token.revoked) == (
        alice, "notebook on my laptop", text[:12], None, None)
    assert token.digest == hashlib.sha256(text.encode()).hexdigest()

    listed = alice_client.get("/accounts/tokens/").content.decode()
    assert text not in listed and text[12:] not in listed  # never again
    row = re.search(rf'<tr id="token-{token.pk}">(.*?)</tr>', listed, re.S).group(1)
    assert "notebook on my laptop" in row and f"{text[:12]}…" in row and "never" in row

    bearer(text).get("/api/runs/")
    assert "never" not in re.search(rf'<tr id="token-{token.pk}">(.*?)</tr>',
                                    alice_client.get("/accounts/tokens/").content.decode(), re.S).group(1)

    confirm = alice_client.get(f"/accounts/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200 and "Revoke the token “notebook on my laptop”?" in confirm.content.decode()
    assert ApiToken.objects.get().revoked is None  # asking is not revoking
    r = alice_client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)
    html = r.content.decode()
    assert r.redirect_chain == [("/accounts/tokens/", 302)] and 'id="no-tokens"' in html
    assert "Token “notebook on my laptop” (" in html and "is revoked" in html
    assert ApiToken.objects.get().revoked is not None
    assert alice_client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404  # once


def test_revoking_takes_a_post_with_csrf_by_the_owner(alice, charlie_client, alice_token):
    token = ApiToken.objects.get()
    assert charlie_client.get(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert charlie_client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(alice)
    assert forged.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 403
    # nor does the token itself revoke tokens: the page is not a JSON endpoint
    assert bearer(alice_token).post(f"/accounts/tokens/{token.pk}/revoke/").status_code in (302, 403)
    assert bearer(alice_token).get("/accounts/tokens/").status_code == 302  # to the login page
    assert ApiToken.objects.get().revoked is None
    assert charlie_client.get("/accounts/tokens/999999999999999999999/revoke/").status_code == 404


@pytest.mark.parametrize("name, words", [
    ("", "This field is required."),
    ("   ", "This field is required."),
    ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ("two\nlines", "A name is one line of visible text"),
    ("bell\x07", "A name is one line of visible text"),
    ("nul\x00", "Null characters are not allowed."),
])
def test_a_bad_name_is_refused_at_the_field(alice_client, name, words):
    r = alice_client.post("/accounts/tokens/", {"name": name})
    html = r.content.decode()
    assert r.status_code == 400 and not ApiToken.objects.exists()
    field = re.search(r'id="id_name"[^>]*>\s*<div class="invalid-feedback">([^<]*)</div>', html).group(1)
    assert words.replace("“", "&ldquo;") in field or words in field.replace("&#x27;", "'"), field
    assert "new-token" not in html


def test_a_second_token_of_one_name_and_a_token_past_the_cap_are_refused_at_the_field(alice, alice_client):
    make_token(alice_client, "laptop")
    r = alice_client.post("/accounts/tokens/", {"name": "laptop"})
    assert r.status_code == 400 and "You already have a token named “laptop”" in r.content.decode()
    for n in range(tokens.MAX_TOKENS - 1):
        tokens.issue(alice, f"script {n}")
    r = alice_client.post("/accounts/tokens/", {"name": "one more"})
    html = r.content.decode()
    assert r.status_code == 400 and f"You have {tokens.MAX_TOKENS} tokens, as many as an account may have" in html
    assert re.search(r'id="id_name"[^>]*>\s*<div class="invalid-feedback">You have', html)
    assert ApiToken.objects.count() == tokens.MAX_TOKENS
    # a revoked one frees its place; revoked ones are kept a while, the newest only
    tokens.revoke(ApiToken.objects.first())
    assert alice_client.post("/accounts/tokens/", {"name": "one more"}).status_code == 200


def test_the_token_is_stored_nowhere_only_its_digest(alice, alice_client):
    text = make_token(alice_client)
    assert bearer(text).get("/api/runs/").status_code == 200  # used: last_used written, session untouched
    secret = text[tokens.SHOWN:]  # the part never shown again
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert not any(secret in str(v) for v in row.values()), model
    database = Path(connection.settings_dict["NAME"])
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            # read in another process: closing a file of the database in this one would drop the
            # POSIX locks SQLite holds on it here (and the next write fails with a disk I/O error)
            assert subprocess.run(["grep", "-q", "-F", "-e", secret, str(path)]).returncode == 1, path


# ---- every JSON endpoint family, without CSRF -----------------------------------------------------
def test_a_token_reads_every_json_endpoint_family_as_its_owner_does_with_a_session(alice, alice_client, alice_token):
    run, other = real_run(alice, spec_for("lbfgsb")), real_run(alice, spec_for("de"))
    script = bearer(alice_token)
    for url in ("/api/problems/", "/api/methods/", "/api/runs/", f"/api/runs/{run.pk}/",
                f"/api/runs/{run.pk}/steps/?limit=5", f"/api/runs/{run.pk}/steps/latest/",
                f"/api/runs/{run.pk}/steps/0/", f"/api/runs/{run.pk}/series/?points=10",
                "/api/problems/sphere/grid/?n=5", "/api/studies/"):
        got, expected = script.get(url), alice_client.get(url)
        assert got.status_code == 200 == expected.status_code, url
        assert body(got) == body(expected), url
    for url in (f"/runs/{run.pk}/export.json", f"/runs/{run.pk}/steps.csv",
                f"/runs/compare/summary.csv?ids={run.pk},{other.pk}"):
        got, expected = script.get(url), alice_client.get(url)
        assert got.status_code == 200 == expected.status_code, url
        content = b"".join(got.streaming_content) if got.streaming else got.content
        wanted = b"".join(expected.streaming_content) if expected.streaming else expected.content
        if url.endswith(".json"):  # an export says when it was made
            content, wanted = ({k: v for k, v in json.loads(c).items() if k != "exported"} for c in (content, wanted))
        assert content == wanted, url


def test_a_token_posts_to_the_studies_api_without_csrf_and_a_session_still_needs_it(alice, alice_token):
    script = bearer(alice_token)
    r = script.post("/api/studies/", json.dumps(STUDY), content_type="application/json")
    assert r.status_code == 201, r.content
    study = r.json()["study"]
    assert Study.objects.get(pk=study["id"]).owner == alice
    assert script.get(f"/api/studies/{study['id']}/").json()["id"] == study["id"]
    assert script.get(f"/api/studies/{study['id']}/summary/").status_code == 200
    assert script.get(f"/studies/{study['id']}/spec.json").status_code == 200
    stop = script.post(f"/api/studies/{study['id']}/stop/")
    assert stop.status_code in (200, 409) and stop.json()  # stopped, or already ended
    # a browser's request (the session cookie, no token) is held to CSRF as before
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/api/studies/", json.dumps(STUDY), content_type="application/json").status_code == 403
    assert Study.objects.count() == 1


def test_last_use_is_written_at_most_once_a_minute(alice_token):
    token = ApiToken.objects.get()
    bearer(alice_token).get("/api/methods/")
    first = ApiToken.objects.get().last_used
    assert first is not None and timezone.now() - first < timedelta(seconds=10)
    bearer(alice_token).get("/api/methods/")
    assert ApiToken.objects.get().last_used == first
    ApiToken.objects.filter(pk=token.pk).update(last_used=first - tokens.TOUCH_EVERY)
    bearer(alice_token).get("/api/methods/")
    assert ApiToken.objects.get().last_used > first


# ---- isolation: another user's token as another user's session -----------------------------------
def test_another_users_token_finds_nothing_of_alices_exactly_as_their_session(alice, charlie, alice_client,
                                                                            charlie_client, charlie_token):
    run, theirs = real_run(alice, spec_for("lbfgsb")), real_run(charlie, spec_for("de"))
    made = alice_client.post("/api/studies/", json.dumps(STUDY), content_type="application/json").json()["study"]
    script = bearer(charlie_token)
    for url in (f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/steps/", f"/api/runs/{run.pk}/steps/latest/",
                f"/api/runs/{run.pk}/steps/0/", f"/api/runs/{run.pk}/series/", f"/api/runs/{run.pk + 100}/",
                f"/runs/{run.pk}/export.json", f"/runs/{run.pk}/steps.csv",
                f"/runs/compare/summary.csv?ids={theirs.pk},{run.pk}",
                f"/api/studies/{made['id']}/", f"/api/studies/{made['id']}/summary/",
                f"/studies/{made['id']}/runs.csv", f"/studies/{made['id']}/spec.json"):
        got, session = script.get(url), charlie_client.get(url)
        assert got.status_code == 404 == session.status_code, url
        assert b"rosenbrock" not in got.content and b"sphere" not in got.content, url
        if url.startswith("/api/"):
            assert got.json() == session.json(), url
    assert [r["id"] for r in script.get("/api/runs/").json()] == [theirs.pk]
    for url in ("/api/runs/", "/api/studies/"):
        assert script.get(url).json() == charlie_client.get(url).json()
    assert script.get("/api/studies/").json() == []
    for action in ("stop", "pause", "resume"):
        url = f"/api/studies/{made['id']}/{action}/"
        got = script.post(url)
        assert got.status_code == 404 and got.json() == charlie_client.post(url).json()
    # the token decides, whatever session comes along: charlie's token in alice's browser is charlie
    alice_browser = Client(HTTP_AUTHORIZATION=f"Bearer {charlie_token}")
    alice_browser.force_login(alice)
    assert alice_browser.get(f"/api/runs/{run.pk}/").status_code == 404
    assert [r["id"] for r in alice_browser.get("/api/runs/").json()] == [theirs.pk]
    assert not Run.objects.filter(study_id=made["id"], status="stopped").exists()  # charlie's stops changed nothing


# ---- refused tokens -------------------------------------------------------------------------------
LOOKS_RIGHT = "opt_" + "A" * 43  # the form of a token, but none was made so


@pytest.mark.parametrize("header, words", [
    ("Bearer garbage", "tokens begin with opt_"),
    ("Bearer ghp_" + "a" * 43, "tokens begin with opt_"),
    ("Bearer opt_short", "a token is opt_ and 43 letters"),
    ("Bearer opt_" + "a" * 42 + "!", "a token is opt_ and 43 letters"),
    ("Bearer opt_" + "é" * 43, "a token is opt_ and 43 letters"),
    ("Bearer opt_" + "\N{CYRILLIC SMALL LETTER A}" * 43, "a token is opt_ and 43 letters"),
    ("Bearer " + "opt_" + "a" * 100_000, "it has 100,004 characters"),
    ("Bearer", "holds no token"),
    ("Bearer    ", "holds no token"),
    ("Bearer " + LOOKS_RIGHT, "That token is not known here"),
    ("bearer " + LOOKS_RIGHT, "That token is not known here"),
])
@pytest.mark.parametrize("url", ["/api/runs/", "/api/runs/1/series/", "/api/studies/", "/runs/1/export.json"])
def test_a_bad_token_is_refused_with_401_in_words_never_the_login_page(alice, alice_client, header, words, url):
    for client in (Client(HTTP_AUTHORIZATION=header), alice_client):  # a session does not rescue it
        r = client.get(url, HTTP_AUTHORIZATION=header)
        assert r.status_code == 401 and r["Content-Type"] == "application/json", (r.status_code, url)
        error = r.json()["error"]
        assert words in error and "/accounts/tokens/" in error and len(error) < 200
        assert "aaaa" not in error and "AAAA" not in error  # a token is never quoted back
        assert r["WWW-Authenticate"].startswith("Bearer ")


@hypothesis_settings(fuzz_settings, max_examples=max(20, FUZZ_EXAMPLES // 4))
@given(scheme=st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Bearer\t"]),
       text=st.one_of(st.text(max_size=80), st.text(alphabet="opt_-ABCxyz019", max_size=60),
                      st.text(max_size=50).map(lambda t: "opt_" + t), st.sampled_from(["opt_" + "a" * 43 + "\x00"])))
def test_any_header_text_is_refused_in_words_and_never_a_fault(db, scheme, text):
    r = Client(raise_request_exception=False).get("/api/runs/", HTTP_AUTHORIZATION=scheme + text)
    assert r.status_code in (401, 429) and r["Content-Type"] == "application/json", r.status_code
    error = r.json()["error"]
    assert re.search(r"[A-Za-z]{3}", error) and len(error) < 300
    assert len(text) < 8 or text.strip() not in error  # never quoted back


def test_other_schemes_are_not_tokens_and_pages_do_not_take_tokens(alice_client, alice_token):
    # a proxy's Basic credentials pass through: the session decides, as before
    assert alice_client.get("/api/runs/", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=").status_code == 200
    r = Client().get("/api/runs/", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=")
    assert r.status_code == 401 and r.json()["error"] == tokens.NEEDS_LOGIN
    assert "Authorization: Bearer" in tokens.NEEDS_LOGIN
    # the pages are a browser's: a token there is no login
    r = bearer(alice_token).get("/runs/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_a_revoked_token_is_refused_at_once(alice_client, alice_token):
    script = bearer(alice_token)
    assert script.get("/api/runs/").status_code == 200
    alice_client.post(f"/accounts/tokens/{ApiToken.objects.get().pk}/revoke/")
    r = script.get("/api/runs/")
    assert r.status_code == 401 and "That token was revoked on " in r.json()["error"]
    r = script.post("/api/studies/", json.dumps(STUDY), content_type="application/json")
    assert r.status_code == 401 and not Study.objects.exists()


def test_an_inactive_accounts_token_is_refused(alice, alice_token):
    alice.is_active = False
    alice.save()
    r = bearer(alice_token).get("/api/runs/")
    assert r.status_code == 401 and r.json()["error"] == "That token's account is not active."


UNTIL = re.compile(r"Try again after \d\d:\d\d UTC \(in (\d+) minutes?\)\.")


def test_refused_tokens_are_throttled_per_address(settings, alice_token):
    settings.OPTSITE_TOKEN_FAILURES = 3
    for n in range(3):
        assert bearer(f"opt_{n:043d}", REMOTE_ADDR="10.0.0.1").get("/api/runs/").status_code == 401
    for text in ("opt_" + "0" * 43, alice_token):  # past the limit even the right token is turned away
        r = bearer(text, REMOTE_ADDR="10.0.0.1").get("/api/runs/")
        assert r.status_code == 429 and "Too many refused tokens from your address." in r.json()["error"]
        assert 1 <= int(UNTIL.search(r.json()["error"]).group(1)) <= 15
    assert bearer(alice_token, REMOTE_ADDR="10.0.0.2").get("/api/runs/").status_code == 200
    # a client's own X-Forwarded-For is not believed without a proxy
    r = bearer(alice_token, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9").get("/api/runs/")
    assert r.status_code == 429


# ---- sockets --------------------------------------------------------------------------------------
LAUNCH = {"method": "lbfgsb", "problem": "rosenbrock", "x0": [-1.2, 1.0], "options": {"maxiter": 5}}


def script_socket(path: str, token: str | None = None, *, origin: str | None = None, cookie_of=None):
    """A script's socket: no Origin (or one given), the token in the header unless the path has it."""
    from optsite.asgi import application

    headers = [(b"host", b"localhost")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie_of is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_cookie(cookie_of)}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def opened(path, token=None, **kw):
    comm = await database_sync_to_async(script_socket)(path, token, **kw)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def refused_with(comm) -> str:
    """The error an open socket gets when its token is revoked, then the close 4401."""
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "unauthorized" and error["errors"] == {}, error
    closing = await comm.receive_output(timeout=10)
    assert closing == {"type": "websocket.close", "code": tokens.REFUSED}
    return error["message"]


async def started_run(comm) -> dict:
    await comm.send_json_to({"type": "start", "spec": LAUNCH})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "started", reply
    return reply["run"]


@pytest.mark.parametrize("by", ["header", "query"])
async def test_both_sockets_take_a_token_by_header_or_query_without_origin_or_cookie(alice, charlie, by):
    made = await database_sync_to_async(tokens.issue)(alice, "socket script")
    text = made[1]
    query = f"?token={text}" if by == "query" else ""
    header = text if by == "header" else None
    launch = await opened(f"/ws/runs/{query}", header)
    run = await started_run(launch)
    assert await database_sync_to_async(lambda: Run.objects.get(pk=run["id"]).owner)() == alice
    await launch.disconnect()
    sep = "&" if query else "?"
    watch = await opened(f"/ws/runs/{run['id']}/{query}{sep}after=-1", header)
    first = await watch.receive_json_from(timeout=10)
    assert first["type"] == "run" and first["run"]["id"] == run["id"] and first["run"]["owner"] == "alice"
    await watch.disconnect()
    # charlie's token is charlie: alice's run is not there for it
    other = (await database_sync_to_async(tokens.issue)(charlie, "charlie's"))[1]
    watch = await opened(f"/ws/runs/{run['id']}/" + (f"?token={other}" if by == "query" else ""),
                         other if by == "header" else None)
    gone = await watch.receive_json_from(timeout=10)
    assert gone["code"] == "not_found" and await watch.receive_output(timeout=10) == {
        "type": "websocket.close", "code": 4404}


@pytest.mark.parametrize("path", ["/ws/runs/", "/ws/runs/{run}/"])
async def test_a_socket_is_closed_at_its_next_message_once_its_token_is_revoked(alice, path):
    run = await database_sync_to_async(real_run)(alice, spec_for("lbfgsb"))
    token, text = await database_sync_to_async(tokens.issue)(alice, "socket script")
    comm = await opened(path.format(run=run.pk) + "?after=-1", text)
    await comm.send_json_to({"type": "nonsense"})  # answered while the token holds
    while (answer := await comm.receive_json_from(timeout=10))["type"] != "error":
        pass
    assert answer["code"] == "bad_message"
    await database_sync_to_async(tokens.revoke)(token)
    await comm.send_json_to({"type": "stop"})
    words = await refused_with(comm)
    assert "This socket's token was revoked on " in words
    assert await database_sync_to_async(lambda: Run.objects.get(pk=run.pk).status)() == "finished"
    await comm.disconnect()


async def refused_handshake(path, token=None, *, address="127.0.0.1", **kw) -> bool:
    comm = await database_sync_to_async(script_socket)(path, token, **kw)
    comm.scope["client"] = [address, 50000]
    connected, _ = await comm.connect()
    await comm.disconnect()
    return not connected


@pytest.mark.parametrize("token", ["garbage", LOOKS_RIGHT, "", "opt_" + "é" * 43])
@pytest.mark.parametrize("by", ["header", "query"])
async def test_a_bad_token_at_the_handshake_is_refused_as_no_session_is(alice, token, by):
    path = "/ws/runs/" + (f"?token={token}" if by == "query" else "")
    # with alice's session and the site's own origin too: a refused token is never rescued by the cookie
    assert await refused_handshake(path, token if by == "header" else None, origin="http://localhost",
                                   cookie_of=alice)
    assert not await refused_handshake("/ws/runs/", origin="http://localhost", cookie_of=alice)  # the cookie alone


async def test_a_revoked_token_opens_no_socket_and_throttling_applies_to_sockets(alice, settings):
    settings.OPTSITE_TOKEN_FAILURES = 2
    token, text = await database_sync_to_async(tokens.issue)(alice, "socket script")
    await database_sync_to_async(tokens.revoke)(token)
    assert await refused_handshake("/ws/runs/", text)
    good = (await database_sync_to_async(tokens.issue)(alice, "another"))[1]
    assert not await refused_handshake(f"/ws/runs/?token={good}")
    assert await refused_handshake("/ws/runs/", LOOKS_RIGHT)  # the second refusal from this address
    assert await refused_handshake(f"/ws/runs/?token={good}")  # throttled: even a good token
    assert not await refused_handshake(f"/ws/runs/?token={good}", address="10.0.0.2")  # per address
    r = bearer(good).get("/api/runs/")  # and HTTP shares the count, with the words
    assert r.status_code == 429 and "Too many refused tokens from your address." in r.json()["error"]


async def test_a_token_opens_a_socket_from_any_origin_but_a_cookie_alone_does_not(alice):
    text = (await database_sync_to_async(tokens.issue)(alice, "socket script"))[1]
    comm = await opened("/ws/runs/", text, origin="http://127.0.0.1:9999")
    await started_run(comm)
    await comm.disconnect()
    comm = await database_sync_to_async(script_socket)("/ws/runs/", None, origin="http://127.0.0.1:9999",
                                                       cookie_of=alice)
    connected, _ = await comm.connect()
    assert not connected  # the Origin rule, as before


async def test_a_watching_socket_that_sends_nothing_is_closed_as_soon_as_its_token_is_revoked(alice):
    run = await database_sync_to_async(real_run)(alice, spec_for("lbfgsb"))
    token, text = await database_sync_to_async(tokens.issue)(alice, "watcher")
    comm = await opened(f"/ws/runs/{run.pk}/?after=-1", text)
    while (await comm.receive_json_from(timeout=10))["type"] != "finished":
        pass
    await database_sync_to_async(tokens.revoke)(token)
    assert "This socket's token was revoked on " in await refused_with(comm)
    await comm.disconnect()


def test_the_admin_revokes_tokens_and_never_shows_or_makes_one(admin_client, alice_client):
    text = make_token(alice_client)
    token = ApiToken.objects.get()
    page = admin_client.get(f"/admin/runs/apitoken/{token.pk}/change/").content.decode()
    assert token.prefix in page and text[tokens.SHOWN:] not in page and token.digest not in page
    assert admin_client.get("/admin/runs/apitoken/add/").status_code == 403
    r = admin_client.post("/admin/runs/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert r.status_code == 302 and ApiToken.objects.get().revoked is not None
    assert bearer(text).get("/api/runs/").status_code == 401


# ---- a real daphne: the header through the server, a script's socket without Origin -------------
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.test_security import DAPHNE, Site

    if not DAPHNE.exists():
        pytest.skip("no daphne next to the interpreter")
    site = Site(tmp_path_factory.mktemp("tokens-site"))
    yield site
    site.stop()


def _script_frames(conn) -> tuple[list[dict], int | None]:
    messages = []
    while True:
        opcode, data = conn.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return messages, int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if opcode == websocket.ABNF.OPCODE_TEXT:
            messages.append(json.loads(data))


@pytest.mark.django_db(transaction=False)
def test_on_daphne_a_script_uses_a_token_over_http_and_a_socket_without_origin_or_cookie(live):
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.live_client import Client as LiveClient
    from tests.test_security import PASSWORD as SITE_PASSWORD

    browser = LiveClient(live.http, "alice", SITE_PASSWORD)
    form = urllib.parse.urlencode({"name": "daphne script", "csrfmiddlewaretoken": browser.cookie("csrftoken")})
    with browser.opener.open(live.http + "/accounts/tokens/", data=form.encode(), timeout=10) as reply:
        text = NEW_TOKEN.search(reply.read().decode()).group(1)

    def call(path, data=None, token=text):
        request = urllib.request.Request(live.http + path, data=data, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    assert call("/api/runs/") == (200, [])
    status, answer = call("/api/studies/", data=b"{}")  # reaches the spec check: no CSRF refusal
    assert status == 400 and answer["code"] == "invalid_spec"
    status, answer = call("/api/runs/", token="opt_" + "Z" * 43)
    assert status == 401 and "not known here" in answer["error"]

    ws = live.http.replace("http://", "ws://")
    conn = websocket.create_connection(ws + "/ws/runs/", header=[f"Authorization: Bearer {text}"],
                                       suppress_origin=True, timeout=10)
    conn.send(json.dumps({"type": "nonsense"}))
    assert json.loads(conn.recv())["code"] == "bad_message"  # open, and answering
    conn.close()
    for path in ("/ws/runs/?token=opt_nope", "/ws/runs/1/?token=" + "opt_" + "Z" * 43):  # refused as no session is
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws + path, suppress_origin=True, timeout=10)
        assert refused.value.status_code == 403
    # revoked through the page: the open socket is closed at once, in words
    conn = websocket.create_connection(ws + "/ws/runs/", header=[f"Authorization: Bearer {text}"],
                                       suppress_origin=True, timeout=10)
    tokens_page = browser.opener.open(live.http + "/accounts/tokens/", timeout=10).read().decode()
    token_id = re.search(r'<tr id="token-(\d+)">', tokens_page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": browser.cookie("csrftoken")})
    browser.opener.open(f"{live.http}/accounts/tokens/{token_id}/revoke/", data=form.encode(), timeout=10).read()
    messages, code = _script_frames(conn)
    conn.close()
    assert code == tokens.REFUSED and messages[0]["code"] == "unauthorized", messages
    assert "This socket's token was revoked on " in messages[0]["message"]
    assert call("/api/runs/")[0] == 401
    # without a token, no Origin: refused as before
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws + "/ws/runs/", cookie=f"sessionid={browser.cookie('sessionid')}",
                                    suppress_origin=True, timeout=10)
    assert refused.value.status_code == 403
