"""Shared wiring of the DVC stage scripts: the stage's config = conf/ + conf/pipeline.yaml overrides + argv."""

from __future__ import annotations

import os
import sys

from omegaconf import OmegaConf

from rnnlab.config import conf_dir
from rnnlab.config_schema import validate, validate_pipeline

# Stage logs stay readable: no per-batch progress bars from `datasets`.
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def pipeline_settings():
    """conf/pipeline.yaml: what `dvc repro` builds (data sets, study, launcher, extra overrides)."""
    return OmegaConf.load(conf_dir() / "pipeline.yaml")


def stage_config(argv: list[str] | None = None):
    """The stage's composed config, every value checked (rnnlab.config_schema) before the stage writes anything."""
    from rnnlab.config import compose

    settings = pipeline_settings()
    validate_pipeline(settings)
    overrides = list(settings.get("overrides", [])) + list(sys.argv[1:] if argv is None else argv)
    cfg = compose(overrides)
    validate(cfg)
    return cfg

