"""Capitalisation as a feature: with a lowercased vocabulary (which matches the lowercased GloVe 6B vectors and
shares statistics between `Apple` and `apple`) the case of each word is kept as one of a few categories."""

from __future__ import annotations

CASES = ("<pad>", "lower", "title", "upper", "mixed", "numeric", "other")


def case_id(word: str) -> int:
    if any(ch.isdigit() for ch in word):
        return CASES.index("numeric")
    letters = [ch for ch in word if ch.isalpha()]
    if not letters:
        return CASES.index("other")
    if all(ch.islower() for ch in letters):
        return CASES.index("lower")
    if all(ch.isupper() for ch in letters):
        return CASES.index("upper")
    if letters[0].isupper() and all(ch.islower() for ch in letters[1:]):
        return CASES.index("title")
    return CASES.index("mixed")
