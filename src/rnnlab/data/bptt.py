"""Batches for a language model trained with truncated back-propagation through time (BPTT).

Each split becomes one id stream (every line followed by `<eos>`), cut into `batch_size` contiguous rows
(the remainder that does not fill a row is dropped, as in Zaremba et al. 2014 and pytorch/examples), then read
in consecutive windows of `bptt` steps, in order, never shuffled: row b of window k+1 continues row b of
window k, so the hidden state carried from one window to the next belongs to the same text.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from rnnlab.data.conventions import EOS, SPLITS
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.errors import ConfigError, DataError


def id_stream(lines: list[list[int]], eos_id: int) -> torch.Tensor:
    """All lines' ids, each followed by `eos_id`, as one 1-D tensor."""
    ids = [token for line in lines for token in (*line, eos_id)]
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[batch_size, N]: row b is stream[b*N:(b+1)*N]; the last len(stream) % batch_size ids are dropped."""
    steps = stream.numel() // batch_size
    return stream[:steps * batch_size].view(batch_size, steps)


class BpttWindows(torch.utils.data.Dataset):
    """Window k of a batchified stream: input_ids = rows[:, k*bptt : k*bptt+T], targets = the same shifted by
    one step (T = bptt, or less for the last window)."""

    def __init__(self, rows: torch.Tensor, bptt: int):
        if rows.size(1) < 2:
            raise DataError(f"a split of {rows.numel()} tokens is too short for {rows.size(0)} parallel rows "
                            "of at least 2 tokens: lower data.batch_size / data.eval_batch_size")
        self.rows, self.bptt = rows, bptt

    def __len__(self) -> int:
        return -(-(self.rows.size(1) - 1) // self.bptt)  # ceil: the last window may be shorter

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        start = k * self.bptt
        stop = min(start + self.bptt, self.rows.size(1) - 1)
        return {"input_ids": self.rows[:, start:stop], "targets": self.rows[:, start + 1:stop + 1]}


class LanguageModelDataModule(pl.LightningDataModule):
    def __init__(self, tokenized_dir: str, batch_size: int = 20, bptt: int = 35, eval_batch_size: int = 10,
                 num_workers: int = 0):
        super().__init__()
        for name, value in (("batch_size", batch_size), ("bptt", bptt), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ConfigError(f"data.{name}={value} must be at least 1")
        self.tokenized_dir = Path(tokenized_dir)
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.num_workers = num_workers
        self.windows: dict[str, BpttWindows] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.windows:
            return
        from rnnlab.data.datamodule import load_tokenized

        dataset = load_tokenized(self.tokenized_dir)

        eos_id = load_tokenizer(self.tokenized_dir / "tokenizer.json").token_to_id(EOS)
        if eos_id is None:
            raise DataError(f"{self.tokenized_dir}/tokenizer.json has no {EOS} token: tokenize this data set "
                            "with tokenizer=lm")
        for split in SPLITS:
            rows = batchify(id_stream(dataset[split]["input_ids"], eos_id),
                            self.batch_size if split == "train" else self.eval_batch_size)
            self.windows[split] = BpttWindows(rows, self.bptt)

    def _loader(self, split: str) -> torch.utils.data.DataLoader:
        # batch_size=None: each item already is a [B, T] window; shuffling would break the carried state
        return torch.utils.data.DataLoader(self.windows[split], batch_size=None, shuffle=False,
                                           num_workers=self.num_workers)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("validation")

    def test_dataloader(self):
        return self._loader("test")
