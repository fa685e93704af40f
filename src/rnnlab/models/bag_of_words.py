"""The order-blind baseline, the lecture's plain network ("ANN", one-to-one): the words' embeddings pooled over the
text (mean, or max), then a small MLP. It cannot see word order by construction: any permutation of a text's
words gives it the same pooled vector."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import length_mask
from rnnlab.models.inputs import make_embedding

POOLINGS = ("mean", "max")


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned", pooling: str = "mean", hidden_size: int = 128,
                 dropout: float = 0.3, embedding_dropout: float = 0.3):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r} must be one of {POOLINGS} for the bag of embeddings")
        self.pooling = pooling
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        width = self.embedding.embedding_dim
        # hidden_size 0: no hidden layer (logistic regression on the pooled vector)
        layers = [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)] if hidden_size else []
        self.head = nn.Sequential(*layers, nn.Linear(hidden_size or width, num_classes))

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding_dropout(self.embedding(input_ids))
        real = length_mask(lengths, input_ids.size(1), input_ids.device).unsqueeze(-1)
        if self.pooling == "max":
            pooled = x.masked_fill(~real, float("-inf")).max(dim=1).values
        else:  # pads excluded from the sum and from the count
            pooled = (x * real).sum(dim=1) / lengths.to(x.device).unsqueeze(1).to(x.dtype)
        return self.head(pooled)
