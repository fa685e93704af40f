"""The package's layers, read from its source: every import of an rnnlab module goes down (or sideways within a
layer), no two modules import each other in a circle, and an import of our own code is deferred into a function
only when the module it loads brings a heavy third-party library (the console scripts start fast)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "src" / "rnnlab"

# lowest first; a module may import its own layer and the layers before it
LAYERS = [
    ("base", ["rnnlab", "rnnlab.errors", "rnnlab.io", "rnnlab.checkpoints", "rnnlab.config",
              "rnnlab.config_schema", "rnnlab.random_state", "rnnlab.vocabulary", "rnnlab.code_deps",
              "rnnlab.cpu_kernels"]),
    # reading and judging melodies is data-level work; the music judge that samples from a model is analysis
    ("data", ["rnnlab.data", "rnnlab.music"]),
    ("embeddings", ["rnnlab.embeddings"]),
    ("models", ["rnnlab.models"]),
    ("tracking", ["rnnlab.tracking"]),
    ("tasks", ["rnnlab.tasks"]),
    ("analysis", ["rnnlab.analysis", "rnnlab.music.evaluation", "rnnlab.music.callbacks"]),
    ("reporting", ["rnnlab.reporting"]),
    ("commands", ["rnnlab.cli", "rnnlab.train", "rnnlab.predict", "rnnlab.generate", "rnnlab.translate",
                  "rnnlab.analyze", "rnnlab.report", "rnnlab.study", "rnnlab.pipeline"]),
]
# importing one of these costs start-up time, so a command may load the module that needs it when it runs
HEAVY = {"torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "mlflow", "gensim",
         "datasets", "matplotlib", "numba", "scipy", "sklearn", "pandas", "sacrebleu", "seqeval", "torchcrf",
         "tokenizers", "hydra", "omegaconf", "numpy"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _own(name: str) -> str | None:
    """The rnnlab module that `name` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported name, at module level, line) for each import in a module; relative imports resolved."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found += [(f"{base}.{alias.name}" if _own(f"{base}.{alias.name}") != _own(base) else base,
                       id(node) in top, node.lineno) for alias in node.names]
    return found


def _layer(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "rnnlab" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return best[0]


def _edges() -> dict[str, list[tuple[str, bool, int]]]:
    return {module: [(target, at_top, line) for name, at_top, line in _imports(module)
                     if (target := _own(name)) and target.split(".")[0] == "rnnlab" and target != module]
            for module in MODULES}


def _heavy_at_import(module: str, seen: set[str] | None = None) -> bool:
    """Whether importing `module` imports a HEAVY library (through its module-level imports, ours included)."""
    seen = set() if seen is None else seen
    if module in seen:
        return False
    seen.add(module)
    for name, at_top, _ in _imports(module):
        if not at_top:
            continue
        if name.split(".")[0] in HEAVY:
            return True
        own = _own(name) if name.split(".")[0] == "rnnlab" else None
        if own and own != module and _heavy_at_import(own, seen):
            return True
    return False


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_imports_go_down_the_layers():
    upward = [f"{MODULES[m].relative_to(REPO)}:{line}: {m} ({LAYERS[_layer(m)][0]}) imports {t} "
              f"({LAYERS[_layer(t)][0]})"
              for m, targets in _edges().items() for t, _, line in targets if _layer(t) > _layer(m)]
    assert not upward, "imports that go up the layer order:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {m: sorted({t for t, _, _ in targets}) for m, targets in _edges().items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    sys.setrecursionlimit(10_000)
    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_own_imports_are_deferred_only_to_defer_a_heavy_library():
    needless = [f"{MODULES[m].relative_to(REPO)}:{line}: {t} imported inside a function, but importing it "
                "loads no heavy library: import it at the top of the module"
                for m, targets in _edges().items() for t, at_top, line in targets
                if not at_top and not _heavy_at_import(t)]
    assert not needless, "\n".join(needless)


@pytest.mark.parametrize("bad", ["upward", "cycle"])
def test_the_checks_see_a_bad_import(bad, monkeypatch):
    """The checks above read real imports: an upward import and a cycle planted in copies are found."""
    extra = {"upward": ("rnnlab.errors", "rnnlab.train"),
             "cycle": ("rnnlab.models.encoder", "rnnlab.models.inputs")}[bad]
    source, target = extra
    original = _imports

    def planted(module):
        found = original(module)
        if module == source:
            found.append((target, True, 0))
        if bad == "cycle" and module == target:
            found.append((source, True, 0))
        return found

    monkeypatch.setattr(sys.modules[__name__], "_imports", planted)
    check = test_imports_go_down_the_layers if bad == "upward" else test_no_import_cycles
    with pytest.raises(AssertionError):
        check()
