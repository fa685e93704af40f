"""One-to-many generation (task=generate): the teacher-forced sequences and their loss, conditioning on the label,
<bos>/<eos> handling in sampling, a real `rnnlab-train experiment=generate` run read back from an SQLite MLflow
store with its judge's metrics and samples, the judge_run_id checks, and `rnnlab-generate label=...`."""

from __future__ import annotations

import csv
import functools
import math

import pytest
import torch
from conftest import run_train
from omegaconf import OmegaConf

from rnnlab.errors import ConfigError
from rnnlab.models.conditional_lm import ConditionalLanguageModel, special_ids
from rnnlab.tasks.generation import GenerateTask, teacher_forcing, token_loss

# The toy language of the conditioning test: label 0 texts start with A, label 1 texts with B, then 1-3 of C/D.
TOY_VOCAB = ["<pad>", "<unk>", "A", "B", "C", "D"]
A, B, C, D = 2, 3, 4, 5
SAMPLING = {"max_words": 6, "samples_per_label": 3, "strategy": "greedy", "temperature": 1.0, "top_k": 3,
            "seed": 0}


def _model(cell="lstm", num_layers=1, every_step=True, seed=0):
    torch.manual_seed(seed)
    return ConditionalLanguageModel(len(TOY_VOCAB), num_classes=2, embedding_dim=8, cell=cell, hidden_size=16,
                                    num_layers=num_layers, condition_dim=4, condition_every_step=every_step)


def _toy_batch(generator: torch.Generator, rows: int = 32) -> dict:
    labels = torch.randint(0, 2, (rows,), generator=generator)
    lengths = torch.randint(2, 5, (rows,), generator=generator)
    ids = torch.zeros(rows, int(lengths.max()), dtype=torch.long)
    for row in range(rows):
        ids[row, 0] = B if labels[row] else A
        ids[row, 1:lengths[row]] = torch.randint(C, D + 1, (int(lengths[row]) - 1,), generator=generator)
    return {"input_ids": ids, "lengths": lengths, "labels": labels}


def _task(model) -> GenerateTask:
    return GenerateTask(model, ["zero", "one"], judge=None, vocabulary=TOY_VOCAB, sampling=SAMPLING,
                        samples_path=None, optimizer=functools.partial(torch.optim.Adam, lr=0.02))


def test_teacher_forcing_puts_bos_before_and_eos_after_each_text():
    bos, eos = special_ids(10)
    assert (bos, eos) == (10, 11)
    ids = torch.tensor([[5, 6, 7], [8, 0, 0]])
    inputs, targets, mask = teacher_forcing(ids, torch.tensor([3, 1]), bos, eos)
    assert inputs.tolist() == [[bos, 5, 6, 7], [bos, 8, 0, 0]]
    assert targets.tolist() == [[5, 6, 7, eos], [8, eos, 0, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]


def test_the_loss_ignores_padded_positions_whatever_they_hold():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 9)
    targets = torch.randint(1, 9, (3, 5))
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2], [3]])
    total, tokens = token_loss(logits, targets, mask)
    expected = [-torch.log_softmax(logits[b, t], -1)[targets[b, t]] for b in range(3) for t in range(5) if mask[b, t]]
    assert tokens == len(expected) == 10
    assert float(total) == pytest.approx(float(sum(expected)), rel=1e-6)

    noisy_logits, noisy_targets = logits.clone(), targets.clone()
    noisy_logits[~mask] = torch.randn(int((~mask).sum()), 9) * 100
    noisy_targets[~mask] = torch.randint(0, 9, (int((~mask).sum()),))
    assert float(token_loss(noisy_logits, noisy_targets, mask)[0]) == pytest.approx(float(total), rel=1e-6)
    changed = logits.clone()
    changed[1, 1] += torch.randn(9) * 5  # a real position: the loss must move
    assert abs(float(token_loss(changed, targets, mask)[0]) - float(total)) > 1e-4


def test_extra_padding_columns_do_not_change_the_batch_loss():
    task = _task(_model(cell="gru", num_layers=2)).eval()
    batch = _toy_batch(torch.Generator().manual_seed(1), rows=6)
    wider = {**batch, "input_ids": torch.cat([batch["input_ids"], torch.zeros(6, 4, dtype=torch.long)], 1)}
    with torch.no_grad():
        assert float(task.batch_loss(wider)) == pytest.approx(float(task.batch_loss(batch)), rel=1e-6)


def test_each_layer_starts_from_its_own_slice_of_the_label_projection():
    model = _model(cell="lstm", num_layers=2, every_step=False).eval()
    labels = torch.tensor([0, 1])
    state = model.initial_state(labels)
    projected = torch.tanh(model.init_state(model.condition(labels))).view(2, 2, 16)  # [B, layer, H]
    for layer, (h, c) in enumerate(state):
        assert h.shape == c.shape == (1, 2, 16)
        assert torch.allclose(h[0], projected[:, layer]) and torch.count_nonzero(c) == 0
    assert not torch.allclose(state[0][0], state[1][0])
    with torch.no_grad():  # the label alone (through the state) changes what the first word is predicted to be
        logits, _ = model(torch.full((2, 1), model.bos_id), labels)
    assert (logits[0] - logits[1]).abs().max() > 1e-4


@pytest.fixture
def flush_denormals():
    """Train as `rnnlab-train` does: denormals flushed (conftest already keeps the test process on one thread, as
    `torch_threads=1`). Restored afterwards."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.mark.parametrize(("cell", "layers", "every_step"), [("rnn", 1, False), ("lstm", 2, False),
                                                           ("gru", 1, True)])
def test_training_makes_greedy_texts_start_with_their_labels_word(cell, layers, every_step, flush_denormals):
    task = _task(_model(cell=cell, num_layers=layers, every_step=every_step))
    optimizer = task.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    task.train()
    for _ in range(150):
        optimizer.zero_grad()
        task.batch_loss(_toy_batch(generator)).backward()
        optimizer.step()
    texts = task.generate(torch.tensor([0, 1, 0, 1]))
    assert [t[0] for t in texts] == [A, B, A, B], texts
    assert all(2 <= len(t) <= 4 and set(t[1:]) <= {C, D} for t in texts), texts  # and it stops, as taught


@pytest.mark.parametrize("strategy", ["greedy", "sample", "topk"])
def test_sampling_never_writes_pad_or_bos_and_stops_at_eos(strategy):
    model = _model(cell="gru")
    bos, eos = model.bos_id, model.eos_id
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 1])
    with torch.no_grad():
        model.decoder.bias[[0, bos]] = 50.0  # <pad> and <bos> are by far the most probable: still never written
        model.decoder.bias[eos] = -50.0
    texts = model.sample(labels, 5, strategy, 1.0, 3, generator)
    assert all(len(t) == 5 and not {0, bos, eos} & set(t) for t in texts), texts  # no <eos>: max_words words
    with torch.no_grad():
        model.decoder.bias[eos] = 100.0  # now <eos> wins as soon as it may: after the first word
    texts = model.sample(labels, 5, strategy, 1.0, 3, generator)
    assert [len(t) for t in texts] == [1, 1, 1] and all(t[0] not in (0, bos, eos) for t in texts), texts


def test_a_bidirectional_generator_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="model.bidirectional"):
        ConditionalLanguageModel(10, 2, bidirectional=True)


# --- a real run ---------------------------------------------------------------------------------------------

GENERATE_TINY = ["experiment=generate", "task.samples_per_label=4", "task.judge_epochs=6", "task.judge_lr=0.01",
                 "task.judge_hidden_size=16", "task.judge_embedding_dim=16", "optimizer.lr=0.01"]


@pytest.fixture(scope="module")
def generate_run(tiny_project, tmp_path_factory):
    """(tracking uri, client, run) of one tiny `rnnlab-train experiment=generate` run on the tiny project."""
    from rnnlab.tracking import runs

    tmp = tmp_path_factory.mktemp("generate_run")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    run_train(tiny_project, *GENERATE_TINY, f"hydra.run.dir={tmp / 'run'}", tracking_uri=uri)
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("generate-tiny").experiment_id])
    return uri, client, run


@pytest.mark.slow
def test_rnnlab_train_task_generate_logs_judged_samples(generate_run, tmp_path):
    _, client, run = generate_run
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.params["task.kind"] == "generate"
    assert metrics["test_ppl"] == pytest.approx(math.exp(metrics["test_loss"]), rel=1e-5)
    assert math.isfinite(metrics["best_val_ppl"])
    assert 0.6 < metrics["judge_test_acc"] <= 1  # the tiny data's polarity words: a judge well above chance
    for key in ("test_match_rate", "test_match_rate_negative", "test_match_rate_positive"):
        assert 0 <= metrics[key] <= 1, key
    assert {"config.yaml", "tokenizer.json", "samples.tsv", "checkpoints"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}

    path = client.download_artifacts(run.info.run_id, "samples.tsv", str(tmp_path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["label"] for r in rows].count("negative") == 4 == [r["label"] for r in rows].count("positive")
    assert all(0 <= float(r["p_label"]) <= 1 and 1 <= len(r["text"].split()) <= 15 for r in rows)
    assert not any(token in r["text"].split() for r in rows for token in ("<pad>", "<bos>", "<eos>"))
    # the logged rates are the share of these rows whose judged label is their condition
    assert metrics["test_match_rate"] == pytest.approx(sum(r["judged"] == r["label"] for r in rows) / 8)
    positives = [r for r in rows if r["label"] == "positive"]
    assert metrics["test_match_rate_positive"] == pytest.approx(
        sum(r["judged"] == "positive" for r in positives) / 4)
    # the judge's probability of the label agrees with its verdict (two labels: above 1/2 iff judged so)
    assert all((float(r["p_label"]) >= 0.5) == (r["judged"] == r["label"]) for r in rows
               if abs(float(r["p_label"]) - 0.5) > 1e-3)


@pytest.mark.slow
def test_rnnlab_generate_writes_for_a_label_and_names_the_labels_on_a_bad_one(generate_run, capsys):
    from rnnlab.generate import main as generate_main

    uri, _, run = generate_run
    base = [f"run_id={run.info.run_id}", f"tracking_uri={uri}"]
    texts = []
    for _ in range(2):
        generate_main([*base, "label=positive", "words=6", "strategy=topk", "seed=3"])
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and 1 <= len(texts[0].split()) <= 6  # seeded; stops at <eos> or 6 words
    assert "<eos>" not in texts[0] and "<bos>" not in texts[0]

    for bad, expected in (("label=neutral", "label='neutral' is not one of its labels"), (None, "give label=")):
        with pytest.raises(SystemExit) as exited:
            generate_main([*base, *([bad] if bad else [])])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        (line,) = err.splitlines()
        assert line.startswith("rnnlab: error:") and expected in line and "negative|positive" in line, err
        assert "Traceback" not in err


@pytest.mark.slow
def test_a_classify_run_judges_only_on_the_same_tokenizer(generate_run, tiny_project, monkeypatch):
    from rnnlab.config import compose
    from rnnlab.data.tokenization import build_tokenizer, load_tokenizer
    from rnnlab.tasks import build
    from rnnlab.tasks.judge import load_judge

    uri, client, generate = generate_run
    run_train(tiny_project, "model.cell=gru", tracking_uri=uri)  # a sentiment classifier (task=classify)
    (classify,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    monkeypatch.chdir(tiny_project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = compose(["data=tiny", "experiment=generate", "embedding=learned", "embedding.dim=8",
                   "model.hidden_size=8", f"task.judge_run_id={classify.info.run_id}"])
    built = build(cfg)
    judge = built.module.judge
    assert judge.source == f"run {classify.info.run_id}"
    assert built.module.judge.test_acc == pytest.approx(classify.data.metrics["test_acc"], abs=1e-6)

    tokenizer = load_tokenizer(tiny_project / "data/tiny/tokenized/tokenizer.json")
    other = build_tokenizer(["an entirely different vocabulary of words"], OmegaConf.create(
        {"min_frequency": 1, "max_vocab_size": 100}))
    with pytest.raises(ConfigError, match="another tokenizer"):
        load_judge(classify.info.run_id, cfg, other, ["negative", "positive"])
    with pytest.raises(ConfigError, match="not a sentiment classifier"):
        load_judge(generate.info.run_id, cfg, tokenizer, ["negative", "positive"])
    with pytest.raises(ConfigError, match="labels"):
        load_judge(classify.info.run_id, cfg, tokenizer, ["bad", "good"])


@pytest.mark.slow
def test_the_judge_is_scored_on_openings_as_long_as_the_texts_it_judges(tiny_project, monkeypatch):
    """The judge reads generated openings of at most task.max_words words: judge_test_acc is its accuracy on
    the real test reviews cut to that length (judge_test_acc_full: on whole reviews). Before, it was measured on
    whole reviews only, which says little about how it reads 3-word texts."""
    from datasets import load_from_disk

    from rnnlab.config import compose
    from rnnlab.tasks import build

    monkeypatch.chdir(tiny_project)
    cfg = compose(["data=tiny", *GENERATE_TINY, "task.max_words=3", "model.hidden_size=12", "embedding.dim=12"])
    judge = build(cfg).module.judge
    test = load_from_disk(str(tiny_project / cfg.paths.tokenized_dir / "data"))["test"]
    labels = torch.tensor(test["label"])
    assert max(len(ids) for ids in test["input_ids"]) > 3  # whole reviews are longer than the openings
    assert judge.test_acc == judge.accuracy(([ids[:3] for ids in test["input_ids"]], labels))
    assert judge.test_acc_full == judge.accuracy((list(test["input_ids"]), labels))
