"""DVC tells the truth about what changed: every stage lists the code it imports and the conf/ keys it reads, and
its dependency hashes do not move when Python, numba, an editor or the OS write files next to the code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_project

from rnnlab.code_deps import MODULE_NAME, import_closure

SRC = REPO / "src"


def _stages():
    """DVC's own resolution of dvc.yaml (foreach expanded): [(name, cmd, [dep paths], {params file: keys})]."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        found = []
        for stage in repo.index.stages:
            params = {d.def_path: list(d.params) for d in stage.deps if isinstance(d, ParamsDependency)}
            paths = [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)]
            found.append((stage.addressing, stage.cmd, paths, params))
        return found


def _conf_targets() -> set[str]:
    """rnnlab.* names in conf/ (`_target_` of models, Hydra callbacks): what `rnnlab-train` instantiates."""
    return {name for path in (REPO / "conf").rglob("*.yaml") for name in MODULE_NAME.findall(path.read_text())}


def test_every_stage_lists_the_code_it_runs():
    """Each stage's deps cover the import closure of its script. A sweep's runs execute code that its study's
    configs name (the task, the models' `_target_`): results/<study>/configs.json digests that code (its dep),
    so the sweep's deps cover its script's closure through it; the runtime test in test_pipeline.py checks that a
    real run imports nothing outside it."""
    missing = {}
    for name, cmd, deps, _ in _stages():
        scripts = re.findall(r"pipelines/\w+\.py", cmd)
        assert scripts, f"{name}: cannot find its script in {cmd!r}"
        covered = [REPO / d for d in deps]
        closure = import_closure([REPO / s for s in scripts])
        for configs in [d for d in deps if d.endswith("/configs.json")]:  # a sweep: rnnlab-train runs its jobs
            covered += [SRC / path for path in json.loads((REPO / configs).read_text())["code"]]
            closure = import_closure([REPO / s for s in scripts], tables=[SRC / "rnnlab/tasks/__init__.py"])
        lacking = sorted(str(f.relative_to(REPO)) for f in closure
                         if not any(f == c or c in f.parents for c in covered))
        if lacking:
            missing[name] = lacking
    assert not missing, "stages that run code dvc.yaml does not list as a dependency:\n" + json.dumps(missing, indent=1)


def test_the_closure_follows_deferred_imports_and_module_names_in_strings():
    closure = {str(f.relative_to(REPO)) for f in import_closure([REPO / "pipelines/sweep.py"], _conf_targets())}
    assert "src/rnnlab/train.py" in closure  # `python -m rnnlab.train`: a string
    assert "src/rnnlab/tasks/translation.py" in closure  # the tasks' importlib table
    assert "src/rnnlab/models/seq2seq.py" in closure  # `_target_: rnnlab.models.seq2seq.Seq2Seq` in conf/model/
    assert "src/rnnlab/tracking/sweep.py" in closure  # the Hydra callback in conf/hydra/
    assert "src/rnnlab/data/__init__.py" in closure  # a package's __init__ runs on import


def test_a_study_digests_the_code_its_runs_can_execute_and_no_other():
    """configs.json of a sentiment study names the classification task and model, the training entry point, the
    MLflow model's code and Hydra's callback, each with its sha256; not the other tasks' code, which only the
    tasks' dispatch table names, nor the report's or the embedding builders'."""
    import hashlib

    from rnnlab.study import study_configs

    code = study_configs("sentiment", REPO / "pipelines/sweep.py")["code"]
    for path in ("rnnlab/train.py", "rnnlab/tasks/classify.py", "rnnlab/models/classifier.py",
                 "rnnlab/tasks/pyfunc_code.py", "rnnlab/tracking/sweep.py", "rnnlab/reporting/sweep_runs.py",
                 "rnnlab/embeddings/matrix.py", "rnnlab/data/__init__.py"):
        assert code[path] == hashlib.sha256((SRC / path).read_bytes()).hexdigest(), path
    for path in ("rnnlab/tasks/translation.py", "rnnlab/tasks/lm.py", "rnnlab/models/seq2seq.py",
                 "rnnlab/reporting/figures.py", "rnnlab/embeddings/glove.py", "rnnlab/embeddings/build.py"):
        assert path not in code, path
    assert list(code) == sorted(code)
    generate = study_configs("generate", REPO / "pipelines/sweep.py")["code"]
    assert {"rnnlab/tasks/generation.py", "rnnlab/tasks/judge.py", "rnnlab/tasks/classify.py"} <= set(generate)


# ---- the conf/ keys a data stage reads ---------------------------------------------------------------------------

# Keys a stage may read without listing them: where its own deps and outs live (DVC tracks those paths itself) and
# where it logs to MLflow (the store, not the result).
NEUTRAL_PREFIXES = ("paths", "data.name", "logger")
REFERENCE = re.compile(r"\$\{([\w.]+)")


def _declared(params: dict[str, list[str]]) -> list[str]:
    """Config key prefixes the params of a stage cover: conf/<group>/<option>.yaml is the `<group>` package,
    conf/train.yaml the top level (an empty key list = the whole file)."""
    prefixes = []
    for file, keys in params.items():
        parts = Path(file).parts
        if parts[0] != "conf" or file == "conf/pipeline.yaml":
            continue
        group = "" if len(parts) == 2 else parts[1]
        for key in keys or [None]:
            prefixes.append(".".join(p for p in (group, key) if p))
    return prefixes


def _covered(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") or p == "" for p in prefixes)


def _traced(cfg, reads: set[str]):
    """A copy of `cfg` whose every value records its key in `reads` when the stage's code reads (resolves) it."""
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(cfg, resolve=True)
    raw = OmegaConf.to_container(cfg, resolve=False)

    def lookup(tree, key):
        for part in key.split("."):
            tree = tree[part]
        return tree

    def record(key):
        reads.add(key)
        text = json.dumps(lookup(raw, key))
        pending = REFERENCE.findall(text)  # an interpolation reads the keys it names
        while pending:
            ref = pending.pop()
            if ref not in reads:
                reads.add(ref)
                pending += REFERENCE.findall(json.dumps(lookup(raw, ref)))
        return lookup(resolved, key)

    OmegaConf.register_new_resolver("dvcdeps.read", record, replace=True)

    def wrap(tree, prefix=""):
        return {key: wrap(value, f"{prefix}{key}.") if isinstance(value, dict) else "${dvcdeps.read:" + prefix + key + "}"
                for key, value in tree.items()}

    traced = OmegaConf.create(wrap(raw))
    OmegaConf.set_struct(traced, True)
    return traced


@pytest.mark.slow
def test_data_stages_read_only_the_conf_keys_they_list(tmp_path, monkeypatch):
    """Each data stage's real code runs on a tiny data set with a config that records every key read; a key
    outside the stage's params in dvc.yaml (and outside the neutral paths / logger keys) fails the test."""
    import importlib.util

    from rnnlab import pipeline

    templates = {name.split("@")[0]: params for name, _, _, params in _stages()}  # one instance per stage
    project = make_project(tmp_path / "project", build_data=False)
    monkeypatch.chdir(project)
    monkeypatch.setenv("RNNLAB_CONF_DIR", str(project / "conf"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = [("fetch", "fetch.py", ["data=tiny"]), ("prepare", "prepare.py", ["data=tiny"]),
            ("tokenize", "tokenize_data.py", ["data=tiny", "tokenizer=word"]),
            ("embed", "embed.py", ["data=tiny", "embedding=word2vec", "embedding.dim=8"]),
            ("embed", "embed.py", ["data=tiny", "embedding=glove", "embedding.dim=8", "embedding.iterations=2"])]
    unlisted = {}
    for stage, script, argv in runs:
        reads: set[str] = set()
        spec = importlib.util.spec_from_file_location(f"stage_{stage}", REPO / "pipelines" / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cfg = pipeline.stage_config(argv)
        monkeypatch.setattr(module, "stage_config", lambda cfg=cfg, reads=reads: _traced(cfg, reads))
        module.main()
        assert reads, f"{stage}: the tracer saw no key read: it is not wired to the stage's config"
        declared = _declared(templates[stage])
        extra = sorted(k for k in reads if not _covered(k, declared) and not _covered(k, NEUTRAL_PREFIXES))
        if extra:
            unlisted[f"{stage} ({' '.join(argv)})"] = extra
    assert not unlisted, "stages read conf/ keys that dvc.yaml does not list as their params:\n" + json.dumps(
        unlisted, indent=1)


# ---- hashes that machine state cannot move ---------------------------------------------------------------------

def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _modified_deps(repo: Path) -> dict:
    status = json.loads(_dvc(repo, "status", "--json").stdout)
    return {stage: deps for stage, items in status.items() for item in items if isinstance(item, dict)
            for deps in [{p: s for p, s in item.get("changed deps", {}).items() if s == "modified"}] if deps}


def _write_machine_state(root: Path) -> None:
    """What running and editing the code leaves behind: bytecode, numba caches, editor and OS files."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "src")], check=True)
    package = root / "src/rnnlab/embeddings"
    (package / "__pycache__").mkdir(exist_ok=True)
    for name in ("__pycache__/glove._train-100.py311.nbi", "__pycache__/glove._train-100.py311.1.nbc",
                 "build.py~", ".build.py.swp", ".DS_Store"):
        (package / name).write_bytes(b"machine state")


@pytest.mark.slow
def test_dependency_hashes_ignore_bytecode_caches_and_editor_files(tmp_path):
    """A stage locked in a clean tree stays up to date once Python, numba, an editor and the OS wrote files into
    its code directory (the repo's .dvcignore), and a real change to the code is still seen."""
    repo = tmp_path / "repo"
    (repo / "src/rnnlab").mkdir(parents=True)
    shutil.copytree(REPO / "src/rnnlab/embeddings", repo / "src/rnnlab/embeddings",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".dvcignore", repo / ".dvcignore")
    (repo / "dvc.yaml").write_text("stages:\n  copy:\n    cmd: cp src/rnnlab/embeddings/build.py out.txt\n"
                                   "    deps: [src/rnnlab/embeddings]\n    outs: [out.txt]\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q")
    _dvc(repo, "repro")
    _write_machine_state(repo)
    assert _modified_deps(repo) == {}
    with open(repo / "src/rnnlab/embeddings/build.py", "a") as handle:
        handle.write("# a real change\n")
    assert _modified_deps(repo) == {"copy": {"src/rnnlab/embeddings": "modified"}}


# Stages whose committed results came from earlier code, listed while a study waits for its re-run (a stale sweep
# is re-run with `dvc repro report@<study>`; `RNNLAB_RESUME=1 dvc repro` continues an interrupted one exactly).
# ner, lm and translation (about 30, 105 and 80 min on 2 cores) wait for a re-run after the change that added the
# music data format, next-token accuracy and the report's gap (their reports are regenerated from their runs). The
# test fails when a stage goes stale and is not listed here, and when a listed one is regenerated without leaving
# the set.
NOT_YET_REGENERATED: set[str] = {"configure@ner", "configure@lm", "configure@translation"}


@pytest.mark.slow
def test_a_clean_clone_of_the_repo_sees_no_changed_code_or_params(tmp_path):
    """The committed dvc.lock matches the committed code and conf/: in a fresh clone of HEAD, after Python has
    compiled and run the package there, `dvc status` lists no stage with modified deps (a user who pulls the data
    and runs `dvc repro` retrains nothing), apart from NOT_YET_REGENERATED."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    _write_machine_state(clone)
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    subprocess.run([sys.executable, "-c", "import rnnlab.train, rnnlab.pipeline, rnnlab.embeddings.glove"],
                   cwd=clone, env=env, check=True)
    modified = _modified_deps(clone)
    stale = {stage: deps for stage, deps in modified.items() if stage not in NOT_YET_REGENERATED}
    assert not stale, "stages whose committed dvc.lock entry is out of date:\n" + json.dumps(stale, indent=1)
    assert set(modified) == NOT_YET_REGENERATED, (
        f"regenerated, so take them out of NOT_YET_REGENERATED: {sorted(NOT_YET_REGENERATED - set(modified))}")
