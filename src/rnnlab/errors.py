"""User-facing errors: one message that names the input at fault and what to do about it."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class RnnlabError(Exception):
    """An error caused by the user's input (config, file, source), not by a bug."""


class ConfigError(RnnlabError):
    """A configuration value is wrong."""


class DataError(RnnlabError):
    """A data file or data source is missing, unreachable or malformed."""


def user_error(err: BaseException | None) -> RnnlabError | None:
    """The RnnlabError behind `err`, also when a library (e.g. hydra.utils.instantiate) wrapped it."""
    while err is not None and not isinstance(err, RnnlabError):
        err = err.__cause__
    return err


def exit_on_user_error(func: F) -> F:
    """Entry points print a user error as one line and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as err:
            cause = user_error(err)
            if cause is None:
                raise
            print(f"rnnlab: error: {cause}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
