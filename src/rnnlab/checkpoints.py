"""Reading what a run left behind without running code from it: checkpoints, and the config of its model.

A Lightning checkpoint is a pickle, and unpickling runs whatever the file names (an object whose `__reduce__`
returns `os.system` runs a shell command). Every checkpoint that rnnlab reads goes through `load`: torch's
weights-only unpickler, which builds tensors, numbers, strings, lists and dicts (all that rnnlab's
checkpoints hold: weights, optimizer and scheduler state, loop counters, callback state) and refuses any
other Python object with one error that names the file. That covers the best checkpoint of a logged run
(rnnlab-predict, -generate, -translate, -analyze: `tasks.load_run`) and the last.ckpt / best checkpoint
that `resume=true` continues from or tests (`tracking.resume`); Trainer.fit / Trainer.test, which load those
files again, get `weights_only=True`.

A run's config.yaml names the classes that rebuild its model and optimizer (`_target_`): `check_targets` lets
only the project's own models (rnnlab.models.*) and torch's optimizers be built from it.
"""

from __future__ import annotations

import re
from pathlib import Path

from rnnlab.errors import DataError


def load(path: str | Path, what: str | None = None, mmap: bool = False) -> dict:
    """The Lightning checkpoint at `path` (tensors on the CPU), read with torch's weights-only unpickler; a
    file that carries any other pickled object is refused, never executed. `what` names the file in errors
    (default: its path); `mmap`: map the tensors, not read them (to check a file or read its counters)."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    what = what or str(path)
    if not path.is_file():
        raise DataError(f"{what} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True,
                                mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        raise DataError(f"{what} refused: it carries pickled Python objects, not only tensors and plain "
                        f"values, and loading it would run them ({_reason(err)}); nothing in it was run. "
                        "Load only checkpoints that rnnlab-train wrote") from err
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{what} is not a checkpoint that torch can read ({type(err).__name__}: "
                        f"{first})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(f"{what} is not a Lightning checkpoint (no state_dict in it)")
    return checkpoint


def _reason(err: Exception) -> str:
    """The line of torch's weights-only error that says what the file holds, e.g. `Trying to load unsupported
    GLOBAL posix.system whose module posix is blocked.`"""
    paragraphs = [p.strip() for p in str(err).split("\n\n") if p.strip()]
    detail = paragraphs[1] if len(paragraphs) >= 3 else paragraphs[-1] if paragraphs else type(err).__name__
    return " ".join(detail.split())


# section of a run's config -> (the form of a `_target_` in it, the class it must be, where it is defined)
_TARGETS = {
    "model": (re.compile(r"rnnlab\.models\.[a-z_][a-z0-9_]*\.[A-Z]\w*"), "torch.nn.Module", "rnnlab.models."),
    "optimizer": (re.compile(r"torch\.optim\.[A-Z]\w*"), "torch.optim.Optimizer", "torch.optim."),
}


def check_targets(config, what: str) -> None:
    """Refuse a run's config whose `model` or `optimizer` names (`_target_`) anything but a model class of
    rnnlab.models or a torch optimizer: building the model from the config would call whatever it names."""
    import importlib

    import torch
    from omegaconf import OmegaConf

    bases = {"torch.nn.Module": torch.nn.Module, "torch.optim.Optimizer": torch.optim.Optimizer}
    for section, (pattern, base, home) in _TARGETS.items():
        node = config.get(section)
        tree = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
        for key, target in _targets(tree, section):
            module, _, name = str(target).rpartition(".")
            found = None
            if pattern.fullmatch(str(target)):
                try:
                    found = getattr(importlib.import_module(module), name, None)
                except ImportError:
                    found = None
            allowed = isinstance(found, type) and issubclass(found, bases[base])
            if not (allowed and found.__module__.startswith(home)):
                raise DataError(f"{what}: {key}={target!r} is not a {base} of {home.rstrip('.')}: refused, "
                                "since building the model from this config would call it")


def _targets(tree, prefix: str):
    """(dotted key, value) of every `_target_` in a config tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "_target_":
                yield f"{prefix}._target_", value
            else:
                yield from _targets(value, f"{prefix}.{key}")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _targets(value, f"{prefix}.{index}")
