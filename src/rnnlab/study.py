"""A study of conf/pipeline.yaml: the Hydra multirun that stage sweep@<study> runs, and the resolved config of
each of its jobs (what stage configure@<study> writes, so DVC re-runs the sweep exactly when one of them changes)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from rnnlab import code_deps
from rnnlab.config import compose, sweep_jobs
from rnnlab.config_schema import validate
from rnnlab.errors import ConfigError
from rnnlab.pipeline import pipeline_settings
from rnnlab.tasks import KINDS
from rnnlab.tracking.resume import result_config
from rnnlab.tracking.runs import flatten


def study_overrides(study: str) -> list[str]:
    """The `rnnlab-train -m` overrides of stage sweep@<study>: the common launcher settings, the experiment, the
    study's own overrides (which win over the launcher's, e.g. its n_jobs), then conf/pipeline.yaml's `overrides`."""
    settings = pipeline_settings()
    if study not in (settings.get("studies") or {}):
        raise ConfigError(f"study {study!r} is not one of the studies in conf/pipeline.yaml: "
                          f"{sorted(settings.get('studies') or {})}")
    own = settings.studies[study].get("overrides", [])
    return [*settings.get("launcher", []), f"experiment={study}", *own, *settings.get("overrides", [])]


def study_configs(study: str, script: Path | None = None) -> dict:
    """Every job of the study's sweep as its resolved config, without the keys that cannot change a result (the
    ones the resume hash leaves out), and the code its runs can execute: {"jobs": n, "common": {key: value},
    "varying": [{key: value} per job], "code": {file: sha256}}. This is what the sweep@<study> stage depends
    on, so DVC re-runs it exactly when a job's config or the code it runs changes. `script`: the stage's script
    (pipelines/sweep.py), whose imports are part of that code."""
    overrides = study_overrides(study)
    composed = [compose(job) for job in sweep_jobs(overrides)]
    for cfg in composed:
        validate(cfg)
    resolved = [OmegaConf.to_container(cfg, resolve=True) for cfg in composed]
    jobs = [flatten(result_config(job)) for job in resolved]
    keys = sorted({key for job in jobs for key in job})
    common = {key: jobs[0][key] for key in keys
              if all(key in job and job[key] == jobs[0][key] for job in jobs)}
    varying = [{key: job[key] for key in sorted(job) if key not in common} for job in jobs]
    hydra = OmegaConf.to_container(compose(sweep_jobs(overrides)[0], return_hydra_config=True).hydra,
                                   resolve=False)
    return {"jobs": len(jobs), "common": common, "varying": varying,
            "code": study_code([*resolved, hydra], script)}


def study_code(configs: list[dict], script: Path | None = None) -> dict[str, str]:
    """{file: sha256} of every rnnlab file a sweep of these job configs (and Hydra's config) can execute: the
    training entry point `rnnlab.train`, the sweep stage's script, the task module each job's `task.kind` selects
    (tasks.KINDS: only those, not the whole table) and every rnnlab name the configs hold (models' `_target_`,
    Hydra's callbacks, logging filters), each with its import closure."""
    names = {"rnnlab.train"}
    for config in configs:
        names |= set(code_deps.MODULE_NAME.findall(json.dumps(config, default=str)))
        kind = (config.get("task") or {}).get("kind")
        if kind in KINDS:
            names.add(KINDS[kind])
    tables = [code_deps.module_file("rnnlab.tasks")]
    files = code_deps.import_closure([script] if script else [], names, tables)
    return code_deps.digests(f for f in files if code_deps.PACKAGE in f.parents)
