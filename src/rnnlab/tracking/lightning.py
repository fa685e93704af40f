"""Lightning's MLflow logger for a run that rnnlab owns."""

from __future__ import annotations

from pytorch_lightning.loggers import MLFlowLogger


class OwnedRunLogger(MLFlowLogger):
    """Logs a run's metrics like MLFlowLogger, but leaves the run's status alone: Lightning's `finalize` marks the
    run FINISHED when `fit` ends, before the test metrics, summaries and artifacts exist. `tracking.runs.run` ends
    it FINISHED or FAILED once everything is logged."""

    def finalize(self, status: str = "success") -> None:
        return None
