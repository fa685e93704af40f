"""The input layer every model shares (one-hot, learned or pretrained-initialised embedding) and parameter counts."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.errors import ConfigError


class OneHot(nn.Module):
    """The lecture's one-hot input: token id i -> the i-th unit vector (fixed, no parameters; `<pad>` -> zeros)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding_dim = vocab_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(ids, self.embedding_dim).float() * (ids != 0).unsqueeze(-1)


def make_embedding(vocab_size: int, dim: int, weights: np.ndarray | None, freeze: bool,
                   kind: str = "learned") -> nn.Module:
    """One-hot input, a learned embedding (random init), or one initialised from a vocabulary-aligned matrix."""
    if kind == "onehot":
        return OneHot(vocab_size)
    if weights is None:
        return nn.Embedding(vocab_size, dim, padding_idx=0)
    if weights.shape[0] != vocab_size:
        raise ConfigError(f"embedding matrix has {weights.shape[0]} rows but the vocabulary has {vocab_size}: "
                          "rebuild the embedding for this tokenizer (dvc repro)")
    return nn.Embedding.from_pretrained(torch.as_tensor(weights, dtype=torch.float32), freeze=freeze, padding_idx=0)


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts, per part, so uni/bi and depths compare fairly."""
    counts = {"params_total": sum(p.numel() for p in module.parameters()),
              "params_trainable": sum(p.numel() for p in module.parameters() if p.requires_grad)}
    for name, child in module.named_children():
        counts[f"params_{name}"] = sum(p.numel() for p in child.parameters())
    encoder = getattr(module, "encoder", None)
    if isinstance(getattr(encoder, "hidden_size", None), int):  # what model.param_budget chose, if set
        counts["hidden_size"] = encoder.hidden_size
    return counts
