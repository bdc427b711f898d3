"""JSON text as the project stores and sends it: compact, with nan/inf as null."""

from __future__ import annotations

import json

from runs.optim import jsonable

_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode
try:  # Encoding is the hot path (a DE step may carry its whole population): orjson is ~30x faster.
    import orjson
except ImportError:  # pragma: no cover - requirements.txt pins it; the stdlib path is the same JSON
    orjson = None


def _dumps_std(value) -> str:
    try:
        return _encode(value)
    except (ValueError, TypeError):  # rare (nan/inf, numpy): only then walk the value
        return _encode(jsonable(value))


def dumps(value) -> str:
    """Compact JSON text with nan/inf as null (orjson writes them as null by itself)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        except TypeError:  # a type orjson refuses (e.g. a huge int): the stdlib handles it
            pass
    return _dumps_std(value)
