"""Intrinsic evaluation of word vectors with gensim's test data: WordSim-353, SimLex-999, Google analogies."""

from __future__ import annotations

import numpy as np

from rnnlab.data.tokenization import vocabulary
from rnnlab.io import write_json


def keyed_vectors(vocab: list[str], matrix: np.ndarray, skip: int = 0):
    """gensim KeyedVectors of vocab[i] -> matrix[i], leaving out the first `skip` rows (special tokens)."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=matrix.shape[1])
    kv.add_vectors(vocab[skip:], matrix[skip:])
    return kv


def intrinsic_scores(kv, restrict_vocab: int = 300000) -> dict[str, float | None]:
    """Spearman rho on WordSim-353 and SimLex-999 (with out-of-vocabulary rates) and analogy accuracy."""
    import logging

    from gensim.test.utils import datapath

    logging.getLogger("gensim").setLevel(logging.ERROR)
    scores: dict[str, float | None] = {}
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        try:
            _, spearman, oov = kv.evaluate_word_pairs(datapath(file), restrict_vocab=restrict_vocab)
            scores[f"{name}_spearman"] = float(spearman.statistic if hasattr(spearman, "statistic") else spearman[0])
            scores[f"{name}_oov"] = float(oov) / 100.0
        except ValueError:  # every pair out of vocabulary (a small corpus): no score
            scores[f"{name}_spearman"], scores[f"{name}_oov"] = None, 1.0
    try:
        accuracy, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=restrict_vocab)
        total = next((s for s in sections if s["section"] == "Total accuracy"), None)
        answered = len(total["correct"]) + len(total["incorrect"]) if total else 0
        scores["analogy_accuracy"] = float(accuracy) if answered else None
        scores["analogy_answered"] = answered
    except (ValueError, ZeroDivisionError):
        scores["analogy_accuracy"], scores["analogy_answered"] = None, 0
    return scores


def nearest_neighbours(kv, probes: list[str], k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """The k most cosine-similar words of each probe word that has a vector."""
    return {word: [(other, round(float(sim), 4)) for other, sim in kv.most_similar(word, topn=k)]
            for word in probes if word in kv.key_to_index}


def projection_png(kv, probes: list[str], path, title: str = "") -> None:
    """2-D PCA projection of the probe words' vectors, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = [word for word in probes if word in kv.key_to_index]
    if len(words) < 2:
        return
    points = np.stack([kv[word] for word in words])
    points = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(points, full_matrices=False)
    xy = points @ components[:2].T
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(xy[:, 0], xy[:, 1], s=12)
    for word, (x, y) in zip(words, xy, strict=True):
        ax.annotate(word, (x, y), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title or "PCA of probe word vectors")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_matrix(tokenizer, out_dir, evaluation_cfg, title: str = "") -> dict[str, float]:
    """Scores, neighbours and projection of `out_dir/matrix.npy` (if built), written beside it."""
    from pathlib import Path

    out_dir = Path(out_dir)
    if not (out_dir / "matrix.npy").exists():
        return {}
    kv = keyed_vectors(vocabulary(tokenizer), np.load(out_dir / "matrix.npy"), skip=2)
    scores = intrinsic_scores(kv)
    probes = list(evaluation_cfg.probes)
    write_json(out_dir / "scores.json", scores)
    write_json(out_dir / "neighbours.json", nearest_neighbours(kv, probes, evaluation_cfg.neighbours))
    projection_png(kv, probes, out_dir / "projection.png", title)
    return scores
