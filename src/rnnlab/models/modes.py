"""Eval mode for a block of code, with every submodule's own mode put back afterwards: decoding, sampling and the
analyses switch dropout off while they run, and a caller that was training the model goes on training it."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def in_eval_mode(function):
    """The decorator form, for a function whose first argument is the model."""
    @functools.wraps(function)
    def run(model, *args, **kwargs):
        with evaluating(model):
            return function(model, *args, **kwargs)
    return run
