"""A RecurrentEncoder re-computed one time step at a time from its own weights, so that every hidden state h_t
is its own autograd node (dL/dh_t can be taken for each t) and every gate activation can be read.

The fused kernels of nn.RNN / nn.LSTM / nn.GRU hide both. `unroll` gives the same outputs (to float rounding)
with PyTorch's gate layouts: LSTM rows (i, f, g, o); GRU rows (r, z, n) with
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) and h' = (1 - z) * n + z * h. Padding is handled as the encoder
does: the backward direction reads each sequence reversed within its length, outputs at pads are zero, and
dropout sits between layers only (a no-op in eval mode, where analyses run).

`recording(encoder)` swaps this in for the encoder's forward while a task computes its loss unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from rnnlab.errors import ConfigError
from rnnlab.models.encoder import CELLS, RecurrentEncoder, length_mask, reverse_within_length

# What `Unrolled.gates` holds per cell. A plain rnn has no gates: its stand-in is |h|, whose saturation
# (|h| > 0.9 for tanh, where tanh' < 0.2) is what shrinks its gradients.
GATES = {"lstm": ("input", "forget", "candidate", "output", "cell"),
         "gru": ("reset", "update", "candidate"),
         "rnn": ("abs_hidden",)}


@dataclass
class Unrolled:
    """One encoder call, step by step.

    `steps[(layer, direction)][s]` is h after step s in that direction's reading order, [B, H]: for the
    backward direction step s of row b reads position lengths[b] - 1 - s. In both directions the step's
    distance from the direction's final state (what `summary` reads) is lengths[b] - 1 - s; steps at or past
    a row's length are pads. `gates[(layer, direction)][name]` is [B, T, H] in position order, detached,
    zero at pads.
    """
    inputs: torch.Tensor  # [B, T, input_size]: the encoder's input, an autograd node when grad is enabled
    lengths: torch.Tensor  # [B]
    outputs: torch.Tensor  # [B, T, output_size]: equals encoder(inputs, lengths)[0]
    steps: dict[tuple[int, str], list[torch.Tensor]] = field(default_factory=dict)
    gates: dict[tuple[int, str], dict[str, torch.Tensor]] = field(default_factory=dict)
    final_state: list = field(default_factory=list)  # per layer, as forward_stateful returns it


def run_direction(module: torch.nn.RNNBase, cell: str, x: torch.Tensor, state=None):
    """One single-direction layer over x [B, T, I] from `state` (h or (h, c), [1, B, H]; None = zeros).
    Returns (h of each step, {gate: [B, T, H] detached}, final state shaped as nn.<CELL> returns it)."""
    batch, hidden = x.size(0), module.hidden_size
    zeros = x.new_zeros(batch, hidden)
    if cell == "lstm":
        h, c = (zeros, zeros) if state is None else (state[0][0], state[1][0])
    else:
        h = zeros if state is None else state[0]
    projected = F.linear(x, module.weight_ih_l0, module.bias_ih_l0)  # the input part of every step at once
    hs, gates = [], {name: [] for name in GATES[cell]}
    for t in range(x.size(1)):
        recurrent = F.linear(h, module.weight_hh_l0, module.bias_hh_l0)
        if cell == "lstm":
            i, f, g, o = (projected[:, t] + recurrent).chunk(len(CELLS[cell].rows), dim=-1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            values = {"input": i, "forget": f, "candidate": g, "output": o, "cell": c}
        elif cell == "gru":
            x_r, x_z, x_n = projected[:, t].chunk(len(CELLS[cell].rows), dim=-1)
            h_r, h_z, h_n = recurrent.chunk(len(CELLS[cell].rows), dim=-1)
            r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
            n = (x_n + r * h_n).tanh()
            h = (1 - z) * n + z * h
            values = {"reset": r, "update": z, "candidate": n}
        else:
            pre = projected[:, t] + recurrent
            h = pre.tanh() if module.nonlinearity == "tanh" else pre.relu()
            values = {"abs_hidden": h.abs()}
        hs.append(h)
        for name, value in values.items():
            gates[name].append(value.detach())
    stacked = {name: torch.stack(values, dim=1) for name, values in gates.items()}
    final = (h.unsqueeze(0), c.unsqueeze(0)) if cell == "lstm" else h.unsqueeze(0)
    return hs, stacked, final


def unroll(encoder: RecurrentEncoder, x: torch.Tensor, lengths: torch.Tensor, state: list | None = None) -> Unrolled:
    """encoder(x, lengths), step by step (`state`: a stateful encoder's start, one entry per layer)."""
    if torch.is_grad_enabled() and not x.requires_grad:
        x = x.detach().requires_grad_()  # e.g. a frozen embedding: dL/dx is still wanted
    lengths = lengths.to(x.device)
    mask = length_mask(lengths, x.size(1), x.device).unsqueeze(-1).to(x.dtype)
    record = Unrolled(inputs=x, lengths=lengths, outputs=x)
    state = state or [None] * encoder.num_layers
    for layer in range(encoder.num_layers):
        if layer > 0:
            x = encoder.dropout(x)
        hs, gates, final = run_direction(encoder.forward_layers[layer], encoder.cell, x, state[layer])
        record.steps[(layer, "forward")] = hs
        record.gates[(layer, "forward")] = {name: value * mask for name, value in gates.items()}
        record.final_state.append(final)
        out = torch.stack(hs, dim=1)
        if encoder.bidirectional:
            hs, gates, _ = run_direction(encoder.backward_layers[layer], encoder.cell,
                                         reverse_within_length(x, lengths))
            record.steps[(layer, "backward")] = hs
            record.gates[(layer, "backward")] = {name: reverse_within_length(value, lengths) * mask
                                                 for name, value in gates.items()}
            out = torch.cat([out, reverse_within_length(torch.stack(hs, dim=1), lengths)], dim=-1)
        x = out * mask
    record.outputs = x
    return record


def find_encoder(model: torch.nn.Module) -> RecurrentEncoder:
    """The one RecurrentEncoder inside a model or task."""
    found = [m for m in model.modules() if isinstance(m, RecurrentEncoder)]
    if len(found) != 1:
        raise ConfigError(f"the analyses (analysis.*) need a model with exactly one recurrent encoder; "
                          f"{type(model).__name__} has {len(found)}: set analysis.gradient_flow=false and "
                          "analysis.gates=false for it")
    return found[0]


@contextlib.contextmanager
def recording(encoder: RecurrentEncoder) -> Iterator[list[Unrolled]]:
    """While active, `encoder(x, lengths)` and `encoder.forward_stateful(x, state)` run `unroll`; the
    Unrolled of each call is appended to the yielded list. The encoder is restored on exit."""
    calls: list[Unrolled] = []

    def forward(x, lengths):
        record = unroll(encoder, x, lengths)
        calls.append(record)
        return record.outputs, encoder.summary(record.outputs, lengths.to(x.device))

    def forward_stateful(x, state=None):
        if encoder.bidirectional:
            raise ConfigError("a stateful (left-to-right) encoder cannot be bidirectional: "
                              "set model.bidirectional=false")
        record = unroll(encoder, x, torch.full((x.size(0),), x.size(1), device=x.device), state)
        calls.append(record)
        return record.outputs, record.final_state

    # instance attributes shadow the class's methods; nn.Module.__call__ looks up self.forward
    encoder.forward, encoder.forward_stateful = forward, forward_stateful
    try:
        yield calls
    finally:
        del encoder.forward, encoder.forward_stateful


def batch_to(batch: dict, device: torch.device) -> dict:
    """A batch dict with its tensors on `device`."""
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
