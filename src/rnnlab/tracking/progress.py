"""What a user watching a run or a sweep sees: one line per finished run (k/N, its name and score, and in a sweep
an estimate of the time left, read from the sweep's MLflow parent run, so it holds across processes and
launchers), one line per epoch when attached to a terminal, and no repeated third-party tips or warnings."""

from __future__ import annotations

import heapq
import logging
import os
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


def sweep_started(mlflow_client, parent_id: str, jobs: int | None, now: float | None = None) -> None:
    """Record on the parent run how many jobs the sweep has and when (this launch of) it started (`now`: seconds
    since the epoch, the clock by default)."""
    done = sum(child.info.status in _ENDED for child in child_runs(mlflow_client, parent_id))
    started = int((time.time() if now is None else now) * 1000)
    for key, value in ((JOBS_TAG, jobs if jobs is not None else ""), (STARTED_TAG, started),
                       (DONE_AT_START_TAG, done)):
        mlflow_client.set_tag(parent_id, key, str(value))


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def sweep_parallelism(launcher, sweeper=None) -> int | None:
    """How many jobs a sweep's Hydra config runs at once (`launcher`, `sweeper`: the hydra.launcher and
    hydra.sweeper mappings): the basic launcher one after another, joblib its n_jobs (joblib's negative counts:
    -1 every CPU, -2 all but one, ...), no more than the sweeper hands the launcher in one batch (the Optuna
    sweeper's n_jobs, the basic sweeper's max_batch_size); None where the launcher does not say."""
    if not launcher:
        return None
    if str(launcher.get("_target_", "")).endswith("BasicLauncher"):
        width = 1
    else:
        n_jobs = launcher.get("n_jobs")
        if not isinstance(n_jobs, int) or n_jobs == 0:
            return None
        width = n_jobs if n_jobs > 0 else max((os.cpu_count() or 1) + 1 + n_jobs, 1)
    sweeper = sweeper or {}
    key = "n_jobs" if "Optuna" in str(sweeper.get("_target_", "")) else "max_batch_size"
    batch = sweeper.get(key)
    return min(width, batch) if isinstance(batch, int) and batch > 0 else width


def _this_sweeps_parallelism() -> int | None:
    """The running sweep job's parallelism (Hydra sets its config in every job, joblib workers too)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hydra = HydraConfig.get()
        return sweep_parallelism(hydra.get("launcher"), hydra.get("sweeper"))
    except Exception:  # an estimate is not worth failing a finished run for
        return None


def time_left(children, started_ms: int, jobs: int, parallel: int | None, now_ms: float) -> float | None:
    """Seconds until the sweep's last job ends, with `parallel` jobs at once (None: the most of this launch's
    runs seen running together): the runs in flight end after the mean run time of this launch (none sooner
    than now), and each job not started yet takes a mean run time on the first free slot. None with no run of
    this launch ended yet."""
    fresh = [c.info for c in children if (c.info.start_time or 0) >= started_ms]
    # runs started in this launch say how long a run takes; a resumed run (its first start earlier) only as a
    # last resort: its time here is what was left of it
    took = [i.end_time - i.start_time for i in fresh if i.status in _ENDED and i.end_time]
    if not took:
        took = [i.end_time - max(i.start_time or 0, started_ms) for i in (c.info for c in children)
                if i.status in _ENDED and i.end_time and i.end_time >= started_ms]
    if not took:
        return None
    mean = sum(took) / len(took)
    running = [now_ms - i.start_time for i in fresh if i.status == "RUNNING"]
    ended = sum(c.info.status in _ENDED for c in children)
    # a resumed run in flight (started before this launch) counts as not started: its own progress is unknown
    queued = max(jobs - ended - len(running), 0)
    if parallel is None:  # the most runs of this launch that overlapped: the launcher's width once it is full
        spans = [(i.start_time, i.end_time if i.status in _ENDED and i.end_time else now_ms) for i in fresh]
        parallel = max((sum(s <= start < e for s, e in spans) for start, _ in spans), default=1)
    slots = [max(mean - elapsed, 0.0) for elapsed in running]
    slots += [0.0] * max(parallel - len(slots), 0)
    heapq.heapify(slots)
    for _ in range(queued):  # each job waiting takes the slot that frees first
        heapq.heappush(slots, heapq.heappop(slots) + mean)
    return max(slots, default=0.0) / 1000


def run_done(mlflow_client, run_id: str, run_name: str, parent_id: str | None, objective: str,
             summary: dict, parallel: int | None = None, now: float | None = None) -> None:
    """`[k/N] name: best_<objective>=..., test_<...>=... (about T left)` for a sweep's job; a single run's line
    has its id instead of k/N. The time left counts the jobs that run at once: `parallel`, else what the
    sweep's launcher and sweeper allow (Hydra's config of this job), else as many as were seen running
    together. `now`: seconds since the epoch (the clock by default)."""
    score = ", ".join(f"{key}={summary[key]:.4g}" for key in
                      (f"best_{objective}", f"test_{objective.removeprefix('val_')}") if key in summary)
    if parent_id is None:
        print(f"run {run_id} ({run_name}): {score}", flush=True)
        return
    now_ms = (time.time() if now is None else now) * 1000
    tags = mlflow_client.get_run(parent_id).data.tags
    children = child_runs(mlflow_client, parent_id)
    ended = [child.info.end_time for child in children if child.info.status in _ENDED and child.info.end_time]
    own = mlflow_client.get_run(run_id).info.end_time or max(ended, default=0)
    done = sum(end <= own for end in ended)  # this run's place: two that end together still count 1, 2
    jobs = int(tags[JOBS_TAG]) if tags.get(JOBS_TAG, "").isdigit() else None
    left = ""
    if jobs and STARTED_TAG in tags:
        started = int(tags[STARTED_TAG])
        if jobs > done:
            parallel = parallel or _this_sweeps_parallelism()
            seconds = time_left(children, started, jobs, parallel, now_ms)
            if seconds is not None:
                left = f" (about {_duration(seconds)} left)"
        else:
            left = f" (sweep done in {_duration((now_ms - started) / 1000)})"
    print(f"[{done}/{jobs or '?'}] {run_name}: {score}{left}", flush=True)
