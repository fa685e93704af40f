"""Many-to-many encoder-decoder (translation): a recurrent encoder reads the source; a recurrent decoder writes the
target one word at a time, from `<bos>` until it emits `<eos>`.

- encoder: any cell, depth and direction (models/encoder.py, exact padding);
- bridge: the decoder's initial state per layer = tanh(W [encoder summary]) (an LSTM's cell state starts at 0);
- attention=none: the encoder summary is the context at every step (Cho et al. 2014);
  attention=additive: context = sum_j a_j h_j with a = softmax(v . tanh(W_q s + W_k h_j)) (Bahdanau et al. 2015);
  attention=dot: a = softmax(s . W_k h_j) (Luong et al. 2015, "general");
  the query s is the decoder's top state before the step, as in Bahdanau et al.; padding gets weight 0;
- each step reads [embedding of the previous word; context]; the word is predicted from
  tanh(W_c [state; context; embedding]), a layer of the decoder's size (Luong et al.'s attentional vector), so the
  costly layer over the vocabulary stays hidden_size wide.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import CELLS, RecurrentEncoder, length_mask
from rnnlab.models.inputs import make_embedding

ATTENTIONS = ("none", "additive", "dot")


class Attention(nn.Module):
    """Scores of one query against every encoder output; `keys` are the encoder outputs projected once per
    sentence (`project`), so a decoding step only scores."""

    def __init__(self, kind: str, query_size: int, key_size: int, size: int):
        super().__init__()
        self.kind = kind
        self.key_projection = nn.Linear(key_size, size if kind == "additive" else query_size, bias=False)
        if kind == "additive":
            self.query_projection = nn.Linear(query_size, size, bias=False)
            self.v = nn.Linear(size, 1, bias=False)

    def project(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_projection(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], keys [B, S, *], memory [B, S, K], mask [B, S] (True = real token)
        -> (context [B, K], weights [B, S]: sum to 1 over real tokens, 0 on padding)."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.query_projection(query).unsqueeze(1) + keys)).squeeze(-1)
        else:
            scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


class Memory:
    """What the decoder reads from one batch of encoded sources (expandable for a beam)."""

    def __init__(self, outputs, summary, mask, keys):
        self.outputs, self.summary, self.mask, self.keys = outputs, summary, mask, keys

    def select(self, rows: torch.Tensor) -> Memory:
        return Memory(*(t.index_select(0, rows) if t is not None else None
                        for t in (self.outputs, self.summary, self.mask, self.keys)))


class Seq2Seq(nn.Module):
    def __init__(self, source_vocab_size: int, target_vocab_size: int, embedding_dim: int = 256,
                 cell: str = "gru", hidden_size: int = 256, num_layers: int = 1, bidirectional: bool = True,
                 decoder_cell: str | None = None, decoder_layers: int = 1, decoder_hidden_size: int | None = None,
                 attention: str = "additive", attention_size: int = 256, dropout: float = 0.0,
                 embedding_dropout: float = 0.0, output_dropout: float = 0.0, nonlinearity: str = "tanh",
                 forget_bias: float | None = None, embedding_kind: str = "learned"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ConfigError(f"model.attention={attention!r} must be one of {'|'.join(ATTENTIONS)}")
        decoder_cell = decoder_cell or cell
        if decoder_cell not in CELLS:
            raise ConfigError(f"model.decoder_cell={decoder_cell!r} is not one of {sorted(CELLS)}")
        if decoder_layers < 1:
            raise ConfigError(f"model.decoder_layers={decoder_layers} must be at least 1")
        if embedding_kind != "learned":
            raise ConfigError(f"embedding={embedding_kind}: translation learns its own source and target "
                              "embeddings; use embedding=learned")
        self.decoder_cell, self.decoder_layers = decoder_cell, decoder_layers
        self.decoder_hidden_size = decoder_hidden_size or hidden_size
        self.attention_kind = attention
        self.source_embedding = make_embedding(source_vocab_size, embedding_dim, None, False)
        self.target_embedding = make_embedding(target_vocab_size, embedding_dim, None, False)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(embedding_dim, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                        bidirectional=bidirectional, dropout=dropout, nonlinearity=nonlinearity,
                                        forget_bias=forget_bias)
        context_size = self.encoder.output_size
        hidden = self.decoder_hidden_size
        self.bridge = nn.Linear(context_size, hidden * decoder_layers)
        self.attention = (Attention(attention, hidden, context_size, attention_size)
                          if attention != "none" else None)
        step = CELLS[decoder_cell].step
        kwargs = {"nonlinearity": nonlinearity} if decoder_cell == "rnn" else {}
        self.decoder = nn.ModuleList(step(embedding_dim + context_size if layer == 0 else hidden, hidden, **kwargs)
                                     for layer in range(decoder_layers))
        self.dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(output_dropout)
        self.combine = nn.Linear(hidden + context_size + embedding_dim, hidden)
        self.output = nn.Linear(hidden, target_vocab_size)

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode(self, source_ids: torch.Tensor, source_lengths: torch.Tensor) -> tuple[Memory, list]:
        """The memory the decoder attends to and its initial state (one entry per decoder layer)."""
        embedded = self.embedding_dropout(self.source_embedding(source_ids))
        outputs, summary = self.encoder(embedded, source_lengths)
        mask = length_mask(source_lengths, source_ids.size(1), source_ids.device)
        keys = self.attention.project(outputs) if self.attention is not None else None
        start = torch.tanh(self.bridge(summary)).chunk(self.decoder_layers, dim=-1)
        state = [(h, torch.zeros_like(h)) if self.decoder_cell == "lstm" else h for h in start]
        return Memory(outputs, summary, mask, keys), state

    # -- one decoding step -------------------------------------------------------------------------------------
    def step(self, previous: torch.Tensor, state: list, memory: Memory):
        """previous [B] word ids -> (features [B, F] for the output layer, new state, attention weights [B, S]
        or None)."""
        embedded = self.embedding_dropout(self.target_embedding(previous))
        top = state[-1][0] if self.decoder_cell == "lstm" else state[-1]
        if self.attention is not None:
            context, weights = self.attention(top, memory.keys, memory.outputs, memory.mask)
        else:
            context, weights = memory.summary, None
        x, new_state = torch.cat([embedded, context], dim=-1), []
        for layer, cell in enumerate(self.decoder):
            if layer > 0:
                x = self.dropout(x)
            layer_state = cell(x, state[layer])
            new_state.append(layer_state)
            x = layer_state[0] if self.decoder_cell == "lstm" else layer_state
        return torch.cat([x, context, embedded], dim=-1), new_state, weights

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(self.output_dropout(torch.tanh(self.combine(features))))

    # -- training: the whole target ------------------------------------------------------------------------------
    def forward(self, source_ids: torch.Tensor, source_lengths: torch.Tensor, target_in: torch.Tensor,
                teacher_forcing: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """target_in [B, T] (`<bos>` w1 .. wn, padded) -> (logits [B, T, V], attention [B, T, S] or None).

        With teacher_forcing < 1, each step after the first reads, per sentence and with that probability, the
        true previous word, else the model's own most likely one (Bengio et al. 2015's scheduled sampling)."""
        memory, state = self.encode(source_ids, source_lengths)
        features, weights, logits = [], [], []
        previous = target_in[:, 0]
        for t in range(target_in.size(1)):
            feature, state, attention = self.step(previous, state, memory)
            if attention is not None:
                weights.append(attention)
            if teacher_forcing >= 1:  # the output layer runs once, over every step, after the loop
                features.append(feature)
            else:
                logits.append(self.logits(feature))
            if t + 1 < target_in.size(1):
                previous = target_in[:, t + 1]
                if teacher_forcing < 1:
                    own = logits[-1].argmax(-1)
                    keep = torch.rand(previous.shape, device=previous.device) < teacher_forcing
                    previous = torch.where(keep, previous, own)
        out = self.logits(torch.stack(features, dim=1)) if teacher_forcing >= 1 else torch.stack(logits, dim=1)
        return out, (torch.stack(weights, dim=1) if weights else None)
