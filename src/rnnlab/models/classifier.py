"""Many-to-one model: embedding -> recurrent encoder -> pooled sequence vector -> linear layer over classes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import RecurrentEncoder, length_mask
from rnnlab.models.inputs import make_embedding

POOLINGS = ("last", "max", "mean")


class SequenceClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned",
                 cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, embedding_dropout: float = 0.0, output_dropout: float = 0.0,
                 nonlinearity: str = "tanh", pooling: str = "last", forget_bias: float | None = None,
                 param_budget: int | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r} must be one of {POOLINGS}")
        self.pooling = pooling
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(self.embedding.embedding_dim, cell=cell, hidden_size=hidden_size,
                                        num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                                        nonlinearity=nonlinearity, forget_bias=forget_bias,
                                        param_budget=param_budget)
        self.output_dropout = nn.Dropout(output_dropout)
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, last = self.encoder(self.embedding_dropout(self.embedding(input_ids)), lengths)
        if self.pooling == "last":
            pooled = last
        elif self.pooling == "max":
            pad = ~length_mask(lengths, input_ids.size(1), input_ids.device).unsqueeze(-1)
            pooled = outputs.masked_fill(pad, float("-inf")).max(dim=1).values
        else:
            pooled = outputs.sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        return self.head(self.output_dropout(pooled))
