"""Readers: turn a raw file into validated (text, label) records, with counts of what was dropped."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.errors import DataError


@dataclass
class LabelledTexts:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    dropped_empty: int = 0  # empty or whitespace-only texts are dropped and counted, not refused


def read_labelled_csv(path: str | Path, text_column: str, label_column: str, labels: list[str],
                      row_filter: dict | None = None) -> LabelledTexts:
    """Read a CSV of texts and integer labels in 0..len(labels)-1 (or label names).

    Rows failing `row_filter` ({column: value}) are skipped. A label outside the declared set is refused
    with its line number; a missing column is refused naming the columns that exist.
    """
    csv.field_size_limit(sys.maxsize)  # IMDB reviews exceed the default 128 KiB field limit
    path = Path(path)
    row_filter = dict(row_filter or {})
    names = [str(name) for name in labels]
    out = LabelledTexts()
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in (text_column, label_column, *row_filter):
            if needed not in columns:
                raise DataError(f"{path}: no column {needed!r} (columns: {columns}). "
                                "Fix data.text_column / data.label_column / data.filter to name existing columns.")
        for row in reader:
            if any(row[col] != str(value) for col, value in row_filter.items()):
                continue
            text = row[text_column] or ""
            if not text.strip():
                out.dropped_empty += 1
                continue
            out.texts.append(text)
            out.labels.append(_label_index(row[label_column], names, path, reader.line_num))
    if not out.texts:
        raise DataError(f"{path}: no usable rows (filter {row_filter}, {out.dropped_empty} empty texts)")
    return out


def _label_index(raw: str, names: list[str], path: Path, line: int) -> int:
    raw = (raw or "").strip()
    if raw in names:
        return names.index(raw)
    if raw.isascii() and raw.isdigit() and int(raw) < len(names):
        return int(raw)
    raise DataError(f"{path}:{line}: label {raw!r} is not in the declared set {names} "
                    f"(or 0..{len(names) - 1}). Fix the file or data.labels.")


@dataclass
class SentencePairs:
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    dropped_empty: int = 0  # a side empty or whitespace-only
    dropped_long: int = 0  # a side longer than max_words


def read_sentence_pairs(path: str | Path, source_column: int = 0, target_column: int = 1,
                        max_words: int | None = None) -> SentencePairs:
    """Read a tab-separated file of translation pairs (Tatoeba / Anki: `english<TAB>spanish<TAB>attribution`).

    A line with too few columns is refused with its line number; pairs with an empty side, or a side of more
    than `max_words` whitespace-separated words, are dropped and counted."""
    path = Path(path)
    out = SentencePairs()
    needed = max(source_column, target_column) + 1
    with open(path, encoding="utf-8") as handle:
        for line_num, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            columns = line.rstrip("\n").split("\t")
            if len(columns) < needed:
                raise DataError(f"{path}:{line_num}: {len(columns)} tab-separated column(s), but data.source_column"
                                f"={source_column} and data.target_column={target_column} need {needed}. "
                                "Fix the file (one pair per line, tab-separated) or the column settings.")
            source, target = columns[source_column].strip(), columns[target_column].strip()
            if not source or not target:
                out.dropped_empty += 1
            elif max_words and max(len(source.split()), len(target.split())) > max_words:
                out.dropped_long += 1
            else:
                out.sources.append(source)
                out.targets.append(target)
    if not out.sources:
        raise DataError(f"{path}: no usable sentence pairs ({out.dropped_empty} with an empty side, "
                        f"{out.dropped_long} longer than data.max_words={max_words})")
    return out
