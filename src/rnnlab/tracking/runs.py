"""MLflow runs: the tracking URI, experiments, one parent run per sweep and one child run per configuration.

Default store: `sqlite:///<cwd>/mlflow.db` (never the refused ./mlruns file store); set logger.tracking_uri or
MLFLOW_TRACKING_URI to use a server. A sweep's parent run id is written into the sweep directory so workers on
any launcher (joblib, SLURM, Ray) find it; the same id is also exported in RNNLAB_PARENT_RUN_ID.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

PARENT_ENV = "RNNLAB_PARENT_RUN_ID"
PARENT_FILE = "mlflow_parent_run_id"
PARENT_TAG = "mlflow.parentRunId"


def tracking_uri(logger_cfg=None) -> str:
    configured = (logger_cfg or {}).get("tracking_uri")
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 10) -> None:
    """Fail at once with one message when an http(s) tracking server does not answer (MLflow itself retries for
    about 4 minutes, then ends in a traceback)."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    from rnnlab.errors import ConfigError

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout)  # any HTTP answer means a server is there
    except requests.RequestException as err:
        raise ConfigError(f"the MLflow tracking server {uri} does not answer ({type(err).__name__}): start it "
                          "(`make mlflow-server`) or set MLFLOW_TRACKING_URI / logger.tracking_uri") from err


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow_client, name: str, artifact_location: str | None = None) -> str:
    """Get or create the experiment; tolerate a concurrent creator (parallel sweep workers)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name, artifact_location=artifact_location)
    except Exception:
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_commit(cwd: str | Path = ".") -> str:
    """HEAD's commit, with `-dirty` when the working tree has uncommitted changes to tracked files."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def is_global_zero() -> bool:
    """Whether this process is rank 0 of its job, read from the variables that Lightning's DDP launcher, torchrun
    and SLURM set (before the Trainer exists): only rank 0 creates and writes the MLflow run."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("LOCAL_RANK", "0")) == 0 and int(env.get("NODE_RANK", env.get("GROUP_RANK", "0"))) == 0


def write_parent_run_id(sweep_dir: str | Path, run_id: str) -> None:
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    (Path(sweep_dir) / PARENT_FILE).write_text(run_id)
    os.environ[PARENT_ENV] = run_id


def read_parent_run_id(sweep_dir: str | Path | None) -> str | None:
    if sweep_dir is not None and (Path(sweep_dir) / PARENT_FILE).exists():
        return (Path(sweep_dir) / PARENT_FILE).read_text().strip()
    return os.environ.get(PARENT_ENV)


@contextlib.contextmanager
def run(mlflow_client, exp_id: str, name: str, tags: dict | None = None, reopen: str | None = None) -> Iterator:
    """A run that ends FINISHED when the block succeeds and FAILED (never left RUNNING) when it raises.
    `reopen`: the id of an earlier run to continue instead of creating one (a resumed run)."""
    if reopen:
        mlflow_client.update_run(reopen, status="RUNNING")
        active = mlflow_client.get_run(reopen)
    else:
        active = mlflow_client.create_run(exp_id, run_name=name, tags=tags or {})
    run_id = active.info.run_id
    try:
        yield active
    except BaseException:
        mlflow_client.set_terminated(run_id, "FAILED")
        raise
    mlflow_client.set_terminated(run_id, "FINISHED")


def log_params(mlflow_client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(key, str(value)[:6000]) for key, value in params.items()]
    for start in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
        mlflow_client.log_batch(run_id, params=items[start:start + 100])


def log_metrics(mlflow_client, run_id: str, metrics: dict, step: int = 0) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    mlflow_client.log_batch(run_id, metrics=items)


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def child_runs(mlflow_client, parent_run_id: str) -> list:
    parent = mlflow_client.get_run(parent_run_id)
    return mlflow_client.search_runs([parent.info.experiment_id],
                                     filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                     max_results=10000)


def log_embedding_run(cfg, embedding_dir: str | Path, metrics: dict) -> str:
    """One MLflow run per built embedding (experiment `embeddings-<data>`): config, scores and plots."""
    from omegaconf import OmegaConf

    mlflow_client = client(tracking_uri(cfg.logger))
    exp_id = experiment_id(mlflow_client, f"embeddings-{cfg.data.name}", cfg.logger.get("artifact_location"))
    tags = {"rnnlab.kind": "embedding", "rnnlab.git_commit": git_commit()}
    with run(mlflow_client, exp_id, cfg.embedding.name, tags) as active:
        run_id = active.info.run_id
        log_params(mlflow_client, run_id, flatten({"embedding": OmegaConf.to_container(cfg.embedding, resolve=True),
                                                   "data.name": cfg.data.name}))
        log_metrics(mlflow_client, run_id, {k: v for k, v in metrics.items() if isinstance(v, int | float)})
        for file in sorted(Path(embedding_dir).glob("*")):
            if file.suffix in (".json", ".png"):
                mlflow_client.log_artifact(run_id, str(file))
    return run_id
