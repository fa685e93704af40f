"""Attention maps of an encoder-decoder: which source words each output word was read from."""

from __future__ import annotations

import torch


def attention_map(weights: torch.Tensor, source_words: list[str], output_words: list[str]):
    """A matplotlib Figure: rows = output words (the last one `<eos>`), columns = source words, cells = weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = weights.detach().cpu().float().numpy()[:len(output_words), :len(source_words)]
    figure, ax = plt.subplots(figsize=(1.0 + 0.45 * len(source_words), 1.0 + 0.35 * len(output_words)))
    image = ax.imshow(grid, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source_words)), source_words, rotation=60, ha="right")
    ax.set_yticks(range(len(output_words)), output_words)
    ax.set_xlabel("source word")
    ax.set_ylabel("output word")
    figure.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    figure.tight_layout()
    return figure
