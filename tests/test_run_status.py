"""One owner of a run's status: a run is FINISHED only once everything is logged, a job killed at any point is
continued by `resume=true`, and runs or sweeps started in the same second never share a directory or a parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY

from rnnlab.tracking import resume, runs

pytestmark = pytest.mark.slow

# Fault injection, loaded by every Python process of a command through PYTHONPATH: RNNLAB_TEST_KILL_AT names the
# point where the process SIGKILLs itself (a pre-empted node: no handler runs); RNNLAB_TEST_FROZEN_TIME makes
# every process see the same wall-clock second, as two commands started together do.
SITECUSTOMIZE = '''
import os, signal, time

frozen = os.environ.get("RNNLAB_TEST_FROZEN_TIME")
if frozen:
    _strftime = time.strftime
    time.strftime = lambda fmt, t=None: _strftime(fmt, time.localtime(float(frozen)) if t is None else t)

point = os.environ.get("RNNLAB_TEST_KILL_AT")
if point == "test":  # in the test phase (the process's RNNLAB_TEST_KILL_NTH-th, default the first), after a batch
    import pytorch_lightning as pl

    class _Kill(pl.Callback):
        def on_test_batch_end(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

    _test, calls = pl.Trainer.test, []
    def test(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == int(os.environ.get("RNNLAB_TEST_KILL_NTH", "1")):
            self.callbacks.append(_Kill())
        return _test(self, *args, **kwargs)
    pl.Trainer.test = test
elif point == "epoch2":  # when the third epoch starts: two epochs and their last.ckpt are done
    import pytorch_lightning as pl

    def on_train_epoch_start(self):
        if self.current_epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    pl.LightningModule.on_train_epoch_start = on_train_epoch_start
elif point == "artifacts":  # after the test metrics are logged, while the run's files are uploaded
    import pytorch_lightning as pl
    from mlflow.tracking import MlflowClient

    tested = []
    _test = pl.Trainer.test
    def test(self, *args, **kwargs):
        result = _test(self, *args, **kwargs)
        tested.append(True)
        return result
    pl.Trainer.test = test
    _log_artifact = MlflowClient.log_artifact
    def log_artifact(self, *args, **kwargs):
        if tested:
            os.kill(os.getpid(), signal.SIGKILL)
        return _log_artifact(self, *args, **kwargs)
    MlflowClient.log_artifact = log_artifact
'''


@pytest.fixture
def injected(tmp_path) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def _train(project: Path, uri: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {}), "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    full.pop("RNNLAB_PARENT_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", "rnnlab.train", *TINY, *args], cwd=project, env=full,
                          capture_output=True, text=True)


def _train_runs(client) -> list:
    exp = client.get_experiment_by_name("sentiment-tiny")
    return client.search_runs([exp.experiment_id], filter_string="tags.`rnnlab.kind` = 'train'",
                              order_by=["attributes.start_time ASC"])


KILLED_AFTER_FIT = ["model.cell=gru", "trainer.max_epochs=4", "callbacks.early_stopping.patience=1"]
SAME_SECOND = {"RNNLAB_TEST_FROZEN_TIME": "1764580000"}  # every run below starts "in the same second"


@pytest.fixture(scope="module")
def uninterrupted(tiny_project, tmp_path_factory):
    """The KILLED_AFTER_FIT configuration run once without interruption: what a resumed run must equal."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    (tmp / "site").mkdir()
    (tmp / "site/sitecustomize.py").write_text(SITECUSTOMIZE)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    proc = _train(tiny_project, uri, *KILLED_AFTER_FIT, env={"PYTHONPATH": str(tmp / "site"), **SAME_SECOND})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = _train_runs(runs.client(uri))
    run.test_acc_step = runs.client(uri).get_metric_history(run.info.run_id, "test_acc")[-1].step
    return run


@pytest.mark.parametrize("point", ["test", "artifacts"])
def test_a_job_killed_after_training_is_never_finished_and_resume_tests_it(tiny_project, tmp_path, injected,
                                                                          uninterrupted, point):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    killed = _train(tiny_project, uri, *KILLED_AFTER_FIT, env={**injected, **SAME_SECOND, "RNNLAB_TEST_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = _train_runs(client)
    assert run.info.status == "RUNNING"  # not FINISHED: Lightning's logger no longer ends the run after fit
    assert "best_val_acc" in run.data.metrics and run.data.tags.get(resume.FITTED_TAG)  # fit's summary landed
    assert ("test_acc" in run.data.metrics) == (point == "artifacts")
    epochs = len(client.get_metric_history(run.info.run_id, "val_loss"))
    # started in the same second as the uninterrupted run, yet in a directory of its own
    dirs = [Path(r.data.tags[resume.OUTPUT_DIR_TAG]) for r in (run, uninterrupted)]
    assert dirs[0] != dirs[1] and dirs[0].name[:19] == dirs[1].name[:19]
    for output_dir in dirs:
        assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]

    resumed = _train(tiny_project, uri, *KILLED_AFTER_FIT, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"run {run.info.run_id} (word2vec-gru-1l-uni-seed1234) had finished training when it stopped" in resumed.stdout
    (after,) = _train_runs(client)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == epochs  # tested, not trained again
    assert {"config.yaml", "tokenizer.json", "checkpoints"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    # the same numbers as the run that was never interrupted
    for key in ("test_acc", "test_loss", "best_val_acc", "epochs", "epoch", "params_total"):
        assert after.data.metrics[key] == uninterrupted.data.metrics[key], key
    # logged at the step where fit ended, as in the uninterrupted run (Lightning's `epoch` metric too)
    assert client.get_metric_history(run.info.run_id, "test_acc")[-1].step == uninterrupted.test_acc_step > 0


def test_a_run_killed_in_training_reports_its_best_epoch_from_before_the_kill(tiny_project, tmp_path, injected):
    """best_val_acc of a continued run is the best over all its epochs, those before the kill included: the
    checkpoint carries what the summary is computed from."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    config = ["model.cell=rnn", "trainer.max_epochs=4", "callbacks.early_stopping.patience=10"]
    killed = _train(tiny_project, uri, *config, env={**injected, "RNNLAB_TEST_KILL_AT": "epoch2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = _train_runs(client)
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 2 and not run.data.tags.get(
        resume.FITTED_TAG)
    resumed = _train(tiny_project, uri, *config, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (after,) = _train_runs(client)
    history = [m.value for m in client.get_metric_history(run.info.run_id, "val_acc")]
    assert after.info.status == "FINISHED" and len(history) == 4
    assert after.data.metrics["best_val_acc"] == max(history)


def test_two_sweeps_started_in_the_same_second_keep_their_own_parent_children_and_checkpoints(
        tiny_project, tmp_path, injected):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    client.create_experiment("sentiment-tiny")  # as a first run would have: no race on creating it
    env = {**os.environ, **injected, "RNNLAB_TEST_FROZEN_TIME": "1764580000", "MLFLOW_TRACKING_URI": uri,
           "PYTHONUNBUFFERED": "1"}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    # the default sweep directory (conf/hydra/), as a user who types the two commands gets
    command = [sys.executable, "-m", "rnnlab.train", "-m", *TINY, "trainer.max_epochs=2", "model.cell=rnn,gru",
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    procs = [subprocess.Popen([*command, f"seed={seed}"], cwd=tiny_project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for seed in (11, 12)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    exp = client.get_experiment_by_name("sentiment-tiny")
    all_runs = client.search_runs([exp.experiment_id])
    parents = [r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    sweep_dirs = [Path(tiny_project, p.data.tags["rnnlab.sweep_dir"]).resolve() for p in parents]
    assert sweep_dirs[0] != sweep_dirs[1]
    assert sweep_dirs[0].name[:19] == sweep_dirs[1].name[:19]  # the same second, as the old names collided on
    seeds = set()
    for parent, sweep_dir in zip(parents, sweep_dirs, strict=True):
        children = runs.child_runs(client, parent.info.run_id)
        assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
        assert {c.data.params["model.cell"] for c in children} == {"rnn", "gru"}
        (seed,) = {c.data.params["seed"] for c in children}  # one sweep's children only
        seeds.add(seed)
        for child in children:
            output_dir = Path(child.data.tags[resume.OUTPUT_DIR_TAG])
            assert output_dir.parent == sweep_dir
            assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        assert (sweep_dir / runs.PARENT_FILE).read_text() == parent.info.run_id
    assert seeds == {"11", "12"} and len(all_runs) == 6


def test_each_process_names_its_run_and_sweep_directories_once_and_anew(tiny_project):
    code = ("from rnnlab.config import compose; c = compose(return_hydra_config=True); "
            "print(c.hydra.run.dir, c.hydra.sweep.dir)")
    seen = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], cwd=tiny_project, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        run_dir, sweep_dir = out.stdout.split()
        assert Path(run_dir).name == Path(sweep_dir).name  # one value per process: Hydra copies it to every job
        seen.append(sweep_dir)
    assert seen[0] != seen[1]
