"""One-to-many: a decoder that writes a sequence from one input vector (a class label's embedding).

    label -> label embedding c -> h0 of every layer = tanh(W_l c + b_l)   (LSTM: cell state c0 = 0)
    <bos> w1 w2 ... -> word embedding [; c at every step if condition_every_step] -> left-to-right encoder
    -> dropout -> linear over the OUTPUT vocabulary

The output vocabulary is the tokenizer's V ids plus two that this model appends (the word tokenizer has neither):
`<bos>` = V (the first input of every sequence, never emitted) and `<eos>` = V + 1 (emitted to end a text, never
read). The input embedding covers the same V + 2 ids; `<pad>` = 0 as everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.data.conventions import PAD_ID
from rnnlab.errors import ConfigError
from rnnlab.models.encoder import RecurrentEncoder
from rnnlab.models.inputs import make_embedding
from rnnlab.models.modes import in_eval_mode
from rnnlab.models.sampling import choose_next


def special_ids(vocab_size: int) -> tuple[int, int]:
    """(<bos>, <eos>) for a tokenizer of `vocab_size` ids: the two ids appended after it."""
    return vocab_size, vocab_size + 1


class ConditionalLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int = 100,
                 embedding_weights: np.ndarray | None = None, freeze_embedding: bool = False,
                 embedding_kind: str = "learned", cell: str = "lstm", hidden_size: int = 256,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 embedding_dropout: float = 0.0, output_dropout: float = 0.0, nonlinearity: str = "tanh",
                 condition_dim: int = 32, condition_every_step: bool = True, forget_bias: float | None = None):
        super().__init__()
        if bidirectional:
            raise ConfigError("model.bidirectional=true: a conditional generator writes left to right (a backward "
                              "direction would read the words it must write); set model.bidirectional=false")
        if num_classes < 1:
            raise ConfigError(f"data.labels has {num_classes} labels: a conditional generator needs at least one")
        if condition_dim < 1:
            raise ConfigError(f"model.condition_dim={condition_dim} must be at least 1")
        self.vocab_size, self.num_classes = vocab_size, num_classes
        self.bos_id, self.eos_id = special_ids(vocab_size)
        self.output_size = vocab_size + 2
        if embedding_weights is not None:  # a vocabulary-aligned matrix: add small random rows for <bos>, <eos>
            extra = np.random.default_rng(0).normal(0, 0.1, (2, embedding_weights.shape[1]))
            embedding_weights = np.concatenate([embedding_weights, extra.astype(embedding_weights.dtype)])
        self.embedding = make_embedding(self.output_size, embedding_dim, embedding_weights, freeze_embedding,
                                        embedding_kind)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.condition = nn.Embedding(num_classes, condition_dim)
        self.condition_every_step = condition_every_step
        self.init_state = nn.Linear(condition_dim, hidden_size * num_layers)  # h0 of every layer at once
        input_size = self.embedding.embedding_dim + (condition_dim if condition_every_step else 0)
        self.encoder = RecurrentEncoder(input_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                        bidirectional=False, dropout=dropout, nonlinearity=nonlinearity,
                                        forget_bias=forget_bias)
        self.output_dropout = nn.Dropout(output_dropout)
        self.decoder = nn.Linear(hidden_size, self.output_size)

    def initial_state(self, labels: torch.Tensor) -> list:
        """One state per layer from the labels [B]: h = tanh(linear(label embedding)) [1, B, H]; LSTM c = 0."""
        enc = self.encoder
        h = torch.tanh(self.init_state(self.condition(labels)))  # [B, layers * H]
        h = h.view(len(labels), enc.num_layers, enc.hidden_size).transpose(0, 1).contiguous()  # [layers, B, H]
        if enc.cell == "lstm":
            return [(h[layer:layer + 1], torch.zeros_like(h[layer:layer + 1])) for layer in range(enc.num_layers)]
        return [h[layer:layer + 1] for layer in range(enc.num_layers)]

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, state: list | None = None):
        """input_ids [B, T] (ids < V + 2), labels [B] -> (logits [B, T, V + 2], state after the last step).
        `state` None = the state the labels give; else the state a previous call returned (generation)."""
        if state is None:
            state = self.initial_state(labels)
        x = self.embedding_dropout(self.embedding(input_ids))
        if self.condition_every_step:
            c = self.condition(labels).unsqueeze(1).expand(-1, input_ids.size(1), -1)
            x = torch.cat([x, c], dim=-1)
        outputs, state = self.encoder.forward_stateful(x, state)
        return self.decoder(self.output_dropout(outputs)), state

    @in_eval_mode
    @torch.no_grad()
    def sample(self, labels: torch.Tensor, max_words: int, strategy: str = "greedy", temperature: float = 1.0,
               top_k: int = 10, generator: torch.Generator | None = None,
               prompts: list[list[int]] | None = None) -> list[list[int]]:
        """One text per label: the word ids written after `<bos>` (and the row's prompt ids, if given), until
        `<eos>` or `max_words` words. `<pad>` and `<bos>` are never written, nor `<eos>` as the first word
        (every training text has one). Strategies: rnnlab.models.sampling."""

        rows = len(labels)
        prompts = prompts or [[] for _ in range(rows)]
        if len({len(p) for p in prompts}) != 1:
            raise ValueError("sample() reads prompts of one length per call")
        start = torch.tensor([[self.bos_id, *p] for p in prompts], dtype=torch.long, device=labels.device)
        logits, state = self(start, labels)
        written: list[list[int]] = [[] for _ in range(rows)]
        done = torch.zeros(rows, dtype=torch.bool)
        for step in range(max_words):
            banned = (PAD_ID, self.bos_id) if step or prompts[0] else (PAD_ID, self.bos_id, self.eos_id)
            next_ids = choose_next(logits[:, -1].cpu(), strategy, temperature, top_k, generator, banned)
            for row, token in enumerate(next_ids.tolist()):
                if not done[row]:
                    if token == self.eos_id:
                        done[row] = True
                    else:
                        written[row].append(token)
            if bool(done.all()):
                break
            logits, state = self(next_ids.unsqueeze(1).to(labels.device), labels, state)
        return written
