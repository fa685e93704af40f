"""The chorales as a language-model corpus: one chorale a row, its key token then its event tokens, in the
prepare stage's layout for running text (a DatasetDict of `text` rows per split), so the language-model
tokenizer and task read music as they read the Penn Treebank (each row ends in `<eos>` there)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.music.chorales import read_chorales, score_files, split_by_chorale, training_transpositions
from rnnlab.music.melody import Melody, in_common_key, melody_tokens, tokens_to_melody

SPLITS = ("train", "validation", "test")


def chorale_rows(raw_dir: str | Path, voices: str, transpose: str, validation: float, test: float,
                 seed: int) -> tuple[dict[str, list[str]], dict]:
    """({split: token rows}, facts). Every score under raw_dir is read, split by chorale and transposed
    (`common`: every split in C major / A minor; `augment`: the train split in all twelve keys, the others as
    written; `none`); the facts count what each split holds and name each skipped file with its reason."""
    melodies, skipped = read_chorales(score_files(raw_dir), voices)
    splits = split_by_chorale(melodies, validation, test, seed)
    rows, facts = {}, {"scores": len({m.notes["file"] for m in melodies}), "skipped": skipped, "voices": voices,
                       "transpose": transpose, "splits": {}}
    for split in SPLITS:
        members = splits[split]
        if transpose == "common":
            members = [in_common_key(m) for m in members]
        elif split == "train":
            members = training_transpositions(members, transpose)
        rows[split] = [" ".join(melody_tokens(m)) for m in members]
        facts["splits"][split] = {"melodies": len(members), "events": sum(len(m.events) for m in members),
                                  "chorales": len({m.notes["file"] for m in members})}
    return rows, facts


def prepare_chorales(data_cfg, raw_dir: Path):
    """The prepare stage's reader for `data.format: chorales`: (DatasetDict, stats, {file name: JSON})."""
    from datasets import Dataset, DatasetDict

    rows, facts = chorale_rows(raw_dir, data_cfg.voices, data_cfg.transpose, data_cfg.split.validation,
                               data_cfg.split.test, data_cfg.split.seed)
    parts = DatasetDict({split: Dataset.from_dict({"text": rows[split]}) for split in SPLITS})
    stats = {**{f"{s}_lines": len(r) for s, r in rows.items()},
             **{f"{s}_words": sum(len(line.split()) for line in r) for s, r in rows.items()},
             "skipped_files": len(facts["skipped"])}
    return parts, stats, {"chorales.json": facts}


def prepared_melodies(prepared_dir: str | Path, split: str) -> list[Melody]:
    """A prepared split's melodies, read back from its token rows."""
    from datasets import load_from_disk

    texts = load_from_disk(str(Path(prepared_dir) / "data"))[split]["text"]
    return [tokens_to_melody(text.split(), name=f"{split}-{i + 1}") for i, text in enumerate(texts)]
