"""CoNLL-format tagged text: one token per line, whitespace-separated columns (`word POS chunk NER` in
CoNLL-2003), a blank line between sentences, `-DOCSTART-` lines between documents (skipped)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.errors import DataError

DOCSTART = "-DOCSTART-"


@dataclass
class TaggedSentences:
    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    documents: int = 0


def read_conll(path: str | Path, word_column: int = 0, tag_column: int = -1,
               known_tags: list[str] | None = None, bio: bool = True) -> TaggedSentences:
    """Sentences of (word, tag) from a CoNLL file. A line with too few columns, a tag that is not BIO
    (`O`, `B-X`, `I-X`; checked when `bio`, off for e.g. the POS column), or a tag outside `known_tags` (the
    train split's set) is refused with file:line."""
    path = Path(path)
    # a word column and a different tag column: at least two columns
    need = max(2, max(word_column, tag_column) + 1 if tag_column >= 0 else max(word_column + 1, -tag_column))
    out, words, tags = TaggedSentences(), [], []

    def end_sentence():
        if words:
            out.tokens.append(list(words))
            out.tags.append(list(tags))
            words.clear()
            tags.clear()

    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            columns = line.split()
            if not columns:
                end_sentence()
                continue
            if columns[0] == DOCSTART:
                end_sentence()
                out.documents += 1
                continue
            if len(columns) < need:
                raise DataError(f"{path}:{number}: expected at least {need} whitespace-separated columns "
                                f"(word ... tag), found {len(columns)}: {line.strip()!r}. Fix the line or "
                                "data.word_column / data.tag_column.")
            tag = columns[tag_column]
            if bio and not (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
                raise DataError(f"{path}:{number}: tag {tag!r} is not a BIO tag (O, B-TYPE, I-TYPE)")
            if known_tags is not None and tag not in known_tags:
                raise DataError(f"{path}:{number}: tag {tag!r} does not occur in the train split "
                                f"(tags: {known_tags}); the tag set is read from the train file")
            words.append(columns[word_column])
            tags.append(tag)
    end_sentence()
    if not out.tokens:
        raise DataError(f"{path}: no sentences found (blank-line separated `word ... tag` lines expected)")
    return out


def tag_set(sentences: TaggedSentences) -> list[str]:
    """`O` first, then the other tags sorted by entity type and B before I."""
    found = {tag for sentence in sentences.tags for tag in sentence}
    return ["O"] * ("O" in found) + sorted(found - {"O"}, key=lambda t: (t[2:], t[:1]))
