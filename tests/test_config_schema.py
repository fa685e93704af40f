"""The config schema (rnnlab.config_schema): every key of every config group option in conf/ has a rule, every
composed default validates, every leaf refuses a wrong type and (where its rule has one) an out-of-range or
not-allowed value with one line naming the key and the value; and end to end, a wrong value stops rnnlab-train
(one run and a sweep), a DVC stage and the other console scripts with exit 2 and one line, before anything exists."""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_module, run_train
from omegaconf import OmegaConf

from rnnlab import config_schema as schema
from rnnlab.config import compose
from rnnlab.errors import ConfigError

CONF = REPO / "conf"
HYDRA_OWN = {"hydra"}  # conf/hydra/: Hydra's own config, checked by Hydra's structured config


def _options() -> list[tuple[str, str]]:
    """(group, option) of every file under conf/<group>/, Hydra's own group left out."""
    return sorted((path.parent.name, path.stem) for path in CONF.glob("*/*.yaml") if path.parent.name not in HYDRA_OWN)


OPTIONS = _options()
IDS = [f"{group}={option}" for group, option in OPTIONS]


@functools.cache
def composed(group: str, option: str):
    return compose([f"{group}={option}"])


@functools.cache
def resolved(group: str, option: str) -> dict:
    return OmegaConf.to_container(composed(group, option), resolve=True)


def test_conf_has_the_groups_the_schema_knows():
    groups = {group for group, _ in OPTIONS}
    assert set(schema.GROUPS) <= groups
    assert groups - set(schema.GROUPS) == {"experiment", "hparams_search", "arch"}  # they only set other groups' keys
    assert len(OPTIONS) > 40


@pytest.mark.parametrize("group, option", OPTIONS, ids=IDS)
def test_every_group_option_validates_cleanly_and_every_key_has_a_rule(group, option):
    cfg = composed(group, option)
    assert schema.config_problems(cfg) == []
    assert schema.unruled_keys(cfg) == [], f"conf/{group}/{option}.yaml: keys without a rule in config_schema.GROUPS"
    schema.validate(cfg)


def test_pipeline_yaml_validates_and_every_key_has_a_rule():
    settings = OmegaConf.load(CONF / "pipeline.yaml")
    schema.validate_pipeline(settings)
    assert schema.unruled_pipeline_keys(settings) == []
    with pytest.raises(ConfigError, match=r"^overrides='x': must be a list \(each a string\) \(conf/pipeline.yaml\)$"):
        schema.validate_pipeline({**OmegaConf.to_container(settings), "overrides": "x"})


def test_a_key_without_a_rule_is_reported():
    cfg = compose(["+model.no_rule_for_me=1", "+brand_new=2"])
    assert sorted(schema.unruled_keys(cfg)) == ["brand_new", "model.no_rule_for_me"]
    schema.validate(cfg)  # extra keys are Hydra's business (struct mode refuses unknown overrides), not an error


# --- wrong values, derived from each key's rule ------------------------------------------------------------------

def _not_matching(pattern: str) -> list[str]:
    return [text for text in ("", " ", "abc", "not a match!", "ZZ") if not re.fullmatch(pattern, text)][:1]


def wrong_values(rule: schema.Rule) -> list:
    """Values `rule` must refuse: wrong types always, out-of-range and not-allowed values where it has them."""
    wrong: list = [] if rule.nullable else [None]
    if rule.kind == "any":
        candidates = [{"x": 1}, *(w for option in rule.options for w in wrong_values(option))]
        return wrong + [w for w in candidates if w is not None
                        and all(schema.problems_of("k", w, option) for option in rule.options)]
    if rule.kind == "bool":
        wrong += ["true", 1] + ([not rule.choices[0]] if len(rule.choices) == 1 else [])
    elif rule.kind in ("int", "float"):
        wrong += [1.5, "1", True] if rule.kind == "int" else ["abc", True, float("nan")]
        if rule.choices:
            wrong.append(max(rule.choices) + 1)
        for bound, step in ((rule.ge, -1), (rule.gt, 0), (rule.le, 1), (rule.lt, 0)):
            if bound is not None:
                value = bound + step
                while value in rule.also:
                    value += step or -1
                wrong.append(int(value) if rule.kind == "int" else float(value))
    elif rule.kind == "str":
        wrong += [12, True] + (["nope"] if rule.choices else []) + (_not_matching(rule.pattern) if rule.pattern else [])
    elif rule.kind == "list":
        wrong += ["abc", {"x": 1}] + ([[]] if rule.min_items else [])
        if rule.items is not None:
            wrong.append([wrong_values(rule.items)[-1]])
    elif rule.kind == "map":
        wrong += ["abc", 3]
    return wrong


def _set(tree: dict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


def _leaves() -> list[tuple[str, str, str, schema.Rule]]:
    """(group, option, key, rule) of every key of every composed option, each (key, rule) pair once."""
    seen, out = set(), []
    for group, option in OPTIONS:
        for key, _, rule in schema.entries(resolved(group, option)):
            if rule is not None and (key, rule) not in seen:
                seen.add((key, rule))
                out.append((group, option, key, rule))
    return out


def test_every_key_refuses_a_wrong_type_and_an_out_of_range_value():
    leaves = _leaves()
    assert len(leaves) > 200
    checked = 0
    for group, option, key, rule in leaves:
        values = wrong_values(rule)
        assert values, key
        for value in values:
            tree = copy.deepcopy(resolved(group, option))
            _set(tree, key, value)
            with pytest.raises(ConfigError) as err:
                schema.validate(tree)
            message = str(err.value)
            assert "\n" not in message
            assert message.startswith((f"{key}={schema.show(value)}: must be ", f"{key}[")), \
                f"{group}={option}: {key}={value!r} gave {message!r}"
            checked += 1
    assert checked > 800


def test_the_range_rules_in_the_table():
    """A few rules spelled out: ints are not floats, a float key takes an int, booleans are booleans."""
    cases = {
        "data.batch_size=0": "data.batch_size=0: must be an integer >= 1",
        "seed=1.5": "seed=1.5: must be an integer in [0, 4294967295]",
        "seed=true": "seed=true: must be an integer in [0, 4294967295]",
        'model.bidirectional="true"': "model.bidirectional='true': must be a boolean (true or false)",
        "model.bidirectional=yes": "model.bidirectional='yes': must be a boolean (true or false)",
        "optimizer.lr=-1": "optimizer.lr=-1: must be a number > 0",
        "data.split.validation=2": "data.split.validation=2: must be a number in [0, 1)",
        "model.cell=transformer": "model.cell='transformer': must be one of rnn|lstm|gru",
        "trainer.max_epochs=0": "trainer.max_epochs=0: must be an integer >= 1, or -1, or null (-1 = no limit)",
        "embedding.name=nope": "embedding.name='nope': must be one of onehot|learned|word2vec|glove|pretrained",
        "run_name=123": "run_name=123: must be a string, or null",
        "tokenizer.strip=[1]": "tokenizer.strip[0]=1: must be a string",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError) as err:
            schema.validate(compose([override]))
        assert str(err.value) == message
    for fine in ("optimizer.lr=1", "trainer.max_epochs=-1", "model.forget_bias=1", "run_name=null"):
        schema.validate(compose([fine]))
    with pytest.raises(ConfigError, match=r"^model.bidirectional=true: must be false \(a language model reads"):
        schema.validate(compose(["experiment=lm", "model.bidirectional=true"]))


def test_interpolations_are_checked_after_resolution():
    with pytest.raises(ConfigError, match=r"^embedding.seed=null: must be an integer"):
        schema.validate(compose(["embedding.seed=${run_name}"]))
    with pytest.raises(ConfigError, match=r"^embedding.seed=\$\{nope\}: cannot be resolved \("):
        schema.validate(compose(["embedding.seed=${nope}"]))
    # embedding.seed is ${seed}: its resolved value is checked too, after the key at fault
    assert schema.config_problems(compose(["seed=1.5"])) == [
        "seed=1.5: must be an integer in [0, 4294967295]", "embedding.seed=1.5: must be an integer in [0, 4294967295]"]
    # experiment=lm: optimizer.lr is ${task.lr_by_cell.${model.cell}}
    assert schema.config_problems(compose(["experiment=lm", "task.lr_by_cell.lstm=0"])) == [
        "task.lr_by_cell.lstm=0: must be a number > 0", "optimizer.lr=0: must be a number > 0"]
    # a wrong value that breaks an interpolation elsewhere is the error, not the interpolation it breaks
    with pytest.raises(ConfigError, match=r"^model.cell='nope': must be one of rnn\|lstm\|gru$"):
        schema.validate(compose(["experiment=lm", "model.cell=nope"]))


def test_the_choices_match_the_code():
    from rnnlab import tasks
    from rnnlab.data.synthetic import PROBLEMS
    from rnnlab.embeddings.matrix import KINDS
    from rnnlab.models import bag_of_words, classifier, encoder, sampling, seq2seq

    assert set(schema.CELLS) == set(encoder.CELLS)
    assert set(schema.NONLINEARITIES) == set(encoder.NONLINEARITIES)
    assert set(schema.POOLINGS) == set(classifier.POOLINGS)
    assert set(schema.BAG_POOLINGS) == set(bag_of_words.POOLINGS)
    assert set(schema.ATTENTIONS) == set(seq2seq.ATTENTIONS)
    assert set(schema.TASK_KINDS) == set(tasks.KINDS)
    assert set(schema.EMBEDDINGS) == set(KINDS)
    assert set(schema.PROBLEMS) == set(PROBLEMS)
    assert set(schema.STRATEGIES) == set(sampling.STRATEGIES)
    model_targets = {composed("model", option).model._target_ for group, option in OPTIONS if group == "model"}
    assert model_targets == set(schema.GROUPS["model"].options)


def test_the_module_imports_without_torch():
    code = "import sys, rnnlab.config_schema; print(sorted(m for m in ('torch', 'mlflow', 'pytorch_lightning', " \
           "'lightning', 'hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- sweeps -------------------------------------------------------------------------------------------------------

def _multirun(task: list[str]):
    """What Hydra hands MlflowSweepCallback.on_multirun_start: the command line's overrides and the sweeper's params."""
    fixed = [o for o in task if "," not in o and "(" not in o]
    params = compose(fixed, return_hydra_config=True).hydra.sweeper.get("params")
    return OmegaConf.create({"hydra": {"overrides": {"task": task}, "job": {"config_name": "train"},
                                       "sweeper": {"params": OmegaConf.to_container(params) if params else None}}})


@pytest.mark.parametrize("experiment", sorted(o for g, o in OPTIONS if g == "experiment"))
def test_every_experiment_sweep_validates(experiment):
    schema.validate_sweep(_multirun([f"experiment={experiment}"]))


@pytest.mark.parametrize("task, message", [
    (["model.hidden_size=0,64"], "model.hidden_size=0: must be an integer >= 1"),
    (["experiment=sentiment", "seed=1,2.5"], "seed=2.5: must be an integer in [0, 4294967295]"),
    (["experiment=lm", "model.cell=rnn,nope"], "model.cell='nope': must be one of rnn|lstm|gru"),
    (["model.dropout=interval(0.1, 1.0)"], "model.dropout=1.0: must be a number in [0, 1)"),
    (["embedding=learned,onehot", "embedding.dim=0"], "embedding.dim=0: must be an integer >= 1"),
    (["experiment=sentiment", "hparams_search=sentiment_optuna", "model.hidden_size=choice(0, 8)"],
     "model.hidden_size=0: must be an integer >= 1"),
])
def test_a_wrong_value_in_any_job_of_a_sweep_is_found(task, message):
    with pytest.raises(ConfigError) as err:
        schema.validate_sweep(_multirun(task))
    assert str(err.value) == message


def test_a_sweep_over_a_missing_group_option_or_key_is_one_config_error():
    with pytest.raises(ConfigError, match="embedding/nope") as err:
        schema.validate_sweep(_multirun(["embedding=learned,nope"]))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="Could not override 'model.nope'"):
        schema.validate_sweep(_multirun(["model.nope=1,2"]))


# --- console script arguments -------------------------------------------------------------------------------------

@pytest.mark.parametrize("module, argv, line", [
    ("rnnlab.generate", ["run_id=x", "words=abc"], "words='abc': must be an integer >= 1"),
    ("rnnlab.generate", ["run_id=x", "strategy=nope"], "strategy='nope': must be one of greedy|sample|topk"),
    ("rnnlab.generate", ["run_id=x", "temperature=0"], "temperature=0.0: must be a number > 0"),
    ("rnnlab.generate", ["run_id=x", "seed=1.5"], "seed='1.5': must be an integer >= 0"),
    ("rnnlab.translate", ["run_id=x", "text=hi", "beam=0"], "beam=0: must be an integer >= 1 (1 = greedy)"),
    ("rnnlab.translate", ["run_id=x", "text=hi", "length_penalty=x"], "length_penalty='x': must be a number >= 0"),
    ("rnnlab.analyze", ["run_id=x", "batches=0"], "batches=0: must be an integer >= 1"),
    ("rnnlab.analyze", ["run_id=x", "sentence_index=-1"], "sentence_index=-1: must be an integer >= 0"),
    ("rnnlab.predict", ["run_id= ", "text=hi"], "run_id=' ': must be a non-empty string"),
    ("rnnlab.report", ["parent_run_id="], "parent_run_id='': must be a non-empty string"),
])
def test_a_wrong_script_argument_is_one_line_naming_it(module, argv, line, capsys):
    import importlib

    with pytest.raises(SystemExit) as exited:
        importlib.import_module(module).main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"rnnlab: error: {line}"]


def test_script_arguments_come_back_typed():
    from rnnlab.generate import parse as generate_args
    from rnnlab.translate import parse as translate_args

    args = generate_args(["run_id=x", "words=7", "temperature=1", "top_k=3", "seed=2", "strategy=topk"])
    assert (args["words"], args["temperature"], args["top_k"], args["seed"]) == (7, 1.0, 3, 2)
    assert isinstance(args["temperature"], float) and args["prompt"] == ""
    assert generate_args(["model=models:/m/1"])["words"] == 20
    args = translate_args(["run_id=x", "text=hi", "beam=3", "length_penalty=0.5"])
    assert (args["beam"], args["length_penalty"]) == (3, 0.5)
    assert translate_args(["run_id=x", "file=f"])["beam"] == 5


# --- end to end ---------------------------------------------------------------------------------------------------

def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("rnnlab: error:")]


def _no_runs(db: Path) -> bool:
    if not db.exists():
        return True
    from rnnlab.tracking import runs

    client = runs.client(f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return not client.search_runs(experiments, max_results=10) if experiments else True


@pytest.mark.slow
@pytest.mark.parametrize("flags, override, line", [
    ([], "data.batch_size=0", "rnnlab: error: data.batch_size=0: must be an integer >= 1"),
    ([], "model.bidirectional=yes", "rnnlab: error: model.bidirectional='yes': must be a boolean (true or false)"),
    (["-m"], "model.hidden_size=0,64", "rnnlab: error: model.hidden_size=0: must be an integer >= 1"),
    (["-m"], "seed=1,2.5", "rnnlab: error: seed=2.5: must be an integer in [0, 4294967295]"),
], ids=["run", "run-bool", "sweep", "sweep-seed"])
def test_rnnlab_train_stops_before_any_mlflow_run(tiny_project, tmp_path, flags, override, line):
    db = tmp_path / "mlflow.db"
    proc = run_train(tiny_project, *flags, override, f"hydra.run.dir={tmp_path / 'run'}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", tracking_uri=f"sqlite:///{db}", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _error_lines(proc.stderr) == [line]
    assert _no_runs(db)  # no run, no FAILED run, no sweep parent run
    assert not (tmp_path / "sweep" / "mlflow_parent_run_id").exists()


def _tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_dvc_stage_stops_before_touching_its_output(tiny_project):
    prepared = tiny_project / "data/tiny/prepared"
    before = _tree_digest(prepared)
    assert before
    env = {**os.environ, "RNNLAB_CONF_DIR": str(tiny_project / "conf")}
    proc = subprocess.run([sys.executable, str(REPO / "pipelines/prepare.py"), "data=tiny", "data.split.validation=2"],
                          cwd=tiny_project, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _error_lines(proc.stderr) == ["rnnlab: error: data.split.validation=2: must be a number in [0, 1)"]
    assert _tree_digest(prepared) == before
    assert not list(prepared.parent.glob(".prepared*"))  # no temporary output left either


@pytest.mark.slow
@pytest.mark.parametrize("module, args, line", [
    ("rnnlab.generate", ["run_id=abc", "words=abc"], "rnnlab: error: words='abc': must be an integer >= 1"),
    ("rnnlab.translate", ["run_id=abc", "text=hi", "beam=0"], "rnnlab: error: beam=0: must be an integer >= 1 (1 = greedy)"),
])
def test_the_other_console_scripts_stop_with_one_line(tmp_path, module, args, line):
    proc = run_module(module, tmp_path, *args, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "mlflow.db").exists()
