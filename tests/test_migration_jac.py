"""Migration 0005: L-BFGS-B runs stored with the old "2-point" (which ran scipy's jac=None) keep
what they ran, in their spec and in their checkpoint's, and resume exactly; and back."""

import pytest
from django.contrib.auth import get_user_model
from django.db.migrations.exceptions import IrreversibleError

from runs.optim import (UNLIMITED, decode_checkpoint, encode_checkpoint, make_stepper, restore_stepper,
                        validate_spec)
from runs.optim.oracle import steps_without_time

from tests.migrating import at_migration, migrate

pytestmark = pytest.mark.django_db(transaction=True)

OLD, NEW = ("runs", "0004_light_steps"), ("runs", "0005_jac_as_scipy_means_it")
X0 = [-1.2, 1.0, 0.5]


@pytest.fixture
def at_0004():
    with at_migration(OLD) as apps:
        yield apps


def old_spec(jac: str) -> dict:
    """A spec as the old code stored it: no finite_diff_rel_step, its own "2-point"."""
    spec = validate_spec({"method": "lbfgsb", "problem": "rosenbrock", "dim": 3, "x0": X0,
                          "options": {"jac": None if jac == "2-point" else jac, "maxiter": 40}}).to_dict()
    del spec["options"]["finite_diff_rel_step"]
    spec["options"]["jac"] = jac
    return spec


def old_checkpoint(spec: dict, steps: int) -> bytes:
    """What the old code checkpointed after `steps` steps: the run it made (scipy's jac=None for
    its "2-point"), carrying its own spec."""
    new = {**spec, "options": {**spec["options"], "finite_diff_rel_step": None,
                               "jac": None if spec["options"]["jac"] == "2-point" else spec["options"]["jac"]}}
    stepper = make_stepper(validate_spec(new))
    for _ in range(steps):
        next(stepper)
    cp = stepper.checkpoint()
    cp["state"]["spec"] = spec
    return encode_checkpoint(cp)


def test_old_2_point_runs_become_null_and_resume_exactly(at_0004):
    Run = at_0004.get_model("runs", "Run")
    owner = get_user_model().objects.create_user("alice", password="pw-alice-1").pk
    fd, analytic = old_spec("2-point"), old_spec("analytic")
    de = validate_spec({"method": "de", "problem": "rastrigin", "dim": 2, "bounds": [[-5, 5]] * 2,
                        "options": {"maxiter": 5, "seed": 1}}).to_dict()
    ids = {}
    for name, spec, cp in (("fd", fd, old_checkpoint(fd, 7)), ("analytic", analytic, old_checkpoint(analytic, 4)),
                           ("de", de, None), ("fd-new", fd, None)):
        ids[name] = Run.objects.create(owner_id=owner, method=spec["method"], problem=spec["problem"], spec=spec,
                                       status="interrupted" if cp else "finished", n_steps=7, checkpoint=cp).pk
    apps = migrate(NEW)
    Run = apps.get_model("runs", "Run")
    run = Run.objects.get(pk=ids["fd"])
    assert run.spec["options"]["jac"] is None and run.spec["options"]["finite_diff_rel_step"] is None
    spec = validate_spec(run.spec, UNLIMITED)
    assert spec.to_dict() == run.spec  # what the driver validates again is what is stored
    # It resumes (the checkpoint's spec matches) and goes on as scipy's jac=None run does.
    resumed = restore_stepper(spec, decode_checkpoint(bytes(run.checkpoint)))
    reference = list(make_stepper(spec))
    assert steps_without_time(list(resumed)) == steps_without_time(reference[7:])
    # The analytic run keeps its jac; DE is as it was.
    run = Run.objects.get(pk=ids["analytic"])
    assert run.spec["options"]["jac"] == "analytic"
    restore_stepper(validate_spec(run.spec, UNLIMITED), bytes(run.checkpoint))
    assert Run.objects.get(pk=ids["de"]).spec == de
    # And back: the old specs and checkpoints, exactly.
    apps = migrate(OLD)
    Run = apps.get_model("runs", "Run")
    assert Run.objects.get(pk=ids["fd"]).spec == fd
    assert Run.objects.get(pk=ids["analytic"]).spec == analytic
    assert decode_checkpoint(bytes(Run.objects.get(pk=ids["fd"]).checkpoint))["state"]["spec"] == fd


def test_going_back_refuses_runs_the_old_code_cannot_express(at_0004):
    apps = migrate(NEW)
    Run = apps.get_model("runs", "Run")
    owner = get_user_model().objects.create_user("bob", password="pw-bob-1").pk
    spec = validate_spec({"method": "lbfgsb", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0],
                          "options": {"jac": "2-point"}}).to_dict()  # scipy's relative step
    Run.objects.create(owner_id=owner, method="lbfgsb", problem="rosenbrock", spec=spec, status="finished")
    with pytest.raises(IrreversibleError, match="2-point"):
        migrate(OLD)
    Run.objects.all().delete()
