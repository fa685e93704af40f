"""Analyses that run inside a training run (conf/analysis/) and log their artifacts to the run.

Both read the first `analysis.batches` validation batches in eval mode, under a saved and restored RNG state,
so that switching them on changes nothing about training. Files go to <run output dir>/analysis/ and, with an
MLflow logger, to the run's artifacts under `analysis/`:

- analysis.gradient_flow: gradient_flow.csv (rnnlab.analysis.gradient_flow's table plus a `stage` column:
  init = before the first step, trained = at the end of fit) and gradient_flow.png (both stages); metrics
  grad_h_ratio_init, grad_h_ratio_trained (see gradient_flow.grad_ratio: the top layer's forward dL/dh at
  distance D over distance 0) and grad_h_ratio_distance (that D).
- analysis.gates: at the end of fit, gate_stats.csv (gates.gate_statistics) and gates_layer<k>.png (heatmaps of
  validation sequence `analysis.sentence_index`, tokens decoded with the run's tokenizer when it has one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytorch_lightning as pl
import torch

from rnnlab.analysis import gates, gradient_flow
from rnnlab.analysis.unroll import find_encoder
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.errors import ConfigError
from rnnlab.models.modes import evaluating
from rnnlab.random_state import kept_random_state


def analysis_callbacks(cfg, built) -> list:
    """The Lightning callbacks that `cfg.analysis` switches on (none by default)."""
    analysis = cfg.get("analysis") or {}
    wanted = [name for name in ("gradient_flow", "gates") if analysis.get(name, False)]
    seeds = analysis.get("seeds")
    if not wanted or (seeds is not None and cfg.seed not in seeds):  # analysed on some seeds only: cheaper
        return []
    batches = int(analysis.get("batches", 2))
    if batches < 1:
        raise ConfigError(f"analysis.batches={batches} must be at least 1")
    task = built.module
    find_encoder(task)  # a clear error now rather than at the end of training
    if not _has_batch_loss(task):
        raise ConfigError(f"analysis.{wanted[0]}=true needs the task to define batch_loss; "
                          f"{type(task).__name__} does not: set analysis.{wanted[0]}=false")
    callbacks = []
    if "gradient_flow" in wanted:
        callbacks.append(GradientFlow(batches))
    if "gates" in wanted:
        gates.one_sequence(built.datamodule.val_dataloader(), int(analysis.get("sentence_index", 0)))  # in range?
        tokenizer = next((Path(p) for p in built.artifacts if Path(p).name == "tokenizer.json"), None)
        callbacks.append(Gates(batches, tokenizer, max_units=int(analysis.get("max_units", 32)),
                               max_tokens=int(analysis.get("max_tokens", 60)),
                               sentence_index=int(analysis.get("sentence_index", 0))))
    return callbacks


def _has_batch_loss(task) -> bool:
    from rnnlab.tasks.base import TaskModule

    return type(task).batch_loss is not TaskModule.batch_loss


@contextlib.contextmanager
def quietly(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and untouched random streams for the block; each submodule's mode and every RNG state
    (python, numpy, torch, CUDA) are put back afterwards, so training continues exactly as without it."""
    with evaluating(module), kept_random_state():
        yield


def output_dir(trainer) -> Path:
    path = Path(trainer.default_root_dir) / "analysis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mlflow(trainer):
    """(client, run_id) of the trainer's MLflow logger, or None without one."""
    for logger in trainer.loggers:
        if hasattr(logger, "run_id") and hasattr(logger.experiment, "log_artifact"):
            return logger.experiment, logger.run_id
    return None


def log_files(trainer, paths: list[Path]) -> None:
    if mlflow := _mlflow(trainer):
        client, run_id = mlflow
        for path in paths:
            client.log_artifact(run_id, str(path), "analysis")


def log_metrics(trainer, metrics: dict[str, float]) -> None:
    if mlflow := _mlflow(trainer):
        client, run_id = mlflow
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value), step=trainer.global_step)


def ratio_metrics(rows: list[dict], stage: str) -> dict[str, float]:
    ratio, distance = gradient_flow.grad_ratio(rows)
    return {f"grad_h_ratio_{stage}": ratio, "grad_h_ratio_distance": distance}


def write_gradient_flow(rows: list[dict], model, out: Path) -> list[Path]:
    """gradient_flow.csv and gradient_flow.png (rows with a stage column) in `out`."""
    encoder = find_encoder(model)
    title = (f"gradient flow: {encoder.cell}, {encoder.num_layers} layer(s), "
             f"{'bi' if encoder.bidirectional else 'uni'}directional (dashed: init, solid: trained)")
    return [gradient_flow.write_csv(rows, out / "gradient_flow.csv"),
            gradient_flow.plot_gradient_flow(rows, out / "gradient_flow.png", title)]


def validation_batches(trainer, count: int) -> list[dict]:
    return list(islice(trainer.datamodule.val_dataloader(), count))


class GradientFlow(pl.Callback):
    """Gradient norms through time at initialisation (on_fit_start) and after training (on_fit_end)."""

    def __init__(self, batches: int = 2):
        self.batches = batches
        self.rows: list[dict] = []

    def _measure(self, trainer, task, stage: str) -> None:
        with quietly(task):
            rows = gradient_flow.gradient_flow(task, validation_batches(trainer, self.batches))
        self.rows += [{"stage": stage, **row} for row in rows]
        log_metrics(trainer, ratio_metrics(rows, stage))

    def on_fit_start(self, trainer, pl_module) -> None:
        self.rows = []
        self._measure(trainer, pl_module, "init")

    def on_fit_end(self, trainer, pl_module) -> None:
        self._measure(trainer, pl_module, "trained")
        log_files(trainer, write_gradient_flow(self.rows, pl_module, output_dir(trainer)))


class Gates(pl.Callback):
    """Gate statistics over validation batches and heatmaps of one validation sequence, after training."""

    def __init__(self, batches: int = 2, tokenizer: Path | None = None, max_units: int = 32, max_tokens: int = 60,
                 sentence_index: int = 0):
        self.batches, self.tokenizer = batches, tokenizer
        self.max_units, self.max_tokens, self.sentence_index = max_units, max_tokens, sentence_index

    def on_fit_end(self, trainer, pl_module) -> None:
        out = output_dir(trainer)
        loader = trainer.datamodule.val_dataloader()
        with quietly(pl_module):
            rows = gates.gate_statistics(pl_module, loader, self.batches)
            sequence = gates.one_sequence(loader, self.sentence_index)
            tokens = None
            if self.tokenizer is not None and self.tokenizer.exists():
                tokens = gates.token_strings(load_tokenizer(self.tokenizer), sequence["input_ids"][0])
            pictures = gates.plot_gate_heatmaps(pl_module, sequence, out, tokens, self.max_units, self.max_tokens)
        log_files(trainer, [gradient_flow.write_csv(rows, out / "gate_stats.csv"), *pictures])
