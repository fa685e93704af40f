"""What a run reads of the built inputs: the kinds of `embedding=`, where a built matrix lives and the matrix
itself (embeddings/build.py builds them, in the embed stage; training only loads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.errors import ConfigError

KINDS = ("onehot", "learned", "word2vec", "glove", "pretrained")
MODEL_BUILT = ("onehot", "learned")  # no matrix: the model makes the input layer itself


def embedding_dir(embeddings_dir: str | Path, name: str) -> Path:
    return Path(embeddings_dir) / name


def check_kind(cfg) -> None:
    if cfg.name not in KINDS:
        raise ConfigError(f"embedding={cfg.name!r} is not one of {list(KINDS)}")


def check_onehot_size(cfg, vocab_size: int) -> None:
    if vocab_size > cfg.max_vocab_size:
        raise ConfigError(
            f"embedding=onehot: the vocabulary has {vocab_size:,} words, over embedding.max_vocab_size="
            f"{cfg.max_vocab_size:,}; a one-hot input that wide makes the first recurrent layer "
            f"{vocab_size:,} x (gates x hidden) weights and each batch [B, T, {vocab_size:,}] floats. "
            "Lower tokenizer.max_vocab_size (or raise tokenizer.min_frequency), or use embedding=learned.")


def load_matrix(cfg, embeddings_dir: str | Path) -> np.ndarray | None:
    """The built matrix for cfg.name, or None for the kinds the model makes itself."""
    check_kind(cfg)
    if cfg.name in MODEL_BUILT:
        return None
    path = embedding_dir(embeddings_dir, cfg.name) / "matrix.npy"
    if not path.exists():
        raise ConfigError(f"{path} does not exist: build embedding={cfg.name} first (add it to `embeddings` in "
                          "conf/pipeline.yaml and run `dvc repro`)")
    return np.load(path)
