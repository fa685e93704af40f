"""What every task's LightningModule shares: the optimizer from config, timing of optimisation steps only,
and the validation objective a sweeper optimises."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from rnnlab.embeddings.matrix import check_onehot_size, load_matrix
from rnnlab.errors import ConfigError


@dataclass
class Built:
    """Everything `rnnlab-train` needs from a task: data, the LightningModule, files to log with the run."""
    datamodule: pl.LightningDataModule
    module: TaskModule
    artifacts: list[Path] = field(default_factory=list)


def run_output_dir() -> Path:
    """The run's Hydra output directory (where rnnlab-train keeps its checkpoints), else a fresh temporary one:
    where a task writes the files it logs with the run."""
    import tempfile

    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        path = Path(HydraConfig.get().runtime.output_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="rnnlab-run-"))


def input_layer(embedding_cfg, embeddings_dir: str | Path | None = None, vocab_size: int | None = None) -> dict:
    """The input-layer arguments every model takes, from the `embedding` config group: its kind and width, and for
    training (`embeddings_dir` given) whether it is frozen and the built vectors (rnnlab.embeddings); a one-hot
    input is checked against `vocab_size`, the number of ids the model reads. Without `embeddings_dir`: the shape
    a logged run's model is rebuilt in before its checkpoint is loaded."""
    arguments = {"embedding_dim": embedding_cfg.get("dim", 0), "embedding_kind": embedding_cfg.name}
    if embeddings_dir is None:
        return arguments
    if embedding_cfg.name == "onehot":
        check_onehot_size(embedding_cfg, vocab_size)
    return {**arguments, "freeze_embedding": embedding_cfg.get("freeze", False),
            "embedding_weights": load_matrix(embedding_cfg, embeddings_dir)}


def selection_rule(cfg, validation_metrics) -> str:
    """The one selection rule of a run: `task.objective` (metric and mode) picks the checkpoint, stops training
    and is what the sweeper and the report's validation column read; `callbacks.*.monitor` follow it (conf/
    callbacks/default.yaml interpolates it). Returns the metric; a metric the task does not log at
    validation, or a callback watching another metric, is refused before any run exists."""
    objective = cfg.task.get("objective")
    if objective is None or objective.get("metric") is None:
        raise ConfigError(f"task.objective is not set for task={cfg.task.get('kind')}: set task.objective.metric "
                          f"(one of {sorted(validation_metrics)}) and task.objective.mode (max | min)")
    metric, mode = objective.metric, objective.get("mode")
    if metric not in validation_metrics:
        raise ConfigError(f"task.objective.metric={metric!r} is not a validation metric of "
                          f"task={cfg.task.get('kind')}: choose one of {sorted(validation_metrics)}")
    if mode not in ("max", "min"):
        raise ConfigError(f"task.objective.mode={mode!r} is not max or min")
    for name in ("checkpoint", "early_stopping"):
        callback = cfg.get("callbacks", {}).get(name)
        if callback is None:
            continue
        if (callback.get("monitor"), callback.get("mode")) != (metric, mode):
            raise ConfigError(f"callbacks.{name} watches {callback.get('monitor')!r} ({callback.get('mode')}) but "
                              f"task.objective is {metric!r} ({mode}): selection has one rule; set "
                              f"task.objective.metric / task.objective.mode instead of callbacks.{name}.monitor")
    return metric


class TaskModule(pl.LightningModule):
    """Subclasses name the metrics they log at each validation (`validation_metrics`, or a `validation_metrics`
    property when it depends on the data); the selection rule sets `objective` (tasks.build);
    the timing counters feed train_tokens_per_sec and train_padding_fraction."""

    validation_metrics: tuple[str, ...] = ("val_loss",)
    objective = "val_loss"  # set from task.objective by tasks.build
    # whether its metrics are computed over all DDP processes' data (torchmetrics / synced logs) or only rank 0's
    data_parallel = False

    def __init__(self, model: nn.Module, optimizer, scheduler=None):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer  # functools.partial from hydra (`_partial_: true`)
        self.scheduler_factory = scheduler
        self.train_tokens = 0  # real tokens trained on
        self.train_slots = 0  # tokens + padding: what the kernels actually computed
        self.train_seconds = 0.0
        self._batch_start = 0.0
        self.fit_seconds = 0.0  # wall time of fit before this process went on with it (resume), see fit_elapsed
        self._fit_start: float | None = None

    def batch_loss(self, batch) -> torch.Tensor:
        """The scalar training loss of one batch, with no logging and no metric updates: what the analyses
        (rnnlab.analysis) differentiate. Each task defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define batch_loss(batch), which the analyses "
                                  "(analysis.gradient_flow, analysis.gates) need: return the scalar training loss "
                                  "of one batch")

    def gather_objects(self, items: list) -> list:
        """`items` from every DDP process, concatenated in rank order (just `items` in a single process): for
        metrics over a whole split that are not torchmetrics (seqeval's entity F1)."""
        import torch.distributed as dist

        if self._trainer is None or self._trainer.world_size == 1 or not dist.is_initialized():
            return items
        gathered = [None] * self._trainer.world_size
        dist.all_gather_object(gathered, items)
        return [item for part in gathered for item in part]

    def count_tokens(self, real: int, slots: int) -> None:
        self.train_tokens += real
        self.train_slots += slots

    def on_fit_start(self) -> None:  # after a checkpoint's fit state was restored
        self._fit_start = time.perf_counter()

    def fit_elapsed(self) -> float:
        """Wall seconds of fit so far, over every process that trained this run (a resumed one included)."""
        running = time.perf_counter() - self._fit_start if self._fit_start is not None else 0.0
        return self.fit_seconds + running

    # Time only the optimisation steps, so tokens per second is not diluted by validation.
    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._batch_start

    def summary(self) -> dict:
        """Run-level metrics logged when fit ends: best_<objective>, the selected checkpoint's validation score
        (ModelCheckpoint watches the objective, so this is the value it selected by, restored on resume with its
        state), and the speed counters."""
        score = self.trainer.checkpoint_callback.best_model_score
        return {f"best_{self.objective}": float(score) if score is not None else float("nan"),
                "train_seconds": self.train_seconds,
                "train_tokens_per_sec": self.train_tokens / max(self.train_seconds, 1e-9),
                "train_padding_fraction": 1 - self.train_tokens / max(self.train_slots, 1)}

    def test_summary(self) -> dict:
        """Run-level metrics the test phase adds beyond its logged test_ metrics (none by default)."""
        return {}

    def summary_names(self) -> tuple[str, ...]:
        return (f"best_{self.objective}", "train_seconds", "train_tokens_per_sec", "train_padding_fraction")

    # What summary() is computed from lives in every checkpoint (plain numbers, loadable with weights_only=True),
    # so a run continued from last.ckpt counts all its epochs, not only those after the restart.
    FIT_STATE = ("train_tokens", "train_slots", "train_seconds")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rnnlab_fit_state"] = {**{name: getattr(self, name) for name in self.FIT_STATE},
                                          "fit_seconds": self.fit_elapsed()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for name, value in checkpoint.get("rnnlab_fit_state", {}).items():
            setattr(self, name, value)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer),
                                                         "interval": "epoch"}}


class SplitPerplexity:
    """For a TaskModule that scores token predictions: the cross-entropy summed over a whole split, so that
    <split>_loss is the mean per token of the split (not a mean of batch means) and <split>_ppl = exp of it.
    The subclass's __init__ sets `self.loss_sums = {}` and `self.token_counts = {}`."""

    def reset_split(self, stage: str) -> None:
        self.loss_sums[stage] = torch.zeros((), dtype=torch.float64, device=self.device)
        self.token_counts[stage] = 0

    def add_to_split(self, stage: str, total: torch.Tensor, tokens: int) -> None:
        """Count `total` (summed cross-entropy of `tokens` tokens) in the split's sum."""
        if stage not in self.loss_sums:
            self.reset_split(stage)
        self.loss_sums[stage] += total.detach().double()
        self.token_counts[stage] += tokens

    def log_split(self, stage: str) -> dict[str, float]:
        """Log and return <stage>_loss and <stage>_ppl (inf for a diverged run, not an error)."""
        import math

        mean = float(self.loss_sums[stage]) / max(self.token_counts[stage], 1)
        ppl = math.exp(mean) if mean < 700 else math.inf
        scores = {f"{stage}_loss": mean, f"{stage}_ppl": ppl}
        self.log_dict(scores)
        return scores


class PerplexityEpochs(SplitPerplexity):
    """SplitPerplexity for a task that scores every split this way (lm, generate): each split is reset at the
    start of its epoch and logged at the end."""

    validation_metrics = ("val_loss", "val_ppl")

    def on_train_epoch_start(self) -> None:
        self.reset_split("train")

    def on_validation_epoch_start(self) -> None:
        self.reset_split("val")

    def on_test_epoch_start(self) -> None:
        self.reset_split("test")

    def on_train_epoch_end(self) -> None:
        self.log_split("train")

    def on_validation_epoch_end(self) -> None:
        self.log_split("val")

    def on_test_epoch_end(self) -> None:
        self.log_split("test")
