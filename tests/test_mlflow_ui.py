"""The MLflow UI in a real browser (issue 18): headless Chromium (Debian's `chromium`; .ci/run installs it) over
`mlflow ui` on the store of a tiny sweep. The experiment's page opened with the project's documented URL
(`?workflowType=machine_learning`) lands on its runs, the sweep's parent among them; the compare page renders the
selected children with their names and metrics. Screenshots are saved in the test's directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port, http_service, run_train

from rnnlab.tracking import runs

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def ui(tiny_project, tmp_path_factory):
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    store = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    run_train(tiny_project, "-m", "model.cell=rnn,gru", "seed=1", "model.num_layers=1", "model.bidirectional=false",
              "trainer.max_epochs=1", f"hydra.sweep.dir={store / 'sweep'}", tracking_uri=uri)
    client = runs.client(uri)
    experiment = client.get_experiment_by_name("sentiment-tiny")
    parent = next(r for r in client.search_runs([experiment.experiment_id])
                  if r.data.tags.get("rnnlab.kind") == "sweep")
    children = runs.child_runs(client, parent.info.run_id)
    # the report attached to the parent, as the report stage does: it also shares the by-configuration view
    subprocess.run([sys.executable, "-m", "rnnlab.report", f"parent_run_id={parent.info.run_id}",
                    f"out={store / 'report'}", f"tracking_uri={uri}"], check=True, capture_output=True)
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port)]
    with http_service(command, f"http://127.0.0.1:{port}/health", store / "ui.log", "mlflow ui"):
        yield f"http://127.0.0.1:{port}", experiment, parent, children, store


def _browse(url: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran (20 s of virtual time), and a screenshot of it."""
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000",
                           "--virtual-time-budget=20000", f"--screenshot={screenshot}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one
    return proc.stdout


def test_the_experiment_opens_on_its_runs_with_the_sweeps_parent(ui):
    base, experiment, parent, _, store = ui
    dom = _browse(f"{base}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning",
                  store / "landing.png")
    assert parent.info.run_name in dom and parent.info.run_name.startswith("sweep ")
    assert ">Runs<" in dom and "Overview" not in dom  # the training runs, not the GenAI overview


def test_the_compare_page_renders_the_selected_children_with_their_metrics(ui):
    base, experiment, _, children, store = ui
    ids = urllib.parse.quote(json.dumps([c.info.run_id for c in children]))
    dom = _browse(f"{base}/#/compare-runs?runs={ids}&experiments=%5B%22{experiment.experiment_id}%22%5D",
                  store / "compare.png")
    assert f"Comparing {len(children)} Runs" in dom
    for child in children:
        assert child.info.run_id in dom
        assert child.info.run_name in dom  # word2vec-rnn-1l-uni-seed1, word2vec-gru-1l-uni-seed1
    for metric in ("test_acc", "best_val_acc", "params_total"):
        assert metric in dom, metric


def test_the_shared_view_groups_the_runs_by_configuration_with_their_mean_metrics(ui):
    """The link the README gives (`?viewStateShareKey=by-configuration`, an experiment tag the report writes) opens
    the runs table grouped by the seedless configuration tag."""
    from rnnlab.reporting.parent_run import configuration_view_link

    base, experiment, _, children, store = ui
    dom = _browse(f"{base}/{configuration_view_link(experiment.experiment_id)}", store / "grouped.png")
    assert "Group by: rnnlab.configuration" in dom or "Group by: <!-- -->rnnlab.configuration" in dom
    for child in children:
        assert f"Group: {child.data.tags['rnnlab.configuration']}" in dom  # a group row per configuration
        assert child.info.run_name in dom  # and its run in it
    assert "test_acc" in dom  # a metric column of the view
