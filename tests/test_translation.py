"""Encoder-decoder translation (task=translation): the grouped split, the decoder's masked loss, attention over
real tokens only, beam search against greedy, a copy task learned end to end, and a real `rnnlab-train
experiment=translation` run on a tiny made-up language pair, read back from an SQLite MLflow store and used by
`rnnlab-translate`."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_module
from omegaconf import OmegaConf

from rnnlab.data.splits import grouped_split
from rnnlab.models.decoding import beam_search, beam_search_sentence, greedy
from rnnlab.models.seq2seq import Seq2Seq
from rnnlab.tasks.translation import count_words, detokenize, sequence_loss

# A toy English -> Spanish: the adjective moves after its noun, so a word-by-word copy is wrong.
NOUNS = {"cat": "gato", "dog": "perro", "bird": "pájaro", "horse": "caballo"}
ADJECTIVES = {"red": "rojo", "big": "grande", "small": "pequeño", "black": "negro"}
VERBS = {"sees": "ve", "likes": "quiere", "follows": "sigue"}
TINY_PAIRS = """\
name: tinypairs
format: pairs
source: {{kind: local, path: {tsv}}}
source_column: 0
target_column: 1
max_words: 12
split: {{validation: 0.1, test: 0.1, seed: 3}}
batch_size: 16
eval_batch_size: 64
pool_batches: 4
num_workers: 0
"""
TRAIN_TINY = ["experiment=translation", "data=tinypairs", "model.hidden_size=24", "model.attention_size=16",
              "embedding.dim=16", "trainer.max_epochs=4", "torch_threads=1", "tokenizer.min_frequency=1",
              "task.beam_size=2", "task.examples=5", "task.attention_maps=2", "task.long_words=6"]


def _sentence(rng: random.Random) -> tuple[str, str]:
    def phrase():
        noun, adjective = rng.choice(list(NOUNS)), rng.choice(list(ADJECTIVES))
        return f"the {adjective} {noun}", f"el {NOUNS[noun]} {ADJECTIVES[adjective]}"

    (en1, es1), (en2, es2) = phrase(), phrase()
    verb = rng.choice(list(VERBS))
    return f"The {en1[4:]} {verb} {en2}.", f"El {es1[3:]} {VERBS[verb]} {es2}."


def write_pairs(path: Path, rows: int = 400, seed: int = 0) -> None:
    """Tatoeba's layout (english, spanish, attribution); some English sentences come twice with two translations."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        english, spanish = _sentence(rng)
        lines.append(f"{english}\t{spanish}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}")
        if i % 5 == 0:  # a second translation of the same sentence
            lines.append(f"{english}\t{spanish.replace('El ', 'Ese ', 1)}\tCC-BY 2.0 (France) #{i}b")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pairs_project(tmp_path_factory) -> Path:
    """conf/ plus conf/data/tinypairs.yaml, fetched, prepared and tokenized by the stage code."""
    from rnnlab.data.prepare import prepare
    from rnnlab.data.sources import fetch
    from rnnlab.data.tokenization import tokenize_splits
    from rnnlab.io import atomic_dir

    root = tmp_path_factory.mktemp("pairs_project")
    shutil.copytree(REPO / "conf", root / "conf")
    write_pairs(root / "pairs.tsv")
    (root / "conf/data/tinypairs.yaml").write_text(TINY_PAIRS.format(tsv=root / "pairs.tsv"))
    data_cfg = OmegaConf.load(root / "conf/data/tinypairs.yaml")
    data_dir = root / "data/tinypairs"
    with atomic_dir(data_dir / "raw") as tmp:
        fetch(data_cfg.source, tmp)
    prepare(data_cfg, data_dir / "raw", data_dir / "prepared")
    tokenizer_cfg = OmegaConf.merge(OmegaConf.load(root / "conf/tokenizer/pairs.yaml"), {"min_frequency": 1})
    tokenize_splits(tokenizer_cfg, data_dir / "prepared", data_dir / "tokenized")
    return root


# -- data --------------------------------------------------------------------------------------------------------

def test_grouped_split_keeps_every_row_of_a_key_on_one_side():
    keys = [f"sentence {i % 37}" for i in range(500)]  # each key on 13-14 rows
    parts = grouped_split(keys, validation=0.2, test=0.2, seed=5)
    assert sorted(r for rows in parts.values() for r in rows) == list(range(500))
    side = {}
    for name, rows in parts.items():
        for row in rows:
            assert side.setdefault(keys[row], name) == name
    assert all(parts.values())
    assert grouped_split(keys, 0.2, 0.2, seed=5) == parts != grouped_split(keys, 0.2, 0.2, seed=6)


def test_prepared_pairs_keep_all_translations_of_a_sentence_in_one_split(pairs_project):
    from datasets import load_from_disk

    data = load_from_disk(str(pairs_project / "data/tinypairs/prepared/data"))
    where: dict[str, set] = {}
    for split in data:
        for source in data[split]["source"]:
            where.setdefault(" ".join(source.lower().split()), set()).add(split)
    assert all(len(splits) == 1 for splits in where.values())
    assert len(where) < sum(len(data[s]) for s in data)  # there were duplicates to keep together


def test_tokenized_pairs_have_a_target_vocabulary_with_bos_and_eos(pairs_project):
    from datasets import load_from_disk

    from rnnlab.data.tokenization import load_tokenizer

    tokenized = pairs_project / "data/tinypairs/tokenized"
    source, target = load_tokenizer(tokenized / "tokenizer.json"), load_tokenizer(tokenized / "target_tokenizer.json")
    assert target.token_to_id("<bos>") is not None and target.token_to_id("<eos>") is not None
    assert source.token_to_id("cat") is not None and source.token_to_id("gato") is None
    assert target.token_to_id("gato") is not None and target.token_to_id("pájaro") is not None
    row = load_from_disk(str(tokenized / "data"))["train"][0]
    assert [target.id_to_token(i) for i in row["target_ids"]] == row["target"].lower().replace(".", " .").split()


def test_a_malformed_pairs_file_is_one_clear_error(tmp_path):
    from rnnlab.data.readers import read_sentence_pairs
    from rnnlab.errors import DataError

    path = tmp_path / "bad.tsv"
    path.write_text("Hello.\tHola.\tattribution\nno tab on this line\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: 1 tab-separated column"):
        read_sentence_pairs(path)
    path.write_text("\t\n   \t  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable sentence pairs"):
        read_sentence_pairs(path)


# -- model -------------------------------------------------------------------------------------------------------

def _model(attention="additive", cell="gru", bidirectional=True, seed=0, vocab=(15, 17), hidden=12):
    torch.manual_seed(seed)
    return Seq2Seq(vocab[0], vocab[1], embedding_dim=8, cell=cell, hidden_size=hidden, bidirectional=bidirectional,
                   attention=attention, attention_size=10).eval()


def _padded_sources(lengths, vocab=15, seed=0):
    torch.manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths) + 2, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(2, vocab, (n,))
    return ids, torch.tensor(lengths)


def test_padded_targets_do_not_count_in_the_loss():
    torch.manual_seed(0)
    targets = torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0], [9, 4, 2, 0]])
    logits = torch.randn(3, 4, 11)
    loss = sequence_loss(logits, targets)
    changed = logits.clone()
    changed[targets == 0] = torch.randn(int((targets == 0).sum()), 11) * 50  # garbage where the target is <pad>
    assert torch.allclose(sequence_loss(changed, targets), loss)
    real = targets != 0
    by_hand = torch.nn.functional.cross_entropy(logits[real], targets[real])  # the mean over the 9 real words
    assert torch.allclose(loss, by_hand)


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_attention_weights_sum_to_one_over_real_tokens_and_are_zero_on_padding(kind):
    model = _model(kind)
    sources, lengths = _padded_sources([5, 2, 7, 1])
    target_in = torch.randint(3, 17, (4, 6))
    _, weights = model(sources, lengths, target_in)
    assert weights.shape == (4, 6, sources.size(1))
    for row, n in enumerate(lengths.tolist()):
        assert torch.allclose(weights[row, :, :n].sum(-1), torch.ones(6))
        assert torch.all(weights[row, :, n:] == 0)
    # the same holds while decoding: each emitted word's attention row
    for decoded in greedy(model, sources, lengths, bos_id=1, eos_id=2, max_length=5):
        assert torch.allclose(decoded.attention.sum(-1), torch.ones(len(decoded.ids) + 1))


def test_padding_of_the_source_changes_nothing():
    model = _model("additive", cell="lstm")
    sources, lengths = _padded_sources([4, 6])
    target_in = torch.randint(3, 17, (2, 5))
    logits, _ = model(sources, lengths, target_in)
    alone, _ = model(sources[:1, :4], lengths[:1], target_in[:1])
    assert torch.allclose(logits[:1], alone, atol=1e-6)


@pytest.mark.parametrize("attention,cell,bidirectional", [("none", "gru", False), ("additive", "lstm", True),
                                                          ("dot", "rnn", True)])
def test_beam_search_with_beam_1_is_greedy_decoding(attention, cell, bidirectional):
    for seed in range(3):
        model = _model(attention, cell, bidirectional, seed=seed)
        sources, lengths = _padded_sources([3, 6, 4, 5, 2], seed=seed)
        for row, found in enumerate(greedy(model, sources, lengths, bos_id=1, eos_id=2, max_length=8)):
            n = int(lengths[row])
            beamed = beam_search_sentence(model, sources[row:row + 1, :n], lengths[row:row + 1], bos_id=1, eos_id=2,
                                          beam=1, max_length=8)
            assert beamed.ids == found.ids
            assert beamed.score == pytest.approx(found.score, abs=1e-4) or len(found.ids) == 8


def test_decoding_leaves_a_training_model_in_training_mode():
    """Greedy and beam decoding run in eval mode (no dropout) and put the caller's mode back: a model decoded
    for a look while it trains goes on training with dropout. Before, both left it in eval mode."""
    model = _model("additive").train()
    model.embedding_dropout.p = 0.5
    sources, lengths = _padded_sources([4, 3])
    first = greedy(model, sources, lengths, bos_id=1, eos_id=2, max_length=6)
    assert model.training and all(m.training for m in model.modules())
    assert [d.ids for d in greedy(model.eval(), sources, lengths, bos_id=1, eos_id=2, max_length=6)] == \
        [d.ids for d in first]  # decoded without dropout, as in eval mode
    for decode in (beam_search, beam_search_sentence):
        model.train()
        decode(model, sources[:1, :4], lengths[:1], bos_id=1, eos_id=2, beam=3, max_length=6)
        assert model.training and all(m.training for m in model.modules())
    assert model.training and all(m.training for m in model.modules())


def test_a_wider_beam_never_finds_a_less_probable_translation():
    model = _model("additive", seed=4)
    sources, lengths = _padded_sources([5], seed=4)
    scores = [beam_search_sentence(model, sources[:, :5], lengths, bos_id=1, eos_id=2, beam=b, length_penalty=0,
                                   max_length=8).score for b in (1, 3, 8)]
    assert scores[0] <= scores[1] + 1e-5 and scores[1] <= scores[2] + 1e-5


@pytest.fixture(scope="module")
def reverser():
    """A Seq2Seq trained to write its source reversed (ids 3..12; 1 = <bos>, 2 = <eos>) and a batch drawer."""
    torch.manual_seed(0)
    rng = random.Random(0)
    model = Seq2Seq(13, 13, embedding_dim=16, cell="gru", hidden_size=32, bidirectional=True,
                    attention="additive", attention_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)

    def batch(size, longest=6):
        sources = [[rng.randint(3, 12) for _ in range(rng.randint(2, longest))] for _ in range(size)]
        ids, lengths = _pad(sources)
        targets = _pad([[1, *reversed(s), 2] for s in sources])[0]
        return ids, lengths, targets, sources

    model.train()
    for _ in range(400):  # 4 s on one thread; lr 0.01 oscillated between 0.85 and 0.98 exact up to step 1000
        ids, lengths, targets, _ = batch(32)
        logits, _ = model(ids, lengths, targets[:, :-1])
        loss = sequence_loss(logits, targets[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), batch, float(loss)


def test_the_encoder_decoder_learns_to_copy_and_reverse_nearly_perfectly(reverser):
    """Proves the wiring end to end: target = the source reversed, learned to >= 95% exact output."""
    model, batch, loss = reverser
    ids, lengths, _, sources = batch(200)
    decoded = greedy(model, ids, lengths, bos_id=1, eos_id=2)
    exact = sum(d.ids == list(reversed(s)) for d, s in zip(decoded, sources, strict=True)) / len(sources)
    assert exact >= 0.95, f"exact reversals {exact:.2f}, last loss {float(loss):.3f}"


def _assert_same_decoding(batched, alone):
    assert batched.ids == alone.ids
    assert batched.score == pytest.approx(alone.score, abs=1e-4)
    if alone.attention is None:
        assert batched.attention is None
    else:
        assert batched.attention.shape == alone.attention.shape
        assert torch.allclose(batched.attention, alone.attention, atol=1e-5)


@pytest.mark.parametrize("beam", [2, 5])
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_batched_beam_search_finds_what_the_one_sentence_search_finds(reverser, beam, length_penalty):
    """All sentences decoded together, some finishing early (they leave the batch), some longer than the model
    was trained on: every sentence gets exactly the translation, score and attention the one-sentence reference
    finds for it alone (its own max_length, its own unpadded source)."""
    model, batch, _ = reverser
    ids, lengths, _, _ = batch(24, longest=9)
    found = beam_search(model, ids, lengths, bos_id=1, eos_id=2, beam=beam, length_penalty=length_penalty)
    assert len(found) == len(lengths)
    for row, n in enumerate(lengths.tolist()):
        alone = beam_search_sentence(model, ids[row:row + 1, :n], lengths[row:row + 1], bos_id=1, eos_id=2,
                                     beam=beam, length_penalty=length_penalty)
        _assert_same_decoding(found[row], alone)


@pytest.mark.parametrize("attention,cell,bidirectional", [("none", "gru", False), ("additive", "lstm", True),
                                                          ("dot", "rnn", True)])
def test_batched_beam_search_equals_the_reference_when_nothing_ends_early(attention, cell, bidirectional):
    """Untrained models rarely emit <eos>: sentences run out of room at their own max_length (forced <eos>)."""
    model = _model(attention, cell, bidirectional, seed=1)
    sources, lengths = _padded_sources([3, 6, 4, 5, 2], seed=1)
    for beam, penalty in ((1, 1.0), (3, 0.0), (4, 1.0)):
        found = beam_search(model, sources, lengths, bos_id=1, eos_id=2, beam=beam, length_penalty=penalty)
        for row, n in enumerate(lengths.tolist()):
            _assert_same_decoding(found[row], beam_search_sentence(
                model, sources[row:row + 1, :n], lengths[row:row + 1], bos_id=1, eos_id=2, beam=beam,
                length_penalty=penalty))


def _pad(rows):
    from rnnlab.data.batching import pad_batch

    return pad_batch([torch.tensor(r) for r in rows])


def test_unknown_attention_is_one_clear_error():
    from rnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="model.attention='bahdanau' must be one of none|additive|dot"):
        Seq2Seq(10, 10, attention="bahdanau")


def test_words_and_detokenizing():
    assert count_words("where is the station ?".split()) == 4
    assert detokenize("¿ dónde está la estación ?".split()) == "¿dónde está la estación?"


# -- a real run ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_rnnlab_train_experiment_translation_then_translate(pairs_project, tmp_path):
    from rnnlab.tracking import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_module("rnnlab.train", pairs_project, *TRAIN_TINY, f"hydra.run.dir={tmp_path / 'run'}", tracking_uri=uri)
    assert proc.returncode == 0, proc.stderr[-5000:]
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("translation-tinypairs").experiment_id])
    metrics, run_id = run.data.metrics, run.info.run_id
    assert run.info.status == "FINISHED"
    for key in ("test_bleu", "test_chrf", "test_acc", "test_loss", "val_bleu", "best_val_bleu", "test_bleu_long",
                "test_bleu_short", "test_bleu_greedy"):
        assert key in metrics, sorted(metrics)
    assert 0 <= metrics["test_bleu"] <= 100 and 0 <= metrics["test_acc"] <= 1
    assert metrics["test_sentences_long"] + metrics["test_sentences_short"] > 0
    assert metrics["best_val_bleu"] > 5  # a tiny regular language: far above an untrained model's 0
    assert len(client.get_metric_history(run_id, "val_bleu")) == 4
    files = {f.path for f in client.list_artifacts(run_id)} | {f.path for f in client.list_artifacts(run_id, "attention")}
    assert {"translations_test.md", "tokenizer.json", "target_tokenizer.json", "config.yaml"} <= files
    assert {"attention/sentence_0.png", "attention/sentence_1.png"} <= files
    table = Path(client.download_artifacts(run_id, "translations_test.md", str(tmp_path))).read_text()
    assert table.count("\n") == 2 + 5 and table.startswith("| source | reference | model |")

    maps = tmp_path / "maps"
    translated = run_module("rnnlab.translate", pairs_project, f"run_id={run_id}", "text=The red cat sees the zebra.",
                      "beam=3", f"attention={maps}", tracking_uri=uri)
    assert translated.returncode == 0, translated.stderr[-3000:]
    source, output = translated.stdout.rstrip("\n").split("\t")
    assert source == "The red cat sees the zebra." and output.strip()
    assert set(output.replace(".", " ").split()) <= {*NOUNS.values(), *ADJECTIVES.values(), *VERBS.values(), "el",
                                                     "ese", "<unk>"}
    assert "zebra" in translated.stderr and (maps / "sentence_0.png").stat().st_size > 0

    empty = run_module("rnnlab.translate", pairs_project, f"run_id={run_id}", "text=  ", tracking_uri=uri)
    assert empty.returncode == 2 and "nothing to translate" in empty.stderr and "Traceback" not in empty.stderr
    predicted = run_module("rnnlab.predict", pairs_project, f"run_id={run_id}", "text=the cat", tracking_uri=uri)
    assert predicted.returncode == 2 and "rnnlab-translate" in predicted.stderr


def test_translation_on_data_without_pairs_is_one_clear_error(pairs_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_module("rnnlab.train", pairs_project, *TRAIN_TINY, "data=rotten_tomatoes",
                "paths.tokenized_dir=" + str(tmp_path), f"hydra.run.dir={tmp_path / 'run'}", tracking_uri=uri)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rnnlab: error:")]
    assert len(errors) == 1 and "target_tokenizer.json" in errors[0], proc.stderr[-3000:]
