"""Word-level tokenizer (HF `tokenizers`) built from the train split only: `<pad>` = 0, `<unk>` = 1, then the
config's `special_tokens` (e.g. a language model's `<eos>`).

Text rows (`text` column) are split by the pre-tokenizer; pre-split rows (`tokens` column, tagging data) keep
their words one to one, so tags stay aligned, and get a `case_ids` column (rnnlab.data.case). Translation pairs
(`source`, `target` columns) get one tokenizer per language: tokenizer.json for the source and
target_tokenizer.json for the target, whose `<bos>` / `<eos>` (tokenizer.target_special_tokens) frame every
target sentence."""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.case import case_id
from rnnlab.data.conventions import BOS, EOS, PAD, UNK, UNK_ID
from rnnlab.errors import ConfigError
from rnnlab.io import atomic_dir, write_json


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

    splitters = {"words": pre_tokenizers.Whitespace,  # \w+ and runs of punctuation
                 "whitespace": pre_tokenizers.WhitespaceSplit}  # already tokenized text (PTB, CoNLL)
    splitter = cfg.get("pre_tokenizer", "words")
    if splitter not in splitters:
        raise ConfigError(f"tokenizer.pre_tokenizer={splitter!r} is not one of {sorted(splitters)}")
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = _normalizer(cfg)
    tokenizer.pre_tokenizer = splitters[splitter]()
    trainer = trainers.WordLevelTrainer(
        vocab_size=cfg.max_vocab_size, min_frequency=cfg.min_frequency,
        special_tokens=[PAD, UNK, *cfg.get("special_tokens", [])], show_progress=False)
    # Special tokens that also occur in the text (PTB's own `<unk>`) must not be counted as words: the trainer
    # would then renumber them and leave id 1 empty.
    specials = [PAD, UNK, *cfg.get("special_tokens", [])]
    texts = (" ".join(w for w in text.split(" ") if w not in specials) for text in texts)
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


def tokenize_splits(tokenizer_cfg, prepared_dir: str | Path, out_dir: str | Path, with_vectors=None) -> dict:
    """Build the tokenizer from the train split only and write token ids for every split. With
    `tokenizer.pretrained_words`, `with_vectors(words) -> the words among them that have a pretrained vector`
    (rnnlab.embeddings.build.words_with_vectors) says which validation / test words to add."""
    import shutil

    from datasets import load_from_disk

    prepared_dir = Path(prepared_dir)
    dataset = load_from_disk(str(prepared_dir / "data"))
    if "source" in dataset["train"].column_names:
        return _tokenize_pairs(tokenizer_cfg, dataset, Path(out_dir))
    pretokenized = "tokens" in dataset["train"].column_names
    added = 0
    if pretokenized:
        tokenizer = build_tokenizer((" ".join(row) for row in dataset["train"]["tokens"]), tokenizer_cfg)
        if tokenizer_cfg.get("pretrained_words"):
            others = (word for split in dataset if split != "train" for row in dataset[split]["tokens"] for word in row)
            if with_vectors is None:
                raise ValueError("tokenizer.pretrained_words is set: pass with_vectors (embeddings.build.words_with_vectors)")
            added = add_pretrained_words(tokenizer, others, with_vectors)
    else:
        tokenizer = build_tokenizer(dataset["train"]["text"], tokenizer_cfg)

    def encode(batch):
        if pretokenized:  # one id per given word, whatever the word contains
            ids = [[word_id(tokenizer, word) for word in row] for row in batch["tokens"]]
            return {"input_ids": ids, "length": [len(seq) for seq in ids],
                    "case_ids": [[case_id(word) for word in row] for row in batch["tokens"]]}
        ids = [enc.ids for enc in tokenizer.encode_batch(batch["text"])]
        return {"input_ids": ids, "length": [len(seq) for seq in ids]}

    encoded = _encode_splits(dataset, encode, [tokenizer], remove_columns=[] if pretokenized else ["text"])
    unk = sum(seq.count(UNK_ID) for seq in encoded["train"]["input_ids"])
    tokens = sum(encoded["train"]["length"])
    stats = {"vocab_size": tokenizer.get_vocab_size(), "train_tokens": tokens,
             "train_unk_rate": unk / max(tokens, 1), "pretrained_words_added": added}
    with atomic_dir(out_dir) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        encoded.save_to_disk(str(tmp / "data"))
        if (prepared_dir / "tags.json").exists():
            shutil.copy(prepared_dir / "tags.json", tmp / "tags.json")
        if pretokenized:  # the character vocabulary of a tagger's character encoder: the train split's
            write_json(tmp / "chars.json", character_vocabulary(dataset["train"]["tokens"]))
        write_json(tmp / "stats.json", stats)
    return stats


def _tokenize_pairs(tokenizer_cfg, dataset, out_dir: Path) -> dict:
    """Source and target tokenizers from the train split; ids for both sides of every split (the texts are
    kept: BLEU compares with the reference's own words, never with `<unk>`)."""
    from omegaconf import OmegaConf

    source_tokenizer = build_tokenizer(dataset["train"]["source"], tokenizer_cfg)
    target_cfg = OmegaConf.create({**OmegaConf.to_container(tokenizer_cfg, resolve=True),
                                   "special_tokens": list(tokenizer_cfg.get("target_special_tokens", [BOS, EOS]))})
    target_tokenizer = build_tokenizer(dataset["train"]["target"], target_cfg)
    for token in (BOS, EOS):
        if target_tokenizer.token_to_id(token) is None:
            raise ConfigError(f"tokenizer.target_special_tokens must include {token}: the decoder starts from "
                              f"{BOS} and stops at {EOS}")

    def encode(batch):
        source = [enc.ids for enc in source_tokenizer.encode_batch(batch["source"])]
        target = [enc.ids for enc in target_tokenizer.encode_batch(batch["target"])]
        return {"source_ids": source, "target_ids": target, "length": [len(seq) for seq in source]}

    encoded = _encode_splits(dataset, encode, [source_tokenizer, target_tokenizer])
    stats = {"source_vocab_size": source_tokenizer.get_vocab_size(),
             "target_vocab_size": target_tokenizer.get_vocab_size()}
    for side in ("source", "target"):
        train = encoded["train"][f"{side}_ids"]
        tokens = sum(map(len, train))
        stats[f"train_{side}_tokens"] = tokens
        stats[f"train_{side}_unk_rate"] = sum(seq.count(UNK_ID) for seq in train) / max(tokens, 1)
    with atomic_dir(out_dir) as tmp:
        source_tokenizer.save(str(tmp / "tokenizer.json"))
        target_tokenizer.save(str(tmp / "target_tokenizer.json"))
        encoded.save_to_disk(str(tmp / "data"))
        write_json(tmp / "stats.json", stats)
    return stats


def _encode_splits(dataset, encode, tokenizers, remove_columns=()):
    """`encode` over every split (batched, in memory: no cache-*.arrow files written into the `prepare` stage
    output). Each split's fingerprint, which `datasets` writes into state.json, is derived from what the ids
    depend on (the prepared split and the tokenizers), not from the encoding function's code as `datasets` would
    by default, so that a change to the code that leaves the ids as they are leaves the stage output's bytes
    (and DVC's hash of it) as they are too."""
    import hashlib

    from datasets import DatasetDict

    vocabularies = "".join(tokenizer.to_str() for tokenizer in tokenizers)
    return DatasetDict({split: part.map(encode, batched=True, batch_size=1000, keep_in_memory=True,
                                        remove_columns=list(remove_columns),
                                        new_fingerprint=hashlib.sha256(
                                            f"{split}\0{part._fingerprint}\0{vocabularies}".encode()).hexdigest()[:16])
                        for split, part in dataset.items()})


def add_pretrained_words(tokenizer, words, with_vectors) -> int:
    """Append to the vocabulary the (normalised) `words` that are not in it but have a pretrained vector
    (`with_vectors(candidates) -> those that have one`). Only words, never their labels: this is how the CoNLL-2003
    taggers we compare with (Lample et al. 2016, NCRF++) let test words keep their pretrained vectors."""
    from tokenizers import models

    vocab = tokenizer.get_vocab()
    candidates = {tokenizer.normalizer.normalize_str(word) for word in words} - vocab.keys()
    found = with_vectors(candidates)
    extended = {**vocab, **{word: len(vocab) + i for i, word in enumerate(sorted(found))}}
    tokenizer.model = models.WordLevel(vocab=extended, unk_token=UNK)
    return len(found)


def character_vocabulary(sentences) -> list[str]:
    """`<pad>`, `<unk>`, then every character of the train words by falling frequency (ties by character)."""
    from collections import Counter

    counts = Counter(ch for sentence in sentences for word in sentence for ch in word)
    return [PAD, UNK, *sorted(counts, key=lambda ch: (-counts[ch], ch))]


def word_id(tokenizer, word: str) -> int:
    """The id of one given word (normalised as in training); `<unk>` when it is not in the vocabulary."""
    found = tokenizer.token_to_id(tokenizer.normalizer.normalize_str(word))
    return UNK_ID if found is None else found
