"""Many-to-many, aligned: one tag per token (named entities). Embedding (+ case feature, + optional character
CNN) -> recurrent encoder -> per-token scores over tags -> softmax, or a CRF with Viterbi decoding."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.data.case import CASES
from rnnlab.data.tagging import IGNORE  # tag id at padded positions
from rnnlab.models.encoder import RecurrentEncoder, length_mask
from rnnlab.models.inputs import make_embedding


class CharCNN(nn.Module):
    """A word's characters -> one vector (Ma & Hovy 2016): embedding, convolution, max over positions. Lets the
    tagger read spelling (suffixes, capitals) of words the vocabulary never saw."""

    def __init__(self, num_chars: int, dim: int, filters: int, width: int = 3):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, width, padding=width // 2)
        self.output_size = filters

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, filters]
        batch, steps, chars = char_ids.shape
        x = self.embedding(char_ids.view(batch * steps, chars)).transpose(1, 2)
        x = self.conv(x).masked_fill((char_ids.view(batch * steps, 1, chars) == 0), float("-inf"))
        x = x.max(dim=2).values
        return x.masked_fill(torch.isinf(x), 0.0).view(batch, steps, -1)  # pad words: no characters


class SequenceTagger(nn.Module):
    def __init__(self, vocab_size: int, num_tags: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned", num_chars: int = 0,
                 cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, embedding_dropout: float = 0.0, output_dropout: float = 0.0,
                 nonlinearity: str = "tanh", case_dim: int = 0, char_dim: int = 0, char_filters: int = 0,
                 crf: bool = False, forget_bias: float | None = None, param_budget: int | None = None):
        super().__init__()
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        input_size = self.embedding.embedding_dim
        self.case_embedding = nn.Embedding(len(CASES), case_dim, padding_idx=0) if case_dim else None
        input_size += case_dim
        self.chars = CharCNN(num_chars, char_dim, char_filters) if char_dim and char_filters else None
        input_size += char_filters if self.chars else 0
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(input_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                        bidirectional=bidirectional, dropout=dropout, nonlinearity=nonlinearity,
                                        forget_bias=forget_bias, param_budget=param_budget)
        self.output_dropout = nn.Dropout(output_dropout)
        self.head = nn.Linear(self.encoder.output_size, num_tags)
        if crf:
            from torchcrf import CRF

            self.crf = CRF(num_tags, batch_first=True)
        else:
            self.crf = None

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor, case_ids: torch.Tensor | None = None,
                char_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token tag scores [B, T, num_tags] (emissions, when a CRF sits on top)."""
        parts = [self.embedding(input_ids)]
        if self.case_embedding is not None:
            parts.append(self.case_embedding(case_ids))
        if self.chars is not None:
            parts.append(self.chars(char_ids))
        outputs, _ = self.encoder(self.embedding_dropout(torch.cat(parts, dim=-1)), lengths)
        return self.head(self.output_dropout(outputs))

    def loss(self, scores: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per sentence (CRF) or per token (softmax); padded tags do not count."""
        mask = tags != IGNORE
        if self.crf is not None:
            return -self.crf(scores, tags.masked_fill(~mask, 0), mask=mask, reduction="mean")
        return nn.functional.cross_entropy(scores.flatten(0, 1), tags.flatten(), ignore_index=IGNORE)

    def decode(self, scores: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each sentence, cut to its length (Viterbi with a CRF, else argmax)."""
        if self.crf is not None:
            mask = length_mask(lengths, scores.size(1), scores.device)
            return self.crf.decode(scores, mask=mask)
        best = scores.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths.tolist(), strict=True)]
