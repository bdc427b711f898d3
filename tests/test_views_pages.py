"""The run pages (runs/views.py): /runs/new/ and /runs/<id>/ with the Django test client."""

import json
import re
from urllib.parse import quote

import pytest
from django.test import Client, RequestFactory, override_settings

from optsite import errors
from runs import forms
from runs.optim import METHODS
from runs.models import Run

pytestmark = pytest.mark.django_db


def make_run(owner, method="de", status="finished", label="", **spec_overrides):
    spec = {
        "method": method, "problem": "rosenbrock", "params": {"a": 1.0, "b": 100.0}, "dim": 2,
        "bounds": [[-5.0, 10.0], [-5.0, 10.0]], "x0": None if method == "de" else [-1.25, -1.25],
        "options": {"maxiter": 10, "seed": 1} if method == "de" else {"maxiter": 10},
    }
    spec.update(spec_overrides)
    return Run.objects.create(owner=owner, method=method, problem="rosenbrock", spec=spec, status=status, label=label)


def script_json(html: str, element_id: str):
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    return json.loads(html[start:html.index("</script>", start)])


# -- login ----------------------------------------------------------------------------------------
def test_it_requires_login_for_the_new_run_page(client):
    r = client.get("/runs/new/")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


def test_it_requires_login_for_a_run_page(client, alice):
    run = make_run(alice)
    r = client.get(f"/runs/{run.pk}/")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


# -- /runs/new/ -------------------------------------------------------------------------------------
def test_new_run_page_renders_the_form_with_defaults(alice_client):
    r = alice_client.get("/runs/new/")
    assert r.status_code == 200
    html = r.content.decode()
    # the catalogues the script needs, at first paint
    problems = script_json(html, "problems-data")
    methods = script_json(html, "methods-data")
    assert problems[0]["name"] == "rosenbrock"
    assert {m["name"] for m in methods} == set(METHODS)  # every method, with its options
    assert re.search(r'type="module" src="/static/runs/new\.[0-9a-f]{12}\.js"', html)
    assert re.search(r'vendor/plotly-cartesian-4\.1\.1\.min\.[0-9a-f]{12}\.js', html)
    # Rosenbrock with its coefficients, default dim and bounds; DE with seed 1
    assert 'name="params.a" value="1"' in html
    assert 'name="params.b" value="100"' in html
    assert 'id="id_dim" name="dim" value="2"' in html
    assert 'name="bounds.all.lo" id="bounds-all-lo" value="-5"' in html
    assert 'id="method-de" value="de" autocomplete="off" checked' in html
    assert 'name="options.seed" value="1"' in html
    # scipy's defaults as placeholders (empty = default)
    assert 'name="options.maxiter" value="" placeholder="1000"' in html
    assert 'name="options.popsize" value="" placeholder="15"' in html
    # the empty state of the run view
    assert 'id="run-empty"' in html and "No run yet" in html
    assert "https://" not in html.replace("https://www.", "")  # nothing from a CDN


def test_new_run_page_is_prefilled_from_spec_query(alice_client):
    spec = {"method": "lbfgsb", "problem": "rastrigin", "dim": 3, "params": {"A": 5},
            "bounds": [[-1, 1], [-2, 2], [None, 3]], "x0": [0.5, 0.25, 1], "options": {"maxiter": 77},
            "label": "from a clone"}
    r = alice_client.get("/runs/new/?spec=" + quote(json.dumps(spec)))
    html = r.content.decode()
    assert r.status_code == 200
    assert '<option value="rastrigin" selected>' in html
    assert 'id="method-lbfgsb" value="lbfgsb" autocomplete="off" checked' in html
    assert 'id="id_dim" name="dim" value="3"' in html
    assert 'name="params.A" value="5"' in html
    assert 'name="bounds.1.lo" id="bounds-1-lo" value="-2"' in html
    assert 'name="bounds.2.lo" id="bounds-2-lo" value=""' in html  # open side stays open
    assert 'name="x0.2" id="x0-2" value="1"' in html
    assert 'id="opt-lbfgsb-maxiter" name="options.maxiter" value="77"' in html
    assert 'value="from a clone"' in html


def test_clone_link_from_history_prefills_the_form(alice_client, alice):
    run = make_run(alice, method="lbfgsb", x0=[0.5, 0.5])
    r = alice_client.get(f"/runs/{run.pk}/clone/", follow=True)
    html = r.content.decode()
    assert 'id="method-lbfgsb" value="lbfgsb" autocomplete="off" checked' in html
    assert 'name="x0.0" id="x0-0" value="0.5"' in html


def test_a_clone_keeps_the_label_and_says_which_run_it_copies(alice_client, alice):
    run = make_run(alice, method="lbfgsb", label="b = 100 <baseline>")
    r = alice_client.get(f"/runs/{run.pk}/clone/")
    assert r.status_code == 302 and f"from={run.pk}" in r["Location"]
    html = alice_client.get(r["Location"]).content.decode()
    assert 'id="id_label" name="label" maxlength="200" value="b = 100 &lt;baseline&gt;"' in html
    note = html[html.index('id="cloned-note"'):]
    note = note[:note.index("</div>")]
    assert f'Cloned from <a href="/runs/{run.pk}/" class="alert-link">run {run.pk}</a>' in note
    assert "b = 100 &lt;baseline&gt;" in note
    # a run without a label: the field stays empty and the note still says where it came from
    plain = make_run(alice)
    html = alice_client.get(f"/runs/{plain.pk}/clone/", follow=True).content.decode()
    assert 'id="id_label" name="label" maxlength="200" value=""' in html and f"run {plain.pk}</a>" in html


def test_a_clone_of_an_unbounded_run_stays_unbounded(alice_client, alice):
    run = make_run(alice, method="lbfgsb", bounds=None, x0=[3.0, -2.0])
    html = alice_client.get(f"/runs/{run.pk}/clone/", follow=True).content.decode()
    assert 'name="bounds.all.lo" id="bounds-all-lo" value=""' in html
    assert 'name="bounds.1.hi" id="bounds-1-hi" value=""' in html
    assert 'name="x0.1" id="x0-1" value="-2"' in html
    # DE needs bounds: a spec without them gets the problem's defaults
    html = alice_client.get("/runs/new/?spec=" + quote(json.dumps({"method": "de", "problem": "sphere", "bounds": None}))).content.decode()
    assert 'name="bounds.all.lo" id="bounds-all-lo" value="-5.12"' in html


@pytest.mark.parametrize("source", ["abc", "-3", "²", "1" * 30, ""])
def test_a_from_that_is_no_run_number_shows_no_note(alice_client, source):
    html = alice_client.get("/runs/new/?from=" + quote(source)).content.decode()
    assert 'id="cloned-note"' not in html


def test_bad_spec_query_shows_defaults_and_says_why(alice_client):
    r = alice_client.get("/runs/new/?spec=%7Bnot json")
    assert r.status_code == 200
    assert "not valid JSON" in r.content.decode()
    assert '<option value="rosenbrock" selected>' in r.content.decode()


def test_prefill_ignores_values_that_do_not_fit(alice_client):
    spec = {"problem": "himmelblau", "dim": 7, "bounds": [[0, 1]], "method": "nope"}
    html = alice_client.get("/runs/new/?spec=" + quote(json.dumps(spec))).content.decode()
    assert '<option value="himmelblau" selected>' in html
    assert 'id="id_dim" name="dim" value="2"' in html  # himmelblau is 2-D only
    assert 'name="bounds.all.lo" id="bounds-all-lo" value="-5"' in html
    assert 'id="method-de" value="de" autocomplete="off" checked' in html


def test_single_query_parameters_prefill_too(alice_client):
    html = alice_client.get("/runs/new/?problem=sphere&method=lbfgsb&dim=4").content.decode()
    assert '<option value="sphere" selected>' in html
    assert 'id="id_dim" name="dim" value="4"' in html
    assert 'name="x0.3" id="x0-3"' in html


def test_known_minimum_follows_coefficients_and_dimension(alice_client):
    r = alice_client.get("/runs/new/known-minimum/?problem=rosenbrock&dim=2&params=" + quote('{"a": 2}'))
    assert r.json() == {"known_minimum": {"x": [2.0, 4.0], "f": 0.0}}
    r = alice_client.get("/runs/new/known-minimum/?problem=rosenbrock&dim=3&params=" + quote('{"a": 2}'))
    assert r.json() == {"known_minimum": None}
    assert alice_client.get("/runs/new/known-minimum/?problem=nope").status_code == 404
    assert alice_client.get("/runs/new/known-minimum/?problem=sphere&params=[").status_code == 400


def test_post_without_javascript_shows_errors_at_the_field(alice_client):
    r = alice_client.post("/runs/new/", {
        "problem": "rosenbrock", "method": "de", "dim": "2", "params.a": "1", "params.b": "100",
        "bounds.0.lo": "5", "bounds.0.hi": "1", "bounds.1.lo": "-1", "bounds.1.hi": "1",
        "options.maxiter": "abc", "options.polish": ["false", "true"],
    })
    assert r.status_code == 400
    html = r.content.decode()
    assert "The run was not started" in html
    # the reversed bounds are reported under coordinate 0's row, maxiter under its input
    row = html[html.index('data-field="bounds[0]"'):html.index('data-field="bounds[1]"')]
    assert "is-invalid" in row and "must not be greater than upper bound" in row
    opt = html[html.index('data-field="options.maxiter"'):]
    opt = opt[:opt.index("</div>\n</div>")]
    assert "is-invalid" in opt and "Must be a whole number" in opt
    # what was typed is kept
    assert 'name="bounds.0.lo" id="bounds-0-lo" value="5"' in html
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_post_without_javascript_over_the_active_run_cap_says_so_and_links_the_active_runs(alice_client, alice, settings):
    settings.OPTSITE_MAX_CONCURRENT_RUNS = 2
    for _ in range(2):
        make_run(alice, status="paused")
    r = alice_client.post("/runs/new/", {"problem": "sphere", "method": "de", "dim": "2",
                                         "bounds.0.lo": "-1", "bounds.0.hi": "1", "bounds.1.lo": "-1", "bounds.1.hi": "1"})
    html = r.content.decode()
    assert r.status_code == 400
    alert = html[html.index('id="form-alert"'):]
    alert = alert[:alert.index("</div>")]
    assert "You already have 2 active runs; this server runs at most 2 at once for each user." in alert
    assert '<a class="alert-link d-inline-block" id="active-runs-link" href="/runs/?status=active">' in alert
    assert "runs:" not in alert and "Fix the highlighted fields" not in alert
    assert Run.objects.filter(owner=alice).count() == 2


@pytest.mark.parametrize("bounds", [[[[1], 2], [3, 4]], [["a", "b"], [1, 2]], [[None, "x"], [1, 2]]])
@pytest.mark.parametrize("method", ["de", "lbfgsb"])
def test_a_link_with_malformed_bounds_opens_the_form_and_says_why_in_the_validators_words(alice_client, method, bounds):
    spec = {"method": method, "problem": "sphere", "bounds": bounds, "options": {"maxiter": 7}}
    r = alice_client.get("/runs/new/?spec=" + quote(json.dumps(spec)))
    assert r.status_code == 200
    html = r.content.decode()
    warning = re.search(r'<div class="alert alert-warning[^>]*>([^<]*)</div>', html).group(1)
    assert "bounds[0]:" in warning and "the form shows the defaults" in warning
    assert 'name="bounds.0.lo" id="bounds-0-lo" value="-5.12"' in html or 'value="-5.12"' in html
    assert 'value="7"' in html  # what did fit is kept


def test_a_link_with_huge_numbers_or_deep_nesting_opens_the_form(alice_client):
    huge = "9" * 400
    for text in ('{"method":"de","problem":"rosenbrock","params":{"a":' + huge + "}}",
                 '{"method":"de","problem":"rosenbrock","dim":' + huge + "}",
                 '{"method":"lbfgsb","problem":"rosenbrock","x0":[' + huge + ",1]}",
                 "[" * 2000 + "]" * 2000):
        r = alice_client.get("/runs/new/?spec=" + quote(text))
        assert r.status_code == 200 and "alert-warning" in r.content.decode(), text[:60]
    r = alice_client.get("/runs/new/?spec=" + quote('{"method":"de","problem":"rosenbrock","params":{"a":' + huge + "}}"))
    assert "params.a: must be a finite number, not an integer of 400 digits" in r.content.decode()
    assert alice_client.get("/runs/new/?dim=%D9%A3&from=" + huge).status_code == 200  # an Arabic-Indic 3


def test_a_post_with_a_bad_bound_and_no_x0_shows_the_error_at_the_bound(alice_client):
    r = alice_client.post("/runs/new/", {"problem": "sphere", "method": "lbfgsb", "dim": "2",
                                         "bounds.0.lo": "a", "bounds.0.hi": "1"})
    assert r.status_code == 400
    row = r.content.decode()
    row = row[row.index('data-field="bounds[0]"'):row.index('data-field="bounds[1]"')]
    assert "is-invalid" in row and "Lower bound must be a finite number or null, not &#x27;a&#x27;" in row
    assert not Run.objects.exists()


def test_known_minimum_refuses_huge_and_deep_params_in_words(alice_client):
    r = alice_client.get("/runs/new/known-minimum/?problem=rosenbrock&params=" + quote('{"a": ' + "9" * 400 + "}"))
    assert r.status_code == 400 and "an integer of 400 digits" in r.json()["errors"]["params.a"][0]
    r = alice_client.get("/runs/new/known-minimum/?problem=sphere&params=" + quote("[" * 2000 + "]" * 2000))
    assert r.status_code == 400 and "nested deeper than 32 levels" in r.json()["errors"]["params"][0]
    r = alice_client.get("/runs/new/known-minimum/?problem=sphere&dim=" + "9" * 400)
    assert r.status_code == 400 and "dim" in r.json()["errors"]
    r = alice_client.post("/runs/new/known-minimum/?problem=sphere")
    assert r.status_code == 405 and "use GET" in r.json()["error"]


def test_existing_refuses_hostile_specs_in_words(alice_client):
    for text, field in (("[" * 2000 + "]" * 2000, "spec"),
                        ('{"method":"de","problem":"rosenbrock","bounds":[[-1,1],[-1,1]],"options":{"seed":'
                         + "9" * 400 + "}}", "options.seed"),
                        ('{"method":"lbfgsb","problem":"rosenbrock","x0":[1,1],"options":{"maxcor":1000000000}}',
                         "options.maxcor")):
        r = alice_client.get("/runs/new/existing/?spec=" + quote(text))
        assert r.status_code == 400 and field in r.json()["errors"], r.json()
    # echoes are bounded: a method of 600,000 characters, 20,000 bad bound pairs
    for spec in ({"method": "m" * 600_000, "problem": "sphere"},
                 {"method": "de", "problem": "sphere", "dim": 2, "bounds": [[3, 1]] * 20_000}):
        r = alice_client.get("/runs/new/existing/?spec=" + quote(json.dumps(spec)))
        assert r.status_code == 400 and len(r.content) < 5_000, len(r.content)


@pytest.mark.django_db(transaction=True)
def test_a_post_over_the_site_wide_cap_says_so(alice_client, charlie, settings):
    settings.OPTSITE_MAX_ACTIVE_RUNS = 2
    for _ in range(2):
        make_run(charlie, status="paused")
    r = alice_client.post("/runs/new/", {"problem": "sphere", "method": "de", "dim": "2",
                                         "bounds.0.lo": "-1", "bounds.0.hi": "1", "bounds.1.lo": "-1", "bounds.1.hi": "1"})
    assert r.status_code == 400
    assert "at most 2 runs may be active at once, of all users" in r.content.decode()
    assert Run.objects.count() == 2


def test_spec_from_post_reads_every_kind_of_input():
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    q.update({"problem": "rosenbrock", "method": "de", "dim": "2", "params.a": "1.5", "bounds_same": "1",
              "bounds.all.lo": "-2", "bounds.all.hi": "2", "options.mutation": "0.5, 1",
              "options.tol": "1e-6", "options.seed": "3", "options.strategy": "rand1bin", "label": " x "})
    q.setlist("options.polish", ["false"])
    spec, label = forms.spec_from_post(q)
    assert spec == {
        "method": "de", "problem": "rosenbrock", "dim": 2, "params": {"a": 1.5},
        "bounds": [[-2, 2], [-2, 2]],
        "options": {"mutation": [0.5, 1], "tol": 1e-6, "seed": 3, "strategy": "rand1bin", "polish": False},
    }
    assert label == "x"


# -- /runs/<id>/ ------------------------------------------------------------------------------------
def test_run_page_shows_the_owners_run_with_what_the_script_needs(alice_client, alice):
    run = make_run(alice, label="baseline")
    r = alice_client.get(f"/runs/{run.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    data = script_json(html, "run-data")
    assert data["id"] == run.pk and data["status"] == "finished" and data["method"] == "de"
    assert script_json(html, "problem-data")["name"] == "rosenbrock"
    assert script_json(html, "known-minimum") == {"x": [1.0, 1.0], "f": 0.0}
    assert script_json(html, "page-config")["table_rows"] == 50  # rows while live: a fixed number
    for element in ('id="plot-convergence"', 'id="plot-contour"', 'id="steps-body"', 'id="replay-slider"',
                    'id="btn-stop"', 'id="btn-compare"', f'href="/runs/{run.pk}/steps.csv"'):
        assert element in html
    assert re.search(r"runs/run\.[0-9a-f]{12}\.js", html)
    assert "baseline" in html


@pytest.mark.parametrize("status, holder, note", [
    ("queued", "", "next in line"), ("running", "pool@vm:99", "on pool@vm:99"), ("paused", "", "holds no worker"),
    ("interrupted", "", "the worker went away"), ("finished", "", None),
])
def test_run_page_says_where_the_run_is_before_any_script(alice_client, alice, status, holder, note):
    run = make_run(alice)
    Run.objects.filter(pk=run.pk).update(status=status, lease_holder=holder)
    html = alice_client.get(f"/runs/{run.pk}/").content.decode()
    where = html.split('id="run-where"', 1)[1].split("</span>\n", 1)[0]
    if note is None:
        assert " hidden>" in where
    else:
        assert note in where and " hidden>" not in where
    assert 'id="run-state"' in html and 'role="status"' in html


def test_someone_elses_run_is_a_404(alice_client, charlie):
    run = make_run(charlie)
    assert alice_client.get(f"/runs/{run.pk}/").status_code == 404
    assert alice_client.get("/runs/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_post_without_javascript_starts_the_run_and_goes_to_its_page(alice_client, alice):
    from runs import services

    r = alice_client.post("/runs/new/", {
        "problem": "rosenbrock", "method": "lbfgsb", "dim": "2", "bounds.0.lo": "", "bounds.0.hi": "",
        "bounds.1.lo": "", "bounds.1.hi": "", "x0.0": "-1.2", "x0.1": "1", "options.maxiter": "50",
        "label": "no js",
    })
    run = Run.objects.get(owner=alice)
    assert r.status_code == 302 and r["Location"] == f"/runs/{run.pk}/"
    assert services.wait_for_run(run_id=run.pk, timeout=30)
    run.refresh_from_db()
    assert run.status == "finished" and run.label == "no js"
    assert run.spec["bounds"] is None and run.spec["x0"] == [-1.2, 1.0]


# -- the site's own error pages (optsite/errors.py, templates/4xx.html, 500.html) ------------------
# Django uses them only with DEBUG off, as in production; the test client keeps DEBUG off too, but
# say so: that is the condition under which the bare "Not Found" page used to appear.
def site_page(html: str) -> bool:
    """The site's layout (navbar, stylesheet), not Django's bare error text."""
    return 'class="navbar' in html and re.search(r"vendor/bootstrap-5\.3\.8\.min\.[0-9a-f]{12}\.css", html) is not None


@override_settings(DEBUG=False)
def test_a_missing_run_gets_the_sites_404_page(alice_client):
    r = alice_client.get("/runs/999999/")
    html = r.content.decode()
    assert r.status_code == 404 and site_page(html)
    assert "Run 999999 is not here" in html and "<title>Not found · optsite</title>" in html
    assert 'href="/runs/">Your runs</a>' in html and 'href="/runs/new/">New run</a>' in html
    assert "Signed in as <strong>alice</strong>" in html  # the request's context: the navbar as usual


@override_settings(DEBUG=False)
def test_someone_elses_run_gets_the_same_404_page(alice_client, charlie):
    run = make_run(charlie, label="charlie's secret")
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/clone/", f"/runs/{run.pk}/export.json"):
        r = alice_client.get(url)
        html = r.content.decode()
        assert r.status_code == 404 and site_page(html), url
        assert f"Run {run.pk} is not here" in html and "charlie's secret" not in html


@override_settings(DEBUG=False)
def test_an_unknown_url_gets_the_404_page_with_links(alice_client):
    r = alice_client.get("/no/such/page/")
    html = r.content.decode()
    assert r.status_code == 404 and site_page(html)
    assert "Page not found" in html and "<code class=\"text-break\">/no/such/page/</code>" in html
    assert 'href="/runs/new/">New run</a>' in html


@override_settings(DEBUG=False)
def test_the_404_page_offers_login_to_someone_logged_out(client):
    html = client.get("/nothing-here/").content.decode()
    assert site_page(html) and 'href="/accounts/login/">Log in</a>' in html and "Signed in as" not in html


@override_settings(DEBUG=False)
def test_the_json_api_keeps_json_errors(alice_client, charlie):
    run = make_run(charlie)
    for url in ("/api/runs/999999/", f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/series/", "/api/no-such-endpoint/"):
        r = alice_client.get(url)
        assert r.status_code == 404 and r["Content-Type"].startswith("application/json"), url
        assert isinstance(r.json()["error"], str) and r.json()["error"], url
    # a script that asks for JSON anywhere gets JSON, too
    r = alice_client.get("/runs/new/known-minimum/?problem=nope", HTTP_ACCEPT="application/json")
    assert r.status_code == 404 and r.json() == {"error": "There is no problem 'nope'; see /api/problems/."}


@override_settings(DEBUG=False)
def test_a_forged_post_gets_the_sites_403_page(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    r = client.post("/runs/new/", {"problem": "sphere", "method": "de"})
    html = r.content.decode()
    assert r.status_code == 403 and site_page(html)
    assert "The form has expired" in html and "Nothing was changed" in html
    assert not Run.objects.exists()


@override_settings(DEBUG=False)
def test_the_403_400_and_500_pages_are_the_sites(alice):
    from django.core.exceptions import PermissionDenied, SuspiciousOperation

    request = RequestFactory().get("/runs/")
    request.user = alice
    r = errors.permission_denied(request, PermissionDenied())
    assert r.status_code == 403 and site_page(r.content.decode()) and "Not allowed" in r.content.decode()
    r = errors.bad_request(request, SuspiciousOperation("bad"))
    assert r.status_code == 400 and "could not read that request" in r.content.decode()
    r = errors.server_error(request)
    html = r.content.decode()
    assert r.status_code == 500 and site_page(html) and "Something went wrong on the server" in html
    assert 'href="/runs/">Your runs</a>' in html
    api = RequestFactory().get("/api/runs/")
    assert errors.server_error(api).status_code == 500
    assert json.loads(errors.server_error(api).content) == {"error": "Something went wrong on the server."}

# -- the run page's catalogues, and finding an identical run (/runs/new/existing/) ------------------
def test_run_page_hands_the_script_the_method_catalogue(alice_client, alice):
    run = make_run(alice)
    html = alice_client.get(f"/runs/{run.pk}/").content.decode()
    titles = {m["name"]: m["title"] for m in script_json(html, "methods-data")}
    assert titles["de"] and titles["lbfgsb"] == "L-BFGS-B"
    assert script_json(html, "page-config")["table_rows"] == 50


def stored_spec(data):
    from runs.optim import validate_spec

    return validate_spec(data).to_dict()


def existing(client, spec):
    return client.get("/runs/new/existing/?spec=" + quote(json.dumps(spec)))


LBFGSB = {"method": "lbfgsb", "problem": "rosenbrock", "dim": 2, "bounds": [[-5, 10], [-5, 10]],
          "x0": [-1.25, -1.25], "options": {}}


def create(owner, spec, status="finished"):
    normal = stored_spec(spec)
    return Run.objects.create(owner=owner, method=normal["method"], problem=normal["problem"], spec=normal,
                              status=status, n_steps=5)


def test_it_finds_the_users_run_with_the_same_normalised_spec(alice_client, alice):
    run = create(alice, LBFGSB)
    # Spelled differently (defaults written out, ints for floats): the same spec once normalised.
    same = {**LBFGSB, "params": {"a": 1, "b": 100}, "options": {"maxiter": 15000, "jac": "analytic"}}
    r = existing(alice_client, same)
    assert r.status_code == 200
    assert r.json() == {"run": {"id": run.pk, "url": f"/runs/{run.pk}/", "status": "finished", "n_steps": 5}}


def test_it_prefers_a_finished_run_and_never_a_failed_one(alice_client, alice):
    create(alice, LBFGSB, status="failed")
    assert existing(alice_client, LBFGSB).json() == {"run": None}
    stopped = create(alice, LBFGSB, status="stopped")
    assert existing(alice_client, LBFGSB).json()["run"]["id"] == stopped.pk
    finished = create(alice, LBFGSB, status="finished")
    create(alice, LBFGSB, status="stopped")
    assert existing(alice_client, LBFGSB).json()["run"]["id"] == finished.pk


def test_it_does_not_match_another_spec_or_another_users_run(alice_client, alice, charlie):
    create(charlie, LBFGSB)
    create(alice, {**LBFGSB, "x0": [0.0, 0.0]})
    create(alice, {**LBFGSB, "options": {"gtol": 1e-8}})
    assert existing(alice_client, LBFGSB).json() == {"run": None}


def test_it_answers_bad_specs_in_words_and_changes_nothing(alice_client, alice):
    r = alice_client.get("/runs/new/existing/?spec=not-json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = existing(alice_client, {**LBFGSB, "x0": [1.0]})
    assert r.status_code == 400
    assert r.json()["errors"] and r.json()["error"]
    assert not Run.objects.exists()


def test_it_requires_login(client):
    r = existing(client, LBFGSB)
    assert r.status_code == 302
