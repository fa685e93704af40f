"""Runs shaped for the MLflow UI and a sweep a user can follow (issue 18): a tiny sweep (2 cells x 2 seeds) into a
real SQLite store, read back: the parent named after its study, seeds told apart by name and pooled by one
configuration tag, params without plumbing or the tracking URI, MLflow's source tags, the data as dataset inputs,
the experiment marked as model training, every child in its parent's experiment, one progress line per run."""

from __future__ import annotations

import re

import pytest
from conftest import run_train

from rnnlab.tracking import run_metadata, runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tiny_project, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    # each job's config names another experiment (exp-rnn, exp-gru; the parent's is exp-lstm): the children must
    # still land in their parent's
    proc = run_train(tiny_project, "-m", "model.cell=rnn,gru", "seed=1,2", "model.num_layers=1",
                     "model.bidirectional=false", "trainer.max_epochs=1", f"hydra.sweep.dir={store / 'sweep'}",
                     "logger.experiment_name=exp-${model.cell}", tracking_uri=uri)
    client = runs.client(uri)
    parent = next(r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
                  if r.data.tags.get("rnnlab.kind") == "sweep")
    return proc, client, parent, runs.child_runs(client, parent.info.run_id)


def test_a_sweep_prints_one_line_per_run_with_its_place_score_and_time_left(sweep):
    proc, _, _, _ = sweep
    lines = [line for line in proc.stdout.splitlines() if re.match(r"\[\d+/4\] ", line)]
    assert [int(line[1]) for line in lines] == [1, 2, 3, 4], proc.stdout[-2000:]
    assert all("best_val_acc=" in line and "test_acc=" in line for line in lines)
    assert "left)" in lines[0] and "sweep done in" in lines[-1]
    output = proc.stdout + proc.stderr
    assert "litlogger" not in output and "LeafSpec" not in output  # third-party noise, once per run before


def test_seeds_are_told_apart_by_name_and_pooled_by_the_configuration_tag(sweep):
    _, _, parent, children = sweep
    assert re.fullmatch(r"sweep \d{4}-\d\d-\d\d \d\d:\d\d", parent.info.run_name)  # no experiment= given
    names = sorted(c.info.run_name for c in children)
    assert names == ["word2vec-gru-1l-uni-seed1", "word2vec-gru-1l-uni-seed2",
                     "word2vec-rnn-1l-uni-seed1", "word2vec-rnn-1l-uni-seed2"]
    groups: dict[str, set] = {}
    for child in children:
        groups.setdefault(child.data.tags[run_metadata.CONFIGURATION_TAG], set()).add(child.data.params["seed"])
    assert len(groups) == 2 and all(seeds == {"1", "2"} for seeds in groups.values())
    assert all("seed=" not in tag and "tracking_uri" not in tag for tag in groups)


def test_params_are_what_a_user_compares_and_never_the_tracking_uri(sweep):
    _, client, _, children = sweep
    params = children[0].data.params
    assert {"model", "model.cell", "model.hidden_size", "optimizer.lr", "seed", "trainer.max_epochs",
            "embedding.name", "data.name", "task.objective.metric"} <= set(params)
    assert params["model"] == "recurrent"
    assert not [key for key in params if key.endswith("_target_") or key.startswith(("logger.", "paths.",
                                                                                     "hydra", "analysis."))]
    assert len(params) < 70  # about 105 config keys before
    config = client.download_artifacts(children[0].info.run_id, "config.yaml")  # the whole config stays
    assert "_target_" in open(config).read()


def test_runs_carry_mlflow_source_tags_and_their_data_as_dataset_inputs(sweep):
    _, _, parent, children = sweep
    for run in (parent, *children):
        assert run.data.tags["mlflow.source.name"].startswith("rnnlab-train")
        assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags.get("mlflow.source.git.commit", "0" * 40))
    inputs = children[0].inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"tiny", "tiny-word2vec"}
    contexts = {i.dataset.name: i.tags[0].value for i in inputs}
    assert contexts == {"tiny": "tokenized", "tiny-word2vec": "embedding"}
    assert all(len(i.dataset.digest) == 32 for i in inputs)  # no dvc.lock here: the directory's own hash


def test_every_child_is_in_its_parents_experiment_which_the_ui_opens_on_its_runs(sweep):
    _, client, parent, children = sweep
    assert {c.info.experiment_id for c in children} == {parent.info.experiment_id}
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "exp-lstm" and len(client.search_experiments()) == 2  # and Default
    assert experiment.tags[run_metadata.EXPERIMENT_KIND_TAG] == run_metadata.MODEL_TRAINING


def test_params_keep_every_overridden_key_but_never_plumbing():
    resolved = {"model": {"_target_": "x.Y", "cell": "gru"}, "analysis": {"batches": 3, "gates": True},
                "logger": {"tracking_uri": "http://alice:secret@host"}, "seed": 1, "torch_threads": 1}
    params = run_metadata.comparable_params(
        resolved, ["analysis.batches=3", "logger.tracking_uri=http://alice:secret@host", "torch_threads=1"],
        "recurrent")
    assert params == {"model.cell": "gru", "analysis.batches": 3, "seed": 1, "model": "recurrent"}
    assert run_metadata.configuration(["seed=3", "model.cell=gru", "logger.tracking_uri=http://a:b@h"],
                                      "x") == "model.cell=gru"
    assert run_metadata.configuration(["seed=3"], "word2vec-gru-1l-uni") == "word2vec-gru-1l-uni"


def test_a_dvc_experiment_copy_uses_the_projects_store(tmp_path, monkeypatch):
    """`dvc exp run --temp` trains in <project>/.dvc/tmp/exps/<copy>: the default store and new experiments'
    artifacts are the project's, not the copy's (deleted after the experiment)."""
    copy = tmp_path / "project/.dvc/tmp/exps/tmp8x2k/run"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert runs.project_root() == (tmp_path / "project").resolve()
    assert runs.tracking_uri() == f"sqlite:///{(tmp_path / 'project').resolve() / 'mlflow.db'}"
    client = runs.client(runs.tracking_uri())
    exp = client.get_experiment(runs.experiment_id(client, "sentiment-tiny"))
    assert exp.artifact_location.startswith((tmp_path / "project/mlruns").resolve().as_uri())
    monkeypatch.chdir(tmp_path)
    assert runs.project_root() == tmp_path.resolve()
