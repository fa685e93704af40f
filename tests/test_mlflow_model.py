"""Every training run logs an MLflow model (issue 18): a tiny classifier run read back as `runs:/<id>/model` with
`mlflow.pyfunc.load_model`, served by `mlflow models serve --env-manager local` over HTTP, and equal to what
`rnnlab-predict` (which reads the run's checkpoint, not the MLflow model) says for the same texts."""

from __future__ import annotations

import pytest
from conftest import run_module, served_model, train_one_run

pytestmark = pytest.mark.slow
TEXTS = ["a wonderful , moving and brilliant film", "boring , dull and painful"]


@pytest.fixture(scope="module")
def classifier_run(tiny_project, tmp_path_factory):
    store = tmp_path_factory.mktemp("modelstore")
    uri, run = train_one_run(tiny_project, store, "trainer.max_epochs=2")
    return uri, run, store


def test_the_run_has_a_model_with_a_signature_that_pyfunc_loads_and_predicts_with(classifier_run, tiny_project):
    import mlflow
    import pandas as pd

    uri, run, _ = classifier_run
    assert run.outputs.model_outputs, "the run lists no logged model"
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.signature.inputs.input_names() == ["text"]
    assert model.metadata.signature.outputs.input_names() == ["label", "p_negative", "p_positive"]
    out = model.predict(pd.DataFrame({"text": TEXTS}))
    assert set(out["label"]) <= {"negative", "positive"}
    assert ((out["p_negative"] + out["p_positive"]) - 1).abs().max() < 1e-3
    # the same numbers as rnnlab-predict, which rebuilds the model from the run's checkpoint, not its MLflow model
    texts = tiny_project / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    proc = run_module("rnnlab.predict", tiny_project, f"run_id={run.info.run_id}", f"file={texts}",
                      tracking_uri=uri)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line, label, p_positive in zip(proc.stdout.strip().splitlines(), out["label"], out["p_positive"],
                                       strict=True):
        predicted, probabilities, _ = line.split("\t")
        assert predicted == label and f"'positive': {p_positive}" in probabilities


def test_mlflow_models_serve_answers_an_http_request(classifier_run):
    uri, run, store = classifier_run
    with served_model(f"runs:/{run.info.run_id}/model", uri, store / "serve.log") as ask:
        answer = ask(TEXTS)
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    local = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pd.DataFrame({"text": TEXTS}))
    assert answer["predictions"] == local.to_dict(orient="records")
