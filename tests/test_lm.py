"""Next-word prediction (task=lm): BPTT batching, the carried and detached state, perplexity over a split,
seeded generation, and a real `rnnlab-train experiment=lm` run read back from an SQLite MLflow store."""

from __future__ import annotations

import functools
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import make_text_project, run_module
from torch.nn import functional as F

from rnnlab.data.bptt import LanguageModelDataModule, batchify
from rnnlab.generate import render
from rnnlab.models.language_model import LanguageModel
from rnnlab.models.sampling import choose_one, continue_prompt
from rnnlab.tasks.lm import HoldThenDecay, LanguageModelTask

WORDS = "the a cat dog bird sat ran flew on under over mat rug tree quickly".split()
EOS_ID = 2
# A run of seconds: 2 x 16 LSTM, 2 epochs, lr halved after the first (so the schedule shows in the lr history).
LM_TINY = ["experiment=lm", "data=tinylm", "data.bptt=7", "model.hidden_size=16", "embedding.dim=16",
           "trainer.max_epochs=2", "task.decay_after_epochs=1", "torch_threads=1"]


def _sentence(rng: random.Random) -> str:
    """determiner noun verb [preposition determiner object] [adverb]: a language a tiny LSTM learns fast."""
    words = [rng.choice(["the", "a"]), rng.choice(["cat", "dog", "bird"]), rng.choice(["sat", "ran", "flew"])]
    if rng.random() < 0.7:
        words += [rng.choice(["on", "under", "over"]), rng.choice(["the", "a"]), rng.choice(["mat", "rug", "tree"])]
    if rng.random() < 0.3:
        words.append("quickly")
    return " ".join(words)


@pytest.fixture(scope="module")
def lm_project(tmp_path_factory) -> Path:
    """conf/ plus conf/data/tinylm.yaml, with the tiny corpus fetched, prepared and tokenized by the stage code."""
    root = tmp_path_factory.mktemp("lm_project")
    rng = {split: random.Random(seed) for split, seed in (("train", 0), ("validation", 1), ("test", 2))}
    lines = {"train": 240, "validation": 40, "test": 40}
    make_text_project(root, "tinylm", {split: [_sentence(rng[split]) for _ in range(n)] for split, n in lines.items()})
    return root


def _tokenized(project: Path) -> Path:
    return project / "data/tinylm/tokenized"


def _stream(project: Path, split: str) -> list[int]:
    """The split's ids with <eos> after every line, computed here independently of rnnlab.data.bptt."""
    from datasets import load_from_disk

    lines = load_from_disk(str(_tokenized(project) / "data"))[split]["input_ids"]
    return [token for line in lines for token in [*line, EOS_ID]]


def _datamodule(project: Path, batch_size=4, bptt=5, eval_batch_size=3) -> LanguageModelDataModule:
    dm = LanguageModelDataModule(str(_tokenized(project)), batch_size=batch_size, bptt=bptt,
                                 eval_batch_size=eval_batch_size)
    dm.setup()
    return dm


def _model(vocab_size: int, init_range: float = 0.1, cell: str = "lstm") -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(vocab_size, embedding_dim=8, cell=cell, hidden_size=8, num_layers=2, init_range=init_range)


def _vocab_size(project: Path) -> int:
    from rnnlab.data.tokenization import load_tokenizer

    return load_tokenizer(_tokenized(project) / "tokenizer.json").get_vocab_size()


def test_batchify_cuts_contiguous_rows_and_drops_the_remainder():
    rows = batchify(torch.arange(11), 3)
    assert rows.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_each_row_of_window_k_plus_1_continues_window_k(lm_project):
    dm = _datamodule(lm_project, batch_size=4, bptt=5, eval_batch_size=3)
    for split, loader, rows in (("train", dm.train_dataloader(), 4), ("test", dm.test_dataloader(), 3)):
        stream = _stream(lm_project, split)
        per_row = len(stream) // rows
        windows = list(loader)  # in the loader's order: never shuffled
        assert len(windows) == math.ceil((per_row - 1) / 5) > 3
        assert all(w["input_ids"].shape == (rows, 5) for w in windows[:-1])
        for before, after in zip(windows, windows[1:], strict=False):
            # the next window starts with the word the previous one was asked to predict last
            assert torch.equal(after["input_ids"][:, 0], before["targets"][:, -1])
        inputs = torch.cat([w["input_ids"] for w in windows], dim=1)
        targets = torch.cat([w["targets"] for w in windows], dim=1)
        for b in range(rows):
            row = stream[b * per_row:(b + 1) * per_row]
            assert inputs[b].tolist() == row[:-1], (split, b)
            assert targets[b].tolist() == row[1:], (split, b)


def test_the_state_is_carried_to_the_next_window_but_detached(lm_project):
    dm = _datamodule(lm_project)
    first, second = dm.windows["train"][0], dm.windows["train"][1]
    model = _model(_vocab_size(lm_project), init_range=0.5)
    task = LanguageModelTask(model, optimizer=functools.partial(torch.optim.SGD, lr=1.0))
    task.on_train_epoch_start()
    task.training_step(first, 0)  # no backward: window 0's graph stays alive, so a leak would reach it
    carried = task.states["train"]
    assert all(t.grad_fn is None and not t.requires_grad for layer in carried for t in layer)
    restart = [tuple(t.clone() for t in layer) for layer in carried]

    task.training_step(second, 1).backward()
    through_task = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    logits, _ = model(second["input_ids"], restart)
    F.cross_entropy(logits.flatten(0, 1), second["targets"].flatten()).backward()
    for name, param in model.named_parameters():
        assert torch.allclose(through_task[name], param.grad, atol=1e-7), name  # nothing from window 0

    with torch.no_grad():  # and the carried state matters: window 1 from zeros predicts differently
        from_zeros, _ = model(second["input_ids"])
        from_carried, _ = model(second["input_ids"], restart)
    assert (from_zeros - from_carried).abs().max() > 1e-3
    task.on_train_epoch_start()
    assert task.states["train"] is None  # a new epoch starts from zeros


def test_test_ppl_is_exp_of_the_mean_token_loss_over_the_whole_split(lm_project):
    import pytorch_lightning as pl

    dm = _datamodule(lm_project, bptt=6, eval_batch_size=3)
    model = _model(_vocab_size(lm_project), init_range=1.0)  # large weights: windows differ, state matters
    task = LanguageModelTask(model, optimizer=functools.partial(torch.optim.SGD, lr=1.0))
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.test(task, datamodule=dm, verbose=False)
    logged = float(trainer.callback_metrics["test_ppl"])

    stream = torch.tensor(_stream(lm_project, "test"))
    rows = stream[:len(stream) // 3 * 3].view(3, -1)
    with torch.no_grad():  # one pass over each whole row = windows with the state carried between them
        logits, _ = model.eval()(rows[:, :-1])
        losses = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), reduction="none")
    expected = math.exp(losses.mean().item())
    assert logged == pytest.approx(expected, rel=1e-5)
    assert float(trainer.callback_metrics["test_loss"]) == pytest.approx(losses.mean().item(), rel=1e-5)
    # the comparison can fail: the mean of per-window perplexities is a different number
    per_window = losses.view(3, -1).split(6, dim=1)
    assert abs(sum(math.exp(w.mean().item()) for w in per_window) / len(per_window) - expected) > 1e-3 * expected


def test_test_acc_is_the_share_of_next_tokens_ranked_first_over_the_whole_split(lm_project):
    import pytorch_lightning as pl

    dm = _datamodule(lm_project, batch_size=4, bptt=6, eval_batch_size=3)
    model = _model(_vocab_size(lm_project))
    task = LanguageModelTask(model, optimizer=functools.partial(torch.optim.Adam, lr=0.03))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(task, datamodule=dm)
    assert {"train_acc", "val_acc"} <= set(trainer.callback_metrics)
    trainer.test(task, datamodule=dm, verbose=False)
    logged = float(trainer.callback_metrics["test_acc"])

    stream = torch.tensor(_stream(lm_project, "test"))
    rows = stream[:len(stream) // 3 * 3].view(3, -1)
    with torch.no_grad():  # every next-token position of the split, the state carried along each row
        logits, _ = model.eval()(rows[:, :-1])
    targets = rows[:, 1:]
    correct = int((logits.argmax(-1) == targets).sum())
    assert round(logged * targets.numel()) == correct and logged == pytest.approx(correct / targets.numel())
    # a trained model: better than always naming the split's most frequent next token
    assert correct > int(torch.bincount(targets.flatten()).max())


def test_generation_is_repeatable_with_a_seed(lm_project):
    from rnnlab.data.tokenization import load_tokenizer

    tokenizer = load_tokenizer(_tokenized(lm_project) / "tokenizer.json")
    model = _model(tokenizer.get_vocab_size(), init_range=1.0).eval()
    sample = functools.partial(continue_prompt, model, tokenizer, "the cat", words=25, strategy="sample")
    assert sample(seed=0) == sample(seed=0)
    assert sample(seed=0) != sample(seed=1)
    greedy = functools.partial(continue_prompt, model, tokenizer, "the cat", words=25, strategy="greedy")
    assert greedy(seed=0) == greedy(seed=1)
    assert continue_prompt(model, tokenizer, "the cat", words=25, strategy="topk", top_k=1, seed=5) == greedy(seed=0)
    assert all("<pad>" not in sample(seed=seed) for seed in range(5))


def test_topk_samples_only_among_the_k_most_probable_words_and_never_padding():
    logits = torch.tensor([9.0, 0.0, 1.0, 3.0, 2.9, 2.8, 2.7])  # <pad> (id 0) would be the most probable
    generator = torch.Generator().manual_seed(0)
    chosen = {choose_one(logits, "topk", 1.0, 3, generator) for _ in range(200)}
    assert chosen == {3, 4, 5}
    assert choose_one(logits, "greedy", 1.0, 3, generator) == 3
    assert render("the cat", ["sat", "<eos>", "a", "dog"]) == "the cat sat\na dog"


def test_lr_is_held_then_halved_every_epoch():
    assert [HoldThenDecay(0.5, 4)(epoch) for epoch in range(7)] == [1, 1, 1, 1, 0.5, 0.25, 0.125]


@pytest.mark.slow
def test_rnnlab_train_experiment_lm_then_generate_from_the_run(lm_project, tmp_path, capsys):
    from rnnlab.generate import main as generate_main
    from rnnlab.tracking import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_module("rnnlab.train", lm_project, *LM_TINY, f"hydra.run.dir={tmp_path / 'run'}", tracking_uri=uri)
    assert proc.returncode == 0, proc.stderr[-5000:]
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lm-tinylm").experiment_id])
    metrics, run_id = run.data.metrics, run.info.run_id
    assert run.info.status == "FINISHED"
    assert math.isfinite(metrics["test_ppl"]) and metrics["test_ppl"] == pytest.approx(math.exp(metrics["test_loss"]))
    assert metrics["best_val_ppl"] < len(WORDS) + 1  # better than guessing uniformly among the words and <eos>
    assert [m.value for m in client.get_metric_history(run_id, "lr")] == [1.0, 0.5]
    assert len(client.get_metric_history(run_id, "train_ppl")) == 2
    assert len(client.get_metric_history(run_id, "val_acc")) == 2 and 0 < metrics["test_acc"] <= 1
    assert run.data.params["model.cell"] == "lstm" and run.data.params["data.bptt"] == "7"

    args = ["prompt=the cat zebra", "words=12", "strategy=sample", "seed=3", f"tracking_uri={uri}"]
    by_run = run_module("rnnlab.generate", lm_project, f"run_id={run_id}", *args, tracking_uri=uri)
    assert by_run.returncode == 0, by_run.stderr
    text = by_run.stdout
    assert text.startswith("the cat zebra ") and len(text.split()) + text.count("\n") - 1 == 3 + 12  # <eos> = line break
    assert set(text.split()[3:]) <= set(WORDS) | {"<unk>"}
    assert "zebra" in by_run.stderr  # told that the unknown word is read as <unk>

    client.create_registered_model("tiny-lm")
    client.create_model_version("tiny-lm", f"runs:/{run_id}/checkpoints", run_id=run_id)
    capsys.readouterr()
    generate_main(["model=models:/tiny-lm/1", *args])  # in this process: one interpreter start less
    assert capsys.readouterr().out == by_run.stdout  # the registered version's run, same seed: same words

    predicted = run_module("rnnlab.predict", lm_project, f"run_id={run_id}", "text=the cat", f"tracking_uri={uri}",
                     tracking_uri=uri)  # a language model is not a classifier: one clear error
    assert predicted.returncode == 2 and "rnnlab-generate" in predicted.stderr
    assert "Traceback" not in predicted.stderr


@pytest.mark.slow
def test_a_bidirectional_language_model_is_one_clear_error(lm_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_module("rnnlab.train", lm_project, *LM_TINY, "model.bidirectional=true", f"hydra.run.dir={tmp_path}",
                tracking_uri=uri)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rnnlab: error:")]
    assert len(errors) == 1 and "model.bidirectional" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_tied_weights_of_different_sizes_are_one_clear_error(lm_project, monkeypatch, capsys):
    from rnnlab.config import compose
    from rnnlab.errors import exit_on_user_error
    from rnnlab.tasks import build

    monkeypatch.chdir(lm_project)
    cfg = compose([*LM_TINY, "model.tie_weights=true", "embedding.dim=8"])
    with pytest.raises(SystemExit) as exited:
        exit_on_user_error(build)(cfg)  # what rnnlab-train does with a user error
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("rnnlab: error: model.tie_weights=true") and "embedding.dim (8) must equal " \
        "model.hidden_size (16)" in line
    build(compose([*LM_TINY, "model.tie_weights=true", "embedding.dim=16"]))  # equal sizes: fine
