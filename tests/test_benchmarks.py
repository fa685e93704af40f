"""Smoke runs of the speed benchmarks' core functions at tiny sizes: both variants come out with a positive ratio,
and masking equals packing numerically. Never timings: the machine is shared."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import padding  # noqa: E402
import training_step  # noqa: E402


def tiny_sequences(count=40, vocab=50, seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 30, (count,), generator=generator)
    sequences = [torch.randint(1, vocab, (int(n),), generator=generator) for n in lengths]
    return sequences, torch.randint(0, 2, (count,), generator=generator)


def test_padding_measures_four_variants_and_masking_equals_packing():
    sequences, labels = tiny_sequences()
    result = padding.measure(sequences, labels, vocab_size=50, batch_size=4, pool_batches=5, seed=3,
                             embedding_dim=6, hidden_size=8, rounds=2, warmup=1, report=lambda *a, **k: None)
    assert set(result["variants"]) == {"a", "b", "c", "d"}
    pool = np.random.default_rng([3, 0]).permutation(len(sequences))[:20]  # S: the sampler's first pool, 5 x 4
    assert result["real_tokens"] == sum(len(sequences[i]) for i in pool)
    for variant in result["variants"].values():
        assert variant["tokens_per_sec"] > 0 and variant["vs_a"] > 0 and len(variant["seconds"]) == 2
    # bucketing never pads more than random batches of the same sequences
    assert result["variants"]["d"]["padding_fraction"] <= result["variants"]["b"]["padding_fraction"]
    for diffs in result["equality_max_abs_diff"].values():
        assert max(v for k, v in diffs.items() if k != "largest_gradient") < 1e-5
    assert "(d) bucketed + masking" in padding.markdown(result)


@pytest.mark.parametrize("cell,layers,bidirectional", [("lstm", 2, True), ("gru", 1, True), ("rnn", 2, False)])
def test_packed_classifier_with_the_same_weights_computes_the_same_function(cell, layers, bidirectional):
    sequences, labels = tiny_sequences(count=12, seed=1)
    batches = padding.make_batches(sequences, labels, batch_size=4, pool_batches=3, seed=0)
    masked = padding.make_masked(50, 6, 7, layers, bidirectional, cell=cell, seed=2)
    for kind in ("random", "bucketed"):
        diffs = padding.compare(masked, batches[kind])
        assert max(v for k, v in diffs.items() if k != "largest_gradient") < 1e-5, (kind, diffs)


@pytest.mark.slow
def test_training_step_runs_project_and_plain_on_the_same_batches(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    monkeypatch.setenv("RNNLAB_CONF_DIR", str(tiny_project / "conf"))
    results = training_step.measure(
        ["data=tiny", "embedding=word2vec", "model.hidden_size=12", "embedding.dim=12"],
        {"lstm-2l-bi": training_step.MODELS["lstm-2l-bi"]}, rounds=2, batches=2, warmup=1, logger="none",
        base=(), ablations=True, report=lambda *a, **k: None)
    (result,) = results
    assert set(result["sides"]) == {"project", "plain", *training_step.ABLATIONS}
    assert all(len(seconds) == 2 for seconds in result["seconds"].values())
    assert result["ratio"] > 0 and result["project_tokens_per_sec"] > 0 and result["plain_tokens_per_sec"] > 0
    assert result["same_batches"] and result["real_tokens"] > 0
    assert result["loss_max_abs_diff"] < 1e-4  # the same model, batches and dropout masks on both sides
    assert not torch.are_deterministic_algorithms_enabled()  # the Trainer's process-wide flag was put back
    assert "lstm-2l-bi" in training_step.markdown(results)


def test_word2vec_benchmark_builds_both_variants_and_one_worker_repeats_exactly(tiny_project, monkeypatch):
    import word2vec_workers
    from datasets import load_from_disk

    from rnnlab.data.tokenization import load_tokenizer
    from rnnlab.pipeline import stage_config

    monkeypatch.chdir(tiny_project)
    monkeypatch.setenv("RNNLAB_CONF_DIR", str(tiny_project / "conf"))
    cfg = stage_config(["data=tiny", "embedding=word2vec", "embedding.dim=8"])
    tokenizer = load_tokenizer(tiny_project / "data/tiny/tokenized/tokenizer.json")
    texts = load_from_disk(str(tiny_project / "data/tiny/prepared/data"))["train"]["text"]
    result = word2vec_workers.measure(cfg.embedding, tokenizer, texts, rounds=2)
    assert result["workers"][1]["repeats_exactly"]  # the default: the same bytes on every build
    assert all(len(v["seconds"]) == 2 and min(v["seconds"]) > 0 for v in result["workers"].values())
    assert "builds identical" in word2vec_workers.markdown(result, "tiny")
