"""One module per shape of RNN problem; each has `build(cfg) -> Built` (data, LightningModule, artifacts).

| task.kind   | shape                           | module             |
|-------------|---------------------------------|--------------------|
| `classify`  | many-to-one (sentiment)         | tasks/classify.py  |
| `ner`       | many-to-many aligned (tagging)  | tasks/ner.py       |
| `lm`        | next-word prediction            | tasks/lm.py        |
| `longrange` | synthetic memory (adding, copy) | tasks/longrange.py |
| `translation` | many-to-many encoder-decoder  | tasks/translation.py |
| `generate`  | one-to-many (conditional text)  | tasks/generate.py  |
"""

from __future__ import annotations

import importlib

from rnnlab.errors import ConfigError

KINDS = {"classify": "rnnlab.tasks.classify", "ner": "rnnlab.tasks.ner", "lm": "rnnlab.tasks.lm",
         "longrange": "rnnlab.tasks.longrange", "translation": "rnnlab.tasks.translation",
         "generate": "rnnlab.tasks.generate"}


def task_module(kind: str):
    """The module of a task kind: `build(cfg) -> Built` for training, `model_for_run(config, tokenizer, files)`
    (an untrained model shaped as a logged run's config says; `files` = the run's downloaded artifacts)."""
    if kind not in KINDS:
        raise ConfigError(f"task.kind={kind!r} is not one of {sorted(KINDS)}: choose task=classify|ner|lm|longrange|translation|generate")
    return importlib.import_module(KINDS[kind])


def build(cfg):
    return task_module(cfg.task.get("kind")).build(cfg)
