"""The report attached to the sweep's MLflow parent run: report.html, report.md, metrics.json and figures/ as its
artifacts (under report/), and the pooled per-configuration means of metrics.json as its metrics
(`<configuration>/<metric>`), so the UI shows the comparison where the runs are; and the study's model in the
registry: `models:/<study>@best`."""

from __future__ import annotations

from pathlib import Path

from rnnlab.reporting.statistics import chosen_run
from rnnlab.tracking import runs
from rnnlab.tracking.run_metadata import CONFIGURATION_TAG

REPORT_FILES = ("report.html", "report.md", "metrics.json")
# A view of the experiment that MLflow's UI opens from a link, `#/experiments/<id>?viewStateShareKey=<key>`: its
# runs grouped by the seedless configuration tag, each group's metrics averaged over its seeds. MLflow keeps a
# shared view as the experiment tag `mlflow.sharedViewState.<key>` holding the view's state as JSON (what its
# *Share* button writes); the UI fills in every key the JSON leaves out.
CONFIGURATION_VIEW = "by-configuration"
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def pooled_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json ({configuration: {metric: mean}, "best": {...}}) flattened to MLflow metric names."""
    return {f"{config}/{name}": float(value) for config, values in metrics.items()
            for name, value in values.items() if isinstance(value, int | float)}


def attach_report(out_dir: str | Path, parent_run_id: str, metrics: dict,
                  tracking_uri: str | None = None) -> str | None:
    """Log the report files and pooled metrics to the parent run and share the experiment's by-configuration
    view; returns that view's URL fragment, or None (and nothing logged) when the store does not have that run
    (results made on another machine, or a store since deleted)."""
    out = Path(out_dir)
    client = runs.client(tracking_uri or runs.tracking_uri())
    try:
        client.get_run(parent_run_id)
    except Exception:  # MLflow raises its own exception types for an unknown run id, by store
        return None
    for name in REPORT_FILES:
        if (out / name).is_file():
            client.log_artifact(parent_run_id, str(out / name), "report")
    if (out / "figures").is_dir():
        client.log_artifacts(parent_run_id, str(out / "figures"), "report/figures")
    runs.log_metrics(client, parent_run_id, pooled_metrics(metrics))
    names = sorted({name for config, values in metrics.items() if config != "best" for name in values})
    return share_configuration_view(client, client.get_run(parent_run_id).info.experiment_id, names)


def share_configuration_view(client, experiment_id: str, metric_names: list[str]) -> str:
    """Tag the experiment with the by-configuration view (the runs' metrics `metric_names` as columns); returns
    the URL fragment that opens it."""
    import json

    state = {"groupBy": {"aggregateFunction": "average",
                         "groupByKeys": [{"mode": "tag", "groupByData": CONFIGURATION_TAG}]},
             "selectedColumns": [f"metrics.`{name}`" for name in metric_names]}
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + CONFIGURATION_VIEW, json.dumps(state))
    return configuration_view_link(experiment_id)


def configuration_view_link(experiment_id: str) -> str:
    """The UI's URL fragment (after the server's address) of the experiment's by-configuration view."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={CONFIGURATION_VIEW}"


BEST_ALIAS = "best"


def register_best(study: str, rows: list[dict], tracking_uri: str | None = None) -> str | None:
    """Register the chosen run's MLflow model as `<study>` with the alias `best` (a new version only when the
    chosen run changed); returns `models:/<study>@best`, or None when that run has no model in this store."""
    import mlflow

    row = chosen_run(rows)
    if row is None:
        return None
    uri = tracking_uri or runs.tracking_uri()
    client = runs.client(uri)
    try:
        current = client.get_model_version_by_alias(study, BEST_ALIAS)
        if current.run_id == row["run_id"]:
            return f"models:/{study}@{BEST_ALIAS}"
    except Exception:  # no such registered model or alias yet
        pass
    try:
        outputs = client.get_run(row["run_id"]).outputs
    except Exception:  # the run is not in this store
        return None
    if not (outputs and outputs.model_outputs):  # logged before runs had models, or logger.log_model=false
        return None
    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(f"runs:/{row['run_id']}/model", study)
    client.set_registered_model_alias(study, BEST_ALIAS, version.version)
    return f"models:/{study}@{BEST_ALIAS}"
