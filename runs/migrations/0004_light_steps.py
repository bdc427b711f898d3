"""Light steps: each step's bulky arrays move out of its JSON text into a binary column.

`Step.data` keeps the light step (scalar fields, small extras); `Step.bulk` gets the population,
population energies and line-search points in runs.optim.bulk's exact float64 form (format
version 1: changed rows against the step before, keyframes now and then). Existing steps are
converted run by run, in seq order, a chunk of rows at a time (a big database never needs a whole
run in memory). Every converted step is decoded again and compared with the JSON it came from;
a step whose fields would not come back exactly (not a rectangle of numbers) keeps them in its
text. Reversible: going back puts the fields into the texts again, where they were.
"""

import json

from django.db import migrations, models

try:
    from orjson import loads
except ImportError:  # pragma: no cover
    from json import loads

# The bulky fields as of this migration (frozen here: later code may know more).
BULKY = ("population", "population_energies", "line_search")
CHUNK = 500


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _same(a, b) -> bool:
    """JSON values equal number for number (a bool is not a number, null only equals null)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a is None and b is None


def _arrays(fields: dict):
    """JSON lists -> float64 arrays (null -> nan, which is written back as null); None if any
    field is not a rectangle of numbers."""
    import numpy as np

    def array(v):
        if not isinstance(v, list):
            return None
        try:
            return np.array(v, dtype=np.float64)
        except (TypeError, ValueError):
            return None

    out = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            sub = {k: array(v) for k, v in value.items()}
            if not sub or any(a is None for a in sub.values()) or any("/" in k or not k for k in sub):
                return None
            out[key] = sub
        else:
            out[key] = array(value)
            if out[key] is None:
                return None
    return out


def _runs(apps):
    Run = apps.get_model("runs", "Run")
    return Run.objects.order_by("pk").values_list("pk", flat=True).iterator()


def _rows(Step, run_id, columns):
    after = -1
    while True:
        rows = list(Step.objects.filter(run_id=run_id, seq__gt=after).order_by("seq").values_list(*columns)[:CHUNK])
        if not rows:
            return
        after = rows[-1][1]
        yield rows


def forwards(apps, schema_editor):
    from runs.optim.bulk import BulkDecoder, BulkEncoder, unflatten
    from runs.optim.records import jsonable

    Step = apps.get_model("runs", "Step")
    table = schema_editor.connection.ops.quote_name(Step._meta.db_table)
    sql = f"UPDATE {table} SET data = %s, bulk = %s WHERE id = %s"
    for run_id in _runs(apps):
        encoder, decoder = BulkEncoder(), BulkDecoder()
        for rows in _rows(Step, run_id, ("id", "seq", "data")):
            updates = []
            for pk, seq, text in rows:
                step = loads(text)
                extra = step.get("extra")
                fields = {k: extra[k] for k in BULKY if k in extra} if isinstance(extra, dict) else {}
                arrays = _arrays(fields) if fields else None
                if arrays is None or not _same(jsonable(arrays), fields):
                    # nothing to move, or it would not come back exactly: the step stays as it is
                    encoder.encode(seq, None)
                    continue
                blob = encoder.encode(seq, arrays)
                if not _same(jsonable(unflatten(decoder.decode(seq, blob))), fields):
                    # the codec lost something: stop, and the migration's transaction keeps every row as it was
                    raise RuntimeError(f"step {seq} of run {run_id}: its arrays did not survive the conversion")
                step["extra"] = {k: v for k, v in extra.items() if k not in BULKY}
                updates.append((_dumps(step), blob, pk))
            if updates:
                with schema_editor.connection.cursor() as cursor:
                    cursor.executemany(sql, updates)


def backwards(apps, schema_editor):
    from runs.optim.bulk import BulkDecoder, unflatten
    from runs.optim.records import jsonable

    Step = apps.get_model("runs", "Step")
    table = schema_editor.connection.ops.quote_name(Step._meta.db_table)
    sql = f"UPDATE {table} SET data = %s, bulk = NULL WHERE id = %s"
    for run_id in _runs(apps):
        decoder = BulkDecoder()
        for rows in _rows(Step, run_id, ("id", "seq", "data", "bulk")):
            updates = []
            for pk, seq, text, blob in rows:
                if blob is None:
                    continue
                step = loads(text)
                step["extra"] = {**(step.get("extra") or {}), **jsonable(unflatten(decoder.decode(seq, bytes(blob))))}
                updates.append((_dumps(step), pk))
            if updates:
                with schema_editor.connection.cursor() as cursor:
                    cursor.executemany(sql, updates)


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0003_workers_and_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="step",
            name="bulk",
            field=models.BinaryField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
