from django.urls import path

from runs import api  # JSON API and CSV block
from runs import problem_api, problem_views  # user problems block
from runs import exports, history  # history, compare, exports block
from runs import study_api, study_views  # studies block
from runs import views  # pages block

# Each block is owned by one module; add routes to your own block only.
urlpatterns = [
    # JSON API and CSV (runs/api.py)
    path("api/problems/", problem_api.problem_list, name="api-problems"),  # the catalogue and the user's own
    path("api/problems/<str:name>/grid/", api.problem_grid, name="api-problem-grid"),
    path("api/methods/", api.methods, name="api-methods"),
    path("api/runs/", api.run_list, name="api-runs"),
    path("api/runs/<int:run_id>/", api.run_detail, name="api-run"),
    path("api/runs/<int:run_id>/steps/", api.run_steps, name="api-run-steps"),
    path("api/runs/<int:run_id>/steps/latest/", api.run_step_latest, name="api-run-step-latest"),
    path("api/runs/<int:run_id>/steps/<int:seq>/", api.run_step, name="api-run-step"),
    path("runs/<int:run_id>/steps.csv", api.steps_csv, name="run-steps-csv"),
    # pages: new run, run detail/replay (runs/views.py)
    path("runs/new/", views.new_run, name="run-new"),
    path("runs/new/known-minimum/", views.known_minimum, name="run-known-minimum"),
    path("runs/new/existing/", views.existing_run, name="run-existing"),
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    # history, compare, exports (runs/history.py, runs/exports.py)
    path("runs/", history.history, name="history"),
    path("runs/rows/", history.history_rows, name="history-rows"),
    path("runs/compare/", history.compare, name="compare"),
    path("runs/compare/summary.csv", exports.summary_csv, name="compare-summary-csv"),
    path("runs/<int:run_id>/relabel/", history.relabel, name="run-relabel"),
    path("runs/<int:run_id>/delete/", history.delete, name="run-delete"),
    path("runs/<int:run_id>/clone/", history.clone, name="run-clone"),
    path("runs/<int:run_id>/export.json", exports.export_json, name="run-export-json"),
    path("api/runs/<int:run_id>/series/", exports.series, name="run-series"),
    # studies: JSON and CSV (runs/study_api.py), pages (runs/study_views.py)
    path("api/studies/", study_api.study_list, name="api-studies"),
    path("api/studies/<int:study_id>/", study_api.study_detail, name="api-study"),
    path("api/studies/<int:study_id>/summary/", study_api.study_summary, name="api-study-summary"),
    path("api/studies/<int:study_id>/<str:action>/", study_api.study_control, name="api-study-control"),
    path("studies/<int:study_id>/runs.csv", study_api.runs_csv, name="study-runs-csv"),
    path("studies/<int:study_id>/summary.csv", study_api.summary_csv, name="study-summary-csv"),
    path("studies/<int:study_id>/spec.json", study_api.spec_json, name="study-spec-json"),
    path("studies/", study_views.study_list, name="studies"),
    path("studies/new/", study_views.new_study, name="study-new"),
    path("studies/<int:study_id>/", study_views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/delete/", study_views.delete_study, name="study-delete"),
    # a user's own problems: JSON (runs/problem_api.py), pages (runs/problem_views.py)
    path("api/problems/_check/", problem_api.problem_check, name="api-problem-check"),
    path("api/problems/<str:name>/", problem_api.problem_detail, name="api-problem"),
    path("problems/", problem_views.problem_list, name="problems"),
    path("problems/new/", problem_views.new_problem, name="problem-new"),
    path("problems/<str:name>/delete/", problem_views.delete_problem, name="problem-delete"),
]
