"""Many-to-one: classify a whole sequence (sentiment). Accuracy and macro-F1 with torchmetrics."""

from __future__ import annotations

from pathlib import Path

import torchmetrics
from torch import nn

from rnnlab.data.datamodule import ClassificationDataModule
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.tasks.base import Built, TaskModule, input_layer


def build(cfg) -> Built:
    from hydra.utils import instantiate

    tokenized_dir = Path(cfg.paths.tokenized_dir)
    datamodule = ClassificationDataModule.from_config(cfg.data, tokenized_dir, cfg.seed)
    datamodule.setup()
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    num_classes = len(cfg.data.labels)
    vocab_size = tokenizer.get_vocab_size()
    model = instantiate(cfg.model, vocab_size=vocab_size, num_classes=num_classes,
                        **input_layer(cfg.embedding, cfg.paths.embeddings_dir, vocab_size))
    module = ClassifyTask(model, num_classes, optimizer=instantiate(cfg.optimizer))
    return Built(datamodule, module, [tokenized_dir / "tokenizer.json"])


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(config.data.labels),
                       **input_layer(config.embedding))


class ClassifyTask(TaskModule):
    validation_metrics = ("val_loss", "val_acc", "val_f1")
    data_parallel = True  # torchmetrics gather across processes; the loss is averaged with sync_dist

    def __init__(self, model: nn.Module, num_classes: int, optimizer, scheduler=None):
        super().__init__(model, optimizer, scheduler)
        self.loss = nn.CrossEntropyLoss()
        metrics = torchmetrics.MetricCollection({
            "acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes),
            "f1": torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro"),
        })
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def forward(self, batch):
        return self.model(batch["input_ids"], batch["lengths"])

    def batch_loss(self, batch):
        return self.loss(self(batch), batch["labels"])

    def _step(self, batch, stage: str):
        logits = self(batch)
        loss = self.loss(logits, batch["labels"])
        getattr(self, f"{stage}_metrics").update(logits.argmax(-1), batch["labels"])
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["labels"]),
                 sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        self.count_tokens(int(batch["lengths"].sum()), batch["input_ids"].numel())
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

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
