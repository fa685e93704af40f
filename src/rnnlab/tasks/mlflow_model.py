"""Every training run's MLflow model (`runs:/<run id>/model`): a pyfunc over the run's best checkpoint, its
tokenizer(s) and config, so the registry, `mlflow models serve` and `mlflow.pyfunc.load_model` work on it.

Each task's natural input and output, a DataFrame with a `text` column in, one row out per text:
- classify: `label` and `p_<label>` per class;        - ner: `tags` (one per whitespace-separated word);
- translation: `translation` (params: beam, length_penalty); - lm: `continuation` of the prompt;
- generate: `text` is a label, out `generated` (lm and generate: params words, strategy, temperature, top_k, seed).
A long-range run (synthetic sequences, no text) logs no model.

Inside the model are the files `tasks.load_files` rebuilds it from (config.yaml, tokenizer.json and the task's
others, and checkpoints/best.ckpt holding the model's weights only, read with torch's weights-only loader) and
its code, logged as "models from code" (tasks/pyfunc_code.py: import rnnlab, build `RunModel`), not as a
pickle. Loading any pyfunc model runs the Python file stored in it: load them only from a store whose writers
you trust (rnnlab-predict and the other scripts read a run's checkpoint and config only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import mlflow.pyfunc  # this module is imported only where a model is logged or loaded
import pandas as pd

from rnnlab import checkpoints
from rnnlab.tasks import load_files, task_module

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar per run in a sweep's output
MODEL_NAME = "model"
PYFUNC_CODE = "rnnlab.tasks.pyfunc_code"  # the model's code: MLflow runs this module's file when it loads one


class RunModel(mlflow.pyfunc.PythonModel):
    """The run's model, rebuilt from the files inside the MLflow model (weights read as tensors only)."""

    def load_context(self, context):
        self.model, self.tokenizer, self.config = load_files(Path(context.artifacts["run"]), "the MLflow model")

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return pd.DataFrame(predict_rows(self.model, self.tokenizer, self.config, _texts(model_input),
                                         params or {}))


def _texts(model_input) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        return [str(t) for t in model_input[column].tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in model_input]


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """One output row per text, as the run's task module says (its `predict_rows`): the pyfunc's predict."""
    return task_module(config.task.get("kind", "classify")).predict_rows(model, tokenizer, config, texts, params)


def _model_files(out: Path, config_yaml: dict, files: list[Path], fitted: Path) -> None:
    """config.yaml, the task's files, and checkpoints/best.ckpt with the model's weights only (no optimizer)."""
    import shutil

    import torch
    from omegaconf import OmegaConf

    out.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(config_yaml), out / "config.yaml")
    for path in files:
        shutil.copy(path, out / Path(path).name)
    state = {key: value for key, value in checkpoints.load(fitted, "the best checkpoint")["state_dict"].items()
             if key.startswith("model.")}
    (out / "checkpoints").mkdir()
    torch.save({"state_dict": state}, out / "checkpoints/best.ckpt")


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow's info lines (validating the example...) once per logged model: not a user's concern."""
    loggers = [logging.getLogger(name) for name in ("mlflow.pyfunc", "mlflow.models")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _requirements() -> list[str]:
    """The installed versions of what the model needs besides rnnlab itself (serve it from the project's
    environment: `--env-manager local`)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("torch", "mlflow", "pytorch-lightning", "hydra-core", "omegaconf", "tokenizers", "pandas"):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    return found


def log_run_model(mlflow_client, uri: str, run_id: str, exp_id: str, config_yaml: dict, files: list[Path],
                  fitted: Path, step: int = 0) -> str | None:
    """Log the run's pyfunc model (a LoggedModel named `model` whose source run is the run; `runs:/<id>/model`)
    with a signature and an input example; returns its model id (None for a task without text)."""
    task = task_module(config_yaml.get("task", {}).get("kind", "classify"))
    if not hasattr(task, "predict_rows"):  # a long-range run: synthetic sequences, no text
        return None
    import importlib.util

    import mlflow
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import infer_signature

    example_text, params = task.model_example(config_yaml)
    with tempfile.TemporaryDirectory() as tmp:
        run_files = Path(tmp) / "run"
        _model_files(run_files, config_yaml, files, fitted)
        model, tokenizer, config = load_files(run_files, f"run {run_id}")  # the example's output, for the signature
        example = pd.DataFrame({"text": [example_text]})
        output = pd.DataFrame(predict_rows(model, tokenizer, config, [example_text], params or {}))
        mlflow.set_tracking_uri(uri)  # the model logger is MLflow's fluent API; no run is made active
        logged = mlflow_client.create_logged_model(exp_id, name=MODEL_NAME, source_run_id=run_id)
        with _quiet_mlflow():
            mlflow.pyfunc.log_model(name=MODEL_NAME, python_model=importlib.util.find_spec(PYFUNC_CODE).origin,
                                    artifacts={"run": str(run_files)}, model_id=logged.model_id,
                                    signature=infer_signature(example, output, params),
                                    input_example=(example, params) if params else example,
                                    pip_requirements=_requirements())
    mlflow_client.log_outputs(run_id, models=[LoggedModelOutput(logged.model_id, step)])
    return logged.model_id
