"""Batches with little padding: sequences of similar length go together (bucketing), padded to the batch's own max."""

from __future__ import annotations

import numpy as np
import torch


class BucketBatchSampler(torch.utils.data.Sampler):
    """Yield lists of indices whose sequences have similar lengths.

    Training: shuffle, cut into pools of `batch_size * pool_batches`, sort each pool by length, cut into batches,
    shuffle the batch order; seeded by (seed, epoch) so runs repeat exactly. Evaluation: sorted by length, fixed.

    Data-parallel (DDP): `batch_size` is the global batch. Every process draws the same global batches and
    keeps rows `rank::num_replicas` of each, so N processes see together exactly what one process sees, and the
    averaged gradient is the one-process gradient. (Lightning's DistributedSampler would shard the indices and
    then bucket each shard: other batches than one process's.)
    """

    def __init__(self, lengths, batch_size: int, shuffle: bool, seed: int = 0, pool_batches: int = 50,
                 num_replicas: int = 1, rank: int = 0):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of each epoch
        self.epoch = epoch

    def __len__(self) -> int:
        batches = -(-len(self.lengths) // self.batch_size)
        return batches - int(self._tail_merged())

    def _tail_merged(self) -> bool:
        """Evaluation under DDP: a last batch with fewer rows than processes joins the one before it, so that no
        row is read by two processes (and counted twice in a gathered score) and none gets an empty batch."""
        tail = len(self.lengths) % self.batch_size
        return (not self.shuffle and self.num_replicas > 1 and 0 < tail < self.num_replicas
                and len(self.lengths) > self.batch_size)

    def __iter__(self):
        batches = list(self._global_batches()) if self._tail_merged() else self._global_batches()
        if self._tail_merged():
            batches = [*batches[:-2], np.concatenate(batches[-2:])]
        for batch in batches:
            if self.num_replicas > 1:
                # training: a batch smaller than the number of processes repeats rows, so no process gets an empty
                # one (the averaged gradient is still that batch's gradient)
                batch = np.resize(batch, max(len(batch), self.num_replicas))[self.rank::self.num_replicas]
            yield batch.tolist()

    def _global_batches(self):
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for i in rng.permutation(len(batches)):
            yield batches[i]


def pad_batch(sequences: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence of this batch; return (ids [B, T], lengths [B])."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    ids = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
    return ids, lengths


def truncate(ids: list[int], max_length: int | None, side: str = "head") -> list[int]:
    """Keep the first (`head`) or last (`tail`) max_length tokens; empty sequences keep one `<unk>`."""
    if max_length and len(ids) > max_length:
        ids = ids[:max_length] if side == "head" else ids[-max_length:]
    return ids or [1]
