"""Build the embedding a config asks for, as a vocabulary-aligned .npy matrix plus a JSON of its facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.errors import ConfigError
from rnnlab.io import atomic_file, write_json

# Embeddings that need no file: the model initialises them itself.
BUILT_IN_MODEL = {"learned"}
BUILDERS = {"word2vec"}  # glove, pretrained and onehot slot in here


def matrix_path(embeddings_dir: str | Path, name: str) -> Path:
    return Path(embeddings_dir) / f"{name}.npy"


def build_embedding(cfg, tokenizer, corpus_texts, out_dir: str | Path) -> dict:
    """Write `<out_dir>/<cfg.name>.npy` (+ .json) for a built embedding; return its facts."""
    from rnnlab.data.tokenization import vocabulary, words

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.name in BUILT_IN_MODEL:
        facts = {"name": cfg.name, "dim": cfg.dim, "built": False}
        write_json(out_dir / f"{cfg.name}.json", facts)
        return facts
    if cfg.name not in BUILDERS:
        raise ConfigError(f"embedding={cfg.name!r} cannot be built yet: choose one of {sorted(BUILDERS | BUILT_IN_MODEL)}")
    from rnnlab.embeddings.word2vec import align, train_word2vec

    vectors = train_word2vec((words(tokenizer, text) for text in corpus_texts), cfg)
    matrix, facts = align(vectors, vocabulary(tokenizer), seed=cfg.seed)
    facts.update({"name": cfg.name, "dim": int(matrix.shape[1]), "built": True})
    with atomic_file(matrix_path(out_dir, cfg.name), "wb") as handle:
        np.save(handle, matrix)
    write_json(out_dir / f"{cfg.name}.json", facts)
    return facts


def load_matrix(cfg, embeddings_dir: str | Path) -> np.ndarray | None:
    """The built matrix for cfg.name, or None for an embedding the model learns from scratch."""
    if cfg.name in BUILT_IN_MODEL:
        return None
    path = matrix_path(embeddings_dir, cfg.name)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: build embedding={cfg.name} with `dvc repro` first")
    return np.load(path)
