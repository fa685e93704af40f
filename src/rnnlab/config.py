"""Where the Hydra configuration lives, and composing it outside `hydra.main` (DVC stages, tests)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_CONF = Path(__file__).resolve().parents[2] / "conf"


def conf_dir() -> Path:
    """$RNNLAB_CONF_DIR, else ./conf of the current project, else the conf/ next to this source tree."""
    if os.environ.get("RNNLAB_CONF_DIR"):
        return Path(os.environ["RNNLAB_CONF_DIR"]).resolve()
    local = Path.cwd() / "conf"
    return local if (local / "train.yaml").exists() else PACKAGE_CONF


def compose(overrides: list[str] | None = None, config_name: str = "train"):
    """The composed config (no Hydra run-time values), for pipeline stages."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from rnnlab.errors import ConfigError

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides or []))
    except HydraException as err:  # unknown key, missing config group option, bad override syntax
        raise ConfigError(f"configuration {conf_dir()} with overrides {list(overrides or [])}: "
                          f"{str(err).splitlines()[0]}") from err
