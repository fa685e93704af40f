"""DVC stage `embed`: the configured embedding as a vocabulary-aligned matrix (data/<name>/embeddings/)."""

from pathlib import Path

from rnnlab.embeddings.build import build_embedding
from rnnlab.errors import exit_on_user_error
from rnnlab.io import atomic_dir
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    from datasets import load_from_disk

    from rnnlab.data.tokenization import load_tokenizer

    cfg = stage_config()
    tokenizer = load_tokenizer(Path(cfg.paths.tokenized_dir) / "tokenizer.json")
    train_texts = load_from_disk(str(Path(cfg.paths.prepared_dir) / "data"))["train"]["text"]
    with atomic_dir(cfg.paths.embeddings_dir) as tmp:
        facts = build_embedding(cfg.embedding, tokenizer, train_texts, tmp)
    print(f"embed: {cfg.data.name}: {facts}")


if __name__ == "__main__":
    main()
