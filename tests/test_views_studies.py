"""Study pages through Django's test client: they render for their owner, someone else's study is a
404, the new-study form prefills from the user's own runs only, and odd ids never break a page."""

import json
import re

import pytest

from runs import studies
from runs.models import Run, Study
from runs.optim import method_catalogue
from tests.runs_factory import real_run, spec_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

SMALL = {"problem": "rastrigin", "dim": 2, "x0": "random", "x0_seed": 3, "repeats": 2,
         "configs": [{"method": "de", "options": {"maxiter": 5, "popsize": 5}, "label": "DE <b>small</b>"},
                     {"method": "lbfgsb", "options": {"maxiter": 3}}]}


def json_block(html: str, block_id: str):
    found = re.search(rf'<script id="{block_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, block_id
    return json.loads(found.group(1))


def wait_ended(study, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while study.runs.filter(status__in=Run.ACTIVE).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_list_shows_the_users_studies_newest_first_or_an_empty_state(alice, alice_client, charlie):
    empty = alice_client.get("/studies/").content.decode()
    assert 'id="empty-studies"' in empty and 'href="/studies/new/"' in empty
    first = studies.create_study(owner=alice, data={**SMALL, "label": "first"})
    second = studies.create_study(owner=alice, data={**SMALL, "label": "second"})
    studies.create_study(owner=charlie, data={**SMALL, "label": "charlie's"})
    html = alice_client.get("/studies/").content.decode()
    assert html.index(f'href="/studies/{second.pk}/"') < html.index(f'href="/studies/{first.pk}/"')
    assert "charlie&#x27;s" not in html and "charlie's" not in html
    assert 'id="empty-studies"' not in html
    assert "DE &lt;b&gt;small&lt;/b&gt;" in html  # labels are text
    assert 'class="nav-link active" href="/studies/"' in html


def test_a_study_page_renders_for_its_owner_and_is_a_404_for_anyone_else(alice, alice_client, charlie_client):
    study = studies.create_study(owner=alice, data=SMALL)
    wait_ended(study)
    response = alice_client.get(f"/studies/{study.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    data = json_block(html, "study-data")
    assert data["study"]["id"] == study.pk and len(data["study"]["run_list"]) == 4
    assert data["summary"]["measure"] == "gap"  # Rastrigin's f* is known
    for run_id in data["study"]["runs"]:  # every run links its page, in the HTML itself
        assert f'href="/runs/{run_id}/"' in html
    for export in ("runs.csv", "summary.csv", "spec.json"):
        assert f'href="/studies/{study.pk}/{export}"' in html
    assert 'id="targets-table"' in html
    assert charlie_client.get(f"/studies/{study.pk}/").status_code == 404
    assert charlie_client.post(f"/studies/{study.pk}/delete/").status_code == 404
    assert Study.objects.filter(pk=study.pk).exists()


def test_a_problem_without_a_known_minimum_has_no_targets_and_says_why(alice, alice_client):
    spec = {**SMALL, "problem": "rosenbrock_disk", "params": {"s": 0.5},  # f* known for s = 2 only
            "configs": [{"method": "de", "options": {"maxiter": 5, "popsize": 5}}, {"method": "cobyla"}]}
    study = studies.create_study(owner=alice, data=spec)
    html = alice_client.get(f"/studies/{study.pk}/").content.decode()
    data = json_block(html, "study-data")
    assert data["summary"]["fstar"] is None and data["summary"]["measure"] == "f"
    assert 'id="no-targets"' in html and 'id="targets-table"' not in html
    assert "f* is unknown" in html


@pytest.mark.parametrize("path", ["/studies/0/", "/studies/99999999/", "/studies/99999999999999999999999/"])
def test_bad_study_ids_are_404s(alice_client, path):
    assert alice_client.get(path).status_code == 404


def test_pages_need_a_login(client, alice):
    study = studies.create_study(owner=alice, data=SMALL)
    for path in ("/studies/", "/studies/new/", f"/studies/{study.pk}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path


def test_the_new_study_form_starts_from_sensible_defaults(alice_client):
    html = alice_client.get("/studies/new/").content.decode()
    prefill = json_block(html, "study-prefill")
    assert prefill["problem"] == "rastrigin" and prefill["dim"] == 2 and prefill["x0"] == "random"
    assert [c["method"] for c in prefill["configs"]] == ["de", "lbfgsb"] and prefill["repeats"] == 20
    config = json_block(html, "page-config")
    assert config["max_runs"] == studies.study_limits().max_runs
    groups = json_block(html, "method-groups")
    assert sorted(m for g in groups for m in g["methods"]) == sorted(m["name"] for m in method_catalogue())
    # the prefill is a study the API takes as it stands
    studies.validate(prefill)


def test_the_form_prefills_from_the_users_run_and_a_method_against_it(alice, alice_client):
    spec = spec_for("de", "ackley", bounds=[[-3, 3], [-2, 2]])
    spec["options"] = {**spec.get("options", {}), "maxiter": 7, "seed": 42}
    run = real_run(alice, spec, label="mine")
    html = alice_client.get(f"/studies/new/?from={run.pk}&against=nelder-mead").content.decode()
    prefill = json_block(html, "study-prefill")
    assert prefill["problem"] == "ackley" and prefill["dim"] == run.spec["dim"]
    assert prefill["bounds"] == [[-3.0, 3.0], [-2.0, 2.0]]
    first, second = prefill["configs"]
    assert first["method"] == "de" and first["options"]["maxiter"] == 7
    assert "seed" not in first["options"] and "rng" not in first["options"]  # the study's seeds replace it
    assert second == {"method": "nelder-mead", "options": {}, "label": ""}
    assert f'href="/runs/{run.pk}/"' in html
    made = studies.validate({k: v for k, v in prefill.items() if k != "from_run"})
    assert made.runs[0].spec["options"]["maxiter"] == 7


def test_someone_elses_run_or_a_bad_id_is_passed_over_not_an_error(alice_client, charlie):
    theirs = real_run(charlie, spec_for("lbfgsb", "sphere", x0=[1.0, 2.0]), label="charlie's")
    for query in (f"?from={theirs.pk}", "?from=abc", "?from=-1", "?from=" + "9" * 40, "?against=sgd", "?from=&against="):
        response = alice_client.get("/studies/new/" + query)
        assert response.status_code == 200, query
        prefill = json_block(response.content.decode(), "study-prefill")
        assert prefill["problem"] == "rastrigin", query  # the defaults, not charlie's sphere
        assert "from_run" not in prefill
    html = alice_client.get(f"/studies/new/?from={theirs.pk}").content.decode()
    assert f"There is no run {theirs.pk} of yours" in html
    assert "There is no method" in alice_client.get("/studies/new/?against=sgd").content.decode()


def test_the_form_starts_from_one_of_the_users_studies_to_run_it_again(alice, alice_client, charlie_client):
    study = studies.create_study(owner=alice, data={**SMALL, "seeds": [5, 6], "label": "again"})
    html = alice_client.get(f"/studies/new/?study={study.pk}").content.decode()
    prefill = json_block(html, "study-prefill")
    assert prefill["from_study"] == study.pk
    relaunch = {k: v for k, v in prefill.items() if k != "from_study"}
    assert studies.validate(relaunch).runs == studies.validate(study.spec).runs  # the same runs again
    assert f'href="/studies/new/?study={study.pk}"' in alice_client.get(f"/studies/{study.pk}/").content.decode()
    theirs = json_block(charlie_client.get(f"/studies/new/?study={study.pk}").content.decode(), "study-prefill")
    assert "from_study" not in theirs and theirs["label"] == ""


def test_against_alone_pairs_the_default_first_method_with_it(alice_client):
    prefill = json_block(alice_client.get("/studies/new/?against=powell").content.decode(), "study-prefill")
    assert [c["method"] for c in prefill["configs"]] == ["de", "powell"]


def test_delete_removes_the_study_and_its_runs(alice, alice_client):
    study = studies.create_study(owner=alice, data=SMALL)
    ids = list(study.runs.values_list("pk", flat=True))
    response = alice_client.post(f"/studies/{study.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/studies/"
    assert not Study.objects.filter(pk=study.pk).exists() and not Run.objects.filter(pk__in=ids).exists()
