"""History page, relabel/delete/clone actions and the compare page (server side)."""

import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from runs.models import Run, Step
from tests.runs_factory import real_run, spec_for, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(alice):
    """Four finished runs of alice: two methods, two problems."""
    return [
        real_run(alice, spec_for("lbfgsb"), label="lb rosen"),
        real_run(alice, spec_for("de"), label="de rosen"),
        real_run(alice, spec_for("lbfgsb", "sphere", x0=[1.0, 2.0]), label="lb sphere"),
        real_run(alice, spec_for("de", "himmelblau", bounds=[[-5, 5], [-5, 5]]), label="de himmel"),
    ]


def run_ids(response) -> list[int]:
    """Run ids in table order, read from the rows' links (the page's PROTOCOL promise)."""
    html = response.content.decode()
    return [int(i) for i in re.findall(r'<tr id="run-(\d+)"', html)]


# -- history -------------------------------------------------------------------------------------
def test_it_lists_the_users_runs_with_links_newest_first(alice_client, runs):
    response = alice_client.get("/runs/")
    assert response.status_code == 200
    html = response.content.decode()
    for run in runs:
        assert f'href="/runs/{run.pk}/"' in html
    assert run_ids(response) == [r.pk for r in reversed(runs)]
    assert "rosenbrock(a=1, b=100), 2-D" in html
    assert "text-bg-success" in html  # finished badge


def test_it_shows_only_the_users_runs(charlie_client, runs):
    response = charlie_client.get("/runs/")
    assert run_ids(response) == []
    assert "No runs yet" in response.content.decode()


def test_empty_state_for_filters_offers_to_clear(alice_client, runs):
    response = alice_client.get("/runs/?q=nothing-like-this")
    html = response.content.decode()
    assert "No runs match these filters" in html and 'href="/runs/"' in html


@pytest.mark.parametrize("query,labels", [
    ("method=de", {"de rosen", "de himmel"}),
    ("problem=sphere", {"lb sphere"}),
    ("q=ROSEN", {"lb rosen", "de rosen"}),
    ("method=lbfgsb&problem=rosenbrock", {"lb rosen"}),
    ("status=finished", {"lb rosen", "de rosen", "lb sphere", "de himmel"}),
    ("status=running", set()),
])
def test_it_filters_with_get_parameters(alice_client, runs, query, labels):
    ids = run_ids(alice_client.get(f"/runs/?{query}"))
    assert {r.label for r in runs if r.pk in ids} == labels


def test_active_filter(alice_client, alice, runs):
    live = store(alice, spec_for("de"), [], result=None, status="running", label="going")
    assert run_ids(alice_client.get("/runs/?status=active")) == [live.pk]


@pytest.mark.parametrize("sort", ["id", "-id", "label", "-label", "nfev", "-nfev", "fun", "-fun", "gap", "-gap",
                                  "nit", "elapsed", "method", "problem", "status", "created"])
def test_it_sorts_by_any_column(alice_client, runs, sort):
    ids = run_ids(alice_client.get(f"/runs/?sort={sort}"))
    key = sort.lstrip("-")
    by = {r.pk: r for r in Run.objects.filter(pk__in=ids)}
    values = {
        "id": lambda r: r.pk, "label": lambda r: r.label, "nfev": lambda r: r.nfev, "fun": lambda r: r.best_fun,
        "gap": lambda r: r.best_fun,  # f* = 0 for all three problems
        "nit": lambda r: r.nit,
        "elapsed": lambda r: r.elapsed, "method": lambda r: r.method, "problem": lambda r: r.problem,
        "status": lambda r: r.status, "created": lambda r: r.created,
    }[key]
    got = [values(by[i]) for i in ids]
    assert got == sorted(got, reverse=sort.startswith("-"))
    assert len(ids) == 4


def test_sort_headers_toggle_and_keep_filters(alice_client, runs):
    html = alice_client.get("/runs/?method=de&sort=nfev").content.decode()
    assert 'aria-sort="ascending"' in html
    assert 'href="?method=de&amp;sort=-nfev"' in html  # next click: descending, filter kept


def test_it_paginates(alice_client, alice):
    for i in range(12):
        store(alice, spec_for("lbfgsb"), [], result=None, status="finished", label=f"r{i}")
    first = run_ids(alice_client.get("/runs/?per=10"))
    second = run_ids(alice_client.get("/runs/?per=10&page=2"))
    assert len(first) == 10 and len(second) == 2 and not set(first) & set(second)
    html = alice_client.get("/runs/?per=10").content.decode()
    assert "page=2" in html and "Runs 1–10 of 12" in html
    # a page past the end shows the last page rather than an error
    assert run_ids(alice_client.get("/runs/?per=10&page=99")) == second


def test_bad_parameters_fall_back_to_defaults(alice_client, runs):
    response = alice_client.get("/runs/?sort=evil&per=7&page=x")
    assert response.status_code == 200 and len(run_ids(response)) == 4


def test_rows_endpoint_renders_only_own_rows(alice_client, charlie_client, runs):
    ids = ",".join(str(r.pk) for r in runs)
    out = alice_client.get(f"/runs/rows/?ids={ids}").json()["rows"]
    assert set(out) == {str(r.pk) for r in runs}
    assert f'id="run-{runs[0].pk}"' in out[str(runs[0].pk)]["html"]
    assert charlie_client.get(f"/runs/rows/?ids={ids}").json()["rows"] == {}
    assert alice_client.get("/runs/rows/?ids=a").status_code == 400


# -- relabel -------------------------------------------------------------------------------------
def test_relabel_with_a_form_post_redirects_back(alice_client, runs):
    run = runs[0]
    response = alice_client.post(f"/runs/{run.pk}/relabel/", {"label": "  best   so far ", "next": "/runs/?q=x"})
    assert response.status_code == 302 and response["Location"] == "/runs/?q=x"
    run.refresh_from_db()
    assert run.label == "best so far"


def test_relabel_as_json_and_too_long(alice_client, runs):
    run = runs[0]
    ok = alice_client.post(f"/runs/{run.pk}/relabel/", {"label": "new"}, headers={"Accept": "application/json"})
    assert ok.json() == {"id": run.pk, "label": "new"}
    bad = alice_client.post(f"/runs/{run.pk}/relabel/", {"label": "x" * 201}, headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "200 characters" in bad.json()["error"]
    run.refresh_from_db()
    assert run.label == "new"


def test_relabel_refuses_open_redirects(alice_client, runs):
    response = alice_client.post(f"/runs/{runs[0].pk}/relabel/", {"label": "a", "next": "https://evil.example/"})
    assert response["Location"] == "/runs/"


def test_relabel_and_delete_go_back_only_to_a_path(alice_client, runs):
    # redirect() reads a bare word as a view's name: "7" or "abc" raised NoReverseMatch (500)
    for nxt in ("7", "abc", "2147483646", "//evil.example/"):
        response = alice_client.post(f"/runs/{runs[0].pk}/relabel/", {"label": "a", "next": nxt})
        assert response.status_code == 302 and response["Location"] == "/runs/", nxt
    response = alice_client.post(f"/runs/{runs[1].pk}/delete/", {"next": "abc"})
    assert response.status_code == 302 and response["Location"] == "/runs/"


def test_relabel_needs_post(alice_client, runs):
    assert alice_client.get(f"/runs/{runs[0].pk}/relabel/").status_code == 405


# -- delete --------------------------------------------------------------------------------------
def test_delete_asks_first_then_removes_the_run_and_its_steps(alice_client, runs):
    run = runs[1]
    n = run.n_steps
    confirm = alice_client.get(f"/runs/{run.pk}/delete/")
    assert confirm.status_code == 200 and f"{n} stored steps" in confirm.content.decode()
    assert Run.objects.filter(pk=run.pk).exists()
    response = alice_client.post(f"/runs/{run.pk}/delete/", {"next": "/runs/?method=de"})
    assert response.status_code == 302 and response["Location"] == "/runs/?method=de"
    assert not Run.objects.filter(pk=run.pk).exists()
    assert not Step.objects.filter(run_id=run.pk).exists()
    messages = alice_client.get("/runs/").content.decode()
    assert f"Run {run.pk} deleted with its {n} steps." in messages


def test_delete_as_json(alice_client, runs):
    response = alice_client.post(f"/runs/{runs[0].pk}/delete/", headers={"Accept": "application/json"})
    assert response.json()["deleted"] == runs[0].pk


def test_delete_from_the_run_page_returns_to_history(alice_client, runs):
    response = alice_client.post(f"/runs/{runs[0].pk}/delete/", {"next": f"/runs/{runs[0].pk}/"})
    assert response["Location"] == "/runs/"


# -- clone ---------------------------------------------------------------------------------------
def test_clone_opens_the_new_run_form_with_the_spec(alice_client, runs):
    run = runs[1]
    response = alice_client.get(f"/runs/{run.pk}/clone/")
    assert response.status_code == 302
    url = urlparse(response["Location"])
    assert url.path == "/runs/new/"
    assert json.loads(parse_qs(url.query)["spec"][0]) == run.spec


# -- permissions ---------------------------------------------------------------------------------
def test_someone_elses_run_is_404_for_every_action(charlie_client, runs):
    run = runs[0]
    assert charlie_client.get(f"/runs/{run.pk}/clone/").status_code == 404
    assert charlie_client.get(f"/runs/{run.pk}/delete/").status_code == 404
    assert charlie_client.post(f"/runs/{run.pk}/delete/").status_code == 404
    assert charlie_client.post(f"/runs/{run.pk}/relabel/", {"label": "mine"}).status_code == 404
    run.refresh_from_db()
    assert run.label == "lb rosen"


def test_pages_need_a_login(client, runs):
    for url in ("/runs/", f"/runs/compare/?ids={runs[0].pk},{runs[1].pk}"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# -- compare -------------------------------------------------------------------------------------
def test_compare_shows_the_runs_summary_and_overlays_one_contour(alice_client, runs):
    a, b = runs[0], runs[1]
    response = alice_client.get(f"/runs/compare/?ids={a.pk},{b.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/runs/{a.pk}/"' in html and f'href="/runs/{b.pk}/"' in html
    assert 'id="contour-shared"' in html and "own landscape" not in html
    assert html.count('class="text-end num best"') >= 3  # best values are marked
    data = json.loads(re.search(r'<script id="compare-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [d["id"] for d in data] == [a.pk, b.pk]
    assert data[0]["f_star"] == 0.0 and data[0]["x_star"] == [1.0, 1.0]


def test_compare_different_problems_side_by_side_with_a_note(alice_client, runs):
    html = alice_client.get(f"/runs/compare/?ids={runs[0].pk},{runs[2].pk},{runs[3].pk}").content.decode()
    assert "own landscape" in html and 'id="contour-shared"' not in html
    assert html.count('class="plot contour-single"') == 3


def test_compare_accepts_the_plain_form_submission(alice_client, runs):
    response = alice_client.get(f"/runs/compare/?ids={runs[0].pk}&ids={runs[1].pk}")
    assert response.status_code == 302 and response["Location"] == f"/runs/compare/?ids={runs[0].pk},{runs[1].pk}"


@pytest.mark.parametrize("ids,words", [
    ("", "No runs were given"),
    ("3", "at least two"),
    ("3,abc", "not a run number"),
    ("3,-4", "not a run number"),
    ("1,2,3,4,5", "at most 4"),
    ("7,7", "listed twice"),
])
def test_compare_invalid_ids_is_a_clear_400(alice_client, ids, words):
    response = alice_client.get(f"/runs/compare/?ids={ids}")
    assert response.status_code == 400
    assert words in response.content.decode()


def test_compare_someone_elses_run_is_404(alice_client, charlie, runs):
    theirs = real_run(charlie, spec_for("lbfgsb"))
    assert alice_client.get(f"/runs/compare/?ids={runs[0].pk},{theirs.pk}").status_code == 404
    assert alice_client.get(f"/runs/compare/?ids={runs[0].pk},999999").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_deleting_a_running_run_stops_it_first(alice_client, alice):
    from runs import services

    spec = {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
            "options": {"maxiter": 5000, "popsize": 15, "tol": 0, "seed": 1}}
    run = services.launch(owner=alice, data=spec)
    deadline = time.time() + 10
    while not Step.objects.filter(run_id=run["id"]).exists() and time.time() < deadline:
        time.sleep(0.05)
    assert Run.objects.get(pk=run["id"]).status == "running"
    response = alice_client.post(f"/runs/{run['id']}/delete/", headers={"Accept": "application/json"})
    assert "stopped and deleted" in response.json()["message"]
    assert services.wait_for_run(run_id=run["id"], timeout=1)  # the executor is gone
    time.sleep(0.3)  # nothing is written after the delete
    assert not Run.objects.filter(pk=run["id"]).exists()
    assert not Step.objects.filter(run_id=run["id"]).exists()


# -- where a run is ------------------------------------------------------------------------------
def test_the_status_says_where_active_runs_are(alice_client, alice, charlie):
    store(charlie, spec_for("de"), [], result=None, status="queued")  # the queue is everyone's
    mine = [store(alice, spec_for("de"), [], result=None, status="queued", label=f"q{i}") for i in range(2)]
    running = store(alice, spec_for("de"), [], result=None, status="running")
    Run.objects.filter(pk=running.pk).update(lease_holder="pool@vm:4242")
    stopping = store(alice, spec_for("de"), [], result=None, status="running")
    Run.objects.filter(pk=stopping.pk).update(lease_holder="pool@vm:7", control_requests="stop")
    html = alice_client.get("/runs/").content.decode()
    row = lambda run: re.search(rf'<tr id="run-{run.pk}".*?</tr>', html, re.S).group(0)  # noqa: E731
    assert "2nd in line" in row(mine[0]) and "3rd in line" in row(mine[1])
    assert "on pool@vm:4242" in row(running)
    assert "stopping…" in row(stopping)
    out = alice_client.get(f"/runs/rows/?ids={mine[1].pk}").json()["rows"][str(mine[1].pk)]
    assert "3rd in line" in out["html"] and out["active"] and not out["resuming"]


def test_the_status_filter_offers_queued_and_interrupted(alice_client, alice, runs):
    gone = store(alice, spec_for("de"), [], result=None, status="interrupted", label="cut short")
    html = alice_client.get("/runs/").content.decode()
    assert '<option value="queued"' in html and '<option value="interrupted"' in html
    assert run_ids(alice_client.get("/runs/?status=interrupted")) == [gone.pk]


def test_rows_say_whether_an_interrupted_run_goes_on_by_itself(alice_client, alice, settings):
    gone = store(alice, spec_for("de"), [], result=None, status="interrupted")
    url = f"/runs/rows/?ids={gone.pk}"
    assert alice_client.get(url).json()["rows"][str(gone.pk)]["resuming"] is True
    settings.OPTSITE_AUTO_RESUME = False
    assert alice_client.get(url).json()["rows"][str(gone.pk)]["resuming"] is False


# -- outcome: how an ended run ended ---------------------------------------------------------------
def stopped_run(owner, spec: dict, after: int = 3, label: str = "") -> Run:
    """A real run stopped on request after `after` steps, stored as the driver stores it."""
    from runs.optim import make_stepper, validate_spec

    s = validate_spec(spec)
    stepper = make_stepper(s)
    rows = []
    for step in stepper:
        rows.append(step.to_dict())
        if len(rows) == after:
            stepper.request_stop()
    return store(owner, s.to_dict(), rows, result=stepper.result.to_dict(), label=label, status="stopped")


ABNORMAL_SPEC = spec_for("lbfgsb", options={"jac": None, "eps": 0.1})  # a coarse gradient: no descent


@pytest.fixture
def ended(alice):
    """One real run per outcome (and one still running), keyed by the outcome they must show."""
    return {
        "converged": [real_run(alice, spec_for("de", "sphere", options={"maxiter": 1000}), label="de converges"),
                      real_run(alice, spec_for("lbfgsb"), label="lb converges")],
        "limit": [real_run(alice, spec_for("de"), label="de maxiter"),
                  real_run(alice, spec_for("lbfgsb", options={"maxiter": 3}), label="lb maxiter")],
        "line_search": [real_run(alice, ABNORMAL_SPEC, label="lb abnormal")],
        "stopped": [stopped_run(alice, spec_for("de", options={"maxiter": 500, "tol": 0}), label="de stopped")],
        "failed": [store(alice, spec_for("de"), [], result=None, status="failed", label="broke")],
        "interrupted": [store(alice, spec_for("de"), [], result=None, status="interrupted", label="cut")],
        None: [store(alice, spec_for("de"), [], result=None, status="running", label="going")],
    }


def test_the_runs_end_as_scipy_ends_them(ended):
    """The fixture's runs carry scipy's own verdicts (scipy is the oracle for solver numbers)."""
    from scipy.optimize import differential_evolution, minimize, rosen

    def same(run, res):
        assert (run.result["success"], run.result["message"]) == (bool(res.success), res.message), run.label

    same(ended["line_search"][0], minimize(rosen, [-1.2, 1.0], method="L-BFGS-B", options={"eps": 0.1, "maxiter": 200}))
    assert ended["line_search"][0].result["message"].startswith("ABNORMAL")
    same(ended["limit"][1], minimize(rosen, [-1.2, 1.0], method="L-BFGS-B", jac=None, options={"maxiter": 3}))
    same(ended["converged"][0], differential_evolution(lambda x: float((x ** 2).sum()), [(-4, 4)] * 2,
                                                       maxiter=1000, popsize=8, seed=1))
    same(ended["limit"][0], differential_evolution(rosen, [(-4, 4)] * 2, maxiter=30, popsize=8, seed=1))


def test_each_run_shows_its_outcome_in_history_the_run_object_and_the_api(alice_client, ended):
    from runs.outcomes import run_outcome
    from runs.run_objects import run_to_dict

    html = alice_client.get("/runs/?per=25").content.decode()
    for outcome, runs_ in ended.items():
        for run in runs_:
            assert run_outcome(run) == outcome, run.label
            assert run_to_dict(run)["outcome"] == outcome
            assert alice_client.get(f"/api/runs/{run.pk}/").json()["outcome"] == outcome
            row = re.search(rf'<tr id="run-{run.pk}".*?</tr>', html, re.S).group(0)
            if outcome is None:
                assert "not ended yet" in row and "data-outcome" not in row
            else:
                assert f'data-outcome="{outcome}"' in row
    row = re.search(rf'<tr id="run-{ended["line_search"][0].pk}".*?</tr>', html, re.S).group(0)
    assert ">failed line search<" in row and "line search could not find a point" in row  # the run's reason as title


@pytest.mark.parametrize("outcome", ["converged", "limit", "line_search", "stopped", "failed", "interrupted"])
def test_the_outcome_filter_is_done_by_the_database_and_agrees(alice_client, ended, outcome):
    ids = run_ids(alice_client.get(f"/runs/?outcome={outcome}"))
    assert sorted(ids) == sorted(r.pk for r in ended[outcome])
    html = alice_client.get(f"/runs/?outcome={outcome}").content.decode()
    assert f'<option value="{outcome}" selected' in html


def test_outcome_filter_combines_with_the_others_and_sorts(alice_client, ended):
    ids = run_ids(alice_client.get("/runs/?outcome=limit&method=lbfgsb"))
    assert ids == [ended["limit"][1].pk]
    ordered = run_ids(alice_client.get("/runs/?sort=outcome"))
    from runs.outcomes import OUTCOMES, run_outcome

    rank = {k: i for i, k in enumerate(OUTCOMES)}
    got = [rank.get(run_outcome(Run.objects.get(pk=i)), len(rank)) for i in ordered]
    assert got == sorted(got)  # converged first, runs not ended yet last


def test_an_unknown_outcome_matches_nothing_and_says_so(alice_client, ended):
    response = alice_client.get("/runs/?outcome=%3Cscript%3Ebest")
    assert response.status_code == 200 and run_ids(response) == []
    html = response.content.decode()
    assert "(not an outcome)" in html and "&lt;script&gt;best" in html and "<script>best" not in html


def test_python_and_database_agree_on_results_missing_fields(alice, alice_client):
    """A CASE over the rules, so a result without `success` or `status` falls through in SQL as in Python."""
    from runs.outcomes import OUTCOMES, run_outcome

    odd = [
        store(alice, spec_for("de"), [], result={"message": "no verdict"}, status="finished"),
        store(alice, spec_for("de"), [], result={"status": 1}, status="finished"),
        store(alice, spec_for("lbfgsb"), [], result={"success": False, "status": 2, "message": "ABNORMAL: "}, status="finished"),
        store(alice, spec_for("de"), [], result={"success": False, "status": 2, "message": "ABNORMAL: "}, status="finished"),
        store(alice, spec_for("de"), [], result=None, status="finished"),
    ]
    assert [run_outcome(r) for r in odd] == ["abnormal", "limit", "line_search", "abnormal", "abnormal"]
    for key in OUTCOMES:
        ids = set(run_ids(alice_client.get(f"/runs/?outcome={key}")))
        assert ids == {r.pk for r in odd if run_outcome(r) == key}, key


def test_history_names_methods_and_problems_by_their_titles(alice_client, runs):
    html = alice_client.get("/runs/").content.decode()
    assert '<option value="lbfgsb">L-BFGS-B</option>' in html
    cells = re.findall(r'<span class="badge[^"]*method-badge" data-method="(\w+)">([^<]*)</span>', html)
    assert {m: t for m, t in cells} == {"lbfgsb": "L-BFGS-B", "de": "DE"}
    assert "Rosenbrock, 2-D" in html and "a=1, b=100" in html and "Himmelblau, 2-D" in html
    empty = alice_client.get("/runs/?method=lbfgsb&q=zzz").content.decode()
    assert "method L-BFGS-B" in empty


def test_labels_are_escaped_in_history_rows_and_the_delete_page(alice_client, alice):
    run = real_run(alice, spec_for("lbfgsb"), label='<b>bold</b> "quoted" <script>x</script>')
    html = alice_client.get("/runs/").content.decode()
    assert "<b>bold</b>" not in html and "<script>x</script>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot;" in html
    rows = alice_client.get(f"/runs/rows/?ids={run.pk}").json()["rows"][str(run.pk)]["html"]
    assert "<b>bold</b>" not in rows and "&lt;b&gt;bold" in rows
    page = alice_client.get(f"/runs/{run.pk}/delete/").content.decode()
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_the_count_says_how_many_match(alice_client, ended):
    html = alice_client.get("/runs/?outcome=limit").content.decode()
    count = re.search(r'<span class="text-body-secondary" id="history-count"([^>]*)>\s*(.*?)\s*</span>', html, re.S)
    total = sum(len(v) for v in ended.values())
    assert f'data-total="{total}"' in count.group(1) and 'data-matching="2"' in count.group(1)
    assert count.group(2) == f"2 of {total} runs match"


# -- compare: best only where comparable ---------------------------------------------------------
def summary_cells(html: str, run: Run) -> dict[str, str]:
    """{column key: the cell's opening tag} of the run's summary row."""
    table = re.search(r'<table[^>]*id="summary-table".*?</table>', html, re.S).group(0)
    row = re.search(rf'<tr data-run-id="{run.pk}">.*?</tr>', table, re.S).group(0)
    return {key: tag for tag, key in re.findall(r'(<td data-key="(\w+)"[^>]*>)', row)}


def test_compare_ranks_nothing_across_different_problems(alice_client, runs):
    rosen, sphere = runs[0], runs[2]  # both L-BFGS-B, both converged
    html = alice_client.get(f"/runs/compare/?ids={rosen.pk},{sphere.pk}").content.decode()
    assert "★" not in re.search(r'<table[^>]*id="summary-table".*?</table>', html, re.S).group(0)
    for run in (rosen, sphere):
        cells = summary_cells(html, run)
        for key in ("fun", "gap", "dist", "nit", "nfev", "njev", "elapsed"):
            assert "best" not in cells[key] and "do not share one problem" in cells[key], key
    notes = re.search(r'<ul[^>]*id="rank-notes".*?</ul>', html, re.S).group(0)
    assert "distance to x*" in notes and "do not share one problem" in notes


def test_compare_de_against_lbfgsb_ranks_only_what_they_share(alice_client, runs):
    lb, de = runs[0], runs[1]  # the same Rosenbrock; DE stops at maxiter
    html = alice_client.get(f"/runs/compare/?ids={lb.pk},{de.pk}").content.decode()
    lb_cells, de_cells = summary_cells(html, lb), summary_cells(html, de)
    for key in ("fun", "gap", "dist"):
        assert "best" in lb_cells[key] and "best" not in de_cells[key]
    assert "different units" in lb_cells["nit"] and "best" not in de_cells["nit"]
    assert "use gradients differently" in de_cells["njev"] and "best" not in de_cells["njev"]
    assert "analytic gradients" in lb_cells["nfev"]
    assert "fewer than two of these runs converged" in lb_cells["elapsed"]


def test_compare_costs_rank_only_runs_that_converged(alice_client, alice):
    fast = real_run(alice, spec_for("lbfgsb"), label="converges")
    slow = real_run(alice, spec_for("lbfgsb", x0=[-2.0, 2.0]), label="converges later")
    cut = real_run(alice, spec_for("lbfgsb", options={"maxiter": 3}), label="cut by maxiter")
    html = alice_client.get(f"/runs/compare/?ids={fast.pk},{slow.pk},{cut.pk}").content.decode()
    cheapest = min((fast, slow), key=lambda r: r.result["nfev"])
    assert cut.result["nfev"] < cheapest.result["nfev"]  # cheapest only because it stopped early
    assert "best" in summary_cells(html, cheapest)["nfev"]
    assert "best" not in summary_cells(html, cut)["nfev"]
    assert "did not converge" in summary_cells(html, cut)["nfev"]
    assert "best" in summary_cells(html, min((fast, slow), key=lambda r: r.result["nit"]))["nit"]
    assert "best" in summary_cells(html, min((fast, slow, cut), key=lambda r: r.result["fun"]))["fun"]


def test_compare_shows_method_titles_and_escapes_labels(alice_client, alice):
    a = real_run(alice, spec_for("lbfgsb"), label="<b>bold</b>")
    b = real_run(alice, spec_for("de"), label="<img src=x onerror=alert(1)>")
    html = alice_client.get(f"/runs/compare/?ids={a.pk},{b.pk}").content.decode()
    assert "<b>bold</b>" not in html and "<img src=x" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert ">L-BFGS-B<" in html and ">DE<" in html and ">lbfgsb<" not in html
    data = json.loads(re.search(r'<script id="compare-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [d["method_title"] for d in data] == ["L-BFGS-B", "DE"]
    assert data[0]["label"] == "<b>bold</b>" and [d["outcome"] for d in data] == ["converged", "limit"]


def test_compare_summary_csv_says_what_is_not_ranked(alice_client, runs):
    import csv
    import io

    lb, sphere = runs[0], runs[2]
    text = alice_client.get(f"/runs/compare/summary.csv?ids={lb.pk},{sphere.pk}").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(r["best in"] == "" for r in rows)
    assert all("fun: not ranked: the runs do not share one problem" in r["not ranked"] for r in rows)


def test_rows_refuse_hostile_ids_in_words(alice_client, runs):
    for ids, words in (("9" * 400, "is not a run number"), ("%D9%A3", "is not a run number"),
                       (",".join(["1"] * 201), "At most 200")):
        r = alice_client.get(f"/runs/rows/?ids={ids}")
        assert r.status_code == 400 and words in r.json()["errors"]["ids"][0] and len(r.content) < 1_000


def test_compare_refuses_hostile_ids_in_words(alice_client, runs):
    for ids in ("9" * 400 + ",1", "%C2%B2,1", ",".join(["1"] * 5000)):
        r = alice_client.get(f"/runs/compare/?ids={ids}")
        assert r.status_code == 400 and "Cannot compare" in r.content.decode() and len(r.content) < 50_000
        r = alice_client.get(f"/runs/compare/summary.csv?ids={ids}")
        assert r.status_code == 400 and len(r.content) < 500


@pytest.mark.parametrize("method,options,outcome", [
    ("nelder-mead", {"maxiter": 2}, "limit"), ("nelder-mead", {"maxfev": 5}, "limit"),
    ("powell", {"maxiter": 2}, "limit"), ("bfgs", {"maxiter": 2}, "limit"), ("tnc", {"maxfun": 5}, "limit"),
    ("cobyla", {"maxiter": 5}, "limit"), ("cobyqa", {"maxfev": 5}, "limit"), ("cobyqa", {"maxiter": 2}, "limit"),
    ("slsqp", {"maxiter": 2}, "limit"), ("trust-constr", {"maxiter": 2}, "limit"),
    ("trust-exact", {"maxiter": 2}, "limit"), ("bfgs", {}, "converged"), ("nelder-mead", {}, "converged"),
])
def test_each_minimize_methods_limits_read_as_limit(alice_client, alice, method, options, outcome):
    from runs.outcomes import run_outcome

    run = real_run(alice, {"method": method, "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0], "options": options})
    assert run_outcome(run) == outcome, run.result["message"]
    assert run_ids(alice_client.get(f"/runs/?outcome={outcome}")) == [run.pk]  # the database says the same
