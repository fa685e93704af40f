"""A sweep read back from MLflow: one row per child run, with the configuration keys that vary across the sweep,
its summary metrics, validation history and the analysis tables it logged."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from rnnlab.reporting.configurations import ALWAYS_SHOWN, CONFIG_LABELS, number, sort_key
from rnnlab.tracking import runs

NOT_CONFIG = ("seed", "run_name", "hydra.", "paths.", "logger.", "launcher.")
ANALYSIS_FILES = {"gradient_flow": "analysis/gradient_flow.csv", "gate_stats": "analysis/gate_stats.csv"}


def sweep_rows(mlflow_client, parent_run_id: str) -> list[dict]:
    """One row per child run of the sweep: its configuration (the keys that vary across the sweep), seed,
    status, summary metrics, validation history and any analysis tables the run logged."""
    children = runs.child_runs(mlflow_client, parent_run_id)
    varying = varying_keys([child.data.params for child in children])
    rows = [run_row(mlflow_client, child, varying) for child in children]
    return sorted(rows, key=lambda r: (sort_key(r["config"]), str(r["seed"]), r["run_name"]))


def run_row(mlflow_client, child, varying: list[str]) -> dict:
    """One run's row; `varying`: the configuration keys that vary across its sweep."""
    params, metrics = child.data.params, child.data.metrics
    task = params.get("task.kind", "classify")
    config = {CONFIG_LABELS.get(key, key): display_value(key, params.get(key))
              for key in shown_keys(task, varying) if key in params}
    machine = {key.removeprefix(runs.MACHINE_TAG): value for key, value in sorted(child.data.tags.items())
               if key.startswith(runs.MACHINE_TAG)}
    run_id = child.info.run_id
    curve = params.get("task.objective.metric")  # the run's selection rule: the report follows it
    row = {"run_id": run_id, "run_name": child.info.run_name, "status": child.info.status,
           "task": task, "objective": {"metric": curve, "mode": params.get("task.objective.mode")},
           "seed": params.get("seed"), "config": config, "machine": machine,
           **{key: value for key, value in metrics.items() if not key.startswith(("train_", "val_"))}}
    for key in ("train_tokens_per_sec", "train_seconds"):
        if key in metrics:
            row[key] = metrics[key]
    if metrics.get("epochs") and metrics.get("fit_seconds"):
        row["seconds_per_epoch"] = metrics["fit_seconds"] / metrics["epochs"]
    row["history"] = {name: metric_history(mlflow_client, run_id, name) for name in (curve, "train_loss")}
    # the objective on the train split (train_acc for val_acc), where the task logs it: the report's
    # train-vs-validation gap at the selected checkpoint is read from it
    train = f"train_{curve.removeprefix('val_')}" if curve else None
    if train and train not in row["history"] and (found := metric_history(mlflow_client, run_id, train)):
        row["history"][train] = found
    row["analysis"] = analysis_tables(mlflow_client, run_id)
    probe = probe_examples(mlflow_client, run_id)
    if probe:
        row["examples"] = probe
    return row


def metric_history(mlflow_client, run_id: str, name: str) -> list[list]:
    return [[m.step, m.value] for m in mlflow_client.get_metric_history(run_id, name)]


def varying_keys(all_params: list[dict]) -> list[str]:
    """The parameter keys whose value differs between runs of the same model (seed and bookkeeping keys
    excluded), and `model` itself when the sweep compares models: a key that only one model has, or that is
    constant within each model (the bag's pooling, the CNN's filters), is implied by the model and not shown."""
    keys = sorted({key for params in all_params for key in params})
    models: dict[str, list[dict]] = {}
    for params in all_params:
        models.setdefault(str(params.get("model")), []).append(params)

    def varies(key: str) -> bool:
        if key == "model":
            return len(models) > 1
        return any(len({params[key] for params in group if key in params}) > 1 for group in models.values())

    return [key for key in keys if not key.startswith(NOT_CONFIG) and not key.endswith("seed")  # follow `seed`
            and varies(key)]


def shown_keys(task: str, varying: list[str]) -> list[str]:
    base = [key for key in ALWAYS_SHOWN if task != "longrange" or key != "embedding.name"]
    if task == "ner":
        base.append("model.crf")
    return base + [key for key in varying if key not in base]


def display_value(key: str, value):
    if key == "model.bidirectional":
        return "bi" if value == "True" else "uni"
    return value


def probe_examples(mlflow_client, run_id: str) -> dict | None:
    """The fixed sentences a classifier labelled at test end, with their words' log-odds (examples.json)."""
    import json

    if "examples.json" not in {item.path for item in mlflow_client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(mlflow_client.download_artifacts(run_id, "examples.json", tmp)).read_text())


def analysis_tables(mlflow_client, run_id: str) -> dict:
    """The CSV tables the analysis callbacks logged (gradient flow, gate statistics), as lists of dicts."""
    tables = {}
    logged = {item.path for item in mlflow_client.list_artifacts(run_id, "analysis")}
    for name, path in ANALYSIS_FILES.items():
        if path not in logged:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow_client.download_artifacts(run_id, path, tmp))
            with local.open() as handle:
                tables[name] = [{k: number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return tables
