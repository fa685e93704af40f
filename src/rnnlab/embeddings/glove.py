"""GloVe (Pennington et al. 2014), trained by the project.

1. Co-occurrence counts X_ij over a symmetric window with 1/d weighting. Windows never cross a line (document)
   boundary; out-of-vocabulary words are dropped from the stream first, as in the reference C `cooccur`.
   The corpus is counted in chunks of lines, so memory is bounded by the chunk size plus the sparse result.
2. Weighted least squares  sum_ij f(X_ij) (w_i . c_j + b_i + b'_j - log X_ij)^2  with f(x) = min(1, (x/x_max)^alpha),
   optimised by mini-batch AdaGrad over shuffled non-zero pairs (vectorised in torch, seeded).
3. The embedding of word i is w_i + c_i.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def cooccurrence(lines: Iterable[np.ndarray], vocab_size: int, window: int, chunk_tokens: int = 1_000_000):
    """Sparse (CSR, float64) symmetric co-occurrence matrix of id sequences; negative ids are out of vocabulary."""
    from scipy import sparse

    total = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    pending: list[np.ndarray] = []
    pending_tokens = 0

    def flush():
        nonlocal total, pending, pending_tokens
        if pending:
            total = total + _count_chunk(pending, vocab_size, window)
        pending, pending_tokens = [], 0

    for ids in lines:
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[ids >= 0]
        if len(ids) > 1:
            pending.append(ids)
            pending_tokens += len(ids)
        if pending_tokens >= chunk_tokens:
            flush()
    flush()
    return total


def _count_chunk(lines: list[np.ndarray], vocab_size: int, window: int):
    from scipy import sparse

    ids = np.concatenate(lines)
    line_of = np.repeat(np.arange(len(lines)), [len(line) for line in lines])
    rows, cols, vals = [], [], []
    for distance in range(1, window + 1):
        same_line = line_of[:-distance] == line_of[distance:]
        left, right = ids[:-distance][same_line], ids[distance:][same_line]
        weight = np.full(len(left), 1.0 / distance)
        rows += [left, right]
        cols += [right, left]
        vals += [weight, weight]
    return sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(vocab_size, vocab_size)).tocsr()  # tocsr sums duplicate pairs


def train_glove(counts, dim: int, iterations: int, x_max: float = 100.0, alpha: float = 0.75,
                learning_rate: float = 0.05, batch_size: int = 65536, seed: int = 0, threads: int = 0,
                on_iteration=None) -> np.ndarray:
    """Fit GloVe vectors to a sparse co-occurrence matrix; return W + C as float32 [V, dim].

    `on_iteration(iteration, mean_loss)` is called after each pass (the loss is the weighted squared error).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    coo = counts.tocoo()
    rows = torch.from_numpy(coo.row.astype(np.int64))
    cols = torch.from_numpy(coo.col.astype(np.int64))
    x = torch.from_numpy(coo.data.astype(np.float32))
    log_x = torch.log(x)
    weight = torch.clamp(x / x_max, max=1.0) ** alpha
    vocab = counts.shape[0]
    gen = torch.Generator().manual_seed(seed)
    # Each table row is [vector, bias]; AdaGrad accumulators start at 1 as in the reference implementation.
    words = ((torch.rand(vocab, dim + 1, generator=gen) - 0.5) / dim)
    contexts = ((torch.rand(vocab, dim + 1, generator=gen) - 0.5) / dim)
    words[:, dim] = 0.0
    contexts[:, dim] = 0.0
    words_sq = torch.ones_like(words)
    contexts_sq = torch.ones_like(contexts)
    for iteration in range(iterations):
        order = torch.randperm(len(x), generator=gen)
        loss = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            i, j = rows[batch], cols[batch]
            w, c = words[i], contexts[j]
            diff = (w[:, :dim] * c[:, :dim]).sum(1) + w[:, dim] + c[:, dim] - log_x[batch]
            fdiff = weight[batch] * diff
            loss += float(0.5 * (fdiff * diff).sum())
            ones = torch.ones_like(fdiff).unsqueeze(1)
            _adagrad(words, words_sq, i, fdiff.unsqueeze(1) * torch.cat([c[:, :dim], ones], 1), learning_rate)
            _adagrad(contexts, contexts_sq, j, fdiff.unsqueeze(1) * torch.cat([w[:, :dim], ones], 1), learning_rate)
        if on_iteration is not None:
            on_iteration(iteration, loss / len(x))
    return (words[:, :dim] + contexts[:, :dim]).numpy().astype(np.float32)


def _adagrad(table, squares, index, grads, learning_rate: float) -> None:
    """One AdaGrad step for the rows in `index`; a row that occurs several times gets its summed gradient."""
    import torch

    rows, inverse = torch.unique(index, return_inverse=True)
    summed = torch.zeros(len(rows), grads.shape[1], dtype=grads.dtype).index_add_(0, inverse, grads)
    squares[rows] += summed.square()
    table[rows] -= learning_rate * summed / squares[rows].sqrt()
