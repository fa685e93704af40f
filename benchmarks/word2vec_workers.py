"""What byte-identical Word2Vec costs: the project's default (one worker thread) against two workers, on the same
corpus and config, built twice each. Reports wall time and whether the two builds of a variant are the same bytes.

    .venv/bin/python benchmarks/word2vec_workers.py                 # IMDB train split (after `dvc repro`)
    .venv/bin/python benchmarks/word2vec_workers.py data=rotten_tomatoes

Writes benchmarks/results/word2vec_workers-<data>.{json,md}. Rounds alternate the variants, so load on a shared
machine hits both alike; compare the ratio, not the seconds.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def build(cfg, tokenizer, texts, workers: int) -> tuple[float, str]:
    """Seconds to train and align the vectors, and a hash of the aligned matrix's bytes."""
    from omegaconf import open_dict

    from rnnlab.data.tokenization import vocabulary, words
    from rnnlab.embeddings.word2vec import align, train_word2vec

    with open_dict(cfg):
        cfg.workers = workers
    start = time.perf_counter()
    vectors = train_word2vec((words(tokenizer, text) for text in texts), cfg)
    matrix, _ = align(vectors, vocabulary(tokenizer), seed=cfg.seed)
    return time.perf_counter() - start, hashlib.sha256(matrix.tobytes()).hexdigest()


def measure(cfg, tokenizer, texts, rounds: int = 2) -> dict:
    variants = {1: {"seconds": [], "hashes": []}, 2: {"seconds": [], "hashes": []}}
    for _ in range(rounds):
        for workers, result in variants.items():
            seconds, digest = build(cfg, tokenizer, texts, workers)
            result["seconds"].append(seconds)
            result["hashes"].append(digest)
    for result in variants.values():
        result["repeats_exactly"] = len(set(result["hashes"])) == 1
        result["mean_seconds"] = sum(result["seconds"]) / len(result["seconds"])
    return {"workers": variants,
            "cost_of_one_worker": variants[1]["mean_seconds"] / variants[2]["mean_seconds"]}


def markdown(result: dict, title: str) -> str:
    lines = [f"# {title}", "", "| workers | seconds per build | builds identical |", "|---|---|---|"]
    for workers, variant in result["workers"].items():
        seconds = ", ".join(f"{s:.1f}" for s in variant["seconds"])
        lines.append(f"| {workers} | {seconds} (mean {variant['mean_seconds']:.1f}) | "
                     f"{'yes' if variant['repeats_exactly'] else 'no'} |")
    lines += ["", f"One worker takes {result['cost_of_one_worker']:.2f}x the time of two."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    from datasets import load_from_disk

    from rnnlab.data.tokenization import load_tokenizer
    from rnnlab.pipeline import stage_config
    from rnnlab.tracking.runs import machine

    cfg = stage_config(["data=imdb", "embedding=word2vec", *argv])
    tokenizer = load_tokenizer(Path(cfg.paths.tokenized_dir) / "tokenizer.json")
    texts = load_from_disk(str(Path(cfg.paths.prepared_dir) / "data"))["train"]["text"]
    result = {"data": cfg.data.name, "machine": machine(), **measure(cfg.embedding, tokenizer, texts)}
    title = f"Word2Vec on {cfg.data.name}: one worker (byte-identical) vs two ({result['machine']['cpu']})"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"word2vec_workers-{cfg.data.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"word2vec_workers-{cfg.data.name}.md").write_text(markdown(result, title))
    print(markdown(result, title))


if __name__ == "__main__":
    main(sys.argv[1:])
