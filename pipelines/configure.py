"""DVC stage `configure@<study>`: the resolved config of every job the study's sweep will run, and the sha256 of
every rnnlab file those runs can execute -> results/<study>/configs.json, the sweep stage's config and code
dependency (so DVC sees every key and every line of code that changes a result, and nothing else)."""

import sys
from pathlib import Path

from rnnlab.errors import exit_on_user_error
from rnnlab.io import write_json
from rnnlab.study import study_configs


@exit_on_user_error
def main() -> None:
    study = sys.argv[1]
    configs = study_configs(study, Path(__file__).with_name("sweep.py"))
    write_json(Path("results") / study / "configs.json", configs)
    print(f"configure: {study}: {configs['jobs']} jobs, {len(configs['common'])} keys in common, "
          f"{len(configs['code'])} source files")


if __name__ == "__main__":
    main()
