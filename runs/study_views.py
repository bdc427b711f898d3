"""Pages of studies: the list (/studies/), the new-study form (/studies/new/), one study (/studies/<id>/).

Thin views: fetch with ownership (someone else's study is a 404) and hand the page what its
JavaScript needs as json_script blocks; runs/static/runs/study*.js draw from the JSON API
(runs/study_api.py).
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs import studies
from runs.optim.echo import shown


def _owned(request, study_id):
    study = studies.get_study_for(request.user, study_id)
    if study is None:
        raise Http404(f"There is no study {shown(study_id)} of yours.")
    return study


@require_GET
def study_list(request):
    return render(request, "runs/studies.html", {
        "nav": "studies", "studies": [studies.study_to_dict(s) for s in studies.studies_for(request.user)]})


@require_GET
def new_study(request):
    return render(request, "runs/study_new.html", {"nav": "studies"})


@require_GET
def study_detail(request, study_id: int):
    study = _owned(request, study_id)
    return render(request, "runs/study.html", {"nav": "studies", "study": studies.study_to_dict(study)})


@require_POST
def delete_study(request, study_id: int):
    studies.delete_study(study=_owned(request, study_id))
    return redirect("/studies/")
