"""LightningDataModule for tagging: words, case features, characters and tags of each sentence, in length
buckets; tags are padded with IGNORE so padded positions never count."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rnnlab.data.batching import pad_batch
from rnnlab.data.conventions import SPLITS
from rnnlab.data.datamodule import SplitDataModule, load_tokenized

IGNORE = -100


def char_ids(words: list[str], chars: dict[str, int], max_chars: int) -> torch.Tensor:
    """[len(words), max_chars] character ids (1 = unknown character), each word cut to max_chars."""
    out = torch.zeros(len(words), max_chars, dtype=torch.long)
    for i, word in enumerate(words):
        ids = [chars.get(ch, 1) for ch in word[:max_chars]]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def collate(items: list[dict]) -> dict:
    ids, lengths = pad_batch([item["input_ids"] for item in items])
    batch = {"input_ids": ids, "lengths": lengths,
             "case_ids": pad_batch([item["case_ids"] for item in items])[0],
             "tags": pad_batch([item["tags"] for item in items], pad_id=IGNORE)[0]}
    if "char_ids" in items[0]:
        width = max(item["char_ids"].size(1) for item in items)
        chars = torch.zeros(len(items), ids.size(1), width, dtype=torch.long)
        for row, item in enumerate(items):
            chars[row, :item["char_ids"].size(0), :item["char_ids"].size(1)] = item["char_ids"]
        batch["char_ids"] = chars
    return batch


def encode_sentence(ids, case, tags, words, chars: dict | None, max_chars: int) -> dict:
    item = {"input_ids": torch.tensor(ids), "case_ids": torch.tensor(case), "tags": torch.tensor(tags)}
    if chars is not None:
        item["char_ids"] = char_ids(words, chars, max_chars)
    return item


class TaggingDataModule(SplitDataModule):
    def __init__(self, tokenized_dir: str, batch_size: int = 32, eval_batch_size: int = 256,
                 pool_batches: int = 50, num_workers: int = 0, seed: int = 0, use_chars: bool = False,
                 max_chars: int = 20):
        super().__init__()
        self.tokenized_dir = Path(tokenized_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.pool_batches, self.num_workers, self.seed = pool_batches, num_workers, seed
        self.use_chars, self.max_chars = use_chars, max_chars
        self.splits: dict[str, list[dict]] = {}

    @property
    def tags(self) -> list[str]:
        return json.loads((self.tokenized_dir / "tags.json").read_text())

    @property
    def chars(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(json.loads((self.tokenized_dir / "chars.json").read_text()))}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        dataset = load_tokenized(self.tokenized_dir, "tokenized tagging data (data.format=conll)", needs="tags.json")
        chars = self.chars if self.use_chars else None
        for split in SPLITS:
            rows = dataset[split]
            self.splits[split] = [encode_sentence(*row, chars, self.max_chars) for row in zip(
                rows["input_ids"], rows["case_ids"], rows["tags"], rows["tokens"], strict=True)]

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        data = self.splits[split]
        return self.bucketed_loader(data, [len(s["input_ids"]) for s in data], train, collate)
