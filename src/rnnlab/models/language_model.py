"""Next-word prediction: embedding -> dropout -> stateful left-to-right encoder -> dropout -> linear layer over
the vocabulary. The state after a window is returned so the task can carry it (detached) into the next one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import RecurrentEncoder
from rnnlab.models.inputs import make_embedding


def detach_state(state: list | None) -> list | None:
    """The same state cut from the graph that produced it: truncated BPTT stops at the window's start."""
    if state is None:
        return None
    return [tuple(t.detach() for t in layer) if isinstance(layer, tuple) else layer.detach() for layer in state]


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int = 200, embedding_weights: np.ndarray | None = None,
                 freeze_embedding: bool = False, embedding_kind: str = "learned",
                 cell: str = "lstm", hidden_size: int = 200, num_layers: int = 2, bidirectional: bool = False,
                 dropout: float = 0.0, embedding_dropout: float = 0.0, output_dropout: float = 0.0,
                 nonlinearity: str = "tanh", tie_weights: bool = False, init_range: float | None = 0.1,
                 forget_bias: float | None = None):
        super().__init__()
        if bidirectional:
            raise ConfigError("model.bidirectional=true: a language model reads left to right (a backward "
                              "direction would see the words it must predict); set model.bidirectional=false")
        if tie_weights:
            _check_tying(embedding_kind, embedding_dim, hidden_size, freeze_embedding)
        if init_range is not None and init_range <= 0:
            raise ConfigError(f"model.init_range={init_range} must be positive, or null for PyTorch's defaults")
        self.embedding = make_embedding(vocab_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(self.embedding.embedding_dim, cell=cell, hidden_size=hidden_size,
                                        num_layers=num_layers, bidirectional=False, dropout=dropout,
                                        nonlinearity=nonlinearity, forget_bias=forget_bias)
        self.output_dropout = nn.Dropout(output_dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if init_range is not None:
            # Zaremba et al.: every weight uniform in [-r, r]; a pretrained embedding keeps its vectors
            keep = {id(self.embedding.weight)} if embedding_weights is not None else set()
            for param in self.parameters():
                if id(param) not in keep:
                    nn.init.uniform_(param, -init_range, init_range)
            self.encoder.init_forget_bias()
        if tie_weights:  # Press & Wolf 2017 / Inan et al. 2017: one matrix for input and output words
            self.decoder.weight = self.embedding.weight

    def forward(self, input_ids: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """input_ids [B, T] -> (logits [B, T, vocab], state after the last step: one entry per layer)."""
        outputs, state = self.encoder.forward_stateful(self.embedding_dropout(self.embedding(input_ids)), state)
        return self.decoder(self.output_dropout(outputs)), state


def _check_tying(embedding_kind: str, embedding_dim: int, hidden_size: int, freeze_embedding: bool) -> None:
    if embedding_kind == "onehot":
        raise ConfigError("model.tie_weights=true needs an embedding matrix to share; embedding=onehot has none: "
                          "use embedding=learned or set model.tie_weights=false")
    if embedding_dim != hidden_size:
        raise ConfigError(f"model.tie_weights=true shares the embedding as the output layer, so embedding.dim "
                          f"({embedding_dim}) must equal model.hidden_size ({hidden_size}): make them equal or "
                          "set model.tie_weights=false")
    if freeze_embedding:
        raise ConfigError("model.tie_weights=true with embedding.freeze=true would freeze the output layer too: "
                          "set one of them to false")
