"""Pretrained word vectors from a word2vec / GloVe text file (plain, .gz or .bz2), aligned to a vocabulary."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import numpy as np

from rnnlab.errors import ConfigError, DataError


def _open_text(path: Path):
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    return opener(path, "rt", encoding="utf-8", errors="strict")


def read_vectors(path: str | Path, wanted: set[str], dim: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the `wanted` words from a text file: `word v1 ... vd` per line (a word2vec header is skipped).

    Returns ({word: vector}, the file's dimension). A line with the wrong number of values, a non-number in a
    wanted word's vector (other words' values are not parsed, for speed), a file that is not text or a dimension
    other than `dim` raises DataError naming the file and line. Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such vectors file; set embedding.path (or embedding.source) to a word2vec / "
                        "GloVe text file")
    found: dict[str, np.ndarray] = {}
    file_dim = dim
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec text header: "<count> <dim>"
                if len(parts) < 2:
                    raise DataError(f"{path}:{number}: expected `word v1 ... vd`, got {line[:60]!r}")
                if file_dim is None:
                    file_dim = len(parts) - 1
                if len(parts) - 1 != file_dim:
                    raise DataError(f"{path}:{number}: {len(parts) - 1} values where {file_dim} were expected "
                                    "(embedding.dim must match the file, and every line must have that many)")
                if parts[0] in wanted:
                    try:
                        found[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
                    except ValueError as err:
                        raise DataError(f"{path}:{number}: non-numeric value in the vector of {parts[0]!r}") from err
    except (OSError, EOFError, UnicodeDecodeError) as err:  # truncated / corrupt archive, or not text at all
        raise DataError(f"{path}: cannot be read as a vectors text file ({err}); re-download it") from err
    if file_dim is None:
        raise DataError(f"{path}: the file is empty")
    return found, file_dim


def check_missing_rule(missing: str) -> None:
    if missing not in ("random", "zero"):
        raise ConfigError(f"embedding.missing={missing!r} must be random or zero")


def align_pretrained(vectors: dict[str, np.ndarray], vocab: list[str], dim: int, missing: str, seed: int,
                     lowercase_fallback: bool = True) -> tuple[np.ndarray, dict]:
    """Matrix row i = the vector of vocab[i]; a missing word gets `missing` = random (seeded, scaled to the found
    vectors' spread) or zero. Special tokens (`<pad>`, `<unk>`) count as neither found nor missing."""
    check_missing_rule(missing)
    rng = np.random.default_rng(seed)
    scale = float(np.std(np.stack(list(vectors.values())))) if vectors else 0.1
    matrix = np.zeros((len(vocab), dim), dtype=np.float32)
    found = 0
    for row, word in enumerate(vocab):
        if row < 2:  # <pad>, <unk>
            continue
        vector = vectors.get(word)
        if vector is None and lowercase_fallback:
            vector = vectors.get(word.lower())
        if vector is not None:
            matrix[row] = vector
            found += 1
        elif missing == "random":
            matrix[row] = rng.normal(0.0, scale, dim)
    words = len(vocab) - 2
    return matrix, {"vocab_size": len(vocab), "found": found, "missing": words - found,
                    "coverage": found / max(words, 1)}
