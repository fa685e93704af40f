"""Where the Hydra configuration lives, composing it outside `hydra.main` (DVC stages, tests), and the jobs a
sweep launches."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from omegaconf import OmegaConf

from rnnlab.errors import ConfigError

PACKAGE_CONF = Path(__file__).resolve().parents[2] / "conf"


def conf_dir() -> Path:
    """$RNNLAB_CONF_DIR, else ./conf of the current project, else the conf/ next to this source tree."""
    if os.environ.get("RNNLAB_CONF_DIR"):
        return Path(os.environ["RNNLAB_CONF_DIR"]).resolve()
    local = Path.cwd() / "conf"
    return local if (local / "train.yaml").exists() else PACKAGE_CONF


def unique_name() -> str:
    """`<date>_<time>-<8 random hex digits>`: output directories of runs and sweeps that start in the same second
    (on one machine or as SLURM / Ray jobs) never share a path; the date keeps them in order."""
    return time.strftime("%Y-%m-%d_%H-%M-%S") + "-" + secrets.token_hex(4)


# `${rnnlab.unique:}` in conf/hydra/: cached, so one process (and the jobs Hydra copies its config to) sees one value
if not OmegaConf.has_resolver("rnnlab.unique"):
    OmegaConf.register_new_resolver("rnnlab.unique", unique_name, use_cache=True)


def compose(overrides: list[str] | None = None, config_name: str = "train", return_hydra_config: bool = False):
    """The composed config (no Hydra run-time values), for pipeline stages."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides or []),
                                 return_hydra_config=return_hydra_config)
    except HydraException as err:  # unknown key, missing config group option, bad override syntax
        raise ConfigError(f"configuration {conf_dir()} with overrides {list(overrides or [])}: "
                          f"{str(err).splitlines()[0]}") from err


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The overrides of each job that `rnnlab-train -m <overrides>` launches, in Hydra's job order: the basic
    sweeper crosses the experiment's `hydra.sweeper.params` with the command line's (a later key wins). Hydra's own
    keys (`hydra/launcher=...`, `hydra.sweep.dir=...`) are not part of a job's config and are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    task = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    fixed = [o.input_line for o in parser.parse_overrides(task) if not o.is_sweep_override()]
    params = compose(fixed, return_hydra_config=True).hydra.sweeper.get("params") or {}
    return crossed_jobs(params, task)


def crossed_jobs(params, task: list[str]) -> list[list[str]]:
    """The basic sweeper's jobs: `hydra.sweeper.params` crossed with the task overrides (a later key wins)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={value}" for key, value in params.items()] + list(task)
    return BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(lines), None)[0]
