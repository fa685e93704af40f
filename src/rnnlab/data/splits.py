"""Seeded, stratified train / validation / test splits."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import ConfigError


def stratified_split(labels: list[int], validation: float, test: float, seed: int) -> dict[str, list[int]]:
    """Row indices for each split; every class is divided in the same proportions, reproducibly."""
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ConfigError(f"data.split: validation={validation}, test={test} must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for cls in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == cls)
        rng.shuffle(idx)
        n_test = round(len(idx) * test)
        n_val = round(len(idx) * validation)
        parts["test"].extend(idx[:n_test].tolist())
        parts["validation"].extend(idx[n_test:n_test + n_val].tolist())
        parts["train"].extend(idx[n_test + n_val:].tolist())
    return {name: sorted(rows) for name, rows in parts.items()}
