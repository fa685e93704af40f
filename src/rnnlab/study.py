"""A study of conf/pipeline.yaml: the Hydra multirun that stage sweep@<study> runs, and the resolved config of
each of its jobs (what stage configure@<study> writes, so DVC re-runs the sweep exactly when one of them changes)."""

from __future__ import annotations

from omegaconf import OmegaConf

from rnnlab.config import compose, sweep_jobs
from rnnlab.config_schema import validate
from rnnlab.errors import ConfigError
from rnnlab.pipeline import pipeline_settings
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


def study_configs(study: str) -> dict:
    """Every job of the study's sweep as its resolved config, without the keys that cannot change a result (the
    ones the resume hash leaves out): {"jobs": n, "common": {key: value}, "varying": [{key: value} per job]}.
    This is what the sweep@<study> stage depends on, so DVC re-runs it exactly when a job's config changes."""
    composed = [compose(job) for job in sweep_jobs(study_overrides(study))]
    for cfg in composed:
        validate(cfg)
    jobs = [flatten(result_config(OmegaConf.to_container(cfg, resolve=True))) for cfg in composed]
    keys = sorted({key for job in jobs for key in job})
    common = {key: jobs[0][key] for key in keys
              if all(key in job and job[key] == jobs[0][key] for job in jobs)}
    varying = [{key: job[key] for key in sorted(job) if key not in common} for job in jobs]
    return {"jobs": len(jobs), "common": common, "varying": varying}
