"""The web side's writes of studies (create, control, delete) and their JSON objects.

A study's runs are ordinary runs (runs/services.py controls each, a worker's driver writes
them) that also fold their best-so-far into a trace with every batch (runs/study_trace.py);
its aggregates come from those traces (runs/study_summary.py).
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from runs import dispatch, services
from runs.models import Run, RunTrace, Study
from runs.optim.echo import shown
from runs.outcomes import run_outcome
from runs.services import ServiceError
from runs.study_summary import summarize
from runs.study_trace import Trace

__all__ = ["create_study", "control_study", "delete_study", "get_study_for", "studies_for", "study_to_dict",
           "study_runs", "study_summary", "summary_version"]

STATUSES = [s.value for s in Run.Status]


def study_limits():
    from runs.optim.study import StudyLimits

    return StudyLimits(max_runs=settings.OPTSITE_MAX_STUDY_RUNS, run=services.limits())


def validate(data, owner=None):
    """runs.optim.study.validate_study with this site's limits and the owner's own problems;
    raises ServiceError."""
    from runs.optim import SpecError
    from runs.optim.study import validate_study

    if not isinstance(data, dict):
        raise ServiceError("invalid_spec", "The study spec must be a JSON object.", {"study": ["Expected an object."]})
    try:
        from runs import user_problems

        return validate_study(data, study_limits(), user_problems.definitions_for(owner))
    except SpecError as exc:
        raise ServiceError(exc.code, exc.message, exc.errors) from None


def _active(owner=None):
    runs = Run.objects.filter(status__in=Run.ACTIVE, study__isnull=False)
    return runs if owner is None else runs.filter(owner=owner)


def _check_capacity(owner, new_runs: int) -> None:
    """Caps on studies with active runs, per user and of everyone's study runs (inside services.lock_owner)."""
    cap = settings.OPTSITE_MAX_ACTIVE_STUDIES
    active = _active(owner).values("study").distinct().count()
    if active >= cap:
        raise ServiceError(
            "limit",
            f"You already have {active:,} stud{'ies' if active != 1 else 'y'} with runs to go, as many as this "
            f"server runs at once for each user (the limit is {cap:,}). Stop one, or wait for one to end.",
            {"study": [f"At most {cap:,} of your studies may have active runs at once."]},
        )
    site_cap = settings.OPTSITE_MAX_ACTIVE_STUDY_RUNS
    everyone = _active().count()
    if everyone + new_runs > site_cap:
        raise ServiceError(
            "limit",
            f"This server already has {everyone:,} study runs to go of all its users; {new_runs:,} more would pass "
            f"its limit of {site_cap:,}. Try again when some have ended, or with fewer repeats.",
            {"repeats": [f"The server takes at most {site_cap:,} active study runs, of all users."]},
        )


def create_study(*, owner, data) -> Study:
    """Validate `data` (a study spec) and store the study with its runs, queued; ServiceError if
    invalid or over a limit. The runs go to the workers after the commit."""
    spec = validate(data, owner)
    now = timezone.now()
    with transaction.atomic():
        services.lock_owner(owner)
        _check_capacity(owner, len(spec.runs))
        study = Study.objects.create(owner=owner, label=spec.label, problem=spec.problem, spec=spec.to_dict(),
                                     created=now)
        titles = [c["label"] for c in spec.configs]
        runs = Run.objects.bulk_create([
            Run(owner=owner, study=study, study_config=r.config, study_repeat=r.repeat, method=r.spec["method"],
                problem=r.spec["problem"], spec=r.spec, created=now, queued_at=now,
                label=f"{spec.label or 'Study ' + str(study.pk)} · {titles[r.config]} #{r.repeat + 1}"[:200])
            for r in spec.runs])
        if any(run.pk is None for run in runs):  # a database without RETURNING: read the ids back
            runs = list(study.runs.order_by("id"))
        fstar = _fstar(spec.runs[0].spec)
        RunTrace.objects.bulk_create([RunTrace(run_id=run.pk, data=Trace(fstar).to_json()) for run in runs])
        ids = [run.pk for run in runs]
        transaction.on_commit(lambda: [dispatch.enqueue(run_id) for run_id in ids])
    return study


def _fstar(run_spec: dict | None) -> float | None:
    """f* of a study's problem, from one of its run specs (which carry a user's problem's definition)."""
    if run_spec is None:
        return None
    from runs.optim import UNLIMITED, validate_spec
    from runs.optim.expressions import problem_of

    spec = validate_spec(run_spec, UNLIMITED)
    known = problem_of(spec).known_minimum(spec.params, spec.dim)
    return None if known is None else known["f"]


def _study_fstar(study: Study) -> float | None:
    return _fstar(study.runs.order_by("id").values_list("spec", flat=True).first())


def get_study_for(user, study_id) -> Study | None:
    """The user's study with this id, or None (someone else's is as absent as a missing one)."""
    study_id = services.row_id(user, study_id)
    if study_id is None:
        return None
    return Study.objects.select_related("owner").filter(pk=study_id, owner=user).first()


def studies_for(user):
    return Study.objects.select_related("owner").filter(owner=user).order_by("-created", "-id")


def _counts(study: Study) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for row in study.runs.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def _status(counts: dict) -> str:
    if counts["running"]:
        return "running"
    if counts["queued"]:
        return "queued"
    if counts["paused"]:
        return "paused"
    return "ended"


def study_to_dict(study: Study, counts: dict | None = None) -> dict:
    """The PROTOCOL Study object."""
    spec = study.spec
    counts = _counts(study) if counts is None else counts
    return {
        "id": study.pk, "url": study.get_absolute_url(), "owner": study.owner.username, "label": study.label,
        "problem": spec["problem"], "params": spec["params"], "dim": spec["dim"], "bounds": spec["bounds"],
        "x0": spec["x0"], "x0_seed": spec["x0_seed"], "configs": spec["configs"], "repeats": spec["repeats"],
        "seeds": spec["seeds"], "created": study.created.isoformat(), "status": _status(counts), "counts": counts,
        "runs": list(study.runs.order_by("study_config", "study_repeat").values_list("pk", flat=True)),
        "spec": spec,
    }


def study_runs(study: Study) -> list[dict]:
    """The study's runs as its table shows them, configuration-major. `best_fun` is the trace's:
    the best feasible f, as the summary counts it (Run.best_fun counts every step)."""
    import json

    fstar = _study_fstar(study)
    out = []
    runs = (study.runs.order_by("study_config", "study_repeat").select_related("trace")
            .only("pk", "status", "spec", "study_config", "study_repeat", "best_fun", "nfev", "nit", "elapsed",
                  "result", "error", "control_requests", "interruptions", "n_steps", "trace__data"))
    for run in runs:
        options = run.spec.get("options", {})
        trace = getattr(run, "trace", None)
        best = json.loads(trace.data)["best"] if trace is not None else run.best_fun
        out.append({
            "id": run.pk, "url": run.get_absolute_url(), "config": run.study_config, "repeat": run.study_repeat,
            "seed": options.get("seed", options.get("rng")), "x0": run.spec.get("x0"), "status": run.status,
            "best_fun": best, "gap": None if best is None or fstar is None else best - fstar,
            "nfev": run.nfev, "nit": run.nit, "elapsed": run.elapsed, "outcome": run_outcome(run),
        })
    return out


def summary_version(study: Study) -> str:
    """Changes whenever a run of the study commits steps or changes status."""
    agg = study.runs.aggregate(steps=Sum("n_steps"), n=Count("id"),
                               ended=Count("id", filter=Q(status__in=Run.ENDED)),
                               running=Count("id", filter=Q(status=Run.Status.RUNNING)),
                               paused=Count("id", filter=Q(status=Run.Status.PAUSED)))
    return f"{agg['steps'] or 0}-{agg['n']}-{agg['ended']}-{agg['running']}-{agg['paused']}"


def study_summary(study: Study, *, budgets: tuple | None = None) -> dict:
    import json

    rows = list(study.runs.order_by("study_config", "study_repeat").values_list("study_config", "status", "trace__data"))
    runs = [{"config": config, "status": status, "ended": status in Run.ENDED,
             "trace": json.loads(data) if data else None} for config, status, data in rows]
    out = summarize(configs=study.spec["configs"], runs=runs, fstar=_study_fstar(study), budgets=budgets)
    return {"study": study.pk, "version": summary_version(study), **out}


def control_study(*, user, study_id, action: str) -> dict:
    """stop / pause / resume every run of the study that can take it; the study as it stands.

    ServiceError "conflict" when none of its runs can (all ended, or all paused for "pause").
    """
    if action not in ("stop", "pause", "resume"):
        raise ServiceError("bad_message", f"Unknown control {shown(action)}; a study takes stop, pause, resume.")
    study = get_study_for(user, study_id)
    if study is None:
        raise ServiceError("not_found", f"There is no study {shown(study_id)} of yours.")
    takers = {"stop": Run.ACTIVE, "pause": (Run.Status.QUEUED, Run.Status.RUNNING),
              "resume": (Run.Status.PAUSED, Run.Status.INTERRUPTED)}[action]
    ids = list(study.runs.filter(status__in=takers).order_by("-study_config", "-study_repeat")
               .values_list("pk", flat=True))
    taken = Counter()
    for run_id in ids:  # the queued runs last-first: a worker freed meanwhile takes none of them
        try:
            accepted, _ = services.control_run(user=user, run_id=run_id, action=action)
        except ServiceError as exc:
            if exc.code == "not_found":  # deleted meanwhile
                continue
            if exc.code != "conflict":
                raise
            accepted = False
        taken[accepted] += 1
    if not taken[True]:
        raise ServiceError("conflict", f"Study {study.pk} has no run that can {action} now.")
    return study_to_dict(study)


def delete_study(*, study: Study) -> int:
    """Delete the study and its runs (each active one is stopped first, as a run's delete does)."""
    for run in study.runs.filter(status__in=Run.ACTIVE):
        services.stop_for_delete(run)
    for run in study.runs.all():
        services.delete_run(run=run)
    return study.delete()[0]
