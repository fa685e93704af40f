"""The order-blind and convolutional baselines, and word order as a measurement: real models, real batches."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import TINY, run_module

from rnnlab.data.word_order import order_pairs, shuffle_within_length
from rnnlab.models.bag_of_words import BagOfEmbeddings
from rnnlab.models.convolutional import ConvolutionalClassifier
from rnnlab.tracking import runs


def _ids_batch(lengths, vocab=40, seed=0, pad_with_garbage=False):
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths) + 3
    ids = torch.randint(1, vocab, (len(lengths), steps), generator=generator)
    for row, n in enumerate(lengths):
        if not pad_with_garbage:
            ids[row, n:] = 0
    return ids, torch.tensor(lengths)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_the_bag_model_gives_the_same_predictions_on_shuffled_text(pooling):
    torch.manual_seed(0)
    model = BagOfEmbeddings(40, 2, embedding_dim=8, pooling=pooling, hidden_size=16).eval()
    ids, lengths = _ids_batch([7, 3, 12, 1, 5])
    shuffled = shuffle_within_length(ids, lengths, seed=4)
    assert not torch.equal(shuffled, ids)
    with torch.no_grad():
        logits, shuffled_logits = model(ids, lengths), model(shuffled, lengths)
    assert torch.equal(logits.argmax(-1), shuffled_logits.argmax(-1))
    torch.testing.assert_close(logits, shuffled_logits, rtol=1e-6, atol=1e-6)  # sums in another order


@pytest.mark.parametrize("model_class", [BagOfEmbeddings, ConvolutionalClassifier])
def test_a_texts_output_does_not_depend_on_its_batchs_padding(model_class):
    torch.manual_seed(1)
    model = model_class(40, 3, embedding_dim=6).eval()
    lengths = [9, 1, 4, 2, 6]  # 1, 2 and 4 words: shorter than the widest filter (5)
    ids, lens = _ids_batch(lengths, pad_with_garbage=True)  # pads carry real word ids: they must not count
    with torch.no_grad():
        batched = model(ids, lens)
        for row, n in enumerate(lengths):
            alone = model(ids[row:row + 1, :n], torch.tensor([n]))  # no padding at all, even below the widest
            torch.testing.assert_close(batched[row], alone[0], rtol=1e-5, atol=1e-6)


def test_the_cnn_sees_order_within_a_window():
    torch.manual_seed(2)
    model = ConvolutionalClassifier(40, 2, embedding_dim=6, widths=[2], feature_maps=4).eval()
    ids, lengths = torch.tensor([[3, 9, 17, 5]]), torch.tensor([4])
    with torch.no_grad():
        assert not torch.allclose(model(ids, lengths), model(ids.flip(1), lengths))


def test_a_shuffle_depends_on_the_text_not_on_its_place_in_a_batch():
    ids, lengths = _ids_batch([6, 4, 8], seed=3)
    shuffled = shuffle_within_length(ids, lengths, seed=7)
    for row, n in enumerate(lengths.tolist()):
        assert sorted(shuffled[row, :n].tolist()) == sorted(ids[row, :n].tolist())  # the same words
        assert torch.equal(shuffled[row, n:], ids[row, n:])  # pads stay
    reordered = shuffle_within_length(ids.flip(0), lengths.flip(0), seed=7)
    assert torch.equal(reordered.flip(0), shuffled)
    assert not torch.equal(shuffle_within_length(ids, lengths, seed=8), shuffled)


def test_the_order_task_pairs_each_sentence_with_its_words_in_another_order():
    sentences = ["india will win the match", "the movie was good", "good good good", "a", "it was a fine film"]
    pairs = order_pairs(sentences, seed=5)
    assert pairs == order_pairs(sentences, seed=5) and pairs != order_pairs(sentences, seed=6)
    assert [label for _, label in pairs] == [1, 0] * 3  # balanced; no other order for "good good good" or "a"
    for (real, one), (other, zero) in zip(pairs[::2], pairs[1::2], strict=True):
        assert (one, zero) == (1, 0) and real in sentences
        assert sorted(real.split()) == sorted(other.split()) and real != other
    assert len(order_pairs(random.Random(0).sample(sentences, 5), seed=5)) == 6


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bag", "cnn"])
def test_the_baselines_train_and_log_their_shuffled_test_accuracy(model, tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [o for o in TINY if not o.startswith("model.")]  # the recurrent model's width: not these models'
    proc = run_module("rnnlab.train", tiny_project, *overrides, f"model={model}", "trainer.max_epochs=2",
                      "model.feature_maps=8" if model == "cnn" else "model.hidden_size=8", tracking_uri=uri)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and run.info.run_name == f"word2vec-{'bag-mean' if model == 'bag' else 'cnn'}-seed1234"
    assert 0 <= metrics["test_acc_shuffled"] <= 1
    assert metrics["test_order_drop"] == pytest.approx(metrics["test_acc"] - metrics["test_acc_shuffled"])
    with tempfile.TemporaryDirectory() as tmp:
        probe = json.loads(Path(client.download_artifacts(run.info.run_id, "examples.json", tmp)).read_text())
    scored = {row["text"]: row["probabilities"]["positive"] for row in probe["examples"]}
    assert set(scored) >= {"movie was good", "the movie was good", "good was the movie"}
    assert all(sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-3) for row in probe["examples"])
    # the tiny data's filler words are in the train split, the lecture's "good" is not (it is <unk> there)
    assert {"movie", "film", "the", "was"} <= set(probe["word_log_odds"]["words"]) and \
        "good" not in probe["word_log_odds"]["words"] and probe["word_log_odds"]["of"] == "positive against negative"
    if model == "bag":  # it cannot see order: shuffling the test texts changes none of its predictions
        assert metrics["test_acc_shuffled"] == metrics["test_acc"]
        assert scored["the movie was good"] == pytest.approx(scored["good was the movie"], abs=2e-4)
