"""One selection rule per run (task.objective): the checkpoint tested, early stopping, the logged best_<metric>,
the sweeper's direction and the report's validation column (and its train-vs-validation gap) follow it. Read back from real runs in a SQLite store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import run_train

from rnnlab import checkpoints
from rnnlab.reporting.markdown import group_table
from rnnlab.reporting.statistics import GAP, SELECTED_EPOCH, config_groups
from rnnlab.reporting.sweep_runs import run_row
from rnnlab.tracking import runs

pytestmark = pytest.mark.slow


def _the_run(client):
    exp = client.get_experiment_by_name("sentiment-tiny")
    found = client.search_runs([exp.experiment_id]) if exp else []
    assert len(found) == 1
    return found[0]


def _history(client, run_id: str, metric: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)]


def _selected_checkpoint(client, run_id: str, tmp: str) -> tuple[dict, dict]:
    """The run's logged best.ckpt and the state of the ModelCheckpoint that chose it."""
    checkpoint = checkpoints.load(client.download_artifacts(run_id, "checkpoints/best.ckpt", tmp))
    states = [state for name, state in checkpoint["callbacks"].items() if name.startswith("ModelCheckpoint")]
    assert len(states) == 1
    return checkpoint, states[0]


def _validate_again(project: Path, client, run_id: str, checkpoint_path: str, monkeypatch) -> dict:
    """The selected checkpoint's validation scores, computed anew from the run's own config and data."""
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from rnnlab.tasks import build

    monkeypatch.chdir(project)
    with tempfile.TemporaryDirectory() as tmp:
        config = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", tmp))
    built = build(config)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True)
    return trainer.validate(built.module, datamodule=built.datamodule, ckpt_path=checkpoint_path, verbose=False,
                            weights_only=True)[0]


def test_the_reported_validation_score_is_the_selected_checkpoints(tiny_project, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_train(tiny_project, "model.cell=gru", "trainer.max_epochs=4", "callbacks.early_stopping.patience=4",
              tracking_uri=uri)
    client = runs.client(uri)
    run = _the_run(client)
    run_id, metrics = run.info.run_id, run.data.metrics
    config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))))
    assert config["callbacks"]["checkpoint"]["monitor"] == "val_acc"  # classification: validation accuracy
    assert config["callbacks"]["early_stopping"]["monitor"] == "val_acc"
    assert run.data.params["task.objective.metric"] == "val_acc"
    history = _history(client, run_id, "val_acc")
    assert len(history) == 4 and metrics["best_val_acc"] == max(history)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, state = _selected_checkpoint(client, run_id, tmp)
        assert state["monitor"] == "val_acc" and float(state["best_model_score"]) == metrics["best_val_acc"]
        # the epoch that checkpoint was saved at is the first epoch with the best validation accuracy
        assert checkpoint["epoch"] == history.index(max(history))
        again = _validate_again(tiny_project, client, run_id,
                                client.download_artifacts(run_id, "checkpoints/best.ckpt", tmp), monkeypatch)
    assert again["val_acc"] == pytest.approx(metrics["best_val_acc"], abs=1e-6)

    # the report's train-vs-validation gap: train accuracy at the checkpoint's epoch - the reported validation
    gap = _history(client, run_id, "train_acc")[checkpoint["epoch"]] - metrics["best_val_acc"]
    row = run_row(client, run, [])
    groups = config_groups([row])
    assert groups[0]["mean"][GAP] == pytest.approx(gap, abs=1e-12)
    header, body = group_table(groups)
    assert body[0][header.index("train − val acc (selected)")] == f"{gap:+.4f}"
    # and the report's selected epoch is that checkpoint's (Lightning counts epochs from 0)
    assert groups[0]["mean"][SELECTED_EPOCH] == checkpoint["epoch"] + 1
    assert body[0][header.index("selected epoch")] == f"{checkpoint['epoch'] + 1:.1f}"


def test_another_objective_moves_every_callback_with_it(tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_train(tiny_project, "task.objective.metric=val_loss", "task.objective.mode=min", tracking_uri=uri)
    client = runs.client(uri)
    run = _the_run(client)
    history = _history(client, run.info.run_id, "val_loss")
    assert run.data.metrics["best_val_loss"] == min(history) and "best_val_acc" not in run.data.metrics
    with tempfile.TemporaryDirectory() as tmp:
        _, state = _selected_checkpoint(client, run.info.run_id, tmp)
    assert state["monitor"] == "val_loss" and float(state["best_model_score"]) == min(history)


@pytest.mark.parametrize("overrides, message", [
    (["callbacks.checkpoint.monitor=val_loss"],
     "rnnlab: error: callbacks.checkpoint watches 'val_loss' (max) but task.objective is 'val_acc' (max): "
     "selection has one rule"),
    (["callbacks.early_stopping.mode=min"],
     "rnnlab: error: callbacks.early_stopping watches 'val_acc' (min) but task.objective is 'val_acc' (max)"),
    (["task.objective.metric=test_acc"],
     "rnnlab: error: task.objective.metric='test_acc' is not a validation metric of task=classify: choose one of "
     "['val_acc', 'val_f1', 'val_loss']"),
    (["hparams_search=sentiment_optuna", "hydra.sweeper.n_trials=1", "task.objective.metric=val_loss",
      "task.objective.mode=min"],
     "rnnlab: error: hydra.sweeper.direction=maximize but task.objective.mode=min (val_loss): set "
     "hydra.sweeper.direction=minimize"),
])
def test_a_second_selection_rule_is_refused_before_any_run(tiny_project, tmp_path, overrides, message):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_train(tiny_project, *(["-m"] if overrides[0].startswith("hparams") else []), *overrides,
                     tracking_uri=uri, check=False)
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    client = runs.client(uri)
    exp = client.get_experiment_by_name("sentiment-tiny")
    children = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("rnnlab.kind") != "sweep"] \
        if exp else []
    assert children == []  # no training run was created
