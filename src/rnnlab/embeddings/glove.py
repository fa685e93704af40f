"""GloVe (Pennington et al. 2014), trained by the project.

1. Co-occurrence counts X_ij over a symmetric window with 1/d weighting. Windows never cross a line (document)
   boundary; out-of-vocabulary words are dropped from the stream first, as in the reference C `cooccur`.
   The corpus is counted in chunks of lines, so memory is bounded by the chunk size plus the sparse result.
2. Weighted least squares  sum_ij f(X_ij) (w_i . c_j + b_i + b'_j - log X_ij)^2  with f(x) = min(1, (x/x_max)^alpha),
   optimised by AdaGrad pair by pair over the once-shuffled non-zeros, compiled with numba (seeded; Hogwild threads).
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
                learning_rate: float = 0.05, seed: int = 0, threads: int = 1, on_iteration=None) -> np.ndarray:
    """Fit GloVe vectors to a sparse co-occurrence matrix; return W + C as float32 [V, dim].

    As the reference C `glove`: the non-zero pairs are shuffled once (seeded), then each iteration runs AdaGrad
    over them pair by pair, `threads` workers on disjoint slices updating shared tables lock-free (Hogwild).
    threads=1 is bit-repeatable; more threads are faster and repeat only approximately.
    `on_iteration(iteration, mean_loss)` is called after each pass.
    """
    import numba

    coo = counts.tocoo()
    order = np.random.default_rng(seed).permutation(coo.nnz)
    rows = coo.row[order].astype(np.int32)
    cols = coo.col[order].astype(np.int32)
    values = coo.data[order].astype(np.float32)
    vocab = counts.shape[0]
    rng = np.random.default_rng(seed)
    # Each table row is [vector, bias], initialised uniform in [-0.5, 0.5] / dim; AdaGrad sums start at 1.
    words = ((rng.random((vocab, dim + 1), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    contexts = ((rng.random((vocab, dim + 1), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    words_sq = np.ones_like(words)
    contexts_sq = np.ones_like(contexts)
    threads = max(1, threads or numba.config.NUMBA_NUM_THREADS)
    bounds = np.linspace(0, len(values), threads + 1).astype(np.int64)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for iteration in range(iterations):
            loss = _glove_pass(rows, cols, values, words, contexts, words_sq, contexts_sq, bounds,
                               np.float32(x_max), np.float32(alpha), np.float32(learning_rate))
            if on_iteration is not None:
                on_iteration(iteration, float(loss) / max(len(values), 1))
    finally:
        numba.set_num_threads(previous)
    return (words[:, :dim] + contexts[:, :dim]).astype(np.float32)


def _compiled_pass():
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def glove_pass(rows, cols, values, words, contexts, words_sq, contexts_sq, bounds, x_max, alpha, eta):
        dim = words.shape[1] - 1
        threads = len(bounds) - 1
        losses = np.zeros(threads)
        for t in numba.prange(threads):
            loss = 0.0
            for k in range(bounds[t], bounds[t + 1]):
                i, j, x = rows[k], cols[k], values[k]
                diff = words[i, dim] + contexts[j, dim] - np.log(x)
                for b in range(dim):
                    diff += words[i, b] * contexts[j, b]
                weight = np.float32(1.0) if x > x_max else (x / x_max) ** alpha
                fdiff = weight * diff
                if not np.isfinite(fdiff):
                    continue
                loss += 0.5 * fdiff * diff
                fdiff *= eta
                for b in range(dim):
                    grad_w = fdiff * contexts[j, b]
                    grad_c = fdiff * words[i, b]
                    words[i, b] -= grad_w / np.sqrt(words_sq[i, b])
                    contexts[j, b] -= grad_c / np.sqrt(contexts_sq[j, b])
                    words_sq[i, b] += grad_w * grad_w
                    contexts_sq[j, b] += grad_c * grad_c
                words[i, dim] -= fdiff / np.sqrt(words_sq[i, dim])
                contexts[j, dim] -= fdiff / np.sqrt(contexts_sq[j, dim])
                words_sq[i, dim] += fdiff * fdiff
                contexts_sq[j, dim] += fdiff * fdiff
            losses[t] = loss
        return losses.sum()

    return glove_pass


def _glove_pass(*args):
    global _PASS
    if _PASS is None:
        _PASS = _compiled_pass()
    return _PASS(*args)


_PASS = None
