"""Reading a run's stored steps, light or complete, for the API, the sockets and the exports.

A Step row holds the light step as JSON text (`data`: what PROTOCOL sends by default) and its
bulky arrays as a blob (`bulk`, runs.optim.bulk: often only what changed since the step before,
with a keyframe now and then). Light texts are served as stored, never re-encoded; where the
bulky fields are asked for they are decoded from the step's keyframe onward and put into the
step's `extra` under their own names (`population`, `population_energies`, `line_search`),
exactly as the stepper computed them.

A row written in the old form (the whole step in `data`, no blob: a fixture, or a database not
yet migrated) is served as it is stored.
"""

from __future__ import annotations

from collections.abc import Iterator

from runs.encoding import dumps
from runs.models import Step
from runs.optim import BulkDecoder, jsonable
from runs.optim.bulk import keyframe_back, unflatten
from runs.publishing import plan_messages

try:
    from orjson import loads
except ImportError:  # pragma: no cover - requirements.txt pins orjson
    from json import loads

# The extras that are stored apart from the light step (runs.optim: Step.bulky).
BULKY_FIELDS = ("population", "population_energies", "line_search", "trials", "simplex")


def split_step(d: dict) -> tuple[dict, dict]:
    """A complete step dict -> (the light step, its bulky fields); `d` is left as it is."""
    extra = d.get("extra") or {}
    if not any(k in extra for k in BULKY_FIELDS):
        return d, {}
    light = {**d, "extra": {k: v for k, v in extra.items() if k not in BULKY_FIELDS}}
    return light, {k: extra[k] for k in BULKY_FIELDS if k in extra}


def full_text(text: str, arrays: dict | None) -> str:
    """A light step text with the bulky fields (flat arrays from the decoder) in its `extra`."""
    if not arrays:
        return text
    step = loads(text)
    extra = step.get("extra") or {}
    extra.update(jsonable(unflatten(arrays)))
    step["extra"] = extra
    return dumps(step)


def _blob(value):
    return None if value is None else bytes(value)  # PostgreSQL hands out memoryviews


def _chain(run_id: int, first: int, last: int) -> list[tuple[int, bytes | None]]:
    rows = Step.objects.filter(run_id=run_id, seq__gte=first, seq__lte=last).order_by("seq")
    return [(seq, _blob(b)) for seq, b in rows.values_list("seq", "bulk")]


class _Decoding:
    """Decodes one run's blobs as the rows come in seq order, starting anywhere: the first delta
    met reads the rows back to its keyframe first."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.decoder = BulkDecoder()
        self.at: int | None = None  # the last seq fed to the decoder

    def arrays(self, seq: int, blob: bytes | None) -> dict | None:
        if blob is None:
            return None
        key = seq - keyframe_back(blob)
        if key < seq and (self.at is None or self.at < key):
            for s, b in _chain(self.run_id, key, seq - 1):
                self.decoder.decode(s, b)
        self.at = seq
        return self.decoder.decode(seq, blob)


def step_texts(*, run_id: int, after: int = -1, upto: int | None = None, limit: int | None = None,
               chunk: int = 2000, bulky: bool = False) -> Iterator[tuple[int, str]]:
    """(seq, JSON text) of the run's steps with after < seq <= upto, in order, read in chunks;
    light texts as stored, or with `bulky` complete ones (the bulky fields in `extra`)."""
    decoding = _Decoding(run_id) if bulky else None
    columns = ("seq", "data", "bulk") if bulky else ("seq", "data")
    sent = 0
    while limit is None or sent < limit:
        qs = Step.objects.filter(run_id=run_id, seq__gt=after)
        if upto is not None:
            qs = qs.filter(seq__lte=upto)
        size = chunk if limit is None else min(chunk, limit - sent)
        rows = list(qs.order_by("seq").values_list(*columns)[:size])
        if bulky:
            for seq, text, blob in rows:
                yield seq, full_text(text, decoding.arrays(seq, _blob(blob)))
        else:
            yield from rows
        sent += len(rows)
        if len(rows) < size:
            return
        after = rows[-1][0]


def step_text(*, run_id: int, seq: int | None = None) -> tuple[int, str] | None:
    """(seq, complete text) of one step (`seq` None: the newest), or None if there is none."""
    qs = Step.objects.filter(run_id=run_id)
    row = (qs.filter(seq=seq) if seq is not None else qs.order_by("-seq")).values_list("seq", "data", "bulk").first()
    if row is None:
        return None
    seq, text, blob = row
    return seq, full_text(text, _Decoding(run_id).arrays(seq, _blob(blob)))


def stored_messages(*, run_id: int, after: int, upto: int | None = None,
                    max_steps: int = 2000) -> list[tuple[int, list[str]]]:
    """The next stored steps after `after` (at most `max_steps`), cut into socket messages:
    [(seq of the message's last step, [texts])], light texts but the last of each message,
    which has its bulky fields."""
    rows = list(step_texts(run_id=run_id, after=after, upto=upto, limit=max_steps))
    if not rows:
        return []
    texts = [text for _, text in rows]

    def full_of(i: int) -> str:
        found = step_text(run_id=run_id, seq=rows[i][0])
        return found[1] if found else texts[i]

    return [(rows[end - 1][0], texts[start:end - 1] + [full]) for start, end, full in plan_messages(texts, full_of)]
