"""Hydra callback: one MLflow parent run per multirun, created once before any worker starts."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab.tracking import runs


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        uri = runs.tracking_uri(config.logger)
        mlflow_client = runs.client(uri)
        exp_id = runs.experiment_id(mlflow_client, config.logger.experiment_name,
                                    config.logger.get("artifact_location"))
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        parent = mlflow_client.create_run(exp_id, run_name=config.logger.get("sweep_name") or "sweep", tags={
            "rnnlab.kind": "sweep", "rnnlab.git_commit": runs.git_commit(),
            "rnnlab.sweep_dir": str(config.hydra.sweep.dir), "rnnlab.overrides": " ".join(overrides)})
        self.uri, self.parent_run_id = uri, parent.info.run_id
        runs.write_parent_run_id(config.hydra.sweep.dir, self.parent_run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        mlflow_client = runs.client(self.uri)
        children = runs.child_runs(mlflow_client, self.parent_run_id)
        ok = children and all(child.info.status == "FINISHED" for child in children)
        mlflow_client.set_terminated(self.parent_run_id, "FINISHED" if ok else "FAILED")
