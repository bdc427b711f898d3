"""A client's input as it may appear in a reply: clipped, so that no answer grows with what was sent.

Every error in words may quote what it refuses ("unknown method 'foo'"); a quote of a million
characters, or one message per pair of 20,000 bad bounds, would make the reply itself the problem
(Daphne closes a socket whose message passes 1 MiB). Whatever builds a refusal quotes through
`shown` and sends its field errors through `bounded_errors`.
"""

from __future__ import annotations

import json

MAX_SHOWN = 60       # characters of a quoted value
MAX_TEXT = 400       # characters of one message (or field name)
MAX_FIELDS = 20      # fields listed in one reply's errors
MAX_PER_FIELD = 3    # messages listed per field


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, or its start and how long it was."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def shown(value) -> str:
    """A client's value quoted for a message: as Python or JSON writes it, clipped."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** MAX_SHOWN:
        digits = len(str(abs(value)))  # never print a 4,000-digit integer to clip it afterwards
        return f"{'-' if value < 0 else ''}an integer of {digits:,} digits"
    if isinstance(value, (int, float, str)):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (ValueError, RecursionError):
            text = type(value).__name__
    return clip(text, MAX_SHOWN)


def bounded_errors(errors: dict | None) -> dict[str, list[str]] | None:
    """Field errors cut to MAX_FIELDS fields of MAX_PER_FIELD messages, every text clipped; what
    was left out is counted under "…"."""
    if not errors:
        return errors
    out: dict[str, list[str]] = {}
    left_fields = left_messages = 0
    for i, (field, messages) in enumerate(errors.items()):
        messages = list(messages) if isinstance(messages, (list, tuple)) else [messages]
        if i >= MAX_FIELDS:
            left_fields += 1
            continue
        out[clip(field, MAX_SHOWN)] = [clip(m) for m in messages[:MAX_PER_FIELD]]
        left_messages += max(0, len(messages) - MAX_PER_FIELD)
    if left_fields or left_messages:
        parts = [f"{n:,} more {what}{'s' if n != 1 else ''}" for n, what in
                 ((left_fields, "field"), (left_messages, "message")) if n]
        out["…"] = [f"and {' and '.join(parts)} not listed"]
    return out
