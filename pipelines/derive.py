"""DVC stage `derive@<data set>`: a data set made from another's prepared splits (the order task from Rotten
Tomatoes), prepared and tokenized like any other."""

from pathlib import Path

from rnnlab.data.tokenization import tokenize_splits
from rnnlab.data.word_order import derive_order_task
from rnnlab.errors import exit_on_user_error
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    cfg = stage_config()
    source = Path(cfg.paths.data_dir).parent / cfg.data.derived_from / "prepared"
    stats = derive_order_task(cfg.data, source, cfg.paths.prepared_dir)
    tokens = tokenize_splits(cfg.tokenizer, cfg.paths.prepared_dir, cfg.paths.tokenized_dir)
    print(f"derive: {cfg.data.name} from {cfg.data.derived_from}: {stats}; tokenize: {tokens}")


if __name__ == "__main__":
    main()
