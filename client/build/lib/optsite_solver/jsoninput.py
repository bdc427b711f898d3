"""JSON text from outside (a socket message, a query parameter, a spec file): parsed strictly.

One reader for every way in, so that each refuses the same things in the same words: text that is
not JSON, NaN and Infinity (not JSON, though Python's reader takes them), numbers too large for a
float or with more digits than Python converts, nesting deeper than any spec needs, and strings
with a lone UTF-16 surrogate escape ("\\ud800": no UTF-8 text, database or reply can hold one).
Values it returns are plain JSON values; what they mean is the validators' business (a 400-digit
integer is returned as an int, for the validator to name its field).
"""

from __future__ import annotations

import json
import math
import re
import sys

# Specs nest four levels (spec > bounds > pair > number); messages one more. 32 is ample, and
# shallow enough that no validator recursing over a value can hit Python's recursion limit.
MAX_DEPTH = 32


class InputError(ValueError):
    """Text that is not acceptable JSON; str() is words for a person."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"the number {_clip(text)} is too large for a float")
    return value


def _no_constant(name: str):
    raise InputError(f"{name} is not a JSON value; write a number, or null")


def _clip(text: str, n: int = 24) -> str:
    return text if len(text) <= n else f"{text[:n]}… ({len(text):,} characters)"


# A \\uD800-\\uDFFF escape: only then can a string hold a lone surrogate (checked after decoding).
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")

_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)


def depth(value) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return deepest
        todo.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(text: str | bytes | bytearray):
    """The JSON value of `text`, or InputError saying what is wrong with it."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the text is not UTF-8") from None
    try:
        value = _decoder.decode(text)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # an integer past Python's digit limit
        raise InputError(f"a number has more than {sys.get_int_max_str_digits():,} digits") from None
    if depth(value) > MAX_DEPTH:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InputError("a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): not valid Unicode")
    return value


def _has_lone_surrogate(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
