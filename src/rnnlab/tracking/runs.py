"""MLflow runs: the tracking URI, experiments, one parent run per sweep and one child run per configuration.

Default store: `sqlite:///<cwd>/mlflow.db` (never the refused ./mlruns file store; a `dvc exp run --temp` copy
uses the project's); set logger.tracking_uri or
MLFLOW_TRACKING_URI to use a server. A sweep's parent run id is written into the sweep's own directory (unique per
sweep, conf/hydra/) so workers on any launcher (joblib, SLURM, Ray) find it; the same id is also exported in
RNNLAB_PARENT_RUN_ID for jobs that run where the sweep directory is not shared.

Credentials: a server with users (`make mlflow-server MLFLOW_AUTH=true`) is given MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD, or `http://user:password@host` as the URI: `tracking_uri` moves that user info into
those variables and returns the URI without it. `redact` takes user info (and the password) out of whatever is
logged: params, config.yaml, tags, printed commands, Hydra's log lines (`RedactingFilter`, conf/hydra/).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import rnnlab
from rnnlab import cpu_kernels
from rnnlab.errors import ConfigError

PARENT_ENV = "RNNLAB_PARENT_RUN_ID"
PARENT_FILE = "mlflow_parent_run_id"
PARENT_TAG = "mlflow.parentRunId"


USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
# scheme://user:password@ (or user@; Hydra logs it as scheme\://user\:password@), before a URI's host; greedy:
# a password with an @ in it goes too
_USER_INFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*\\?://)[^\s/?#]+@")


def redact(text: str) -> str:
    """`text` without the user info of any URI in it (`http://alice:secret@host` -> `http://host`) and without
    the value of MLFLOW_TRACKING_PASSWORD: what every param, tag, artifact and printed line goes through."""
    text = _USER_INFO.sub(r"\g<scheme>", str(text))
    password = os.environ.get(PASSWORD_ENV, "")
    return text.replace(password, "***") if len(password) >= 8 else text  # (MLflow requires 12 or more)


def redacted(tree):
    """A copy of a config tree (dicts, lists, scalars) with `redact` applied to every string in it."""
    if isinstance(tree, dict):
        return {key: redacted(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return [redacted(value) for value in tree]
    return redact(tree) if isinstance(tree, str) else tree


class RedactingFilter(logging.Filter):
    """A logging filter (conf/hydra/default.yaml puts it on Hydra's and the jobs' handlers): Hydra's launchers
    log every job's overrides, `logger.tracking_uri=http://user:password@host` among them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _credentials_to_env(uri: str) -> str:
    """An http(s) URI's user info moved into MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (which
    MLflow's client sends, and child processes inherit); returns the URI without it, so that neither MLflow nor
    Lightning prints or logs it. Other URIs (e.g. a database's) are returned as they are."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if not uri.startswith(("http://", "https://")) or "@" not in urlsplit(uri).netloc:
        return uri
    parts = urlsplit(uri)
    user_info, _, host = parts.netloc.rpartition("@")
    user, has_password, password = user_info.partition(":")
    os.environ[USERNAME_ENV] = unquote(user)
    if has_password:
        os.environ[PASSWORD_ENV] = unquote(password)
    return urlunsplit(parts._replace(netloc=host))


def project_root(cwd: Path | None = None) -> Path:
    """The directory a run's default store lives in: the working directory, except inside the temporary copy
    that `dvc exp run --temp` / `--queue` works in (<project>/.dvc/tmp/exps/...), where it is the project itself:
    an experiment's runs land in the user's store, not in one deleted with the copy."""
    cwd = (cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i:i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


def tracking_uri(logger_cfg=None) -> str:
    """logger.tracking_uri, else $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db (`project_root`); an
    http(s) URI's user info (if any) is moved into MLflow's credential variables and left out of the URI
    returned."""
    configured = (logger_cfg or {}).get("tracking_uri")
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
    return _credentials_to_env(str(uri))


def check_reachable(uri: str, timeout: float = 10) -> None:
    """Fail at once with one message when an http(s) tracking server does not answer (MLflow itself retries for
    about 4 minutes, then ends in a traceback), and when it requires credentials that this process lacks or
    refuses the ones it has (a server with users: `make mlflow-server MLFLOW_AUTH=true`). One API request
    tells, sent as MLflow's client sends it (MLFLOW_TRACKING_USERNAME / _PASSWORD, or MLFLOW_TRACKING_TOKEN)."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    uri = _credentials_to_env(uri)
    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout)  # any HTTP answer means a server is there
    except requests.RequestException as err:
        raise ConfigError(f"the MLflow tracking server {uri} does not answer ({type(err).__name__}): start it "
                          "(`make mlflow-server`) or set MLFLOW_TRACKING_URI / logger.tracking_uri") from err
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    try:
        status = http_request(creds, "/api/2.0/mlflow/experiments/search", "GET", max_retries=0,
                              timeout=timeout, params={"max_results": 1}).status_code
    except Exception:  # not an MLflow server's API, or it failed: MLflow's own error follows later
        return
    user = creds.username
    if status == 401 and not (user and creds.password) and not creds.token:
        raise ConfigError(f"the MLflow tracking server {uri} requires credentials: set {USERNAME_ENV} and "
                          f"{PASSWORD_ENV} (a user that the server's admin created) and run again")
    if status == 401:
        who = f"of user {user!r}" if user else "given (MLFLOW_TRACKING_TOKEN)"
        raise ConfigError(f"the MLflow tracking server {uri} refused the credentials {who}: wrong user name "
                          f"or password; check {USERNAME_ENV} / {PASSWORD_ENV}")
    if status == 403:
        raise ConfigError(f"the MLflow tracking server {uri} lets user {user!r} in but not read experiments: "
                          "ask the server's admin for a permission")


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=_credentials_to_env(uri))


def registered_model_run(model_uri: str, store: str | None = None) -> str:
    """The run id behind `models:/<name>/<version>` or `models:/<name>@<alias>` in the model registry of `store`
    (a tracking URI; default `tracking_uri()`)."""
    spec = model_uri.removeprefix("models:/")
    name, sep, version = spec.rpartition("/")
    alias = None
    if not sep:
        name, sep, alias = spec.rpartition("@")
    if not model_uri.startswith("models:/") or not sep or not name or not (version or alias):
        raise ConfigError(f"model={model_uri!r} is not models:/<registered name>/<version> "
                          "(or models:/<name>@<alias>)")
    store = store or tracking_uri()
    registry = client(store)
    try:
        found = registry.get_model_version_by_alias(name, alias) if alias else registry.get_model_version(name, version)
    except Exception as err:
        raise ConfigError(f"model={model_uri!r} is not in the model registry of {redact(store)}: check the name "
                          "and the version or alias (MLflow UI, Models)") from err
    if not found.run_id:
        raise ConfigError(f"model={model_uri!r} was registered without a run: register it from a training run")
    return found.run_id


def experiment_id(mlflow_client, name: str, artifact_location: str | None = None) -> str:
    """Get or create the experiment; tolerate a concurrent creator (parallel sweep workers)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    if artifact_location is None and project_root() != Path.cwd().resolve():  # in a `dvc exp run --temp` copy
        artifact_location = (project_root() / "mlruns" / re.sub(r"[^\w.-]", "_", name)).as_uri()
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


CODE_DIGEST_TAG = "rnnlab.code_digest"


@functools.cache
def code_digest() -> str:
    """sha256 of the rnnlab package's Python sources as imported (uncommitted edits included, bytecode not): the
    code a run really ran, which `git_commit` names only for a clean tree. Read once per process."""
    import hashlib

    root = Path(rnnlab.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


MACHINE_TAG = "rnnlab.machine."


def machine() -> dict[str, str]:
    """What a run's float results depend on beyond code, config and data: the CPU model (float kernels take other
    code paths on other CPUs unless rnnlab/cpu_kernels.py holds them to one), the kernel switches in force, its
    core count, and the torch build. Tagged on every run (`rnnlab.machine.*`)."""
    import platform
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # Linux: the model, its family / model numbers and widest vector unit
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                    if ":" in line)
        info = {key.strip(): value.strip() for key, value in info.items()}
        flags = info.get("flags", "").split()
        isa = next((name.upper() for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), None)
        cpu = f"{info.get('model name', cpu)} (family {info.get('cpu family')} model {info.get('model')}" + (
            f", {isa.replace('F', '') if isa == 'AVX512F' else isa})" if isa else ")")
    return {"cpu": cpu, "cores": str(os.cpu_count()), "torch": f"torch {version('torch')}",
            "python": f"Python {platform.python_version()}", "kernels": cpu_kernels.effective()}


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
    """The parent run of the sweep whose directory is `sweep_dir` (each sweep has its own: conf/hydra/); None for
    a single run. The environment variable serves a job on a machine that does not share the sweep directory."""
    if sweep_dir is None:
        return None
    if (Path(sweep_dir) / PARENT_FILE).exists():
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
        active = mlflow_client.create_run(exp_id, run_name=name, tags=redacted(tags or {}))
    run_id = active.info.run_id
    try:
        yield active
    except BaseException:
        mlflow_client.set_terminated(run_id, "FAILED")
        raise
    mlflow_client.set_terminated(run_id, "FINISHED")


def log_params(mlflow_client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(key, redact(str(value))[:6000]) for key, value in params.items()]  # no credentials
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
