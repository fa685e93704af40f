"""LightningDataModule for translation pairs: source ids, target ids framed by `<bos>` ... `<eos>`, in buckets of
similar source length; each batch also carries its rows' indices, so decoded output can meet its reference text."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnlab.data.batching import pad_batch
from rnnlab.data.conventions import SPLITS
from rnnlab.data.datamodule import SplitDataModule, load_tokenized


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, sources: list[torch.Tensor], targets: list[torch.Tensor], texts: dict[str, list[str]]):
        self.sources, self.targets, self.texts = sources, targets, texts

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i):
        return self.sources[i], self.targets[i], i


def collate(items) -> dict:
    source_ids, source_lengths = pad_batch([source for source, _, _ in items])
    target_ids, target_lengths = pad_batch([target for _, target, _ in items])
    return {"source_ids": source_ids, "source_lengths": source_lengths, "target_ids": target_ids,
            "target_lengths": target_lengths, "index": torch.tensor([i for _, _, i in items])}


class PairDataModule(SplitDataModule):
    """`target_ids` = `<bos>` w1 .. wn `<eos>`: the decoder reads [:, :-1] and predicts [:, 1:]."""

    def __init__(self, tokenized_dir: str, bos_id: int, eos_id: int, batch_size: int = 64,
                 eval_batch_size: int = 256, pool_batches: int = 50, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.tokenized_dir = Path(tokenized_dir)
        self.bos_id, self.eos_id = bos_id, eos_id
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.pool_batches, self.num_workers, self.seed = pool_batches, num_workers, seed
        self.splits: dict[str, _Pairs] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        dataset = load_tokenized(self.tokenized_dir, "tokenized sentence pairs (data.format=pairs)",
                                 needs="target_tokenizer.json")
        for split in SPLITS:
            rows = dataset[split]
            sources = [torch.tensor(seq or [1]) for seq in rows["source_ids"]]
            targets = [torch.tensor([self.bos_id, *seq, self.eos_id]) for seq in rows["target_ids"]]
            self.splits[split] = _Pairs(sources, targets, {"source": rows["source"], "target": rows["target"]})

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        data = self.splits[split]
        return self.bucketed_loader(data, [len(s) for s in data.sources], train, collate)
