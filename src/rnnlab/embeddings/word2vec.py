"""Word2Vec (gensim) trained on a corpus of pre-tokenised lines, returned as a vocabulary-aligned matrix."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def train_word2vec(lines, cfg):
    """Train gensim Word2Vec on an iterable of word lists via the fast `corpus_file` path.

    With cfg.workers == 1 and a fixed cfg.seed the vectors repeat exactly across processes.
    """
    from gensim.models import Word2Vec

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as handle:
            for words in lines:
                if words:
                    handle.write(" ".join(words) + "\n")
        model = Word2Vec(corpus_file=str(corpus), vector_size=cfg.dim, window=cfg.window, min_count=cfg.min_count,
                         sg=cfg.sg, negative=cfg.negative, epochs=cfg.epochs, workers=cfg.workers, seed=cfg.seed)
    return model.wv


def align(keyed_vectors, vocab: list[str], seed: int, scale: float = 0.1) -> tuple[np.ndarray, dict]:
    """Matrix whose row i is the vector of vocab[i]; words without a vector get small seeded random rows.

    Row 0 (`<pad>`) is zero. Returns the matrix and coverage counts (over real words: `<pad>`, `<unk>` excluded).
    """
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(len(vocab), keyed_vectors.vector_size)).astype(np.float32)
    found = 0
    for row, word in enumerate(vocab[2:], start=2):
        if word in keyed_vectors.key_to_index:
            matrix[row] = keyed_vectors[word]
            found += 1
    matrix[0] = 0.0
    words = len(vocab) - 2
    return matrix, {"vocab_size": len(vocab), "found": found, "missing": words - found,
                    "coverage": found / max(words, 1)}
