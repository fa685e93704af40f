"""One-to-many: write a text from a single input vector, its class label (a review opening from a sentiment).

Training sequences are `<bos>` + the first `task.max_words` ids of a text + `<eos>`, read left to right by
models/conditional_lm.py from the state its label gives; the loss is the token cross-entropy of the next word
(`<eos>` included), padding ignored. Logged per split: <split>_loss (mean over the split's tokens) and
<split>_ppl = exp of it; the objective is val_ppl (lower is better).

At test end (on the best checkpoint) the model writes `task.samples_per_label` texts per label (task.strategy,
task.temperature, task.top_k, task.seed, at most task.max_words words) and a **judge**, a sentiment classifier,
reads them: test_match_rate is the share of texts the judge labels as the label they were written for
(test_match_rate_<label> per label), judge_test_acc the judge's accuracy on the real test split's openings of the
same length (how far to trust it; judge_test_acc_full on whole test texts; judge_train_seconds what training it
cost), and samples.tsv (label, judged label, the judge's
probability of the label, text) is logged with the run. The judge: tasks/judge.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.data.conventions import PAD_ID
from rnnlab.data.datamodule import ClassificationDataModule
from rnnlab.data.tokenization import load_tokenizer, vocabulary
from rnnlab.errors import ConfigError
from rnnlab.io import atomic_file
from rnnlab.models.conditional_lm import special_ids
from rnnlab.models.encoder import length_mask
from rnnlab.models.sampling import STRATEGIES
from rnnlab.tasks.base import Built, PerplexityEpochs, TaskModule, input_layer, run_output_dir
from rnnlab.tasks.judge import Judge, load_judge, load_split, train_judge

SAMPLES_FILE = "samples.tsv"


def build(cfg) -> Built:
    from hydra.utils import instantiate


    sampling = sampling_options(cfg.task)
    tokenized_dir = Path(cfg.paths.tokenized_dir)
    datamodule = ClassificationDataModule.from_config(cfg.data, tokenized_dir, cfg.seed,
                                                      max_length=sampling["max_words"], truncation_side="head")
    datamodule.setup()
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    labels = [str(label) for label in cfg.data.labels]
    model = instantiate(cfg.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(labels),
                        **input_layer(cfg.embedding, cfg.paths.embeddings_dir,
                                      tokenizer.get_vocab_size() + 2))  # + <bos>, <eos>
    if cfg.task.get("judge_run_id"):
        judge = load_judge(str(cfg.task.judge_run_id), cfg, tokenizer, labels)
    else:
        judge = train_judge(cfg, tokenized_dir, tokenizer.get_vocab_size(), labels)
    texts, test_labels = load_split(tokenized_dir, "test")
    # the judge reads openings of at most max_words words: its accuracy on real openings says how far to trust it
    judge.test_acc = judge.accuracy(([text[:sampling["max_words"]] for text in texts], test_labels))
    judge.test_acc_full = judge.accuracy((texts, test_labels))
    samples_path = run_output_dir() / SAMPLES_FILE
    module = GenerateTask(model, labels, judge, vocabulary(tokenizer), sampling, samples_path,
                          optimizer=instantiate(cfg.optimizer))
    return Built(datamodule, module, [tokenized_dir / "tokenizer.json", samples_path])


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), num_classes=len(config.data.labels),
                       **input_layer(config.embedding))


def model_example(config) -> tuple[str, dict | None]:
    """The MLflow model's input example (a label) and params (tasks/mlflow_model.py): the sampling options."""
    from rnnlab.models.sampling import DEFAULTS

    return str(config["data"]["labels"][0]), dict(DEFAULTS)


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """The MLflow model's output: the text `generated` for each label."""
    from rnnlab.models import sampling

    options = sampling.options_from(params)
    labels = [str(label) for label in config.data.labels]
    rows = []
    for text in texts:
        if text not in labels:
            raise ConfigError(f"text={text!r}: a task=generate model writes for a label; give one of {labels}")
        rows.append({"generated": " ".join(sampling.write_for_label(model, tokenizer, labels.index(text),
                                                                    **options))})
    return rows


def sampling_options(task_cfg) -> dict:
    """The task's sampling options, checked: one error naming the bad key."""

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


# --- sequences and loss ---------------------------------------------------------------------------------------

def teacher_forcing(ids: torch.Tensor, lengths: torch.Tensor, bos_id: int, eos_id: int):
    """Right-padded texts ids [B, T] with lengths [B] -> (inputs, targets, mask), each [B, T + 1]:
    inputs = <bos> w1 .. wn (pad ...), targets = w1 .. wn <eos> (pad ...), mask = the n + 1 real targets."""
    rows, steps = ids.shape
    lengths = lengths.to(ids.device)
    inputs = torch.cat([ids.new_full((rows, 1), bos_id), ids], dim=1)
    targets = torch.cat([ids, ids.new_full((rows, 1), PAD_ID)], dim=1)
    targets[torch.arange(rows, device=ids.device), lengths] = eos_id
    mask = length_mask(lengths + 1, steps + 1, ids.device)  # the n real words and <eos>
    return inputs, targets, mask


def token_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the real targets, their count): positions outside `mask` count for nothing,
    whatever their logits or targets hold."""
    ignored = targets.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.flatten(0, 1), ignored.flatten(), ignore_index=-100, reduction="sum")
    return total, int(mask.sum())


# --- the LightningModule --------------------------------------------------------------------------------------

class GenerateTask(PerplexityEpochs, TaskModule):
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
        test_match_rate, test_match_rate_<label>, judge_test_acc and judge_test_acc_full."""
        per_label = self.sampling["samples_per_label"]
        wanted = torch.arange(len(self.labels)).repeat_interleave(per_label)
        texts = self.generate(wanted)
        self.judge.model.to(self.device)
        probs = self.judge.probabilities(texts)
        judged = probs.argmax(-1)
        match = (judged == wanted).float()
        metrics = {"test_match_rate": float(match.mean()), "judge_test_acc": float(self.judge.test_acc),
                   "judge_test_acc_full": float(self.judge.test_acc_full),
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
    lines = ["label\tjudged\tp_label\ttext"]
    lines += [f"{s['label']}\t{s['judged']}\t{s['p_label']:.4f}\t{s['text'].replace(chr(9), ' ')}" for s in samples]
    with atomic_file(path) as out:
        out.write("\n".join(lines) + "\n")
