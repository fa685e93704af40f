"""The model of the long-range synthetic problems: the shared recurrent encoder with the smallest head each
problem needs, so that what is compared is the cell's memory and nothing else.

adding: the 2 input channels go straight into the encoder; a linear layer on the summary state predicts the sum.
copy:   symbol ids -> embedding -> encoder -> a linear layer over the alphabet at every position.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.data.synthetic import check_problem
from rnnlab.models.encoder import RecurrentEncoder

ADDING_CHANNELS = 2  # value, marker


class LongRangeModel(nn.Module):
    def __init__(self, problem: str, num_symbols: int = 8, embedding_dim: int = 16, cell: str = "lstm",
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 nonlinearity: str = "tanh", forget_bias: float | None = None):
        super().__init__()
        check_problem(problem)
        self.problem = problem
        alphabet = num_symbols + 2  # blank 0, symbols 1..num_symbols, delimiter num_symbols + 1
        self.embedding = nn.Embedding(alphabet, embedding_dim) if problem == "copy" else None
        input_size = embedding_dim if problem == "copy" else ADDING_CHANNELS
        self.encoder = RecurrentEncoder(input_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                        bidirectional=bidirectional, dropout=dropout, nonlinearity=nonlinearity,
                                        forget_bias=forget_bias)
        self.head = nn.Linear(self.encoder.output_size, alphabet if problem == "copy" else 1)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """adding: inputs [B, T, 2] -> predicted sums [B]; copy: ids [B, T] -> logits [B, T, alphabet]."""
        if self.problem == "adding":
            _, summary = self.encoder(inputs, lengths)
            return self.head(summary).squeeze(-1)
        outputs, _ = self.encoder(self.embedding(inputs), lengths)
        return self.head(outputs)
