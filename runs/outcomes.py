"""How a run ended, in one word: converged, limit, line_search, abnormal, stopped, failed, interrupted.

A run's status says who ended it ("finished" = the solver itself); the outcome says how, read
from the stored result in scipy's vocabulary (success, status, message). One table of rules
serves both Python (`run_outcome`, for the pages and the Run object) and the database
(`outcome_expression`, a CASE over the same rules for the history filter), so a listing
filtered by outcome shows exactly the runs whose rows carry that outcome.

What the steppers store (runs/optim/de.py, lbfgsb.py):
- DE: success with status 0 when the population converged; status 1 when maxiter (or maxfun)
  ended it; status 2 when stopped (the run's status is then "stopped").
- L-BFGS-B: scipy's warnflag — 0 converged (CONVERGENCE: ...), 1 maxiter or maxfun,
  2 an ABNORMAL end (the line search found no decrease) or another warning/error, 99 stopped.
A method whose status codes mean something else gets its own rules here (`method` in a rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, CharField, Q, Value, When

ACTIVE_STATUSES = ("queued", "running", "paused")


@dataclass(frozen=True)
class Outcome:
    key: str
    label: str  # words for the history cell and the filter
    help: str   # the filter option's and the cell's longer explanation
    badge: str  # Bootstrap colour classes


OUTCOMES = {o.key: o for o in (
    Outcome("converged", "converged", "the solver met its convergence test", "text-success-emphasis bg-success-subtle border-success-subtle"),
    Outcome("rule", "stop rule", "one of the run's stopping rules ended it (target f, gap, evaluations, time or stall)", "text-info-emphasis bg-info-subtle border-info-subtle"),
    Outcome("limit", "limit", "an iteration or evaluation limit ended the run before it converged", "text-warning-emphasis bg-warning-subtle border-warning-subtle"),
    Outcome("line_search", "failed line search", "the line search found no point that decreases f enough (L-BFGS-B ABNORMAL)", "text-danger-emphasis bg-danger-subtle border-danger-subtle"),
    Outcome("abnormal", "abnormal end", "the solver ended without converging, for another reason (see its message)", "text-danger-emphasis bg-danger-subtle border-danger-subtle"),
    Outcome("stopped", "stopped", "a user stopped the run", "text-body-secondary bg-body-secondary border-secondary-subtle"),
    Outcome("failed", "failed", "an error ended the run", "text-danger-emphasis bg-danger-subtle border-danger-subtle"),
    Outcome("interrupted", "interrupted", "the worker or server went away; the run can resume", "text-warning-emphasis bg-warning-subtle border-warning-subtle"),
)}


@dataclass(frozen=True)
class Rule:
    """`outcome` when the run's status is `status` and every `result` condition holds.

    Conditions are Django lookups on the result JSON ("success", "status",
    "message__startswith"), evaluated the same way in Python (`matches`)."""
    outcome: str
    status: str
    result: dict = field(default_factory=dict)
    method: str | None = None  # None: any method

    def matches(self, method: str, status: str, result: dict | None) -> bool:
        if status != self.status or (self.method is not None and method != self.method):
            return False
        for lookup, want in self.result.items():
            if result is None:
                return False
            key, _, op = lookup.partition("__")
            if key not in result:
                return False
            got = result[key]
            if op == "startswith":
                if not (isinstance(got, str) and got.startswith(want)):
                    return False
            elif op:
                raise ValueError(f"unsupported lookup {lookup!r}")
            elif type(got) is not type(want) or got != want:  # JSON true is not 1
                return False
        return True

    def q(self) -> Q:
        q = Q(status=self.status, **{f"result__{k}": v for k, v in self.result.items()})
        if self.result:
            q &= Q(result__isnull=False)
        if self.method is not None:
            q &= Q(method=self.method)
        return q


# The first rule that matches decides.
RULES = (
    *(Rule("rule", "finished", {"rule": name}) for name in ("f", "gap", "nfev", "seconds", "stall")),
    Rule("converged", "finished", {"success": True}),
    Rule("line_search", "finished", {"message__startswith": "ABNORMAL"}, method="lbfgsb"),
    Rule("limit", "finished", {"status": 1}),
    # minimize's other methods number their limits their own way (scipy's status, read off
    # runs with a small maxiter / maxfev each)
    *(Rule("limit", "finished", {"status": code}, method=m) for m, codes in (
        ("nelder-mead", (2,)), ("powell", (2,)), ("tnc", (3,)), ("cobyla", (3,)), ("cobyqa", (5, 6)),
        ("slsqp", (9,)), ("trust-constr", (0,))) for code in codes),
    Rule("abnormal", "finished"),
    Rule("stopped", "stopped"),
    Rule("failed", "failed"),
    Rule("interrupted", "interrupted"),
)


def outcome_of(method: str, status: str, result: dict | None) -> str | None:
    """The outcome key, or None while the run has not ended."""
    for rule in RULES:
        if rule.matches(method, status, result):
            return rule.outcome
    return None


def run_outcome(run) -> str | None:
    return outcome_of(run.method, run.status, run.result)


def outcome_expression() -> Case:
    """The outcome as a database expression: annotate(outcome=...) then filter or sort on it.

    A CASE takes the first WHEN that is true, as `outcome_of` takes the first rule; a condition
    on a key the result lacks is unknown (NULL) in SQL, never true, so it falls through as in
    Python instead of poisoning a negation."""
    return Case(*[When(rule.q(), then=Value(rule.outcome)) for rule in RULES],
                default=Value(None), output_field=CharField())
