"""Resumable sweeps: kill a sweep part-way, re-run it with resume=true, and find every configuration once, the
continued one with the numbers of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY, run_train

from rnnlab.tracking import resume, runs

pytestmark = pytest.mark.slow

# 3 configurations run one after the other (Hydra's basic launcher); long enough to be killed mid-run
SWEEP = ["-m", *TINY, "trainer.max_epochs=12", "callbacks.early_stopping.patience=100", "model.cell=rnn,lstm,gru"]


def _sweep(project, tmp_path, name: str, *extra: str, tracking_uri: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONUNBUFFERED": "1"}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([sys.executable, "-m", "rnnlab.train", *SWEEP, *extra,
                             f"hydra.sweep.dir={tmp_path / name}"], cwd=project, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path, proc, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the sweep ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


def test_a_killed_sweep_resumes_skipping_finished_runs_and_continuing_the_killed_one(tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    first = _sweep(tiny_project, tmp_path, "first", tracking_uri=uri)
    _wait_for(tmp_path / "first/1/checkpoints/last.ckpt", first)  # job 0 done, job 1 has finished an epoch
    os.killpg(first.pid, signal.SIGKILL)  # a pre-empted node: no handler runs, MLflow still says RUNNING
    first.wait()

    exp = client.get_experiment_by_name("sentiment-tiny")
    before = {r.data.params["model.cell"]: r for r in client.search_runs([exp.experiment_id])
              if r.data.tags.get("rnnlab.kind") == "train"}
    assert before["rnn"].info.status == "FINISHED" and before["lstm"].info.status == "RUNNING"
    assert "gru" not in before
    killed_epochs = len(client.get_metric_history(before["lstm"].info.run_id, "val_loss"))
    assert 1 <= killed_epochs < 12

    # a new sweep directory, as a user gets by re-running the same command later
    second = _sweep(tiny_project, tmp_path, "second", "resume=true", tracking_uri=uri)
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    assert f"skipping word2vec-rnn-1l-uni-seed1234: run {before['rnn'].info.run_id}" in log
    assert f"continuing run {before['lstm'].info.run_id}" in log

    all_runs = client.search_runs([exp.experiment_id])
    parents = [r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # the interrupted sweep, completed
    children = {c.data.params["model.cell"]: c for c in runs.child_runs(client, parents[0].info.run_id)}
    assert sorted(children) == ["gru", "lstm", "rnn"] and len(all_runs) == 4
    assert all(c.info.status == "FINISHED" for c in children.values())
    assert children["rnn"].info.end_time == before["rnn"].info.end_time  # not trained again
    assert children["lstm"].info.run_id == before["lstm"].info.run_id
    # the continued run's epochs follow on from the killed ones: 12 in all, none twice
    history = client.get_metric_history(children["lstm"].info.run_id, "val_loss")
    steps = [m.step for m in history]
    assert len(history) == 12 and steps == sorted(set(steps))
    assert children["lstm"].data.metrics["epochs"] == 12 and "test_acc" in children["lstm"].data.metrics
    # the three runs are told apart by their resolved config, which the tag records
    assert len({c.data.tags[resume.CONFIG_HASH_TAG] for c in children.values()}) == 3

    # and the continued run is the run it would have been: the checkpoint carries the random streams too, so
    # every epoch after the kill draws the dropout masks of an uninterrupted run of the same configuration
    fresh_uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_train(tiny_project, *SWEEP[1:-1], "model.cell=lstm", f"hydra.run.dir={tmp_path / 'fresh'}",
              tracking_uri=fresh_uri)
    fresh_client = runs.client(fresh_uri)
    (fresh,) = fresh_client.search_runs([fresh_client.get_experiment_by_name("sentiment-tiny").experiment_id])
    fresh_history = fresh_client.get_metric_history(fresh.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(m.step, m.value) for m in fresh_history]
    for key in ("test_acc", "test_loss", "best_val_acc"):
        assert children["lstm"].data.metrics[key] == fresh.data.metrics[key], key


def test_config_hash_ignores_where_and_how_fast_but_not_what():
    base = {"seed": 1, "model": {"cell": "lstm"}, "torch_threads": 1, "logger": {"tracking_uri": "a"},
            "data": {"num_workers": 0, "name": "x"}, "resume": False}
    moved = {**base, "torch_threads": 4, "logger": {"tracking_uri": "b"}, "resume": True,
             "data": {"num_workers": 2, "name": "x"}}
    assert resume.config_hash(base) == resume.config_hash(moved)
    assert resume.config_hash(base) != resume.config_hash({**base, "model": {"cell": "gru"}})
    assert resume.sweep_key(["a=1", "b=2"]) == resume.sweep_key(["b=2", "a=1", "resume=true"])
