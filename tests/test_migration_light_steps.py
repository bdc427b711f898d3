"""Migration 0004: steps stored the old way (everything in the JSON text) move to light text +
blob with every number kept, and back."""

import json
import math

import pytest

from runs.optim import make_stepper, validate_spec
from runs.stored_steps import step_texts

from tests.migrating import at_migration, migrate

pytestmark = pytest.mark.django_db(transaction=True)

OLD, NEW = ("runs", "0003_workers_and_leases"), ("runs", "0004_light_steps")
BULKY = ("population", "population_energies", "line_search")
SPECS = [
    # 602 steps: more than one chunk of the migration
    {"method": "de", "problem": "rastrigin", "dim": 3, "bounds": [[-5, 5]] * 3,
     "options": {"maxiter": 600, "tol": 0, "seed": 4, "popsize": 5}},
    {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
     "options": {"maxiter": 60, "seed": 1}},
    {"method": "lbfgsb", "problem": "rosenbrock", "dim": 5, "x0": [-1.2, 1.0, 0.5, 0.3, -0.7]},
]


def old_format_steps(spec: dict) -> list[dict]:
    """What the old driver stored: the whole step, population or line search inside `extra`
    (as v1 did, so no `population_energies`)."""
    from runs.encoding import dumps

    out = []
    for step in make_stepper(validate_spec(spec)):
        d = json.loads(dumps(step.to_full_dict()))
        d["extra"].pop("population_energies", None)
        out.append(d)
    return out


@pytest.fixture
def at_0003():
    with at_migration(OLD) as apps:
        yield apps


def store_old(apps, owner_id, spec, steps):
    Run, Step = apps.get_model("runs", "Run"), apps.get_model("runs", "Step")
    s = validate_spec(spec).to_dict()
    run = Run.objects.create(owner_id=owner_id, method=s["method"], problem=s["problem"], spec=s,
                             status="finished", n_steps=len(steps))
    Step.objects.bulk_create([Step(run=run, seq=d["seq"], nit=d["nit"], phase=d["phase"], fun=d["fun"],
                                   nfev=d["nfev"], njev=d["njev"], elapsed=d["elapsed"],
                                   data=json.dumps(d, allow_nan=False)) for d in steps])
    return run.pk


def test_old_steps_migrate_with_every_number_and_back(alice, at_0003):
    apps = at_0003
    runs = {}
    for spec in SPECS:
        steps = old_format_steps(spec)
        runs[store_old(apps, alice.pk, spec, steps)] = steps
    # A made-up run: null (a nan or inf once), -0.0, and a step whose "population" is no
    # rectangle of numbers (it must stay in the text as it is).
    odd = [
        {"seq": 0, "nit": 0, "x": [0.0, 1.0], "fun": 1.0, "nfev": 4, "njev": 0, "jac": None, "elapsed": 0.0,
         "phase": "init", "extra": {"best": 1.0, "population": [[None, 1.0], [-0.0, 2.5]]}},
        {"seq": 1, "nit": 1, "x": [0.0, 1.0], "fun": 1.0, "nfev": 6, "njev": 0, "jac": None, "elapsed": 0.1,
         "phase": "iterate", "extra": {"best": 1.0, "population": [[1.0], [2.0, 3.0]]}},
        {"seq": 2, "nit": 2, "x": [0.0, 1.0], "fun": 0.5, "nfev": 8, "njev": 0, "jac": None, "elapsed": 0.2,
         "phase": "iterate", "extra": {"best": 0.5, "population": [[5e-324, 1.0], [-0.0, 1e308]]}},
    ]
    odd_id = store_old(apps, alice.pk, SPECS[0], odd)
    runs[odd_id] = odd

    migrate(NEW)
    from runs.models import Step

    for run_id, steps in runs.items():
        complete = [json.loads(text) for _, text in step_texts(run_id=run_id, bulky=True)]
        assert complete == steps, f"run {run_id}"
        light = {seq: json.loads(d) for seq, d in Step.objects.filter(run_id=run_id).values_list("seq", "data")}
        blobs = dict(Step.objects.filter(run_id=run_id).values_list("seq", "bulk"))
        for d in steps:
            moved = run_id != odd_id or d["seq"] != 1
            assert any(k in light[d["seq"]]["extra"] for k in BULKY) is not moved
            assert (blobs[d["seq"]] is not None) is moved
    # the bits of -0.0 and the tiniest subnormal came through
    restored = [json.loads(t) for _, t in step_texts(run_id=odd_id, bulky=True)]
    assert math.copysign(1.0, restored[0]["extra"]["population"][1][0]) == -1.0
    assert restored[2]["extra"]["population"][0][0] == 5e-324
    # and the 3-D run takes less room than before, the 10-D one much less
    for run_id, factor in zip(runs, (2, 4)):
        old_size = sum(len(json.dumps(d)) for d in runs[run_id])
        rows = Step.objects.filter(run_id=run_id).values_list("data", "bulk")
        assert sum(len(d) + len(b or b"") for d, b in rows) * factor < old_size

    apps = migrate(OLD)
    OldStep = apps.get_model("runs", "Step")
    for run_id, steps in runs.items():
        back = [json.loads(d) for d in OldStep.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True)]
        assert back == steps, f"run {run_id} going back"
