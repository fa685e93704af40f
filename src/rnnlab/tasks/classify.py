"""Many-to-one: classify a whole sequence (sentiment). Accuracy and macro-F1 with torchmetrics."""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torchmetrics
from torch import nn


class ClassifyTask(pl.LightningModule):
    def __init__(self, model: nn.Module, num_classes: int, optimizer, name: str = "sentiment"):
        super().__init__()
        self.name = name
        self.model = model
        self.optimizer_factory = optimizer  # a functools.partial from hydra (`_partial_: true`)
        self.loss = nn.CrossEntropyLoss()
        metrics = torchmetrics.MetricCollection({
            "acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes),
            "f1": torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro"),
        })
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        self.best_val_acc = 0.0
        self.train_tokens = 0  # real tokens trained on
        self.train_slots = 0  # tokens + padding: what the kernels actually computed
        self.train_seconds = 0.0
        self._batch_start = 0.0

    def forward(self, batch):
        return self.model(batch["input_ids"], batch["lengths"])

    def _step(self, batch, stage: str):
        logits = self(batch)
        loss = self.loss(logits, batch["labels"])
        getattr(self, f"{stage}_metrics").update(logits.argmax(-1), batch["labels"])
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["labels"]))
        return loss

    def training_step(self, batch, batch_idx):
        self.train_tokens += int(batch["lengths"].sum())
        self.train_slots += batch["input_ids"].numel()
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _log_metrics(self, stage: str) -> dict:
        values = getattr(self, f"{stage}_metrics").compute()
        self.log_dict(values)
        getattr(self, f"{stage}_metrics").reset()
        return values

    # Time only the optimisation steps, so tokens per second is not diluted by validation.
    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._batch_start

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        values = self._log_metrics("val")
        if not self.trainer.sanity_checking:
            self.best_val_acc = max(self.best_val_acc, float(values["val_acc"]))

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def configure_optimizers(self):
        return self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
