"""Word order as something to measure: a text's words shuffled (the same shuffle for every model, whatever the
batching), and the order task, a real sentence against the same words in another order."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import torch

from rnnlab.data.conventions import SPLITS
from rnnlab.errors import ConfigError, DataError
from rnnlab.io import atomic_dir, write_json


def shuffle_within_length(ids: torch.Tensor, lengths: torch.Tensor, seed: int) -> torch.Tensor:
    """[B, T] ids with each row's first lengths[b] ids permuted, pads left in place. A row's permutation depends
    only on `seed` and the row's own ids, so every model of a study reads the same shuffled test texts."""
    shuffled = ids.clone()
    for row, length in enumerate(lengths.tolist()):
        words = ids[row, :length]
        generator = torch.Generator().manual_seed(_row_seed(seed, words))
        shuffled[row, :length] = words[torch.randperm(length, generator=generator).to(ids.device)]
    return shuffled


def _row_seed(seed: int, words: torch.Tensor) -> int:
    return (seed * 1_000_003 + zlib.crc32(words.cpu().numpy().tobytes())) % (2**63)


def shuffled_words(words: list[str], rng: random.Random, attempts: int = 20) -> list[str] | None:
    """The same words in another order, or None when no other order exists (fewer than two distinct words)."""
    if len(set(words)) < 2:
        return None
    for _ in range(attempts):
        other = rng.sample(words, len(words))
        if other != words:
            return other
    return None


def order_pairs(sentences: list[str], seed: int) -> list[tuple[str, int]]:
    """The order task on `sentences` (one split's): each sentence as it is (label 1) and its words in another
    order (label 0), so an order-blind model sees the same multiset twice with both labels and is at chance.
    Sentences with no other order are left out; labels are balanced by construction."""
    rng = random.Random(seed)
    pairs = []
    for sentence in sentences:
        words = sentence.split()
        other = shuffled_words(words, rng)
        if other is None:
            continue
        pairs += [(" ".join(words), 1), (" ".join(other), 0)]
    return pairs


def derive_order_task(data_cfg, source_dir: str | Path, out_dir: str | Path) -> dict:
    """The order task's prepared splits from another data set's (`data.derived_from`): each split's texts become
    (real, shuffled) pairs in that same split, so no sentence is in two splits; a text already seen in an earlier
    split is left out of the later one. Saved like any prepared data set (text, label: the index into
    data.labels, [shuffled, real]); returns the counts."""
    from datasets import Dataset, DatasetDict, load_from_disk

    labels = [str(label) for label in data_cfg.labels]
    if labels != ["shuffled", "real"]:
        raise ConfigError(f"data.labels={labels}: the order task's labels are [shuffled, real] (label 1 = the "
                          "sentence as written)")
    if not (Path(source_dir) / "data/dataset_dict.json").exists():
        raise DataError(f"{source_dir} holds no prepared splits of data.derived_from={data_cfg.derived_from}: "
                        f"run `dvc repro prepare@{data_cfg.derived_from}` first")
    source = load_from_disk(str(Path(source_dir) / "data"))
    seen: set[str] = set()
    parts, stats = {}, {}
    for index, split in enumerate(SPLITS):
        texts = []
        for text in source[split]["text"]:
            key = " ".join(text.split())
            if key and key not in seen:
                seen.add(key)
                texts.append(key)
        pairs = order_pairs(texts, seed=data_cfg.seed * 10 + index)
        parts[split] = Dataset.from_dict({"text": [t for t, _ in pairs], "label": [label for _, label in pairs]})
        stats[split] = {"sentences": len(pairs) // 2, "texts": len(pairs)}
    with atomic_dir(out_dir) as tmp:
        DatasetDict(parts).save_to_disk(str(tmp / "data"))
        write_json(tmp / "stats.json", stats)
    return stats
