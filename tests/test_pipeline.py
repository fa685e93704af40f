"""A real `dvc repro` of a tiny study in a temporary git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, TINY, make_project

pytestmark = pytest.mark.slow

STUDY = """\
# @package _global_
defaults:
  - override /data: tiny
  - override /embedding: word2vec
hydra:
  sweeper:
    params:
      model.cell: rnn,lstm
"""
# the order task made from the tiny data (stage derive@tiny_order), and two of why_rnn's contenders on it
ORDER_DATA = """\
name: tiny_order
format: derived
derived_from: tiny
seed: 3
labels: [shuffled, real]
max_length: 30
truncation_side: head
batch_size: 16
eval_batch_size: 64
pool_batches: 4
num_workers: 0
"""
WHY_STUDY = """\
# @package _global_
defaults:
  - override /data: tiny_order
  - override /embedding: word2vec
task:
  examples: []
  shuffled_test_seed: null
hydra:
  sweeper:
    params:
      arch: bag,lstm
"""


def _env(repo: Path) -> dict:
    """The environment of a stage in `repo`: its store, and its own copy of the code (so an edit there is what runs)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo / "src")}
    env.pop("RNNLAB_CONF_DIR", None)
    return env


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc), *args], cwd=repo, env=_env(repo), capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvcrepo")
    make_project(root, build_data=False)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "pipelines", "src"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, root / name)
    (root / "conf/experiment/tiny_study.yaml").write_text(STUDY)
    (root / "conf/experiment/tiny_why.yaml").write_text(WHY_STUDY)
    (root / "conf/data/tiny_order.yaml").write_text(ORDER_DATA)
    # word2vec keeps its default workers (1): the two-clone test below checks that the default repeats exactly
    overrides = [o for o in TINY if not o.startswith(("data=", "embedding="))] + [
        "trainer.max_epochs=2", "++embedding.iterations=3"]
    (root / "conf/pipeline.yaml").write_text(json.dumps({
        "datasets": {"tiny": {"tokenizer": "word"}},
        "derived": {"tiny_order": {"from": "tiny", "tokenizer": "word"}},
        "embeddings": {**{f"tiny-{name}": {"data": "tiny", "embedding": name, "corpus": "tiny"}
                          for name in ("word2vec", "glove")},
                       "tiny_order-word2vec": {"data": "tiny_order", "embedding": "word2vec", "corpus": "tiny"}},
        "studies": {"tiny_study": {"data": "tiny", "inputs": "data/tiny/embeddings/word2vec",
                                   # a study may set Hydra's own keys, and sweep a key itself
                                   "overrides": ["hydra.job.chdir=false", "model.cell=rnn,lstm"]},
                    "tiny_why": {"data": "tiny_order", "inputs": "data/tiny_order/embeddings/word2vec"}},
        "launcher": [], "overrides": overrides}))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _dvc(root, "init", "-q")
    _dvc(root, "repro")
    return root


def test_repro_builds_every_stage_output(repo):
    for out in ("data/tiny/raw/tiny.csv", "data/tiny/prepared/data/dataset_dict.json",
                "data/tiny/tokenized/tokenizer.json", "data/tiny/embeddings/word2vec/matrix.npy",
                "data/tiny/embeddings/glove/matrix.npy", "results/embedding_scores/tiny-glove.json",
                "results/tiny_study/runs.json", "results/tiny_study/report.md",
                "results/tiny_study/report.html"):
        assert (repo / out).exists(), out
    sweep = json.loads((repo / "results/tiny_study/runs.json").read_text())
    assert sorted(r["config"]["cell"] for r in sweep["runs"]) == ["lstm", "rnn"]
    assert all(r["status"] == "FINISHED" for r in sweep["runs"])
    report = (repo / "results/tiny_study/report.md").read_text()
    assert "| word2vec | rnn | 1 | uni |" in report and "| word2vec | lstm | 1 | uni |" in report
    # the epoch cap and patience come from the jobs configure@ resolved (patience 5 >= 2 epochs: none stops early)
    assert "Where the runs stop (2 epochs, no early stopping): " in report
    shown = _dvc(repo, "metrics", "show", "--json").stdout
    assert "test_acc" in shown and "word2vec-lstm-1l-uni" in shown
    # the report is attached to the sweep's MLflow parent run, named after the study
    from rnnlab.tracking import runs

    client = runs.client(f"sqlite:///{repo / 'mlflow.db'}")
    parent = client.get_run(sweep["parent_run_id"])
    assert parent.info.run_name.startswith("tiny_study ")
    files = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/metrics.json", "report/figures"} <= files
    assert "word2vec-lstm-1l-uni/test_acc" in parent.data.metrics
    # and the study's best configuration's best run (by validation) is the registered model tiny_study@best
    best = client.get_model_version_by_alias("tiny_study", "best")
    by_run = {r["run_id"]: r for r in sweep["runs"]}
    chosen = by_run[best.run_id]
    assert chosen["best_val_acc"] == max(r["best_val_acc"] for r in sweep["runs"] if r["config"] == chosen["config"])
    predicted = subprocess.run([sys.executable, "-m", "rnnlab.predict", "model=models:/tiny_study@best",
                                "text=a wonderful film"], cwd=repo, capture_output=True, text=True,
                               env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"})
    assert predicted.returncode == 0 and predicted.stdout.split("\t")[0] in ("negative", "positive"), predicted.stderr


def test_dvc_plots_draws_each_configurations_learning_curve_and_the_figures(repo, tmp_path):
    """The report stage writes each configuration's learning curve as data (the validation objective, mean over
    seeds, per epoch) and declares it and the figures as DVC plots, so `dvc plots show` renders them."""
    import statistics

    rows = json.loads((repo / "results/tiny_study/runs.json").read_text())["runs"]
    curves = repo / "results/tiny_study/curves"
    assert sorted(p.name for p in curves.glob("*.csv")) == ["word2vec-lstm-1l-uni.csv", "word2vec-rnn-1l-uni.csv"]
    for cell in ("rnn", "lstm"):
        lines = (curves / f"word2vec-{cell}-1l-uni.csv").read_text().splitlines()
        histories = [r["history"]["val_acc"] for r in rows if r["config"]["cell"] == cell]
        assert lines[0] == "epoch,val_acc" and len(lines) == 1 + min(map(len, histories))
        for epoch, line in enumerate(lines[1:]):
            assert float(line.split(",")[1]) == pytest.approx(statistics.fmean(h[epoch][1] for h in histories),
                                                               abs=1e-6)
    shown = json.loads(_dvc(repo, "plots", "show", "--json", "-o", str(tmp_path / "plots")).stdout)
    drawn = json.dumps(shown)
    for path in ("results/tiny_study/curves/word2vec-lstm-1l-uni.csv", "results/tiny_study/figures/learning_curves.png",
                 "results/tiny_why/curves/bag-word2vec.csv"):
        assert path in drawn, path
    assert (tmp_path / "plots/index.html").is_file() or any((tmp_path / "plots").iterdir())


def test_the_order_task_puts_an_order_blind_model_at_chance(repo):
    """derive@tiny_order pairs every text with its words in another order, in the text's own split; the bag of
    embeddings gives both members of a pair the same prediction, so it scores exactly one half."""
    from datasets import load_from_disk

    parts = load_from_disk(str(repo / "data/tiny_order/prepared/data"))
    real_texts = {split: {t for t, label in zip(parts[split]["text"], parts[split]["label"], strict=True) if label}
                  for split in ("train", "validation", "test")}
    assert not (real_texts["train"] & real_texts["test"]) and not (real_texts["train"] & real_texts["validation"])
    for split in ("train", "validation", "test"):
        texts, labels = parts[split]["text"], parts[split]["label"]
        assert labels == [1, 0] * (len(labels) // 2) and len(labels) > 0
        assert all(sorted(a.split()) == sorted(b.split()) and a != b for a, b in zip(texts[::2], texts[1::2],
                                                                                     strict=True))
    sweep = json.loads((repo / "results/tiny_why/runs.json").read_text())
    by_model = {r["config"]["model"]: r for r in sweep["runs"]}
    assert set(by_model) == {"bag", "recurrent"} and all(r["status"] == "FINISHED" for r in sweep["runs"])
    assert by_model["bag"]["test_acc"] == 0.5
    assert "| bag |" in (repo / "results/tiny_why/report.md").read_text()


def test_second_repro_does_nothing(repo):
    out = _dvc(repo, "repro").stdout
    assert "Running stage" not in out
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout


@pytest.mark.parametrize("conf_file,old,new,stage", [
    ("conf/tokenizer/word.yaml", "min_frequency: 2", "min_frequency: 3", "tokenize@tiny"),
    ("conf/embedding/glove.yaml", "window: 10", "window: 4", "embed@tiny-glove"),
])
def test_changing_one_parameter_invalidates_only_the_stage_that_reads_it(repo, conf_file, old, new, stage):
    path = repo / conf_file
    original = path.read_text()
    key = old.split(":")[0]
    try:
        path.write_text(original.replace(old, new))
        status = json.loads(_dvc(repo, "status", "--json").stdout)
        # only that stage is invalidated (its new outputs then cascade to the stages after it), and the cheap
        # configure stage, which re-reads conf/ to see whether a sweep job's config changed
        expected = {stage: [{"changed deps": {conf_file: {key: "modified"}}}],
                    **{f"configure@{study}": [{"changed deps": {"conf": "modified"}}]
                       for study in ("tiny_study", "tiny_why")}}
        if stage == "tokenize@tiny":  # the order task is tokenized by its own stage, with the same tokenizer
            expected["derive@tiny_order"] = [{"changed deps": {conf_file: {key: "modified"}}}]
        assert status == expected
    finally:
        path.write_text(original)
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout


def _stale_sweeps_and_reports(*studies: str) -> dict:
    """`dvc status --json` when only the studies' resolved jobs changed: their sweeps, and their reports (which read
    the epoch cap and patience from the same configs.json)."""
    return {f"{stage}@{study}": [{"changed deps": {f"results/{study}/configs.json": "modified"}}]
            for study in studies for stage in ("sweep", "report")}


def test_a_key_only_training_reads_invalidates_the_sweep(repo):
    """`model.dropout` is read by no data stage: it reaches the sweep through the jobs' resolved configs (stage
    configure), so DVC re-runs the sweep and its report, and only those, when it changes."""
    path = repo / "conf/model/recurrent.yaml"
    original = path.read_text()
    assert "dropout: 0.3 " in original
    try:
        path.write_text(original.replace("dropout: 0.3 ", "dropout: 0.1 ", 1))
        _dvc(repo, "repro", "configure")
        status = json.loads(_dvc(repo, "status", "--json").stdout)
        # tiny_why's lstm reads it too, its bag does not
        assert status == _stale_sweeps_and_reports("tiny_study", "tiny_why")
    finally:
        path.write_text(original)
        _dvc(repo, "repro", "configure")  # the same configs.json as before, byte for byte
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout


def test_an_edit_of_code_a_study_never_runs_reruns_nothing(repo):
    """A sweep depends on the code its runs can execute (digested in configs.json by configure@<study>): once
    configure re-ran, an edit of the translation task leaves both tiny studies up to date, and an edit of the
    recurrent classifier, which both run, makes both sweeps and their reports (and nothing else) stale."""
    edits = {path: (repo / path).read_text() for path in ("src/rnnlab/tasks/translation.py",
                                                          "src/rnnlab/models/classifier.py")}
    try:
        (repo / "src/rnnlab/tasks/translation.py").write_text(edits["src/rnnlab/tasks/translation.py"] + "# edit\n")
        assert set(json.loads(_dvc(repo, "status", "--json").stdout)) == {"configure@tiny_study",
                                                                          "configure@tiny_why"}
        _dvc(repo, "repro", "configure")
        assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout
        (repo / "src/rnnlab/models/classifier.py").write_text(edits["src/rnnlab/models/classifier.py"] + "# edit\n")
        _dvc(repo, "repro", "configure")
        status = json.loads(_dvc(repo, "status", "--json").stdout)
        assert status == _stale_sweeps_and_reports("tiny_study", "tiny_why")
    finally:
        for path, text in edits.items():
            (repo / path).write_text(text)
        _dvc(repo, "repro", "configure")
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout


def test_a_run_imports_only_code_its_study_digests(repo, tmp_path):
    """A real run of the tiny study, as its sweep launches it: every rnnlab module it imported (training, testing,
    analyses, logging its MLflow model) is a file whose sha256 configs.json holds, so no edit it could feel
    escapes DVC."""
    code = json.loads((repo / "results/tiny_study/configs.json").read_text())["code"]
    digested = {path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for path in code}
    overrides = json.loads((repo / "conf/pipeline.yaml").read_text())["overrides"]
    script = ("import atexit, json, runpy, sys\n"
              "atexit.register(lambda: print('MODULES=' + json.dumps(sorted(m for m in sys.modules "
              "if m.split('.')[0] == 'rnnlab'))))\n"
              "sys.argv[0] = 'rnnlab-train'\n"
              "runpy.run_module('rnnlab.train', run_name='__main__')\n")
    env = {**_env(repo), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run([sys.executable, "-c", script, "experiment=tiny_study", *overrides, "model.cell=lstm",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("MODULES=")]
    imported = set(json.loads(line.removeprefix("MODULES=")))
    assert {"rnnlab.tasks.classify", "rnnlab.models.classifier", "rnnlab.tasks.mlflow_model"} <= imported
    assert imported <= digested, f"imported, not digested: {sorted(imported - digested)}"


def _commit(repo: Path) -> None:
    git = ["git", "-c", "user.name=rnnlab tests", "-c", "user.email=tests@rnnlab.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True, capture_output=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=repo).returncode:
        subprocess.run([*git, "commit", "-q", "-m", "tiny study"], cwd=repo, check=True, capture_output=True)


REPEATED = ["results/tiny_study/metrics.json", "results/tiny_study/report.md", "results/tiny_study/configs.json",
            "results/embedding_scores/tiny-word2vec.json", "results/embedding_scores/tiny-glove.json",
            "data/tiny/embeddings/word2vec/matrix.npy", "data/tiny/embeddings/word2vec/facts.json",
            "data/tiny/embeddings/glove/matrix.npy", "data/tiny/tokenized/tokenizer.json"]


def _run_numbers(repo: Path) -> list[dict]:
    """runs.json without what differs between reruns by nature: run ids and wall times."""
    from rnnlab.reporting.statistics import WALL_TIME

    rows = json.loads((repo / "results/tiny_study/runs.json").read_text())["runs"]
    return [{k: v for k, v in row.items() if k not in ("run_id", *WALL_TIME)} for row in rows]


def test_two_fresh_clones_reproduce_the_study_byte_for_byte(repo, tmp_path):
    """The default pipeline, re-run from scratch (`dvc repro -f`) in two fresh clones on this machine, gives the
    same bytes as the original run: metrics.json, the report's tables and figures, the embeddings, every run's
    metrics. Only report.html (run ids, wall times) and the wall-time fields of runs.json may differ."""
    _commit(repo)
    clones = [tmp_path / name for name in ("a", "b")]
    for clone in clones:
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    with ThreadPoolExecutor(2) as pool:  # both at once, on this machine's two cores
        list(pool.map(lambda clone: _dvc(clone, "repro", "-f"), clones))
    figures = sorted(p.name for p in (repo / "results/tiny_study/figures").glob("*.png"))
    assert "learning_curves.png" in figures
    for path in REPEATED + [f"results/tiny_study/figures/{name}" for name in figures]:
        original = (repo / path).read_bytes()
        for clone in clones:
            assert (clone / path).read_bytes() == original, f"{path} differs in {clone.name}"
    for clone in clones:
        assert sorted(p.name for p in (clone / "results/tiny_study/figures").glob("*.png")) == figures
        assert _run_numbers(clone) == _run_numbers(repo)
    ids = [json.loads((c / "results/tiny_study/runs.json").read_text())["parent_run_id"] for c in [repo, *clones]]
    assert len(set(ids)) == 3  # really three sweeps, not one read three times


def _experiment(shown: list[dict], name: str) -> dict:
    """One experiment's data in `dvc exp show --json`."""
    for row in shown:
        for group in row.get("experiments") or []:
            for rev in group["revs"]:
                if rev["name"] == name:
                    return rev["data"]
    raise AssertionError(f"no experiment {name!r} in dvc exp show: {[row['rev'] for row in shown]}")


def test_dvc_exp_run_sets_one_parameter_and_exp_show_lists_it_with_the_metrics(repo):
    """`dvc exp run --temp -S conf/experiment/<study>.yaml:+key=value`, as the README shows (the study's own file is
    a params file of its configure stage): the experiment trains in DVC's temporary copy, its runs land in the
    project's own store (the default one, not an mlflow.db deleted with the copy), the workspace is left as it was,
    and `dvc exp show` lists the changed key beside the study's metrics."""
    from rnnlab.reporting.parent_run import pooled_metrics
    from rnnlab.tracking import runs

    _commit(repo)
    metrics = json.loads((repo / "results/tiny_study/metrics.json").read_text())
    client = runs.client(f"sqlite:///{repo / 'mlflow.db'}")
    parents_before = {run.info.run_id for run in client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`rnnlab.kind` = 'sweep'")}
    env = _env(repo)
    del env["MLFLOW_TRACKING_URI"]  # a user's default: sqlite:///<project>/mlflow.db
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc), "exp", "run", "--temp", "-n", "lr-003", "-S",
                           "conf/experiment/tiny_study.yaml:+optimizer.lr=0.03"],
                          cwd=repo, env=env, capture_output=True, text=True)
    try:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        assert json.loads((repo / "results/tiny_study/metrics.json").read_text()) == metrics  # workspace untouched
        data = _experiment(json.loads(_dvc(repo, "exp", "show", "--json").stdout), "lr-003")
        assert data["params"]["conf/experiment/tiny_study.yaml"]["data"]["optimizer"] == {"lr": 0.03}
        shown = data["metrics"]["results/tiny_study/metrics.json"]["data"]
        assert set(shown) == set(metrics)  # the study's table (its numbers may equal the workspace's on tiny data)
        table = _dvc(repo, "exp", "show", "--csv").stdout
        assert "optimizer.lr" in table.splitlines()[0]
        new_parents = [run for run in client.search_runs(
            [e.experiment_id for e in client.search_experiments()], "tags.`rnnlab.kind` = 'sweep'")
            if run.info.run_id not in parents_before]
        assert len(new_parents) == 1, "the experiment's sweep is not in the project's mlflow.db"
        # the numbers exp show lists are that sweep's own: its parent run carries them, pooled per configuration
        assert pooled_metrics(shown) == pytest.approx(new_parents[0].data.metrics, abs=1e-9)
        children = runs.child_runs(client, new_parents[0].info.run_id)
        assert sorted(c.data.params["model.cell"] for c in children) == ["lstm", "rnn"]
        assert {c.data.params["optimizer.lr"] for c in children} == {"0.03"}
    finally:
        _dvc(repo, "exp", "remove", "--all")
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout


def test_a_fresh_clone_pulls_the_data_and_embeddings_from_a_dvc_remote(repo, tmp_path):
    """`dvc push` to a local directory remote, then `git clone` + `dvc pull`: the clone has byte-identical data
    and embeddings, and DVC finds every stage up to date there (nothing to recompute)."""
    store = tmp_path / "store"
    _dvc(repo, "remote", "add", "--local", "-f", "-d", "store", str(store))  # --local: not in the committed config
    _dvc(repo, "push")
    _commit(repo)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    assert not (clone / "data/tiny/tokenized").exists()  # the data is not in git
    _dvc(clone, "remote", "add", "--local", "-d", "store", str(store))
    _dvc(clone, "pull")
    for path in ("data/tiny/raw/tiny.csv", "data/tiny/tokenized/tokenizer.json",
                 "data/tiny/embeddings/word2vec/matrix.npy", "data/tiny/embeddings/glove/matrix.npy"):
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    assert "Data and pipelines are up to date" in _dvc(clone, "status").stdout


def test_the_project_names_a_default_dvc_remote():
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / ".dvc/config")
    default = config["core"]["remote"]
    assert config[f"'remote \"{default}\"'"]["url"]


def _sweep_stage(repo: Path, env: dict) -> tuple[subprocess.CompletedProcess, str | None]:
    """`python pipelines/sweep.py tiny_study` as `dvc repro` runs it; the MLflow parent run of its sweep."""
    import re

    from rnnlab.tracking import runs

    full = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}", **env}
    full.pop("RNNLAB_CONF_DIR", None)
    proc = subprocess.run([sys.executable, "pipelines/sweep.py", "tiny_study"], cwd=repo, env=full,
                          capture_output=True, text=True)
    sweep_dir = re.search(r"hydra\.sweep\.dir=(\S+)", proc.stdout)
    return proc, runs.read_parent_run_id(repo / sweep_dir.group(1)) if sweep_dir else None


def test_an_interrupted_sweep_stage_goes_on_with_rnnlab_resume(repo, tmp_path):
    """A sweep stage killed in its second job's test phase, then `RNNLAB_RESUME=1`: the same sweep goes on, its
    finished job is kept, the killed one is tested from its best checkpoint, and runs.json has the numbers of the
    uninterrupted sweep. A sweep of other code (one more comment in the package) is never reopened."""
    from test_run_status import SITECUSTOMIZE

    from rnnlab.tracking import runs

    runs_json = repo / "results/tiny_study/runs.json"
    committed, uninterrupted = runs_json.read_bytes(), _run_numbers(repo)
    client = runs.client(f"sqlite:///{repo / 'mlflow.db'}")
    (tmp_path / "site").mkdir()
    (tmp_path / "site/sitecustomize.py").write_text(SITECUSTOMIZE)
    kill = {"PYTHONPATH": str(tmp_path / "site"), "RNNLAB_TEST_KILL_AT": "test", "RNNLAB_TEST_KILL_NTH": "2"}
    other = tmp_path / "other"
    shutil.copytree(REPO / "src/rnnlab", other / "rnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "rnnlab/__init__.py", "a") as handle:
        handle.write("# other code\n")
    try:
        killed, parent = _sweep_stage(repo, kill)
        assert killed.returncode != 0 and parent, killed.stdout[-2000:] + killed.stderr[-2000:]
        before = {c.data.params["model.cell"]: c.info for c in runs.child_runs(client, parent)}
        assert before["rnn"].status == "FINISHED" and before["lstm"].status == "RUNNING"
        changed, other_parent = _sweep_stage(repo, {**kill, "RNNLAB_RESUME": "1",
                                                    "PYTHONPATH": f"{other}{os.pathsep}{tmp_path / 'site'}"})
        assert "ran other code" in changed.stdout and other_parent not in (None, parent), changed.stdout[-2000:]
        resumed, resumed_parent = _sweep_stage(repo, {"RNNLAB_RESUME": "1"})
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert resumed_parent == parent and json.loads(runs_json.read_text())["parent_run_id"] == parent
        got = _run_numbers(repo)
        assert got == uninterrupted, [(i, k, row.get(k), uninterrupted[i].get(k)) for i, row in enumerate(got)
                                      for k in sorted(set(row) | set(uninterrupted[i])) if row.get(k) != uninterrupted[i].get(k)]
        after = {c.data.params["model.cell"]: c.info for c in runs.child_runs(client, parent)}
        assert {info.status for info in after.values()} == {"FINISHED"}
        assert {cell: info.run_id for cell, info in after.items()} == {
            cell: info.run_id for cell, info in before.items()}
        assert after["rnn"].end_time == before["rnn"].end_time  # kept, not trained or tested again
    finally:
        runs_json.write_bytes(committed)  # the DVC output the other tests of this module read
