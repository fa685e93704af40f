"""Many-to-one: classify a whole sequence (sentiment). Accuracy and macro-F1 with torchmetrics. The test split is
also scored with each text's words shuffled (data/word_order.py): test_acc_shuffled, and test_order_drop =
test_acc - test_acc_shuffled, what the model's score owes to word order."""

from __future__ import annotations

from pathlib import Path

import torchmetrics
from torch import nn

from rnnlab.data.conventions import UNK_ID
from rnnlab.data.datamodule import ClassificationDataModule
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.errors import ConfigError
from rnnlab.io import write_json
from rnnlab.tasks.base import Built, TaskModule, input_layer, run_output_dir

EXAMPLES_FILE = "examples.json"
MODEL_EXAMPLE = "a touching , funny and beautifully acted film"  # the MLflow model's input example


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
    module = ClassifyTask(model, num_classes, optimizer=instantiate(cfg.optimizer),
                          shuffled_test_seed=cfg.task.get("shuffled_test_seed"))
    artifacts = [tokenized_dir / "tokenizer.json"]
    if cfg.task.get("examples"):  # the lecture's sentences, scored by the tested checkpoint (examples.json)
        module.probe = Probe(list(cfg.task.examples), tokenizer, cfg.data, datamodule.splits["train"],
                             run_output_dir() / EXAMPLES_FILE)
        artifacts.append(module.probe.path)
    return Built(datamodule, module, artifacts)


def classify_texts(model, tokenizer, data_cfg, texts: list[str]) -> list[dict]:
    """Label and class probabilities of each text, truncated as in training (`rnnlab-predict`, examples.json)."""
    import torch

    from rnnlab.data.batching import pad_batch, truncate

    ids = [torch.tensor(truncate(tokenizer.encode(text).ids, data_cfg.max_length, data_cfg.truncation_side))
           for text in texts]
    if any(len(row) == 0 for row in ids):
        raise ConfigError("an empty text cannot be classified: give at least one word per text")
    input_ids, lengths = pad_batch(ids)
    device = next(model.parameters()).device
    with torch.no_grad():
        probs = torch.softmax(model(input_ids.to(device), lengths.to(device)), dim=-1).cpu()
    labels = list(data_cfg.labels)
    return [{"text": text, "label": labels[int(p.argmax())],
             "probabilities": {str(name): round(float(v), 4) for name, v in zip(labels, p, strict=True)}}
            for text, p in zip(texts, probs, strict=True)]


def model_example(config) -> tuple[str, dict | None]:
    """The MLflow model's input example and params (tasks/mlflow_model.py)."""
    return MODEL_EXAMPLE, None


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """The MLflow model's output: `label` and `p_<label>` per class, a row per text."""
    return [{"label": row["label"], **{f"p_{name}": p for name, p in row["probabilities"].items()}}
            for row in classify_texts(model, tokenizer, config.data, texts)]


def word_log_odds(train, tokenizer, words: list[str], labels: list[str]) -> dict[str, float]:
    """Each word's log-odds of the last label against the first in the train split, add-one smoothed:
    log[(n_last(w) + 1) / (N_last + V)] - log[(n_first(w) + 1) / (N_first + V)], counting texts' tokens.
    What a model learned a word means, in the data's own numbers ("movie" against "film")."""
    import math
    from collections import Counter

    counts = {0: Counter(), len(labels) - 1: Counter()}
    for ids, label in zip(train.ids, train.labels.tolist(), strict=True):
        if label in counts:
            counts[label].update(ids.tolist())
    vocabulary = tokenizer.get_vocab_size()
    totals = {label: sum(c.values()) for label, c in counts.items()}
    found = {}
    for word in words:
        encoded = tokenizer.encode(word).ids
        if len(encoded) != 1 or encoded[0] == UNK_ID:  # a word the train split never had: no odds to give
            continue
        token = encoded[0]
        first, last = 0, len(labels) - 1
        found[word] = round(math.log((counts[last][token] + 1) / (totals[last] + vocabulary))
                            - math.log((counts[first][token] + 1) / (totals[first] + vocabulary)), 4)
    return found


class Probe:
    """Fixed sentences scored by the tested checkpoint, with their words' log-odds in the train split."""

    def __init__(self, texts: list[str], tokenizer, data_cfg, train, path: Path):
        self.texts, self.tokenizer, self.data_cfg, self.path = texts, tokenizer, data_cfg, path
        labels = [str(label) for label in data_cfg.labels]
        words = sorted({word for text in texts for word in text.lower().split()})
        self.log_odds = {"of": f"{labels[-1]} against {labels[0]}",
                         "words": word_log_odds(train, tokenizer, words, labels)}

    def write(self, model) -> None:
        write_json(self.path, {"examples": classify_texts(model, self.tokenizer, self.data_cfg, self.texts),
                               "word_log_odds": self.log_odds})


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(config.data.labels),
                       **input_layer(config.embedding))


class ClassifyTask(TaskModule):
    validation_metrics = ("val_loss", "val_acc", "val_f1")
    data_parallel = True  # torchmetrics gather across processes; the loss is averaged with sync_dist

    def __init__(self, model: nn.Module, num_classes: int, optimizer, scheduler=None,
                 shuffled_test_seed: int | None = None):
        super().__init__(model, optimizer, scheduler)
        self.shuffled_test_seed = shuffled_test_seed
        self.probe: Probe | None = None
        self.loss = nn.CrossEntropyLoss()
        metrics = torchmetrics.MetricCollection({
            "acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes),
            "f1": torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro"),
        })
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        self.shuffled_metrics = torchmetrics.MetricCollection(
            {"acc_shuffled": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)}, prefix="test_")

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
        if self.shuffled_test_seed is not None:
            from rnnlab.data.word_order import shuffle_within_length

            shuffled = shuffle_within_length(batch["input_ids"], batch["lengths"], self.shuffled_test_seed)
            self.shuffled_metrics.update(self.model(shuffled, batch["lengths"]).argmax(-1), batch["labels"])

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
        scores = self._log_metrics("test")
        if self.shuffled_test_seed is not None:
            shuffled = self.shuffled_metrics.compute()
            self.shuffled_metrics.reset()
            self.log_dict({**shuffled, "test_order_drop": scores["test_acc"] - shuffled["test_acc_shuffled"]})
        if self.probe is not None and self.trainer.is_global_zero:
            self.probe.write(self.model)
