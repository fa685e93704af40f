"""`rnnlab-report`: the comparison report (Markdown, a self-contained HTML page, figures, metrics) of any sweep
in MLflow, named by its parent run or by its Hydra sweep directory.

    rnnlab-report parent_run_id=<MLflow parent run id> [out=reports/<id>] [title="..."] [tracking_uri=...]
    rnnlab-report sweep_dir=outputs/sweeps/2026-11-26_14-00-00
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rnnlab.cli import key_values, print_help_if_asked
from rnnlab.config_schema import SCRIPT_ARGS
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.io import write_json
from rnnlab.reporting.files import write_report
from rnnlab.reporting.parent_run import attach_report
from rnnlab.reporting.stopping import settings_from_params
from rnnlab.reporting.sweep_runs import sweep_rows
from rnnlab.tracking import runs

USAGE = ("usage: rnnlab-report parent_run_id=<MLflow parent run id> | sweep_dir=<Hydra sweep dir> "
         "[out=<dir>] [title=...] [tracking_uri=...]")


def collect(parent_run_id: str, tracking_uri: str | None = None) -> dict:
    """The sweep's rows read back from MLflow: what results/<study>/runs.json holds."""
    uri = tracking_uri or runs.tracking_uri()
    client = runs.client(uri)
    try:
        parent = client.get_run(parent_run_id)
    except Exception as err:
        raise ConfigError(f"parent_run_id={parent_run_id!r} is not a run in {uri}: take the sweep's parent run "
                          "from the MLflow UI or from <sweep dir>/mlflow_parent_run_id") from err
    rows = sweep_rows(client, parent_run_id)
    if not rows:
        raise ConfigError(f"run {parent_run_id} ({parent.info.run_name}) has no child runs: is it a sweep's "
                          "parent run?")
    return {"parent_run_id": parent_run_id, "runs": rows}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return

    args = key_values(argv, SCRIPT_ARGS["rnnlab-report"], USAGE)
    parent = args.get("parent_run_id")
    if not parent and "sweep_dir" in args:
        parent = runs.read_parent_run_id(args["sweep_dir"]) if Path(args["sweep_dir"]).is_dir() else None
        if not parent:
            raise ConfigError(f"sweep_dir={args['sweep_dir']!r} holds no {runs.PARENT_FILE}: give the directory "
                              "of an `rnnlab-train -m` sweep, or parent_run_id=")
    if not parent:
        raise ConfigError(USAGE)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sweep = collect(parent, args.get("tracking_uri"))
    out = Path(args.get("out", f"reports/{parent}"))
    write_json(out / "runs.json", sweep)
    # the epoch cap and patience the runs logged: where they stop
    client = runs.client(args.get("tracking_uri") or runs.tracking_uri())
    stopping = settings_from_params([child.data.params for child in runs.child_runs(client, parent)])
    written = write_report(out, args.get("title", f"Sweep {parent}"), sweep, stopping=stopping)
    view = attach_report(out, parent, json.loads(written["metrics"].read_text()), args.get("tracking_uri"))
    print(f"report: {written['html']} and {written['markdown']} ({len(sweep['runs'])} runs), also on the "
          f"parent run {parent}; its runs by configuration in the MLflow UI: <server>/{view}")


if __name__ == "__main__":
    main()
