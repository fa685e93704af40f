"""LightningDataModule for classification over the token ids written by the `tokenize` stage."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from rnnlab.data.batching import BucketBatchSampler, pad_batch, truncate
from rnnlab.data.conventions import SPLITS
from rnnlab.errors import DataError


class _Encoded(torch.utils.data.Dataset):
    def __init__(self, ids: list[torch.Tensor], labels: torch.Tensor):
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        return self.ids[i], self.labels[i]


def collate(items):
    ids, lengths = pad_batch([seq for seq, _ in items])
    return {"input_ids": ids, "lengths": lengths, "labels": torch.stack([label for _, label in items])}


def load_tokenized(tokenized_dir: Path, kind: str = "tokenized data", needs: str | None = None):
    """The DatasetDict the tokenize stage wrote under tokenized_dir/data; one clear error when it is not there
    (or when `needs`, a file that data of this `kind` has next to it, is missing)."""
    tokenized_dir = Path(tokenized_dir)
    if not (tokenized_dir / "data/dataset_dict.json").exists() or (needs and not (tokenized_dir / needs).exists()):
        raise DataError(f"{tokenized_dir} holds no {kind}: run `dvc repro` (or the tokenize stage) for this "
                        "data set first")
    from datasets import load_from_disk

    return load_from_disk(str(tokenized_dir / "data"))


class SplitDataModule(pl.LightningDataModule):
    """A DataModule whose three loaders differ only by split: subclasses define `_loader(split, train)`,
    usually through `bucketed_loader`, and set batch_size, eval_batch_size, seed, pool_batches, num_workers."""

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        raise NotImplementedError

    def bucketed_loader(self, data, lengths, train: bool, collate_fn) -> torch.utils.data.DataLoader:
        """Length-bucketed batches; under DDP each process takes its share of every global batch."""
        trainer = getattr(self, "trainer", None)
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = BucketBatchSampler(lengths, self.batch_size if train else self.eval_batch_size, shuffle=train,
                                     seed=self.seed, pool_batches=self.pool_batches, num_replicas=replicas,
                                     rank=rank)
        return torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate_fn,
                                           num_workers=self.num_workers)

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        return self._loader("validation", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)


class ClassificationDataModule(SplitDataModule):
    def __init__(self, tokenized_dir: str, batch_size: int = 64, eval_batch_size: int = 256,
                 max_length: int | None = None, truncation_side: str = "head", pool_batches: int = 50,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.tokenized_dir = Path(tokenized_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_length, self.truncation_side = max_length, truncation_side
        self.pool_batches, self.num_workers, self.seed = pool_batches, num_workers, seed
        self.splits: dict[str, _Encoded] = {}

    @classmethod
    def from_config(cls, data_cfg, tokenized_dir: str | Path, seed: int, **chosen) -> ClassificationDataModule:
        """The DataModule the `data` config group describes; `chosen`: arguments a task sets itself."""
        arguments = {"batch_size": data_cfg.batch_size, "eval_batch_size": data_cfg.eval_batch_size,
                     "max_length": data_cfg.max_length, "truncation_side": data_cfg.truncation_side,
                     "pool_batches": data_cfg.pool_batches, "num_workers": data_cfg.num_workers, "seed": seed}
        return cls(str(tokenized_dir), **{**arguments, **chosen})

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        dataset = load_tokenized(self.tokenized_dir)
        for split in SPLITS:
            rows = dataset[split]
            ids = [torch.tensor(truncate(seq, self.max_length, self.truncation_side)) for seq in rows["input_ids"]]
            self.splits[split] = _Encoded(ids, torch.tensor(rows["label"], dtype=torch.long))

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        data = self.splits[split]
        return self.bucketed_loader(data, [len(s) for s in data.ids], train, collate)
