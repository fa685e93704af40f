"""GloVe (Pennington et al. 2014), trained by the project.

1. Co-occurrence counts X_ij over a symmetric window with 1/d weighting. Windows never cross a line (document)
   boundary; out-of-vocabulary words are dropped from the stream first, as in the reference C `cooccur`.
   The corpus is counted in chunks of lines; X is symmetric, so only its upper triangle is counted and kept (one
   int64 key and one float64 sum per pair, merged chunk by chunk). Training takes its pairs straight from that
   triangle (12 bytes per non-zero) and the triangle is dropped before the vectors are allocated: the full matrix
   never exists (`cooccurrence` still builds it, for a caller who wants X itself). Peak memory is about twice the
   triangle plus one chunk's codes (benchmarks/glove_imdb.py; docs/studies.md).
2. Weighted least squares  sum_ij f(X_ij) (w_i . c_j + b_i + b'_j - log X_ij)^2  with f(x) = min(1, (x/x_max)^alpha),
   optimised by AdaGrad pair by pair over the once-shuffled non-zeros (shuffled in place: no index array),
   compiled with numba (seeded; Hogwild threads).
3. The embedding of word i is w_i + c_i.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class Cooccurrences:
    """The upper triangle of a symmetric co-occurrence matrix: sorted unique keys i * V + j (i <= j) and sums."""

    keys: np.ndarray
    sums: np.ndarray
    vocab_size: int

    @property
    def nnz(self) -> int:
        """Non-zeros of the full symmetric matrix."""
        return int(_symmetric_kernels()[0](self.keys, self.vocab_size)[-1])

    def to_csr(self):
        """The full symmetric CSR matrix (float64, sorted column indices)."""
        from scipy import sparse

        indptr, indices, data = self._symmetric(np.float64)
        return sparse.csr_matrix((data, indices, indptr), shape=(self.vocab_size, self.vocab_size))

    def take_training_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows int32, cols int32, values float32) of every non-zero in CSR order, as `to_csr` would give them;
        the triangle is handed over (this object is empty afterwards), so the two never sit in memory together
        for longer than the copy."""
        indptr, cols, values = self._symmetric(np.float32)
        self.keys, self.sums = np.empty(0, np.int64), np.empty(0, np.float64)
        rows = np.repeat(np.arange(self.vocab_size, dtype=np.int32), np.diff(indptr))
        return rows, cols, values

    def _symmetric(self, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indptr_of, fill = _symmetric_kernels()
        indptr = indptr_of(self.keys, self.vocab_size)
        cols, values = np.empty(indptr[-1], np.int32), np.empty(indptr[-1], dtype)
        fill(self.keys, self.sums, self.vocab_size, indptr, cols, values)
        return indptr, cols, values


def count_cooccurrences(lines: Iterable[np.ndarray], vocab_size: int, window: int,
                        chunk_tokens: int = 1_000_000) -> Cooccurrences:
    """The upper triangle of the co-occurrence matrix of id sequences; negative ids are out of vocabulary."""
    keys, sums = np.empty(0, np.int64), np.empty(0, np.float64)
    pending: list[np.ndarray] = []
    pending_tokens = 0

    def flush():
        nonlocal keys, sums, pending, pending_tokens
        if pending:
            chunk_keys, chunk_sums = _count_chunk(pending, vocab_size, window)
            pending, pending_tokens = [], 0
            keys, sums = _merge(keys, sums, chunk_keys, chunk_sums)

    for ids in lines:
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[ids >= 0]
        if len(ids) > 1:
            pending.append(ids)
            pending_tokens += len(ids)
        if pending_tokens >= chunk_tokens:
            flush()
    flush()
    return Cooccurrences(keys, sums, vocab_size)


def cooccurrence(lines: Iterable[np.ndarray], vocab_size: int, window: int, chunk_tokens: int = 1_000_000):
    """Sparse (CSR, float64) symmetric co-occurrence matrix of id sequences; negative ids are out of vocabulary."""
    return count_cooccurrences(lines, vocab_size, window, chunk_tokens).to_csr()


def _count_chunk(lines: list[np.ndarray], vocab_size: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's upper-triangle pairs: sorted unique keys and their summed weights. Each pair at distance d is
    coded as key * window + (d - 1) so one in-place sort of int64 codes counts every (pair, distance); a pair of
    one word with itself adds 2/d (X_ii gets the pair from both sides, as X_ij and X_ji each get theirs)."""
    ids = np.concatenate(lines)
    line_ends = np.cumsum([len(line) for line in lines])
    codes = _codes_kernel()(ids, line_ends, vocab_size, window)
    del ids
    codes.sort()
    return _sum_kernel()(codes, vocab_size, window)


def _merge(keys_a, sums_a, keys_b, sums_b):
    """Two sorted unique key arrays and their sums as one (sums of a key present in both added)."""
    if not len(keys_a):
        return keys_b, sums_b
    return _merge_kernel()(keys_a, sums_a, keys_b, sums_b)


_KERNELS: dict = {}


def _codes_kernel():
    if "codes" not in _KERNELS:
        import numba

        @numba.njit(cache=True)
        def codes_of(ids, line_ends, vocab, window):
            n = 0  # first pass: how many (pair, distance) codes, so the array is allocated once, exactly
            start = 0
            for end in line_ends:
                for distance in range(1, window + 1):
                    n += max(0, end - start - distance)
                start = end
            codes = np.empty(n, np.int64)
            k = start = 0
            for end in line_ends:
                for p in range(start, end):
                    for distance in range(1, min(window, end - 1 - p) + 1):
                        a, b = ids[p], ids[p + distance]
                        low, high = (a, b) if a <= b else (b, a)
                        codes[k] = (low * vocab + high) * window + (distance - 1)
                        k += 1
                start = end
            return codes

        _KERNELS["codes"] = codes_of
    return _KERNELS["codes"]


def _sum_kernel():
    if "sum" not in _KERNELS:
        import numba

        @numba.njit(cache=True)
        def sum_sorted(codes, vocab, window):
            # sorted codes: each key's runs of equal (key, distance) in increasing distance; a run of n adds n / d
            # (2n / d on the diagonal) to the key's sum, in that order
            m = 0
            for k in range(len(codes)):
                if k == 0 or codes[k] // window != codes[k - 1] // window:
                    m += 1
            keys = np.empty(m, np.int64)
            sums = np.zeros(m, np.float64)
            slot = -1
            run = 0
            for k in range(len(codes)):
                key = codes[k] // window
                if k == 0 or key != codes[k - 1] // window:
                    slot += 1
                    keys[slot] = key
                run += 1
                if k + 1 == len(codes) or codes[k + 1] != codes[k]:
                    weight = run / (codes[k] % window + 1)
                    if key // vocab == key % vocab:
                        weight *= 2.0
                    sums[slot] += weight
                    run = 0
            return keys, sums

        _KERNELS["sum"] = sum_sorted
    return _KERNELS["sum"]


def _merge_kernel():
    if "merge" not in _KERNELS:
        import numba

        @numba.njit(cache=True)
        def merge(keys_a, sums_a, keys_b, sums_b):
            n = 0  # first pass: the size of the union
            i = j = 0
            while i < len(keys_a) and j < len(keys_b):
                if keys_a[i] == keys_b[j]:
                    i += 1
                    j += 1
                elif keys_a[i] < keys_b[j]:
                    i += 1
                else:
                    j += 1
                n += 1
            n += len(keys_a) - i + len(keys_b) - j
            keys = np.empty(n, np.int64)
            sums = np.empty(n, np.float64)
            i = j = k = 0
            while i < len(keys_a) or j < len(keys_b):
                if j == len(keys_b) or (i < len(keys_a) and keys_a[i] < keys_b[j]):
                    keys[k], sums[k] = keys_a[i], sums_a[i]
                    i += 1
                elif i == len(keys_a) or keys_b[j] < keys_a[i]:
                    keys[k], sums[k] = keys_b[j], sums_b[j]
                    j += 1
                else:
                    keys[k], sums[k] = keys_a[i], sums_a[i] + sums_b[j]
                    i += 1
                    j += 1
                k += 1
            return keys, sums

        _KERNELS["merge"] = merge
    return _KERNELS["merge"]


def _symmetric_kernels():
    """indptr_of(keys, vocab): the CSR row pointers of the full symmetric matrix of an upper triangle;
    fill(keys, sums, vocab, indptr, cols, values): its column indices and values, in CSR order (sorted columns),
    into arrays of the caller's dtypes."""
    if "symmetric" not in _KERNELS:
        import numba

        @numba.njit(cache=True)
        def indptr_of(keys, vocab):
            length = np.zeros(vocab + 1, np.int64)
            for k in range(len(keys)):
                i, j = keys[k] // vocab, keys[k] % vocab
                length[i + 1] += 1
                if i != j:
                    length[j + 1] += 1
            return np.cumsum(length)

        @numba.njit(cache=True)
        def fill(keys, sums, vocab, indptr, cols, values):
            # Row r holds (i, r) for i < r, which come first in key order, then (r, j) for j >= r: sorted columns.
            at = indptr[:-1].copy()
            for k in range(len(keys)):
                i, j = keys[k] // vocab, keys[k] % vocab
                cols[at[i]], values[at[i]] = j, sums[k]
                at[i] += 1
                if i != j:
                    cols[at[j]], values[at[j]] = i, sums[k]
                    at[j] += 1

        _KERNELS["symmetric"] = indptr_of, fill
    return _KERNELS["symmetric"]


def train_glove(counts, dim: int, iterations: int, x_max: float = 100.0, alpha: float = 0.75,
                learning_rate: float = 0.05, seed: int = 0, threads: int = 1, on_iteration=None) -> np.ndarray:
    """Fit GloVe vectors to co-occurrence counts; return W + C as float32 [V, dim]. `counts`: Cooccurrences from
    `count_cooccurrences` (used up: its triangle is freed once the training pairs are made) or a sparse matrix.

    As the reference C `glove`: the non-zero pairs are shuffled once (seeded), then each iteration runs AdaGrad
    over them pair by pair, `threads` workers on disjoint slices updating shared tables lock-free (Hogwild).
    threads=1 is bit-repeatable; more threads are faster and repeat only approximately.
    `on_iteration(iteration, mean_loss)` is called after each pass.
    """
    import numba

    # the training pairs, 12 bytes each (the reference C reads 16 from its shuffled file), shuffled in place
    if isinstance(counts, Cooccurrences):
        vocab = counts.vocab_size
        rows, cols, values = counts.take_training_pairs()
    else:
        counts = counts.tocsr()
        vocab = counts.shape[0]
        rows = np.repeat(np.arange(vocab, dtype=np.int32), np.diff(counts.indptr))
        cols = counts.indices.astype(np.int32)  # a copy: the caller's matrix is left as it was
        values = counts.data.astype(np.float32)
    _shuffle_kernel()(rows, cols, values, seed)
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


def _shuffle_kernel():
    if "shuffle" not in _KERNELS:
        import numba

        @numba.njit(cache=True)
        def shuffle(rows, cols, values, seed):
            np.random.seed(seed)  # numba's own seeded generator: the same order on every machine
            for k in range(len(rows) - 1, 0, -1):  # Fisher-Yates, the three arrays together
                other = np.random.randint(0, k + 1)
                rows[k], rows[other] = rows[other], rows[k]
                cols[k], cols[other] = cols[other], cols[k]
                values[k], values[other] = values[other], values[k]

        _KERNELS["shuffle"] = shuffle
    return _KERNELS["shuffle"]


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
