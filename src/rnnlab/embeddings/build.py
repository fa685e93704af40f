"""Build the input representation a config asks for, aligned to the tokenizer's vocabulary (row i = token id i).

| embedding    | built here                                   | in the model                               |
|--------------|----------------------------------------------|--------------------------------------------|
| `onehot`     | nothing (the vocabulary size is checked)      | fixed identity input, vocabulary-sized     |
| `learned`    | nothing                                      | random init, trained with the model        |
| `word2vec`   | gensim Word2Vec on the corpus                | initialised from the matrix, `freeze` opt. |
| `glove`      | rnnlab's own GloVe on the corpus             | same                                       |
| `pretrained` | rows looked up in a word2vec / GloVe file    | same                                       |

Built matrices go to `<embeddings_dir>/<name>/matrix.npy` with `facts.json` (coverage, sizes): both are the same
bytes on every build with the same inputs and config (wall times are the caller's to log, not part of the output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.data.sources import fetch, raw_filename
from rnnlab.data.tokenization import vocabulary, words
from rnnlab.embeddings.matrix import MODEL_BUILT, check_kind, check_onehot_size
from rnnlab.errors import DataError
from rnnlab.io import atomic_file, write_json


def build_embedding(cfg, tokenizer, corpus_texts, out_dir: str | Path) -> dict:
    """Write `out_dir/matrix.npy` (for built kinds) and `out_dir/facts.json`; return the facts."""
    check_kind(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(tokenizer)
    facts = {"name": cfg.name, "vocab_size": len(vocab)}
    if cfg.name == "onehot":
        check_onehot_size(cfg, len(vocab))
        facts.update(dim=len(vocab), input_floats_per_token=len(vocab))
    elif cfg.name == "learned":
        facts.update(dim=cfg.dim)
    elif cfg.name == "word2vec":
        from rnnlab.embeddings.word2vec import align, train_word2vec

        vectors = train_word2vec((words(tokenizer, text) for text in corpus_texts), cfg)
        matrix, coverage = align(vectors, vocab, seed=cfg.seed)
        facts.update(coverage)
    elif cfg.name == "glove":
        from rnnlab.embeddings.glove import count_cooccurrences, train_glove

        index = tokenizer.get_vocab()
        lines = (np.array([index.get(word, -1) for word in words(tokenizer, text)]) for text in corpus_texts)
        counts = count_cooccurrences(lines, len(vocab), window=cfg.window, chunk_tokens=cfg.chunk_tokens)
        nonzeros = counts.nnz
        if nonzeros == 0:
            raise DataError("embedding=glove: the corpus has no two vocabulary words within a window of each "
                            f"other ({cfg.window}); use a larger corpus (embedding corpus) or a larger window")
        losses = []
        matrix = train_glove(counts, dim=cfg.dim, iterations=cfg.iterations, x_max=cfg.x_max, alpha=cfg.alpha,
                             learning_rate=cfg.learning_rate, seed=cfg.seed, threads=cfg.threads,
                             on_iteration=lambda _, loss: losses.append(loss))
        matrix[0] = 0.0
        facts.update(nonzeros=nonzeros, losses=losses)
    else:  # pretrained
        from rnnlab.embeddings.pretrained import align_pretrained, check_missing_rule, read_vectors

        check_missing_rule(cfg.missing)
        vectors, dim = read_vectors(pretrained_file(cfg), set(vocab) | {w.lower() for w in vocab}, cfg.get("dim"))
        matrix, coverage = align_pretrained(vectors, vocab, dim, cfg.missing, cfg.seed)
        facts.update(coverage, dim=dim)
    if cfg.name not in MODEL_BUILT:
        facts["dim"] = int(matrix.shape[1])
        with atomic_file(out_dir / "matrix.npy", "wb") as handle:
            np.save(handle, matrix)
    write_json(out_dir / "facts.json", facts)
    return facts


def pretrained_file(cfg) -> Path:
    """The vectors file: `embedding.path`, or the pinned `embedding.source` fetched once into a download cache."""
    if cfg.get("path"):
        return Path(cfg.path).expanduser()

    cache = Path(cfg.cache_dir).expanduser() / cfg.source.sha256[:16]
    target = cache / raw_filename(cfg.source)
    return target if target.exists() else fetch(cfg.source, cache)



def words_with_vectors(vectors_cfg):
    """`with_vectors(words) -> the words among them with a vector` in the pretrained file `vectors_cfg` names
    (path, or a pinned source): the words a tagging vocabulary adds (data.tokenization.tokenize_splits)."""
    from rnnlab.embeddings.pretrained import read_vectors

    def with_vectors(words: set[str]) -> set[str]:
        return set(read_vectors(pretrained_file(vectors_cfg), words)[0])
    return with_vectors
