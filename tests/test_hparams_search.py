"""Hyper-parameter search with the Optuna sweeper (`hparams_search=sentiment_optuna`): a real 3-trial study on
the tiny data, read back from the SQLite MLflow store and from the study's own Optuna storage."""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
from conftest import run_train
from omegaconf import OmegaConf

from rnnlab.tracking import runs

# the sweeper builds Optuna's deprecated (still supported) Uniform/LogUniform distributions
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*Distribution has been deprecated:FutureWarning")]

SEARCH = OmegaConf.load(
    os.path.join(os.path.dirname(__file__), "..", "conf", "hparams_search", "sentiment_optuna.yaml"))


def _require_optuna_sweeper():
    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") and importlib.util.find_spec("optuna"):
        return
    message = "the Optuna sweeper is not installed: `make setup` (the optuna extra + hydra-optuna-sweeper)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_optuna_search_lands_as_child_runs_inside_its_search_space(tiny_project, tmp_path):
    _require_optuna_sweeper()
    import optuna

    uri, sweep_dir, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "sweep", tmp_path / "optuna.db"
    # experiment=sentiment sweeps cell x layers x direction x seed for the basic sweeper: the search config must
    # replace that grid. The TINY overrides pin model.hidden_size=12 (a plain value on the command line takes
    # a key out of the search space), analysis off to keep it fast.
    run_train(tiny_project, "-m", "experiment=sentiment", "hparams_search=sentiment_optuna",
              "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage=sqlite:///{storage}",
              "analysis.gradient_flow=false", "analysis.gates=false", f"hydra.sweep.dir={sweep_dir}",
              tracking_uri=uri)

    client = runs.client(uri)
    exp = client.get_experiment_by_name("sentiment-tiny")
    all_runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = runs.child_runs(client, parent.info.run_id)
    assert len(children) == 3 == len(all_runs) - 1
    assert all(child.info.status == "FINISHED" for child in children)

    # every trial inside the search space of conf/hparams_search/sentiment_optuna.yaml
    assert SEARCH.hydra.sweeper.params["optimizer.lr"] == "tag(log, interval(0.0003, 0.01))"
    for child in children:
        p = child.data.params
        assert 0.0003 <= float(p["optimizer.lr"]) <= 0.01
        assert 0.0 <= float(p["model.dropout"]) <= 0.5
        assert p["model.cell"] in {"rnn", "lstm", "gru"}
        assert p["model.num_layers"] in {"1", "2"}
        assert p["model.bidirectional"] in {"True", "False"}
        assert p["seed"] == "1234"            # fixed by the search config: not experiment=sentiment's 1,2,3
        assert p["model.hidden_size"] == "12"  # pinned on the command line
        assert 0.0 <= child.data.metrics["best_val_acc"] <= 1.0
    assert len({c.data.params["optimizer.lr"] for c in children}) == 3  # each trial proposes its own values

    # the objective is the best validation accuracy, maximised: Optuna's best trial is the best child
    best_acc = max(c.data.metrics["best_val_acc"] for c in children)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert math.isclose(results.best_value, best_acc, rel_tol=1e-6)
    assert math.isclose(parent.data.metrics["best_value"], best_acc, rel_tol=1e-6)
    assert parent.data.params["best.model.cell"] == results.best_params["model.cell"]
    assert "optimization_results.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    # the MLflow children are the study's trials, and a fresh TPE sampler with the same seed proposes the same
    # parameters again (Optuna asks for the distributions in the same order)
    study = optuna.load_study(study_name="sentiment", storage=f"sqlite:///{storage}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE and len(study.trials) == 3
    logged = sorted(float(c.data.params["optimizer.lr"]) for c in children)
    assert logged == pytest.approx(sorted(t.params["optimizer.lr"] for t in study.trials))
    replay = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=SEARCH.hydra.sweeper.sampler.seed, n_startup_trials=SEARCH.hydra.sweeper.sampler.n_startup_trials))
    for old in study.trials:
        trial = replay.ask()
        new_params = {name: trial._suggest(name, dist) for name, dist in old.distributions.items()}
        assert new_params == old.params
        replay.tell(trial, old.value)
