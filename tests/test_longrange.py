"""Long-range synthetic problems: the generators' layouts and seeding, and tiny real runs through rnnlab-train."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from rnnlab.data.synthetic import SyntheticDataModule, adding_problem, copy_memory
from rnnlab.errors import ConfigError
from rnnlab.models.longrange import LongRangeModel
from rnnlab.tracking import runs

# Small splits and a short budget: a run takes seconds on one thread.
TINY = ["experiment=longrange", "torch_threads=1", "data.sizes.train=2000", "data.sizes.validation=500",
        "data.sizes.test=500", "model.hidden_size=32", "trainer.val_check_interval=50", "optimizer.lr=0.01"]


def train_longrange(tmp_path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m rnnlab.train experiment=longrange ...` in an empty directory: no data files are needed."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "RNNLAB_CONF_DIR": str(REPO / "conf"), "PYTHONUNBUFFERED": "1"}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    proc = subprocess.run([sys.executable, "-m", "rnnlab.train", *TINY, *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def test_adding_targets_are_the_sum_of_the_two_marked_values_one_per_half():
    inputs, targets = adding_problem(200, 11, seed=3)
    assert inputs.shape == (200, 11, 2) and inputs.dtype == torch.float32 and targets.shape == (200,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :5].sum(1) == 1).all() and (markers[:, 5:].sum(1) == 1).all()  # halves: 5 | 6 steps
    assert torch.allclose((values * markers).sum(1), targets)
    # the markers land everywhere in their halves, not at a few fixed places
    assert (markers.sum(0) > 0).all()


def test_adding_is_determined_by_its_seed():
    first, again, other = adding_problem(50, 20, 7), adding_problem(50, 20, 7), adding_problem(50, 20, 8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_adding_constant_prediction_scores_about_one_sixth():
    _, targets = adding_problem(20000, 30, seed=0)
    assert abs(targets.var(unbiased=False).item() - 1 / 6) < 0.01


def test_copy_memory_layout():
    inputs, targets = copy_memory(100, length=6, seed=1, num_symbols=4, copy_length=3)
    assert inputs.shape == (100, 3 + 6 + 3) and targets.shape == (100, 3) and inputs.dtype == torch.long
    assert torch.equal(inputs[:, :3], targets)  # the symbols to remember come first ...
    assert ((targets >= 1) & (targets <= 4)).all() and set(targets.unique().tolist()) == {1, 2, 3, 4}
    assert (inputs[:, 3:8] == 0).all()  # ... then blanks ...
    assert (inputs[:, 8] == 5).all()  # ... the delimiter on the delay's last step ...
    assert (inputs[:, 9:] == 0).all()  # ... and blanks while the model recalls
    assert torch.equal(copy_memory(100, 6, 1, 4, 3)[0], inputs)
    assert not torch.equal(copy_memory(100, 6, 2, 4, 3)[0], inputs)


def test_datamodule_splits_differ_and_batches_carry_full_lengths():
    def first_batch(seed: int) -> dict:
        data = SyntheticDataModule("adding", 12, {"train": 40, "validation": 20, "test": 20}, batch_size=8,
                                   eval_batch_size=20, seed=seed)
        data.setup()
        assert not torch.equal(data.splits["train"].tensors[0][:20], data.splits["validation"].tensors[0])
        return next(iter(data.train_dataloader()))

    batch = first_batch(5)
    assert batch["inputs"].shape == (8, 12, 2) and batch["lengths"].tolist() == [12] * 8
    assert torch.equal(first_batch(5)["inputs"], batch["inputs"])  # data and shuffling follow the seed
    assert not torch.equal(first_batch(6)["inputs"], batch["inputs"])


@pytest.mark.parametrize("problem", ["adding", "copy"])
def test_model_output_shapes(problem):
    model = LongRangeModel(problem, num_symbols=4, embedding_dim=5, cell="gru", hidden_size=6, bidirectional=True)
    inputs = adding_problem(3, 9, 0)[0] if problem == "adding" else copy_memory(3, 9, 0, 4, 2)[0]
    out = model(inputs, torch.full((3,), inputs.size(1)))
    assert out.shape == ((3,) if problem == "adding" else (3, 13, 6))


def test_bad_lengths_and_problems_are_config_errors():
    with pytest.raises(ConfigError, match="data.length=1"):
        adding_problem(4, 1, 0)
    with pytest.raises(ConfigError, match="data.problem='parity'"):
        SyntheticDataModule("parity", 10, {"train": 1, "validation": 1, "test": 1})
    with pytest.raises(ConfigError, match="data.sizes"):
        SyntheticDataModule("adding", 10, {"train": 10, "validation": 0, "test": 1})


@pytest.mark.slow
def test_an_lstm_solves_a_short_adding_problem_and_mlflow_holds_the_verdict(tmp_path):
    train_longrange(tmp_path, "model.cell=lstm", "data.length=10", "trainer.max_steps=400")
    client = runs.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("longrange-adding").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "lstm-T10"
    metrics = run.data.metrics
    assert abs(metrics["baseline_mse"] - 1 / 6) < 0.03  # the test set's variance
    assert metrics["test_mse"] < 0.2 * metrics["baseline_mse"]
    assert metrics["solved"] == (1.0 if metrics["test_mse"] < 0.01 else 0.0)
    history = client.get_metric_history(run.info.run_id, "val_mse")
    assert [m.step for m in history] == list(range(49, 400, 50))  # every 50 steps: steps_to_solve's resolution
    solved_at = [m.step + 1 for m in history if m.value < 0.01]
    if solved_at:
        assert metrics["steps_to_solve"] == solved_at[0]
    else:
        assert math.isnan(metrics["steps_to_solve"])
    for key in ("best_val_mse", "train_loss", "train_tokens_per_sec", "params_total"):
        assert key in metrics, key


@pytest.mark.slow
def test_a_copy_run_logs_recall_accuracy_and_the_guessing_baseline(tmp_path):
    train_longrange(tmp_path, "data=copy", "model.cell=gru", "data.length=5", "data.num_symbols=4",
                    "data.copy_length=3", "trainer.max_steps=100")
    client = runs.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("longrange-copy").experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert abs(metrics["baseline_loss"] - math.log(4)) < 0.02  # guessing among 4 symbols
    assert 0 <= metrics["test_acc"] <= 1 and metrics["test_loss"] > 0
    for key in ("solved", "steps_to_solve", "best_val_acc", "val_loss"):
        assert key in metrics, key


@pytest.mark.parametrize("override, message", [
    ("data.length=1", "rnnlab: error: data.length=1 is too short for the adding problem"),
    ("data.problem=unknown", "rnnlab: error: data.problem='unknown': must be one of adding|copy"),
    ("task.objective.metric=val_loss", "rnnlab: error: task.objective.metric='val_loss' is not a validation "
                                       "metric of task=longrange: choose one of ['val_mse']"),
    ("callbacks.checkpoint.monitor=val_loss", "rnnlab: error: callbacks.checkpoint watches 'val_loss' (min) but "
                                              "task.objective is 'val_mse' (min): selection has one rule"),
])
def test_a_bad_config_value_is_one_clear_error(tmp_path, override, message):
    proc = train_longrange(tmp_path, override, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
