"""Data-parallel training (trainer=ddp): two CPU processes through gloo, tracked once, from rank 0."""

from __future__ import annotations

import pytest
from conftest import run_train

from rnnlab.data.batching import BucketBatchSampler
from rnnlab.tracking import runs

pytestmark = pytest.mark.slow

# dropout off: each process would draw its own masks, the one thing that differs from a single process
SAME_MATH = ["model.dropout=0", "model.embedding_dropout=0", "model.output_dropout=0", "trainer.max_epochs=2"]


def test_processes_share_every_global_batch_exactly_once():
    lengths = [3, 9, 4, 7, 7, 2, 8, 5, 1, 6, 3]
    for shuffle in (True, False):
        single = list(BucketBatchSampler(lengths, 4, shuffle=shuffle, seed=3, pool_batches=2))
        shards = [list(BucketBatchSampler(lengths, 4, shuffle=shuffle, seed=3, pool_batches=2, num_replicas=2,
                                          rank=rank)) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == len(single)  # the same number of steps in every process
        for whole, part0, part1 in zip(single, *shards, strict=True):
            assert sorted(part0 + part1) == sorted(whole) and part0 and part1
    # a batch smaller than the number of processes repeats rows rather than leaving a process without data
    tiny = [list(BucketBatchSampler([5], 4, shuffle=False, num_replicas=2, rank=r)) for r in (0, 1)]
    assert tiny == [[[0]], [[0]]]


def test_ddp_on_two_cpu_processes_logs_once_and_matches_one_process(tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    run_train(tiny_project, *SAME_MATH, "run_name=single", f"hydra.run.dir={tmp_path / 'single'}",
              tracking_uri=uri)
    proc = run_train(tiny_project, *SAME_MATH, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                     "run_name=ddp", f"hydra.run.dir={tmp_path / 'ddp'}", tracking_uri=uri)
    exp = client.get_experiment_by_name("sentiment-tiny")
    found = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(found) == ["ddp", "single"], "the second DDP process must not create a run of its own"
    single, ddp = found["single"], found["ddp"]
    assert ddp.info.status == "FINISHED" and ddp.data.metrics["world_size"] == 2
    assert single.data.metrics["world_size"] == 1
    assert proc.stdout.count("run ") == 1  # one summary line: rank 0's
    for key in ("val_loss", "val_acc", "train_loss", "train_acc", "test_acc"):
        history = client.get_metric_history(ddp.info.run_id, key)
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), f"{key} logged more than once per step: {steps}"
        assert len(history) == len(client.get_metric_history(single.info.run_id, key))
    # the same global batches, averaged gradients: the same model up to float summation order
    for key, tolerance in (("val_loss", 1e-4), ("val_acc", 1e-6), ("test_acc", 1e-6)):
        ddp_values = [m.value for m in client.get_metric_history(ddp.info.run_id, key)]
        one_values = [m.value for m in client.get_metric_history(single.info.run_id, key)]
        assert ddp_values == pytest.approx(one_values, abs=tolerance), key
    artifacts = {a.path for a in client.list_artifacts(ddp.info.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/best.ckpt"}


def test_ddp_for_a_task_without_gathered_metrics_is_one_clear_error(tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_train(tiny_project, "task=generate", "model=conditional_lm", "trainer=ddp",
                     "trainer.accelerator=cpu", "trainer.devices=2", tracking_uri=uri, check=False)
    assert proc.returncode != 0
    assert "does not support data-parallel training" in proc.stderr and "Traceback" not in proc.stderr


def test_a_sweep_of_ddp_runs_lands_one_run_per_configuration(tiny_project, tmp_path):
    # Lightning restarts the command line for the second process: within a sweep it must be this job's, not
    # the whole sweep's, and the next job must start its own process group
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client(uri)
    run_train(tiny_project, "-m", "trainer=ddp", "trainer.accelerator=cpu", "trainer.max_epochs=1",
              "model.cell=rnn,gru", f"hydra.sweep.dir={tmp_path / 'sweep'}", tracking_uri=uri)
    exp = client.get_experiment_by_name("sentiment-tiny")
    found = client.search_runs([exp.experiment_id])
    parents = [r for r in found if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(found) == 3
    children = runs.child_runs(client, parents[0].info.run_id)
    assert sorted(c.data.params["model.cell"] for c in children) == ["gru", "rnn"]
    assert all(c.info.status == "FINISHED" and c.data.metrics["world_size"] == 2 for c in children)


def test_the_trainer_configs_compose_and_a_missing_gpu_is_one_clear_error(tiny_project, tmp_path):
    from rnnlab.config import compose

    for name, accelerator in (("cpu", "cpu"), ("gpu", "gpu"), ("ddp", "auto")):
        trainer = compose([f"trainer={name}"]).trainer
        assert trainer.accelerator == accelerator and trainer.max_epochs == 10 and trainer.deterministic
    assert compose(["trainer=ddp"]).trainer.strategy == "ddp"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_train(tiny_project, "trainer=gpu", "trainer.precision=16-mixed", tracking_uri=uri, check=False)
    if proc.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert "sees no CUDA GPU here: use trainer=cpu" in proc.stderr and "Traceback" not in proc.stderr
    assert runs.client(uri).get_experiment_by_name("sentiment-tiny") is None  # no run was started
