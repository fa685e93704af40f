"""Training runs and sweeps, read back from a real SQLite MLflow store."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, grid_sweep_children, run_train

from rnnlab.predict import predict
from rnnlab.tasks import load_run
from rnnlab.tracking import runs

pytestmark = pytest.mark.slow


def _store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, runs.client(uri)


def _only_experiment_runs(client):
    exp = client.get_experiment_by_name("sentiment-tiny")
    return client.search_runs([exp.experiment_id], max_results=100)


def _ray_python() -> str:
    """The interpreter of .venv-ray (`make setup-ray`: the Ray launcher pins cloudpickle<3, so it has a venv of
    its own)."""
    if (REPO / ".venv-ray" / ".installed").exists():
        return str(REPO / ".venv-ray" / "bin" / "python")
    message = ".venv-ray is missing: run `make setup-ray` for the Ray launcher test"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _processes_under(path: str) -> list[int]:
    """Ids of the processes started for the Ray instance under `path`: its command line names the dir, or (Ray
    workers retitle themselves `ray::...`) their environment holds RNNLAB_TEST_RAY_DIR=<path>."""
    marks, pids = (path.encode(), f"RNNLAB_TEST_RAY_DIR={path}".encode()), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marks[0] in (proc / "cmdline").read_bytes() or marks[1] in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def ray_temp_dir(monkeypatch):
    """A fresh root for the local Ray instance's sessions, sockets and logs. Under /tmp, not tmp_path: its Unix
    socket paths must stay under 108 bytes. Whatever Ray left running under it is killed afterwards."""
    path = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RNNLAB_TEST_RAY_DIR", path)  # inherited by the driver and every Ray process
    yield path
    for pid in _processes_under(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    # submitit's local executor: each job a process of its own, as on SLURM (hydra/launcher=submitit_slurm)
    ["hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=1", "hydra.launcher.cpus_per_task=1",
     "hydra.launcher.timeout_min=20"],
    # a local Ray instance of its own (address=local: never someone else's), 2 CPUs, run from .venv-ray
    ["hydra/launcher=ray", "hydra.launcher.ray.init.address=local", "+hydra.launcher.ray.init.num_cpus=2",
     "+hydra.launcher.ray.init.include_dashboard=false"]], ids=["joblib", "submitit_local", "ray"])
def test_sweep_through_a_launcher_lands_complete_in_mlflow(launcher, tiny_project, tmp_path, request):
    uri, client = _store(tmp_path)
    python = sys.executable
    if launcher[0] == "hydra/launcher=ray":
        python, ray_dir = _ray_python(), request.getfixturevalue("ray_temp_dir")
        launcher = [*launcher, f"+hydra.launcher.ray.init._temp_dir={ray_dir}"]
    run_train(tiny_project, "-m", *launcher, "model.cell=rnn,gru", "model.bidirectional=false,true",
              f"hydra.sweep.dir={tmp_path / 'sweep'}", tracking_uri=uri, python=python)
    if launcher[0] == "hydra/launcher=ray":  # the driver's exit shut its Ray instance down
        assert _processes_under(ray_dir) == []
    children = grid_sweep_children(client, _only_experiment_runs(client))
    for child in children:
        metrics, tags = child.data.metrics, child.data.tags
        for key in ("test_acc", "test_f1", "test_loss", "best_val_acc", "params_total", "fit_seconds",
                    "train_tokens_per_sec"):
            assert key in metrics, key
        epochs = len(client.get_metric_history(child.info.run_id, "val_loss"))
        assert epochs >= 1 and len(client.get_metric_history(child.info.run_id, "train_acc")) == epochs
        assert tags["rnnlab.git_commit"] and len(tags["rnnlab.data_hash"]) == 64
        assert len(tags["rnnlab.tokenizer_hash"]) == 64
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "tokenizer.json", "checkpoints"} <= artifacts
        ckpts = [a.path for a in client.list_artifacts(child.info.run_id, "checkpoints")]
        assert ckpts == ["checkpoints/best.ckpt"]
    # bidirectional doubles the recurrent parameters of a layer: more parameters than the uni run
    params = {(c.data.params["model.cell"], c.data.params["model.bidirectional"]): c.data.metrics["params_total"]
              for c in children}
    assert params[("gru", "True")] > params[("gru", "False")] > params[("rnn", "False")]


def test_same_config_and_seed_give_identical_metrics_in_two_processes(tiny_project, tmp_path):
    uri, client = _store(tmp_path)
    for _ in range(2):
        run_train(tiny_project, "model.cell=lstm", "model.bidirectional=true", tracking_uri=uri)
    first, second = _only_experiment_runs(client)
    for key in ("test_acc", "test_loss", "best_val_acc"):
        assert first.data.metrics[key] == second.data.metrics[key], key
    history = [[m.value for m in client.get_metric_history(r.info.run_id, "train_loss")] for r in (first, second)]
    assert history[0] == history[1] and len(history[0]) >= 2


def test_a_tiny_model_learns_the_tiny_task_and_predicts_from_its_run(tiny_project, tmp_path):
    uri, client = _store(tmp_path)
    run_train(tiny_project, "model.cell=gru", "trainer.max_epochs=8", "optimizer.lr=0.01", tracking_uri=uri)
    (run,) = _only_experiment_runs(client)
    assert run.data.metrics["test_acc"] >= 0.8  # chance is 0.5
    model, tokenizer, config = load_run(run.info.run_id, uri)
    rows = predict(model, tokenizer, config, ["The film was wonderful and brilliant.", "A dull and awful movie."])
    assert [row["label"] for row in rows] == ["positive", "negative"]
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-3


def test_unknown_cell_is_one_clear_error(tiny_project, tmp_path):
    uri, _ = _store(tmp_path)
    proc = run_train(tiny_project, "model.cell=transformer", tracking_uri=uri, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "rnnlab: error: model.cell='transformer': must be one of rnn|lstm|gru" in proc.stderr


def test_a_crashing_run_is_marked_failed_not_running(tiny_project, tmp_path):
    uri, client = _store(tmp_path)
    # a value the config schema lets through (betas has no rule) but torch refuses when fit builds the optimizer
    proc = run_train(tiny_project, "+optimizer.betas=[2.0,0.999]", tracking_uri=uri, check=False)
    assert proc.returncode != 0
    (run,) = _only_experiment_runs(client)
    assert run.info.status == "FAILED"
