"""What a training run shows in the MLflow UI besides its metrics: the params a user compares (the whole resolved
config stays the run's config.yaml artifact), MLflow's standard source tags, a seedless configuration tag that
"group by" pools seeds with, the data it read as MLflow dataset inputs (digest = DVC's content hash), and the
experiment marked as one of model training (the UI then opens on its runs, not on the GenAI overview)."""

from __future__ import annotations

import getpass
from pathlib import Path

from rnnlab.io import sha256_tree
from rnnlab.tracking import runs

CONFIGURATION_TAG = "rnnlab.configuration"
# the experiment tag the MLflow 3 UI reads to choose its pages (mlflow.experimentKind)
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
# how often a run logs its dataset inputs when another run inserted the same dataset row at the same moment
_LOG_INPUTS_TRIES = 5

# never a param or part of the configuration tag, even when overridden: where things go (the tracking URI may
# carry credentials), how the machine is used (prefix match)
_NEVER = ("hydra", "logger.", "paths.", "resume", "run_name", "torch_threads", "fill_uninitialized_memory",
          "flush_denormal", "trainer.enable_", "data.num_workers")
# not a param unless the command line or sweep set it: plumbing, not a difference a user compares
_NOT_COMPARED = (*_NEVER, "evaluation.", "analysis.", "data.source.", "data.filter.", "callbacks.checkpoint.",
                 "callbacks.early_stopping.monitor", "callbacks.early_stopping.mode", "callbacks.early_stopping._target_",
                 "trainer._target_", "trainer.log_every_n_steps", "trainer.num_sanity_val_steps", "trainer.deterministic",
                 "data.eval_batch_size", "embedding.workers",
                 "embedding.seed")  # `${seed}`: the same value as `seed`, a second column that says nothing new


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def comparable_params(resolved: dict, overridden: list[str], model_choice: str | None) -> dict:
    """The flattened config without plumbing (class paths, paths, logging, analysis switches), plus every key
    the command line or sweep set (whatever it is: a user who sweeps it compares it), plus `model`: the model
    config chosen (recurrent, bag, cnn, ...), which names what a class path would."""
    flat = runs.flatten(resolved)
    keys = {_key(o) for o in overridden if not _key(o).startswith(_NEVER)}
    params = {key: value for key, value in flat.items()
              if key in keys or not (key.startswith(_NOT_COMPARED) or key.endswith(("._target_", "._partial_")))}
    if model_choice:
        params["model"] = model_choice
    return params


def configuration(overridden: list[str], seedless_name: str) -> str:
    """A run's configuration without its seed: the job's overrides other than `seed=` (what a sweep varies), or
    the run's seedless name when nothing was overridden. Runs that differ only in their seed share it."""
    rest = sorted(o for o in overridden if _key(o) != "seed" and not _key(o).startswith(_NEVER))
    return " ".join(rest) or seedless_name


def source_tags(entry_point: str) -> dict:
    """MLflow's own source tags (the UI's Source and Version columns, and its git commit link)."""
    from mlflow.utils.mlflow_tags import (
        MLFLOW_GIT_COMMIT,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
        MLFLOW_USER,
    )

    tags = {MLFLOW_SOURCE_NAME: entry_point, MLFLOW_SOURCE_TYPE: "LOCAL"}
    commit = runs.git_commit()
    if commit != "unknown":
        tags[MLFLOW_GIT_COMMIT] = commit.removesuffix("-dirty")
    try:
        tags[MLFLOW_USER] = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without /etc/passwd entry)
        pass
    return tags


def mark_model_training(mlflow_client, exp_id: str) -> None:
    """Tag the experiment as model training (once): the MLflow UI opens it on its runs table."""
    experiment = mlflow_client.get_experiment(exp_id)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        mlflow_client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)


def dvc_hashes(root: str | Path = ".") -> dict[str, str]:
    """Output path -> DVC's content hash (md5, `.dir` for a directory) from the project's dvc.lock; {} where
    there is none (a run outside the DVC project)."""
    import yaml

    lock = Path(root) / "dvc.lock"
    if not lock.is_file():
        return {}
    try:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    except yaml.YAMLError:
        return {}
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])
            if isinstance(out, dict) and "md5" in out and "path" in out}


def log_datasets(mlflow_client, run_id: str, inputs: list[tuple[str, Path, str]], hashes: dict[str, str]) -> None:
    """(name, directory, context) of each input read: an MLflow dataset whose digest is DVC's hash of the
    directory when dvc.lock has it (else the directory's own sha256, cut to MLflow's 36 characters)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    found = []
    for name, path, context in inputs:
        if not path.exists():
            continue
        try:  # dvc.lock names paths relative to the project root (the working directory of a stage)
            key = path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            key = path.as_posix()
        digest = hashes.get(key) or sha256_tree(path)[:32]
        dataset = Dataset(name=name, digest=digest, source_type="local", source=key)
        found.append(DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    if not found:
        return
    for attempt in range(_LOG_INPUTS_TRIES):
        try:
            mlflow_client.log_inputs(run_id, datasets=found)
            return
        except Exception as err:  # MLflow's exception types differ by store (SQL, REST)
            # jobs of a sweep logging the same dataset at once both insert its row, and the store's unique key
            # fails the later one (its whole insert rolled back); the row exists now, so logging again links it
            if attempt + 1 == _LOG_INPUTS_TRIES or not _is_unique_violation(err):
                raise


def _is_unique_violation(err: Exception) -> bool:
    """A unique key broken, as SQLite, PostgreSQL and MySQL say it (through MLflow's SQL store or its server)."""
    text = str(err).lower()
    return "unique constraint" in text or "duplicate key" in text or "duplicate entry" in text
