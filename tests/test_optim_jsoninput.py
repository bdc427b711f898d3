"""The one strict JSON reader for text from outside: what it takes and how it refuses."""

import json

import pytest

from runs.optim.jsoninput import MAX_DEPTH, InputError, depth, loads


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("text", ['{"dim": 3, "bounds": [[-5, 5], [0, 1.5]]}', "[]", "null", '"é"', "-0.0", "1e308"])
def test_it_reads_what_json_reads(text):
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def test_it_returns_a_huge_integer_for_the_validator_to_name_its_field():
    assert loads('{"dim": ' + "9" * 400 + "}") == {"dim": int("9" * 400)}


@pytest.mark.parametrize("text, words", [
    ("{bad", "not valid JSON: expecting property name enclosed in double quotes at line 1, column 2"),
    ("", "not valid JSON: expecting value at line 1, column 1"),
    ("NaN", "NaN is not a JSON value"),
    ('{"x0": [-Infinity]}', "-Infinity is not a JSON value"),
    ("[1e400]", "the number 1e400 is too large for a float"),
    ("9" * 5000, "a number has more than 4,300 digits"),
    (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    (nested(100_000), f"nested deeper than {MAX_DEPTH} levels"),  # past Python's recursion limit
    (b"\xff{}", "the text is not UTF-8"),
])
def test_it_refuses_in_words(text, words):
    with pytest.raises(InputError) as caught:
        loads(text)
    assert words in str(caught.value)


def test_depth_counts_containers_without_recursing():
    assert depth(5) == 0 and depth([]) == 1 and depth({"a": [[1], {"b": []}]}) == 4
    assert loads(nested(MAX_DEPTH)) is not None
    value = []
    for _ in range(50_000):
        value = [value]
    assert depth(value) > MAX_DEPTH  # stops counting past the limit, never recurses


@pytest.mark.parametrize("text", [r'"\ud800"', r'{"label": "a\udfffb"}', r'{"\uDC00": 1}', r'["\ud83d"]'])
def test_it_refuses_a_lone_surrogate_that_no_utf8_text_can_hold(text):
    with pytest.raises(InputError) as caught:
        loads(text)
    assert "lone UTF-16 surrogate" in str(caught.value)


def test_it_reads_a_surrogate_pair_as_the_character_it_is():
    assert loads(r'{"label": "\ud83d\ude00 \u00e9"}') == {"label": "\U0001F600 é"}
