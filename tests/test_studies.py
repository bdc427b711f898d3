"""Studies: the spec expands into exactly the runs it says, the runs are scipy's, the aggregates
equal a direct numpy computation over the stored steps, the workers take queued runs fairly
across users, and the API refuses what it must in words."""

import json
import time

import numpy as np
import pytest

from runs import services, studies
from runs.models import Run, RunTrace, Step, Study
from runs.optim import SpecError, get_problem, validate_spec
from runs.optim.oracle import scipy_reference
from runs.optim.study import StudyLimits, starts, validate_study
from runs.study_trace import GRIDS, TARGETS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

SMALL = {"problem": "rastrigin", "dim": 2, "x0": "random", "x0_seed": 7, "repeats": 4,
         "configs": [{"method": "de", "options": {"maxiter": 40, "popsize": 6}},
                     {"method": "lbfgsb", "options": {}}]}


def wait_ended(study, timeout=120):
    deadline = time.monotonic() + timeout
    while study.runs.filter(status__in=Run.ACTIVE).exists():
        assert time.monotonic() < deadline, "the study's runs did not end"
        time.sleep(0.05)


# ---- the spec ---------------------------------------------------------------------------
def test_a_study_spec_expands_into_seeded_runs_with_shared_random_starts():
    spec = validate_study({**SMALL, "configs": [*SMALL["configs"], {"method": "bfgs"}]})
    assert [(r.config, r.repeat) for r in spec.runs] == [(c, r) for c in range(3) for r in range(4)]
    points = starts(spec.bounds, 4, 7)
    for r in spec.runs:
        s = r.spec
        if s["method"] == "de":  # stochastic: seeded 1..N, no start (its population is its start)
            assert s["options"]["seed"] == r.repeat + 1 and s["x0"] is None
        else:  # the same start r for every method that needs one, drawn inside the bounds
            assert s["x0"] == points[r.repeat]
        # methods without bounds are given none (scipy's BFGS takes none)
        assert (s["bounds"] is None) == (s["method"] == "bfgs")
        assert validate_spec(s).to_dict() == s  # every run is a run spec the one validation path accepts
    lo, hi = np.array(spec.bounds).T
    assert all(np.all((lo <= p) & (p <= hi)) for p in points)
    # reproducible: the same spec, the same runs
    assert validate_study(spec.to_dict()).runs == spec.runs
    assert validate_study({**SMALL, "seeds": [9, 8, 7, 6]}).runs[2].spec["options"]["seed"] == 7


@pytest.mark.parametrize("data, field", [
    ({**SMALL, "repeats": 0}, "repeats"),
    ({**SMALL, "repeats": 10 ** 400}, "repeats"),
    ({**SMALL, "repeats": "many"}, "repeats"),
    ({**SMALL, "seeds": [1, 2]}, "seeds"),
    ({**SMALL, "seeds": [1, 2, 3, -1]}, "seeds[3]"),
    ({**SMALL, "configs": []}, "configs"),
    ({**SMALL, "configs": [{"method": "sgd"}]}, "configs[0].method"),
    ({**SMALL, "configs": [{"method": "de", "options": {"maxiter": -1}}]}, "configs[0].options.maxiter"),
    ({**SMALL, "configs": [{"method": "de", "colour": 1}]}, "configs[0].colour"),
    ({**SMALL, "configs": [[[[[]]]]]}, "configs[0]"),
    ({**SMALL, "problem": "nope"}, "problem"),
    ({**SMALL, "dim": 0}, "dim"),
    ({**SMALL, "bounds": [[1, 0], [0, 1]]}, "bounds[0]"),
    ({**SMALL, "x0": [float("nan"), 0]}, "x0"),
    ({**SMALL, "x0": None}, "x0"),  # L-BFGS-B needs a start
    ({**SMALL, "x0_seed": 2 ** 40}, "x0_seed"),
    ({**SMALL, "extra": 1}, "extra"),
    ({**SMALL, "label": "x" * 201}, "label"),
    ({**SMALL, "label": "a\x00b"}, "label"),
    ({**SMALL, "configs": [{"method": "de", "label": "\x00"}]}, "configs[0].label"),
    ({**SMALL, "configs": [{"method": "de", "options": {"maxiter": 10 ** 9}}]}, "configs[0].options.maxiter"),
    ({**SMALL, "configs": [{"method": "de"}] * 13}, "configs"),
    ({**SMALL, "x0": [1, 2, 3], "configs": [{"method": "lbfgsb"}]}, "x0"),
])
def test_a_bad_study_spec_is_refused_at_its_field_in_words(data, field):
    with pytest.raises(SpecError) as caught:
        validate_study(data)
    assert field in caught.value.errors, caught.value.errors
    assert all(isinstance(m, str) and m for m in caught.value.errors[field])


def test_a_study_beyond_the_run_cap_is_a_limit():
    with pytest.raises(SpecError) as caught:
        validate_study({**SMALL, "repeats": 150}, StudyLimits(max_runs=200))
    assert caught.value.code == "limit" and "300 runs" in caught.value.errors["repeats"][0]


# ---- the runs and the aggregates --------------------------------------------------------
def test_a_studys_runs_are_scipys_and_a_second_launch_repeats_them_step_for_step(alice):
    first = studies.create_study(owner=alice, data=SMALL)
    second = studies.create_study(owner=alice, data=first.spec)
    wait_ended(first)
    wait_ended(second)
    a = list(first.runs.order_by("study_config", "study_repeat"))
    b = list(second.runs.order_by("study_config", "study_repeat"))
    assert len(a) == len(b) == 8
    for x, y in zip(a, b):
        assert x.status == y.status == "finished"
        assert x.spec == y.spec
        steps_x = [json.loads(t) for t in Step.objects.filter(run=x).order_by("seq").values_list("data", flat=True)]
        steps_y = [json.loads(t) for t in Step.objects.filter(run=y).order_by("seq").values_list("data", flat=True)]
        for s in steps_x + steps_y:
            s.pop("elapsed")
        assert steps_x == steps_y
        _, ref = scipy_reference(validate_spec(x.spec))
        assert x.result["x"] == list(ref.x) and x.result["fun"] == float(ref.fun) and x.result["nfev"] == ref.nfev


def _best_so_far(steps, axis, grid_value, fstar_shift, ended):
    """Best f of the steps with axis <= grid value, computed directly (NaN when not known yet)."""
    values = [s[axis] for s in steps]
    if not ended and values[-1] <= grid_value:
        return np.nan  # more steps with axis <= g may come
    funs = [s["fun"] for s in steps if s[axis] <= grid_value and s["fun"] is not None]
    return (min(funs) - fstar_shift) if funs else np.nan


def test_the_summary_equals_a_direct_numpy_computation_over_the_stored_steps(alice):
    study = studies.create_study(owner=alice, data={**SMALL, "repeats": 5, "configs": [
        {"method": "de", "options": {"maxiter": 30, "popsize": 5, "tol": 0}},
        {"method": "lbfgsb", "options": {"maxiter": 6}}]})
    wait_ended(study)
    # one more run that is still "running" halfway: its curve is known only as far as it got
    held = study.runs.get(study_config=0, study_repeat=0)
    summary = studies.study_summary(study)
    fstar = get_problem("rastrigin").known_minimum({}, 2)["f"]
    assert summary["fstar"] == fstar and summary["measure"] == "gap"

    def stored(run):
        return list(Step.objects.filter(run=run).order_by("seq").values("nfev", "nit", "elapsed", "fun"))

    for c, config in enumerate(summary["configs"]):
        runs = list(study.runs.filter(study_config=c).order_by("study_repeat"))
        steps = {r.pk: stored(r) for r in runs}
        bests = np.array([min(s["fun"] for s in steps[r.pk]) - fstar for r in runs])
        q1, med, q3 = np.percentile(bests, [25, 50, 75])
        assert config["final"] == {"median": med, "q1": q1, "q3": q3, "min": bests.min(), "max": bests.max(),
                                   "n": len(runs)}
        assert config["valued"] == len(runs)
        for axis in ("nfev", "nit", "elapsed"):
            grid = summary["grids"][axis]
            matrix = np.array([[_best_so_far(steps[r.pk], axis, g, fstar, True) for g in grid] for r in runs])
            band = config["bands"][axis]
            assert band["n"] == list(np.sum(~np.isnan(matrix), axis=0))
            known = ~np.all(np.isnan(matrix), axis=0)
            expect_med = np.full(len(grid), np.nan)
            expect_med[known] = np.nanmedian(matrix[:, known], axis=0)
            assert [np.nan if v is None else v for v in band["median"]] == pytest.approx(
                list(expect_med), nan_ok=True, rel=0, abs=0)
            expect_q1 = np.full(len(grid), np.nan)
            expect_q1[known] = np.nanpercentile(matrix[:, known], 25, axis=0)
            assert [np.nan if v is None else v for v in band["q1"]] == pytest.approx(list(expect_q1), nan_ok=True,
                                                                                      rel=0, abs=0)
        for t, target in zip(config["targets"], TARGETS):
            hit_nfev = []
            spent = 0
            for r in runs:
                best, hit = np.inf, None
                for s in steps[r.pk]:
                    best = min(best, s["fun"])
                    if best - fstar <= target:
                        hit = s["nfev"]
                        break
                spent += hit if hit is not None else steps[r.pk][-1]["nfev"]
                if hit is not None:
                    hit_nfev.append(hit)
            assert t["gap"] == target and t["hits"] == len(hit_nfev) and t["ecdf"] == sorted(hit_nfev)
            assert t["ert"] == (spent / len(hit_nfev) if hit_nfev else None)
            assert t["rate"] == len(hit_nfev) / len(runs)
        for b in config["budgets"]:
            values = np.array([_best_so_far(steps[r.pk], "nfev", b["budget"], fstar, True) for r in runs])
            values = values[~np.isnan(values)]
            assert b["values"] == list(values) and b["n"] == len(values)
            if len(values):
                assert b["median"] == np.median(values)

    # A run still going is known only up to where it has got: pretend the first DE run is half
    # way (its trace as the driver would have stored it then) and compare again.
    from runs.study_trace import Trace

    half = stored(held)[: len(stored(held)) // 2]
    trace = Trace(fstar)
    for i, s in enumerate(half):
        trace.fold(i, s["nfev"], s["nit"], s["elapsed"], s["fun"])
    RunTrace.objects.filter(run=held).update(data=trace.to_json())
    Run.objects.filter(pk=held.pk).update(status="running")
    summary = studies.study_summary(study)
    grid = summary["grids"]["nfev"]
    runs = list(study.runs.filter(study_config=0).order_by("study_repeat"))
    matrix = np.array([[_best_so_far(half if r.pk == held.pk else stored(r), "nfev", g, fstar, r.pk != held.pk)
                        for g in grid] for r in runs])
    assert summary["configs"][0]["bands"]["nfev"]["n"] == list(np.sum(~np.isnan(matrix), axis=0))
    assert summary["configs"][0]["running"] == 1 and summary["configs"][0]["finished"] == len(runs) - 1
    Run.objects.filter(pk=held.pk).update(status="finished")


def test_a_constrained_studys_best_counts_only_feasible_steps(alice):
    study = studies.create_study(owner=alice, data={
        "problem": "rosenbrock_disk", "dim": 2, "x0": "random", "repeats": 3,
        "configs": [{"method": "cobyla", "options": {"maxiter": 60}}]})
    wait_ended(study)
    detail = studies.study_runs(study)
    for row in detail:
        steps = [json.loads(t) for t in Step.objects.filter(run_id=row["id"]).order_by("seq").values_list("data", flat=True)]
        feasible = [s["fun"] for s in steps if s["fun"] is not None and (s["extra"].get("violation") or 0) <= 1e-6]
        assert row["best_fun"] == (min(feasible) if feasible else None)
    summary = studies.study_summary(study)
    bests = [r["best_fun"] for r in detail if r["best_fun"] is not None]
    assert summary["configs"][0]["valued"] == len(bests)
    if bests:
        assert summary["configs"][0]["final"]["min"] == min(bests) - summary["fstar"]


def test_the_trace_survives_a_pause_and_resume_exactly(alice):
    # rand1bin on 10-D Rosenbrock does not converge early: long enough to be paused
    study = studies.create_study(owner=alice, data={
        "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10, "repeats": 1, "configs": [
            {"method": "de", "options": {"maxiter": 20000, "popsize": 1, "tol": 0, "strategy": "rand1bin",
                                         "polish": False}}]})
    run = study.runs.get()
    deadline = time.monotonic() + 60
    while Run.objects.get(pk=run.pk).n_steps < 5:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    services.pause_run(user=alice, run_id=run.pk)
    services.wait_for_run(run_id=run.pk, timeout=60)
    assert Run.objects.get(pk=run.pk).status == "paused"
    services.resume_run(user=alice, run_id=run.pk)
    deadline = time.monotonic() + 60
    paused_at = Run.objects.get(pk=run.pk).n_steps
    while Run.objects.get(pk=run.pk).n_steps < paused_at + 5:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    services.stop_run(user=alice, run_id=run.pk)
    wait_ended(study)
    from runs.study_trace import Trace

    fstar = get_problem("rosenbrock").known_minimum({}, 10)["f"]
    direct = Trace(fstar)
    for s in Step.objects.filter(run=run).order_by("seq").values("seq", "nfev", "nit", "elapsed", "fun"):
        direct.fold(s["seq"], s["nfev"], s["nit"], s["elapsed"], s["fun"])
    assert json.loads(RunTrace.objects.get(run=run).data) == json.loads(direct.to_json())


# ---- fairness -------------------------------------------------------------------------------
def test_another_users_run_starts_within_one_run_of_a_free_worker_while_a_big_study_waits(alice, charlie, settings):
    from runs import dispatch

    pool = dispatch.local_pool()
    study = studies.create_study(owner=alice, data={**SMALL, "repeats": 30, "configs": [
        {"method": "de", "options": {"maxiter": 60, "popsize": 8, "tol": 0}}]})
    deadline = time.monotonic() + 60
    while Run.objects.filter(status="running").count() < pool.size:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    single = services.create_run(owner=charlie, data={"method": "de", "problem": "rastrigin", "dim": 2,
                                                      "bounds": [[-5, 5], [-5, 5]], "options": {"maxiter": 5}})
    queued_at = Run.objects.get(pk=single.pk).queued_at
    services.start_run(run_id=single.pk)
    services.wait_for_run(run_id=single.pk, timeout=60)
    single = Run.objects.get(pk=single.pk)
    assert single.status == "finished"
    # alice's runs that started after charlie's was queued and before it: at most one per worker
    # that freed in the moment before the pool saw his run
    overtook = study.runs.filter(started__gt=queued_at, started__lt=single.started).count()
    assert overtook <= 1, overtook
    assert study.runs.filter(status="queued").exists(), "the study should still be waiting"
    studies.control_study(user=alice, study_id=study.pk, action="stop")


def test_the_fair_queue_alternates_owners_and_counts_their_running_runs(alice, charlie):
    from datetime import timedelta

    from django.utils import timezone

    from runs.run_objects import fair_queue, queue_position

    # stored as queued without a wake-up: no worker takes them, they are only looked at
    spec = validate_spec({"method": "lbfgsb", "problem": "sphere", "dim": 2, "x0": [1, 1]}).to_dict()
    now = timezone.now()

    def queued(owner, seconds, **fields):
        return Run.objects.create(owner=owner, method="lbfgsb", problem="sphere", spec=spec,
                                  queued_at=now + timedelta(seconds=seconds), **fields).pk

    a = [queued(alice, i) for i in range(3)]
    c = queued(charlie, 10)
    assert fair_queue() == [a[0], c, a[1], a[2]]
    # one of alice's handed to a worker: charlie's goes first
    assert fair_queue(a[1:] + [c], also_running=[a[0]]) == [c, a[1], a[2]]
    # one of charlie's running: alice's oldest first, then they alternate again
    running = Run.objects.create(owner=charlie, method="lbfgsb", problem="sphere", spec=spec, status="running").pk
    assert fair_queue() == [a[0], a[1], c, a[2]]
    # a run that waits only to write its stop goes before all
    s = queued(charlie, 20, control_requests="stop")
    assert fair_queue()[0] == s
    assert [queue_position(Run.objects.get(pk=pk)) for pk in fair_queue()] == [1, 2, 3, 4, 5]
    Run.objects.filter(pk__in=[*a, c, s, running]).update(status="stopped")


# ---- the API ------------------------------------------------------------------------------
def test_the_api_creates_lists_summarizes_and_isolates_studies(alice_client, charlie_client):
    response = alice_client.post("/api/studies/", json.dumps(SMALL), content_type="application/json")
    assert response.status_code == 201, response.content
    study = response.json()["study"]
    assert study["url"] == f"/studies/{study['id']}/" and len(study["runs"]) == 8
    assert study["configs"][0]["label"] == "DE" and study["repeats"] == 4 and study["seeds"] == [1, 2, 3, 4]
    detail = alice_client.get(f"/api/studies/{study['id']}/").json()
    assert [r["id"] for r in detail["run_list"]] == study["runs"]
    summary = alice_client.get(f"/api/studies/{study['id']}/summary/").json()
    assert [c["index"] for c in summary["configs"]] == [0, 1]
    again = alice_client.get(f"/api/studies/{study['id']}/summary/?since={summary['version']}").json()
    assert again.get("unchanged") or again["version"] != summary["version"]
    assert [s["id"] for s in alice_client.get("/api/studies/").json()] == [study["id"]]
    for url in (f"/api/studies/{study['id']}/", f"/api/studies/{study['id']}/summary/"):
        assert charlie_client.get(url).status_code == 404
    assert charlie_client.post(f"/api/studies/{study['id']}/stop/").status_code == 404
    assert charlie_client.get(f"/studies/{study['id']}/runs.csv").status_code == 404
    assert charlie_client.get("/api/studies/").json() == []
    stop = alice_client.post(f"/api/studies/{study['id']}/stop/")
    assert stop.status_code == 200 and stop.json()["study"]["id"] == study["id"]
    wait_ended(Study.objects.get(pk=study["id"]))
    assert alice_client.post(f"/api/studies/{study['id']}/stop/").status_code == 409
    spec = alice_client.get(f"/studies/{study['id']}/spec.json")
    assert json.loads(spec.content) == Study.objects.get(pk=study["id"]).spec
    rows = alice_client.get(f"/studies/{study['id']}/runs.csv").content.decode().splitlines()
    assert len(rows) == 9 and rows[0].startswith("run,config,label,method,repeat,seed")
    table = alice_client.get(f"/studies/{study['id']}/summary.csv").content.decode().splitlines()
    assert table[0].startswith("table,config") and any(r.startswith("final,0,DE") for r in table)


@pytest.mark.parametrize("body", [
    "{", "[]", "1e999999", '{"a":' * 5000 + "1" + "}" * 5000, '{"problem": NaN}', "\x00",
    json.dumps({**SMALL, "repeats": 1e308}),
])
def test_the_api_refuses_hostile_bodies_in_words_and_stores_nothing(alice_client, body):
    response = alice_client.post("/api/studies/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert not Study.objects.exists() and not Run.objects.exists()


def test_the_api_caps_active_studies_per_user(alice_client, settings):
    settings.OPTSITE_MAX_ACTIVE_STUDIES = 1
    data = {**SMALL, "configs": [{"method": "de", "options": {"maxiter": 1000, "popsize": 20, "tol": 0}}]}
    assert alice_client.post("/api/studies/", json.dumps(data), content_type="application/json").status_code == 201
    refused = alice_client.post("/api/studies/", json.dumps(data), content_type="application/json")
    assert refused.status_code == 400 and refused.json()["code"] == "limit"
    assert "studies" in refused.json()["error"] or "stud" in refused.json()["error"]
    assert Study.objects.count() == 1
    # a study's runs do not count against the cap on single runs
    spec = {"method": "lbfgsb", "problem": "sphere", "dim": 2, "x0": [1, 1]}
    services.create_run(owner=Study.objects.get().owner, data=spec)


def test_the_grids_hold_the_1_2_5_budgets():
    assert {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10 ** 6} <= set(GRIDS["nfev"])
    assert list(GRIDS["nfev"]) == sorted(set(GRIDS["nfev"]))


# ---- the socket -----------------------------------------------------------------------------
async def test_the_launch_socket_launches_and_controls_a_study_and_refuses_in_words(alice, charlie):
    from channels.db import database_sync_to_async

    from tests.test_consumers import connect

    comm = await connect("/ws/runs/", alice)
    await comm.send_json_to({"type": "study", "spec": {**SMALL, "repeats": 0}})
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "invalid_spec" and "repeats" in error["errors"]
    await comm.send_json_to({"type": "study", "spec": {**SMALL, "configs": [
        {"method": "de", "options": {"maxiter": 1000, "popsize": 20, "tol": 0}}]}})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "study" and len(reply["study"]["runs"]) == 4
    study_id = reply["study"]["id"]
    await comm.send_json_to({"type": "study_control", "study": study_id, "action": "explode"})
    assert (await comm.receive_json_from(timeout=10))["code"] == "bad_message"
    await comm.send_json_to({"type": "study_control", "study": study_id, "action": "pause"})
    paused = await comm.receive_json_from(timeout=10)
    assert paused["type"] == "study" and paused["study"]["id"] == study_id
    await comm.disconnect()

    other = await connect("/ws/runs/", charlie)
    await other.send_json_to({"type": "study_control", "study": study_id, "action": "stop"})
    refused = await other.receive_json_from(timeout=10)
    assert refused["type"] == "error" and refused["code"] == "not_found"
    await other.disconnect()
    counts = await database_sync_to_async(lambda: studies.study_to_dict(Study.objects.get(pk=study_id))["counts"])()
    assert counts["stopped"] == 0  # charlie's stop changed nothing


def test_the_history_filters_runs_by_study_and_links_each_to_its_study(alice, alice_client):
    study = studies.create_study(owner=alice, data={**SMALL, "repeats": 1})
    single = services.create_run(owner=alice, data={"method": "lbfgsb", "problem": "sphere", "dim": 2, "x0": [1, 1]})
    wait_ended(study)
    page = alice_client.get(f"/runs/?study={study.pk}").content.decode()
    assert page.count(f'href="/studies/{study.pk}/"') == 2  # a badge on each of its two runs
    assert f'href="/runs/{single.pk}/"' not in page
    alone = alice_client.get("/runs/?study=none").content.decode()
    assert f'href="/runs/{single.pk}/"' in alone and "study-badge" not in alone
    for bad in ("x", "99999999999999999999999", "٣"):
        response = alice_client.get(f"/runs/?study={bad}")
        assert response.status_code == 200 and "none of them match" in response.content.decode()
    services.stop_run(user=alice, run_id=single.pk)
