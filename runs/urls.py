from django.urls import path

from runs import api  # JSON API and CSV block
from runs import exports, history  # history, compare, exports block
from runs import views  # pages block

# Each block is owned by one module; add routes to your own block only.
urlpatterns = [
    # JSON API and CSV (runs/api.py)
    path("api/problems/", api.problems, name="api-problems"),
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
]
