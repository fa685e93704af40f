"""DVC stage `sweep@<study>`: the Hydra multirun `rnnlab-train -m experiment=<study>`, read back from MLflow.

Writes results/<study>/runs.json: one row per child run of the sweep's MLflow parent run.
After an interrupted `dvc repro`, `RNNLAB_RESUME=1 dvc repro` goes on with that sweep (`resume=true`): the
latest sweep of the study that ran the same code keeps its FINISHED jobs, and the others go on from their
checkpoints.
"""

import os
import subprocess
import sys
from pathlib import Path

from rnnlab import study as studies
from rnnlab.config import unique_name
from rnnlab.errors import RnnlabError, exit_on_user_error
from rnnlab.io import write_json
from rnnlab.pipeline import pipeline_settings, stage_config


@exit_on_user_error
def main() -> None:
    from rnnlab.reporting.sweep_runs import sweep_rows
    from rnnlab.tracking import runs

    study = sys.argv[1]
    settings = pipeline_settings()
    study_overrides = settings.studies[study].get("overrides", [])  # e.g. fewer epochs for a big grid
    overrides = studies.study_overrides(study)
    sweep_dir = Path("outputs/sweeps") / f"{study}-{unique_name()}"  # its own, however many sweeps run at once
    cmd = [sys.executable, "-m", "rnnlab.train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}",
           *(["resume=true"] if resume_requested() else [])]
    print("sweep:", runs.redact(" ".join(cmd)), flush=True)  # without a URI's user:password@
    if subprocess.run(cmd).returncode != 0:
        raise RnnlabError(f"the sweep failed (see the output above and {sweep_dir}); earlier results are kept")
    # the runs' own config, for the tracking URI: Hydra's own keys (launcher, sweep dir) do not compose there
    cfg = stage_config([f"experiment={study}", *single_values(study_overrides)])
    client = runs.client(runs.tracking_uri(cfg.logger))
    parent = runs.read_parent_run_id(sweep_dir)
    rows = sweep_rows(client, parent)
    write_json(Path("results") / study / "runs.json", {"parent_run_id": parent, "runs": rows})
    print(f"sweep: {len(rows)} runs under MLflow parent run {parent}")


def resume_requested() -> bool:
    value = os.environ.get("RNNLAB_RESUME", "0")
    if value not in ("0", "1"):
        raise RnnlabError(f"RNNLAB_RESUME={value!r}: use 1 (go on with this study's interrupted sweep) or 0")
    return value == "1"


def single_values(overrides: list[str]) -> list[str]:
    """The overrides a plain composition accepts: not Hydra's own keys, not sweeps (`model.attention=none,dot`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("hydra")])
    return [o.input_line for o in parsed if not o.is_sweep_override()]


if __name__ == "__main__":
    main()
