"""The recurrent encoder: the one place where rnn / lstm / gru, depth and direction are chosen.

Padding is handled exactly without packing: each layer runs a fused single-direction cuDNN/MKL kernel over the
right-padded batch; the backward direction runs over each sequence reversed *within its own length*, so pads never
reach a real position. Outputs at pad positions are zero. `hidden_size` is per direction: a bidirectional encoder
outputs 2 * hidden_size features per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnlab.errors import ConfigError


@dataclass(frozen=True)
class Cell:
    """One recurrent cell as PyTorch implements it: the fused module (a whole sequence per call), the one-step
    module (a decoder's), the row blocks of its weight_ih / weight_hh in PyTorch's layout, and the block of the
    gate that decides how much of the previous state is kept (None: no gates)."""
    layer: type[nn.RNNBase]
    step: type[nn.RNNCellBase]
    rows: tuple[str, ...]
    keep: int | None


# LSTM rows are (i, f, g, o): the forget gate f keeps c_{t-1}; GRU rows (r, z, n): h' = (1 - z) * n + z * h,
# so the update gate z keeps h_{t-1}
CELLS = {"rnn": Cell(nn.RNN, nn.RNNCell, ("h",), None),
         "lstm": Cell(nn.LSTM, nn.LSTMCell, ("i", "f", "g", "o"), 1),
         "gru": Cell(nn.GRU, nn.GRUCell, ("r", "z", "n"), 1)}
NONLINEARITIES = ("tanh", "relu")


def length_mask(lengths: torch.Tensor, steps: int, device: torch.device | None = None) -> torch.Tensor:
    """[B, steps] booleans, True at the real positions t < lengths[b] of a right-padded batch: the one place a
    padding mask is built (encoder, pooling, attention, CRF, analyses, losses)."""
    device = lengths.device if device is None else device
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse x[b, :lengths[b]] along time for each b; positions past the length stay in place."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # [1, T]
    last = (lengths.to(x.device) - 1).unsqueeze(1)  # [B, 1]
    index = torch.where(steps <= last, last - steps, steps)  # [B, T]
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


def make_cell(cell: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> nn.RNNBase:
    """One single-layer, single-direction recurrent module (batch first)."""
    if cell not in CELLS:
        raise ConfigError(f"model.cell={cell!r} is not a known cell: choose one of {sorted(CELLS)}")
    kwargs = {"batch_first": True}
    if cell == "rnn":
        if nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"model.nonlinearity={nonlinearity!r} must be one of {NONLINEARITIES}")
        kwargs["nonlinearity"] = nonlinearity
    return CELLS[cell].layer(input_size, hidden_size, **kwargs)


def recurrent_parameters(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                         bidirectional: bool = False) -> int:
    """The parameter count of a RecurrentEncoder: per layer and direction, each of the cell's gate blocks has
    weight_ih, weight_hh and two biases (PyTorch's layout): blocks * H * (input + H + 2)."""
    blocks, directions = len(CELLS[cell].rows), 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        width = input_size if layer == 0 else hidden_size * directions
        total += directions * blocks * hidden_size * (width + hidden_size + 2)
    return total


BUDGET_TOLERANCE = 0.02


def hidden_size_for_budget(budget: int, cell: str, input_size: int, num_layers: int = 1,
                           bidirectional: bool = False) -> int:
    """The hidden size (per direction) whose encoder's parameter count is nearest `budget`; refused when even the
    nearest misses it by more than 2%. Matching the recurrent parameters, not the model's total, compares cells
    at equal capacity of what differs between them: the embedding is the same for every cell, and the output
    layer depends only on the encoder's width (Collins et al. 2017 match the recurrent cell's parameters too)."""
    if cell not in CELLS:
        raise ConfigError(f"model.cell={cell!r} is not a known cell: choose one of {sorted(CELLS)}")
    def count(hidden: int) -> int:
        return recurrent_parameters(cell, input_size, hidden, num_layers, bidirectional)
    low, high = 1, 1
    while count(high) < budget:  # the count grows with the hidden size: bracket the budget, then bisect
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < budget else (low, middle)
    hidden = min((low, high), key=lambda h: (abs(count(h) - budget), h))
    miss = count(hidden) / budget - 1
    if abs(miss) > BUDGET_TOLERANCE:
        raise ConfigError(f"model.param_budget={budget}: the nearest {num_layers}-layer "
                          f"{'bidirectional ' if bidirectional else ''}{cell} encoder (hidden size {hidden}, input "
                          f"{input_size}) has {count(hidden):,} parameters ({miss:+.1%}), more than "
                          f"{BUDGET_TOLERANCE:.0%} off: choose a larger budget")
    return hidden


class RecurrentEncoder(nn.Module):
    """Stacked (bi)directional rnn / lstm / gru with dropout between layers and exact padding.

    forward(x [B, T, input_size], lengths [B]) -> (outputs [B, T, output_size], summary [B, output_size]):
    `summary` is the top layer's last forward state with (if bidirectional) its first backward state, i.e.
    the states after reading each whole sequence in each direction. `param_budget` (a parameter count) sets
    the hidden size instead of `hidden_size`: the one whose encoder comes nearest (hidden_size_for_budget).
    """

    def __init__(self, input_size: int, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh",
                 forget_bias: float | None = None, param_budget: int | None = None):
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"model.num_layers={num_layers} must be at least 1")
        if param_budget is not None:
            hidden_size = hidden_size_for_budget(param_budget, cell, input_size, num_layers, bidirectional)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.output_size = hidden_size * directions
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size
            self.forward_layers.append(make_cell(cell, layer_input, hidden_size, nonlinearity))
            if bidirectional:
                self.backward_layers.append(make_cell(cell, layer_input, hidden_size, nonlinearity))
        self.dropout = nn.Dropout(dropout)  # like nn.LSTM: between layers only
        self.forget_bias = forget_bias
        self.init_forget_bias()

    def init_forget_bias(self) -> None:
        """Set the bias of the LSTM forget gate (GRU: update gate) to `forget_bias`, so that at initialisation
        the cell keeps most of its state (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1.0).
        A model that re-initialises its weights calls this again afterwards."""
        if self.forget_bias is None:
            return
        if CELLS[self.cell].keep is None:
            raise ConfigError(f"model.forget_bias={self.forget_bias} needs a gated cell, but model.cell="
                              f"{self.cell!r} has no gates: use lstm or gru, or set model.forget_bias=null")
        chunk = CELLS[self.cell].keep
        with torch.no_grad():
            for module in [*self.forward_layers, *self.backward_layers]:
                rows = slice(chunk * self.hidden_size, (chunk + 1) * self.hidden_size)
                module.bias_ih_l0[rows] = self.forget_bias  # the two biases add up: put it all in one
                module.bias_hh_l0[rows] = 0.0

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = length_mask(lengths, x.size(1), x.device).unsqueeze(-1).to(x.dtype)
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropout(x)
            out, _ = self.forward_layers[layer](x)
            if self.bidirectional:
                back, _ = self.backward_layers[layer](reverse_within_length(x, lengths))
                out = torch.cat([out, reverse_within_length(back, lengths)], dim=-1)
            x = out * mask
        return x, self.summary(x, lengths)

    def summary(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        last = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        forward_last = outputs[..., :self.hidden_size].gather(1, last).squeeze(1)
        if not self.bidirectional:
            return forward_last
        return torch.cat([forward_last, outputs[:, 0, self.hidden_size:]], dim=-1)

    def forward_stateful(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """Unidirectional, unpadded input (a language model's BPTT window): start each layer from `state`
        (one entry per layer: h, or (h, c) for lstm; None = zeros) and return the outputs [B, T, H] with
        the state after the last step, to be carried (detached) into the next window."""
        if self.bidirectional:
            raise ConfigError("a stateful (left-to-right) encoder cannot be bidirectional: set model.bidirectional=false")
        state = state or [None] * self.num_layers
        new_state = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropout(x)
            x, layer_state = self.forward_layers[layer](x, state[layer])
            new_state.append(layer_state)
        return x, new_state
