"""What a user watching a run or a sweep sees: one line per finished run (k/N, its name and score, and in a sweep
an estimate of the time left, read from the sweep's MLflow parent run, so it holds across processes and
launchers), one line per epoch when attached to a terminal, and no repeated third-party tips or warnings."""

from __future__ import annotations

import logging
import sys
import time
import warnings

from rnnlab.tracking.runs import child_runs

JOBS_TAG = "rnnlab.jobs"  # on a sweep's parent run: how many jobs the sweep launches
STARTED_TAG = "rnnlab.progress_started"  # ms since the epoch when this (possibly resumed) sweep started
DONE_AT_START_TAG = "rnnlab.progress_done_at_start"  # its jobs already done then (a resumed sweep)
_ENDED = ("FINISHED", "FAILED", "KILLED")


class _DropMessages(logging.Filter):
    def __init__(self, *starts: str):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_third_party(in_sweep: bool) -> None:
    """Lightning's "litlogger" tip and torch's `_pytree` deprecation warning (printed by every run), and in a
    sweep Lightning's per-run info lines (accelerator found, checkpoint restored): a sweep prints its own line
    per run instead. Warnings and errors still show."""
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropMessages) for f in lightning.filters):
        lightning.addFilter(_DropMessages("💡 Tip:"))
    if in_sweep:
        lightning.setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def epoch_lines():
    """A Lightning callback printing one line per epoch (the objective, train loss, time) when stdout is a
    terminal; None otherwise (a log file or a sweep gets the per-run line only)."""
    if not sys.stdout.isatty():
        return None
    import pytorch_lightning as pl

    class EpochLines(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
            metrics = trainer.callback_metrics
            shown = [f"{name}={float(metrics[name]):.4f}" for name in (pl_module.objective, "train_loss")
                     if name in metrics]
            print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {', '.join(shown)} "
                  f"({time.perf_counter() - self.start:.0f} s)", flush=True)

    return EpochLines()


def sweep_started(mlflow_client, parent_id: str, jobs: int | None) -> None:
    """Record on the parent run how many jobs the sweep has and when (this launch of) it started."""
    done = sum(child.info.status in _ENDED for child in child_runs(mlflow_client, parent_id))
    for key, value in ((JOBS_TAG, jobs if jobs is not None else ""), (STARTED_TAG, int(time.time() * 1000)),
                       (DONE_AT_START_TAG, done)):
        mlflow_client.set_tag(parent_id, key, str(value))


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def run_done(mlflow_client, run_id: str, run_name: str, parent_id: str | None, objective: str,
             summary: dict) -> None:
    """`[k/N] name: best_<objective>=..., test_<...>=... (about T left)` for a sweep's job; a single run's line
    has its id instead of k/N."""
    score = ", ".join(f"{key}={summary[key]:.4g}" for key in
                      (f"best_{objective}", f"test_{objective.removeprefix('val_')}") if key in summary)
    if parent_id is None:
        print(f"run {run_id} ({run_name}): {score}", flush=True)
        return
    tags = mlflow_client.get_run(parent_id).data.tags
    ended = [child.info.end_time for child in child_runs(mlflow_client, parent_id)
             if child.info.status in _ENDED and child.info.end_time]
    own = mlflow_client.get_run(run_id).info.end_time or max(ended, default=0)
    done = sum(end <= own for end in ended)  # this run's place: two that end together still count 1, 2
    jobs = int(tags[JOBS_TAG]) if tags.get(JOBS_TAG, "").isdigit() else None
    left = ""
    if jobs and STARTED_TAG in tags:
        new = done - int(tags.get(DONE_AT_START_TAG, "0"))
        elapsed = time.time() - int(tags[STARTED_TAG]) / 1000
        if new > 0 and jobs > done:
            left = f" (about {_duration(elapsed / new * (jobs - done))} left)"
        elif jobs <= done:
            left = f" (sweep done in {_duration(elapsed)})"
    print(f"[{done}/{jobs or '?'}] {run_name}: {score}{left}", flush=True)
