"""Word-level tokenizer (HF `tokenizers`) built from the train split only: `<pad>` = 0, `<unk>` = 1."""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import ConfigError
from rnnlab.io import atomic_dir, write_json

PAD, UNK = "<pad>", "<unk>"


def _normalizer(cfg):
    from tokenizers import normalizers

    steps = []
    form = cfg.get("unicode_normalization", "nfkc")
    forms = {"nfkc": normalizers.NFKC, "nfc": normalizers.NFC, "nfd": normalizers.NFD, "nfkd": normalizers.NFKD}
    if form not in (None, "none"):
        if form not in forms:
            raise ConfigError(f"tokenizer.unicode_normalization={form!r} is not one of {sorted(forms)} or none")
        steps.append(forms[form]())
    for pattern in cfg.get("strip", []):  # e.g. the "<br />" tags in IMDB reviews
        steps.append(normalizers.Replace(pattern, " "))
    if cfg.get("lowercase", True):
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def build_tokenizer(texts, cfg):
    """Train a word-level tokenizer on `texts` with cfg.min_frequency and cfg.max_vocab_size."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = _normalizer(cfg)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+ and runs of punctuation
    trainer = trainers.WordLevelTrainer(
        vocab_size=cfg.max_vocab_size, min_frequency=cfg.min_frequency, special_tokens=[PAD, UNK],
        show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    assert tokenizer.token_to_id(PAD) == 0 and tokenizer.token_to_id(UNK) == 1
    return tokenizer


def words(tokenizer, text: str) -> list[str]:
    """The normalised, pre-tokenised words of `text` (before vocabulary lookup)."""
    normalized = tokenizer.normalizer.normalize_str(text)
    return [word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]


def vocabulary(tokenizer) -> list[str]:
    """Tokens in id order: row i of an embedding matrix belongs to vocabulary(tokenizer)[i]."""
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def load_tokenizer(path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def tokenize_splits(tokenizer_cfg, prepared_dir: str | Path, out_dir: str | Path) -> dict:
    """Build the tokenizer from the train split only and write token ids for every split."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(Path(prepared_dir) / "data"))
    tokenizer = build_tokenizer(dataset["train"]["text"], tokenizer_cfg)

    def encode(batch):
        ids = [enc.ids for enc in tokenizer.encode_batch(batch["text"])]
        return {"input_ids": ids, "length": [len(seq) for seq in ids]}

    # keep_in_memory: no cache-*.arrow files written into the `prepare` stage output
    encoded = dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"], keep_in_memory=True)
    unk = sum(seq.count(1) for seq in encoded["train"]["input_ids"])
    tokens = sum(encoded["train"]["length"])
    stats = {"vocab_size": tokenizer.get_vocab_size(), "train_tokens": tokens,
             "train_unk_rate": unk / max(tokens, 1)}
    with atomic_dir(out_dir) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        encoded.save_to_disk(str(tmp / "data"))
        write_json(tmp / "stats.json", stats)
    return stats
