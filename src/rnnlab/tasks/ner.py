"""Many-to-many, aligned: named-entity tagging. Entity-level micro precision / recall / F1 and per-type F1 with
seqeval (conlleval's definition), and a tag confusion table logged with the run."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rnnlab.data.case import case_id
from rnnlab.data.tokenization import load_tokenizer, word_id
from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Built, TaskModule, input_layer


def build(cfg) -> Built:
    from hydra.utils import instantiate

    from rnnlab.data.tagging import TaggingDataModule

    tokenized_dir = Path(cfg.paths.tokenized_dir)
    use_chars = bool(cfg.model.get("char_filters", 0) and cfg.model.get("char_dim", 0))
    datamodule = TaggingDataModule(str(tokenized_dir), batch_size=cfg.data.batch_size,
                                   eval_batch_size=cfg.data.eval_batch_size, pool_batches=cfg.data.pool_batches,
                                   num_workers=cfg.data.num_workers, seed=cfg.seed, use_chars=use_chars)
    datamodule.setup()
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    vocab_size = tokenizer.get_vocab_size()
    model = instantiate(cfg.model, vocab_size=vocab_size, num_tags=len(datamodule.tags),
                        num_chars=len(datamodule.chars),
                        **input_layer(cfg.embedding, cfg.paths.embeddings_dir, vocab_size))
    module = TagTask(model, datamodule.tags, optimizer=instantiate(cfg.optimizer))
    files = [tokenized_dir / name for name in ("tokenizer.json", "tags.json", "chars.json")]
    return Built(datamodule, module, files)


def model_for_run(config, tokenizer, files: Path):
    import json

    from hydra.utils import instantiate

    tags = json.loads((files / "tags.json").read_text())
    chars = json.loads((files / "chars.json").read_text())
    model = instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), num_tags=len(tags),
                        num_chars=len(chars), **input_layer(config.embedding))
    model.tag_names, model.char_vocabulary = tags, {ch: i for i, ch in enumerate(chars)}  # what `tag` needs
    return model


def tag(model, tokenizer, sentences: list[list[str]]) -> list[list[str]]:
    """The predicted tag of every word of each (already split) sentence, decoded as in evaluation."""
    from rnnlab.data.tagging import collate, encode_sentence

    items = [encode_sentence([word_id(tokenizer, w) for w in words], [case_id(w) for w in words], [0] * len(words),
                             words, model.char_vocabulary if model.chars is not None else None, 20)
             for words in sentences]
    batch = collate(items)
    with torch.no_grad():
        scores = model(batch["input_ids"], batch["lengths"], batch["case_ids"], batch.get("char_ids"))
        best = model.decode(scores, batch["lengths"])
    return [[model.tag_names[t] for t in row] for row in best]


def model_example(config) -> tuple[str, dict | None]:
    """The MLflow model's input example and params (tasks/mlflow_model.py)."""
    return "EU rejects German call", None


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """The MLflow model's output: `tags`, one per whitespace-separated word of each text."""
    sentences = [text.split() for text in texts]
    if not all(sentences):
        raise ConfigError("an empty text cannot be tagged: give at least one word per text")
    return [{"tags": " ".join(tags)} for tags in tag(model, tokenizer, sentences)]


def entity_scores(gold: list[list[str]], predicted: list[list[str]], prefix: str) -> dict[str, float]:
    """Entity-level micro precision / recall / F1 and F1 per entity type (a prediction counts only when
    its span and type both match)."""
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    scores = {f"{prefix}_precision": micro["precision"], f"{prefix}_recall": micro["recall"],
              f"{prefix}_f1": micro["f1-score"]}
    for kind, values in report.items():
        if not kind.endswith("avg"):
            scores[f"{prefix}_f1_{kind}"] = values["f1-score"]
    return scores


def confusion_table(gold: list[list[str]], predicted: list[list[str]], tags: list[str]) -> str:
    """Token-level tag confusion as Markdown: rows = gold tag, columns = predicted tag."""
    counts = torch.zeros(len(tags), len(tags), dtype=torch.long)
    index = {tag: i for i, tag in enumerate(tags)}
    for gold_row, pred_row in zip(gold, predicted, strict=True):
        for g, p in zip(gold_row, pred_row, strict=True):
            counts[index[g], index[p]] += 1
    lines = ["| gold \\ predicted | " + " | ".join(tags) + " |", "|---" * (len(tags) + 1) + "|"]
    lines += [f"| {tag} | " + " | ".join(str(int(v)) for v in counts[i]) + " |" for i, tag in enumerate(tags)]
    return "\n".join(lines) + "\n"


class TagTask(TaskModule):
    validation_metrics = ("val_loss", "val_precision", "val_recall", "val_f1")
    data_parallel = True  # losses synced, the split's tag sequences gathered before seqeval scores them

    def __init__(self, model: nn.Module, tags: list[str], optimizer, scheduler=None):
        super().__init__(model, optimizer, scheduler)
        self.tags = list(tags)
        self._gold: list[list[str]] = []
        self._predicted: list[list[str]] = []

    def forward(self, batch):
        return self.model(batch["input_ids"], batch["lengths"], batch["case_ids"], batch.get("char_ids"))

    def batch_loss(self, batch):
        return self.model.loss(self(batch), batch["tags"])

    def training_step(self, batch, batch_idx):
        self.count_tokens(int(batch["lengths"].sum()), batch["input_ids"].numel())
        loss = self.batch_loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["lengths"]), sync_dist=True)
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        scores = self(batch)
        self.log(f"{stage}_loss", self.model.loss(scores, batch["tags"]), on_step=False, on_epoch=True,
                 batch_size=len(batch["lengths"]), sync_dist=True)
        lengths = batch["lengths"].cpu()
        for row, (gold, best) in enumerate(zip(batch["tags"].tolist(), self.model.decode(scores, lengths),
                                               strict=True)):
            n = int(lengths[row])
            self._gold.append([self.tags[t] for t in gold[:n]])
            self._predicted.append([self.tags[t] for t in best[:n]])

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _finish(self, stage: str) -> dict:
        # under DDP every process scored its share of the split: score the whole split, the same on every rank
        self._gold, self._predicted = self.gather_objects(self._gold), self.gather_objects(self._predicted)
        scores = entity_scores(self._gold, self._predicted, stage)
        self.log_dict(scores)
        if stage == "test" and self.logger is not None and hasattr(self.logger, "run_id"):
            self.logger.experiment.log_text(self.logger.run_id, confusion_table(self._gold, self._predicted,
                                                                                self.tags), "confusion_test.md")
        self._gold, self._predicted = [], []
        return scores

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")
