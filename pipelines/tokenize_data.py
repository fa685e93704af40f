"""DVC stage `tokenize`: tokenizer.json built from the train split, and token ids for every split."""

from rnnlab.data.tokenization import tokenize_splits
from rnnlab.embeddings.build import words_with_vectors
from rnnlab.errors import exit_on_user_error
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    cfg = stage_config()
    pretrained = cfg.tokenizer.get("pretrained_words")
    stats = tokenize_splits(cfg.tokenizer, cfg.paths.prepared_dir, cfg.paths.tokenized_dir,
                            with_vectors=words_with_vectors(pretrained) if pretrained else None)
    print(f"tokenize: {cfg.data.name}: {stats}")


if __name__ == "__main__":
    main()
