"""A shared MLflow tracking server (`make mlflow-server`) on a real PostgreSQL server that the test starts itself
(Debian's postgresql package) with a directory artifact store: a sweep of 4 runs from 2 parallel workers lands
complete, and the runs are given nothing but the tracking URI."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY, free_port, grid_sweep_children, make_mlflow_server, run_train, tail

from rnnlab.tracking import runs

pytestmark = pytest.mark.slow

PG_USER = "rnnlab"
PG_DB = "mlflow"
INSTALL_HINT = "install Debian's postgresql package: sudo apt-get install -y --no-install-recommends postgresql"


def _postgres_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<version>/bin, else wherever initdb on PATH links to."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        proc = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(proc.stdout.strip())
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
                         reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for bindir in filter(None, candidates):
        if all((Path(bindir) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(bindir)
    return None


@dataclass
class Postgres:
    uri: str  # SQLAlchemy URL of the test database (PostgreSQL's default driver: psycopg, the postgres extra)
    port: int

    def query(self, sql: str, *args) -> list[tuple]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=PG_DB) as conn:
            return conn.execute(sql, args).fetchall()


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server: initdb in a temp dir, listening on 127.0.0.1 only (unix socket in the temp
    dir), stopped (pg_ctl stop -m fast) and deleted afterwards. As root it runs as the `postgres` system user."""
    bindir = _postgres_bindir()
    if bindir is None:
        message = f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the tracking-server test: {message}")
        pytest.skip(message)
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and pg_ctl refuse to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("as root, initdb runs as the `postgres` system user (made by Debian's postgresql package)")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="rnnlab-pg-"))  # short: a unix socket path has ~107 characters at most
    if as_user:
        shutil.chown(root, "postgres")
    data, log, port = root / "data", root / "postgres.log", free_port()

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*as_user, *args], cwd=root, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                                 f"server log:\n{tail(log)}")
        return proc

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--locale=C",
           "--no-sync")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
           f"-h 127.0.0.1 -p {port} -k {root} -F", "start")
        pg(str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", "postgres", "-q",
           "-c", f"CREATE DATABASE {PG_DB}")
        yield Postgres(f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DB}", port)
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Server:
    uri: str
    artifacts: Path
    log: Path


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    """`make mlflow-server` (the documented command) with the PostgreSQL backend and a temp artifact directory on a
    free port of 127.0.0.1; waits until /health answers; stops the server's whole process group afterwards."""
    if shutil.which("make") is None:
        pytest.fail("`make` is needed to start the documented `make mlflow-server`")
    artifacts, log = tmp_path / "mlartifacts", tmp_path / "mlflow-server.log"
    with make_mlflow_server(log, MLFLOW_BACKEND=postgres.uri, MLFLOW_ARTIFACTS=str(artifacts)) as uri:
        yield Server(uri, artifacts, log)


def test_sweep_from_parallel_workers_lands_complete_through_a_server_on_postgresql(mlflow_server, postgres,
                                                                                    tiny_project, tmp_path):
    run_train(tiny_project, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.cell=rnn,gru",
              "model.bidirectional=false,true", f"hydra.sweep.dir={tmp_path / 'sweep'}",
              tracking_uri=mlflow_server.uri)
    client = runs.client(mlflow_server.uri)
    experiment = client.get_experiment_by_name("sentiment-tiny")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # uploaded through the server
    children = grid_sweep_children(client, client.search_runs([experiment.experiment_id], max_results=100))
    for child in children:
        run_id = child.info.run_id
        for key in ("test_acc", "test_loss", "best_val_acc", "params_total", "fit_seconds"):
            assert key in child.data.metrics, key
        assert len(client.get_metric_history(run_id, "val_loss")) >= 1
        assert child.data.params["model"] == "recurrent" and "torch_threads" not in child.data.params
        downloaded = Path(client.download_artifacts(run_id, "", str(tmp_path / "download" / run_id)))
        config = (downloaded / "config.yaml").read_text()
        assert f"cell: {child.data.params['model.cell']}" in config
        assert (downloaded / "checkpoints" / "best.ckpt").stat().st_size > 0
    # the artifacts sit in the server's artifact directory, the runs and their data in PostgreSQL
    stored = list(mlflow_server.artifacts.rglob("best.ckpt"))  # each run's checkpoint, and its MLflow model's
    assert len([p for p in stored if "/models/" not in p.as_posix()]) == 4
    assert len([p for p in stored if "/models/" in p.as_posix()]) == 4
    rows = postgres.query("SELECT r.status, count(*) FROM runs r JOIN experiments e USING (experiment_id) "
                          "WHERE e.name = %s GROUP BY r.status", "sentiment-tiny")
    assert rows == [("FINISHED", 5)]
    (scored,) = postgres.query("SELECT count(DISTINCT run_uuid) FROM latest_metrics WHERE key = 'test_acc'")
    assert scored == (4,)


def test_an_unreachable_tracking_server_is_one_clear_error_and_no_long_wait(tiny_project):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    for flags in ([], ["-m"]):  # one run fails in train(); a sweep already in the sweep callback
        proc = subprocess.run([sys.executable, "-m", "rnnlab.train", *flags, *TINY], cwd=tiny_project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.strip().splitlines()[-1:]
        assert line.startswith("rnnlab: error:") and uri in line and "MLFLOW_TRACKING_URI" in line
