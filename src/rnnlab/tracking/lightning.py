"""What rnnlab adds to Lightning's training loop: an MLflow logger for a run that rnnlab owns, and the random
streams saved with every checkpoint."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import MLFlowLogger

from rnnlab import random_state

RANDOM_STATE_KEY = "rnnlab_random_state"


class OwnedRunLogger(MLFlowLogger):
    """Logs a run's metrics like MLFlowLogger, but leaves the run's status alone: Lightning's `finalize` marks the
    run FINISHED when `fit` ends, before the test metrics, summaries and artifacts exist. `tracking.runs.run` ends
    it FINISHED or FAILED once everything is logged."""

    def finalize(self, status: str = "success") -> None:
        return None


class RandomStateInCheckpoint(pl.Callback):
    """Every checkpoint carries the random streams as they were when it was written (after the epoch's
    validation); `fit` continued from it (resume=true) starts its next epoch from them, so dropout masks and
    everything else drawn afterwards are those of an uninterrupted run. Lightning restores weights, optimizer and
    loop counters but not the streams."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RANDOM_STATE_KEY] = random_state.snapshot()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if trainer.state.fn == "fit" and RANDOM_STATE_KEY in checkpoint:  # testing a checkpoint draws nothing
            random_state.restore(checkpoint[RANDOM_STATE_KEY])
