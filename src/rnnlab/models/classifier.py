"""Many-to-one model: embedding -> recurrent encoder -> pooled sequence vector -> linear layer over classes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import RecurrentEncoder

POOLINGS = ("last", "max", "mean")


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


class SequenceClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned",
                 cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, embedding_dropout: float = 0.0, output_dropout: float = 0.0,
                 nonlinearity: str = "tanh", pooling: str = "last"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r} must be one of {POOLINGS}")
        self.pooling = pooling
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(self.embedding.embedding_dim, cell=cell, hidden_size=hidden_size,
                                        num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                                        nonlinearity=nonlinearity)
        self.output_dropout = nn.Dropout(output_dropout)
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, last = self.encoder(self.embedding_dropout(self.embedding(input_ids)), lengths)
        if self.pooling == "last":
            pooled = last
        elif self.pooling == "max":
            pad = (input_ids == 0).unsqueeze(-1)
            pooled = outputs.masked_fill(pad, float("-inf")).max(dim=1).values
        else:
            pooled = outputs.sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        return self.head(self.output_dropout(pooled))


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts, per part, so uni/bi and depths compare fairly."""
    counts = {"params_total": sum(p.numel() for p in module.parameters()),
              "params_trainable": sum(p.numel() for p in module.parameters() if p.requires_grad)}
    for name, child in module.named_children():
        counts[f"params_{name}"] = sum(p.numel() for p in child.parameters())
    return counts
