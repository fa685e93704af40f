"""Next-word prediction (language modelling) with truncated BPTT; perplexity = exp(mean token cross-entropy)
over a whole split, and next-token accuracy (<split>_acc: the share of the same positions whose most probable
token is the target).

The hidden state is carried from one window to the next (detached: gradients stop at the window's start) and
reset at the start of every training epoch and every evaluation pass. The learning rate schedule of Zaremba et
al. (2014) is `task.decay_after_epochs` epochs at the optimizer's rate, then x `task.lr_decay` per epoch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.data.tokenization import load_tokenizer
from rnnlab.errors import ConfigError
from rnnlab.models.language_model import detach_state
from rnnlab.tasks.base import Built, PerplexityEpochs, TaskModule, input_layer


def build(cfg) -> Built:
    from hydra.utils import instantiate

    from rnnlab.data.bptt import LanguageModelDataModule

    tokenized_dir = Path(cfg.paths.tokenized_dir)
    datamodule = LanguageModelDataModule(str(tokenized_dir), batch_size=cfg.data.batch_size, bptt=cfg.data.bptt,
                                         eval_batch_size=cfg.data.eval_batch_size,
                                         num_workers=cfg.data.num_workers)
    datamodule.setup()
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    vocab_size = tokenizer.get_vocab_size()
    model = instantiate(cfg.model, vocab_size=vocab_size,
                        **input_layer(cfg.embedding, cfg.paths.embeddings_dir, vocab_size))
    scheduler = step_decay(cfg.task.get("lr_decay"), cfg.task.get("decay_after_epochs", 0))
    module = LanguageModelTask(model, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                               sum_over_time=cfg.task.get("sum_over_time", False))
    return Built(datamodule, module, [tokenized_dir / "tokenizer.json"])


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, vocab_size=tokenizer.get_vocab_size(), **input_layer(config.embedding))


def model_example(config) -> tuple[str, dict | None]:
    """The MLflow model's input example and params (tasks/mlflow_model.py): the sampling options."""
    from rnnlab.models.sampling import DEFAULTS

    return "the company said", dict(DEFAULTS)


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """The MLflow model's output: the `continuation` of each prompt."""
    from rnnlab.models import sampling

    options = sampling.options_from(params)
    return [{"continuation": " ".join(sampling.continue_prompt(model, tokenizer, text, **options))}
            for text in texts]


class HoldThenDecay:
    """LambdaLR factor for epoch e (0-based): 1 for the first `hold` epochs, then decay ** (e - hold + 1)."""

    def __init__(self, decay: float, hold: int):
        self.decay, self.hold = decay, hold

    def __call__(self, epoch: int) -> float:
        return self.decay ** max(0, epoch - self.hold + 1)


def step_decay(decay: float | None, hold: int):
    """A scheduler factory (called with optimizer=) for TaskModule, or None for a constant learning rate."""
    if decay is None or decay == 1:
        return None
    if not 0 < decay < 1:
        raise ConfigError(f"task.lr_decay={decay} must be in (0, 1], or null for a constant learning rate")
    if hold < 0:
        raise ConfigError(f"task.decay_after_epochs={hold} must be 0 or more")

    def factory(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, HoldThenDecay(decay, hold))

    return factory


class LanguageModelTask(PerplexityEpochs, TaskModule):
    validation_metrics = ("val_loss", "val_ppl", "val_acc")

    def __init__(self, model: nn.Module, optimizer, scheduler=None, sum_over_time: bool = False):
        super().__init__(model, optimizer, scheduler)
        # Zaremba et al. sum the loss over a window's steps (mean over the batch): their lr 1.0 and clip 5
        # assume that scale. Logged losses are always the mean per token.
        self.sum_over_time = sum_over_time
        self.states: dict[str, list | None] = {}
        self.loss_sums: dict[str, torch.Tensor] = {}
        self.token_counts: dict[str, int] = {}
        self.correct: dict[str, torch.Tensor] = {}  # a tensor: no device sync per window

    def forward(self, input_ids: torch.Tensor, state: list | None = None):
        return self.model(input_ids, state)

    def reset_split(self, stage: str) -> None:  # a split's first window starts from a zero state
        self.states[stage] = None
        self.correct[stage] = torch.zeros((), dtype=torch.long, device=self.device)
        super().reset_split(stage)

    def log_split(self, stage: str) -> dict[str, float]:
        """<stage>_loss, <stage>_ppl and <stage>_acc, over the same positions (a BPTT window has no padding)."""
        scores = super().log_split(stage)
        acc = float(self.correct[stage]) / max(self.token_counts[stage], 1)
        self.log(f"{stage}_acc", acc)
        return {**scores, f"{stage}_acc": acc}

    def batch_loss(self, batch):
        """Mean token cross-entropy of one window read from a zero state (no state carried in or out)."""
        logits, _ = self(batch["input_ids"], None)
        return F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())

    def _step(self, batch, stage: str) -> torch.Tensor:
        """Mean token cross-entropy of one window, starting from the state the previous window left."""
        if stage not in self.states:
            self.reset_split(stage)
        logits, state = self(batch["input_ids"], self.states[stage])
        self.states[stage] = detach_state(state)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        self.correct[stage] += (logits.detach().argmax(-1) == batch["targets"]).sum()
        self.add_to_split(stage, loss.detach().double() * batch["targets"].numel(), batch["targets"].numel())
        return loss

    def training_step(self, batch, batch_idx):
        self.count_tokens(batch["targets"].numel(), batch["targets"].numel())  # no padding in a BPTT window
        loss = self._step(batch, "train")
        return loss * batch["targets"].size(1) if self.sum_over_time else loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        if self._trainer is not None:  # the rate this epoch trains with (the schedule steps before epoch end)
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True)
