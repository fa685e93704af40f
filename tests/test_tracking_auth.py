"""The shared tracking server with users (`make mlflow-server MLFLOW_AUTH=true`: MLflow's basic-auth app, the
auth extra) on SQLite: the admin creates a user and changes its own password, a sweep given the user's
credentials lands complete, a client without credentials or with a wrong password is refused (rnnlab-train:
one clear error line), and credentials in the tracking URI never reach a param, a tag, config.yaml or the
output."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import TINY, make_mlflow_server, run_module, run_train

from rnnlab.tracking import runs

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "first-admin-pw-4821"  # MLflow wants 12 characters or more
NEW_ADMIN_PASSWORD = "rotated-admin-pw-9315"
USER, PASSWORD = "labuser-q7x", "pw-of-labuser-5k2m"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


@dataclass
class AuthServer:
    uri: str
    auth_dir: Path
    log: Path


ADMIN_ENV = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": NEW_ADMIN_PASSWORD}


def _clean_env(monkeypatch, **values: str) -> None:
    """No MLflow credentials in this process's environment, then `values`: what rnnlab-train inherits, and
    what MLflow's client here sends (it reads them at each request)."""
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def _as_admin(server: AuthServer, monkeypatch):
    """MLflow's client with the admin's credentials (set once the commands under test have run)."""
    _clean_env(monkeypatch, **ADMIN_ENV)
    return runs.client(server.uri)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """`make mlflow-server MLFLOW_AUTH=true` (the documented command; its secret key and auth config made in
    MLFLOW_AUTH_DIR) on SQLite with 2 workers, on a free port of 127.0.0.1; the admin then creates USER and
    rotates its own first password with MLflow's auth client. The server's process group is stopped after."""
    tmp = tmp_path_factory.mktemp("auth_server")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env["MLFLOW_AUTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD  # the first start only: it creates `admin`
    with make_mlflow_server(tmp / "mlflow-server.log", env, MLFLOW_AUTH="true", MLFLOW_AUTH_DIR=str(tmp / "auth"),
                            MLFLOW_BACKEND=f"sqlite:///{tmp / 'mlflow.db'}",
                            MLFLOW_ARTIFACTS=str(tmp / "mlartifacts")) as uri:
        server = AuthServer(uri, tmp / "auth", tmp / "mlflow-server.log")
        _administer(server)
        yield server


def _administer(server: AuthServer) -> None:
    """What docs/scaling.md tells the admin to do: change the first password, create a user (MLflow's client)."""
    from mlflow.server import get_app_client

    saved = {key: os.environ.get(key) for key in ADMIN_ENV}
    try:
        os.environ.update({"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD})
        get_app_client("basic-auth", tracking_uri=server.uri).update_user_password(
            "admin", NEW_ADMIN_PASSWORD, current_password=ADMIN_PASSWORD)
        os.environ.update(ADMIN_ENV)
        get_app_client("basic-auth", tracking_uri=server.uri).create_user(USER, PASSWORD)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_the_server_keeps_its_secret_key_and_users_in_its_auth_directory(auth_server):
    key = auth_server.auth_dir / "secret_key"
    assert len(key.read_text().strip()) == 64 and stat.S_IMODE(key.stat().st_mode) == 0o600
    ini = (auth_server.auth_dir / "basic_auth.ini").read_text()
    assert f"database_uri = sqlite:///{auth_server.auth_dir / 'basic_auth.db'}" in ini
    assert "admin_password" not in ini  # the first password came from the environment, and only once
    assert (auth_server.auth_dir / "basic_auth.db").stat().st_size > 0


def test_only_clients_with_valid_credentials_get_in(auth_server):
    url = auth_server.uri + SEARCH
    assert requests.get(url, timeout=10).status_code == 401  # no credentials
    assert requests.get(url, auth=(USER, "not-the-password"), timeout=10).status_code == 401
    assert requests.get(url, auth=("admin", ADMIN_PASSWORD), timeout=10).status_code == 401  # rotated away
    assert requests.get(url, auth=("admin", NEW_ADMIN_PASSWORD), timeout=10).status_code == 200
    assert requests.get(url, auth=(USER, PASSWORD), timeout=10).status_code == 200


def test_rnnlab_train_without_or_with_wrong_credentials_is_one_clear_error(auth_server, tiny_project,
                                                                           monkeypatch):
    wrong = {"MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    none = "requires credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    for env, message in (({}, none),
                         (wrong, f"refused the credentials of user {USER!r}: wrong user name or password")):
        _clean_env(monkeypatch, **env)
        for flags in ([], ["-m"]):  # one run fails in train(); a sweep already in the sweep callback
            proc = run_module("rnnlab.train", tiny_project, *flags, *TINY, tracking_uri=auth_server.uri)
            assert proc.returncode == 2, proc.stderr[-2000:]
            assert "Traceback" not in proc.stderr
            (line,) = proc.stderr.strip().splitlines()[-1:]
            assert line.startswith(f"rnnlab: error: the MLflow tracking server {auth_server.uri} "), line
            assert message in line, line
    _clean_env(monkeypatch)
    proc = run_module("rnnlab.predict", tiny_project, "run_id=0123456789abcdef", "text=fine",
                      tracking_uri=auth_server.uri)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "requires credentials" in proc.stderr.strip().splitlines()[-1]
    admin = _as_admin(auth_server, monkeypatch)
    assert admin.get_experiment_by_name("sentiment-tiny") is None  # the refused commands made nothing


def _sweep(project: Path, tmp_path: Path, *extra: str, tracking_uri: str, name: str = "sweep"):
    return run_train(project, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.cell=rnn,gru",
                     f"hydra.sweep.dir={tmp_path / name}", *extra, tracking_uri=tracking_uri)


def _runs_of(admin, experiment: str) -> list:
    found = admin.get_experiment_by_name(experiment)
    return admin.search_runs([found.experiment_id], max_results=100) if found else []


def _complete_sweep(admin, all_runs: list, cells=("rnn", "gru")) -> list:
    """The children of the one FINISHED parent among `all_runs`, one FINISHED run with test metrics and a
    logged checkpoint per cell."""
    parents = [r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = admin.search_runs([parents[0].info.experiment_id],
                                 filter_string=f"tags.`{runs.PARENT_TAG}` = '{parents[0].info.run_id}'")
    assert sorted(c.data.params["model.cell"] for c in children) == sorted(cells)
    for child in children:
        assert child.info.status == "FINISHED" and "test_acc" in child.data.metrics
        logged = [a.path for a in admin.list_artifacts(child.info.run_id, "checkpoints")]
        assert logged == ["checkpoints/best.ckpt"]
    return [*parents, *children]


def test_a_sweep_with_a_users_credentials_lands_complete(auth_server, tiny_project, tmp_path, monkeypatch):
    _clean_env(monkeypatch, MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=PASSWORD)
    _sweep(tiny_project, tmp_path, "logger.experiment_name=auth-env", tracking_uri=auth_server.uri)
    admin = _as_admin(auth_server, monkeypatch)
    assert len(_complete_sweep(admin, _runs_of(admin, "auth-env"))) == len(_runs_of(admin, "auth-env")) == 3


def test_credentials_in_the_tracking_uri_never_reach_params_tags_artifacts_or_output(auth_server,
                                                                                      tiny_project, tmp_path,
                                                                                      monkeypatch):
    _clean_env(monkeypatch)
    host = auth_server.uri.removeprefix("http://")
    with_user = f"http://{USER}:{PASSWORD}@{host}"
    unused = f"sqlite:///{tmp_path / 'unused.db'}"  # MLFLOW_TRACKING_URI: logger.tracking_uri wins over it
    experiment = "auth-uri"
    single = run_train(tiny_project, f"logger.tracking_uri={with_user}",
                       f"logger.experiment_name={experiment}", f"hydra.run.dir={tmp_path / 'single'}",
                       tracking_uri=unused)
    # the basic launcher logs every job's overrides, the tracking URI among them
    sweep = run_train(tiny_project, "-m", "model.cell=rnn,gru", f"logger.tracking_uri={with_user}",
                      f"logger.experiment_name={experiment}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                      tracking_uri=unused)
    admin = _as_admin(auth_server, monkeypatch)
    all_runs = _runs_of(admin, experiment)
    assert len(all_runs) == 4  # the single run, the sweep's parent and its 2 children: all on the server
    _complete_sweep(admin, [r for r in all_runs if r.data.tags.get(runs.PARENT_TAG) or
                            r.data.tags.get("rnnlab.kind") == "sweep"])
    texts = {"stdout": single.stdout + sweep.stdout, "stderr": single.stderr + sweep.stderr}
    for run in all_runs:
        texts[f"params/tags of {run.info.run_name}"] = repr(run.data.params) + repr(run.data.tags)
        if run.data.tags.get("rnnlab.kind") == "train":
            assert not [key for key in run.data.params if key.startswith("logger.")]  # never a param
            config = admin.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / run.info.run_id))
            texts[f"config.yaml of {run.info.run_name}"] = Path(config).read_text()
            assert f"tracking_uri: {auth_server.uri}\n" in texts[f"config.yaml of {run.info.run_name}"]
    parent = next(r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep")
    assert f"logger.tracking_uri={auth_server.uri}" in parent.data.tags["rnnlab.overrides"]
    assert "#0 : " in sweep.stdout and f"logger.tracking_uri=http\\://{host.replace(':', chr(92) + ':')}" in (
        sweep.stdout)  # Hydra's launcher line, without the user info
    for where, text in texts.items():
        assert PASSWORD not in text, where
        assert USER not in text, where
