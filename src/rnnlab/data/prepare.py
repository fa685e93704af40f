"""The `prepare` stage: raw file -> validated records -> seeded, stratified DatasetDict."""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.readers import read_labelled_csv
from rnnlab.data.sources import raw_filename
from rnnlab.data.splits import stratified_split
from rnnlab.errors import DataError
from rnnlab.io import atomic_dir, write_json


def prepare(data_cfg, raw_dir: str | Path, out_dir: str | Path) -> dict:
    """Read and validate the raw CSV, split it (seeded, stratified), save a DatasetDict; return its counts."""
    from datasets import Dataset, DatasetDict

    raw = Path(raw_dir) / raw_filename(data_cfg.source)
    if not raw.exists():
        raise DataError(f"{raw} does not exist: run the fetch stage first (dvc repro)")
    records = read_labelled_csv(raw, data_cfg.text_column, data_cfg.label_column, list(data_cfg.labels),
                                data_cfg.get("filter"))
    split = data_cfg.split
    rows = stratified_split(records.labels, split.validation, split.test, split.seed)
    parts = DatasetDict({name: Dataset.from_dict({"text": [records.texts[i] for i in idx],
                                                  "label": [records.labels[i] for i in idx]})
                         for name, idx in rows.items()})
    stats = {"rows": len(records.texts), "dropped_empty": records.dropped_empty,
             **{f"{name}_rows": len(idx) for name, idx in rows.items()}}
    with atomic_dir(out_dir) as tmp:
        parts.save_to_disk(str(tmp / "data"))
        write_json(tmp / "stats.json", stats)
    return stats
