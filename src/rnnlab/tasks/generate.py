"""One-to-many: write a text from a single input vector, its class label (a review opening from a sentiment).

Training sequences are `<bos>` + the first `task.max_words` ids of a text + `<eos>`, read left to right by
models/conditional_lm.py from the state its label gives; the loss is the token cross-entropy of the next word
(`<eos>` included), padding ignored. Logged per split: <split>_loss (mean over the split's tokens) and
<split>_ppl = exp of it; the objective is val_ppl (lower is better).

At test end (on the best checkpoint) the model writes `task.samples_per_label` texts per label (task.strategy,
task.temperature, task.top_k, task.seed, at most task.max_words words) and a **judge**, a sentiment classifier,
reads them: test_match_rate is the share of texts the judge labels as the label they were written for
(test_match_rate_<label> per label), judge_test_acc the judge's accuracy on the real test split (how far to
trust it; judge_train_seconds what training it cost), and samples.tsv (label, judged label, the judge's
probability of the label, text) is logged with the run. The judge is the classify run `task.judge_run_id` (same tokenizer, same labels), or, when that is null, a
small bidirectional GRU SequenceClassifier trained here first on the same train split (task.judge_*; seeded,
under its own random streams, so it does not change the generator's training).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.errors import ConfigError
from rnnlab.models.conditional_lm import PAD_ID, special_ids
from rnnlab.tasks.base import Built, PerplexityEpochs, TaskModule

SAMPLES_FILE = "samples.tsv"


def build(cfg) -> Built:
    from hydra.utils import instantiate

    from rnnlab.data.datamodule import ClassificationDataModule
    from rnnlab.data.tokenization import load_tokenizer, vocabulary
    from rnnlab.embeddings.build import check_onehot_size, load_matrix

    sampling = sampling_options(cfg.task)
    tokenized_dir = Path(cfg.paths.tokenized_dir)
    datamodule = ClassificationDataModule(
        str(tokenized_dir), batch_size=cfg.data.batch_size, eval_batch_size=cfg.data.eval_batch_size,
        max_length=sampling["max_words"], truncation_side="head", pool_batches=cfg.data.pool_batches,
        num_workers=cfg.data.num_workers, seed=cfg.seed)
    datamodule.setup()
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    labels = [str(label) for label in cfg.data.labels]
    if cfg.embedding.name == "onehot":
        check_onehot_size(cfg.embedding, tokenizer.get_vocab_size() + 2)
    model = instantiate(cfg.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(labels),
                        embedding_dim=cfg.embedding.get("dim", 0), embedding_kind=cfg.embedding.name,
                        freeze_embedding=cfg.embedding.get("freeze", False),
                        embedding_weights=load_matrix(cfg.embedding, cfg.paths.embeddings_dir))
    if cfg.task.get("judge_run_id"):
        judge = load_judge(str(cfg.task.judge_run_id), cfg, tokenizer, labels)
    else:
        judge = train_judge(cfg, tokenized_dir, tokenizer.get_vocab_size(), labels)
    judge.test_acc = judge.accuracy(load_split(tokenized_dir, "test"))
    samples_path = _output_dir() / SAMPLES_FILE
    module = GenerateTask(model, labels, judge, vocabulary(tokenizer), sampling, samples_path,
                          optimizer=instantiate(cfg.optimizer))
    return Built(datamodule, module, [tokenized_dir / "tokenizer.json", samples_path])


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(config.data.labels),
                       embedding_dim=config.embedding.get("dim", 0), embedding_kind=config.embedding.name)


def sampling_options(task_cfg) -> dict:
    """The task's sampling options, checked: one error naming the bad key."""
    from rnnlab.generate import STRATEGIES

    options = {key: task_cfg.get(key, default) for key, default in (
        ("max_words", 15), ("samples_per_label", 50), ("strategy", "topk"), ("temperature", 1.0),
        ("top_k", 10), ("seed", 0))}
    if options["strategy"] not in STRATEGIES:
        raise ConfigError(f"task.strategy={options['strategy']!r} must be one of {'|'.join(STRATEGIES)}")
    for key in ("max_words", "samples_per_label", "top_k"):
        if not isinstance(options[key], int) or options[key] < 1:
            raise ConfigError(f"task.{key}={options[key]!r} must be a whole number, at least 1")
    if not options["temperature"] > 0:
        raise ConfigError(f"task.temperature={options['temperature']} must be above 0")
    return options


def _output_dir() -> Path:
    """The run's Hydra output directory (where rnnlab-train keeps its checkpoints), else a fresh temporary one."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        path = Path(HydraConfig.get().runtime.output_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="rnnlab-generate-"))


# --- sequences and loss ---------------------------------------------------------------------------------------

def teacher_forcing(ids: torch.Tensor, lengths: torch.Tensor, bos_id: int, eos_id: int):
    """Right-padded texts ids [B, T] with lengths [B] -> (inputs, targets, mask), each [B, T + 1]:
    inputs = <bos> w1 .. wn (pad ...), targets = w1 .. wn <eos> (pad ...), mask = the n + 1 real targets."""
    rows, steps = ids.shape
    lengths = lengths.to(ids.device)
    inputs = torch.cat([ids.new_full((rows, 1), bos_id), ids], dim=1)
    targets = torch.cat([ids, ids.new_full((rows, 1), PAD_ID)], dim=1)
    targets[torch.arange(rows, device=ids.device), lengths] = eos_id
    mask = torch.arange(steps + 1, device=ids.device).unsqueeze(0) <= lengths.unsqueeze(1)
    return inputs, targets, mask


def token_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the real targets, their count): positions outside `mask` count for nothing,
    whatever their logits or targets hold."""
    ignored = targets.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.flatten(0, 1), ignored.flatten(), ignore_index=-100, reduction="sum")
    return total, int(mask.sum())


# --- the judge ------------------------------------------------------------------------------------------------

@dataclass
class Judge:
    """A sentiment classifier over the generator's tokenizer ids (a plain object, not a submodule: it is not
    trained with, nor saved in, the generator's checkpoint)."""
    model: nn.Module
    labels: list[str]
    max_length: int | None
    truncation_side: str = "head"
    test_acc: float = float("nan")
    source: str = "trained here"
    train_seconds: float = 0.0  # 0 for a judge loaded from a run

    def probabilities(self, texts: list[list[int]], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities [N, classes] of token-id texts (truncated as the judge was trained)."""
        from rnnlab.data.batching import pad_batch, truncate

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


@contextlib.contextmanager
def own_random_streams(seed: int):
    """Seed python, numpy and torch for the block, then put back the states they had before it."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def train_judge(cfg, tokenized_dir: Path, vocab_size: int, labels: list[str]) -> Judge:
    """A 1-layer bidirectional GRU classifier trained task.judge_epochs epochs on the train split (seeded)."""
    import functools

    import pytorch_lightning as pl

    from rnnlab.data.datamodule import ClassificationDataModule
    from rnnlab.models.classifier import SequenceClassifier
    from rnnlab.tasks.classify import ClassifyTask

    task_cfg = cfg.task
    epochs = task_cfg.get("judge_epochs", 3)
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"task.judge_epochs={epochs!r} must be a whole number, at least 1 (or set "
                          "task.judge_run_id to a trained classify run)")
    seed = int(task_cfg.get("judge_seed", cfg.seed))
    with own_random_streams(seed):
        datamodule = ClassificationDataModule(
            str(tokenized_dir), batch_size=cfg.data.batch_size, eval_batch_size=cfg.data.eval_batch_size,
            max_length=cfg.data.max_length, truncation_side=cfg.data.truncation_side,
            pool_batches=cfg.data.pool_batches, num_workers=cfg.data.num_workers, seed=seed)
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
    from rnnlab.predict import load_run
    from rnnlab.tracking import runs

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


# --- the LightningModule --------------------------------------------------------------------------------------

class GenerateTask(PerplexityEpochs, TaskModule):
    objective, maximize = "val_ppl", False

    def __init__(self, model: nn.Module, labels: list[str], judge: Judge | None, vocabulary: list[str],
                 sampling: dict, samples_path: Path | None, optimizer, scheduler=None):
        super().__init__(model, optimizer, scheduler)
        self.labels, self.judge, self.vocabulary = list(labels), judge, list(vocabulary)
        self.sampling, self.samples_path = dict(sampling), samples_path
        self.bos_id, self.eos_id = special_ids(len(self.vocabulary))
        self.loss_sums: dict[str, torch.Tensor] = {}
        self.token_counts: dict[str, int] = {}
        self.samples: list[dict] = []  # the last test's generated texts, as written to samples.tsv

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor):
        return self.model(input_ids, labels)[0]

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        inputs, targets, mask = teacher_forcing(batch["input_ids"], batch["lengths"], self.bos_id, self.eos_id)
        return token_loss(self(inputs, batch["labels"]), targets, mask)

    def batch_loss(self, batch):
        total, tokens = self._loss(batch)
        return total / max(tokens, 1)

    def _step(self, batch, stage: str) -> torch.Tensor:
        total, tokens = self._loss(batch)
        self.add_to_split(stage, total, tokens)
        return total / max(tokens, 1)

    def training_step(self, batch, batch_idx):
        lengths = batch["lengths"]
        self.count_tokens(int(lengths.sum()) + len(lengths), len(lengths) * (batch["input_ids"].size(1) + 1))
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.judge is not None:
            self.log_dict(self.judge_samples())

    def text(self, ids: list[int]) -> str:
        return " ".join(self.vocabulary[i] for i in ids)

    def generate(self, labels: torch.Tensor, seed: int | None = None) -> list[list[int]]:
        """Texts (word ids) for each label id, with the task's sampling options."""
        options = self.sampling
        generator = torch.Generator().manual_seed(options["seed"] if seed is None else seed)
        return self.model.sample(labels.to(self.device), options["max_words"], options["strategy"],
                                 options["temperature"], options["top_k"], generator)

    def judge_samples(self) -> dict[str, float]:
        """Generate samples_per_label texts per label, let the judge read them, write samples.tsv; return
        test_match_rate, test_match_rate_<label> and judge_test_acc."""
        per_label = self.sampling["samples_per_label"]
        wanted = torch.arange(len(self.labels)).repeat_interleave(per_label)
        texts = self.generate(wanted)
        self.judge.model.to(self.device)
        probs = self.judge.probabilities(texts)
        judged = probs.argmax(-1)
        match = (judged == wanted).float()
        metrics = {"test_match_rate": float(match.mean()), "judge_test_acc": float(self.judge.test_acc),
                   "judge_train_seconds": self.judge.train_seconds}
        for index, label in enumerate(self.labels):
            metrics[f"test_match_rate_{metric_name(label)}"] = float(match[wanted == index].mean())
        self.samples = [{"label": self.labels[w], "judged": self.labels[j], "p_label": float(p[w]),
                         "text": self.text(t)}
                        for w, j, p, t in zip(wanted.tolist(), judged.tolist(), probs, texts, strict=True)]
        if self.samples_path is not None:
            write_samples(self.samples_path, self.samples)
        return metrics


def metric_name(label: str) -> str:
    return re.sub(r"[^\w.-]+", "_", label)


def write_samples(path: Path, samples: list[dict]) -> None:
    """label, judged label, the judge's probability of the label, text: one generated text per line (TSV),
    written whole or not at all."""
    from rnnlab.io import atomic_file

    lines = ["label\tjudged\tp_label\ttext"]
    lines += [f"{s['label']}\t{s['judged']}\t{s['p_label']:.4f}\t{s['text'].replace(chr(9), ' ')}" for s in samples]
    with atomic_file(path) as out:
        out.write("\n".join(lines) + "\n")
