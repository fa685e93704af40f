"""The rnnlab source files a piece of code can execute: its import closure, read from the source (imports at any
depth, deferred ones too, and module names written in strings, which importlib tables and `python -m` run).

DVC's stages depend on code through it: tests/test_dvc_deps.py checks each stage's deps against the closure of its
script, and a study's sweep depends on the digest of exactly the files its runs can execute (rnnlab/study.py
`study_code`), so an edit of code the study never runs leaves its results up to date.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SRC = PACKAGE.parent
MODULE_NAME = re.compile(r"\brnnlab(?:\.\w+)+")  # also in strings: importlib tables, `python -m`, `_target_`


def module_file(name: str) -> Path | None:
    """The file that defines `name`, a module or a name inside one (`rnnlab.models.encoder.RecurrentEncoder`)."""
    parts = name.split(".")
    while parts:
        base = SRC.joinpath(*parts)
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        parts.pop()
    return None


def _is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return (base / "__init__.py").is_file() or base.with_suffix(".py").is_file()


def names_in(path: Path, strings: bool = True) -> set[str]:
    """The rnnlab modules a file can load: its imports and, with `strings`, the rnnlab.* strings that name a whole
    module (`python -m rnnlab.train`, an importlib table); a string naming a class (a `_target_` key of a schema)
    is not code that runs."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= {name for name in MODULE_NAME.findall(node.value) if _is_module(name)}
    return {name for name in names if name.split(".")[0] == "rnnlab"}


def import_closure(roots: Iterable[Path] = (), names: Iterable[str] = (), tables: Iterable[Path] = ()) -> set[Path]:
    """Every file of the package that running `roots` (files) or importing `names` can execute, with the packages'
    __init__ files on the way. In `tables`, files whose module-name strings are a dispatch table (tasks.KINDS), those
    strings are not followed: the caller names the entries it selects."""
    tables = {Path(t).resolve() for t in tables}
    seen: set[Path] = set()
    todo = [Path(r).resolve() for r in roots] + [f for f in map(module_file, names) if f]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in names_in(path, strings=path not in tables):
            parts = name.split(".")
            todo += [f for f in (module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)) if f]
    return seen


def digests(files: Iterable[Path]) -> dict[str, str]:
    """{path below src/ ("rnnlab/train.py"): sha256 of its bytes} for the package's files, sorted."""
    return {path.relative_to(SRC).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(files, key=lambda p: p.relative_to(SRC).as_posix())}
