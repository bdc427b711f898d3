"""jac as scipy means it: L-BFGS-B runs stored with jac "2-point" ran what scipy does with no jac.

Until now optsite's "2-point" gave `minimize(jac=None)`'s numbers (forward differences with the
absolute step eps), which are not `minimize(jac="2-point")`'s (a relative step). From now on
"2-point" means scipy's "2-point", and null means scipy's default. Each L-BFGS-B run keeps what
it ran: "2-point" becomes null, and the new option finite_diff_rel_step (scipy's default, null)
is written out, in the run's spec and in the spec its checkpoint carries (a resume checks that
they are the same). Reversible while no run uses what the old code could not express.
"""

import io
import json

from django.db import migrations
from django.db.migrations.exceptions import IrreversibleError

STATE_KEY = "__state__"  # runs.optim.checkpoint's format, frozen here


def _forward_spec(spec: dict) -> dict:
    if spec.get("method") != "lbfgsb":
        return spec
    options = dict(spec.get("options") or {})
    if options.get("jac") == "2-point":
        options["jac"] = None
    options.setdefault("finite_diff_rel_step", None)
    return {**spec, "options": options}


def _backward_spec(spec: dict) -> dict:
    if spec.get("method") != "lbfgsb":
        return spec
    options = dict(spec.get("options") or {})
    if options.get("jac") in ("2-point", "cs") or options.get("finite_diff_rel_step") is not None:
        raise IrreversibleError(
            f"a run asks for jac {options.get('jac')!r} with finite_diff_rel_step "
            f"{options.get('finite_diff_rel_step')!r}, which the older code cannot run")
    if options.get("jac") is None:
        options["jac"] = "2-point"
    options.pop("finite_diff_rel_step", None)
    return {**spec, "options": options}


def _checkpoint(blob, change):
    import numpy as np

    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(arrays.pop(STATE_KEY).tobytes().decode())
    state["spec"] = change(state["spec"])
    text = json.dumps(state, allow_nan=False, separators=(",", ":")).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{STATE_KEY: np.frombuffer(text, dtype=np.uint8)})
    return buf.getvalue()


def _apply(apps, change):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.filter(method="lbfgsb").only("pk", "spec", "checkpoint").iterator(chunk_size=200):
        spec = change(run.spec)
        checkpoint = None if run.checkpoint is None else _checkpoint(run.checkpoint, change)
        Run.objects.filter(pk=run.pk).update(spec=spec, checkpoint=checkpoint)


def forwards(apps, schema_editor):
    _apply(apps, _forward_spec)


def backwards(apps, schema_editor):
    _apply(apps, _backward_spec)


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0004_light_steps"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
