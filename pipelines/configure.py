"""DVC stage `configure@<study>`: the resolved config of every job the study's sweep will run ->
results/<study>/configs.json, the sweep stage's config dependency (so DVC sees every key that changes a result)."""

import sys
from pathlib import Path

from rnnlab.errors import exit_on_user_error
from rnnlab.io import write_json
from rnnlab.study import study_configs


@exit_on_user_error
def main() -> None:
    study = sys.argv[1]
    configs = study_configs(study)
    write_json(Path("results") / study / "configs.json", configs)
    print(f"configure: {study}: {configs['jobs']} jobs, {len(configs['common'])} keys in common")


if __name__ == "__main__":
    main()
