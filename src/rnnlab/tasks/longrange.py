"""Long-range synthetic problems (adding, copy memory): does the cell carry information `data.length` steps?

A run is "solved" when the validation metric passes the task's threshold (adding: MSE < task.solved_mse; copy:
recall accuracy >= task.solved_acc). Besides the usual metrics a run logs `steps_to_solve` (the optimizer
step of the first validation check that was solved; NaN if none was), and, judged on the test set, `solved`
(1/0) and the best constant predictor's score (`baseline_mse`, or `baseline_loss` for copy) to compare with.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Built, TaskModule

VAL_METRICS = {"adding": ("val_mse",), "copy": ("val_loss", "val_acc")}


def build(cfg) -> Built:
    from hydra.utils import instantiate

    from rnnlab.data.synthetic import SyntheticDataModule, check_problem

    data = cfg.data
    check_problem(data.get("problem"))
    datamodule = SyntheticDataModule(data.problem, data.length, dict(data.sizes), batch_size=data.batch_size,
                                     eval_batch_size=data.eval_batch_size, seed=data.seed,
                                     num_symbols=data.get("num_symbols", 8), copy_length=data.get("copy_length", 10))
    datamodule.setup()  # bad lengths or sizes fail here, before an MLflow run is opened
    model = instantiate(cfg.model, problem=data.problem, num_symbols=data.get("num_symbols", 8))
    module = LongRangeTask(model, data.problem, optimizer=instantiate(cfg.optimizer),
                           solved_mse=cfg.task.solved_mse, solved_acc=cfg.task.solved_acc)
    return Built(datamodule, module, [])


def model_for_run(config, tokenizer, files: Path):
    from hydra.utils import instantiate

    return instantiate(config.model, problem=config.data.problem, num_symbols=config.data.get("num_symbols", 8))


class LongRangeTask(TaskModule):
    def __init__(self, model: nn.Module, problem: str, optimizer, solved_mse: float = 0.01,
                 solved_acc: float = 0.99, scheduler=None):
        super().__init__(model, optimizer, scheduler)
        if not solved_mse > 0:
            raise ConfigError(f"task.solved_mse={solved_mse} must be positive (e.g. 0.01)")
        if not 0 < solved_acc <= 1:
            raise ConfigError(f"task.solved_acc={solved_acc} must be in (0, 1] (e.g. 0.99)")
        self.problem = problem
        self.solved_mse, self.solved_acc = solved_mse, solved_acc
        self.steps_to_solve: int | None = None
        self.test_scores: dict[str, float] = {}
        self.sums: dict[str, dict[str, torch.Tensor]] = {}

    def forward(self, batch):
        return self.model(batch["inputs"], batch["lengths"])

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.problem == "adding":
            return F.mse_loss(outputs, targets)
        recalled = outputs[:, -targets.size(1):]  # only the recall positions are scored
        return F.cross_entropy(recalled.flatten(0, 1), targets.flatten())

    def batch_loss(self, batch) -> torch.Tensor:
        """The batch's training loss (mean over the batch; copy: over its recalled symbols), nothing logged."""
        return self._loss(self(batch), batch["targets"])

    def training_step(self, batch, batch_idx):
        tokens = int(batch["lengths"].sum())
        self.count_tokens(tokens, tokens)  # every sequence has the full length: no padding
        loss = self.batch_loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=False, batch_size=len(batch["targets"]))
        return loss

    # Evaluation sums over the whole split (float64), so the metrics do not depend on the batch size.
    def _evaluate(self, batch, stage: str) -> None:
        outputs, targets = self(batch), batch["targets"]
        sums = self.sums.setdefault(stage, {})

        def add(key: str, value) -> None:
            sums[key] = sums.get(key, 0) + torch.as_tensor(value, dtype=torch.float64).detach()

        add("count", targets.numel())
        if self.problem == "adding":
            add("squared_error", ((outputs - targets).double() ** 2).sum())
            add("target_sum", targets.double().sum())
            add("target_squares", (targets.double() ** 2).sum())
        else:
            recalled = outputs[:, -targets.size(1):]
            add("loss", F.cross_entropy(recalled.flatten(0, 1), targets.flatten(), reduction="sum"))
            add("correct", (recalled.argmax(-1) == targets).sum())
            add("symbol_counts", torch.bincount(targets.flatten().cpu(), minlength=recalled.size(-1)))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _finish(self, stage: str) -> dict[str, float]:
        sums = self.sums.pop(stage)
        count = float(sums["count"])
        if self.problem == "adding":
            scores = {f"{stage}_mse": float(sums["squared_error"]) / count}
        else:
            scores = {f"{stage}_loss": float(sums["loss"]) / count, f"{stage}_acc": float(sums["correct"]) / count}
        self.log_dict(scores)
        return scores

    def is_solved(self, scores: dict[str, float], stage: str) -> bool:
        if self.problem == "adding":
            return scores[f"{stage}_mse"] < self.solved_mse
        return scores[f"{stage}_acc"] >= self.solved_acc

    def on_validation_epoch_end(self) -> None:
        scores = self._finish("val")
        if self.trainer.sanity_checking:
            return
        if self.steps_to_solve is None and self.is_solved(scores, "val"):
            self.steps_to_solve = self.global_step

    def on_test_epoch_end(self) -> None:
        sums = self.sums["test"]
        count = float(sums["count"])
        if self.problem == "adding":  # predicting the test mean scores the targets' variance
            mean = float(sums["target_sum"]) / count
            baseline = {"baseline_mse": float(sums["target_squares"]) / count - mean ** 2}
        else:  # predicting the symbols' frequencies scores their entropy (about log num_symbols)
            p = sums["symbol_counts"] / count
            baseline = {"baseline_loss": float(-(p[p > 0] * p[p > 0].log()).sum())}
        scores = self._finish("test")
        self.test_scores = {"solved": float(self.is_solved(scores, "test")), **baseline}

    @property
    def validation_metrics(self) -> tuple[str, ...]:
        return VAL_METRICS[self.problem]

    FIT_STATE = (*TaskModule.FIT_STATE, "steps_to_solve")

    def summary_names(self) -> tuple[str, ...]:
        return (*super().summary_names(), "steps_to_solve")

    def summary(self) -> dict:
        steps = float(self.steps_to_solve) if self.steps_to_solve is not None else math.nan
        return {**super().summary(), "steps_to_solve": steps}

    def test_summary(self) -> dict:
        return dict(self.test_scores)
