"""The judge of the generation task (tasks/generation.py): a sentiment classifier that reads the generated texts.

It is the classify run `task.judge_run_id` (same tokenizer, same labels), or, when that is null, a small
bidirectional GRU SequenceClassifier trained first on the same train split (task.judge_*), seeded and under its
own random streams, so that it does not change the generator's training."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from rnnlab.data.batching import pad_batch, truncate
from rnnlab.data.datamodule import ClassificationDataModule
from rnnlab.errors import ConfigError
from rnnlab.models.classifier import SequenceClassifier
from rnnlab.random_state import kept_random_state
from rnnlab.tasks import load_run
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tracking import runs


@dataclass
class Judge:
    """A sentiment classifier over the generator's tokenizer ids (a plain object, not a submodule: it is not
    trained with, nor saved in, the generator's checkpoint)."""
    model: nn.Module
    labels: list[str]
    max_length: int | None
    truncation_side: str = "head"
    test_acc: float = float("nan")  # on test openings as long as the texts it judges
    test_acc_full: float = float("nan")  # on whole test texts
    source: str = "trained here"
    train_seconds: float = 0.0  # 0 for a judge loaded from a run

    def probabilities(self, texts: list[list[int]], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities [N, classes] of token-id texts (truncated as the judge was trained)."""
        device = next(self.model.parameters()).device
        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                chunk = [torch.tensor(truncate(list(t), self.max_length, self.truncation_side))
                         for t in texts[start:start + batch_size]]
                ids, lengths = pad_batch(chunk)
                out.append(torch.softmax(self.model(ids.to(device), lengths.to(device)), -1).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.labels))

    def accuracy(self, split) -> float:
        """Accuracy on (texts, labels)."""
        texts, labels = split
        return float((self.probabilities(texts).argmax(-1) == labels).float().mean())


def load_split(tokenized_dir: Path, split: str) -> tuple[list[list[int]], torch.Tensor]:
    """(texts as id lists, labels) of one split of the tokenized data set."""
    from datasets import load_from_disk

    rows = load_from_disk(str(tokenized_dir / "data"))[split]
    return list(rows["input_ids"]), torch.tensor(rows["label"], dtype=torch.long)


def train_judge(cfg, tokenized_dir: Path, vocab_size: int, labels: list[str]) -> Judge:
    """A 1-layer bidirectional GRU classifier trained task.judge_epochs epochs on the train split (seeded)."""
    task_cfg = cfg.task
    epochs = task_cfg.get("judge_epochs", 3)
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"task.judge_epochs={epochs!r} must be a whole number, at least 1 (or set "
                          "task.judge_run_id to a trained classify run)")
    seed = int(task_cfg.get("judge_seed", cfg.seed))
    with kept_random_state(seed):
        datamodule = ClassificationDataModule.from_config(cfg.data, tokenized_dir, seed)
        model = SequenceClassifier(vocab_size, len(labels), embedding_dim=task_cfg.get("judge_embedding_dim", 64),
                                   cell="gru", hidden_size=task_cfg.get("judge_hidden_size", 64), num_layers=1,
                                   bidirectional=True, embedding_dropout=0.3, output_dropout=0.3)
        task = ClassifyTask(model, len(labels),
                            optimizer=functools.partial(torch.optim.Adam, lr=task_cfg.get("judge_lr", 0.003)))
        trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             deterministic=True, gradient_clip_val=1.0, limit_val_batches=0,
                             num_sanity_val_steps=0)
        start = time.perf_counter()
        trainer.fit(task, datamodule=datamodule)
    return Judge(model.eval(), labels, cfg.data.max_length, cfg.data.truncation_side,
                 source=f"trained here ({epochs} epochs)", train_seconds=time.perf_counter() - start)


def same_vocabulary(a, b) -> bool:
    return a.get_vocab() == b.get_vocab()


def load_judge(run_id: str, cfg, tokenizer, labels: list[str]) -> Judge:
    """The classifier of a finished task=classify run, refused unless its tokenizer and labels are this run's."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    model, judge_tokenizer, config = load_run(run_id, runs.tracking_uri(cfg.logger))
    kind = config.task.get("kind", "classify")
    if kind != "classify":
        raise ConfigError(f"task.judge_run_id={run_id} is a task.kind={kind} run, not a sentiment classifier: "
                          "give a finished task=classify run, or null to train a judge here")
    if not same_vocabulary(judge_tokenizer, tokenizer):
        raise ConfigError(f"task.judge_run_id={run_id} was trained with another tokenizer (its vocabulary differs "
                          f"from {cfg.paths.tokenized_dir}/tokenizer.json): its ids would mean other words; give "
                          "a classify run on this data set's tokenizer, or null to train a judge here")
    judge_labels = [str(label) for label in config.data.labels]
    if judge_labels != labels:
        raise ConfigError(f"task.judge_run_id={run_id} predicts labels {judge_labels}, not data.labels={labels}: "
                          "give a classify run on the same labels, or null to train a judge here")
    return Judge(model, labels, config.data.get("max_length"), config.data.get("truncation_side", "head"),
                 source=f"run {run_id}")
