"""The convolutional baseline (Kim 2014, "Convolutional Neural Networks for Sentence Classification"): filters of
widths 3, 4 and 5 (100 feature maps each) slide over the word embeddings, ReLU, max-over-time pooling, dropout
0.5, a linear layer. It sees word order only within a filter's window.

Padding is exact: each text is read as its own words followed by zero vectors up to the widest filter (so a text
shorter than a filter still has one window, as in Kim's zero-padded sentences), and windows that start past
that are left out of the max. A text's output does not depend on how much padding its batch has."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import length_mask
from rnnlab.models.inputs import make_embedding


class ConvolutionalClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned", widths: tuple[int, ...] | list[int] = (3, 4, 5),
                 feature_maps: int = 100, dropout: float = 0.5, embedding_dropout: float = 0.0):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ConfigError(f"model.widths={list(widths)} must be one or more filter widths >= 1 (Kim: [3, 4, 5])")
        self.widths = widths
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.convs = nn.ModuleList(nn.Conv1d(self.embedding.embedding_dim, feature_maps, w) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_maps * len(widths), num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = input_ids.size(1)
        real = length_mask(lengths, steps, input_ids.device).unsqueeze(-1)
        x = self.embedding_dropout(self.embedding(input_ids)) * real  # pads read as zero vectors
        widest = max(self.widths)
        if steps < widest:
            x = F.pad(x, (0, 0, 0, widest - steps))
        x = x.transpose(1, 2)  # [B, D, T]
        lengths = lengths.to(x.device)
        pooled = []
        for width, conv in zip(self.widths, self.convs, strict=True):
            maps = F.relu(conv(x))  # [B, F, windows]
            windows = torch.clamp(lengths - width + 1, min=1)  # a text's own windows (one if it is shorter)
            own = length_mask(windows, maps.size(2), x.device).unsqueeze(1)
            pooled.append(maps.masked_fill(~own, float("-inf")).max(dim=2).values)
        return self.head(self.dropout(torch.cat(pooled, dim=1)))
