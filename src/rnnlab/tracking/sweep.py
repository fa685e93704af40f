"""Hydra callback: one MLflow parent run per multirun, created once before any worker starts."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab.config_schema import validate_sweep
from rnnlab.errors import RnnlabError
from rnnlab.tracking import progress, resume, run_metadata, runs


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        uri = runs.tracking_uri(config.logger)
        try:  # every job's values and the store, before the parent run exists
            validate_sweep(config)
            runs.check_reachable(uri)
        except RnnlabError as err:  # Hydra callbacks run outside the entry point's error handling
            print(f"rnnlab: error: {err}", file=sys.stderr)
            sys.exit(2)
        mlflow_client = runs.client(uri)
        exp_id = runs.experiment_id(mlflow_client, config.logger.experiment_name,
                                    config.logger.get("artifact_location"))
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        key = resume.sweep_key(overrides)
        parent = resume.latest_sweep(mlflow_client, exp_id, key) if config.get("resume") else None
        if parent is not None:  # the interrupted sweep of the same command goes on under its own parent run
            mlflow_client.update_run(parent.info.run_id, status="RUNNING")
            print(f"resume: continuing sweep run {parent.info.run_id} (started with the same overrides)")
        else:
            parent = mlflow_client.create_run(exp_id, run_name=sweep_name(config), tags={
                **run_metadata.source_tags("rnnlab-train -m"),
                "rnnlab.kind": "sweep", "rnnlab.git_commit": runs.git_commit(),
                runs.CODE_DIGEST_TAG: runs.code_digest(), resume.SWEEP_KEY_TAG: key,
                "rnnlab.sweep_dir": str(config.hydra.sweep.dir),
                "rnnlab.overrides": runs.redact(" ".join(overrides))})  # without a URI's user:password@
        self.uri, self.parent_run_id = uri, parent.info.run_id
        run_metadata.mark_model_training(mlflow_client, exp_id)
        progress.sweep_started(mlflow_client, self.parent_run_id, sweep_size(config))
        runs.write_parent_run_id(config.hydra.sweep.dir, self.parent_run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        mlflow_client = runs.client(self.uri)
        children = runs.child_runs(mlflow_client, self.parent_run_id)
        ok = children and all(child.info.status == "FINISHED" for child in children)
        log_optimization_results(mlflow_client, self.parent_run_id, Path(config.hydra.sweep.dir))
        mlflow_client.set_terminated(self.parent_run_id, "FINISHED" if ok else "FAILED")


def sweep_name(config) -> str:
    """logger.sweep_name, else `<study> <date time>` (the experiment config chosen, e.g. `sentiment`)."""
    import datetime

    if config.logger.get("sweep_name"):
        return str(config.logger.sweep_name)
    study = config.hydra.runtime.choices.get("experiment") or "sweep"
    return f"{study} {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"


def sweep_size(config) -> int | None:
    """How many jobs the sweep launches: the basic sweeper's grid, an optimising sweeper's n_trials."""
    from rnnlab.config import crossed_jobs

    sweeper = config.hydra.sweeper
    if str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return len(crossed_jobs(sweeper.get("params") or {}, OmegaConf.to_container(config.hydra.overrides.task)))
    trials = sweeper.get("n_trials")
    return int(trials) if isinstance(trials, int) else None


def log_optimization_results(mlflow_client, parent_run_id: str, sweep_dir: Path) -> None:
    """A hyper-parameter sweeper's result (the Optuna sweeper writes <sweep dir>/optimization_results.yaml):
    the file as an artifact of the parent run, its best parameters as `best.<key>` params and `best_value`."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return
    mlflow_client.log_artifact(parent_run_id, str(path))
    results = OmegaConf.to_container(OmegaConf.load(path))
    if "best_params" in results:  # a single objective (several give a Pareto front: the artifact only)
        runs.log_params(mlflow_client, parent_run_id,
                        {f"best.{key}": value for key, value in results["best_params"].items()})
        runs.log_metrics(mlflow_client, parent_run_id, {"best_value": float(results["best_value"])})
