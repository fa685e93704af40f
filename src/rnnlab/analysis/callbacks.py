"""Analyses that run inside a training run (conf/analysis/) and log their artifacts to the run."""

from __future__ import annotations


def analysis_callbacks(cfg, built) -> list:
    """The Lightning callbacks that `cfg.analysis` switches on (none by default)."""
    return []
