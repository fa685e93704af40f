"""Resumable sweeps (`resume=true`): a configuration is recognised by its resolved config, not its job number.

Every training run is tagged with `rnnlab.config_hash` (the resolved config without the keys that cannot change
a result) and `rnnlab.output_dir`; every sweep parent with `rnnlab.sweep_key` (its command-line overrides).
Re-running an interrupted sweep with `resume=true` reopens the latest parent of the same overrides that ran the
same code (tag `rnnlab.code_digest`: the package's sources; after an edit the sweep starts anew); within it a
configuration whose run FINISHED is skipped, and one whose run was killed continues in the same MLflow run from
<output_dir>/checkpoints/last.ckpt (or from the start when it died before its first checkpoint); one that had
finished training (tag `rnnlab.fitted`: its best checkpoint) and was stopped in its test phase is tested again
from that checkpoint, without training more.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rnnlab import checkpoints
from rnnlab.tracking import runs

CONFIG_HASH_TAG = "rnnlab.config_hash"
OUTPUT_DIR_TAG = "rnnlab.output_dir"
SWEEP_KEY_TAG = "rnnlab.sweep_key"
FITTED_TAG = "rnnlab.fitted"  # set when fit has ended: the best checkpoint the test phase reads
# where to log and how many threads: the same experiment either way
NEUTRAL_KEYS = ("resume", "logger", "torch_threads", "data.num_workers")


def result_config(resolved: dict) -> dict:
    """The resolved config without the NEUTRAL_KEYS: what decides a run's results."""
    tree = json.loads(json.dumps(resolved, default=str))
    for key in NEUTRAL_KEYS:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return tree


def config_hash(resolved: dict) -> str:
    return hashlib.sha256(json.dumps(result_config(resolved), sort_keys=True).encode()).hexdigest()


def sweep_key(overrides: list[str]) -> str:
    # credentials in a URI (logger.tracking_uri=http://user:password@host) are no part of the key
    kept = sorted(runs.redact(o) for o in overrides if o.split("=", 1)[0].lstrip("+~") != "resume")
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
    def fitted_checkpoint(self) -> Path | None:
        """The best checkpoint of a run that finished training and was stopped before it finished testing
        (checked to hold only tensors and plain values: rnnlab.checkpoints)."""
        found = self.run.data.tags.get(FITTED_TAG)
        return self._checked(Path(found), "test") if found and Path(found).is_file() else None

    @property
    def last_checkpoint(self) -> Path | None:
        """<output_dir>/checkpoints/last.ckpt when there is one (checked like fitted_checkpoint)."""
        path = self.output_dir / "checkpoints" / "last.ckpt" if self.output_dir else None
        return self._checked(path, "continue from") if path is not None and path.is_file() else None

    def _checked(self, path: Path, verb: str) -> Path:
        """`path`, once torch's weights-only unpickler has read it; a checkpoint that carries pickled objects
        is refused (one error naming it) before the run is reopened, and nothing in it runs."""
        checkpoints.load(path, f"the checkpoint {path} that resume=true would {verb} (run "
                               f"{self.run.info.run_id})", mmap=True)
        return path


def _same_code() -> str:
    """The MLflow filter that keeps the runs of this code only (tag rnnlab.code_digest)."""
    return f"tags.`{runs.CODE_DIGEST_TAG}` = '{runs.code_digest()}'"


def previous_run(mlflow_client, exp_id: str, digest: str, parent_id: str | None) -> Previous | None:
    """The run of this configuration to skip (a FINISHED one) or continue (the latest other), or None."""
    scope = f"tags.`{runs.PARENT_TAG}` = '{parent_id}'" if parent_id else None
    found = mlflow_client.search_runs([exp_id],
                                      filter_string=f"tags.`{CONFIG_HASH_TAG}` = '{digest}' and {_same_code()}",
                                      order_by=["attributes.start_time DESC"], max_results=100)
    if scope:
        found = [r for r in found if r.data.tags.get(runs.PARENT_TAG) == parent_id]
    else:  # a single run: only earlier single runs, never a sweep's child
        found = [r for r in found if runs.PARENT_TAG not in r.data.tags]
    done = [r for r in found if r.info.status == "FINISHED"]
    return Previous(done[0]) if done else (Previous(found[0]) if found else None)


def latest_sweep(mlflow_client, exp_id: str, key: str):
    """The latest sweep parent run started with the same overrides and the same code, or None (a sweep of other
    code is never reopened: its results would be mixed with this code's)."""
    found = mlflow_client.search_runs([exp_id],
                                      filter_string=f"tags.`{SWEEP_KEY_TAG}` = '{key}' and {_same_code()}",
                                      order_by=["attributes.start_time DESC"], max_results=1)
    if found:
        return found[0]
    if mlflow_client.search_runs([exp_id], filter_string=f"tags.`{SWEEP_KEY_TAG}` = '{key}'", max_results=1):
        print("resume: the earlier sweeps with these overrides ran other code (tag rnnlab.code_digest); "
              "a new sweep starts")
    return None
