"""Resumable sweeps (`resume=true`): a configuration is recognised by its resolved config, not its job number.

Every training run is tagged with `rnnlab.config_hash` (the resolved config without the keys that cannot change
a result) and `rnnlab.output_dir`; every sweep parent with `rnnlab.sweep_key` (its command-line overrides).
Re-running an interrupted sweep with `resume=true` reopens the latest parent of the same overrides; within it a
configuration whose run FINISHED is skipped, and one whose run was killed continues in the same MLflow run from
<output_dir>/checkpoints/last.ckpt (or from the start when it died before its first checkpoint).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rnnlab.tracking import runs

CONFIG_HASH_TAG = "rnnlab.config_hash"
OUTPUT_DIR_TAG = "rnnlab.output_dir"
SWEEP_KEY_TAG = "rnnlab.sweep_key"
# where to log and how many threads: the same experiment either way
NEUTRAL_KEYS = ("resume", "logger", "torch_threads", "data.num_workers")


def config_hash(resolved: dict) -> str:
    tree = json.loads(json.dumps(resolved, default=str))
    for key in NEUTRAL_KEYS:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()


def sweep_key(overrides: list[str]) -> str:
    kept = sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "resume")
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


@dataclass
class Previous:
    """An earlier run of the same configuration."""
    run: object  # mlflow.entities.Run

    @property
    def finished(self) -> bool:
        return self.run.info.status == "FINISHED"

    @property
    def output_dir(self) -> Path | None:
        found = self.run.data.tags.get(OUTPUT_DIR_TAG)
        return Path(found) if found else None

    @property
    def last_checkpoint(self) -> Path | None:
        path = self.output_dir / "checkpoints" / "last.ckpt" if self.output_dir else None
        return path if path is not None and path.is_file() else None


def previous_run(mlflow_client, exp_id: str, digest: str, parent_id: str | None) -> Previous | None:
    """The run of this configuration to skip (a FINISHED one) or continue (the latest other), or None."""
    scope = f"tags.`{runs.PARENT_TAG}` = '{parent_id}'" if parent_id else None
    found = mlflow_client.search_runs([exp_id], filter_string=f"tags.`{CONFIG_HASH_TAG}` = '{digest}'",
                                      order_by=["attributes.start_time DESC"], max_results=100)
    if scope:
        found = [r for r in found if r.data.tags.get(runs.PARENT_TAG) == parent_id]
    else:  # a single run: only earlier single runs, never a sweep's child
        found = [r for r in found if runs.PARENT_TAG not in r.data.tags]
    done = [r for r in found if r.info.status == "FINISHED"]
    return Previous(done[0]) if done else (Previous(found[0]) if found else None)


def latest_sweep(mlflow_client, exp_id: str, key: str):
    """The latest sweep parent run started with the same overrides, or None."""
    found = mlflow_client.search_runs([exp_id], filter_string=f"tags.`{SWEEP_KEY_TAG}` = '{key}'",
                                      order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None
