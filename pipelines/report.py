"""DVC stage `report@<study>`: results/<study>/runs.json -> report.md (the comparison table) and metrics.json."""

import json
import sys
from pathlib import Path

from rnnlab.errors import exit_on_user_error
from rnnlab.io import atomic_file, write_json


@exit_on_user_error
def main() -> None:
    from rnnlab.tracking.report import dvc_metrics, report_markdown

    study = sys.argv[1]
    out = Path("results") / study
    sweep = json.loads((out / "runs.json").read_text())
    text = report_markdown(f"Study `{study}` (MLflow parent run {sweep['parent_run_id']})", sweep["runs"])
    with atomic_file(out / "report.md") as handle:
        handle.write(text)
    write_json(out / "metrics.json", dvc_metrics(sweep["runs"]))
    print(text)


if __name__ == "__main__":
    main()
