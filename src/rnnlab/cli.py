"""The key=value arguments of the console scripts other than rnnlab-train (which is Hydra's)."""

from __future__ import annotations

from collections.abc import Mapping

from rnnlab.config_schema import typed
from rnnlab.errors import ConfigError
from rnnlab.tracking.runs import registered_model_run


def key_values(argv: list[str], schema: Mapping | set[str], usage: str) -> dict:
    """{key: value} of `argv`; an argument without `=` or with a key not in `schema` is one clear error.

    `schema` maps each key to its rnnlab.config_schema.Rule (the script's SCRIPT_ARGS): values come back typed
    and checked (`words=abc` is `words='abc': must be an integer >= 1`); a plain set of keys keeps them text."""
    bad = [arg for arg in argv if "=" not in arg]
    if bad:
        raise ConfigError(f"{bad[0]!r} is not key=value; {usage}")
    args = dict(arg.split("=", 1) for arg in argv)
    unknown = sorted(args.keys() - set(schema))
    if unknown:
        raise ConfigError(f"unknown argument(s) {unknown}; {usage}")
    if isinstance(schema, Mapping):
        args = {key: typed(key, text, schema[key]) for key, text in args.items()}
    return args


def print_help_if_asked(argv: list[str], usage: str, doc: str) -> bool:
    """With -h / --help: print the usage and the module docstring's details (after its second paragraph)."""
    if not {"-h", "--help"} & set(argv):
        return False
    details = doc.split("\n\n", 2)[2:]  # after the summary line and the example commands
    print(usage + ("\n\n" + details[0].strip() if details else ""))
    return True


def run_id_of(args: dict, usage: str) -> str:
    """The training run a script reads: `run_id=`, or `model=models:/<name>@<alias>` (or `/<version>`) of the
    model registry, whose version names its run. Exactly one of the two."""
    if ("run_id" in args) == ("model" in args):
        raise ConfigError(f"give exactly one of run_id= and model=; {usage}")
    if "run_id" in args:
        return args["run_id"]
    return registered_model_run(args["model"], args.get("tracking_uri"))
