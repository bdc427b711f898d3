"""Hostile input against every HTTP endpoint and the CLI (hypothesis; bench/fuzz.py runs it longer).

Every URL of optsite/urls.py and runs/urls.py, GET and POST, logged in (as the owner, as another
user) and not, with hostile query strings, bodies and path parts, through Django's test client
against the real views with DEBUG off and request exceptions not raised: never a 5xx, never an
error logged, JSON endpoints answer JSON errors in words, pages the site's own error pages, and
a refused request changes nothing stored. The CLI gets malformed spec files: exit 2 naming a
field, never a traceback.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import given, note, settings
from hypothesis import strategies as st

from runs.models import Run, Step
from runs.optim import cli
from tests.fuzzing import FUZZ_EXAMPLES, fuzz_settings
from tests.runs_factory import real_run, spec_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

HUGE = "9" * 400
# Values that broke something once, or might: huge and odd numbers, deep and non-JSON text, long text.
NASTY = [
    "", "0", "-1", "1", "2", "1.5", HUGE, "-" + HUGE, "9" * 5000, "1e999", "-1e999", "nan", "NaN", "inf",
    "Infinity", "٣", "²", "1_000", " 7 ", "0x10", "true", "null", "[]", "{}", "[1,2]", '{"a":1}',
    "[" * 2000 + "]" * 2000, '{"a":' * 50 + "1" + "}" * 50, '{"a":' + HUGE + "}", f"[{HUGE},1]",
    "[[[1],2],[3,4]]", '[["a","b"],[1,2]]', "\x00", "%", "../../etc/passwd", "<script>alert(1)</script>",
    "x" * 100_000, "é" * 500, "\ud7ff", ",", ",,,", "1,2,3,4,5", f"1,{HUGE}", "1," * 300, "all", "none",
    '{"method":"de","problem":"sphere","bounds":[[-1,1],[-1,1]],"options":{"maxiter":5,"seed":1}}',
    '{"method":"lbfgsb","problem":"rosenbrock","x0":[1e308,1e308],"options":{"maxcor":1000000000}}',
    '{"method":"de","problem":"sphere","bounds":[[-1,1],[-1,1]],"options":{"seed":4294967296}}',
    '{"method":"' + "m" * 600_000 + '","problem":"sphere"}',
    '{"method":"de","problem":"sphere","dim":2,"bounds":' + json.dumps([[3, 1]] * 20_000) + "}",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10)
# integers around the C and database limits, and of any number of digits up to 600
_magnitudes = st.one_of(st.integers(2 ** 31 - 2, 2 ** 32 + 2), st.integers(2 ** 63 - 2, 2 ** 64 + 2),
                        st.integers(10, 600).map(lambda digits: int("9" * digits)))
big_numbers = st.one_of(_magnitudes, _magnitudes.map(lambda n: -n))
hostile = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.integers().map(str), big_numbers.map(str),
                    json_values.map(json.dumps))


GOOD = [spec_for("de", options={"maxiter": 3}), spec_for("lbfgsb", options={"maxiter": 3}),
        {"method": "de", "problem": "rastrigin", "dim": 3, "bounds": [[-5, 5]] * 3}]
FIELDS_OF_A_SPEC = ["method", "problem", "params", "dim", "bounds", "x0", "options", "extra"]
OPTION_NAMES = ["maxiter", "popsize", "seed", "rng", "maxcor", "maxls", "maxfun", "tol", "mutation",
                "strategy", "init", "polish", "jac", "eps", "nope"]
huge_ints = st.sampled_from([2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, int(HUGE), -int(HUGE), 10 ** 4000])
wild = st.one_of(json_values, huge_ints, st.lists(huge_ints | json_values, max_size=4))


@st.composite
def malformed_specs(draw) -> str:
    """JSON text of a spec with one part broken (or text that is no spec at all)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(NASTY) | st.text(max_size=50))
    spec = json.loads(json.dumps(draw(st.sampled_from(GOOD))))
    where = draw(st.sampled_from(FIELDS_OF_A_SPEC + ["options"] * 4 + ["bounds", "params"]))
    if where == "options":
        spec.setdefault("options", {})[draw(st.sampled_from(OPTION_NAMES))] = draw(wild)
    elif where == "bounds" and draw(st.booleans()):
        spec["bounds"] = [[draw(wild), draw(wild)] for _ in range(draw(st.integers(0, 3)))]
    elif where == "params":
        spec["params"] = {draw(st.sampled_from(["a", "b", "A", "zz"])): draw(wild)}
    else:
        spec[where] = draw(wild)
    return json.dumps(spec)



# what each kind of query parameter is given: mostly what its view might choke on
numbers = st.one_of(big_numbers.map(str), st.integers(-3, 3).map(str), st.sampled_from(NASTY[:30]))
id_lists = st.lists(st.one_of(st.integers(0, 5), big_numbers, st.text(max_size=3)), max_size=6).map(
    lambda v: ",".join(map(str, v)))
VALUES = {
    "spec": st.one_of(malformed_specs(), hostile),
    "params": st.one_of(st.dictionaries(st.sampled_from(["a", "b", "A", "c", "zz"]), wild, max_size=3).map(json.dumps),
                        hostile),
    "at": st.one_of(st.lists(wild, max_size=3).map(json.dumps), hostile),
    "ids": st.one_of(id_lists, hostile), "x": st.one_of(id_lists, hostile),
    **{name: st.one_of(numbers, hostile) for name in ("from", "to", "limit", "after", "points", "dim", "page", "per",
                                                      "n", "ix", "iy", "bulky")},
}
# every query parameter a view reads, and a few it does not
PARAMS = ["ids", "from", "to", "limit", "after", "points", "x", "spec", "params", "dim", "problem", "method",
          "label", "page", "per", "sort", "q", "status", "outcome", "next", "bulky", "n", "ix", "iy", "xlim",
          "ylim", "at", "nope"]
# the parameters each view reads (drawn more often for its route)
ROUTE_PARAMS = {
    "api/runs/": ["limit"], "api/runs/<int:run_id>/steps/": ["after", "limit", "bulky"],
    "api/runs/<int:run_id>/series/": ["points", "from", "to", "x"],
    "api/problems/<str:name>/grid/": ["params", "dim", "ix", "iy", "n", "xlim", "ylim", "at"],
    "runs/new/known-minimum/": ["problem", "dim", "params"], "runs/new/existing/": ["spec"],
    "runs/new/": ["spec", "problem", "method", "dim", "label", "from"], "runs/rows/": ["ids", "next"],
    "runs/": ["page", "per", "sort", "q", "status", "outcome", "method", "problem"],
    "runs/compare/": ["ids"], "runs/compare/summary.csv": ["ids"], "runs/<int:run_id>/delete/": ["next"],
}
# every form field a POST reads (the new-run form, relabel, delete, sign-up, login)
FIELDS = ["method", "problem", "dim", "params.a", "params.b", "params.A", "bounds.0.lo", "bounds.0.hi",
          "bounds.1.lo", "bounds.1.hi", "bounds.all.lo", "bounds.all.hi", "bounds_same", "x0.0", "x0.1",
          "options.maxiter", "options.seed", "options.popsize", "options.maxcor", "options.mutation",
          "options.polish", "options.jac", "options.rng", "label", "next", "username", "password",
          "password1", "password2", "email"]
# endpoints that answer JSON (besides /api/...)
JSON_PATHS = ("/runs/rows/", "/runs/new/known-minimum/", "/runs/new/existing/")


def _routes(patterns=None, prefix="") -> list[str]:
    """Every route of the site as a template ("runs/<int:run_id>/"), the admin's index only."""
    out = []
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out += [route] if route.startswith("admin/") else _routes(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            out.append(route)
    return sorted(set(out))


ROUTES = _routes()


@pytest.fixture
def site(alice, charlie):
    """Two users, a finished run of each; the clients (the owner, another user, nobody)."""
    mine = real_run(alice, spec_for("de"))
    theirs = real_run(charlie, spec_for("lbfgsb"))
    clients = {}
    for who, user in (("alice", alice), ("charlie", charlie), ("nobody", None)):
        c = Client(raise_request_exception=False)
        if user is not None:
            c.force_login(user)
        clients[who] = c
    return {"clients": clients, "ids": [mine.pk, theirs.pk]}


def _path(route: str, draw, ids: list[int]) -> str:
    def part(m):
        kind = m.group(1)
        if kind == "int":
            return str(draw(st.sampled_from(ids + [0, 1, 2 ** 63 - 1, 2 ** 63, int(HUGE)])))
        return draw(st.sampled_from(["sphere", "rosenbrock", "nope", "x" * 5000, "%2e%2e", HUGE]))
    path = "/" + re.sub(r"<(?:(\w+):)?\w+>", part, route)
    return path.replace("^", "").replace("$", "")


def stored() -> tuple:
    """What a refused request must not change: users, runs (their own fields; an active run's
    counters move with its worker) and the steps of ended runs."""
    runs = tuple(Run.objects.order_by("pk").values_list("pk", "owner_id", "label", "spec"))
    ended = tuple(Run.objects.exclude(status__in=Run.ACTIVE).order_by("pk").values_list("pk", "status", "n_steps"))
    steps = Step.objects.filter(run__status__in=Run.ENDED).count()
    return get_user_model().objects.count(), runs, ended, steps


class Logged(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def errors_logged():
    handler = Logged()
    logging.getLogger().addHandler(handler)
    for name in ("django", "django.request", "django.security", "runs"):
        logging.getLogger(name).addHandler(handler)
    yield handler.records
    for name in ("", "django", "django.request", "django.security", "runs"):
        logging.getLogger(name or None).removeHandler(handler)


# Requests Django refuses as suspicious (too many fields, …) are logged on django.security in one
# line without a traceback (optsite/logformat.py; tests/test_security.py): answers, not faults.
def faults(records: list) -> list:
    return [r for r in records if not r.name.startswith("django.security")]


def check(response, path: str, before: tuple, records: list):
    status = response.status_code
    body = b"".join(response.streaming_content) if response.streaming else response.content
    note(f"{status} {response.get('Content-Type')} {body[:300]!r}")
    assert status < 500, f"{status} for {path}"
    assert not faults(records), [r.getMessage() for r in faults(records)]
    assert len(body) < 2_000_000 or status < 400, "an error reply that grows with the input"
    if status >= 400:
        assert stored() == before, "a refused request changed what is stored"
        if status == 405:
            assert response.has_header("Allow")
        if path.startswith("/api/") or path.startswith(JSON_PATHS):
            assert response["Content-Type"].startswith("application/json"), path
            error = json.loads(body)["error"]
            assert isinstance(error, str) and re.search(r"[A-Za-z]{3}", error)
            assert len(body) < 20_000
        elif status != 405 and response["Content-Type"].startswith("text/html"):
            assert b"optsite" in body  # the site's own page, not a bare server answer
        elif status != 405:
            assert body.strip(), "an error without words"


# One property per route (hypothesis draws the first of a list far more often than the last): a
# tenth of the cases each, so that every route gets its share and the whole stays quick.
per_route = settings(fuzz_settings, max_examples=max(8, FUZZ_EXAMPLES // 10))


@pytest.mark.parametrize("route", ROUTES)
@per_route
@given(data=st.data())
def test_any_get_with_hostile_query_and_path(site, errors_logged, route, data):
    path = _path(route, data.draw, site["ids"])
    pool = ROUTE_PARAMS.get(route, []) * 4 + PARAMS
    names = data.draw(st.lists(st.sampled_from(pool), max_size=4, unique=True), label="params")
    query = {name: data.draw(VALUES.get(name, hostile), label=name) for name in names}
    who = data.draw(st.sampled_from(sorted(site["clients"])), label="who")
    before = stored()
    errors_logged.clear()
    url = path + ("?" + urlencode(query) if query else "")
    response = site["clients"][who].get(url, HTTP_ACCEPT=data.draw(st.sampled_from(
        ["text/html", "application/json", "*/*"])))
    check(response, path, before, errors_logged)


@pytest.mark.parametrize("route", ROUTES)
@per_route
@given(data=st.data())
def test_any_post_with_hostile_body(site, errors_logged, route, data):
    path = _path(route, data.draw, site["ids"])
    who = data.draw(st.sampled_from(sorted(site["clients"])), label="who")
    client = site["clients"][who]
    before = stored()
    errors_logged.clear()
    if data.draw(st.booleans()):
        names = data.draw(st.lists(st.sampled_from(FIELDS), max_size=8, unique=True), label="fields")
        form = {name: data.draw(st.one_of(numbers, hostile), label=name) for name in names}
        if data.draw(st.booleans()):  # mostly a form that could almost be right
            form = {"method": data.draw(st.sampled_from(["de", "lbfgsb"])), "problem": "sphere", **form}
        response = client.post(path, form)
    else:
        raw = data.draw(st.sampled_from(NASTY) | st.text(max_size=200), label="body")
        response = client.post(path, raw.encode("utf-8", "surrogatepass"),
                               content_type=data.draw(st.sampled_from(
                                   ["application/json", "application/x-www-form-urlencoded", "text/plain"])))
    check(response, path, before, errors_logged)


def test_a_long_url_without_a_login_goes_to_the_login_page_and_logs_nothing(errors_logged):
    # Django refuses to redirect to a URL over 16,384 characters: the login link comes back to the
    # page's path alone (optsite/login_required.py).
    response = Client(raise_request_exception=False).get("/runs/?q=" + "x" * 20_000)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/runs/"
    assert not errors_logged


# -- the CLI --------------------------------------------------------------------------------------
def _cli(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([str(path), "--max-steps", "1", "--light"], stdout=out, stderr=err)
    return code, err.getvalue()


@fuzz_settings
@given(text=malformed_specs())
def test_the_cli_refuses_any_malformed_spec_naming_a_field(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cli") / "spec.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = _cli(path)  # an exception here is the traceback the CLI must never print
    note(err)
    assert code in (0, 2), err
    if code == 2:
        first = err.splitlines()[0]
        assert re.match(r"error \((invalid_spec|limit)\): .*: [\w.\[\]…]+: \S", first), first
        assert len(err) < 10_000


# a few for real: what a shell user sees (each costs a Python start-up with scipy)
SUBPROCESS_CASES = ["[" * 2000 + "]" * 2000,
                    '{"method":"lbfgsb","problem":"rosenbrock","x0":[1,1],"options":{"maxcor":' + HUGE + "}}",
                    "\udcff{}"]


@pytest.mark.parametrize("text", SUBPROCESS_CASES, ids=range(len(SUBPROCESS_CASES)))
def test_the_real_cli_exits_2_in_words(tmp_path, text):
    path = tmp_path / "spec.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    done = subprocess.run([sys.executable, "-m", "runs.optim", str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and re.match(r"error \(\w+\): .*: [\w.\[\]]+: ", done.stderr)
