"""A user's own problems: /api/problems/ (create, list, check, delete), owner-only visibility,
runs on them through the services and a real worker, and stored runs that keep what they ran
when the problem is later edited or deleted."""

import json

import numpy as np
import pytest
from django.test import Client
from scipy.optimize import differential_evolution

from runs import services
from runs.models import Run, Step, UserProblem
from runs.optim import problem_catalogue, restore_stepper, validate_spec
from runs.optim.expressions import problem_of
from tests.polling import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

RASTRIGIN = {"title": "My Rastrigin", "expression": "A*n + sum(x[i]**2 - A*cos(2*pi*x[i]) for i in range(n))",
             "params": [{"name": "A", "default": 10}], "dim": {"min": 1, "default": 2},
             "bounds": [-5.12, 5.12], "minimum": {"f": 0, "x": 0}}
# Rosenbrock in 20-D with one member per coordinate runs for thousands of generations
CHAIN = {"name": "chain", "title": "Chain", "dim": {"min": 2, "default": 20}, "bounds": [-5, 5],
         "expression": "sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(n-1))"}
LONG = {"method": "de", "problem": "chain", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_a_problem_is_created_listed_and_seen_by_its_owner_only(alice_client, charlie_client):
    r = post(alice_client, "/api/problems/", RASTRIGIN)
    assert r.status_code == 201
    mine = r.json()
    assert mine["name"] == "my_rastrigin" and mine["owner"] == "alice" and mine["title"] == "My Rastrigin"
    assert mine["min_dim"] == 1 and mine["max_dim"] is None and mine["default_dim"] == 2
    assert mine["default_bounds"] == [[-5.12, 5.12]] * 2 and mine["known_minimum"] == {"x": [0.0, 0.0], "f": 0.0}
    assert mine["has_gradient"] and mine["has_hessian"] and mine["complex_step"]
    assert mine["latex"].startswith("f(x) = A n + \\sum_{i=0}^{n - 1}") and len(mine["gradient_latex"]) == 2
    catalogue = json.loads(services.dumps(problem_catalogue()))
    assert alice_client.get("/api/problems/").json() == catalogue + [mine]
    assert charlie_client.get("/api/problems/").json() == catalogue
    assert alice_client.get("/api/problems/my_rastrigin/").json() == mine
    assert charlie_client.get("/api/problems/my_rastrigin/").status_code == 404
    assert charlie_client.delete("/api/problems/my_rastrigin/").status_code == 404
    assert UserProblem.objects.filter(name="my_rastrigin").exists()
    # charlie may have one of the same name: names are per owner
    assert post(charlie_client, "/api/problems/", {**RASTRIGIN, "expression": "sum(x[i]**4 for i in range(n))",
                                                   "params": []}).status_code == 201
    assert alice_client.delete("/api/problems/my_rastrigin/").json() == {"deleted": "my_rastrigin"}
    assert alice_client.get("/api/problems/my_rastrigin/").status_code == 404
    assert charlie_client.get("/api/problems/my_rastrigin/").json()["formula"] == "sum(x[i]**4 for i in range(n))"


def test_errors_are_keyed_by_field_in_words(alice_client):
    r = post(alice_client, "/api/problems/", {**RASTRIGIN, "expression": "x[0] + sine(x[1])", "dim": 2})
    assert r.status_code == 400 and r.json()["code"] == "invalid_spec"
    assert r.json()["errors"]["expression"][0].startswith("position 8: unknown function `sine`")
    r = post(alice_client, "/api/problems/", {**RASTRIGIN, "expression": "x[0] + x[3]", "dim": 2, "params": []})
    assert r.json()["errors"] == {"expression": ["position 8: x[3] used but dim is 2"]}
    r = post(alice_client, "/api/problems/", {**RASTRIGIN, "name": "rosenbrock"})
    assert "catalogue problem" in r.json()["errors"]["name"][0]
    r = post(alice_client, "/api/problems/", {**RASTRIGIN, "expression": "().__class__.__base__", "dim": 2})
    assert r.status_code == 400 and "attribute access" in r.json()["errors"]["expression"][0]
    assert alice_client.post("/api/problems/", "{", content_type="application/json").status_code == 400
    assert post(alice_client, "/api/problems/", RASTRIGIN).status_code == 201
    r = post(alice_client, "/api/problems/", RASTRIGIN)
    assert r.status_code == 400 and "already have a problem called my_rastrigin" in r.json()["errors"]["name"][0]
    assert Client().post("/api/problems/", "{}", content_type="application/json").status_code == 401


def test_posts_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post(client, "/api/problems/", RASTRIGIN).status_code == 403
    assert post(client, "/api/problems/_check/", RASTRIGIN).status_code == 403
    client.get("/problems/new/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    r = client.post("/api/problems/", json.dumps(RASTRIGIN), content_type="application/json",
                    headers={"X-CSRFToken": token})
    assert r.status_code == 201


def test_the_live_check_shows_the_formula_and_gradient_and_stores_nothing(alice_client):
    r = post(alice_client, "/api/problems/_check/", RASTRIGIN)
    assert r.status_code == 200 and r.json()["valid"]
    shown = r.json()["problem"]
    assert shown["gradient_text"] == ["df/dx_0 = 2*pi*A*sin(2*pi*x_0) + 2*x_0", "df/dx_1 = 2*pi*A*sin(2*pi*x_1) + 2*x_1"]
    assert shown["text"] == "f(x) = A*n + Sum(-A*cos(2*pi*x[i]) + x[i]**2, (i, 0, n - 1))"
    assert not UserProblem.objects.exists()
    r = post(alice_client, "/api/problems/_check/", {**RASTRIGIN, "expression": "x[0] + 1/0", "dim": 1})
    assert r.status_code == 200 and not r.json()["valid"]
    assert r.json()["errors"]["expression"] == ["position 10: division by zero"]


def test_a_run_on_ones_own_problem_goes_through_the_services_and_a_real_worker(alice, alice_client, charlie):
    assert post(alice_client, "/api/problems/", RASTRIGIN).status_code == 201
    data = {"method": "de", "problem": "my_rastrigin", "dim": 3, "bounds": [[-5.12, 5.12]] * 3,
            "options": {"seed": 5, "maxiter": 40}}
    with pytest.raises(services.ServiceError) as refused:  # someone else's name is unknown
        services.create_run(owner=charlie, data=data)
    assert "unknown problem 'my_rastrigin'" in refused.value.errors["problem"][0]
    run = services.launch(owner=alice, data=data)
    assert run["problem"] == "my_rastrigin"
    assert services.wait_for_run(run_id=run["id"], timeout=60)
    stored = Run.objects.get(pk=run["id"])
    assert stored.status == "finished" and stored.problem == "my_rastrigin"
    assert stored.spec["definition"]["expression"] == RASTRIGIN["expression"]
    # what scipy gives on the same compiled function
    spec = validate_spec(stored.spec)
    ref = differential_evolution(problem_of(spec).objective(spec.params), [(-5.12, 5.12)] * 3, seed=5, maxiter=40)
    assert stored.result["x"] == ref.x.tolist() and stored.result["fun"] == ref.fun
    assert stored.result["nfev"] == ref.nfev
    shown = alice_client.get(f"/api/runs/{run['id']}/").json()
    assert shown["problem"] == "my_rastrigin" and shown["definition"] == stored.spec["definition"]
    # the contour of what the run ran
    grid = alice_client.get("/api/problems/my_rastrigin/grid/", {"run": run["id"], "dim": 3, "n": 3, "params": '{"A": 4}'})
    assert grid.status_code == 200
    f = problem_of(spec).objective({"A": 4.0})
    g = grid.json()
    assert g["z"][0][0] == f(np.array([g["x"][0], g["y"][0], g["at"][2]]))
    assert alice_client.get("/api/problems/my_rastrigin/grid/", {"params": '{"B": 1}'}).status_code == 400
    assert services.get_run_for(charlie, run["id"]) is None
    charlie_client = Client()
    charlie_client.force_login(charlie)
    assert charlie_client.get("/api/problems/my_rastrigin/grid/", {"run": run["id"]}).status_code == 404
    page = alice_client.get(f"/runs/{run['id']}/")
    assert page.status_code == 200 and b"My Rastrigin" in page.content
    assert page.context["known_minimum"] == {"x": [0.0, 0.0, 0.0], "f": 0.0}
    from runs.exports import known_minimum
    assert known_minimum(stored) == {"x": [0.0, 0.0, 0.0], "f": 0.0}


def test_edits_and_deletes_leave_stored_runs_as_they_ran(alice, alice_client):
    assert post(alice_client, "/api/problems/", CHAIN).status_code == 201
    run_id = services.launch(owner=alice, data=LONG)["id"]
    assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps > 3)
    assert services.pause_run(user=alice, run_id=run_id)[0]
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "paused")
    before = Run.objects.get(pk=run_id)
    ran = before.spec["definition"]
    # the problem is edited, then deleted and made again with another expression
    UserProblem.objects.filter(name="chain").update(definition={**ran, "expression": "sum(x[i]**2 for i in range(n))"})
    assert alice_client.delete("/api/problems/chain/").status_code == 200
    assert post(alice_client, "/api/problems/", {**CHAIN, "expression": "sum(abs(x[i]) for i in range(n))"}).status_code == 201
    # the stored spec alone rebuilds what ran, and the resumed run goes on exactly as it would have
    spec = validate_spec(before.spec)
    assert spec.to_dict() == before.spec and spec.definition.expression == CHAIN["expression"]
    twin = restore_stepper(spec, bytes(before.checkpoint))
    predicted = [next(twin).to_dict() for _ in range(2)]
    assert services.resume_run(user=alice, run_id=run_id)[0]
    n = before.n_steps
    assert wait_until(lambda: Step.objects.filter(run_id=run_id, seq=n + 1).exists())
    actual = [json.loads(Step.objects.get(run_id=run_id, seq=n + k).data) for k in range(2)]
    for a, p in zip(actual, predicted):
        a.pop("elapsed"), p.pop("elapsed")
        assert a == json.loads(services.dumps(p))
    assert services.stop_run_and_wait(run_id=run_id)
    after = Run.objects.get(pk=run_id)
    assert after.spec == before.spec and after.status == "stopped"
    # its contour is of what it ran, not of the problem by that name now
    g = alice_client.get("/api/problems/chain/grid/", {"run": run_id, "dim": 20, "n": 2}).json()
    point = np.array(g["at"])
    point[0], point[1] = g["x"][1], g["y"][1]
    assert g["z"][1][1] == problem_of(spec).objective()(point)
    now = alice_client.get("/api/problems/chain/grid/", {"dim": 20, "n": 2}).json()
    assert now["z"] != g["z"]
    # a new run by that name runs the new expression
    new = services.create_run(owner=alice, data={**LONG, "options": {"maxiter": 3, "seed": 1}})
    assert new.spec["definition"]["expression"] == "sum(abs(x[i]) for i in range(n))"


def test_the_problem_pages(alice_client, charlie_client):
    assert post(alice_client, "/api/problems/", RASTRIGIN).status_code == 201
    page = alice_client.get("/problems/")
    assert page.status_code == 200 and b"My Rastrigin" in page.content and b"my_rastrigin" in page.content
    assert b"my_rastrigin" not in charlie_client.get("/problems/").content
    assert alice_client.get("/problems/new/").status_code == 200
    assert charlie_client.post("/problems/my_rastrigin/delete/").status_code == 404
    r = alice_client.post("/problems/my_rastrigin/delete/")
    assert r.status_code == 302 and not UserProblem.objects.exists()


def test_the_new_run_form_offers_ones_own_problems_and_their_minimum(alice_client, charlie_client):
    assert post(alice_client, "/api/problems/", RASTRIGIN).status_code == 201
    page = alice_client.get("/runs/new/?problem=my_rastrigin&dim=3").content.decode()
    assert '<option value="my_rastrigin" selected' in page.replace("\n", " ") or 'value="my_rastrigin" selected' in page
    assert 'id="param-my_rastrigin-A"' in page and "f* = 0" in page
    known = alice_client.get("/runs/new/known-minimum/?problem=my_rastrigin&dim=3").json()
    assert known["known_minimum"] == {"x": [0.0, 0.0, 0.0], "f": 0.0}
    # someone else's problem: not offered, the form falls back to the catalogue's first problem
    other = charlie_client.get("/runs/new/?problem=my_rastrigin").content.decode()
    assert "my_rastrigin" not in other
    assert charlie_client.get("/runs/new/known-minimum/?problem=my_rastrigin").status_code == 404


def test_a_study_runs_on_ones_own_problem_with_its_minimum(alice_client, charlie_client):
    assert post(alice_client, "/api/problems/", RASTRIGIN).status_code == 201
    study = {"problem": "my_rastrigin", "dim": 2, "repeats": 2, "x0": "random",
             "configs": [{"method": "de", "options": {"maxiter": 20}}, {"method": "lbfgsb"}]}
    r = post(alice_client, "/api/studies/", study)
    assert r.status_code == 201, r.content
    made = r.json()["study"]
    assert wait_until(lambda: alice_client.get(f"/api/studies/{made['id']}/").json()["status"] == "ended", timeout=60)
    summary = alice_client.get(f"/api/studies/{made['id']}/summary/").json()
    assert summary["fstar"] == 0.0 and summary["measure"] == "gap" and summary["configs"][0]["valued"] == 2
    for run_id in made["runs"]:
        spec = Run.objects.get(pk=run_id).spec
        assert spec["problem"] == "my_rastrigin" and spec["definition"]["expression"] == RASTRIGIN["expression"]
    # charlie has no such problem
    refused = post(charlie_client, "/api/studies/", study)
    assert refused.status_code == 400 and "problem" in refused.json()["errors"]
