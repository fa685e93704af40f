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


def grouped_split(keys: list[str], validation: float, test: float, seed: int) -> dict[str, list[int]]:
    """Row indices for each split such that all rows sharing a key (e.g. every translation of one English
    sentence) land in the same split: the distinct keys are shuffled (seeded) and divided in the proportions."""
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ConfigError(f"data.split: validation={validation}, test={test} must be in [0, 1) and sum below 1")
    groups: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    order = list(groups)
    np.random.default_rng(seed).shuffle(order)
    n_test, n_val = round(len(order) * test), round(len(order) * validation)
    names = {"test": order[:n_test], "validation": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {name: sorted(row for key in chosen for row in groups[key]) for name, chosen in names.items()}
