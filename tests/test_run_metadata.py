"""Runs shaped for the MLflow UI and a sweep a user can follow (issue 18): a tiny sweep (2 cells x 2 seeds) into a
real SQLite store, read back: the parent named after its study, seeds told apart by name and pooled by one
configuration tag, params without plumbing or the tracking URI, MLflow's source tags, the data as dataset inputs,
the experiment marked as model training, every child in its parent's experiment, one progress line per run."""

from __future__ import annotations

import os
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


def test_runs_logging_the_same_dataset_at_the_same_moment_all_get_it(tmp_path):
    """Jobs of a parallel sweep log the same dataset at once: each inserts its row, SQLite's unique key fails all
    but one (`UNIQUE constraint failed: datasets...`); every run must still get the dataset as its input."""
    import threading

    data = tmp_path / "tokenized"
    data.mkdir()
    (data / "part-0.txt").write_text("the same data for every job\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    setup = runs.client(uri)
    exp_id = runs.experiment_id(setup, "race")
    run_ids = [setup.create_run(exp_id).info.run_id for _ in range(8)]
    barrier, errors = threading.Barrier(len(run_ids)), []

    def job(run_id):
        client = runs.client(uri)  # each job its own client, as each process of a sweep has
        barrier.wait()
        try:
            run_metadata.log_datasets(client, run_id, [("tiny", data, "tokenized")], {})
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=job, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    for run_id in run_ids:
        inputs = setup.get_run(run_id).inputs.dataset_inputs
        assert [(i.dataset.name, i.tags[0].value) for i in inputs] == [("tiny", "tokenized")]


H = 3600  # seconds
T0 = 1_750_000_000  # a sweep's start, seconds since the epoch: explicit times, no clock read


def _sweep_store(tmp_path, jobs, spans):
    """A real store with a sweep's parent run started at T0 and a child per (start, end or None) in seconds after
    T0 (None: still running); the child ids in order."""
    from rnnlab.tracking import progress

    tmp_path.mkdir(exist_ok=True)
    client = runs.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = runs.experiment_id(client, "sweep")
    parent = client.create_run(exp_id, start_time=T0 * 1000).info.run_id
    progress.sweep_started(client, parent, jobs, now=T0)
    ids = []
    for k, (start, end) in enumerate(spans):
        run_id = client.create_run(exp_id, start_time=(T0 + start) * 1000, run_name=f"job{k}",
                                   tags={runs.PARENT_TAG: parent}).info.run_id
        if end is not None:
            client.set_terminated(run_id, "FINISHED", end_time=(T0 + end) * 1000)
        ids.append(run_id)
    return client, parent, ids


def _line(capsys, client, parent, run_id, now, parallel):
    from rnnlab.tracking import progress

    progress.run_done(client, run_id, "job", parent, "val_acc", {"best_val_acc": 0.8, "test_acc": 0.79},
                      parallel=parallel, now=T0 + now)
    return capsys.readouterr().out.strip()


def test_the_time_left_counts_the_jobs_running_at_once(tmp_path, capsys):
    """3 jobs on 3 parallel workers, started together: when the first ends after 2 h 19 min the other two are as
    far along, so little is left (it said "about 4 h 25 min", two more runs one after another)."""
    spans = [(0, 2 * H + 19 * 60), (5, None), (10, None)]
    client, parent, ids = _sweep_store(tmp_path, 3, spans)
    line = _line(capsys, client, parent, ids[0], 2 * H + 19 * 60 + 1, parallel=3)
    assert line == "[1/3] job: best_val_acc=0.8, test_acc=0.79 (about 1 min left)"
    for run_id, end in ((ids[1], 2 * H + 22 * 60), (ids[2], 2 * H + 24 * 60)):
        client.set_terminated(run_id, "FINISHED", end_time=(T0 + end) * 1000)
    line = _line(capsys, client, parent, ids[2], 2 * H + 24 * 60 + 1, parallel=3)
    assert line == "[3/3] job: best_val_acc=0.8, test_acc=0.79 (sweep done in 2 h 24 min)"


@pytest.mark.parametrize(("parallel", "spans", "left"), [
    # 6 jobs, 3 at once, one round done: the 3 waiting take one more round (5 rounds before)
    (3, [(0, H), (0, None), (0, None)], "1 h 00 min"),
    # 4 jobs, 2 at once: the second job, half done, ends in 30 min; the 2 waiting end 1 h and 1 h 30 min from now
    (2, [(0, H), (H // 2, None)], "1 h 30 min"),
    # one after another: every job left takes a whole run
    (1, [(0, H)], "3 h 00 min"),
], ids=["rounds", "in-flight", "sequential"])
def test_the_time_left_is_the_runs_waiting_in_rounds_less_what_the_running_ones_did(tmp_path, capsys, parallel,
                                                                                      spans, left):
    client, parent, ids = _sweep_store(tmp_path, 6 if parallel == 3 else 4, spans)
    assert _line(capsys, client, parent, ids[0], H, parallel).endswith(f"(about {left} left)")


def test_without_a_known_launcher_the_runs_seen_together_say_how_many_run_at_once(tmp_path):
    from rnnlab.tracking import progress

    def left(store, spans, now):
        client, parent, _ = _sweep_store(tmp_path / store, 6, spans)
        started = int(client.get_run(parent).data.tags[progress.STARTED_TAG])
        return progress.time_left(runs.child_runs(client, parent), started, 6, None, (T0 + now) * 1000)

    # 3 at once: the 3 waiting take one round after the 2 running end
    assert left("together", [(0, H), (0, None), (60, None)], H) == pytest.approx(H + 60)
    # one after another: the running one's 59 min, then 3 whole runs
    assert left("in-turn", [(0, H), (H, 2 * H), (2 * H, None)], 2 * H + 60) == pytest.approx(4 * H - 60)


def test_the_sweeps_parallelism_is_read_from_its_launcher_and_sweeper():
    from rnnlab.tracking.progress import sweep_parallelism

    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 3}
    optuna = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper", "n_jobs": 2}
    assert sweep_parallelism(basic) == 1 and sweep_parallelism(basic, optuna) == 1
    assert sweep_parallelism(joblib) == 3
    assert sweep_parallelism({**joblib, "n_jobs": -1}) == os.cpu_count()
    assert sweep_parallelism(joblib, optuna) == 2  # Optuna asks 2 trials a batch: 2 run at once
    assert sweep_parallelism(joblib, {"_target_": "x.BasicSweeper", "max_batch_size": None}) == 3
    assert sweep_parallelism({"_target_": "hydra_plugins.x.SlurmLauncher"}) is None
    assert sweep_parallelism(None) is None


def test_the_seed_of_the_embedding_is_no_param_unless_overridden():
    """`embedding.seed` is `${seed}`: the same value as `seed`, a second column to compare that says nothing."""
    resolved = {"seed": 3, "embedding": {"name": "word2vec", "seed": 3}}
    assert run_metadata.comparable_params(resolved, ["seed=3"], None) == {"seed": 3, "embedding.name": "word2vec"}
    assert run_metadata.comparable_params(resolved, ["embedding.seed=3"], None)["embedding.seed"] == 3
