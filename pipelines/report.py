"""DVC stage `report@<study>`: results/<study>/runs.json -> report.md, report.html (self-contained), figures/
and metrics.json."""

import json
import sys
from pathlib import Path

from rnnlab.errors import exit_on_user_error


@exit_on_user_error
def main() -> None:
    from omegaconf import OmegaConf

    from rnnlab.pipeline import pipeline_settings
    from rnnlab.reporting.files import write_report
    from rnnlab.reporting.parent_run import attach_report, register_best
    from rnnlab.reporting.stopping import stopping_settings

    study = sys.argv[1]
    out = Path("results") / study
    sweep = json.loads((out / "runs.json").read_text())
    # a study that tunes hyper-parameters names them with their untuned defaults in conf/pipeline.yaml (`tuned`)
    tuned = pipeline_settings().studies[study].get("tuned")
    # the epoch cap and patience the study's jobs were resolved with (configure@<study>): where its runs stop
    configs = out / "configs.json"
    stopping = stopping_settings(json.loads(configs.read_text())) if configs.exists() else None
    written = write_report(out, f"Study `{study}`", sweep, OmegaConf.to_container(tuned) if tuned else None,
                           stopping)
    print(f"report: {written['markdown']} and {written['html']}")  # `make run` prints report.md itself
    # the tracking store: $MLFLOW_TRACKING_URI, else ./mlflow.db (the sweep's runs.json names its parent run)
    metrics = json.loads(written["metrics"].read_text())
    view = attach_report(out, sweep["parent_run_id"], metrics)
    if view:
        print(f"report: attached to the sweep's MLflow parent run {sweep['parent_run_id']}; its runs by "
              f"configuration, seeds averaged (`mlflow ui`): http://127.0.0.1:5000/{view}")
        registered = register_best(study, sweep["runs"])
        if registered:
            print(f"report: the best configuration's best run (by validation) is {registered}")
    else:
        print(f"report: the sweep's parent run {sweep['parent_run_id']} is not in this tracking store "
              "(results made elsewhere): the report files are written, not attached")


if __name__ == "__main__":
    main()
