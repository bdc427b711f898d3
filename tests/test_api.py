"""JSON API and steps CSV: ownership, 404s, windows, CSV = stored steps, grid = the objective."""

import csv
import io
import json
from urllib.parse import quote

import numpy as np
import pytest
from django.test import Client

from runs import services
from runs.models import Step
from runs.optim import get_problem, make_stepper, method_catalogue, problem_catalogue, validate_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

SPEC = {"method": "lbfgsb", "problem": "rosenbrock", "dim": 3, "x0": [-1.2, 1.0, 0.5]}
DE = {"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]], "options": {"maxiter": 30, "seed": 1}}


def finished_run(owner, spec=SPEC):
    run = services.launch(owner=owner, data=spec)
    assert services.wait_for_run(run_id=run["id"], timeout=30)
    return run["id"]


def body(response):
    return json.loads(b"".join(response.streaming_content) if response.streaming else response.content)


def stored(run_id):
    return [json.loads(d) for d in Step.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True)]


@pytest.mark.parametrize("url", ["/api/problems/", "/api/methods/", "/api/runs/", "/api/runs/1/",
                                 "/api/runs/1/steps/", "/api/problems/sphere/grid/"])
def test_the_api_answers_401_json_without_a_login(db, url):
    response = Client().get(url)
    assert response.status_code == 401 and "error" in response.json()


def test_the_csv_redirects_to_login_without_one(db):
    response = Client().get("/runs/1/steps.csv")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_catalogues(alice_client):
    assert alice_client.get("/api/problems/").json() == json.loads(services.dumps(problem_catalogue()))
    assert alice_client.get("/api/methods/").json() == json.loads(services.dumps(method_catalogue()))
    assert alice_client.post("/api/problems/").status_code == 400  # a POST defines one of the user's own


def test_it_lists_only_the_users_runs_newest_first(alice, charlie, alice_client):
    first, second = finished_run(alice), finished_run(alice, DE)
    finished_run(charlie)
    runs = alice_client.get("/api/runs/").json()
    assert [r["id"] for r in runs] == [second, first]
    assert runs[0]["status"] == "finished" and runs[0]["owner"] == "alice" and runs[0]["n_steps"] > 0
    assert [r["id"] for r in alice_client.get("/api/runs/?limit=1").json()] == [second]


def test_it_checks_ownership(alice, charlie, charlie_client, alice_client):
    run_id = finished_run(alice)
    for url in (f"/api/runs/{run_id}/", f"/api/runs/{run_id}/steps/", f"/runs/{run_id}/steps.csv",
                f"/api/runs/{run_id + 100}/", f"/api/runs/{run_id + 100}/steps/"):
        response = charlie_client.get(url)
        assert response.status_code == 404, url
        assert b"rosenbrock" not in response.content
    run = alice_client.get(f"/api/runs/{run_id}/").json()
    assert run["id"] == run_id and run["result"]["nit"] > 0 and run["url"] == f"/runs/{run_id}/"


def no_elapsed(step):
    return {k: v for k, v in step.items() if k != "elapsed"}


def uninterrupted(spec):
    """The complete steps (bulky fields in `extra`) of the spec's run, from the stepper itself."""
    stepper = make_stepper(validate_spec(spec))
    return [no_elapsed(json.loads(services.dumps(s.to_full_dict()))) for s in stepper]


BULKY = ("population", "population_energies", "line_search")


def test_steps_after_and_limit(alice, alice_client):
    run_id = finished_run(alice, DE)
    steps = stored(run_id)
    assert body(alice_client.get(f"/api/runs/{run_id}/steps/")) == {"run_id": run_id, "steps": steps, "more": False}
    assert body(alice_client.get(f"/api/runs/{run_id}/steps/?after=10"))["steps"] == steps[11:]
    page = body(alice_client.get(f"/api/runs/{run_id}/steps/?after=10&limit=5"))
    assert page["steps"] == steps[11:16] and page["more"] is True
    last = body(alice_client.get(f"/api/runs/{run_id}/steps/?after={len(steps) - 3}&limit=2"))
    assert last["steps"] == steps[-2:] and last["more"] is False
    assert body(alice_client.get(f"/api/runs/{run_id}/steps/?after=1000")) == {"run_id": run_id, "steps": [],
                                                                               "more": False}
    for bad in ("after=x", "after=-2", "limit=0", "limit=y", "after=1.5", "bulky=2", "bulky=yes please"):
        response = alice_client.get(f"/api/runs/{run_id}/steps/?{bad}")
        assert response.status_code == 400, bad
        name = bad.split("=")[0]
        assert name in response.json()["errors"] and response.json()["error"]


def test_the_csv_is_the_stored_steps(alice, alice_client):
    for spec in (SPEC, DE):
        run_id = finished_run(alice, spec)
        steps = stored(run_id)
        response = alice_client.get(f"/runs/{run_id}/steps.csv")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        header, rows = rows[0], rows[1:]
        dim = spec.get("dim", 2)
        assert header[:7] == ["seq", "nit", "phase", "fun", "nfev", "njev", "elapsed"]
        assert header[7:7 + 2 * dim] == [f"x_{i}" for i in range(dim)] + [f"jac_{i}" for i in range(dim)]
        assert len(rows) == len(steps)
        for row, step in zip(rows, steps):
            cells = dict(zip(header, row))
            assert int(cells["seq"]) == step["seq"] and cells["phase"] == step["phase"]
            assert float(cells["fun"]) == step["fun"] and int(cells["nfev"]) == step["nfev"]
            assert float(cells["elapsed"]) == step["elapsed"]
            assert [float(cells[f"x_{i}"]) for i in range(dim)] == step["x"]
            jac = [cells[f"jac_{i}"] for i in range(dim)]
            assert (jac == [""] * dim) if step["jac"] is None else ([float(v) for v in jac] == step["jac"])
            for key, value in step["extra"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert float(cells[f"extra_{key}"]) == value
        if spec["method"] == "de":
            assert "extra_convergence" in header and "extra_population" not in header


def test_the_grid_is_the_objective(alice_client):
    response = alice_client.get("/api/problems/rosenbrock/grid/", {
        "params": json.dumps({"a": 2, "b": 50}), "dim": 4, "ix": 1, "iy": 3,
        "xlim": "-1,2", "ylim": "0,3", "at": json.dumps([0.5, 0, 0.25, 0]), "n": 7})
    assert response.status_code == 200
    grid = response.json()
    assert grid["x"] == np.linspace(-1, 2, 7).tolist() and grid["y"] == np.linspace(0, 3, 7).tolist()
    f = get_problem("rosenbrock").objective({"a": 2, "b": 50})
    for j, y in enumerate(grid["y"]):
        for i, x in enumerate(grid["x"]):
            assert grid["z"][j][i] == float(f(np.array([0.5, x, 0.25, y])))
    # defaults: the problem's box and 80 points
    default = alice_client.get("/api/problems/himmelblau/grid/").json()
    assert len(default["x"]) == len(default["z"]) == len(default["z"][0]) == 80
    assert default["x"][0] == -5 and default["x"][-1] == 5


def test_the_grid_sends_null_for_non_finite_values(alice_client):
    grid = alice_client.get("/api/problems/rosenbrock/grid/", {"xlim": "-1e200,1e200", "n": 3}).json()
    assert None in grid["z"][0]


@pytest.mark.parametrize("query, field", [
    ({"params": "{"}, "params"), ({"params": "[1]"}, "params"), ({"params": '{"zz": 1}'}, "params.zz"),
    ({"params": '{"a": 1e9}'}, "params.a"), ({"dim": "x"}, "dim"), ({"dim": "1000"}, "dim"),
    ({"ix": "5"}, "ix"), ({"ix": "1", "iy": "1"}, "iy"), ({"xlim": "3,1"}, "xlim"), ({"ylim": "a,b"}, "ylim"),
    ({"xlim": "nan,1"}, "xlim"), ({"at": "[1]"}, "at"), ({"at": '[1, "x"]'}, "at"), ({"n": "1"}, "n"),
    ({"n": "5000"}, "n"),
])
def test_the_grid_validates_every_input(alice_client, query, field):
    response = alice_client.get("/api/problems/rosenbrock/grid/", query)
    assert response.status_code == 400
    assert field in response.json()["errors"] and response.json()["error"]


def test_an_unknown_problem_grid_is_404(alice_client):
    assert alice_client.get("/api/problems/nope/grid/").status_code == 404



@pytest.mark.parametrize("spec", [DE, SPEC], ids=["de", "lbfgsb"])
def test_a_run_reads_back_light_and_with_bulky_equal_to_the_stepper(alice, alice_client, spec):
    run_id = finished_run(alice, spec)
    expected = uninterrupted(spec)
    full = body(alice_client.get(f"/api/runs/{run_id}/steps/?bulky=1"))
    assert [no_elapsed(s) for s in full["steps"]] == expected and full["more"] is False
    light = body(alice_client.get(f"/api/runs/{run_id}/steps/"))["steps"]
    assert [no_elapsed(s) for s in light] == [
        {**s, "extra": {k: v for k, v in s["extra"].items() if k not in BULKY}} for s in expected]
    assert not any(k in s["extra"] for s in light for k in BULKY)
    assert all(k in s["extra"] for s in full["steps"] for k in (
        ("population", "population_energies") if spec["method"] == "de" else ("line_search",)))
    # a page of complete steps that starts between keyframes decodes exactly too
    for after in (-1, 3, 17):
        page = body(alice_client.get(f"/api/runs/{run_id}/steps/?after={after}&limit=4&bulky=1"))
        assert [no_elapsed(s) for s in page["steps"]] == expected[after + 1:after + 5]


def test_paging_from_minus_one_to_an_empty_page_reaches_every_step_once(alice, alice_client):
    run_id = finished_run(alice, DE)
    n = len(stored(run_id))
    for bulky in ("0", "1"):
        seqs, after, pages = [], -1, 0
        while True:
            page = body(alice_client.get(f"/api/runs/{run_id}/steps/?after={after}&limit=7&bulky={bulky}"))
            if not page["steps"]:
                assert page["more"] is False
                break
            assert page["more"] is (page["steps"][-1]["seq"] < n - 1)
            seqs += [s["seq"] for s in page["steps"]]
            after, pages = page["steps"][-1]["seq"], pages + 1
        assert seqs == list(range(n)) and pages == -(-n // 7)


def test_the_default_page_is_1000_steps_and_the_largest_10000(alice, alice_client):
    from tests.runs_factory import synthetic_run

    run = synthetic_run(alice, 10_050)
    page = body(alice_client.get(f"/api/runs/{run.pk}/steps/"))
    assert len(page["steps"]) == 1000 and page["more"] is True and page["steps"][-1]["seq"] == 999
    page = body(alice_client.get(f"/api/runs/{run.pk}/steps/?limit=50000"))
    assert len(page["steps"]) == 10_000 and page["more"] is True
    page = body(alice_client.get(f"/api/runs/{run.pk}/steps/?after=9999&limit=10000"))
    assert len(page["steps"]) == 50 and page["more"] is False


def test_one_step_and_the_latest_come_complete(alice, alice_client, charlie_client):
    run_id = finished_run(alice, DE)
    expected = uninterrupted(DE)
    for seq in (0, 1, 12, len(expected) - 1):
        answer = alice_client.get(f"/api/runs/{run_id}/steps/{seq}/").json()
        assert answer["run_id"] == run_id and no_elapsed(answer["step"]) == expected[seq]
    latest = alice_client.get(f"/api/runs/{run_id}/steps/latest/").json()
    assert no_elapsed(latest["step"]) == expected[-1] and latest["step"]["phase"] == "polish"
    missing = alice_client.get(f"/api/runs/{run_id}/steps/{len(expected)}/")
    assert missing.status_code == 404 and f"no step {len(expected)}" in missing.json()["error"]
    for url in (f"/api/runs/{run_id}/steps/0/", f"/api/runs/{run_id}/steps/latest/"):
        assert charlie_client.get(url).status_code == 404
        assert b"rosenbrock" not in charlie_client.get(url).content


def test_a_run_without_steps_has_no_latest_step(alice, alice_client):
    run = services.create_run(owner=alice, data=DE)  # queued, never started
    for url in (f"/api/runs/{run.pk}/steps/latest/", f"/api/runs/{run.pk}/steps/0/"):
        response = alice_client.get(url)
        assert response.status_code == 404 and "no step" in response.json()["error"]


def test_the_1d_grid_is_f_along_x0(alice_client):
    grid = alice_client.get("/api/problems/rastrigin/grid/", {"dim": 1, "xlim": "-2,3", "n": 11}).json()
    assert set(grid) == {"problem", "dim", "ix", "x", "z"} and grid["dim"] == 1 and grid["ix"] == 0
    assert grid["x"] == np.linspace(-2, 3, 11).tolist()
    f = get_problem("rastrigin").objective({})
    assert grid["z"] == [float(f(np.array([x]))) for x in grid["x"]]
    default = alice_client.get("/api/problems/rastrigin/grid/?dim=1").json()
    assert len(default["x"]) == len(default["z"]) == 80
    assert [default["x"][0], default["x"][-1]] == get_problem("rastrigin").default_bounds(1)[0]
    bad = alice_client.get("/api/problems/rastrigin/grid/?dim=1&ix=1")
    assert bad.status_code == 400 and "ix" in bad.json()["errors"]


# -- hostile query strings and path parts: 400/404/405 in JSON, in words, never a 500 ----------
HUGE = "9" * 400


@pytest.mark.parametrize("url, field", [
    (f"/api/runs/?limit={HUGE}", None),  # a page size asked too large is the largest page
    ("/api/runs/RUN/steps/?after=" + HUGE, "after"),
    ("/api/runs/RUN/steps/?limit=" + HUGE, None),
    ("/api/runs/RUN/steps/?after=%D9%A3", "after"),  # an Arabic-Indic 3: int() reads it, we do not
    ("/api/runs/RUN/steps/?after=1_000", "after"),
    ("/api/runs/RUN/series/?from=" + HUGE, "from"),
    ("/api/runs/RUN/series/?to=-" + HUGE, "to"),
    ("/api/runs/RUN/series/?x=0," + HUGE, "x"),
    ("/api/runs/RUN/series/?points=" + HUGE, None),
    ("/api/problems/rosenbrock/grid/?params=" + quote('{"a":' + HUGE + "}"), "params.a"),
    ("/api/problems/rosenbrock/grid/?params=" + quote("[" * 2000 + "]" * 2000), "params"),
    ("/api/problems/rosenbrock/grid/?at=" + quote("[" + HUGE + ",1]"), "at"),
    ("/api/problems/rosenbrock/grid/?at=" + quote("[NaN,1]"), "at"),
    ("/api/problems/rosenbrock/grid/?dim=" + HUGE, "dim"),
])
def test_hostile_query_parameters_are_refused_in_words(alice, alice_client, url, field):
    run_id = finished_run(alice, DE)
    before = stored(run_id)
    r = alice_client.get(url.replace("RUN", str(run_id)))
    if field is None:
        assert r.status_code == 200
        return
    assert r.status_code == 400 and r["Content-Type"] == "application/json", r.content[:200]
    assert field in r.json()["errors"] and r.json()["error"].startswith(field)
    assert len(r.content) < 2_000 and HUGE[:80] not in r.content.decode()
    assert stored(run_id) == before


def test_hostile_path_parts_are_404_in_bounded_words(alice, alice_client):
    run_id = finished_run(alice, DE)
    for url in (f"/api/runs/{HUGE}/", f"/api/runs/{HUGE}/steps/", f"/api/runs/{2 ** 63}/",
                f"/api/runs/{run_id}/steps/{HUGE}/", "/api/problems/" + "x" * 5000 + "/grid/"):
        r = alice_client.get(url)
        assert r.status_code == 404 and r["Content-Type"] == "application/json", url
        assert len(r.content) < 500 and "has no" in r.json()["error"] or "There is no" in r.json()["error"], r.json()


def test_a_post_to_the_api_is_405_in_json(alice_client):
    r = alice_client.post("/api/runs/")
    assert r.status_code == 405 and r["Allow"] == "GET, HEAD" and "use GET" in r.json()["error"]


def test_a_constrained_problems_grid_carries_its_signed_infeasibility(alice_client):
    import numpy as np

    from runs.optim import get_problem
    data = alice_client.get("/api/problems/rosenbrock_disk/grid/", {"n": 9, "xlim": "-2,2", "ylim": "-2,2"}).json()
    x, y = np.meshgrid(data["x"], data["y"])
    s = get_problem("rosenbrock_disk").defaults()["s"]
    assert np.allclose(data["infeasibility"], x ** 2 + y ** 2 - s, rtol=0, atol=1e-12)  # -g, g = s - x² - y²
    assert "infeasibility" not in alice_client.get("/api/problems/rosenbrock/grid/?n=9").json()
    # an equality: |h| (hs006's h = 10 (x[1] - x[0]²)), zero only on its curve
    data = alice_client.get("/api/problems/hs006/grid/", {"n": 7, "xlim": "-1,1", "ylim": "-1,1"}).json()
    x, y = np.meshgrid(data["x"], data["y"])
    h = get_problem("hs006").constraints()[0].fun(np.array([x, y]))
    assert np.allclose(data["infeasibility"], np.abs(h), rtol=0, atol=1e-12)
    # and h itself, signed, per equality: its zero level is the curve the map draws
    assert np.array(data["equalities"]).shape == (1, 7, 7)
    assert (np.array(data["equalities"][0]) == h).all()


def test_the_equalities_of_a_grid_are_each_signed_h_and_only_for_equality_constraints(alice_client):
    import numpy as np

    from runs.optim import get_problem
    for name in ("hs007", "rosenbrock_disk", "hs021"):
        problem = get_problem(name)
        data = alice_client.get(f"/api/problems/{name}/grid/", {"n": 5}).json()
        x, y = np.meshgrid(data["x"], data["y"])
        eqs = [c for c in problem.constraints() if c.kind == "eq"]
        if not eqs:
            assert "equalities" not in data
            continue
        assert len(data["equalities"]) == len(eqs)
        for c, got in zip(eqs, data["equalities"]):
            assert (np.array(got) == c.fun(np.array([x, y]))).all()
