"""Replies quote a client's input clipped: no answer grows with what was sent."""

from runs.optim.echo import MAX_FIELDS, MAX_PER_FIELD, MAX_SHOWN, MAX_TEXT, bounded_errors, clip, shown


def test_it_quotes_small_values_as_they_are():
    assert shown("foo") == "'foo'" and shown(3) == "3" and shown(2.5) == "2.5"
    assert shown([1, None]) == "[1, null]" and shown({"a": True}) == '{"a": true}'


def test_it_clips_what_is_long_and_says_how_long_it_was():
    text = shown("x" * 1_000_000)
    assert len(text) < MAX_SHOWN + 40 and text.endswith("(1,000,002 characters)")
    assert shown([[0, 1]] * 20_000).startswith("[[0, 1], [0, 1]")
    assert len(clip("y" * 10_000)) < MAX_TEXT + 40


def test_a_huge_integer_is_described_not_printed():
    assert shown(10 ** 400) == "an integer of 401 digits"
    assert shown(-(10 ** 4000)) == "-an integer of 4,001 digits"


def test_field_errors_are_cut_and_what_is_left_out_is_counted():
    errors = {f"bounds[{i}]": ["must be a [lower, upper] pair"] * 5 for i in range(20_000)}
    out = bounded_errors(errors)
    assert len(out) == MAX_FIELDS + 1
    assert all(len(v) == MAX_PER_FIELD for k, v in out.items() if k != "…")
    assert out["…"] == [f"and {20_000 - MAX_FIELDS:,} more fields and {MAX_FIELDS * 2} more messages not listed"]
    assert len(repr(out)) < 20_000
    small = {"dim": ["must be a whole number, not 'a'"]}
    assert bounded_errors(small) == small and bounded_errors(None) is None
