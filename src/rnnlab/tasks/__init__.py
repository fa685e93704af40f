"""One module per shape of RNN problem; each has `build(cfg) -> Built` (data, LightningModule, artifacts).

| task.kind   | shape                           | module             |
|-------------|---------------------------------|--------------------|
| `classify`  | many-to-one (sentiment)         | tasks/classify.py  |
| `ner`       | many-to-many aligned (tagging)  | tasks/ner.py       |
| `lm`        | next-word prediction            | tasks/lm.py        |
| `longrange` | synthetic memory (adding, copy) | tasks/longrange.py |
| `translation` | many-to-many encoder-decoder  | tasks/translation.py |
| `generate`  | one-to-many (conditional text)  | tasks/generation.py |
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from rnnlab import checkpoints
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.errors import ConfigError
from rnnlab.tracking import runs

KINDS = {"classify": "rnnlab.tasks.classify", "ner": "rnnlab.tasks.ner", "lm": "rnnlab.tasks.lm",
         "longrange": "rnnlab.tasks.longrange", "translation": "rnnlab.tasks.translation",
         "generate": "rnnlab.tasks.generation"}


def task_module(kind: str):
    """The module of a task kind: `build(cfg) -> Built` for training, `model_for_run(config, tokenizer, files)`
    (an untrained model shaped as a logged run's config says; `files` = the run's downloaded artifacts)."""
    if kind not in KINDS:
        raise ConfigError(f"task.kind={kind!r} is not one of {sorted(KINDS)}: choose task=classify|ner|lm|longrange|translation|generate")
    return importlib.import_module(KINDS[kind])


def build(cfg):
    """The task's data and LightningModule, with the run's one selection rule (tasks.base.selection_rule)."""
    from rnnlab.tasks.base import selection_rule

    built = task_module(cfg.task.get("kind")).build(cfg)
    built.module.objective = selection_rule(cfg, built.module.validation_metrics)
    return built


def load_run(run_id: str, tracking_uri: str | None = None):
    """(model, tokenizer, config) of a training run, rebuilt from its logged artifacts; its checkpoint is read
    as tensors only, its config may build only rnnlab's models (rnnlab.checkpoints): nothing in them runs."""
    uri = runs.tracking_uri({"tracking_uri": tracking_uri})  # any user info goes into MLflow's variables
    runs.check_reachable(uri)
    client = runs.client(uri)
    try:
        client.get_run(run_id)
    except Exception as err:
        raise ConfigError(f"run_id={run_id!r} is not a run in {uri}: "
                          "take one from the MLflow UI or results/<study>/runs.json") from err
    with tempfile.TemporaryDirectory() as tmp:
        try:
            files = Path(client.download_artifacts(run_id, "", tmp))
        except Exception as err:
            raise ConfigError(f"run {run_id} has no artifacts: is it a training run that started?") from err
        return load_files(files, f"run {run_id}")


def load_files(files: Path, what: str):
    """(model, tokenizer, config) from a run's files (config.yaml, tokenizer.json and the task's others,
    checkpoints/best.ckpt): a downloaded run, or the files inside its MLflow model (tasks/mlflow_model.py)."""
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.load(files / "config.yaml")
    except Exception as err:
        raise ConfigError(f"{what} has no config.yaml: is it a training run that started?") from err
    if config.task.get("kind") == "longrange":
        raise ConfigError(f"{what} learned a synthetic long-range task ({config.data.name}): it has no "
                          f"text to label: its gradient flow and gates are in its analysis/ artifacts")
    best = files / "checkpoints/best.ckpt"
    try:
        tokenizer = load_tokenizer(files / "tokenizer.json")
        if not best.is_file():
            raise FileNotFoundError(best)
    except Exception as err:
        raise ConfigError(f"{what} has no model files (config.yaml, tokenizer.json, checkpoints/best.ckpt); "
                          "did it finish?") from err
    checkpoint = checkpoints.load(best, f"the checkpoint checkpoints/best.ckpt of {what}")
    checkpoints.check_targets(config, f"the config.yaml of {what}")
    # older runs predate task.kind: they are all classifiers
    model = task_module(config.task.get("kind", "classify")).model_for_run(config, tokenizer, files)
    state = {key.removeprefix("model."): value for key, value in checkpoint["state_dict"].items()
             if key.startswith("model.")}
    model.load_state_dict(state)
    return model.eval(), tokenizer, config
