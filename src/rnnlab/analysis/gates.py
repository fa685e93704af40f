"""Gate activity: how open the gates of an LSTM / GRU are, over a data set and token by token.

Gates near 0 or 1 are decisions (forget / keep, write / skip); an LSTM forget gate near 1 is what carries a
gradient across many steps. Per cell (rnnlab.analysis.unroll.GATES): lstm input, forget, candidate (g),
output, cell (the cell state c, not a gate: unbounded); gru reset, update (z: keeps h_{t-1} near 1),
candidate (n). A plain rnn has no gates: it reports `abs_hidden` = |h_t|, where |h| > 0.9 means a saturated
tanh unit (tanh' < 0.2) through which little gradient passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import torch

from rnnlab.analysis.unroll import Unrolled, batch_to, find_encoder, recording
from rnnlab.errors import ConfigError
from rnnlab.io import atomic_file
from rnnlab.models.encoder import length_mask

LOW, HIGH = 0.1, 0.9  # "closed" and "open" thresholds of the fractions reported
SIGNED = ("candidate", "cell")  # tanh-range values: their fractions count |v| (near 0 = silent, > 0.9 = saturated)


def run_batch(model, batch: dict) -> None:
    """Run a task (through its training loss) or a bare model (dispatch on the batch's keys) on one batch."""
    if hasattr(model, "batch_loss"):
        model.batch_loss(batch)
    elif "targets" in batch:  # a language model's BPTT window, from a zero state
        model(batch["input_ids"])
    elif "case_ids" in batch:  # a tagger
        model(batch["input_ids"], batch["lengths"], batch["case_ids"], batch.get("char_ids"))
    else:
        model(batch["input_ids"], batch["lengths"])


def record_batch(model, batch: dict) -> Unrolled:
    """The unrolled encoder call (gates, states) of one forward pass of `model` (task or model) on `batch`."""
    device = next(model.parameters()).device
    with torch.no_grad(), recording(find_encoder(model)) as calls:
        run_batch(model, batch_to(batch, device))
    return calls[0]


def gate_statistics(model, dataloader: Iterable[dict], max_batches: int | None = None) -> list[dict]:
    """Per layer, direction and gate: mean, std, fraction below 0.1 and above 0.9 of the activations over the
    real (non-pad) positions and all units of the first `max_batches` batches (None = all); for the signed
    candidate and cell state the fractions are of |v|. Call it in eval mode."""
    sums: dict[tuple, torch.Tensor] = {}  # key -> [n, sum, sum of squares, below, above]
    for batch in islice(dataloader, max_batches):
        record = record_batch(model, batch)
        real = length_mask(record.lengths, record.outputs.size(1))
        for (layer, direction), gates in record.gates.items():
            for name, values in gates.items():
                v = values[real].double()  # [real positions, H]
                size = v.abs() if name in SIGNED else v
                counts = torch.stack([torch.tensor(float(v.numel()), dtype=torch.float64), v.sum().cpu(),
                                      (v * v).sum().cpu(), (size < LOW).sum().cpu().double(),
                                      (size > HIGH).sum().cpu().double()])
                key = (layer, direction, name)
                sums[key] = sums[key] + counts if key in sums else counts
    rows = []
    for (layer, direction, name), (n, total, squares, below, above) in sums.items():
        mean = total / n
        rows.append({"layer": layer, "direction": direction, "gate": name, "mean": float(mean),
                     "std": float((squares / n - mean * mean).clamp(min=0).sqrt()),
                     "frac_below_0.1": float(below / n), "frac_above_0.9": float(above / n), "count": int(n)})
    return rows


def one_sequence(dataloader, index: int) -> dict:
    """Sequence `index` of the split behind `dataloader`, as a batch of one, in the split's own order (not the
    loader's length-sorted order). A language model's loader yields whole [B, T] windows: row `index` of the
    first window."""
    dataset = dataloader.dataset
    if dataloader.batch_sampler is None:  # items are already batches (BPTT windows)
        batch = dataset[0]
        rows = batch["input_ids"].size(0)
        if not 0 <= index < rows:
            raise ConfigError(f"analysis.sentence_index={index} must be below the {rows} rows of a window")
        return {key: value[index:index + 1] for key, value in batch.items()}
    if not 0 <= index < len(dataset):
        raise ConfigError(f"analysis.sentence_index={index} must be below the {len(dataset)} validation sequences")
    return dataloader.collate_fn([dataset[index]])


def plot_gate_heatmaps(model, batch: dict, out_dir: str | Path, tokens: list[str] | None = None,
                       max_units: int = 32, max_tokens: int = 60) -> list[Path]:
    """`gates_layer<k>.png` in out_dir for each layer: one panel per gate of the forward direction, units (the
    first `max_units`) by tokens (the first `max_tokens` of row 0 of `batch`), tokens as tick labels (positions
    when `tokens` is None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    record = record_batch(model, batch)
    length = min(int(record.lengths[0]), max_tokens)
    labels = list(tokens[:length]) if tokens is not None else [str(t) for t in range(length)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    layers = sorted({layer for layer, _ in record.gates})
    for layer in layers:
        gates = record.gates[(layer, "forward")]
        units = min(max_units, next(iter(gates.values())).size(-1))
        fig, axes = plt.subplots(len(gates), 1, squeeze=False,
                                 figsize=(max(6.0, 0.28 * length + 2), 1.0 + len(gates) * (0.9 + 0.06 * units)))
        for ax, (name, values) in zip(axes[:, 0], gates.items(), strict=True):
            grid = values[0, :length, :max_units].T.cpu().numpy()  # [units, tokens]
            if name in ("candidate", "cell"):  # signed: centre the colour scale on 0
                limit = max(float(abs(grid).max()), 1e-6) if name == "cell" else 1.0
                image = ax.imshow(grid, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            else:
                image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_ylabel(f"{name}\nunit", fontsize=8)
            ax.set_xticks(range(length))
            ax.set_xticklabels(labels, rotation=90, fontsize=7)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(axis="y", labelsize=7)
            fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
        axes[0, 0].set_title(f"layer {layer}, forward direction: gate activations per unit and token")
        fig.tight_layout()
        path = out_dir / f"gates_layer{layer}.png"
        with atomic_file(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def token_strings(tokenizer, input_ids: torch.Tensor) -> list[str]:
    """The vocabulary entries of a row of ids (tokenizers.Tokenizer)."""
    return [tokenizer.id_to_token(int(i)) or "?" for i in input_ids.tolist()]
