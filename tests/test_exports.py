"""Exports and the series endpoint: complete, equal to the stored steps, owner-only."""

import csv
import io
import json

import pytest

from runs.models import Step
from tests.runs_factory import real_run, spec_for, store, synthetic_run

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def lbfgsb_run(alice):
    return real_run(alice, spec_for("lbfgsb"), label="L-BFGS-B from (-1.2, 1)")


@pytest.fixture
def de_run(alice):
    return real_run(alice, spec_for("de"), label="DE seed 1")


def complete_run(owner, spec):
    """A run stored as the driver stores it, and its complete steps as the stepper computed them."""
    from runs.encoding import dumps
    from runs.optim import make_stepper, validate_spec

    s = validate_spec(spec)
    stepper = make_stepper(s)
    steps = [json.loads(dumps(step.to_full_dict())) for step in stepper]
    return store(owner, s.to_dict(), steps, result=stepper.result.to_dict()), steps


# -- JSON export ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [spec_for("lbfgsb"), spec_for("de"),
                                  spec_for("de", "rastrigin", dim=10, bounds=[[-5.12, 5.12]] * 10,
                                           options={"maxiter": 300, "popsize": 15, "tol": 0})],
                         ids=["lbfgsb", "de-2d", "de-10d"])
def test_export_json_has_every_field_of_every_step_exactly(alice_client, alice, spec):
    run, steps = complete_run(alice, spec)
    response = alice_client.get(f"/runs/{run.pk}/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    doc = json.loads(body(response))
    assert doc["steps"] == steps  # bulky fields included, every number as computed
    bulky = ("population", "population_energies") if spec["method"] == "de" else ("line_search",)
    assert all(k in s["extra"] for s in doc["steps"] for k in bulky)
    # stored apart: the rows hold the light steps and the blobs
    light = [json.loads(d) for d in Step.objects.filter(run=run).order_by("seq").values_list("data", flat=True)]
    assert not any(k in s["extra"] for s in light for k in bulky)
    assert Step.objects.filter(run=run, bulk__isnull=True).count() == 0


def test_export_json_has_every_stored_step_exactly(alice_client, lbfgsb_run):
    response = alice_client.get(f"/runs/{lbfgsb_run.pk}/export.json")
    doc = json.loads(body(response))
    assert [s["seq"] for s in doc["steps"]] == list(range(lbfgsb_run.n_steps))
    assert doc["run"]["id"] == lbfgsb_run.pk and doc["run"]["status"] == "finished"
    assert doc["result"] == lbfgsb_run.result and doc["result"]["success"] is True
    assert doc["summary"]["f_star"] == 0.0


def test_export_json_of_a_large_run_is_complete(alice_client, alice):
    run = synthetic_run(alice, 12_345)  # more than several export chunks
    doc = json.loads(body(alice_client.get(f"/runs/{run.pk}/export.json")))
    assert len(doc["steps"]) == 12_345
    assert [s["seq"] for s in doc["steps"]] == list(range(12_345))


def test_export_json_of_a_run_without_steps(alice_client, alice):
    from tests.runs_factory import store

    run = store(alice, spec_for("de"), [], result=None, status="queued")
    doc = json.loads(body(alice_client.get(f"/runs/{run.pk}/export.json")))
    assert doc["steps"] == [] and doc["result"] is None


# -- series --------------------------------------------------------------------------------------
def test_series_of_a_small_run_is_every_step(alice_client, de_run):
    s = alice_client.get(f"/api/runs/{de_run.pk}/series/?points=1000").json()
    assert s["downsampled"] is False
    assert s["seq"] == list(range(de_run.n_steps))
    stored = [json.loads(d) for d in Step.objects.filter(run=de_run).order_by("seq").values_list("data", flat=True)]
    assert s["fun"] == [d["fun"] for d in stored]
    assert s["nfev"] == [d["nfev"] for d in stored]
    assert s["x"] == [d["x"] for d in stored]


def test_series_of_a_large_run_is_bounded_and_keeps_extremes(alice_client, alice):
    run = synthetic_run(alice, 20_000, spike_at=12_345)
    s = alice_client.get(f"/api/runs/{run.pk}/series/?points=500&x=0,1").json()
    assert s["downsampled"] is True and s["count"] <= 500 and s["n_steps"] == 20_000
    assert s["seq"][0] == 0 and s["seq"][-1] == 19_999
    assert 12_345 in s["seq"]  # the spike survives
    funs = list(Step.objects.filter(run=run).values_list("fun", flat=True))
    assert min(s["fun"]) == min(funs) and max(s["fun"]) == max(funs) == 1e6
    assert s["best"] == {"fun": min(funs), "seq": funs.index(min(funs))}
    assert all(len(x) == 2 for x in s["x"]) and s["x_dims"] == [0, 1]
    # every column has one value per kept step
    assert {len(s[k]) for k in ("seq", "nit", "nfev", "njev", "elapsed", "fun", "phase", "x")} == {s["count"]}


def test_series_window_and_no_x(alice_client, alice):
    run = synthetic_run(alice, 5_000)
    s = alice_client.get(f"/api/runs/{run.pk}/series/?points=100&from=1000&to=1999&x=none").json()
    assert s["window"] == {"from": 1000, "to": 1999, "count": 1000}
    assert s["seq"][0] == 1000 and s["seq"][-1] == 1999 and "x" not in s


@pytest.mark.parametrize("query", ["points=abc", "from=x", "x=a,b", "x=-1"])
def test_series_rejects_bad_parameters(alice_client, lbfgsb_run, query):
    response = alice_client.get(f"/api/runs/{lbfgsb_run.pk}/series/?{query}")
    assert response.status_code == 400 and "error" in response.json()


# -- comparison summary CSV ----------------------------------------------------------------------
def test_summary_csv_one_row_per_run_with_best_marks(alice_client, lbfgsb_run, de_run):
    response = alice_client.get(f"/runs/compare/summary.csv?ids={lbfgsb_run.pk},{de_run.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["run"]) for r in rows] == [lbfgsb_run.pk, de_run.pk]
    lb, de = rows
    assert float(lb["final f"]) == lbfgsb_run.result["fun"]
    assert int(lb["evaluations"]) == lbfgsb_run.result["nfev"] and int(de["evaluations"]) == de_run.result["nfev"]
    assert int(lb["gradient evaluations"]) == lbfgsb_run.result["njev"]
    assert lb["termination reason"] == lbfgsb_run.result["reason"]
    better = lb if lbfgsb_run.result["fun"] < de_run.result["fun"] else de
    assert "fun" in better["best in"].split()
    assert float(lb["distance to x*"]) == pytest.approx(
        ((lbfgsb_run.result["x"][0] - 1) ** 2 + (lbfgsb_run.result["x"][1] - 1) ** 2) ** 0.5)


def test_summary_csv_bad_ids_is_400(alice_client, lbfgsb_run):
    response = alice_client.get(f"/runs/compare/summary.csv?ids={lbfgsb_run.pk}")
    assert response.status_code == 400
    assert "at least two" in response.content.decode()


# -- permissions ---------------------------------------------------------------------------------
def test_someone_elses_run_is_404_for_every_export(charlie_client, lbfgsb_run, de_run):
    for url in (
        f"/runs/{lbfgsb_run.pk}/export.json",
        f"/api/runs/{lbfgsb_run.pk}/series/",
        f"/runs/compare/summary.csv?ids={lbfgsb_run.pk},{de_run.pk}",
    ):
        response = charlie_client.get(url)
        assert response.status_code == 404, url
        assert b"rosenbrock" not in body(response)


def test_mixing_own_and_foreign_runs_is_404(charlie_client, charlie, lbfgsb_run):
    mine = real_run(charlie, spec_for("lbfgsb"))
    assert charlie_client.get(f"/runs/compare/summary.csv?ids={mine.pk},{lbfgsb_run.pk}").status_code == 404


def test_exports_need_a_login(client, lbfgsb_run):
    response = client.get(f"/runs/{lbfgsb_run.pk}/export.json")
    assert response.status_code in (302, 401, 403)
