"""A user's own problems (expressions, runs/optim/expressions.py): create, list, check, delete.

Visible to their owner only: another user's problem is as missing as one that never was. A run
spec naming one is normalised (runs.services.validate) into the spec plus a snapshot of the
definition, so what a stored run ran never depends on this table again.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from runs.models import UserProblem
from runs.services import ServiceError

__all__ = ["definitions_for", "catalogue_for", "problem_dict", "check", "create_problem", "delete_problem",
           "get_problem_for", "problem_of_spec", "expression_problem_for", "known_minimum_of_spec", "MAX_PROBLEMS"]

MAX_PROBLEMS = 200  # per user


def definitions_for(owner) -> dict:
    """name -> definition JSON of the owner's problems (what validate_spec's `problems` takes)."""
    if owner is None or not getattr(owner, "is_authenticated", False):
        return {}
    return dict(UserProblem.objects.filter(owner=owner).values_list("name", "definition"))


def problem_dict(definition: dict, owner_name: str) -> dict:
    """The problem object of GET /api/problems/ for one of a user's problems."""
    from runs.optim.expressions import definition_of

    return {**definition_of(definition).problem.to_dict(), "owner": owner_name}


def catalogue_for(owner) -> list[dict]:
    """GET /api/problems/: the catalogue, then the owner's own problems (each with "owner")."""
    from runs.optim import problem_catalogue

    own = [problem_dict(d, owner.get_username()) for d in definitions_for(owner).values()]
    return problem_catalogue() + own


def problem_of_spec(spec: dict) -> dict | None:
    """The problem object of a stored run spec's own definition or external function (the run page
    draws it), or None for a catalogue problem or a definition this version cannot read."""
    from runs.optim.expressions import DefinitionError, definition_of

    d = (spec or {}).get("definition")
    if d is None:
        return _external_problem(spec)
    try:
        return definition_of(d).problem.to_dict()
    except (DefinitionError, ValueError):
        return None


def _external_problem(spec: dict) -> dict | None:
    """The problem object of an external run's spec (a title and what the user gave), or None."""
    from runs.optim.external import EXTERNAL, ExternalProblem, external_of

    if (spec or {}).get("problem") != EXTERNAL or not isinstance(spec.get("dim"), int):
        return None
    d = external_of(spec.get("external"), {})
    return None if d is None else ExternalProblem(d, spec["dim"]).to_dict()


def expression_problem_for(owner, name: str, run_id=None):
    """(ExpressionProblem, {name: definition}) of the owner's problem `name`: the definition their
    run `run_id` ran when given (a run keeps its own copy), else the problem as it is now; (None,
    None) when they have none (someone else's is as absent)."""
    from runs.optim.expressions import DefinitionError, definition_of

    definition = None
    if run_id is not None:
        from runs.services import get_run_for

        run = get_run_for(owner, run_id)
        if run is not None and run.problem == name:
            definition = (run.spec or {}).get("definition")
    else:
        definition = definitions_for(owner).get(name)
    if definition is None:
        return None, None
    try:
        return definition_of(definition).problem, {name: definition}
    except (DefinitionError, ValueError):
        return None, None


def known_minimum_of_spec(spec: dict) -> dict | None:
    """{"x", "f"} of a stored run spec's own definition at its coefficients and dimension, or
    None (unknown, or a catalogue problem)."""
    from runs.optim.expressions import DefinitionError, definition_of

    d = (spec or {}).get("definition")
    if d is None:
        return None
    try:
        return definition_of(d).problem.known_minimum(spec.get("params"), spec.get("dim"))
    except (DefinitionError, ValueError, TypeError):
        return None


def get_problem_for(owner, name: str):
    """The owner's UserProblem called `name`, or None (also for someone else's)."""
    return UserProblem.objects.filter(owner=owner, name=name).first()


def _definition(owner, data, *, new: bool):
    from runs.optim.expressions import DefinitionError, parse_definition

    if not isinstance(data, dict):
        raise ServiceError("invalid_spec", "The problem must be a JSON object.",
                           {"problem": ["Expected an object with title, expression, params, dim, ..."]})
    data = dict(data)
    if not data.get("name") and isinstance(data.get("title"), str):
        data["name"] = _slug(data["title"])
    taken = set(definitions_for(owner)) if new else set()
    try:
        return parse_definition(data, reserved_names=taken)
    except DefinitionError as exc:
        first_field, words = next(iter(exc.errors.items()))
        raise ServiceError("invalid_spec", f"The problem is invalid: {first_field}: {words[0]}.", exc.errors) from None


def _slug(title: str) -> str:
    import re

    s = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40].rstrip("_")
    if not s or not s[0].isalpha():
        s = ("p_" + s)[:40].rstrip("_")
    return s


def check(owner, data) -> dict:
    """The live check of the definition form: the problem object as it would be listed (formula
    and gradient as LaTeX), or ServiceError keyed by field. Stores nothing."""
    from runs.optim.expressions import ExpressionError, display

    d = _definition(owner, data, new=True)
    try:
        shown = display(d)
    except ExpressionError as exc:  # found only by sympy (a division by zero, an overflow)
        raise ServiceError("invalid_spec", f"The problem is invalid: expression: {exc}.",
                           {"expression": [str(exc)]}) from None
    return {**d.problem.to_dict(), "owner": owner.get_username(), "text": shown["text"],
            "gradient_text": shown["gradient_text"]}


def create_problem(*, owner, data) -> dict:
    """Check and store one of the owner's problems; its problem object (201 in the API)."""
    shown = check(owner, data)
    d = shown["definition"]
    with transaction.atomic():
        if UserProblem.objects.filter(owner=owner).count() >= MAX_PROBLEMS:
            raise ServiceError("limit", f"You already have {MAX_PROBLEMS} problems, the most this server keeps "
                                        "for one user: delete one first.",
                               {"name": [f"At most {MAX_PROBLEMS} problems per user."]})
        try:
            with transaction.atomic():
                UserProblem.objects.create(owner=owner, name=d["name"], title=d["title"], definition=d)
        except IntegrityError:
            raise ServiceError("conflict", f"You already have a problem called {d['name']}.",
                               {"name": [f"you already have a problem called {d['name']}"]}) from None
    return problem_dict(d, owner.get_username())


def delete_problem(*, owner, name: str) -> bool:
    """Delete the owner's problem `name`; False if they have none of that name. Runs on it keep
    their own copy of the definition."""
    deleted, _ = UserProblem.objects.filter(owner=owner, name=name).delete()
    return bool(deleted)
