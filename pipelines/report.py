"""DVC stage `report@<study>`: results/<study>/runs.json -> report.md, report.html (self-contained), figures/
and metrics.json."""

import json
import sys
from pathlib import Path

from rnnlab.errors import exit_on_user_error


@exit_on_user_error
def main() -> None:
    from rnnlab.reporting.files import write_report

    study = sys.argv[1]
    out = Path("results") / study
    sweep = json.loads((out / "runs.json").read_text())
    written = write_report(out, f"Study `{study}`", sweep)
    print(written["markdown"].read_text())
    print(f"report: {written['html']}")


if __name__ == "__main__":
    main()
