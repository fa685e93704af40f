"""DVC stage `embed`: one embedding for one data set, aligned to its vocabulary, evaluated, logged to MLflow.

Writes data/<data>/embeddings/<embedding>/ (matrix.npy, facts.json, scores.json, neighbours.json,
projection.png) and results/embedding_scores/<data>-<embedding>.json (DVC metrics).
"""

import time
from pathlib import Path

from rnnlab.embeddings.build import build_embedding
from rnnlab.embeddings.matrix import embedding_dir
from rnnlab.errors import exit_on_user_error
from rnnlab.io import atomic_dir, write_json
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    from datasets import load_from_disk

    from rnnlab.data.tokenization import load_tokenizer
    from rnnlab.embeddings.evaluate import evaluate_matrix
    from rnnlab.tracking.runs import log_embedding_run

    cfg = stage_config()
    corpus = cfg.embedding.get("corpus") or cfg.data.name
    tokenizer = load_tokenizer(Path(cfg.paths.tokenized_dir) / "tokenizer.json")
    train = load_from_disk(str(Path("data") / corpus / "prepared" / "data"))["train"]
    # sentences of a tagging corpus come as word lists
    texts = train["text"] if "text" in train.column_names else [" ".join(words) for words in train["tokens"]]
    target = embedding_dir(cfg.paths.embeddings_dir, cfg.embedding.name)
    with atomic_dir(target) as tmp:
        start = time.perf_counter()
        facts = build_embedding(cfg.embedding, tokenizer, texts, tmp)
        seconds = time.perf_counter() - start
        scores = evaluate_matrix(tokenizer, tmp, cfg.evaluation, title=f"{cfg.embedding.name} on {corpus}")
    # the DVC metrics file repeats byte for byte; the wall time goes to MLflow only
    metrics = {"corpus": corpus, **{k: v for k, v in facts.items() if k != "losses"}, **scores}
    write_json(Path("results/embedding_scores") / f"{cfg.data.name}-{cfg.embedding.name}.json", metrics)
    log_embedding_run(cfg, target, {**metrics, "build_seconds": seconds})
    print(f"embed: {cfg.data.name}/{cfg.embedding.name} in {seconds:.1f} s: {metrics}")


if __name__ == "__main__":
    main()
