from django.urls import path

# Each block is owned by one module; add routes to your own block only.
urlpatterns = [
    # JSON API and CSV (runs/api.py)
    # pages: new run, run detail/replay (runs/views.py)
    # history, compare, exports (runs/history.py, runs/exports.py)
]
