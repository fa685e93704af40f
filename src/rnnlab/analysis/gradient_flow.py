"""Gradient flow through time: how large dL/dh_t is at each distance from where the loss reads the state.

A vanilla rnn's gradient shrinks (or grows) geometrically with that distance, an LSTM's or GRU's much less:
this makes the vanishing gradient a measured curve. The loss is the task's own training loss
(`TaskModule.batch_loss`), computed through the model unchanged while the encoder is unrolled step by step.

Distance: the forward direction's summary reads its last state, so position t is length - 1 - t steps away;
the backward direction's summary reads its state at position 0, so t is t steps away. The table's rows:
layer, direction, quantity ("h": dL/dh of that layer and direction; "x": dL/dx, the encoder's input, indexed
by that direction's distance), distance, mean_norm (mean L2 norm over the real positions at that distance),
count (how many positions).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from rnnlab.analysis.unroll import batch_to, find_encoder, recording
from rnnlab.io import atomic_file

FIELDS = ("layer", "direction", "quantity", "distance", "mean_norm", "count")


def _add(sums: dict, key: tuple, norms: torch.Tensor, distances: torch.Tensor) -> None:
    """Add per-position norms [B, T] at their distances [B, T] (negative = pad) to sums[key]."""
    real = distances >= 0
    d = distances[real].cpu()
    total = torch.bincount(d, weights=norms[real].double().cpu()).numpy()
    count = torch.bincount(d).numpy()
    old_total, old_count = sums.get(key, (np.zeros(0), np.zeros(0, dtype=np.int64)))
    size = max(len(total), len(old_total))
    sums[key] = (np.pad(old_total, (0, size - len(old_total))) + np.pad(total, (0, size - len(total))),
                 np.pad(old_count, (0, size - len(old_count))) + np.pad(count, (0, size - len(count))))


def _accumulate(task, batch: dict, sums: dict) -> None:
    encoder = find_encoder(task)
    with torch.enable_grad(), recording(encoder) as calls:
        loss = task.batch_loss(batch)
    if len(calls) != 1:
        raise RuntimeError(f"{type(task).__name__}.batch_loss called the encoder {len(calls)} times, expected once")
    record = calls[0]
    keys = list(record.steps)
    grads = torch.autograd.grad(loss, [record.inputs] + [h for key in keys for h in record.steps[key]],
                                allow_unused=True)
    lengths = record.lengths
    steps = record.inputs.size(1)
    s = torch.arange(steps, device=lengths.device).unsqueeze(0)
    reading_distance = lengths.unsqueeze(1) - 1 - s  # [B, T]; the same for both directions in reading order
    for index, key in enumerate(keys):
        chunk = grads[1 + index * steps: 1 + (index + 1) * steps]
        norms = torch.stack([torch.zeros(len(lengths), device=lengths.device) if g is None else g.norm(dim=-1)
                             for g in chunk], dim=1)
        _add(sums, (*key, "h"), norms, reading_distance)
    x_norms = torch.zeros_like(reading_distance, dtype=torch.float) if grads[0] is None else grads[0].norm(dim=-1)
    _add(sums, (0, "forward", "x"), x_norms, reading_distance)  # x is in position order: t -> length - 1 - t
    if encoder.bidirectional:
        _add(sums, (0, "backward", "x"), x_norms, torch.where(reading_distance >= 0, s, -1))  # t -> t


def gradient_flow(task, batches: Iterable[dict]) -> list[dict]:
    """Mean ||dL/dh_t|| (every layer and direction) and ||dL/dx_t|| by distance from the loss, over the real
    positions of `batches` (each a batch as the task's dataloader yields it). The task's mode is left as it
    is: call it in eval mode so that dropout does not blur the curve."""
    device = next(task.parameters()).device
    sums: dict = {}
    for batch in batches:
        _accumulate(task, batch_to(batch, device), sums)
    rows = []
    for (layer, direction, quantity), (total, count) in sorted(sums.items()):
        rows += [{"layer": layer, "direction": direction, "quantity": quantity, "distance": d,
                  "mean_norm": float(total[d] / count[d]), "count": int(count[d])}
                 for d in range(len(count)) if count[d]]
    return rows


def grad_ratio(rows: list[dict], stage: str | None = None) -> tuple[float, int]:
    """(ratio, D) for the top layer's forward dL/dh: mean norm at distance D divided by the mean norm at distance
    0, where D is the largest distance that at least half the sequences reach (count >= count at 0 / 2).
    Below 1: the gradient fades going back in time (vanishing); above 1: it grows (exploding)."""
    rows = [r for r in rows if r["quantity"] == "h" and r["direction"] == "forward"
            and (stage is None or r.get("stage") == stage)]
    top = max(r["layer"] for r in rows)
    curve = {r["distance"]: r for r in rows if r["layer"] == top}
    start = curve[0]
    far = max(d for d, r in curve.items() if 2 * r["count"] >= start["count"])
    ratio = curve[far]["mean_norm"] / start["mean_norm"] if start["mean_norm"] > 0 else float("nan")
    return ratio, far


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """Rows of dicts as CSV (columns in the first row's order), written whole or not at all."""
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else list(FIELDS))
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def plot_gradient_flow(rows: list[dict], path: str | Path, title: str = "", min_fraction: float = 0.1) -> Path:
    """PNG of mean gradient norm (log scale) against distance from the loss: one line per layer / direction
    (and the input x), a dashed line for stage "init" and a solid one for "trained" when rows carry a stage.
    Distances reached by fewer than `min_fraction` of the sequences are left out (a few long outliers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        lines.setdefault((row.get("stage", ""), row["quantity"], row["layer"], row["direction"]), []).append(row)
    curves = sorted({key[1:] for key in lines}, key=lambda k: (k[0] == "x", k[1], k[2]))
    colours = {curve: plt.cm.tab10(i % 10) for i, curve in enumerate(curves)}
    styles = {"init": "--", "trained": "-"}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for (stage, quantity, layer, direction), points in sorted(lines.items()):
        points = sorted(points, key=lambda r: r["distance"])
        floor = min_fraction * points[0]["count"]
        points = [p for p in points if p["count"] >= floor and p["mean_norm"] > 0]
        name = f"dL/dh layer {layer} {direction}" if quantity == "h" else f"dL/dx (input, {direction} distance)"
        ax.plot([p["distance"] for p in points], [p["mean_norm"] for p in points], styles.get(stage, "-"),
                color=colours[(quantity, layer, direction)], label=f"{name}{' ' + stage if stage else ''}",
                linewidth=1.6 if quantity == "h" else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the loss (time steps before the state the loss reads)")
    ax.set_ylabel("mean gradient norm")
    ax.set_title(title or "gradient flow through time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
