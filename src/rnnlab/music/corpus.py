"""The chorales as a language-model corpus: one chorale a line, its key token then its event tokens, in
train / valid / test files, so the language-model task and tokenizer read music as they read the Penn Treebank
(each line ends in `<eos>` there)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.io import atomic_file
from rnnlab.music.chorales import read_chorales, score_files, split_by_chorale, training_transpositions
from rnnlab.music.melody import Melody, in_common_key, melody_tokens

SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}


def write_corpus(raw_dir: str | Path, out_dir: str | Path, voices: str, transpose: str, validation: float,
                 test: float, seed: int) -> dict:
    """Read every score under raw_dir, split by chorale, transpose (`common`: every split in C major / A minor;
    `augment`: the train split in all twelve keys, the others as written; `none`), write the split files; return
    the facts (counts, and each skipped file with its reason)."""
    melodies, skipped = read_chorales(score_files(raw_dir), voices)
    splits = split_by_chorale(melodies, validation, test, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = {"scores": len({m.notes["file"] for m in melodies}), "skipped": skipped, "voices": voices,
             "transpose": transpose, "splits": {}}
    for split, members in splits.items():
        if transpose == "common":
            members = [in_common_key(m) for m in members]
        elif split == "train":
            members = training_transpositions(members, transpose)
        write_lines(out / SPLIT_FILES[split], members)
        facts["splits"][split] = {"melodies": len(members), "events": sum(len(m.events) for m in members),
                                  "chorales": len({m.notes["file"] for m in members})}
    return facts


def write_lines(path: Path, melodies: list[Melody]) -> None:
    with atomic_file(path, "w") as handle:
        for melody in melodies:
            handle.write(" ".join(melody_tokens(melody)) + "\n")


def read_lines(path: str | Path) -> list[list[str]]:
    """The token lines of a split file."""
    return [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
