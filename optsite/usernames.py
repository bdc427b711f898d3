"""User names that read as another's: "аlice" with a Cyrillic а, "ａｌｉｃｅ", "ALICE", "aIice".

Two names are look-alikes when their skeletons are equal (the idea of Unicode's UTS #39): NFKC
(fullwidth and other compatibility forms become plain letters, as Django already does to every
user name), then each character replaced by one fixed member of its set of homoglyphs from the
Unicode confusables data that confusable_homoglyphs ships. Names are compared twice, as written
and case folded: "aIice" (capital I) reads as "alice" only as written, "ALICE" only folded.
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables


def _look_alikes(char: str) -> set[str]:
    found = confusables.is_confusable(char, greedy=True) or []
    return {h["c"] for entry in found for h in entry["homoglyphs"] if len(h["c"]) == 1}


@functools.lru_cache(maxsize=8192)
def _prototype(char: str) -> str:
    """One fixed representative (the lowest code point) of the characters that look like `char`.
    The data lists "l" among the look-alikes of "I" but not "1", which it lists for "l": follow
    the links until the set is closed, so every member of a set gets the same representative."""
    members, todo = {char}, [char]
    while todo:
        for other in _look_alikes(todo.pop()) - members:
            members.add(other)
            todo.append(other)
    return min(members)


def skeletons(name: str) -> tuple[str, str]:
    """The skeleton of `name` as written, and of `name` case folded."""
    written = unicodedata.normalize("NFKC", name)
    folded = unicodedata.normalize("NFKC", written.casefold())
    return "".join(map(_prototype, written)), "".join(map(_prototype, folded))


def look_alike(name: str, existing) -> str | None:
    """The first of `existing` (names) that reads as `name`, or None. A name equal to `name` is
    one too: the caller decides whether that is the same account."""
    mine = skeletons(name)
    for other in existing:
        theirs = skeletons(other)
        if mine[0] == theirs[0] or mine[1] == theirs[1]:
            return other
    return None
